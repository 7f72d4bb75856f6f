"""A reservation to try a product in a store. The unit itself is held by a
`StockReservation` (reference ``try:<code>``), so it counts against availability
everywhere like any other hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class TryReservation(Base):
    __tablename__ = "try_reservations"
    __table_args__ = (
        Index("ix_try_reservations_status_expires", "status", "expires_at"),
        Index("ix_try_reservations_location_status", "location_id", "status"),
        Index("ix_try_reservations_location_closed", "location_id", "closed_at"),
    )
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    stock_reservation_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), default="", index=True)
    email: Mapped[str] = mapped_column(String(320), default="", index=True)
    language: Mapped[str] = mapped_column(String(8), default="fi")
    # active | sold | released | expired (tryon.services.TryStatus)
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str] = mapped_column(String(200), default="")
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    # The API caller's Idempotency-Key ("api:<key>"): a retry returns this reservation.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True,
                                                        nullable=True)
