"""The card terminal's report rows (each matched to at most one card payment or card
refund) and the resolutions of the offline sales' flags (orders.flags itself is never
rewritten: it is what the till said)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime
from saumaton.orders.models import Order
from saumaton.payments.models import Payment, Refund


class TerminalImport(Base):
    """One upload of a terminal's daily report that brought new rows."""

    __tablename__ = "terminal_imports"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(300))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    row_count: Mapped[int] = mapped_column(Integer)  # rows in the file
    new_count: Mapped[int] = mapped_column(Integer)  # rows not seen before
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TerminalRow(Base):
    """A purchase or refund as the card terminal reported it. Matched to the till's card
    payment (`payment_id`) or card refund (`refund_id`) by `cardcash.terminal_reports`;
    `confirmed` when the match turned an offline (`to_confirm`) payment captured."""

    __tablename__ = "terminal_rows"
    __table_args__ = (
        UniqueConstraint("reference", "terminal_id", "kind",
                         name="uq_terminal_rows_reference"),
        Index("ix_terminal_rows_location_day", "location_id", "business_day"),
    )
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("terminal_imports.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    business_day: Mapped[date] = mapped_column(Date)  # the terminal's local date
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    terminal_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))  # purchase | refund
    amount_cents: Mapped[int] = mapped_column(Integer)  # positive
    card_brand: Mapped[str] = mapped_column(String(20))
    masked_pan: Mapped[str] = mapped_column(String(19))
    auth_code: Mapped[str] = mapped_column(String(12), default="")
    reference: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("payments.id"), nullable=True, unique=True)
    refund_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("refunds.id"), nullable=True, unique=True)
    matched_by: Mapped[str] = mapped_column(String(16), default="")  # reference | amount_time
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed_by: Mapped[str] = mapped_column(String(200), default="")


class FlagResolution(Base):
    """A person's (or the terminal report's) answer to one flag of one order."""

    __tablename__ = "flag_resolutions"
    __table_args__ = (UniqueConstraint("order_id", "flag",
                                       name="uq_flag_resolutions_order_flag"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    flag: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(500))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_by: Mapped[str] = mapped_column(String(200))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The review list reads the few flagged orders of a store and period; the index holds
# only those (orders.flags is '' for nearly every order).
Index("ix_orders_flagged", Order.location_id, Order.created_at,
      sqlite_where=text("flags <> ''"), postgresql_where=text("flags <> ''"))
# A store's card payments and card refunds of a day, for matching a terminal report (the
# offline ones are recorded when the till syncs: on or after the day they were taken).
Index("ix_payments_card_location_created", Payment.location_id, Payment.created_at,
      sqlite_where=text("method = 'card'"), postgresql_where=text("method = 'card'"))
Index("ix_refunds_card_location_created", Refund.location_id, Refund.created_at,
      sqlite_where=text("method = 'card'"), postgresql_where=text("method = 'card'"))
