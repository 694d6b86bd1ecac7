from gather_shared.db import run_alembic_env

from gather_events.store import metadata

run_alembic_env(metadata)
