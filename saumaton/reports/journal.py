"""The daily journal for the accountant: per business day and location, every euro that
came in or went out and what it was for, with a balance check that must come to zero.

A *location* of the journal is where the money and the goods met: a store for its
till's sales (the channel `pos`), otherwise the sales channel itself (the webshop, the
service desk, the API), so a click & collect order stays a webshop row. A return counts
where it was taken back (`returns.location_id`; none: the order's own journal location)
and so do its refunds; payments count at their order's journal location. The gift card
and store credit ledger is the company's, one row set under the location `*`.

Which day: sales on `orders.sold_at` (else `created_at`), payments on
`payments.created_at`, returns on `returns.received_at` (else `created_at`), refunds
(status ok) on `refunds.created_at`, ledger entries on their `created_at` — each the
local calendar day in the shop's time zone (docs/journal.md, docs/reports.md).

The check: money in and out (payments + refunds, refunds negative) equals the revenue
and liability movements (sales, delivery, returns, gift cards sold, cash rounding) plus
the clearing rows that say which money belongs to another day's sale or to an order
that is not a sale. `check/difference` is what is left; on a sound day it is 0.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.core.errors import ValidationFailed
from saumaton.csvio.files import BOM, format_euros
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment, Refund
from saumaton.reports.period import Period
from saumaton.returns.models import Return, ReturnLine

# A journal is read for a day, a week, a month at most (it is a bookkeeping export).
MAX_JOURNAL_DAYS = 62
COMPANY = "*"  # the location of the ledger rows (gift cards, store credit)
NOT_SALES = ("pending", "cancelled")

# The order rows take in a location's block; anything unknown sorts after them.
SECTIONS = ("sales", "returns", "gift_cards", "rounding", "clearing", "payments", "refunds",
            "check", "liability")
# Sections whose rows make up the revenue and liability side of the check.
REVENUE_SECTIONS = ("sales", "returns", "gift_cards", "rounding", "clearing")
MONEY_SECTIONS = ("payments", "refunds")
PAYMENT_ORDER = ("cash", "card", "card_to_confirm", "paytrail", "gift_card", "store_credit",
                 "points", "exchange")
# Within a section: goods before delivery, sales' rounding before refunds', methods as
# above, anything else by its name.
KEY_ORDER = ("goods", "delivery", "sold", "sales", "refunds", "payments_not_sales_of_day",
             "sales_paid_other_day", "refunds_not_returns_of_day",
             "returns_refunded_other_day", *PAYMENT_ORDER)
LEDGER_KINDS = ("gift_card", "store_credit")
LEDGER_MOVES = ("issue", "credit", "refund", "spend", "expire", "void")

CSV_COLUMNS = ("date", "location", "location_name", "section", "key", "vat_rate", "net",
               "vat", "gross")


@dataclass(frozen=True)
class JournalLine:
    day: date
    location: str  # a store's code, a channel's code, or "*" (the company)
    location_name: str
    section: str
    key: str
    vat_rate_bp: int | None  # rows with VAT: 2550 = 25.5 %
    net_cents: int | None
    vat_cents: int | None
    gross_cents: int

    def as_dict(self) -> dict[str, object]:
        return {"date": self.day.isoformat(), "location": self.location,
                "location_name": self.location_name, "section": self.section,
                "key": self.key, "vat_rate_bp": self.vat_rate_bp,
                "net_cents": self.net_cents, "vat_cents": self.vat_cents,
                "gross_cents": self.gross_cents}


@dataclass
class Journal:
    period: Period
    lines: list[JournalLine]

    def days(self) -> list[date]:
        return sorted({ln.day for ln in self.lines})

    def locations(self, day: date) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for ln in self.lines:
            if ln.day == day:
                seen.setdefault(ln.location, ln.location_name)
        return list(seen.items())

    def block(self, day: date, location: str) -> list[JournalLine]:
        return [ln for ln in self.lines if ln.day == day and ln.location == location]

    def figure(self, day: date, location: str, section: str, key: str,
               vat_rate_bp: int | None = None) -> int:
        """One row's gross (0 when the row is absent); without a rate, every rate."""
        return sum(ln.gross_cents for ln in self.lines
                   if ln.day == day and ln.location == location and ln.section == section
                   and ln.key == key and (vat_rate_bp is None or ln.vat_rate_bp == vat_rate_bp))

    def differences(self) -> list[JournalLine]:
        return [ln for ln in self.lines if ln.key == "difference"]

    def as_dict(self) -> dict[str, object]:
        return {"first": self.period.first.isoformat(), "last": self.period.last.isoformat(),
                "columns": list(CSV_COLUMNS), "lines": [ln.as_dict() for ln in self.lines]}


