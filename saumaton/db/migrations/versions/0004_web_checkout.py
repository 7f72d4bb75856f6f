"""Web checkout (carts, delivery, Paytrail attempts), customer accounts, the mail
queue, analytics events and product images.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("analytics_events",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("channel", sa.String(length=32), nullable=False),
    sa.Column("visitor_id", sa.String(length=64), nullable=True),
    sa.Column("customer_id", sa.BigInteger(), nullable=True),
    sa.Column("order_id", sa.BigInteger(), nullable=True),
    sa.Column("variant_id", sa.Integer(), nullable=True),
    sa.Column("path", sa.String(length=300), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_events"))
    )
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_events_kind_at", ["kind", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_analytics_events_visitor_id"), ["visitor_id"], unique=False)

    op.create_table("outgoing_mail",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("reference", sa.String(length=100), nullable=False),
    sa.Column("to_addr", sa.String(length=320), nullable=False),
    sa.Column("subject", sa.String(length=300), nullable=False),
    sa.Column("body_text", sa.Text(), nullable=False),
    sa.Column("body_html", sa.Text(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.String(length=500), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_mail"))
    )
    with op.batch_alter_table("outgoing_mail", schema=None) as batch_op:
        batch_op.create_index("ix_outgoing_mail_status_next", ["status", "next_attempt_at"], unique=False)

    op.create_table("account_tokens",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("customer_id", sa.BigInteger(), nullable=False),
    sa.Column("purpose", sa.String(length=16), nullable=False),
    sa.Column("token_hash", sa.String(length=64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_account_tokens_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
    sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash"))
    )
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_tokens_customer_id"), ["customer_id"], unique=False)

    op.create_table("carts",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("token", sa.String(length=64), nullable=False),
    sa.Column("customer_id", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_carts_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
    sa.UniqueConstraint("token", name=op.f("uq_carts_token"))
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_carts_customer_id"), ["customer_id"], unique=False)

    op.create_table("customer_accounts",
    sa.Column("customer_id", sa.BigInteger(), nullable=False),
    sa.Column("email", sa.String(length=320), nullable=False),
    sa.Column("password_hash", sa.String(length=200), nullable=False),
    sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_customer_accounts_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_accounts")),
    sa.UniqueConstraint("email", name=op.f("uq_customer_accounts_email"))
    )
    op.create_table("customer_addresses",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("customer_id", sa.BigInteger(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("street", sa.String(length=200), nullable=False),
    sa.Column("postcode", sa.String(length=16), nullable=False),
    sa.Column("city", sa.String(length=100), nullable=False),
    sa.Column("country", sa.String(length=2), nullable=False),
    sa.Column("phone", sa.String(length=32), nullable=False),
    sa.Column("is_default", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_customer_addresses_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_addresses"))
    )
    with op.batch_alter_table("customer_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_addresses_customer_id"), ["customer_id"], unique=False)

    op.create_table("customer_consents",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("customer_id", sa.BigInteger(), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("granted", sa.Boolean(), nullable=False),
    sa.Column("channel", sa.String(length=32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_customer_consents_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_consents"))
    )
    with op.batch_alter_table("customer_consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_consents_customer_id"), ["customer_id"], unique=False)

    op.create_table("cart_lines",
    sa.Column("cart_id", sa.BigInteger(), nullable=False),
    sa.Column("variant_id", sa.Integer(), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["cart_id"], ["carts.id"], name=op.f("fk_cart_lines_cart_id_carts"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["variant_id"], ["variants.id"], name=op.f("fk_cart_lines_variant_id_variants")),
    sa.PrimaryKeyConstraint("cart_id", "variant_id", name=op.f("pk_cart_lines"))
    )
    op.create_table("paytrail_payments",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("order_id", sa.BigInteger(), nullable=False),
    sa.Column("stamp", sa.String(length=64), nullable=False),
    sa.Column("transaction_id", sa.String(length=64), nullable=True),
    sa.Column("amount_cents", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("provider", sa.String(length=32), nullable=False),
    sa.Column("href", sa.String(length=500), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_paytrail_payments_order_id_orders"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_paytrail_payments")),
    sa.UniqueConstraint("stamp", name=op.f("uq_paytrail_payments_stamp")),
    sa.UniqueConstraint("transaction_id", name=op.f("uq_paytrail_payments_transaction_id"))
    )
    with op.batch_alter_table("paytrail_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paytrail_payments_order_id"), ["order_id"], unique=False)

    op.create_table("product_images",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("product_id", sa.Integer(), nullable=False),
    sa.Column("variant_id", sa.Integer(), nullable=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("url", sa.String(length=500), nullable=False),
    sa.Column("alt", sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_product_images_product_id_products")),
    sa.ForeignKeyConstraint(["variant_id"], ["variants.id"], name=op.f("fk_product_images_variant_id_variants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_product_images"))
    )
    with op.batch_alter_table("product_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_images_product_id"), ["product_id"], unique=False)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("language", sa.String(length=2), nullable=False, server_default="fi"))
        batch_op.add_column(sa.Column("delivery_method", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("delivery_fee_cents", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("delivery_vat_rate_bp", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("delivery_vat_cents", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("shipping_address", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("access_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("payment_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_orders_status_payment_due", ["status", "payment_due_at"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_payment_due")
        batch_op.drop_column("payment_due_at")
        batch_op.drop_column("access_token")
        batch_op.drop_column("shipping_address")
        batch_op.drop_column("delivery_vat_cents")
        batch_op.drop_column("delivery_vat_rate_bp")
        batch_op.drop_column("delivery_fee_cents")
        batch_op.drop_column("delivery_method")
        batch_op.drop_column("language")
        batch_op.drop_column("phone")
        batch_op.drop_column("email")

    with op.batch_alter_table("product_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_images_product_id"))

    op.drop_table("product_images")
    with op.batch_alter_table("paytrail_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paytrail_payments_order_id"))

    op.drop_table("paytrail_payments")
    op.drop_table("cart_lines")
    with op.batch_alter_table("customer_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_consents_customer_id"))

    op.drop_table("customer_consents")
    with op.batch_alter_table("customer_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_addresses_customer_id"))

    op.drop_table("customer_addresses")
    op.drop_table("customer_accounts")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carts_customer_id"))

    op.drop_table("carts")
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_tokens_customer_id"))

    op.drop_table("account_tokens")
    with op.batch_alter_table("outgoing_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_outgoing_mail_status_next")

    op.drop_table("outgoing_mail")
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_events_visitor_id"))
        batch_op.drop_index("ix_analytics_events_kind_at")

    op.drop_table("analytics_events")
