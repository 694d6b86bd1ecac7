"""verification and registration opening

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import gather_shared.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand: every event, the existing ones included, verifies its attendees' contact unless its
    # organizer says otherwise (issue 12); none opens registration later than its publication.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification', sa.String(length=20), server_default='contact', nullable=False))
        batch_op.add_column(sa.Column('registration_opens_at', gather_shared.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('registration_opens_at')
        batch_op.drop_column('verification')
