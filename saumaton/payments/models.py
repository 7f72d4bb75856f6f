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
