"""links signed at send time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00.000000
"""
import hashlib
import hmac

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

#: Names for the constraints 0001 left unnamed, so that SQLite's batch mode can drop them.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
OLD_ONCE = ('signup_id', 'kind', 'event_version', 'channel', 'reminder_offset')


def upgrade() -> None:
    # Written by hand (issue 12): no link that opens a registration is kept here any more. Links are
    # signed when a message is sent (gather_shared.tokens), from the signup_id and the token_version that
    # messages carry: the stored manage URLs (working links, in clear), the unsubscribe tokens and the SMS
    # short-link codes go. Links in messages sent before stop working; the next message carries new ones.
    # A verify or manage link asked for again is a new notification: `link_request` joins the key.
    bind = op.get_bind()
    sqlite = bind.dialect.name == 'sqlite'
    with op.batch_alter_table('recipients', schema=None, naming_convention=NAMING) as batch_op:
        if sqlite:  # PostgreSQL drops a column's constraints with it
            batch_op.drop_constraint('uq_recipients_short_code', type_='unique')
            batch_op.drop_constraint('uq_recipients_unsubscribe_token', type_='unique')
        batch_op.drop_column('manage_url')
        batch_op.drop_column('unsubscribe_token')
        batch_op.drop_column('short_code')
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default='1', nullable=False))
    old_once = 'uq_notifications_signup_id' if sqlite else next(
        constraint['name']
        for constraint in sa.inspect(bind).get_unique_constraints('notifications')
        if tuple(constraint['column_names']) == OLD_ONCE
    )
    with op.batch_alter_table('notifications', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('link_request', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint(old_once, type_='unique')
        batch_op.create_unique_constraint('uq_notifications_once', [*OLD_ONCE, 'link_request'])
    _rekey_opt_outs(bind)


def _rekey_opt_outs(bind: sa.Connection) -> None:
    """Opt-outs were keyed by plain SHA-256; now by HMAC with GATHER_SECRET_KEY (store.contact_hash). A hash
    cannot be re-keyed without the contact it hides: those of contacts still known here (recipients not
    yet erased) are re-keyed, the others dropped. Those belong to attendees already forgotten; reminders
    need their consent again anyway if they register again, and a number that replies STOP again is
    opted out again."""
    from gather_shared.config import Settings

    secret = Settings.from_env('notifications').secret_key
    contacts = [
        contact
        for row in bind.execute(sa.text('SELECT email, phone FROM recipients WHERE erased_at IS NULL'))
        for contact in row
        if contact
    ]
    for table, column in (('email_opt_outs', 'address_hash'), ('sms_opt_outs', 'number_hash')):
        old = {
            row[0]: row[1] for row in bind.execute(sa.text(f'SELECT {column}, created_at FROM {table}'))
        }
        rekeyed = {}
        for contact in contacts:
            normal = contact.strip().lower().encode()
            created_at = old.get(hashlib.sha256(normal).hexdigest())
            if created_at is not None:
                rekeyed[hmac.new(secret.encode(), normal, hashlib.sha256).hexdigest()] = created_at
        bind.execute(sa.text(f'DELETE FROM {table}'))
        for key, created_at in rekeyed.items():
            bind.execute(
                sa.text(f'INSERT INTO {table} ({column}, created_at) VALUES (:key, :created_at)'),
                {'key': key, 'created_at': created_at},
            )


def downgrade() -> None:
    # The opt-outs stay keyed by HMAC: the old code cannot match them (they stop nothing until re-made).
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('uq_notifications_once', type_='unique')
        batch_op.create_unique_constraint('uq_notifications_signup_id', list(OLD_ONCE))
        batch_op.drop_column('link_request')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_column('token_version')
        batch_op.add_column(sa.Column('manage_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('unsubscribe_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('short_code', sa.String(length=32), nullable=True))
