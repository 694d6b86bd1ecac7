"""the organizer's digest and waitlist alert: opt-ins on the event

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Opt-ins: every existing event has neither (the server default says so for the existing rows).
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("waitlist_alert_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("waitlist_alert_at")
        batch_op.drop_column("digest")
