"""Webhook subscriptions, deliveries and the delivery worker's cursor over the outbox.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_AT = saumaton.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'webhook_subscriptions',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('topics', sa.JSON(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('disabled_reason', sa.String(length=300), nullable=False),
        sa.Column('failing_since', _AT, nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('updated_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions')),
    )
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('subscription_id', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.Column('webhook_id', sa.String(length=64), nullable=False),
        sa.Column('topic', sa.String(length=64), nullable=False),
        sa.Column('resource', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', _AT, nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=False),
        sa.Column('last_response_ms', sa.Integer(), nullable=True),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('delivered_at', _AT, nullable=True),
        sa.ForeignKeyConstraint(
            ['subscription_id'], ['webhook_subscriptions.id'],
            name=op.f('fk_webhook_deliveries_subscription_id_webhook_subscriptions'),
            ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
        sa.UniqueConstraint('subscription_id', 'event_id',
                            name='uq_webhook_deliveries_sub_event'),
        sa.UniqueConstraint('webhook_id', name=op.f('uq_webhook_deliveries_webhook_id')),
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_status_next',
                              ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_resource',
                              ['subscription_id', 'resource', 'event_id'], unique=False)
    op.create_table(
        'webhook_attempts',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('delivery_id', sa.BigInteger(), nullable=False),
        sa.Column('at', _AT, nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=300), nullable=False),
        sa.Column('response_ms', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['delivery_id'], ['webhook_deliveries.id'],
            name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'),
            ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts')),
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_delivery_id'), ['delivery_id'],
                              unique=False)
    op.create_table(
        'webhook_cursor',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_webhook_cursor')),
    )


def downgrade() -> None:
    op.drop_table('webhook_cursor')
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_delivery_id'))
    op.drop_table('webhook_attempts')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_resource')
        batch_op.drop_index('ix_webhook_deliveries_status_next')
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_subscriptions')
