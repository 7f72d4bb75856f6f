"""Endless aisle at the till: an order line the customer took with them at the sale
(the rest of the order is still to come), and a stock transfer tied to the order it
brings goods for.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('taken_at_sale', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('stock_transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_id', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_stock_transfers_order_id'), ['order_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_stock_transfers_order_id_orders'),
                                    'orders', ['order_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('stock_transfers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_stock_transfers_order_id_orders'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_stock_transfers_order_id'))
        batch_op.drop_column('order_id')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('taken_at_sale')
