"""Follow-ups: the purchase scan's click & collect branch (status = 'collected' and
collected_at since two days) reads the pickups handed over lately by an index on
(status, collected_at) — on PostgreSQL partial: only handed-over orders have
collected_at — instead of every collected order (the scan's other branch reads
ix_orders_created_at). And each follow-up sequence's refill reminder lead time, the days
before the expected run-out (it was 5 for every sequence: existing ones keep 5).

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
    with op.batch_alter_table('followup_sequences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refill_lead_days', sa.Integer(), nullable=False,
                                      server_default='5'))
    op.create_index('ix_orders_status_collected', 'orders', ['status', 'collected_at'],
                    postgresql_where=sa.text('collected_at IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('followup_sequences', schema=None) as batch_op:
        batch_op.drop_column('refill_lead_days')
    op.drop_index('ix_orders_status_collected', table_name='orders')
