"""Paytrail settlements imported for reconciliation, their lines and discrepancies.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import saumaton.db.base

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UTC = saumaton.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'paytrail_settlements',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('paytrail_id', sa.String(length=40), nullable=False),
        sa.Column('reference', sa.String(length=40), nullable=False),
        sa.Column('settled_on', sa.Date(), nullable=True),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('payments_cents', sa.BigInteger(), nullable=False),
        sa.Column('refunds_cents', sa.BigInteger(), nullable=False),
        sa.Column('fees_cents', sa.BigInteger(), nullable=False),
        sa.Column('stated_payout_cents', sa.BigInteger(), nullable=True),
        sa.Column('bank_cents', sa.BigInteger(), nullable=True),
        sa.Column('line_count', sa.Integer(), nullable=False),
        sa.Column('discrepancy_count', sa.Integer(), nullable=False),
        sa.Column('imported_by', sa.String(length=200), nullable=False),
        sa.Column('imported_at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_paytrail_settlements')),
        sa.UniqueConstraint('paytrail_id', name=op.f('uq_paytrail_settlements_paytrail_id')),
    )
    op.create_index(op.f('ix_paytrail_settlements_settled_on'), 'paytrail_settlements',
                    ['settled_on'], unique=False)
    op.create_table(
        'paytrail_settlement_lines',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('settlement_id', sa.BigInteger(), nullable=False),
        sa.Column('row', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('stamp', sa.String(length=200), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('transaction_id', sa.String(length=200), nullable=False),
        sa.Column('original_reference', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('entry_date', sa.Date(), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('fee_cents', sa.Integer(), nullable=False),
        sa.Column('commission_cents', sa.Integer(), nullable=False),
        sa.Column('shop_commission_cents', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.BigInteger(), nullable=True),
        sa.Column('paytrail_payment_id', sa.BigInteger(), nullable=True),
        sa.Column('refund_id', sa.BigInteger(), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('cause', sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(['settlement_id'], ['paytrail_settlements.id'],
                                name=op.f('fk_paytrail_settlement_lines_settlement_id_'
                                          'paytrail_settlements'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_paytrail_settlement_lines')),
    )
    op.create_index('ix_paytrail_settlement_lines_settlement_state',
                    'paytrail_settlement_lines', ['settlement_id', 'state'], unique=False)
    op.create_index(op.f('ix_paytrail_settlement_lines_paytrail_payment_id'),
                    'paytrail_settlement_lines', ['paytrail_payment_id'], unique=False)
    op.create_index(op.f('ix_paytrail_settlement_lines_refund_id'),
                    'paytrail_settlement_lines', ['refund_id'], unique=False)
    op.create_table(
        'paytrail_settlement_requests',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('paytrail_id', sa.String(length=40), nullable=False),
        sa.Column('reference', sa.String(length=40), nullable=False),
        sa.Column('settled_on', sa.Date(), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('error', sa.String(length=300), nullable=False),
        sa.Column('settlement_id', sa.BigInteger(), nullable=True),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('requested_at', UTC, nullable=False),
        sa.Column('updated_at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_paytrail_settlement_requests')),
        sa.UniqueConstraint('token', name=op.f('uq_paytrail_settlement_requests_token')),
    )
    op.create_index(op.f('ix_paytrail_settlement_requests_paytrail_id'),
                    'paytrail_settlement_requests', ['paytrail_id'], unique=False)


def downgrade() -> None:
    op.drop_table('paytrail_settlement_requests')
    op.drop_table('paytrail_settlement_lines')
    op.drop_table('paytrail_settlements')
