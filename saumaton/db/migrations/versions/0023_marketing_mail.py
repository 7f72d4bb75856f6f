"""Marketing mail: the customer whose consent is checked when a queued mail is sent
(status 'suppressed' when it is off by then) and the one-click unsubscribe URL for
the List-Unsubscribe header; the mail provider's bounce and complaint reports; the
owner's e-mails to a customer segment (docs/mail.md, docs/segments.md).

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('list_unsubscribe', sa.Text(), server_default='',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_outgoing_mail_customer_id'), ['customer_id'],
                              unique=False)
    op.create_table('mail_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('mail_id', sa.BigInteger(), nullable=True),
    sa.Column('occurred_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('consents_withdrawn', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_mail_events_event_id'))
    )
    with op.batch_alter_table('mail_events', schema=None) as batch_op:
        batch_op.create_index('ix_mail_events_email_at', ['email', 'occurred_at'],
                              unique=False)
    op.create_table('segment_mailings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('segment_name', sa.String(length=100), nullable=False),
    sa.Column('subject_fi', sa.String(length=200), nullable=False),
    sa.Column('text_fi', sa.Text(), nullable=False),
    sa.Column('subject_en', sa.String(length=200), nullable=False),
    sa.Column('text_en', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('after_id', sa.BigInteger(), nullable=False),
    sa.Column('queued', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_mailings')),
    sa.UniqueConstraint('key', name=op.f('uq_segment_mailings_key'))
    )
    with op.batch_alter_table('segment_mailings', schema=None) as batch_op:
        batch_op.create_index('ix_segment_mailings_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_segment_mailings_segment_id'), ['segment_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('segment_mailings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_mailings_segment_id'))
        batch_op.drop_index('ix_segment_mailings_status')
    op.drop_table('segment_mailings')
    with op.batch_alter_table('mail_events', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_events_email_at')
    op.drop_table('mail_events')
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_customer_id'))
        batch_op.drop_column('list_unsubscribe')
        batch_op.drop_column('customer_id')
