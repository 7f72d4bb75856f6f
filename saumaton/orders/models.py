"""The one order book: every channel's orders, with prices and VAT frozen at sale."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_channel_created", "channel_id", "created_at"),
                      Index("ix_orders_status_payment_due", "status", "payment_due_at"))
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id"), nullable=True, index=True
    )
    # pending (awaiting payment) | paid | completed (paid and handed over) | cancelled
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


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
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
