"""Reserve to try: the store's list of reservations closed lately (sold, released, not
collected) reads them by store and closing time; a reservation made through the API
keeps its Idempotency-Key, so a retry returns it instead of holding a second unit.

Revision ID: 0025
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_try_reservations_location_closed', 'try_reservations',
                    ['location_id', 'closed_at'])
    with op.batch_alter_table('try_reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=200),
                                      nullable=True))
        batch_op.create_unique_constraint('uq_try_reservations_idempotency_key',
                                          ['idempotency_key'])


def downgrade() -> None:
    with op.batch_alter_table('try_reservations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_try_reservations_idempotency_key', type_='unique')
        batch_op.drop_column('idempotency_key')
    op.drop_index('ix_try_reservations_location_closed', table_name='try_reservations')
