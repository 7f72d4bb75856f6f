"""Follow-ups: the purchase scan's click & collect branch (status = 'collected' and
collected_at since two days) reads the pickups handed over lately by an index on
(status, collected_at) — on PostgreSQL partial: only handed-over orders have
collected_at — instead of every collected order (the scan's other branch reads
ix_orders_created_at).

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0027'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_orders_status_collected', 'orders', ['status', 'collected_at'],
                    postgresql_where=sa.text('collected_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_orders_status_collected', table_name='orders')
