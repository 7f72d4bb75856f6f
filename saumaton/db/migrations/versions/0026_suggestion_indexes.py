"""Add-on suggestions at scale: order lines by (variant, order), so that "bought
together" reads an item's lines within the most recent orders' range of ids instead of
every line of that item ever (it replaces the index on the variant alone: its leading
column serves every lookup by variant as before); and variants by lower(name), so that
a customer's shade finds its variants by index instead of lower() over every variant.

Revision ID: 0026
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.create_index('ix_order_lines_variant_order', ['variant_id', 'order_id'],
                              unique=False)
        batch_op.drop_index(batch_op.f('ix_order_lines_variant_id'))
    op.create_index('ix_variants_lower_name', 'variants', [sa.text('lower(name)')])


def downgrade() -> None:
    op.drop_index('ix_variants_lower_name', table_name='variants')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_lines_variant_id'), ['variant_id'],
                              unique=False)
        batch_op.drop_index('ix_order_lines_variant_order')
