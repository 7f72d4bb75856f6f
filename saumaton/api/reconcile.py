"""/api/v1 reconciliation: Paytrail settlements (web/backoffice/settlements.py), the card
terminal and cash day (card_cash.py) and the offline sales' review flags (flags.py), as
JSON.

Reading settlements needs `reports.read` at every location (owner, finance); the card
and cash figures and the flags `reports.read` at the store (a manager sees their
stores); importing a file and entering a bank amount `reconcile.write`; closing a flag
`flags.resolve` at the order's store. A file is sent as the request body itself.
Money is integer cents. Thin: the rules are in saumaton.settlements and
saumaton.cardcash.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field, StrictInt
from sqlalchemy.exc import IntegrityError

from saumaton.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, page_of
from saumaton.api.reports import ReportDate
from saumaton.cardcash import cash, flags, terminal_reports
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, ValidationFailed
from saumaton.core.types import MAX_ID, Input
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations
from saumaton.reports.period import Period
from saumaton.settlements import fetch
from saumaton.settlements.parsing import parse_report
from saumaton.settlements.services import (
    discrepancies,
    get_settlement,
    import_report,
    month_view,
    set_bank_amount,
    settlement_lines,
)
from saumaton.web.auth import db_of, reports_db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["reconciliation"])
Chain = Annotated[Actor, api_requires("reports.read", everywhere=True)]
Reader = Annotated[Actor, api_requires("reports.read")]
Reconciler = Annotated[Actor, api_requires("reconcile.write")]
Month = Annotated[str, Query(pattern=r"^(19[7-9][0-9]|[2-8][0-9]{3})-(0[1-9]|1[0-2])$",
                             min_length=7, max_length=7,
                             description="YYYY-MM")]
MAX_SETTLEMENT_FILE = 50 * 1024 * 1024


def _today(request: Request) -> date:
    return utcnow().astimezone(ZoneInfo(settings_of(request).timezone)).date()


def _month(raw: str) -> Period:
    first = datetime.strptime(raw, "%Y-%m").date()
    return Period.month(first.year, first.month)


async def _body(request: Request, limit: int) -> bytes:
    if int(request.headers.get("content-length") or 0) > limit:
        raise ValidationFailed(f"the file is too big: at most {limit // (1024 * 1024)} MB",
                               code="file_too_large", field="file")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise ValidationFailed(f"the file is too big: at most "
                                   f"{limit // (1024 * 1024)} MB", code="file_too_large",
                                   field="file")
    if not data.strip():
        raise ValidationFailed("send the report file as the request body",
                               code="file_required", field="file")
    return data


# --- Paytrail settlements --------------------------------------------------------------

class SettlementOut(BaseModel):
    id: int
    paytrail_id: str
    reference: str = Field(description="the bank transfer's reference")
    settled_on: date | None
    source: str = Field(description="api | file")
    payments_cents: int
    refunds_cents: int = Field(description="refunds deducted (positive)")
    fees_cents: int
    payout_cents: int
    stated_payout_cents: int | None
    bank_cents: int | None = Field(description="what the bank received, as entered")
    payout_ok: bool
    line_count: int
    discrepancy_count: int
    imported_by: str
    imported_at: datetime


def _settlement(x: object) -> SettlementOut:
    return SettlementOut.model_validate(x, from_attributes=True)


class MissingOut(BaseModel):
    cause: str = Field(description="not_settled | refund_not_deducted")
    order_id: int | None
    stamp: str
    transaction_id: str
    amount_cents: int


class MonthOut(BaseModel):
    month: str
    settlements: list[SettlementOut]
    payments_cents: int
    refunds_cents: int
    fees_cents: int
    payout_cents: int
    lines: int
    reconciled: int
    discrepancies: int
    payout_mismatches: int
    missing: list[MissingOut] = Field(description="paid in the month, past the grace days, "
                                                  "in no settlement yet")


@router.get("/settlements", response_model=MonthOut,
            summary="A month's Paytrail settlements and their reconciliation status "
                    "(reports.read everywhere)")
async def settlements_month(request: Request, actor: Chain, month: Month) -> MonthOut:
    settings = settings_of(request)
    period = _month(month)
    async with reports_db_of(request).reader() as s:
        view = await month_view(s, period, settings.timezone, _today(request),
                                settings.settlement_grace_days)
    return MonthOut(
        month=month, settlements=[_settlement(x) for x in view.settlements],
        payments_cents=view.payments_cents, refunds_cents=view.refunds_cents,
        fees_cents=view.fees_cents, payout_cents=view.payout_cents, lines=view.lines,
        reconciled=view.reconciled, discrepancies=view.discrepancies,
        payout_mismatches=view.payout_mismatches,
        missing=[MissingOut(cause=m.cause, order_id=m.order_id, stamp=m.stamp,
                            transaction_id=m.transaction_id, amount_cents=m.amount_cents)
                 for m in view.missing])


class DiscrepancyOut(BaseModel):
    cause: str
    settlement_id: int | None
    paytrail_id: str
    row: int | None
    kind: str = Field(description="payment | refund")
    stamp: str
    reference: str
    transaction_id: str
    amount_cents: int = Field(description="in the settlement, or ours for what is missing")
    ours_cents: int | None
    order_id: int | None


@router.get("/settlements/discrepancies", response_model=Page[DiscrepancyOut],
            summary="Every discrepancy of a month's settlements, then what is missing "
                    "from them (reports.read everywhere)")
async def settlement_discrepancies(request: Request, actor: Chain, month: Month,
                                   cursor: CursorQuery = None, limit: LimitQuery = 100
                                   ) -> Page[DiscrepancyOut]:
    settings = settings_of(request)
    key = decode_cursor(cursor, "n")
    start = int(key["n"]) if key is not None and isinstance(key["n"], int) else 0
    async with reports_db_of(request).reader() as s:
        found = await discrepancies(s, _month(month), settings.timezone, _today(request),
                                    settings.settlement_grace_days)
    # The list is built whole (at most a few thousand per month) in a stable order: a
    # position is a sound cursor.
    rows = [(start + i + 1, DiscrepancyOut.model_validate(d, from_attributes=True))
            for i, d in enumerate(found[start:start + limit + 1])]
    page = page_of(rows, limit, lambda r: {"n": r[0]})
    return Page[DiscrepancyOut](items=[d for _, d in page.items],
                                next_cursor=page.next_cursor)


class SettlementLineOut(BaseModel):
    id: int
    row: int
    kind: str
    stamp: str
    reference: str
    transaction_id: str
    status: str
    entry_date: date | None
    amount_cents: int
    fee_cents: int
    commission_cents: int
    shop_commission_cents: int
    order_id: int | None
    state: str = Field(description="matched | discrepancy")
    cause: str


class SettlementDetailOut(BaseModel):
    settlement: SettlementOut
    lines: Page[SettlementLineOut]


@router.get("/settlements/{settlement_id}", response_model=SettlementDetailOut,
            responses={404: {"description": "settlement_not_found"}},
            summary="A settlement and its lines, a page at a time (reports.read everywhere)")
async def settlement(request: Request, actor: Chain,
                     settlement_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                     only: Annotated[Literal["all", "discrepancies"], Query()] = "all",
                     cursor: CursorQuery = None, limit: LimitQuery = 100
                     ) -> SettlementDetailOut:
    key = decode_cursor(cursor, "row", "id")
    async with reports_db_of(request).reader() as s:
        x = await get_settlement(s, settlement_id)
        lines = await settlement_lines(s, settlement_id,
                                       only_discrepancies=only == "discrepancies")
    if key is not None:
        after = (int(key["row"]), int(key["id"]))
        lines = [ln for ln in lines if (ln.row, ln.id) > after]
    items = [SettlementLineOut.model_validate(ln, from_attributes=True)
             for ln in lines[:limit + 1]]
    return SettlementDetailOut(settlement=_settlement(x), lines=page_of(
        items, limit, lambda ln: {"row": ln.row, "id": ln.id}))


class ImportOut(BaseModel):
    imported: list[int] = Field(description="our ids of the settlements imported now")
    unchanged: list[int] = Field(description="imported before: left as they were")
    ignored_rows: int


@router.post("/settlements/import", response_model=ImportOut, status_code=201,
             responses={422: {"description": "invalid_settlement_report (every row error "
                                             "in `errors`), bank_amount_many, "
                                             "file_required, file_too_large"}},
             summary="Import Paytrail's settlement report, sent as the body (JSON or CSV; "
                     "reconcile.write)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "string", "format": "binary",
                                                  "maxLength": MAX_SETTLEMENT_FILE}},
                 "text/csv": {"schema": {"type": "string", "format": "binary",
                                         "maxLength": MAX_SETTLEMENT_FILE}}}}})
async def import_settlements(
    request: Request, response: Response, actor: Reconciler,
    bank_cents: Annotated[int | None, Query(
        ge=-10**11, le=10**11, description="what the bank received, when the report "
                                           "holds one settlement")] = None,
) -> ImportOut:
    data = await _body(request, MAX_SETTLEMENT_FILE)
    csv = "csv" in request.headers.get("content-type", "")
    report = parse_report(data, "report.csv" if csv else "")
    async with db_of(request).uow() as uow:
        out = await import_report(uow, actor, report, source="file",
                                  filename="api", bank_cents=bank_cents)
        await uow.commit()
    if not out.imported:
        response.status_code = 200
    return ImportOut(imported=out.imported, unchanged=out.unchanged,
                     ignored_rows=out.ignored_rows)


class BankAmountIn(Input):
    bank_cents: StrictInt | None = Field(ge=-10**11, le=10**11,
                                         description="null clears it")


@router.put("/settlements/{settlement_id}/bank-amount", response_model=SettlementOut,
            responses={404: {"description": "settlement_not_found"}},
            summary="Enter (or clear) what the bank received for a settlement "
                    "(reconcile.write)")
async def bank_amount(request: Request, actor: Reconciler, body: BankAmountIn,
                      settlement_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> SettlementOut:
    async with db_of(request).uow() as uow:
        x = await set_bank_amount(uow, actor, settlement_id, body.bank_cents)
        await uow.commit()
    async with db_of(request).reader() as s:
        return _settlement(await get_settlement(s, x.id))


# --- card terminal and cash -------------------------------------------------------------

async def _stores(request: Request, actor: Actor, store: str | None) -> list[Location]:
    """The stores whose figures `actor` may read (one when `store` names it)."""
    async with reports_db_of(request).reader() as s:
        every = [loc for loc in await list_locations(s) if loc.kind == "store"]
    if store is not None:
        chosen = [loc for loc in every if loc.code == store]
        if not chosen:
            raise ValidationFailed(f"no store {store!r}", code="unknown_location",
                                   field="store")
        actor.require("reports.read", chosen[0].id)
        return chosen
    return [loc for loc in every if actor.can("reports.read", loc.id)]


StoreQuery = Annotated[str | None, Query(min_length=1, max_length=32,
                                         description="a store's code; default: every store "
                                                     "the caller may read")]


class TerminalRowOut(BaseModel):
    id: int
    store: str
    occurred_at: datetime
    terminal_id: str
    kind: str = Field(description="purchase | refund")
    amount_cents: int
    card_brand: str
    masked_pan: str
    auth_code: str
    reference: str
    status: str = Field(description="matched | confirmed | amount_differs | terminal_only")
    matched_by: str
    order_id: int | None
    till_amount_cents: int | None


class MismatchOut(BaseModel):
    kind: str = Field(description="terminal_only | till_only | amount_differs")
    store: str
    at: datetime
    card_kind: str
    terminal_amount_cents: int | None
    till_amount_cents: int | None
    reference: str
    order_id: int | None
    payment_status: str


class CardDayOut(BaseModel):
    date: date
    rows: list[TerminalRowOut]
    mismatches: list[MismatchOut]
    reported: list[str] = Field(description="stores with a terminal report of the day")
    unreported: dict[str, int] = Field(description="store → till card payments of a day "
                                                   "without a terminal report")


@router.get("/card-cash/card-day", response_model=CardDayOut, tags=["reconciliation"],
            summary="A day's card terminal rows against the tills' card payments, per store "
                    "(reports.read at the store)")
async def card_day(request: Request, actor: Reader,
                   day: Annotated[ReportDate, Query(alias="date")],
                   store: StoreQuery = None) -> CardDayOut:
    stores = await _stores(request, actor, store)
    code = {loc.id: loc.code for loc in stores}
    async with reports_db_of(request).reader() as s:
        c = await terminal_reports.card_day(s, list(code), day,
                                            tz=settings_of(request).timezone)
    return CardDayOut(
        date=c.day,
        rows=[TerminalRowOut(
            id=r.id, store=code[r.location_id], occurred_at=r.occurred_at,
            terminal_id=r.terminal_id, kind=r.kind, amount_cents=r.amount_cents,
            card_brand=r.card_brand, masked_pan=r.masked_pan, auth_code=r.auth_code,
            reference=r.reference, status=r.status, matched_by=r.matched_by,
            order_id=r.order_id, till_amount_cents=r.till_amount_cents) for r in c.rows],
        mismatches=[MismatchOut(
            kind=m.kind, store=code[m.location_id], at=m.at, card_kind=m.card_kind,
            terminal_amount_cents=m.terminal_amount_cents,
            till_amount_cents=m.till_amount_cents, reference=m.reference,
            order_id=m.order_id, payment_status=m.payment_status) for m in c.mismatches],
        reported=sorted(code[i] for i in c.reported),
        unreported={code[i]: n for i, n in c.unreported.items()})


class TillSessionOut(BaseModel):
    store: str
    day: date
    register_name: str
    session_id: int
    z_number: int
    opened_by: str
    opened_at: datetime
    closed_by: str
    closed_at: datetime | None
    expected_cents: int
    counted_cents: int | None
    difference_cents: int | None = Field(description="counted − expected: below zero, "
                                                     "cash is missing")


class CashTotalOut(BaseModel):
    store: str
    start: date = Field(description="the day (or the month's first day)")
    sessions: int
    expected_cents: int
    counted_cents: int
    difference_cents: int
    uncounted: int


class CashOut(BaseModel):
    period: dict[str, date]
    sessions: list[TillSessionOut]
    per_day: list[CashTotalOut]
    per_month: list[CashTotalOut]


@router.get("/card-cash/cash", response_model=CashOut,
            summary="Closed drawer sessions with their counts and differences, per store "
                    "and day and month (reports.read at the store)")
async def cash_status(request: Request, actor: Reader,
                      since: Annotated[ReportDate, Query(alias="from")],
                      until: Annotated[ReportDate, Query(alias="to")],
                      store: StoreQuery = None) -> CashOut:
    if until < since:
        raise ValidationFailed("the period ends before it starts", code="invalid_period",
                               field="to")
    period = Period(since, until)
    stores = await _stores(request, actor, store)
    async with reports_db_of(request).reader() as s:
        tills = await cash.till_days(s, [loc.id for loc in stores], period,
                                     tz=settings_of(request).timezone)

    def total(t: cash.CashTotal) -> CashTotalOut:
        return CashTotalOut(store=t.store_code, start=t.day, sessions=t.sessions,
                            expected_cents=t.expected_cents, counted_cents=t.counted_cents,
                            difference_cents=t.difference_cents, uncounted=t.uncounted)

    return CashOut(
        period={"from": period.first, "to": period.last},
        sessions=[TillSessionOut(
            store=t.store_code, day=t.day, register_name=t.register_name,
            session_id=t.session_id,
            z_number=t.z_number, opened_by=t.opened_by, opened_at=t.opened_at,
            closed_by=t.closed_by, closed_at=t.closed_at, expected_cents=t.expected_cents,
            counted_cents=t.counted_cents, difference_cents=t.difference_cents)
            for t in tills],
        per_day=[total(t) for t in cash.totals(tills)],
        per_month=[total(t) for t in cash.totals(tills, monthly=True)])


class TerminalImportOut(BaseModel):
    import_id: int | None = Field(description="null: nothing new in the file")
    rows: int
    new: int
    unchanged: int
    matched: int
    confirmed: int = Field(description="offline card payments confirmed by the report")
    days: list[dict[str, str]] = Field(description="[{store, date}] the file covers")


@router.post("/card-cash/terminal-reports", response_model=TerminalImportOut,
             status_code=201,
             responses={409: {"description": "import_race: another import of these rows "
                                             "ran at the same moment"},
                        422: {"description": "terminal_report_invalid (every row error in "
                                             "`errors`), file_required, file_too_large"}},
             summary="Import a card terminal's day report, CSV as the body "
                     "(reconcile.write at every store it names)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string", "format": "binary",
                                         "maxLength": terminal_reports.MAX_BYTES}}}}})
async def import_terminal_report(request: Request, actor: Reconciler) -> TerminalImportOut:
    data = await _body(request, terminal_reports.MAX_BYTES)
    try:
        async with db_of(request).uow() as uow:
            r = await terminal_reports.import_report(uow, actor, "api.csv", data,
                                                     tz=settings_of(request).timezone)
            await uow.commit()
    except IntegrityError as exc:
        raise Conflict("another import of these rows ran at the same moment: send the "
                       "file again", code="import_race") from exc
    return TerminalImportOut(import_id=r.import_id, rows=r.rows, new=r.new,
                             unchanged=r.unchanged, matched=r.matched, confirmed=r.confirmed,
                             days=[{"store": code, "date": d.isoformat()}
                                   for code, d in r.days])


# --- offline sales' review flags ----------------------------------------------------------

FlagName = Literal["card_unconfirmed", "price_mismatch", "discount_over_limit",
                   "negative_stock", "after_close"]


class FlagOut(BaseModel):
    order_id: int
    store: str
    sold_at: datetime
    receipt: str
    total_cents: int
    flag: str
    state: Literal["open", "resolved"]
    note: str
    resolved_by: str
    resolved_at: datetime | None
    automatic: bool


@router.get("/flags", response_model=Page[FlagOut],
            summary="Offline sales to review, newest sale first (reports.read at the store)")
async def list_flags(request: Request, actor: Reader,
                     since: Annotated[ReportDate, Query(alias="from")],
                     until: Annotated[ReportDate, Query(alias="to")],
                     store: StoreQuery = None, flag: FlagName | None = None,
                     state: Literal["open", "resolved", "all"] = "open",
                     cursor: CursorQuery = None, limit: LimitQuery = 50) -> Page[FlagOut]:
    if until < since:
        raise ValidationFailed("the period ends before it starts", code="invalid_period",
                               field="to")
    stores = await _stores(request, actor, store)
    code = {loc.id: loc.code for loc in stores}
    key = decode_cursor(cursor, "n")
    start = int(key["n"]) if key is not None and isinstance(key["n"], int) else 0
    async with reports_db_of(request).reader() as s:
        items, _ = await flags.review_items(s, flags.ReviewQuery(
            tuple(code), Period(since, until), flag or "", state),
            tz=settings_of(request).timezone)
    # At most flags.MAX_ITEMS, built whole in a stable order: a position is the cursor.
    rows = [(start + i + 1, FlagOut(
        order_id=x.order_id, store=code[x.location_id], sold_at=x.sold_at,
        receipt=x.receipt, total_cents=x.total_cents, flag=x.flag,
        state="resolved" if x.resolved else "open", note=x.note, resolved_by=x.resolved_by,
        resolved_at=x.resolved_at, automatic=x.automatic))
        for i, x in enumerate(items[start:start + limit + 1])]
    page = page_of(rows, limit, lambda r: {"n": r[0]})
    return Page[FlagOut](items=[f for _, f in page.items], next_cursor=page.next_cursor)


class ResolveIn(Input):
    flag: FlagName
    note: str = Field(min_length=1, max_length=flags.MAX_NOTE,
                      description="what was checked and why the flag is closed")


class ResolvedOut(BaseModel):
    order_id: int
    flag: str
    note: str
    resolved_by: str
    resolved_at: datetime


@router.post("/flags/{order_id}/resolve", response_model=ResolvedOut,
             responses={404: {"description": "flag_not_found"},
                        409: {"description": "flag_resolved"}},
             summary="Close one review flag of an offline sale with a note (flags.resolve at "
                     "the order's store)")
async def resolve_flag(request: Request, body: ResolveIn,
                       order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                       actor: Annotated[Actor, api_requires("flags.resolve")]) -> ResolvedOut:
    async with db_of(request).uow() as uow:
        r = await flags.resolve(uow, actor, order_id, body.flag, body.note)
        out = ResolvedOut(order_id=r.order_id, flag=r.flag, note=r.note,
                          resolved_by=r.resolved_by, resolved_at=r.resolved_at)
        await uow.commit()
    return out


def _written(value: object) -> object:
    # A day is written YYYY-MM-DD: no number counted from 1970.
    if not isinstance(value, str | date):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


WrittenDay = Annotated[ReportDate, BeforeValidator(_written)]


class FetchIn(Input):
    from_: WrittenDay = Field(alias="from")
    to: WrittenDay

    model_config = {"populate_by_name": False}


class FetchOut(BaseModel):
    found: int = Field(description="settlements Paytrail has in the period")
    requested: list[str] = Field(description="their reports were asked for: they arrive "
                                             "at the report callback in a moment")
    already: list[str] = Field(description="imported before")
    failed: list[dict[str, str]] = Field(description="[{id, error}] not asked")


@router.post("/settlements/fetch", response_model=FetchOut, status_code=202,
             responses={502: {"description": "paytrail_unavailable: Paytrail could not be "
                                             "reached or refused"}},
             summary="Ask Paytrail for the period's settlement reports not imported yet "
                     "(reconcile.write)")
async def fetch_from_paytrail(request: Request, body: FetchIn,
                              actor: Reconciler) -> FetchOut:
    if body.to < body.from_:
        raise ValidationFailed("the period ends before it starts", code="invalid_period",
                               field="to")
    period = Period(body.from_, body.to)  # 422 period_too_long before Paytrail is asked
    try:
        out = await fetch.fetch_settlements(db_of(request), request.app.state.paytrail, actor,
                                            period, settings_of(request).resolved_public_url())
    except DomainError as exc:
        if exc.status in (401, 403):
            raise
        raise PaytrailUnavailable(exc.detail, code="paytrail_unavailable") from exc
    return FetchOut(found=out.found, requested=out.requested, already=out.already,
                    failed=[{"id": i, "error": e} for i, e in out.failed])


class PaytrailUnavailable(DomainError):
    status = 502
    code = "paytrail_unavailable"
