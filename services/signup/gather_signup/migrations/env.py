from gather_shared.db import run_alembic_env
from gather_signup.store import metadata

run_alembic_env(metadata)
