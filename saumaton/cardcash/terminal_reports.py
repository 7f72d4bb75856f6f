"""The card terminal's daily report: read it (strictly), keep its rows, match them to the
till's card payments and card refunds, confirm the card payments taken offline, and show
a store's day of matches and mismatches.

The layout (docs/card-and-cash.md): UTF-8 (a byte order mark allowed), `;` between
columns, a header line naming the columns `date;time;terminal_id;store;amount;type;
card_brand;masked_pan;auth_code;reference` (any order), then one row per transaction.
A file with any error is refused whole, every error listed (row, column, code), and
nothing is saved. A row already imported (same terminal, type and reference, same
figures) is skipped, so importing the same file twice changes nothing.

Matching, per store and business day (the terminal's local date): first by the
reference when the till recorded the terminal's reference for the payment; then, for
payments the till recorded without one, by the same amount at the nearest time within
`MATCH_WINDOW` (the offline till's clock and the terminal's differ a little). A matched
offline payment (`to_confirm`) of the same amount becomes `captured` through
`confirm_payment`, the one place that does it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.cardcash import flags
from saumaton.cardcash.models import TerminalImport, TerminalRow
from saumaton.cardcash.times import aware_utc
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.csvio.files import BOM, RowError
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Location
from saumaton.orders.models import Order
from saumaton.orders.services import order_number
from saumaton.payments.models import Payment, Refund
from saumaton.reports.period import Period

COLUMNS = ("date", "time", "terminal_id", "store", "amount", "type", "card_brand",
           "masked_pan", "auth_code", "reference")
KINDS = ("purchase", "refund")
MAX_ROWS = 50_000
MAX_BYTES = 10 * 1024 * 1024
# How far apart the till's and the terminal's clocks may put the same card payment.
MATCH_WINDOW = timedelta(minutes=15)
# An offline till's sale is recorded when the till syncs; one synced later than this after
# the day it was made is not looked for.
SYNC_LAG = timedelta(days=60)

_DATE_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_FI = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)")
_TERMINAL = re.compile(r"[A-Za-z0-9_-]{1,32}")
_AMOUNT = re.compile(r"(\d{1,7}),(\d{2})")
_PAN = re.compile(r"[0-9]{0,6}\*{4,15}[0-9]{4}")
_AUTH = re.compile(r"[A-Za-z0-9]{0,12}")
_REFERENCE = re.compile(r"[A-Za-z0-9_./-]{1,64}")


class TerminalReportInvalid(ValidationFailed):
    """The file cannot be imported; `errors` lists every row error at once."""

    code = "terminal_report_invalid"

    def __init__(self, errors: list[RowError]) -> None:
        first = errors[0]
        super().__init__(f"{len(errors)} error(s) in the terminal report; row {first.row}, "
                         f"{first.field}: {first.message}", field="file",
                         extra={"errors": [e.as_dict() for e in errors]})
        self.errors = errors


@dataclass(frozen=True)
class ParsedRow:
    row: int  # the file's line number (the header is row 1)
    business_day: date
    occurred_at: datetime  # UTC
    terminal_id: str
    store: str
    amount_cents: int
    kind: str
    card_brand: str
    masked_pan: str
    auth_code: str
    reference: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.terminal_id, self.kind, self.reference)


def _file_error(code: str, message: str, row: int = 1) -> TerminalReportInvalid:
    return TerminalReportInvalid([RowError(row, "file", code, message)])


def _day(text: str) -> date | None:
    try:
        if _DATE_ISO.fullmatch(text):
            return date.fromisoformat(text)
        m = _DATE_FI.fullmatch(text)
        if m:
            return date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None
    return None


def parse(data: bytes, tz: str) -> list[ParsedRow]:
    """The rows of a terminal report file, or TerminalReportInvalid with every error."""
    rows, errors = parse_rows(data, tz)
    if errors:
        raise TerminalReportInvalid(errors)
    return rows


def parse_rows(data: bytes, tz: str) -> tuple[list[ParsedRow], list[RowError]]:
    """The good rows and every row's errors; a file that cannot be read at all (not
    UTF-8, no header, no rows): TerminalReportInvalid."""
    if len(data) > MAX_BYTES:
        raise _file_error("file_too_big", f"the file is over {MAX_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _file_error("not_utf8", f"the file is not UTF-8 text (line {line})",
                          line) from None
    text = text.removeprefix(BOM)
    if not text.strip():
        raise _file_error("empty_file", "the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    try:
        lines = list(reader)
    except csv.Error as exc:
        raise _file_error("bad_csv", f"the file is not valid CSV: {exc}",
                          reader.line_num) from None
    header = [h.strip().lower() for h in lines[0]]
    errors: list[RowError] = []
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h and h not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        errors.append(RowError(1, "file", "bad_header",
                               "the first line names the columns " + ";".join(COLUMNS)))
        raise TerminalReportInvalid(errors)
    pos = {c: header.index(c) for c in COLUMNS}
    zone = ZoneInfo(tz)
    rows: list[ParsedRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    data_rows = [(n, values) for n, values in enumerate(lines[1:], start=2)
                 if any(v.strip() for v in values)]
    if not data_rows:
        raise _file_error("no_rows", "the file has no rows")
    if len(data_rows) > MAX_ROWS:
        raise _file_error("too_many_rows", f"a file holds at most {MAX_ROWS} rows")
    for n, values in data_rows:
        if len(values) != len(header):
            errors.append(RowError(n, "file", "wrong_column_count",
                                   f"the row has {len(values)} columns, the header "
                                   f"{len(header)}"))
            continue
        v = {c: values[pos[c]].strip() for c in COLUMNS}
        before = len(errors)

        def bad(column: str, code: str, message: str, n: int = n) -> None:
            errors.append(RowError(n, column, code, message))

        day = _day(v["date"])
        if day is None:
            bad("date", "invalid_date", "a date is YYYY-MM-DD or DD.MM.YYYY")
        tm = _TIME.fullmatch(v["time"])
        if tm is None:
            bad("time", "invalid_time", "a time is HH:MM:SS")
        if not _TERMINAL.fullmatch(v["terminal_id"]):
            bad("terminal_id", "invalid_terminal", "a terminal id is 1–32 letters, digits, "
                "- or _")
        if not v["store"] or len(v["store"]) > 32:
            bad("store", "invalid_store", "give the store's code")
        am = _AMOUNT.fullmatch(v["amount"])
        cents = int(am[1]) * 100 + int(am[2]) if am else 0
        if am is None or cents <= 0:
            bad("amount", "invalid_amount", "an amount is euros with a decimal comma and "
                "two decimals, more than zero, e.g. 12,90")
        if v["type"] not in KINDS:
            bad("type", "invalid_type", "the type is purchase or refund")
        if not v["card_brand"] or len(v["card_brand"]) > 20:
            bad("card_brand", "invalid_brand", "give the card brand (at most 20 characters)")
        if not _PAN.fullmatch(v["masked_pan"]):
            bad("masked_pan", "invalid_pan", "a card number is masked: stars and the last "
                "four digits, e.g. ************1234")
        if not _AUTH.fullmatch(v["auth_code"]):
            bad("auth_code", "invalid_auth_code", "an authorisation code is at most 12 "
                "letters and digits")
        if not _REFERENCE.fullmatch(v["reference"]):
            bad("reference", "invalid_reference", "a reference is 1–64 letters, digits, "
                "- _ . or /")
        if len(errors) > before or day is None or tm is None:
            continue
        local = datetime.combine(day, time(int(tm[1]), int(tm[2]), int(tm[3])), zone)
        parsed = ParsedRow(n, day, local.astimezone(UTC), v["terminal_id"], v["store"],
                           cents, v["type"], v["card_brand"], v["masked_pan"],
                           v["auth_code"], v["reference"])
        if parsed.key in seen:
            bad("reference", "duplicate_row", f"row {seen[parsed.key]} has the same "
                "terminal, type and reference")
            continue
        seen[parsed.key] = n
        rows.append(parsed)
    return rows, errors


@dataclass
class ImportResult:
    import_id: int | None  # None: nothing new (the file or its rows were imported before)
    rows: int
    new: int
    unchanged: int
    matched: int  # rows matched by this import (new ones and earlier unmatched ones)
    confirmed: int  # offline card payments confirmed
    days: list[tuple[str, date]] = field(default_factory=list)  # (store code, day)


_KEPT = (TerminalRow.terminal_id, TerminalRow.kind, TerminalRow.reference,
         TerminalRow.location_id, TerminalRow.business_day, TerminalRow.occurred_at,
         TerminalRow.amount_cents, TerminalRow.card_brand, TerminalRow.masked_pan,
         TerminalRow.auth_code)


def _figures(p: ParsedRow, location_id: int) -> tuple[Any, ...]:
    return (location_id, p.business_day, p.occurred_at, p.amount_cents, p.card_brand,
            p.masked_pan, p.auth_code)


async def import_report(uow: UnitOfWork, actor: Actor, filename: str, data: bytes, *,
                        tz: str) -> ImportResult:
    """Import a terminal report file (needs reconcile.write at every store it names) and
    match the days it covers. Any error: TerminalReportInvalid, nothing written."""
    actor.require("reconcile.write")
    rows, errors = parse_rows(data, tz)
    s = uow.session
    codes = sorted({r.store for r in rows})
    stores = {loc.code: loc for loc in (await s.scalars(
        select(Location).where(Location.code.in_(codes)))).all()}
    for r in rows:
        loc = stores.get(r.store)
        if loc is None or loc.kind != "store":
            errors.append(RowError(r.row, "store", "unknown_store",
                                   f"no store has the code {r.store}"))
        elif not actor.can("reconcile.write", loc.id):
            errors.append(RowError(r.row, "store", "forbidden",
                                   f"you may not import for the store {r.store}"))
    existing: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    refs = sorted({r.reference for r in rows})
    for chunk in range(0, len(refs), 1000):
        for kept in (await s.execute(select(*_KEPT).where(
                TerminalRow.reference.in_(refs[chunk:chunk + 1000])))).all():
            existing[(kept[0], kept[1], kept[2])] = (
                kept[3], kept[4], aware_utc(kept[5]), *kept[6:])
    new: list[ParsedRow] = []
    for r in rows:
        old = existing.get(r.key)
        if old is None:
            new.append(r)
        elif r.store in stores and old != _figures(r, stores[r.store].id):
            errors.append(RowError(r.row, "reference", "row_changed",
                                   "a row with this terminal, type and reference was "
                                   "imported earlier with other figures"))
    if errors:
        raise TerminalReportInvalid(sorted(errors, key=lambda e: (e.row, COLUMNS.index(
            e.field) if e.field in COLUMNS else -1)))
    days = sorted({(stores[r.store].id, r.business_day) for r in rows})
    result = ImportResult(None, len(rows), len(new), len(rows) - len(new), 0, 0,
                          days=[(next(c for c, loc in stores.items() if loc.id == lid), d)
                                for lid, d in days])
    if new:
        imp = TerminalImport(filename=filename[:300],
                             file_sha256=hashlib.sha256(data).hexdigest(),
                             row_count=len(rows), new_count=len(new),
                             imported_by=actor.label, imported_at=utcnow())
        s.add(imp)
        await s.flush()
        result.import_id = imp.id
        for chunk in range(0, len(new), 2000):
            await s.execute(insert(TerminalRow), [{
                "import_id": imp.id, "location_id": stores[r.store].id,
                "business_day": r.business_day, "occurred_at": r.occurred_at,
                "terminal_id": r.terminal_id, "kind": r.kind, "amount_cents": r.amount_cents,
                "card_brand": r.card_brand, "masked_pan": r.masked_pan,
                "auth_code": r.auth_code, "reference": r.reference, "matched_by": "",
                "confirmed": False, "confirmed_by": ""} for r in new[chunk:chunk + 2000]])
    for location_id, day in days:
        matched, confirmed = await match_day(uow, actor, location_id, day, tz=tz)
        result.matched += matched
        result.confirmed += confirmed
    if new:
        assert result.import_id is not None
        await record(uow, actor, "terminal_report.import", "terminal_import",
                     result.import_id, {"filename": filename[:300], "rows": len(rows),
                                        "new": len(new), "matched": result.matched,
                                        "confirmed": result.confirmed})
    return result


# --- matching ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TillCard:
    """A card payment or card refund the till recorded."""

    kind: str  # purchase (a payment) | refund
    id: int  # payments.id or refunds.id
    order_id: int
    amount_cents: int
    at: datetime  # the till's time: an offline sale's sold_at, else when recorded
    reference: str
    status: str  # payments: captured | to_confirm; refunds: ok


def _day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    return Period.day(day).bounds(tz)


async def till_cards(s: AsyncSession, location_id: int, day: date, *, tz: str,
                     unmatched_only: bool = False) -> list[TillCard]:
    """The store's card payments (captured or to confirm) and card refunds of `day`."""
    start, end = _day_bounds(day, tz)
    at = func.coalesce(Order.sold_at, Payment.created_at)
    pq = (select(Payment.id, Payment.order_id, Payment.amount_cents, at.label("at"),
                 Payment.reference, Payment.status)
          .join(Order, Order.id == Payment.order_id)
          .where(Payment.method == "card", Payment.location_id == location_id,
                 # recorded from the day before (a till's clock may run ahead) until
                 # SYNC_LAG after: the index's range; the till's time decides
                 Payment.created_at >= start - timedelta(days=1),
                 Payment.created_at < end + SYNC_LAG,
                 Payment.status.in_(("captured", "to_confirm")), at >= start, at < end))
    rq = (select(Refund.id, Refund.order_id, Refund.amount_cents, Refund.created_at,
                 Refund.reference, Refund.status)
          .where(Refund.method == "card", Refund.status == "ok",
                 Refund.location_id == location_id, Refund.created_at >= start,
                 Refund.created_at < end))
    if unmatched_only:
        pq = pq.where(~select(TerminalRow.id).where(
            TerminalRow.payment_id == Payment.id).exists())
        rq = rq.where(~select(TerminalRow.id).where(
            TerminalRow.refund_id == Refund.id).exists())
    out = [TillCard("purchase", int(p.id), int(p.order_id), int(p.amount_cents),
                    aware_utc(p.at), str(p.reference), str(p.status))
           for p in (await s.execute(pq.order_by(Payment.id))).all()]
    out += [TillCard("refund", int(r.id), int(r.order_id), int(r.amount_cents),
                     aware_utc(r.created_at), str(r.reference), str(r.status))
            for r in (await s.execute(rq.order_by(Refund.id))).all()]
    return out


