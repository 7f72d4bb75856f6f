"""The store till: registers, cash drawer sessions and Z reports, cash movements,
voided lines, till sale details on orders (discounts, offline sales, handover), and
customer preferences and notes for the customer card.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_notes_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_notes'))
    )
    with op.batch_alter_table('customer_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_notes_customer_id'), ['customer_id'], unique=False)

    op.create_table('customer_preferences',
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=50), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_preferences_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'key', name=op.f('pk_customer_preferences'))
    )
    op.create_table('registers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_registers_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registers'))
    )
    with op.batch_alter_table('registers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registers_location_id'), ['location_id'], unique=False)

    op.create_table('drawer_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('register_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('float_cents', sa.Integer(), nullable=False),
    sa.Column('opened_by', sa.String(length=200), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('counted_cents', sa.Integer(), nullable=True),
    sa.Column('expected_cents', sa.Integer(), nullable=True),
    sa.Column('z_number', sa.Integer(), nullable=True),
    sa.Column('z_report', sa.JSON(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_drawer_sessions_location_id_locations')),
    sa.ForeignKeyConstraint(['register_id'], ['registers.id'], name=op.f('fk_drawer_sessions_register_id_registers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drawer_sessions'))
    )
    with op.batch_alter_table('drawer_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drawer_sessions_register_id'), ['register_id'], unique=False)
        batch_op.create_index('uq_drawer_sessions_location_z', ['location_id', 'z_number'], unique=True)
        batch_op.create_index('uq_drawer_sessions_open_register', ['register_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('cash_movements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['drawer_sessions.id'], name=op.f('fk_cash_movements_session_id_drawer_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_movements')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_cash_movements_idempotency_key'))
    )
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cash_movements_session_id'), ['session_id'], unique=False)

    op.create_table('sale_voids',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('drawer_session_id', sa.BigInteger(), nullable=True),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['drawer_session_id'], ['drawer_sessions.id'], name=op.f('fk_sale_voids_drawer_session_id_drawer_sessions')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_sale_voids_location_id_locations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_sale_voids_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], name=op.f('fk_sale_voids_variant_id_variants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_voids')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sale_voids_idempotency_key'))
    )
    with op.batch_alter_table('sale_voids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sale_voids_drawer_session_id'), ['drawer_session_id'], unique=False)

    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manual_discount_cents', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('discount_reason', sa.String(length=200), nullable=False, server_default=''))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drawer_session_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('offline', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('sold_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('client_ref', sa.String(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('flags', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('discount_reason', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('collected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('collected_by', sa.String(length=200), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_orders_drawer_session_id'), ['drawer_session_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_drawer_session_id_drawer_sessions'), 'drawer_sessions', ['drawer_session_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_drawer_session_id_drawer_sessions'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_drawer_session_id'))
        batch_op.drop_column('collected_by')
        batch_op.drop_column('collected_at')
        batch_op.drop_column('discount_reason')
        batch_op.drop_column('flags')
        batch_op.drop_column('client_ref')
        batch_op.drop_column('sold_at')
        batch_op.drop_column('offline')
        batch_op.drop_column('drawer_session_id')

    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('discount_reason')
        batch_op.drop_column('manual_discount_cents')

    with op.batch_alter_table('sale_voids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sale_voids_drawer_session_id'))

    op.drop_table('sale_voids')
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cash_movements_session_id'))

    op.drop_table('cash_movements')
    with op.batch_alter_table('drawer_sessions', schema=None) as batch_op:
        batch_op.drop_index('uq_drawer_sessions_open_register', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('uq_drawer_sessions_location_z')
        batch_op.drop_index(batch_op.f('ix_drawer_sessions_register_id'))

    op.drop_table('drawer_sessions')
    with op.batch_alter_table('registers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registers_location_id'))

    op.drop_table('registers')
    op.drop_table('customer_preferences')
    with op.batch_alter_table('customer_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_notes_customer_id'))

    op.drop_table('customer_notes')
