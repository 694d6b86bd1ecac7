"""event visibility

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 11:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every event copied before it was listed (issue 16), as its messages said by leaving the field out.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visibility", sa.String(length=20), server_default="listed", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("visibility")
