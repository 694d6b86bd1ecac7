"""The organizer's digest and waitlist alert: the organizer's address, each event's daily counts, and the
notices to organizers

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 12:00:00.000000
"""

import sqlalchemy as sa

import gather_shared.db
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    op.create_table(
        "event_activity",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("registrations", sa.Integer(), nullable=False),
        sa.Column("cancellations", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "day"),
    )
    op.create_table(
        "organizer_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=20), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("scheduled_for", gather_shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", gather_shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", gather_shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", gather_shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "kind", "key", name="uq_organizer_notices_once"),
    )
    op.create_index("ix_organizer_notices_due", "organizer_notices", ["status", "scheduled_for"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_organizer_notices_due", table_name="organizer_notices")
    op.drop_table("organizer_notices")
    op.drop_table("event_activity")
    with op.batch_alter_table("organizers", schema=None) as batch_op:
        batch_op.drop_column("email")
