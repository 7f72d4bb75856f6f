"""Card and cash in the back office: upload the card terminal's daily report (finance,
owner), a day's terminal rows with their matches and the mismatches, and the cash per
till per day from the Z reports with the totals per store per day and month. Every
table downloads as CSV (`?format=csv&table=…`, docs/card-and-cash.md).

Thin: the rules are in `saumaton.cardcash`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import UploadFile

from saumaton.cardcash import cash, terminal_reports
from saumaton.cardcash.terminal_reports import TerminalReportInvalid
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.csvio.files import BOM, csv_line, excel_text, format_euros
from saumaton.i18n import LOCALES
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations
from saumaton.reports.period import Period, parse_period
from saumaton.web.auth import db_of, reports_db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    gettext,
    page_lang,
    page_router,
    render,
    settings_of,
)

router = page_router()
BASE = "/backoffice/card-cash"
TABLES = ("terminal", "mismatches", "cash", "cash_days", "cash_months")
ROW_MESSAGES = {
    "file_too_big": N_("The file is too big."),
    "not_utf8": N_("The file is not UTF-8 text. Save it as “CSV UTF-8”."),
    "empty_file": N_("The file is empty."),
    "no_rows": N_("The file has no rows."),
    "too_many_rows": N_("The file has too many rows (at most 50 000)."),
    "bad_csv": N_("The file is not valid CSV."),
    "bad_header": N_("The first line names the columns date;time;terminal_id;store;amount;"
                     "type;card_brand;masked_pan;auth_code;reference."),
    "wrong_column_count": N_("The row has a different number of columns than the first "
                             "line."),
    "invalid_date": N_("A date is YYYY-MM-DD or DD.MM.YYYY."),
    "invalid_time": N_("A time is HH:MM:SS."),
    "invalid_terminal": N_("A terminal id is 1–32 letters, digits, - or _."),
    "invalid_store": N_("Give the store's code."),
    "unknown_store": N_("No store has this code."),
    "forbidden": N_("You may not import for this store."),
    "invalid_amount": N_("An amount is euros with a decimal comma and two decimals, more "
                         "than zero, e.g. 12,90."),
    "invalid_type": N_("The type is purchase or refund."),
    "invalid_brand": N_("Give the card brand (at most 20 characters)."),
    "invalid_pan": N_("The card number must be masked: stars and the last four digits, "
                      "e.g. ************1234."),
    "invalid_auth_code": N_("An authorisation code is at most 12 letters and digits."),
    "invalid_reference": N_("A reference is 1–64 letters, digits, - _ . or /."),
    "duplicate_row": N_("Another row has the same terminal, type and reference."),
    "row_changed": N_("A row with this terminal, type and reference was imported earlier "
                      "with other figures."),
}
STATUS_LABELS = {
    "matched": N_("matched"), "confirmed": N_("matched, offline payment confirmed"),
    "amount_differs": N_("amount differs"), "terminal_only": N_("no payment in the till"),
}
MISMATCH_LABELS = {
    "terminal_only": N_("In the terminal report, not in the till"),
    "till_only": N_("In the till, missing from the terminal report"),
    "amount_differs": N_("Amounts differ"),
}
KIND_LABELS = {"purchase": N_("purchase"), "refund": N_("refund")}
MAX_UPLOAD = terminal_reports.MAX_BYTES


async def _stores(request: Request, actor: Actor) -> list[Location]:
    """The stores whose figures `actor` may read."""
    async with reports_db_of(request).reader() as s:
        return [loc for loc in await list_locations(s)
                if loc.kind == "store" and actor.can("reports.read", loc.id)]


def _today(request: Request) -> date:
    return utcnow().astimezone(ZoneInfo(settings_of(request).timezone)).date()


def _row_error(request: Request, error: dict[str, Any]) -> dict[str, Any]:
    own = ROW_MESSAGES.get(str(error.get("code", "")))
    return {"row": error.get("row"), "field": error.get("field"), "code": error.get("code"),
            "message": gettext(request, own) if own else str(error.get("message", ""))}


def _csv(name: str, header: Sequence[str], rows: Iterator[Sequence[object]]) -> Response:
    body = BOM + csv_line(header) + "".join(csv_line(r) for r in rows)
    return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def _page(request: Request, actor: Actor, *, day_text: str, store: str, since: str,
                until: str, fmt: str = "", table: str = "",
                errors: dict[str, Any] | None = None, status: int = 200) -> Response:
    tz = settings_of(request).timezone
    stores = await _stores(request, actor)
    chosen = [loc for loc in stores if loc.code == store] or stores
    ids = [loc.id for loc in chosen]
    by_id = {loc.id: loc for loc in stores}
    errors = dict(errors or {})
    today = _today(request)
    try:
        day = date.fromisoformat(day_text) if day_text else today
    except ValueError:
        day = today
        errors["day"] = gettext(request, N_("A date is written YYYY-MM-DD."))
        status = 422
    try:
        period = parse_period(since or None, until or None, today)
    except DomainError:
        period = parse_period(None, None, today)
        errors["period"] = gettext(request, N_(
            "Give the period as two dates YYYY-MM-DD, at most three years apart."))
        status = 422
    async with reports_db_of(request).reader() as s:
        card = await terminal_reports.card_day(s, ids, day, tz=tz)
        tills = await cash.till_days(s, ids, period, tz=tz)
    per_day, per_month = cash.totals(tills), cash.totals(tills, monthly=True)
    if fmt == "csv" and table in TABLES and not errors:
        return _export(table, day, period, card, tills, per_day, per_month, by_id)
    query = {"day": day.isoformat(), "since": period.first.isoformat(),
             "until": period.last.isoformat(), **({"store": store} if store else {})}
    imported = request.query_params.get("imported")
    return render(request, "backoffice/card_cash.html", {
        "title": gettext(request, N_("Card and cash")), "nav_key": "card-cash",
        "base": BASE, "stores": stores, "store": store if chosen != stores else "",
        "by_id": by_id, "day": day, "period": period, "card": card, "tills": tills,
        "per_day": per_day, "per_month": per_month, "errors": errors,
        "may_import": actor.can("reconcile.write"),
        "status_labels": STATUS_LABELS, "mismatch_labels": MISMATCH_LABELS,
        "kind_labels": KIND_LABELS,
        "fmt_day": lambda d: format_date(d, "medium", locale=LOCALES[page_lang(request)]),
        "fmt_month": lambda d: format_date(d, "LLLL yyyy", locale=LOCALES[page_lang(request)]),
        "csv_href": lambda t: f"{BASE}?{urlencode({**query, 'format': 'csv', 'table': t})}",
        "prev_day": (day - timedelta(days=1)).isoformat(),
        "next_day": (day + timedelta(days=1)).isoformat(),
        "result": {k: request.query_params.get(k, "0") for k in
                   ("imported", "unchanged", "matched", "confirmed")} if imported else None,
    }, status=status)


def _export(table: str, day: date, period: Period, card: terminal_reports.CardDay,
            tills: list[cash.TillDay], per_day: list[cash.CashTotal],
            per_month: list[cash.CashTotal], by_id: dict[int, Location]) -> Response:
    def code(location_id: int) -> str:
        loc = by_id.get(location_id)
        return loc.code if loc else str(location_id)

    if table == "terminal":
        return _csv(f"card-terminal-{day.isoformat()}.csv", (
            "store", "time_utc", "terminal_id", "type", "amount", "card_brand", "masked_pan",
            "auth_code", "reference", "status", "matched_by", "order", "till_amount"),
            ((code(r.location_id), r.occurred_at.isoformat(), r.terminal_id, r.kind,
              format_euros(r.amount_cents), excel_text(r.card_brand), r.masked_pan,
              r.auth_code, excel_text(r.reference), r.status, r.matched_by, r.number,
              format_euros(r.till_amount_cents)) for r in card.rows))
    if table == "mismatches":
        return _csv(f"card-mismatches-{day.isoformat()}.csv", (
            "store", "time_utc", "kind", "type", "terminal_amount", "till_amount",
            "reference", "order", "payment_status"),
            ((code(m.location_id), m.at.isoformat(), m.kind, m.card_kind,
              format_euros(m.terminal_amount_cents), format_euros(m.till_amount_cents),
              excel_text(m.reference), m.number, m.payment_status)
             for m in card.mismatches))
    span = f"{period.first.isoformat()}_{period.last.isoformat()}"
    if table == "cash":
        return _csv(f"cash-per-till-{span}.csv", (
            "store", "day", "register", "z_number", "opened_by", "opened_at_utc",
            "closed_by", "closed_at_utc", "expected", "counted", "difference"),
            ((t.store_code, t.day.isoformat(), excel_text(t.register_name), t.z_number,
              excel_text(t.opened_by), t.opened_at.isoformat(), excel_text(t.closed_by),
              t.closed_at.isoformat() if t.closed_at else "", format_euros(t.expected_cents),
              format_euros(t.counted_cents), format_euros(t.difference_cents))
             for t in tills))
    rows = per_day if table == "cash_days" else per_month
    return _csv(f"{table.replace('_', '-')}-{span}.csv", (
        "store", "day" if table == "cash_days" else "month", "sessions", "expected",
        "counted", "difference"),
        ((t.store_code, t.day.isoformat() if table == "cash_days" else t.day.isoformat()[:7],
          t.sessions, format_euros(t.expected_cents), format_euros(t.counted_cents),
          format_euros(t.difference_cents)) for t in rows))


@router.get(BASE)
async def card_cash(request: Request, actor: Annotated[Actor, requires("reports.read")],
                    day: Annotated[str, Query(max_length=10)] = "",
                    store: Annotated[str, Query(max_length=32)] = "",
                    since: Annotated[str, Query(max_length=10)] = "",
                    until: Annotated[str, Query(max_length=10)] = "",
                    format: Annotated[str, Query(max_length=8)] = "",
                    table: Annotated[str, Query(max_length=16)] = "") -> Response:
    return await _page(request, actor, day_text=day, store=store, since=since, until=until,
                       fmt=format, table=table)


@router.post(BASE)
async def upload(request: Request,
                 actor: Annotated[Actor, requires("reconcile.write")]) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD + 64 * 1024:
        return await _page(request, actor, day_text="", store="", since="", until="",
                           status=413, errors={"file": gettext(request, N_(
                               "The file is too big."))})
    form = await checked_form(request)
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return await _page(request, actor, day_text="", store="", since="", until="",
                           status=422, errors={"file": gettext(request, N_(
                               "Choose the terminal's report file (CSV)."))})
    data = await file.read(MAX_UPLOAD + 1)
    try:
        async with db_of(request).uow() as uow:
            result = await terminal_reports.import_report(
                uow, actor, file.filename, data, tz=settings_of(request).timezone)
            await uow.commit()
    except IntegrityError:  # the same rows imported by someone else at this moment
        return await _page(request, actor, day_text="", store="", since="", until="",
                           status=409, errors={"file": gettext(request, N_(
                               "Another import of these rows ran at the same moment: "
                               "upload the file again."))})
    except TerminalReportInvalid as exc:
        rows = [_row_error(request, e) for e in exc.extra["errors"]]
        return await _page(request, actor, day_text="", store="", since="", until="",
                           status=422, errors={"file": gettext(request, N_(
                               "The file was not imported: fix these %(count)s errors and "
                               "upload it again."), count=str(len(rows))),
                               "rows": rows})
    day = result.days[0][1].isoformat() if result.days else ""
    return RedirectResponse(f"{BASE}?" + urlencode({
        "day": day, "imported": result.new, "unchanged": result.unchanged,
        "matched": result.matched, "confirmed": result.confirmed}), status_code=303)
