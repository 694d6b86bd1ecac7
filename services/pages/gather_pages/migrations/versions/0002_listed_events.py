"""listed events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:15:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand: the listing reads its page in index order and stops there (`listed = true`, an
    # equality, where `status IN (…)` made SQLite read and sort every listed event).
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('listed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_events_listed', ['listed', 'starts_at', 'id'], unique=False)
        batch_op.create_index('ix_events_listed_by_kind', ['listed', 'kind', 'starts_at', 'id'], unique=False)
    op.execute("UPDATE events SET listed = (status IN ('published', 'postponed'))")


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_listed_by_kind')
        batch_op.drop_index('ix_events_listed')
        batch_op.drop_column('listed')