def pair(rows: Sequence[TerminalRow], cards: Sequence[TillCard]
         ) -> list[tuple[TerminalRow, TillCard, str]]:
    """Which terminal row is which till card payment/refund: (row, card, how)."""
    out: list[tuple[TerminalRow, TillCard, str]] = []
    used_rows: set[int] = set()
    used_cards: set[tuple[str, int]] = set()
    by_ref = {(c.kind, c.reference): c for c in cards if c.reference}
    for r in rows:
        c = by_ref.get((r.kind, r.reference))
        if c is not None and (c.kind, c.id) not in used_cards:
            out.append((r, c, "reference"))
            used_rows.add(r.id)
            used_cards.add((c.kind, c.id))
    # Only the same type and amount can pair: bucket the till's side by them.
    buckets: dict[tuple[str, int], list[TillCard]] = {}
    for c in cards:
        if not c.reference and (c.kind, c.id) not in used_cards:
            buckets.setdefault((c.kind, c.amount_cents), []).append(c)
    # Nearest time first: a pair closer in time wins over a farther one.
    candidates = sorted(
        ((abs(r.occurred_at - c.at), r.id, c.id, r, c) for r in rows if r.id not in used_rows
         for c in buckets.get((r.kind, r.amount_cents), ())
         if abs(r.occurred_at - c.at) <= MATCH_WINDOW), key=lambda t: t[:3])
    for _, _, _, r, c in candidates:
        if r.id in used_rows or (c.kind, c.id) in used_cards:
            continue
        out.append((r, c, "amount_time"))
        used_rows.add(r.id)
        used_cards.add((c.kind, c.id))
    return out


