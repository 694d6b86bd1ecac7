"""event visibility: listed or unlisted

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every event made before it was listed (issue 16): the server default says so for the existing rows.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visibility", sa.String(length=20), server_default="listed", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("visibility")
