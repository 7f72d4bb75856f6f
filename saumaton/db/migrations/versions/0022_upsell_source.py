"""Upsell: where an order line and a cart line came from ('' = the shopper's or the
cashier's own choice, 'upsell' = a suggested add-on taken with one click).

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='',
                                      nullable=False))
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.drop_column('source')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('source')
