"""One service under test in this process: its settings, a database of its own for a test module, and
its messages in and out without a broker."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from gather_shared.testing.tiers import fresh_pg_database

ADMIN_TOKEN = "test-admin-token"
SECRET_KEY = "test-secret-key"  # outside the embedded default a process refuses to start without one
#: Tests send many requests from one address, quicker than any person: the rate limits are off unless a
#: test turns them on (tests/test_rate_limits.py), as the benchmarks keep them off.
RATE_LIMITS_OFF = {"GATHER_RATE_LIMIT_ENABLED": "false"}
#: The services that answer an HTTP API and its OpenAPI document (the attendee pages answer HTML).
API_SERVICES = ("events", "notifications", "signup")


def create_app(service: str) -> Any:
    """The service's Flask app (`gather_<service>.app.create_app`), with the settings in the environment.
    Imported by name: gather_shared depends on no service."""
    return importlib.import_module(f"gather_{service}.app").create_app()


@dataclass(frozen=True)
class ServiceUnderTest:
    """What the plugin's `module_app` / `app` / `rt` fixtures need to know of a service: each service's
    tests/conftest.py returns one from a session-scoped `service_under_test` fixture."""

    name: str
    create_app: Callable[[], Any]
    metadata: sa.MetaData
    env: dict[str, str] = field(default_factory=dict)  # settings beyond the database and the secrets
    #: Its message handlers' table, made from the settings (`gather_<name>.handlers.handlers`), for the
    #: plugin's `send`; None for a service whose tests send it no message that way.
    handlers: Callable[[Any], dict[str, Any]] | None = None


@contextlib.contextmanager
def module_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, service: str, **env: str
) -> Iterator[str]:
    """For a module-scoped fixture parametrised over ("sqlite", "postgresql"): a working directory and a
    migrated-on-start database of its own for `service`, and the GATHER_* settings pointing at them, for
    the whole module (creating a PostgreSQL database per test would cost most of the suite's time; pair
    it with `empty_tables` before each test). Yields the database URL; `env` adds settings."""
    workdir = tmp_path_factory.mktemp(service)
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir}/test.db"
        else:
            url = stack.enter_context(fresh_pg_database(request.getfixturevalue("pg_server_url")))
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.chdir(workdir)
        for name in os.environ:
            if name.startswith("GATHER_") and not name.startswith("GATHER_TEST_") and name != "GATHER_REQUIRE_SERVICES":
                patch.delenv(name)
        settings = {"GATHER_ADMIN_TOKEN": ADMIN_TOKEN, "GATHER_SECRET_KEY": SECRET_KEY, "GATHER_DATABASE_URL": url}
        settings |= RATE_LIMITS_OFF
        for name, value in (settings | env).items():
            patch.setenv(name, value)
        yield url


def empty_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Delete every row of a service's tables, bus tables included."""
    from gather_shared.db import bus_metadata

    with engine.begin() as conn:
        for table in [*reversed(metadata.sorted_tables), *bus_metadata.sorted_tables]:
            conn.execute(table.delete())


# --- messages in and out, without a broker ----------------------------------------------------------


def deliver(
    sessions: Any,
    handlers: dict[str, Any],
    type_: str,
    data: dict[str, Any],
    source: str | None = None,
    message_id: str | None = None,
    time: Any = None,
) -> Any:
    """Hand a message to a service's handlers exactly as its consumer would (validation, inbox,
    one transaction). Returns the Message. Deliver the same `message_id` twice to test redelivery;
    give `time` (an aware datetime) to send a message created earlier or later. `source` defaults to
    the one that may send `type_`."""
    import json

    from gather_shared import bus, envelope, messages
    from gather_shared.bus.topology import sender

    source = source or sender(type_)
    if source is None:
        raise ValueError(f"no service may send {type_}")
    body = envelope.build(type_, source, messages.dump(type_, data), None)
    if message_id is not None:
        body["id"] = message_id
    if time is not None:
        body["time"] = time.isoformat()
    message = bus.received(json.dumps(body))
    bus.handle(sessions, handlers, message)
    return message


def outbox_messages(engine: Any) -> list[dict[str, Any]]:
    """The messages a service has queued and not yet published, each parsed and validated against its
    schema exactly as a consumer would (so a test fails if a service emits anything invalid)."""
    from gather_shared import envelope
    from gather_shared.db import outbox_table

    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_table.c.body).order_by(outbox_table.c.id)).all()
    return [envelope.parse(row.body) for row in rows]