async def match_day(uow: UnitOfWork, actor: Actor, location_id: int, day: date, *,
                    tz: str) -> tuple[int, int]:
    """Match the store's unmatched terminal rows of `day` with its unmatched card
    payments and refunds; (rows matched, payments confirmed)."""
    s = uow.session
    cards = await till_cards(s, location_id, day, tz=tz, unmatched_only=True)
    if not cards:
        return 0, 0
    rows = list((await s.scalars(select(TerminalRow).where(
        TerminalRow.location_id == location_id, TerminalRow.business_day == day,
        TerminalRow.payment_id.is_(None), TerminalRow.refund_id.is_(None))
        .order_by(TerminalRow.id))).all())
    if not rows:
        return 0, 0
    now = utcnow()
    confirmed = 0
    pairs = pair(rows, cards)
    for r, c, how in pairs:
        r.matched_by, r.matched_at = how, now
        if c.kind == "purchase":
            r.payment_id = c.id
        else:
            r.refund_id = c.id
    await s.flush()
    for r, c, _ in pairs:
        if c.kind == "purchase" and c.status == "to_confirm" \
                and c.amount_cents == r.amount_cents:
            confirmed += await confirm_payment(uow, actor, r, c.id)
    return len(pairs), confirmed


async def confirm_payment(uow: UnitOfWork, actor: Actor, row: TerminalRow,
                          payment_id: int) -> int:
    """The one place an offline card payment (`to_confirm`) becomes `captured`: the
    terminal's row `row` shows the terminal took it. Audited; when the order has no
    other card payment left to confirm, its `card_unconfirmed` flag is resolved. Returns
    1 when confirmed now, 0 when it was not waiting for confirmation."""
    s = uow.session
    done = await s.execute(update(Payment).where(
        Payment.id == payment_id, Payment.status == "to_confirm").values(status="captured"))
    if getattr(done, "rowcount", 0) != 1:
        return 0
    order_id = int(await s.scalar(select(Payment.order_id).where(Payment.id == payment_id))
                   or 0)
    row.confirmed, row.confirmed_by = True, actor.label
    await s.flush()
    await record(uow, actor, "card_payment.confirm", "payment", payment_id, {
        "order_id": order_id, "number": order_number(order_id),
        "terminal_row_id": row.id, "terminal_id": row.terminal_id,
        "reference": row.reference, "amount_cents": row.amount_cents})
    waiting = await s.scalar(select(func.count()).where(
        Payment.order_id == order_id, Payment.method == "card",
        Payment.status == "to_confirm"))
    if not waiting:
        await flags.resolve_automatically(
            uow, actor, order_id, "card_unconfirmed",
            f"terminal {row.terminal_id}, reference {row.reference}")
    return 1


