"""outbox correlation id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import gather_shared.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand: the relay logs each published message with its correlation id, kept in a column of
    # its own so that the relay need not parse the body. Rows already waiting have none: logged as "-".
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('correlation_id', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('correlation_id')
