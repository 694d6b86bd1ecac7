"""event seats seq

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand: numbers the signup.availability_changed.v1 messages of each event (the attendee
    # pages keep the newest). Existing events start at 0; their next change announces 1.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seats_seq", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("seats_seq")
