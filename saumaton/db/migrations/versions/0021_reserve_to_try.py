"""Reserve to try: a unit held at a store for a shopper, without payment.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('try_reservations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('stock_reservation_id', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_try_reservations_customer_id_customers'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'],
                            name=op.f('fk_try_reservations_location_id_locations')),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'],
                            name=op.f('fk_try_reservations_variant_id_variants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_try_reservations')),
    sa.UniqueConstraint('code', name=op.f('uq_try_reservations_code'))
    )
    with op.batch_alter_table('try_reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_try_reservations_customer_id'), ['customer_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_try_reservations_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_try_reservations_phone'), ['phone'], unique=False)
        batch_op.create_index('ix_try_reservations_location_status',
                              ['location_id', 'status'], unique=False)
        batch_op.create_index('ix_try_reservations_status_expires', ['status', 'expires_at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('try_reservations')
