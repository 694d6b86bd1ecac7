"""Announcements from organizers, what each event update changed, and the waitlist position

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 11:10:00.000000
"""

import sqlalchemy as sa

import gather_shared.db
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_ONCE = ("signup_id", "kind", "event_version", "channel", "reminder_offset", "link_request")


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("organizer_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=150), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("created_at", gather_shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "number", name="uq_announcements_number"),
    )
    op.create_table(
        "event_changes",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "version"),
    )
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waitlist_position", sa.Integer(), nullable=True))
    # An event version may have several announcements: the announcement's number joins the key.
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announcement", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint("uq_notifications_once", type_="unique")
        batch_op.create_unique_constraint("uq_notifications_once", [*OLD_ONCE, "announcement"])


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint("uq_notifications_once", type_="unique")
        batch_op.create_unique_constraint("uq_notifications_once", list(OLD_ONCE))
        batch_op.drop_column("announcement")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_column("waitlist_position")
    op.drop_table("event_changes")
    op.drop_table("announcements")
