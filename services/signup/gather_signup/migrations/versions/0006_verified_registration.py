"""verified registration

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import gather_shared.db


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

HOLDING = "status IN ('pending', 'confirmed', 'waitlisted')"
ACTIVE_BEFORE = "status != 'cancelled'"


def _contact_indexes(where: str) -> None:
    op.create_index(
        "uq_signups_event_email",
        "signups",
        ["event_id", sa.text("lower(email)")],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
    op.create_index(
        "uq_signups_event_phone",
        "signups",
        ["event_id", "phone"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    # Written by hand (issue 12). Events copy how they take registrations. A registration may now wait,
    # `pending` and without an arrival number, until its contact follows the link sent to it; it holds its
    # contact meanwhile (the partial unique indexes now name the statuses that hold one, so that a lapsed
    # registration frees it as a cancelled one does).
    #
    # Manage tokens are no longer stored, not even hashed: they are signed with GATHER_SECRET_KEY and carry
    # the registration's token_version. Manage links sent before this migration stop working; the next
    # message a registration receives carries a new one, and asking for a place again with the same
    # contact sends one at once (a `manage_link`). Idempotent replays sign the token again, so the sealed
    # copy goes too.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verification", sa.String(length=20), server_default="contact", nullable=False))
        batch_op.add_column(sa.Column("registration_opens_at", gather_shared.db.UTCDateTime(), nullable=True))
    op.drop_index("uq_signups_event_email", table_name="signups")
    op.drop_index("uq_signups_event_phone", table_name="signups")
    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.alter_column("arrival", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_column("manage_token_hash")
        batch_op.add_column(sa.Column("token_version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("link_requests", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("link_requested_at", gather_shared.db.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_signups_lapsing", ["status", "link_requested_at"], unique=False)
    _contact_indexes(HOLDING)
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_column("sealed_token")


def downgrade() -> None:
    # Registrations keep no manage token now: a downgrade gives each an unusable random hash (their links
    # were signed; the old code cannot check them).
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_token", sa.String(length=64), server_default="", nullable=False))
    op.drop_index("uq_signups_event_email", table_name="signups")
    op.drop_index("uq_signups_event_phone", table_name="signups")
    op.execute("DELETE FROM signups WHERE status IN ('pending', 'lapsed')")
    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.drop_index("ix_signups_lapsing")
        batch_op.drop_column("link_requested_at")
        batch_op.drop_column("link_requests")
        batch_op.drop_column("token_version")
        batch_op.add_column(sa.Column("manage_token_hash", sa.String(length=64), nullable=True))
        batch_op.alter_column("arrival", existing_type=sa.Integer(), nullable=False)
    op.execute("UPDATE signups SET manage_token_hash = md5(random()::text) || md5(random()::text)"
               if op.get_bind().dialect.name == "postgresql"
               else "UPDATE signups SET manage_token_hash = hex(randomblob(32))")
    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.alter_column("manage_token_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("uq_signups_manage_token_hash", ["manage_token_hash"])
    _contact_indexes(ACTIVE_BEFORE)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("registration_opens_at")
        batch_op.drop_column("verification")
