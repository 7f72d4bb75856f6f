"""Customer segments, a campaign's segment limit, the newest-consent index.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_customer_segments_name'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('segment_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_campaigns_segment_id'), ['segment_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_campaigns_segment_id_customer_segments'),
                                    'customer_segments', ['segment_id'], ['id'])
    with op.batch_alter_table('customer_consents', schema=None) as batch_op:
        batch_op.create_index('ix_customer_consents_newest', ['customer_id', 'kind', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_consents_newest')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_campaigns_segment_id_customer_segments'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_campaigns_segment_id'))
        batch_op.drop_column('segment_id')
    op.drop_table('customer_segments')
