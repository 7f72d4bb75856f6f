"""Stock: levels per variant × location, the append-only movement ledger, reservations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class StockLevel(Base):
    """Derived state: on_hand must equal the sum of the ledger (`saumaton check`)."""

    __tablename__ = "stock_levels"
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    # Set when a sale took the level below zero: the shelf needs a count.
    needs_count: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockMovement(Base):
    """One change of on-hand stock. Rows are only ever inserted."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_variant_location", "variant_id", "location_id"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[str] = mapped_column(String(16))  # receipt|sale|return|transfer|count|adjustment
    quantity: Mapped[int] = mapped_column(Integer)  # signed
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(String(100), default="")
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockReservation(Base):
    __tablename__ = "stock_reservations"
    __table_args__ = (Index("ix_stock_reservations_status_expires", "status", "expires_at"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(100), default="", index=True)
    # active | released | consumed | expired
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
