"""Imported Paytrail settlements, their lines, and the report requests sent to Paytrail.

Money is integer cents. A settlement is unique on Paytrail's settlement id, so an import
that is retried (a re-sent report callback, the same file uploaded twice) finds the
settlement already there and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class PaytrailSettlement(Base):
    """One lump-sum payout from Paytrail to the shop's bank account."""

    __tablename__ = "paytrail_settlements"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    paytrail_id: Mapped[str] = mapped_column(String(40), unique=True)  # Paytrail's id
    # settlementReference: the bank reference the payout arrives with.
    reference: Mapped[str] = mapped_column(String(40), default="")
    settled_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(8))  # api | file
    filename: Mapped[str] = mapped_column(String(200), default="")
    payments_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # positive: deducted
    fees_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # fees + commissions
    # The payout the report states (an envelope's "payout"), if it states one.
    stated_payout_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # What hit the bank, entered by finance (optional).
    bank_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    discrepancy_count: Mapped[int] = mapped_column(Integer, default=0)
    imported_by: Mapped[str] = mapped_column(String(200), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def payout_cents(self) -> int:
        """Payments − refunds − fees: what Paytrail should have paid out."""
        return self.payments_cents - self.refunds_cents - self.fees_cents

    @property
    def payout_difference(self) -> int:
        """What the report or the bank says minus our payout (0 when they agree)."""
        for v in (self.bank_cents, self.stated_payout_cents):
            if v is not None and v != self.payout_cents:
                return v - self.payout_cents
        return 0

    @property
    def payout_ok(self) -> bool:
        return all(v is None or v == self.payout_cents
                   for v in (self.stated_payout_cents, self.bank_cents))


class SettlementLine(Base):
    """A payment or refund in a settlement, matched to ours or a discrepancy."""

    __tablename__ = "paytrail_settlement_lines"
    __table_args__ = (Index("ix_paytrail_settlement_lines_settlement_state",
                            "settlement_id", "state"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    settlement_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("paytrail_settlements.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)  # the row in the report (1 = first)
    kind: Mapped[str] = mapped_column(String(8))  # payment | refund
    stamp: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(String(200), default="")
    # Paytrail's transaction id or the archive number the report names.
    transaction_id: Mapped[str] = mapped_column(String(200), default="")
    original_reference: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(32), default="")  # Paytrail's status string
    entry_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # positive, refunds too
    fee_cents: Mapped[int] = mapped_column(Integer, default=0)  # paymentMethodFee
    commission_cents: Mapped[int] = mapped_column(Integer, default=0)
    shop_commission_cents: Mapped[int] = mapped_column(Integer, default=0)
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paytrail_payment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True,
                                                            index=True)
    refund_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(12), default="matched")  # | discrepancy
    # settled_unknown | amount_mismatch | status_mismatch | duplicate ('' when matched)
    cause: Mapped[str] = mapped_column(String(24), default="")


class SettlementReportRequest(Base):
    """A settlement report asked from Paytrail; it arrives at the callback URL that
    carries `token` (unguessable: the callback's only credential)."""

    __tablename__ = "paytrail_settlement_requests"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    paytrail_id: Mapped[str] = mapped_column(String(40), index=True)
    reference: Mapped[str] = mapped_column(String(40), default="")
    settled_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    request_id: Mapped[str] = mapped_column(String(64), default="")  # Paytrail's requestId
    status: Mapped[str] = mapped_column(String(12), default="requested")  # | imported | failed
    error: Mapped[str] = mapped_column(String(300), default="")
    settlement_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
