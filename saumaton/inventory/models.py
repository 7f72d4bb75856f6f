"""Stock: levels per variant × location, the append-only movement ledger, reservations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
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


class StockTransfer(Base):
    """Goods sent from one location to another. Sending takes them off the sender's
    shelf (a transfer_out movement); until the receiver posts what arrived they are in
    transit, sellable nowhere. A difference at receipt is recorded per line."""

    __tablename__ = "stock_transfers"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    from_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    to_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # requested | in_transit | received | cancelled
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")
    sent_by: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True,
                                                        nullable=True)
    # The order the goods are for (an endless-aisle sale collected at the receiving
    # store): on receipt they are held there for it.
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="SET NULL"), nullable=True, index=True)


class StockTransferLine(Base):
    __tablename__ = "stock_transfer_lines"
    __table_args__ = (UniqueConstraint("transfer_id", "variant_id"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    transfer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stock_transfers.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    quantity_sent: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StockCount(Base):
    """A stock count of a whole location or a part of it (a shelf). Counted quantities
    are collected first; posting compares them with the ledger and writes count
    movements for the variances, after they have been reviewed."""

    __tablename__ = "stock_counts"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    scope: Mapped[str] = mapped_column(String(200), default="", server_default="")
    full: Mapped[bool] = mapped_column(Boolean, default=False)  # the whole location
    status: Mapped[str] = mapped_column(String(16))  # open | posted | cancelled
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    posted_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StockCountLine(Base):
    __tablename__ = "stock_count_lines"
    __table_args__ = (UniqueConstraint("count_id", "variant_id"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    count_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stock_counts.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    counted: Mapped[int] = mapped_column(Integer)
    expected: Mapped[int | None] = mapped_column(Integer, nullable=True)  # set when posted
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
