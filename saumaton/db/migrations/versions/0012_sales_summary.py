"""Reports: the daily sales summaries the sales reports read (per channel, per variant) (kept by the reports job),
the unit cost frozen on each order line at sale (gross margin), and indexes for reading
orders and returns by business day.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sales_daily',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('location_id', sa.Integer(), nullable=True),
        sa.Column('fulfil_location_id', sa.Integer(), nullable=True),
        sa.Column('vat_rate_bp', sa.Integer(), nullable=False),
        sa.Column('gross_cents', sa.BigInteger(), nullable=False),
        sa.Column('vat_cents', sa.BigInteger(), nullable=False),
        sa.Column('costed_net_cents', sa.BigInteger(), nullable=False),
        sa.Column('cost_cents', sa.BigInteger(), nullable=False),
        sa.Column('units', sa.BigInteger(), nullable=False),
        sa.Column('orders', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_daily')),
    )
    op.create_index('ix_sales_daily_day', 'sales_daily', ['day', 'kind'], unique=False)
    op.create_table(
        'sales_daily_items',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('variant_id', sa.Integer(), nullable=False),
        sa.Column('location_id', sa.Integer(), nullable=True),
        sa.Column('fulfil_location_id', sa.Integer(), nullable=True),
        sa.Column('units', sa.BigInteger(), nullable=False),
        sa.Column('gross_cents', sa.BigInteger(), nullable=False),
        sa.Column('vat_cents', sa.BigInteger(), nullable=False),
        sa.Column('costed_net_cents', sa.BigInteger(), nullable=False),
        sa.Column('cost_cents', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_daily_items')),
    )
    op.create_index('ix_sales_daily_items_day', 'sales_daily_items', ['day'], unique=False)
    op.create_table(
        'sales_daily_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('refreshed_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_sales_daily_days')),
    )
    with op.batch_alter_table('order_lines') as batch_op:
        batch_op.add_column(sa.Column('unit_cost_cents', sa.Integer(), nullable=True))
    op.create_index('ix_orders_created_at', 'orders', ['created_at'], unique=False)
    op.create_index('ix_orders_sold_at', 'orders', ['sold_at'], unique=False)
    op.create_index('ix_returns_received_at', 'returns', ['received_at'], unique=False)
    op.create_index('ix_returns_created_at', 'returns', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_returns_created_at', table_name='returns')
    op.drop_index('ix_returns_received_at', table_name='returns')
    op.drop_index('ix_orders_sold_at', table_name='orders')
    op.drop_index('ix_orders_created_at', table_name='orders')
    with op.batch_alter_table('order_lines') as batch_op:
        batch_op.drop_column('unit_cost_cents')
    op.drop_table('sales_daily_days')
    op.drop_index('ix_sales_daily_items_day', table_name='sales_daily_items')
    op.drop_table('sales_daily_items')
    op.drop_index('ix_sales_daily_day', table_name='sales_daily')
    op.drop_table('sales_daily')
