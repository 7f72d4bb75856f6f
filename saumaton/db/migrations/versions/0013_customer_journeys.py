"""Reports: each customer's channel journey (first channel, later channels, spend) and funnel device.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_journey_refresh',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('watermark_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('refreshed_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('full_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_journey_refresh'))
    )
    op.create_table('customer_channels',
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('first_channel_id', sa.Integer(), nullable=False),
    sa.Column('first_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('revenue_cents', sa.BigInteger(), nullable=False),
    sa.Column('later', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_customer_channels_channel_id_channels')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_channels_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'channel_id', name=op.f('pk_customer_channels'))
    )
    with op.batch_alter_table('customer_channels', schema=None) as batch_op:
        batch_op.create_index('ix_customer_channels_matrix', ['later', 'first_channel_id', 'channel_id'], unique=False)

    op.create_table('customer_journeys',
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('first_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_channel_id', sa.Integer(), nullable=False),
    sa.Column('first_location_id', sa.Integer(), nullable=True),
    sa.Column('first_kind', sa.String(length=16), nullable=False),
    sa.Column('second_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('second_days', sa.Integer(), nullable=True),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('revenue_cents', sa.BigInteger(), nullable=False),
    sa.Column('kinds_mask', sa.Integer(), nullable=False),
    sa.Column('later_kinds_mask', sa.Integer(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_journeys_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['first_channel_id'], ['channels.id'], name=op.f('fk_customer_journeys_first_channel_id_channels')),
    sa.ForeignKeyConstraint(['first_location_id'], ['locations.id'], name=op.f('fk_customer_journeys_first_location_id_locations')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_journeys'))
    )
    with op.batch_alter_table('customer_journeys', schema=None) as batch_op:
        batch_op.create_index('ix_customer_journeys_first_channel', ['first_channel_id', 'kinds_mask', 'later_kinds_mask'], unique=False)

    with op.batch_alter_table('analytics_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device', sa.String(length=8), server_default='unknown', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('analytics_events', schema=None) as batch_op:
        batch_op.drop_column('device')

    with op.batch_alter_table('customer_journeys', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_journeys_first_channel')

    op.drop_table('customer_journeys')
    with op.batch_alter_table('customer_channels', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_channels_matrix')

    op.drop_table('customer_channels')
    op.drop_table('customer_journey_refresh')
