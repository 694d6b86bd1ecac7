"""Each service's migrations build exactly the tables its models describe: a model changed without its
migration (or the other way round) fails here, not in production at the next start."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gather_shared.db import inbox_table, make_engine, migrate, outbox_table

#: The bus's tables, which every service's migrations create from the shared library's definitions.
BUS_TABLES = {outbox_table.name, inbox_table.name}


@pytest.mark.parametrize("service", ["events", "signup", "notifications", "pages"])
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # SQLite cannot reflect expression indexes
def test_the_migrations_build_what_the_models_describe(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATHER_SECRET_KEY", "a-key-for-migrations-that-read-the-settings")
    store = importlib.import_module(f"gather_{service}.store")
    migrations = importlib.import_module(f"gather_{service}.bootstrap").MIGRATIONS
    engine = make_engine(f"sqlite:///{tmp_path}/{service}.db")
    migrate(engine, migrations)

    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), store.metadata)
    engine.dispose()
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name in BUS_TABLES)] == []