# --- a store's day ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RowView:
    id: int
    location_id: int
    occurred_at: datetime
    terminal_id: str
    kind: str
    amount_cents: int
    card_brand: str
    masked_pan: str
    auth_code: str
    reference: str
    # matched | confirmed | amount_differs | terminal_only
    status: str
    matched_by: str
    order_id: int | None
    till_amount_cents: int | None

    @property
    def number(self) -> str:
        return order_number(self.order_id) if self.order_id is not None else ""


@dataclass(frozen=True)
class Mismatch:
    # terminal_only | till_only | amount_differs
    kind: str
    location_id: int
    at: datetime
    card_kind: str  # purchase | refund
    terminal_amount_cents: int | None
    till_amount_cents: int | None
    reference: str
    order_id: int | None
    payment_status: str  # to_confirm | captured | ok (a refund) | ""

    @property
    def number(self) -> str:
        return order_number(self.order_id) if self.order_id is not None else ""


@dataclass
class CardDay:
    day: date
    rows: list[RowView] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)  # stores with a terminal report
    unreported: dict[int, int] = field(default_factory=dict)  # store -> till card count


async def card_day(s: AsyncSession, location_ids: Iterable[int], day: date, *,
                   tz: str) -> CardDay:
    """The day's terminal rows with their matches, and every mismatch, per store. A
    store's card payments count as missing from the terminal report only when a report
    of that day was imported for the store."""
    out = CardDay(day)
    for location_id in sorted(location_ids):
        rows = list((await s.scalars(select(TerminalRow).where(
            TerminalRow.location_id == location_id, TerminalRow.business_day == day)
            .order_by(TerminalRow.occurred_at, TerminalRow.id))).all())
        cards = await till_cards(s, location_id, day, tz=tz)
        if not rows:
            if cards:
                out.unreported[location_id] = len(cards)
            continue
        out.reported.add(location_id)
        payments = {c.id: c for c in cards if c.kind == "purchase"}
        refunds = {c.id: c for c in cards if c.kind == "refund"}
        # A matched payment of another day (a reference match) is still read for its figures.
        extra_ids = [r.payment_id for r in rows
                     if r.payment_id is not None and r.payment_id not in payments]
        for p in (await s.execute(select(Payment.id, Payment.order_id, Payment.amount_cents,
                                         Payment.created_at, Payment.reference,
                                         Payment.status)
                                  .where(Payment.id.in_(extra_ids)))).all() if extra_ids else []:
            payments[int(p.id)] = TillCard("purchase", int(p.id), int(p.order_id),
                                           int(p.amount_cents), aware_utc(p.created_at),
                                           str(p.reference), str(p.status))
        extra_refunds = [r.refund_id for r in rows
                         if r.refund_id is not None and r.refund_id not in refunds]
        for f in (await s.execute(select(Refund.id, Refund.order_id, Refund.amount_cents,
                                         Refund.created_at, Refund.reference, Refund.status)
                                  .where(Refund.id.in_(extra_refunds)))).all() \
                if extra_refunds else []:
            refunds[int(f.id)] = TillCard("refund", int(f.id), int(f.order_id),
                                          int(f.amount_cents), aware_utc(f.created_at),
                                          str(f.reference), str(f.status))
        matched: set[tuple[str, int]] = set()
        for r in rows:
            c = (payments.get(r.payment_id) if r.payment_id is not None
                 else refunds.get(r.refund_id) if r.refund_id is not None else None)
            if c is None:
                status = "terminal_only"
            else:
                matched.add((c.kind, c.id))
                status = ("amount_differs" if c.amount_cents != r.amount_cents
                          else "confirmed" if r.confirmed else "matched")
            out.rows.append(RowView(
                r.id, location_id, r.occurred_at, r.terminal_id, r.kind, r.amount_cents,
                r.card_brand, r.masked_pan, r.auth_code, r.reference, status, r.matched_by,
                c.order_id if c else None, c.amount_cents if c else None))
            if status in ("terminal_only", "amount_differs"):
                out.mismatches.append(Mismatch(
                    status, location_id, r.occurred_at, r.kind, r.amount_cents,
                    c.amount_cents if c else None, r.reference, c.order_id if c else None,
                    c.status if c else ""))
        for c in cards:
            if (c.kind, c.id) not in matched:
                out.mismatches.append(Mismatch(
                    "till_only", location_id, c.at, c.kind, None, c.amount_cents,
                    c.reference, c.order_id, c.status))
    out.mismatches.sort(key=lambda m: (m.location_id, m.at))
    return out
