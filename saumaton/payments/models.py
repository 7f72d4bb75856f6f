"""Payments against orders, in integer cents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(16))  # cash | card
    status: Mapped[str] = mapped_column(String(16), default="captured")
    amount_cents: Mapped[int] = mapped_column(Integer)  # applied to the order
    # Cash only: rounded amount due minus exact due (Act 890/2000); into the drawer.
    rounding_cents: Mapped[int] = mapped_column(Integer, default=0)
    tendered_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    change_cents: Mapped[int] = mapped_column(Integer, default=0)
    reference: Mapped[str] = mapped_column(String(100), default="")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaytrailPayment(Base):
    """One attempt to pay a web order through Paytrail (a shopper may retry)."""

    __tablename__ = "paytrail_payments"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    stamp: Mapped[str] = mapped_column(String(64), unique=True)  # ours, unique per attempt
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    # new | ok | fail | pending | delayed | cancelled (Paytrail's statuses; new = created)
    status: Mapped[str] = mapped_column(String(16), default="new")
    provider: Mapped[str] = mapped_column(String(32), default="")
    href: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    """Money given back to a customer for an order: to the original Paytrail payment,
    at the card terminal, in cash from the drawer, as store credit or onto a gift card.

    Paytrail refunds go out from a background job (status due → pending → ok | fail);
    the refund stamp makes a retried request one refund at Paytrail. Refunds at a till
    are done on the spot (status ok) and belong to the drawer session (X/Z reports)."""

    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    return_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("returns.id"), nullable=True, index=True)
    method: Mapped[str] = mapped_column(String(16))  # paytrail|card|cash|store_credit|gift_card
    status: Mapped[str] = mapped_column(String(16), default="ok")  # due|pending|ok|fail
    amount_cents: Mapped[int] = mapped_column(Integer)  # positive: given back
    # Cash only: the rounded amount paid out minus the exact amount (Act 890/2000).
    rounding_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The Paytrail transaction refunded, the terminal's reference, the card's code.
    reference: Mapped[str] = mapped_column(String(100), default="", server_default="")
    refund_stamp: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    # Paytrail's own id for the refund (its answer and callbacks name it).
    provider_refund_id: Mapped[str | None] = mapped_column(String(64), nullable=True,
                                                           index=True)
    gift_card_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("gift_cards.id"), nullable=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    drawer_session_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("drawer_sessions.id"), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str] = mapped_column(String(300), default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
