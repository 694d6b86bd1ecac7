"""why the organizer removed a registration, for the message that tells the attendee

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 11:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removal_reason", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_column("removal_reason")
