from gather_pages.store import metadata
from gather_shared.db import run_alembic_env

run_alembic_env(metadata)
