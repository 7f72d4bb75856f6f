"""The Z report of a cash drawer session (and the X report: the same figures for a
session that is still open).

Every figure is integer cents summed from the rows themselves: the till's sales
are the orders with the session's `drawer_session_id` in a sold-at-the-till state
(`SALE_STATES`: a sale returned later is still that day's sale); their lines give
the VAT per rate and the discounts, their payments the takings per method; the
voided lines and the cash movements are the session's own rows. At closing the
report is frozen as JSON on the session (`z_report`) with the store's next Z
number, so a reprint shows exactly what was printed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound
from saumaton.locations.models import Location
from saumaton.orders.lifecycle import OrderStatus
from saumaton.orders.models import Order, OrderLine, SaleVoid
from saumaton.orders.services import order_number
from saumaton.payments.models import Payment, Refund
from saumaton.returns.models import Return, ReturnLine
from saumaton.tills.models import CashMovement, DrawerSession, Register
from saumaton.tills.receipts import receipt_seq

FLAGS = ("negative_stock", "price_mismatch", "card_unconfirmed")
# A till sale stays the day's sale when it is returned later (the refund is its own
# figure, on the day it is made).
# An endless-aisle sale (tills.aisle) was paid into the drawer too: it is the day's sale
# whatever its delivery has reached (paid … shipped / collected).
SALE_STATES = (OrderStatus.COMPLETED, OrderStatus.PARTLY_RETURNED, OrderStatus.RETURNED,
               OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.READY, OrderStatus.PACKED,
               OrderStatus.SHIPPED, OrderStatus.COLLECTED)


class VatRow(BaseModel):
    rate_bp: int
    net_cents: int
    vat_cents: int
    gross_cents: int


class Tender(BaseModel):
    """One payment method's takings."""

    count: int = 0
    amount_cents: int = 0  # applied to the sales


class CashTender(Tender):
    rounding_cents: int = 0  # Act 890/2000 rounding, into the drawer
    tendered_cents: int = 0  # handed over by the customers
    change_cents: int = 0  # given back

    @property
    def collected_cents(self) -> int:
        """What stayed in the drawer: the amount applied plus its rounding."""
        return self.amount_cents + self.rounding_cents


class CashRefunds(Tender):
    """Cash given back for returns: the amounts refunded and their 5-cent rounding."""

    rounding_cents: int = 0

    @property
    def paid_out_cents(self) -> int:
        return self.amount_cents + self.rounding_cents


class MovementRow(BaseModel):
    kind: str  # in | out
    amount_cents: int
    reason: str
    created_by: str
    created_at: datetime


class ZReport(BaseModel):
    """The figures of one drawer session. `z_number` is None for an X report."""

    z_number: int | None = None
    session_id: int
    status: str  # open | closed
    location_id: int
    store_code: str
    store_name: str
    register_id: int
    register_name: str
    opened_by: str
    opened_at: datetime
    closed_by: str = ""
    closed_at: datetime | None = None
    printed_at: datetime
    float_cents: int
    # Sales: one receipt per sale.
    sales_count: int = 0
    receipt_count: int = 0
    units_sold: int = 0
    first_receipt: str = ""
    last_receipt: str = ""
    gross_sales_cents: int = 0  # at list price (the orders' subtotal)
    campaign_discount_cents: int = 0
    manual_discount_count: int = 0  # lines with a discount given by hand
    manual_discount_cents: int = 0
    discount_cents: int = 0  # campaign + manual
    net_sales_cents: int = 0  # what the customers paid for (the orders' total)
    vat: list[VatRow] = Field(default_factory=list)
    vat_cents: int = 0
    # Payments.
    cash: CashTender = Field(default_factory=CashTender)
    card: Tender = Field(default_factory=Tender)  # captured
    card_to_confirm: Tender = Field(default_factory=Tender)  # taken offline
    points: Tender = Field(default_factory=Tender)  # loyalty points redeemed
    exchange: Tender = Field(default_factory=Tender)  # paid by goods returned (exchanges)
    # Refunds of returns taken at this till (any order's: a web order returned here too).
    return_count: int = 0
    returned_units: int = 0
    refund_cents: int = 0  # every method
    cash_refunds: CashRefunds = Field(default_factory=CashRefunds)
    card_refunds: Tender = Field(default_factory=Tender)
    other_refunds: dict[str, Tender] = Field(default_factory=dict)  # paytrail, store_credit…
    return_vat: list[VatRow] = Field(default_factory=list)  # of the goods taken back
    # Voided lines (taken out of a cart before payment).
    void_count: int = 0
    void_units: int = 0
    void_cents: int = 0
    # Cash put in and taken out, each with its reason.
    movements: list[MovementRow] = Field(default_factory=list)
    cash_in_cents: int = 0
    cash_out_cents: int = 0
    expected_cents: int = 0  # float + cash collected − cash refunded + cash in − cash out
    counted_cents: int | None = None
    difference_cents: int | None = None  # counted − expected
    offline_count: int = 0
    flagged_count: int = 0  # sales with any flag
    flags: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    note: str = ""

    @property
    def cash_in(self) -> list[MovementRow]:
        return [m for m in self.movements if m.kind == "in"]

    @property
    def cash_out(self) -> list[MovementRow]:
        return [m for m in self.movements if m.kind == "out"]

    @property
    def payments_cents(self) -> int:
        return (self.cash.amount_cents + self.card.amount_cents
                + self.card_to_confirm.amount_cents + self.points.amount_cents
                + self.exchange.amount_cents)


