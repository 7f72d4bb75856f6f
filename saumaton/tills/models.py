"""Registers (one per cash drawer), drawer sessions from opening to the Z report, and
the cash that moves in or out of a drawer outside sales."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Register(Base):
    """A till with its own cash drawer at a store ("Kassa 1")."""

    __tablename__ = "registers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The register's own receipt sequence (Act 658/2013: an identification number per
    # receipt); the last number given, moved forward in the sale's transaction.
    last_receipt_no: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DrawerSession(Base):
    """One register's drawer from opening (the float) to closing (the count, the Z report).
    At most one session per register is open."""

    __tablename__ = "drawer_sessions"
    __table_args__ = (
        Index("uq_drawer_sessions_open_register", "register_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("uq_drawer_sessions_location_z", "location_id", "z_number", unique=True),
    )
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    register_id: Mapped[int] = mapped_column(ForeignKey("registers.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    float_cents: Mapped[int] = mapped_column(Integer, default=0)
    opened_by: Mapped[str] = mapped_column(String(200), default="")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by: Mapped[str] = mapped_column(String(200), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    counted_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expected_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Running number of the store's Z reports, given at closing.
    z_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The Z report as printed at closing, kept for reprints.
    z_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")


class CashMovement(Base):
    """Cash put into (kind 'in') or taken out of ('out') a drawer, with the reason."""

    __tablename__ = "cash_movements"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("drawer_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # in | out
    amount_cents: Mapped[int] = mapped_column(Integer)  # positive
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