def journal_period(first: date, last: date | None = None) -> Period:
    period = Period(first, last or first)
    if period.days > MAX_JOURNAL_DAYS:
        raise ValidationFailed(f"a journal spans at most {MAX_JOURNAL_DAYS} days",
                               code="period_too_long", field="until")
    return period


@dataclass
class _OrderInfo:
    location: str
    location_name: str
    sale_day: date | None  # None: not a sale (pending, cancelled)


@dataclass
class _Acc:
    """Sums per (day, location, section, key, rate): [net, vat, gross]."""

    names: dict[str, str] = field(default_factory=dict)
    rows: dict[tuple[date, str, str, str, int | None], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    with_vat: set[tuple[date, str, str, str, int | None]] = field(default_factory=set)

    def add(self, day: date, loc: str, section: str, key: str, gross: int, *,
            rate: int | None = None, vat: int | None = None) -> None:
        k = (day, loc, section, key, rate)
        row = self.rows[k]
        row[2] += gross
        if vat is not None:
            row[0] += gross - vat
            row[1] += vat
            self.with_vat.add(k)


class _Days:
    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)

    def __call__(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()


async def _order_infos(s: AsyncSession, order_ids: Iterable[int], day_of: _Days
                       ) -> dict[int, _OrderInfo]:
    ids = sorted(set(order_ids))
    out: dict[int, _OrderInfo] = {}
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        rows = (await s.execute(
            select(Order.id, Order.status, Order.sold_at, Order.created_at, Channel.kind,
                   Channel.code, Channel.name, Location.code, Location.name)
            .join(Channel, Channel.id == Order.channel_id)
            .outerjoin(Location, Location.id == Order.location_id)
            .where(Order.id.in_(chunk)))).all()
        for oid, status, sold_at, created_at, kind, ch_code, ch_name, loc_code, loc_name in rows:
            if kind == "pos" and loc_code is not None:
                where, name = str(loc_code), str(loc_name)
            else:
                where, name = str(ch_code), str(ch_name)
            sale_day = None if status in NOT_SALES else day_of(sold_at or created_at)
            out[int(oid)] = _OrderInfo(where, name, sale_day)
    return out


async def build_journal(s: AsyncSession, period: Period, tz: str, *,
                        locations: set[str] | None = None,
                        store_ids: set[int] | None = None) -> Journal:
    """The journal of `period`. `locations`: only these journal locations (codes);
    `store_ids`: a manager's stores — only those stores' rows, no channel or company rows
    (None: everything)."""
    start, end = period.bounds(tz)
    day_of = _Days(tz)
    acc = _Acc()
    sale_moment = func.coalesce(Order.sold_at, Order.created_at)
    in_period = sale_moment >= start, sale_moment < end

    # --- sales: the lines (goods per VAT rate; gift cards apart) and delivery -----------
    sale_rows = (await s.execute(
        select(Order.id, OrderLine.vat_rate_bp, OrderLine.total_cents, OrderLine.vat_cents,
               Product.gift_card)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(Order.status.not_in(NOT_SALES), *in_period))).all()
    delivery_rows = (await s.execute(
        select(Order.id, Order.delivery_vat_rate_bp, Order.delivery_fee_cents,
               Order.delivery_vat_cents)
        .where(Order.status.not_in(NOT_SALES), *in_period,
               Order.delivery_fee_cents != 0))).all()
    sold_ids = {int(r[0]) for r in sale_rows} | {int(r[0]) for r in delivery_rows}

    # --- payments on the days, and every payment of the orders sold on the days ---------
    pay_cols = (Payment.order_id, Payment.method, Payment.status, Payment.amount_cents,
                Payment.rounding_cents, Payment.created_at)
    payments = (await s.execute(
        select(*pay_cols).where(Payment.created_at >= start, Payment.created_at < end))
    ).all()
    sold_list = sorted(sold_ids)
    payments_of_sales: list[Any] = []  # at any time: those made on another day than the sale clear
    for i in range(0, len(sold_list), 5000):
        payments_of_sales.extend((await s.execute(
            select(*pay_cols).where(Payment.order_id.in_(sold_list[i:i + 5000])))).all())

    # --- returns completed on the days, their lines and every refund of them ------------
    ret_moment = func.coalesce(Return.received_at, Return.created_at)
    returns = (await s.execute(
        select(Return.id, Return.order_id, Return.location_id, Return.refund_cents,
               ret_moment, Location.code, Location.name)
        .outerjoin(Location, Location.id == Return.location_id)
        .where(Return.status == "completed", ret_moment >= start, ret_moment < end))).all()
    return_ids = [int(r[0]) for r in returns]
    return_lines: list[tuple[int, int, int, int]] = []
    return_refunds: list[tuple[int, str, int, datetime]] = []
    for i in range(0, len(return_ids), 5000):
        chunk = return_ids[i:i + 5000]
        return_lines.extend((int(a), int(b), int(c), int(d)) for a, b, c, d in (await s.execute(
            select(ReturnLine.return_id, ReturnLine.vat_rate_bp, ReturnLine.refund_cents,
                   ReturnLine.vat_cents).where(ReturnLine.return_id.in_(chunk)))).all())
        return_refunds.extend((int(a or 0), str(b), int(c), d) for a, b, c, d in (await s.execute(
            select(Refund.return_id, Refund.status, Refund.amount_cents, Refund.created_at)
            .where(Refund.return_id.in_(chunk)))).all())

    # --- refunds (ok) on the days, with where their return was taken --------------------
    refunds = (await s.execute(
        select(Refund.order_id, Refund.return_id, Refund.method, Refund.amount_cents,
               Refund.rounding_cents, Refund.created_at, Return.status, ret_moment,
               Location.code, Location.name)
        .outerjoin(Return, Return.id == Refund.return_id)
        .outerjoin(Location, Location.id == Return.location_id)
        .where(Refund.status == "ok", Refund.created_at >= start, Refund.created_at < end))
    ).all()

    infos = await _order_infos(
        s, sold_ids | {int(p[0]) for p in payments} | {int(r[1]) for r in returns}
        | {int(r[0]) for r in refunds}, day_of)
    for info in infos.values():
        acc.names[info.location] = info.location_name

    # Sales.
    for oid, rate, total, vat, gift in sale_rows:
        info = infos[int(oid)]
        if info.sale_day is None:  # cancelled between the two reads: not a sale now
            continue
        if gift:  # a multi-purpose voucher: a liability, no VAT
            acc.add(info.sale_day, info.location, "gift_cards", "sold", int(total))
        else:
            acc.add(info.sale_day, info.location, "sales", "goods", int(total),
                    rate=int(rate), vat=int(vat))
    for oid, rate, fee, vat in delivery_rows:
        info = infos[int(oid)]
        if info.sale_day is None:  # cancelled between the two reads: not a sale now
            continue
        acc.add(info.sale_day, info.location, "sales", "delivery", int(fee), rate=int(rate),
                vat=int(vat))

    # Payments: money (and balances) in, on their own day, at their order's location.
    for oid, method, status, amount, rounding, at in payments:
        info = infos[int(oid)]
        day = day_of(at)
        key = "card_to_confirm" if method == "card" and status == "to_confirm" else str(method)
        acc.add(day, info.location, "payments", key, int(amount) + int(rounding or 0))
        if rounding:
            acc.add(day, info.location, "rounding", "sales", int(rounding))
        if info.sale_day != day:  # money for another day's sale, or for no sale at all
            acc.add(day, info.location, "clearing", "payments_not_sales_of_day", int(amount))
    for oid, _m, _st, amount, _r, at in payments_of_sales:
        info = infos[int(oid)]
        if info.sale_day is None:  # cancelled between the two reads: not a sale now
            continue
        if day_of(at) != info.sale_day:
            acc.add(info.sale_day, info.location, "clearing", "sales_paid_other_day",
                    -int(amount))

    # Returns: where taken back (else the order's own journal location).
    ret_where: dict[int, tuple[str, date]] = {}
    ret_value: dict[int, int] = defaultdict(int)
    for rid, oid, _loc_id, _refund, at, loc_code, loc_name in returns:
        info = infos[int(oid)]
        where = str(loc_code) if loc_code is not None else info.location
        if loc_code is not None:
            acc.names[where] = str(loc_name)
        ret_where[int(rid)] = (where, day_of(at))
    for rid, rate, refund, vat in return_lines:
        where, day = ret_where[rid]
        acc.add(day, where, "returns", "goods", -refund, rate=rate, vat=-vat)
        ret_value[rid] += refund
    await _returned_delivery(s, [(int(r[0]), int(r[1])) for r in returns], ret_where,
                             ret_value, acc)
    refunded_on_day: dict[int, int] = defaultdict(int)
    for rid, status, amount, at in return_refunds:
        if status == "ok" and day_of(at) == ret_where[rid][1]:
            refunded_on_day[rid] += amount
    for rid, _oid, _loc, refund_cents, _at, _c, _n in returns:
        where, day = ret_where[int(rid)]
        points = ret_value[int(rid)] - int(refund_cents)
        if points:  # the part loyalty points had paid comes back as points
            acc.add(day, where, "refunds", "points", -points)
        later = int(refund_cents) - refunded_on_day[int(rid)]
        if later:
            acc.add(day, where, "clearing", "returns_refunded_other_day", later)

    # Refunds (ok): money (and balances) out, where the goods came back.
    for oid, ret_id, method, amount, rounding, at, r_status, r_at, loc_code, loc_name in refunds:
        day = day_of(at)
        info = infos[int(oid)]
        where = str(loc_code) if loc_code is not None else info.location
        if loc_code is not None:
            acc.names[where] = str(loc_name)
        acc.add(day, where, "refunds", str(method), -(int(amount) + int(rounding or 0)))
        if rounding:
            acc.add(day, where, "rounding", "refunds", -int(rounding))
        if ret_id is None or r_status != "completed" or r_at is None or day_of(r_at) != day:
            acc.add(day, where, "clearing", "refunds_not_returns_of_day", -int(amount))

    lines = _lines(acc, period, locations, store_ids,
                   await _store_codes(s, store_ids) if store_ids is not None else None)
    if store_ids is None and (locations is None or COMPANY in locations):
        lines.extend(await _ledger_lines(s, period, tz))
    return Journal(period, lines)


async def _returned_delivery(s: AsyncSession, returns: list[tuple[int, int]],
                             ret_where: dict[int, tuple[str, date]],
                             ret_value: dict[int, int], acc: _Acc) -> None:
    """The delivery fee goes back with the return that completes the withdrawal of a
    home-delivered order (returns.amounts): the order's last completed return."""
    order_ids = sorted({oid for _rid, oid in returns})
    if not order_ids:
        return
    full = {int(oid): (int(rate), int(fee), int(vat)) for oid, rate, fee, vat in (
        await s.execute(
            select(Order.id, Order.delivery_vat_rate_bp, Order.delivery_fee_cents,
                   Order.delivery_vat_cents)
            .where(Order.id.in_(order_ids), Order.status == "returned",
                   Order.delivery_method == "home", Order.delivery_fee_cents > 0))).all()}
    if not full:
        return
    last = dict((await s.execute(
        select(Return.order_id, func.max(Return.id))
        .where(Return.order_id.in_(sorted(full)), Return.status == "completed")
        .group_by(Return.order_id))).all())
    for rid, oid in returns:
        if oid in full and int(last.get(oid, -1)) == rid:
            rate, fee, vat = full[oid]
            where, day = ret_where[rid]
            acc.add(day, where, "returns", "delivery", -fee, rate=rate, vat=-vat)
            ret_value[rid] += fee


async def _store_codes(s: AsyncSession, store_ids: set[int]) -> set[str]:
    if not store_ids:
        return set()
    return {str(c) for c in (await s.scalars(
        select(Location.code).where(Location.id.in_(sorted(store_ids))))).all()}


def _lines(acc: _Acc, period: Period, locations: set[str] | None,
           store_ids: set[int] | None, store_codes: set[str] | None) -> list[JournalLine]:
    blocks: dict[tuple[date, str], list[JournalLine]] = defaultdict(list)
    for (day, loc, section, key, rate), (net, vat, gross) in acc.rows.items():
        if not period.first <= day <= period.last:
            continue  # a sale of the period paid on another day: only its clearing row
        if locations is not None and loc not in locations:
            continue
        if store_codes is not None and loc not in store_codes:
            continue
        has_vat = (day, loc, section, key, rate) in acc.with_vat
        blocks[(day, loc)].append(JournalLine(
            day, loc, acc.names.get(loc, loc), section, key, rate if has_vat else None,
            net if has_vat else None, vat if has_vat else None, gross))
    out: list[JournalLine] = []
    for (day, loc) in sorted(blocks):
        rows = [r for r in blocks[(day, loc)] if r.gross_cents or r.vat_cents]
        rows.sort(key=_order)
        money = sum(r.gross_cents for r in rows if r.section in MONEY_SECTIONS)
        moves = sum(r.gross_cents for r in rows if r.section in REVENUE_SECTIONS)
        rows.append(JournalLine(day, loc, acc.names.get(loc, loc), "check", "money",
                                None, None, None, money))
        rows.append(JournalLine(day, loc, acc.names.get(loc, loc), "check", "movements",
                                None, None, None, moves))
        rows.append(JournalLine(day, loc, acc.names.get(loc, loc), "check", "difference",
                                None, None, None, money - moves))
        out.extend(rows)
    return out


def _order(ln: JournalLine) -> tuple[int, int, str, int]:
    section = SECTIONS.index(ln.section) if ln.section in SECTIONS else len(SECTIONS)
    key = KEY_ORDER.index(ln.key) if ln.key in KEY_ORDER else len(KEY_ORDER)
    return section, key, ln.key, -(ln.vat_rate_bp or 0)


async def _balances_at(s: AsyncSession, at: datetime) -> dict[str, int]:
    """What the cards held at the instant `at`: each card's last entry before it."""
    last = (select(func.max(GiftCardEntry.id).label("id"))
            .where(GiftCardEntry.created_at < at)
            .group_by(GiftCardEntry.gift_card_id).subquery())
    rows = (await s.execute(
        select(GiftCard.kind, func.coalesce(func.sum(GiftCardEntry.balance_after_cents), 0))
        .join(last, last.c.id == GiftCardEntry.id)
        .join(GiftCard, GiftCard.id == GiftCardEntry.gift_card_id)
        .group_by(GiftCard.kind))).all()
    return {str(k): int(v) for k, v in rows}


async def _ledger_lines(s: AsyncSession, period: Period, tz: str) -> list[JournalLine]:
    """The company's gift card and store credit liability: what the cards held at the
    start of each day, every movement of the day, what they held at its end."""
    start, end = period.bounds(tz)
    day_of = _Days(tz)
    moves: dict[tuple[date, str, str], int] = defaultdict(int)
    for kind, entry_kind, amount, at in (await s.execute(
            select(GiftCard.kind, GiftCardEntry.kind, GiftCardEntry.amount_cents,
                   GiftCardEntry.created_at)
            .join(GiftCard, GiftCard.id == GiftCardEntry.gift_card_id)
            .where(GiftCardEntry.created_at >= start, GiftCardEntry.created_at < end))).all():
        moves[(day_of(at), str(kind), str(entry_kind))] += int(amount)
    out: list[JournalLine] = []
    zone = ZoneInfo(tz)
    opening = await _balances_at(s, start)
    name = "Gift cards and store credit"
    for day in period.each_day():
        closing = await _balances_at(
            s, datetime.combine(day + timedelta(days=1), datetime.min.time(), zone))
        diff = 0
        for kind in LEDGER_KINDS:
            def row(key: str, cents: int, kind: str = kind, day: date = day) -> JournalLine:
                return JournalLine(day, COMPANY, name, "liability", f"{kind}.{key}", None,
                                   None, None, cents)
            out.append(row("opening", opening.get(kind, 0)))
            moved = 0
            for mv in LEDGER_MOVES:
                cents = moves.get((day, kind, mv), 0)
                moved += cents
                if cents:
                    out.append(row(mv, cents))
            out.append(row("closing", closing.get(kind, 0)))
            diff += opening.get(kind, 0) + moved - closing.get(kind, 0)
        out.append(JournalLine(day, COMPANY, name, "check", "difference", None, None, None,
                               diff))
        opening = closing
    return out


def vat_percent(bp: int | None) -> str:
    """2550 → '25,5' (the rate as Finnish Excel reads a number)."""
    if bp is None:
        return ""
    whole, part = divmod(bp, 100)
    return f"{whole},{part:02d}".rstrip("0").rstrip(",")


def to_csv(journal: Journal) -> str:
    """The documented layout (docs/journal.md): UTF-8 with a byte order mark, `;`,
    CRLF, euros with a decimal comma, one row per day × location × account line."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for ln in journal.lines:
        w.writerow([ln.day.isoformat(), ln.location, ln.location_name, ln.section, ln.key,
                    vat_percent(ln.vat_rate_bp), format_euros(ln.net_cents),
                    format_euros(ln.vat_cents), format_euros(ln.gross_cents)])
    return BOM + buf.getvalue()


def to_table(journal: Journal) -> str:
    """The same figures as plain text, one block per day and location (the CLI)."""
    out: list[str] = []
    for day in journal.days():
        for loc, name in journal.locations(day):
            out.append(f"{day.isoformat()}  {name} ({loc})")
            for ln in journal.block(day, loc):
                label = f"{ln.section}/{ln.key}"
                rate = f"{vat_percent(ln.vat_rate_bp)} %" if ln.vat_rate_bp is not None else ""
                net = format_euros(ln.net_cents)
                vat = format_euros(ln.vat_cents)
                out.append(f"  {label:<42} {rate:>7} {net:>12} {vat:>12} "
                           f"{format_euros(ln.gross_cents):>12}")
            out.append("")
    return "\n".join(out)
