from gather_shared.db import run_alembic_env

from gather_notifications.store import metadata

run_alembic_env(metadata)