class ZReportSummary(BaseModel):
    """A line in the list of a store's Z reports."""

    z_number: int
    session_id: int
    register_name: str
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str
    net_sales_cents: int
    expected_cents: int
    counted_cents: int | None
    difference_cents: int | None


async def compute_report(s: AsyncSession, ds: DrawerSession, *, now: datetime | None = None
                         ) -> ZReport:
    """The session's figures as they stand in `s` (the report is not stored)."""
    register = await s.get(Register, ds.register_id)
    location = await s.get(Location, ds.location_id)
    assert register is not None and location is not None  # foreign keys
    report = ZReport(
        z_number=ds.z_number, session_id=ds.id, status=ds.status, location_id=location.id,
        store_code=location.code, store_name=location.name, register_id=register.id,
        register_name=register.name, opened_by=ds.opened_by, opened_at=ds.opened_at,
        closed_by=ds.closed_by, closed_at=ds.closed_at, printed_at=now or utcnow(),
        float_cents=ds.float_cents, counted_cents=ds.counted_cents, note=ds.note)

    orders = (await s.execute(
        select(Order.id, Order.subtotal_cents, Order.discount_cents, Order.total_cents,
               Order.vat_cents, Order.offline, Order.flags, Order.receipt_no)
        .where(Order.drawer_session_id == ds.id, Order.status.in_(SALE_STATES))
        .order_by(Order.id))).all()
    if orders:
        report.sales_count = report.receipt_count = len(orders)
        report.first_receipt, report.last_receipt = _receipt_range(
            [(o.id, o.receipt_no) for o in orders])
    for o in orders:
        report.gross_sales_cents += o.subtotal_cents
        report.discount_cents += o.discount_cents
        report.net_sales_cents += o.total_cents
        report.vat_cents += o.vat_cents
        report.offline_count += int(o.offline)
        flags = set(o.flags.split())
        report.flagged_count += int(bool(flags))
        for f in flags:
            report.flags[f] = report.flags.get(f, 0) + 1

    sales = (select(Order.id).where(Order.drawer_session_id == ds.id,
                                    Order.status.in_(SALE_STATES))).scalar_subquery()
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ln in (await s.execute(
        select(OrderLine.quantity, OrderLine.discount_cents, OrderLine.manual_discount_cents,
               OrderLine.total_cents, OrderLine.vat_rate_bp, OrderLine.vat_cents)
        .where(OrderLine.order_id.in_(sales)))).all():
        report.units_sold += ln.quantity
        report.campaign_discount_cents += ln.discount_cents - ln.manual_discount_cents
        report.manual_discount_cents += ln.manual_discount_cents
        report.manual_discount_count += int(ln.manual_discount_cents > 0)
        by_rate[ln.vat_rate_bp][0] += ln.total_cents
        by_rate[ln.vat_rate_bp][1] += ln.vat_cents
    report.vat = [VatRow(rate_bp=r, gross_cents=g, vat_cents=v, net_cents=g - v)
                  for r, (g, v) in sorted(by_rate.items(), reverse=True)]

    for p in (await s.execute(
        select(Payment.method, Payment.status, Payment.amount_cents, Payment.rounding_cents,
               Payment.tendered_cents, Payment.change_cents)
        .where(Payment.order_id.in_(sales)))).all():
        if p.method == "cash":
            c = report.cash
            c.count += 1
            c.amount_cents += p.amount_cents
            c.rounding_cents += p.rounding_cents
            collected = p.amount_cents + p.rounding_cents
            c.tendered_cents += p.tendered_cents if p.tendered_cents is not None else collected
            c.change_cents += p.change_cents
        else:
            t = (report.points if p.method == "points"
                 else report.exchange if p.method == "exchange"
                 else report.card_to_confirm if p.status == "to_confirm" else report.card)
            t.count += 1
            t.amount_cents += p.amount_cents

    voids = (await s.execute(
        select(func.count(), func.coalesce(func.sum(SaleVoid.quantity), 0),
               func.coalesce(func.sum(SaleVoid.amount_cents), 0))
        .where(SaleVoid.drawer_session_id == ds.id))).one()
    report.void_count, report.void_units, report.void_cents = (int(x) for x in voids)

    for m in (await s.scalars(select(CashMovement).where(CashMovement.session_id == ds.id)
                              .order_by(CashMovement.id))).all():
        report.movements.append(MovementRow(kind=m.kind, amount_cents=m.amount_cents,
                                            reason=m.reason, created_by=m.created_by,
                                            created_at=m.created_at))
        if m.kind == "in":
            report.cash_in_cents += m.amount_cents
        else:
            report.cash_out_cents += m.amount_cents
    await _refunds(s, ds.id, report)
    report.expected_cents = (report.float_cents + report.cash.collected_cents
                             - report.cash_refunds.paid_out_cents
                             + report.cash_in_cents - report.cash_out_cents)
    if report.counted_cents is not None:
        report.difference_cents = report.counted_cents - report.expected_cents
    return report


