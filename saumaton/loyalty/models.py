"""The points ledger: append-only; a customer's balance is the sum of their entries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class LoyaltyEntry(Base):
    """kind: earn (points > 0, from a paid order), redeem (< 0, points used as payment),
    expire (< 0), reverse (< 0, a return or a refund takes back what was earned),
    adjust (either sign, by staff with a reason), refund (> 0, redeemed points given
    back when an order paid with points is cancelled or returned).

    `key` makes every write idempotent (e.g. "earn:order:123"): an offline sale
    synced twice, a payment callback delivered three times, earn once."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (Index("ix_loyalty_entries_customer_created", "customer_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="SET NULL"), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    # Earned points lapse at this time unless used (first in, first out).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
