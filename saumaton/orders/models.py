"""The one order book: every channel's orders, with prices and VAT frozen at sale."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_channel_created", "channel_id", "created_at"),
                      Index("ix_orders_status_payment_due", "status", "payment_due_at"),
                      Index("ix_orders_location_status", "location_id", "status"),
                      # Reports read orders by business day (sold_at, else created_at).
                      Index("ix_orders_created_at", "created_at"),
                      Index("ix_orders_sold_at", "sold_at"),
                      # The follow-up scan's click & collect branch: pickups handed over
                      # lately (followups.schedule.due_orders filters status = collected
                      # and collected_at >=; its other branch reads ix_orders_created_at).
                      # On PostgreSQL only handed-over orders are in it (migration 0027).
                      Index("ix_orders_status_collected", "status", "collected_at",
                            postgresql_where=text("collected_at IS NOT NULL")))
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id"), nullable=True, index=True
    )
    # An orders.lifecycle.OrderStatus value; it changes only through orders.lifecycle.
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    subtotal_cents: Mapped[int] = mapped_column(Integer)  # before discounts
    discount_cents: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)  # VAT included
    vat_cents: Mapped[int] = mapped_column(Integer)
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Web orders: how to reach the buyer and get the goods to them.
    email: Mapped[str] = mapped_column(String(320), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str] = mapped_column(String(2), default="fi")
    # home | pickup (at location_id); None for a sale in the store
    delivery_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delivery_fee_cents: Mapped[int] = mapped_column(Integer, default=0)  # VAT incl.
    delivery_vat_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    delivery_vat_cents: Mapped[int] = mapped_column(Integer, default=0)
    # {name, street, postcode, city, country}
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The secret in the order status link (e-mail, confirmation page).
    access_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Pending web orders: unpaid by then, the order is cancelled and its stock released.
    payment_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Store sales: the cash drawer session the sale went into.
    drawer_session_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("drawer_sessions.id"), nullable=True, index=True)
    # Made on a till without network and synced later; sold_at is the till's clock.
    offline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sold_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The receipt number the till printed offline, e.g. "K1-000017".
    client_ref: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # Space-separated flags for a person to look at: negative_stock price_mismatch
    # card_unconfirmed.
    flags: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Why a manual order discount was given (spread over the lines' manual discounts).
    discount_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Click & collect: handed over to the customer.
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    collected_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # A till sale's receipt number from its register's own sequence ("1-000042").
    receipt_no: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # Fulfilment of web orders (orders.lifecycle): when each step happened.
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    packed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    carrier: Mapped[str] = mapped_column(String(60), default="", server_default="")
    tracking_number: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # Click & collect: the reminder before the hold ends was sent.
    pickup_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Money given back so far (every refund method); never above paid_cents.
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class OrderLine(Base):
    __tablename__ = "order_lines"
    # By (variant, order): an item's lines within a range of orders (the suggestions'
    # "bought together" over the most recent orders, migration 0026), and any lookup
    # by variant.
    __table_args__ = (Index("ix_order_lines_variant_order", "variant_id", "order_id"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)  # list price, VAT incl.
    discount_cents: Mapped[int] = mapped_column(Integer)  # whole line
    total_cents: Mapped[int] = mapped_column(Integer)  # after discount, VAT incl.
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    vat_cents: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The part of discount_cents given by hand at the till (line and order discounts).
    manual_discount_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    discount_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Units taken back by returns; a return moves it with one conditional UPDATE
    # (returned_quantity + q <= quantity), so two tills never return the same unit.
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What one unit cost the shop at sale (the variant's cost_cents then, VAT excl.),
    # set by the order writer; NULL = unknown (margin reports count it apart).
    unit_cost_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # An endless-aisle sale at the till (tills.aisle): the customer took this line with
    # them (from the store's shelf); the order's other lines are still to come. Such a
    # line is never picked, shipped or handed over again.
    taken_at_sale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where the line came from: '' the buyer's own choice, 'upsell' a suggested add-on
    # taken with one click (saumaton.orders.suggestions): the reports count add-on sales.
    source: Mapped[str] = mapped_column(String(16), default="", server_default="")


class SaleVoid(Base):
    """Units scanned into a till's cart and taken out again before payment (a voided
    line, a lowered quantity, a cancelled sale); counted in the Z report."""

    __tablename__ = "sale_voids"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    drawer_session_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("drawer_sessions.id"), nullable=True, index=True)
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="SET NULL"), nullable=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)  # at the price shown, VAT incl.
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The till's key for the void (offline voids sync exactly once).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
