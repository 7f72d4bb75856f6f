"""Follow-ups: e-mail sequences per product category, their steps, the scheduled mails
(steps and refill reminders) and the orders the scheduler has looked at.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('followup_sequences',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('refill_days', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'],
                            name=op.f('fk_followup_sequences_category_id_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followup_sequences'))
    )
    with op.batch_alter_table('followup_sequences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followup_sequences_category_id'), ['category_id'],
                              unique=False)
    op.create_table('followup_steps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sequence_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('delay_days', sa.Integer(), nullable=False),
    sa.Column('subject_fi', sa.String(length=200), nullable=False),
    sa.Column('body_fi', sa.Text(), nullable=False),
    sa.Column('subject_en', sa.String(length=200), nullable=False),
    sa.Column('body_en', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['sequence_id'], ['followup_sequences.id'],
                            name=op.f('fk_followup_steps_sequence_id_followup_sequences'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followup_steps'))
    )
    with op.batch_alter_table('followup_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followup_steps_sequence_id'), ['sequence_id'],
                              unique=False)
    op.create_table('followups',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('sequence_id', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('due_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('interval_days', sa.Integer(), nullable=True),
    sa.Column('interval_source', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('mail_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_followups_customer_id_customers'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                            name=op.f('fk_followups_order_id_orders')),
    sa.ForeignKeyConstraint(['sequence_id'], ['followup_sequences.id'],
                            name=op.f('fk_followups_sequence_id_followup_sequences'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['step_id'], ['followup_steps.id'],
                            name=op.f('fk_followups_step_id_followup_steps'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followups')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_followups_dedupe_key'))
    )
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followups_customer_id'), ['customer_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_followups_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_followups_sequence_id'), ['sequence_id'],
                              unique=False)
        batch_op.create_index('ix_followups_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_followups_customer_product',
                              ['customer_id', 'product_id', 'status'], unique=False)
    op.create_table('followup_orders',
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('scheduled_at', saumaton.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('scheduled', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                            name=op.f('fk_followup_orders_order_id_orders')),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_followup_orders'))
    )


def downgrade() -> None:
    op.drop_table('followup_orders')
    op.drop_table('followups')
    op.drop_table('followup_steps')
    op.drop_table('followup_sequences')
