"""A return takes goods back from an order (at a till, by post, started online) and
refunds the price paid for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Return(Base):
    __tablename__ = "returns"
    # Reports read completed returns by business day (received_at, else created_at).
    __table_args__ = (Index("ix_returns_received_at", "received_at"),
                      Index("ix_returns_created_at", "created_at"))
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id"), nullable=True, index=True)
    # The code on a postal return's label (QR): found when the parcel is scanned.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    # requested (started online, goods on the way) | completed (goods in, refunded)
    # | cancelled
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # in_store | post
    channel: Mapped[str] = mapped_column(String(32))  # where it was started
    # Where the goods came back (restocked or written off there).
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    refund_method: Mapped[str] = mapped_column(String(16))
    refund_cents: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # Outside the return window only with a manager's reason (audited).
    override_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    drawer_session_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("drawer_sessions.id"), nullable=True, index=True)
    # The credit receipt's number (the till's receipt sequence when taken at a till).
    receipt_no: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # An exchange: the new sale made in the same transaction.
    exchange_order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReturnLine(Base):
    __tablename__ = "return_lines"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    return_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("order_lines.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)  # the order line's number
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    # The price paid for these units (after every discount), VAT incl., and its VAT.
    refund_cents: Mapped[int] = mapped_column(Integer)
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    vat_cents: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200), default="")
    # Back on the shelf (a "return" stock movement) or written off (damaged).
    restock: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