async def _refunds(s: AsyncSession, session_id: int, report: ZReport) -> None:
    """The session's refunds (by method) and the VAT of the goods taken back."""
    for r in (await s.execute(
        select(Refund.method, Refund.amount_cents, Refund.rounding_cents)
        .where(Refund.drawer_session_id == session_id))).all():
        report.refund_cents += r.amount_cents
        if r.method == "cash":
            report.cash_refunds.count += 1
            report.cash_refunds.amount_cents += r.amount_cents
            report.cash_refunds.rounding_cents += r.rounding_cents
            continue
        t = (report.card_refunds if r.method == "card"
             else report.other_refunds.setdefault(r.method, Tender()))
        t.count += 1
        t.amount_cents += r.amount_cents
    returns = (select(Return.id).where(Return.drawer_session_id == session_id)
               .scalar_subquery())
    report.return_count = int(await s.scalar(
        select(func.count()).where(Return.drawer_session_id == session_id)) or 0)
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ln in (await s.execute(
        select(ReturnLine.quantity, ReturnLine.refund_cents, ReturnLine.vat_rate_bp,
               ReturnLine.vat_cents).where(ReturnLine.return_id.in_(returns)))).all():
        report.returned_units += ln.quantity
        by_rate[ln.vat_rate_bp][0] += ln.refund_cents
        by_rate[ln.vat_rate_bp][1] += ln.vat_cents
    report.return_vat = [VatRow(rate_bp=r, gross_cents=g, vat_cents=v, net_cents=g - v)
                         for r, (g, v) in sorted(by_rate.items(), reverse=True)]


def _receipt_range(orders: Sequence[tuple[int, str]]) -> tuple[str, str]:
    """The session's first and last receipt number: its register's sequence (the
    orders' own numbers also count the webshop's). Sales from before the registers had
    sequences have none: then their order numbers."""
    numbered = sorted((seq, no) for _, no in orders if (seq := receipt_seq(no)) is not None)
    if numbered:
        return numbered[0][1], numbered[-1][1]
    return order_number(orders[0][0]), order_number(orders[-1][0])


def stored(data: dict[str, Any]) -> ZReport:
    return ZReport.model_validate(data)


async def z_report(session: AsyncSession, session_id: int) -> ZReport:
    """A closed session's Z report as printed at closing; for an open session, the
    figures so far (the X report)."""
    ds = await session.get(DrawerSession, session_id)
    if ds is None:
        raise NotFound(f"no drawer session {session_id}", code="drawer_not_found")
    if ds.status == "closed" and ds.z_report is not None:
        return stored(ds.z_report)
    return await compute_report(session, ds)


async def list_reports(session: AsyncSession, location_id: int, limit: int = 50,
                       before: int | None = None) -> list[ZReportSummary]:
    """The store's Z reports, newest first (numbered below `before` when given)."""
    older = [] if before is None else [DrawerSession.z_number < before]
    rows = (await session.scalars(
        select(DrawerSession)
        .where(DrawerSession.location_id == location_id, DrawerSession.z_number.is_not(None),
               *older)
        .order_by(DrawerSession.z_number.desc()).limit(max(1, min(limit, 500))))).all()
    out = []
    for ds in rows:
        r = stored(ds.z_report or {})
        assert r.z_number is not None
        out.append(ZReportSummary(
            z_number=r.z_number, session_id=r.session_id, register_name=r.register_name,
            opened_at=r.opened_at, closed_at=r.closed_at, closed_by=r.closed_by,
            net_sales_cents=r.net_sales_cents, expected_cents=r.expected_cents,
            counted_cents=r.counted_cents, difference_cents=r.difference_cents))
    return out


async def get_report(session: AsyncSession, location_id: int, z_number: int) -> ZReport:
    """The stored Z report number `z_number` of the store, for a reprint."""
    data = await session.scalar(
        select(DrawerSession.z_report).where(DrawerSession.location_id == location_id,
                                             DrawerSession.z_number == z_number))
    if data is None:
        raise NotFound(f"no Z report {z_number} at location {location_id}",
                       code="z_report_not_found")
    return stored(data)
