"""Paytrail settlement reconciliation in the back office: a month at a glance, each
settlement with every line and its state, the discrepancies with their causes, the
upload of a report file and "fetch from Paytrail"; CSV of lines and discrepancies.

Thin: parsing, matching and the figures are in `saumaton.settlements`. Reading needs
reports.read at every location (the settlements are the whole shop's); importing,
fetching and entering the bank amount need reconcile.write. Paytrail's report
callback (`POST /paytrail/settlement-report/{token}`) is here too: the token in its URL
is its credential.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.csvio.files import BOM, csv_line, format_euros
from saumaton.i18n import LOCALES
from saumaton.payments.paytrail.client import PaytrailClient
from saumaton.reports.period import Period, parse_period
from saumaton.settlements import fetch
from saumaton.settlements.parsing import ReportInvalid, euros_to_cents, parse_report
from saumaton.settlements.services import (
    Discrepancy,
    discrepancies,
    get_settlement,
    import_report,
    month_view,
    set_bank_amount,
    settlement_lines,
    year_totals,
)
from saumaton.web.auth import db_of, reports_db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import checked_form, gettext, page_lang, page_router, render, settings_of
from saumaton.web.route_access import public

router = page_router()
BASE = "/backoffice/settlements"
MAX_UPLOAD = 50 * 1024 * 1024
SHOWN_LINES = 500  # on the page; the CSV has every line

CAUSES = {
    "settled_unknown": N_("Settled but not ours"),
    "amount_mismatch": N_("Amount differs from ours"),
    "status_mismatch": N_("Settled but not paid with us"),
    "duplicate": N_("Settled twice"),
    "not_settled": N_("Paid but never settled"),
    "refund_not_deducted": N_("Refund not deducted"),
}
ADVICE = {
    "settled_unknown": N_("Find the payment in Paytrail's merchant panel by its stamp or "
                          "reference; it may belong to another shop or a test."),
    "amount_mismatch": N_("Compare the order with Paytrail's payment; ask Paytrail if the "
                          "settled amount is wrong."),
    "status_mismatch": N_("We hold this payment as failed or this refund as not sent: "
                          "check the order and refund it or complete it."),
    "duplicate": N_("The same payment or refund is in two settlements: ask Paytrail to "
                    "correct the later one."),
    "not_settled": N_("Paid with us but in no settlement after the grace period: fetch "
                      "the newest settlements, then ask Paytrail."),
    "refund_not_deducted": N_("Sent to Paytrail but not deducted from any settlement: "
                              "check the refund in Paytrail's merchant panel."),
}
FILE_ERRORS = {
    "invalid_amount": N_("Row %(row)s, %(field)s: “%(value)s” is not an amount in euros "
                         "with at most two decimals."),
    "invalid_date": N_("Row %(row)s, %(field)s: “%(value)s” is not a date (DD-MM-YYYY)."),
    "invalid_time": N_("Row %(row)s, %(field)s: “%(value)s” is not a time (HH:mm)."),
    "unknown_status": N_("Row %(row)s, %(field)s: “%(value)s” is not one of Paytrail's "
                         "statuses."),
    "required": N_("Row %(row)s: %(field)s is missing."),
    "no_identifier": N_("Row %(row)s: no stamp, reference or archive number to match by."),
    "too_long": N_("Row %(row)s, %(field)s: the value is too long."),
    "invalid_refunditems": N_("Row %(row)s, %(field)s: “%(value)s” is not written "
                              "stamp:amount|stamp:amount."),
    "invalid_json": N_("The file is not valid JSON (%(value)s)."),
    "not_utf8": N_("The file is not UTF-8 text."),
    "invalid_layout": N_("Row %(row)s: this is not a Paytrail report (a list of rows, or "
                         "an object with “payments”)."),
    "missing_column": N_("The file has no column %(field)s."),
    "wrong_column_count": N_("Row %(row)s has %(value)s columns, not as many as the "
                             "header."),
    "no_rows": N_("The report has no rows."),
    "too_many_rows": N_("The file has too many rows (%(value)s)."),
}


def _day_formatter(request: Request) -> Callable[[date | None], str]:
    locale = LOCALES[page_lang(request)]

    def day(d: date | None) -> str:
        return format_date(d, "medium", locale=locale) if d else ""
    return day


def _today(request: Request) -> date:
    return utcnow().astimezone(ZoneInfo(settings_of(request).timezone)).date()


def _month(request: Request) -> tuple[Period, str]:
    """The `month` query value (YYYY-MM; default this month) as a period."""
    raw = request.query_params.get("month", "")
    try:
        first = datetime.strptime(raw, "%Y-%m").date() if raw else _today(request)
    except ValueError:
        raise ValidationFailed("a month is written YYYY-MM", code="invalid_month",
                               field="month") from None
    period = Period.month(first.year, first.month)
    return period, f"{first.year:04d}-{first.month:02d}"


def _month_value(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _csv(name: str, header: list[str], rows: list[list[object]]) -> Response:
    async def body() -> AsyncIterator[str]:
        yield BOM + csv_line(header)
        for row in rows:
            yield csv_line(row)
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@router.get(BASE)
async def month_page(request: Request,
                     actor: Annotated[Actor, requires("reports.read", everywhere=True)]
                     ) -> Response:
    settings = settings_of(request)
    period, month = _month(request)
    async with reports_db_of(request).reader() as s:
        view = await month_view(s, period, settings.timezone, _today(request),
                                settings.settlement_grace_days)
        year = await year_totals(s, period.first.year)
    if request.query_params.get("format") == "year-csv":
        return _csv(f"settlement-fees-{period.first.year}.csv", [
            "month", "settlements", "payments", "refunds", "fees", "payout", "discrepancies"],
            [[_month_value(y.month), y.settlements, format_euros(y.payments_cents),
              format_euros(y.refunds_cents), format_euros(y.fees_cents),
              format_euros(y.payout_cents), y.discrepancies] for y in year])
    if request.query_params.get("format") == "csv":
        return _csv(f"settlements-{month}.csv", [
            "settled_on", "settlement", "bank_reference", "source", "payments", "refunds",
            "fees", "payout", "bank_amount", "payout_check", "lines", "discrepancies"], [
            [x.settled_on.isoformat() if x.settled_on else "", x.paytrail_id, x.reference,
             x.source, format_euros(x.payments_cents), format_euros(x.refunds_cents),
             format_euros(x.fees_cents), format_euros(x.payout_cents),
             format_euros(x.bank_cents), "ok" if x.payout_ok else "mismatch", x.line_count,
             x.discrepancy_count] for x in view.settlements])
    prev = period.previous().first
    following = period.last.toordinal() + 1
    return render(request, "backoffice/settlements/month.html", {
        "title": gettext(request, N_("Paytrail settlements")), "nav_key": "settlements",
        "view": view, "month": month, "base": BASE, "day": _day_formatter(request),
        "year": year, "year_number": period.first.year,
        "month_name": lambda d: format_date(d, "LLLL yyyy", locale=LOCALES[page_lang(request)]),
        "prev_month": _month_value(prev),
        "next_month": _month_value(date.fromordinal(following)),
        "causes": CAUSES, "may_import": actor.can("reconcile.write"),
        "grace": settings.settlement_grace_days})


@router.get(BASE + "/discrepancies")
async def discrepancy_page(request: Request,
                           actor: Annotated[Actor, requires("reports.read", everywhere=True)]
                           ) -> Response:
    settings = settings_of(request)
    period, month = _month(request)
    async with reports_db_of(request).reader() as s:
        found = await discrepancies(s, period, settings.timezone, _today(request),
                                    settings.settlement_grace_days)
    if request.query_params.get("format") == "csv":
        return _csv(f"settlement-discrepancies-{month}.csv", [
            "cause", "settlement", "row", "kind", "stamp", "reference", "transaction_id",
            "amount", "our_amount", "order"], [_discrepancy_row(d) for d in found])
    counts: dict[str, int] = {}
    for d in found:
        counts[d.cause] = counts.get(d.cause, 0) + 1
    return render(request, "backoffice/settlements/discrepancies.html", {
        "title": gettext(request, N_("Settlement discrepancies")), "nav_key": "settlements",
        "found": found, "counts": counts, "month": month, "base": BASE, "causes": CAUSES,
        "advice": ADVICE, "grace": settings.settlement_grace_days,
        "may_import": actor.can("reconcile.write")})


def _discrepancy_row(d: Discrepancy) -> list[object]:
    return [d.cause, d.paytrail_id, d.row or "", d.kind, d.stamp, d.reference,
            d.transaction_id, format_euros(d.amount_cents), format_euros(d.ours_cents),
            f"{d.order_id:06d}" if d.order_id else ""]


@router.get(BASE + "/import")
async def import_page(request: Request,
                      actor: Annotated[Actor, requires("reconcile.write")]) -> Response:
    return await _import_form(request)


async def _import_form(request: Request, *, errors: dict[str, Any] | None = None,
                       values: dict[str, str] | None = None, notice: str = "",
                       status: int = 200) -> Response:
    today = _today(request)
    return render(request, "backoffice/settlements/import.html", {
        "title": gettext(request, N_("Import settlements")), "nav_key": "settlements",
        "errors": errors or {}, "values": values or {}, "notice": notice, "base": BASE,
        "since": today.replace(day=1).isoformat(), "until": today.isoformat(),
        "requests": await fetch.recent_requests(db_of(request)),
        "day": _day_formatter(request)}, status=status)


def _file_errors(request: Request, exc: ReportInvalid) -> list[str]:
    out = []
    for e in exc.errors:
        template = FILE_ERRORS.get(e.code)
        if template is None:
            out.append(f"{e.row} {e.field}: {e.code}")
        else:
            out.append(gettext(request, template, row=str(e.row), field=e.field,
                               value=e.value))
    return out


@router.post(BASE + "/import")
async def upload(request: Request,
                 actor: Annotated[Actor, requires("reconcile.write")]) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD + 64 * 1024:
        return await _import_form(request, status=413, errors={"file": [gettext(
            request, N_("The file is too big: at most %(mb)s MB."),
            mb=str(MAX_UPLOAD // (1024 * 1024)))]})
    form = await checked_form(request)
    file = form.get("file")
    bank_raw = str(form.get("bank_amount") or "").strip()
    values = {"bank_amount": bank_raw}
    errors: dict[str, Any] = {}
    bank_cents: int | None = None
    if bank_raw:
        try:
            bank_cents = euros_to_cents(bank_raw.replace("€", ""), signed=True)
        except ValueError:
            errors["bank_amount"] = gettext(
                request, N_("Write the amount in euros, e.g. 1234,56."))
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = [gettext(request, N_("Choose Paytrail's report file (JSON or CSV)."))]
    if errors or not isinstance(file, UploadFile):
        return await _import_form(request, errors=errors, values=values, status=422)
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return await _import_form(request, values=values, status=413, errors={"file": [
            gettext(request, N_("The file is too big: at most %(mb)s MB."),
                    mb=str(MAX_UPLOAD // (1024 * 1024)))]})
    try:
        report = parse_report(data, file.filename or "")
    except ReportInvalid as exc:
        return await _import_form(request, values=values, status=422,
                                  errors={"file": _file_errors(request, exc)})
    try:
        async with db_of(request).uow() as uow:
            out = await import_report(uow, actor, report, source="file",
                                      filename=file.filename or "", bank_cents=bank_cents)
            await uow.commit()
    except ValidationFailed as exc:
        if exc.code != "bank_amount_many":
            raise
        return await _import_form(request, values=values, status=422, errors={
            "bank_amount": gettext(request, N_(
                "The file holds several settlements: enter each one's bank amount on "
                "its own page."))})
    ids = out.imported or out.unchanged
    if len(ids) == 1:
        flag = "imported" if out.imported else "unchanged"
        return RedirectResponse(f"{BASE}/{ids[0]}?{flag}=1", status_code=303)
    return await _import_form(request, notice=gettext(
        request, N_("%(new)s settlements imported, %(old)s were imported before."),
        new=str(len(out.imported)), old=str(len(out.unchanged))))


@router.post(BASE + "/fetch")
async def fetch_from_paytrail(request: Request,
                              actor: Annotated[Actor, requires("reconcile.write")]
                              ) -> Response:
    form = await checked_form(request)
    since, until = str(form.get("since") or ""), str(form.get("until") or "")
    values = {"since": since, "until": until}
    try:
        period = parse_period(since or None, until or None, _today(request))
    except ValidationFailed as exc:
        return await _import_form(request, values=values, status=422, errors={
            exc.field or "since": gettext(request, N_("Write the dates as YYYY-MM-DD, "
                                                      "the first before the last."))})
    client: PaytrailClient = request.app.state.paytrail
    try:
        out = await fetch.fetch_settlements(db_of(request), client, actor, period,
                                            settings_of(request).resolved_public_url())
    except DomainError as exc:
        return await _import_form(request, values=values, status=502, errors={
            "fetch": gettext(request, N_("Paytrail could not be reached or refused: "
                                         "%(error)s"), error=exc.detail)})
    notice = gettext(request, N_(
        "Paytrail has %(found)s settlements in the period: %(requested)s reports asked "
        "(they arrive in a moment), %(already)s imported before."),
        found=str(out.found), requested=str(len(out.requested)),
        already=str(len(out.already)))
    if out.failed:
        notice += " " + gettext(request, N_("Not asked: %(ids)s."),
                                ids=", ".join(i for i, _ in out.failed))
    return await _import_form(request, values=values, notice=notice)


@router.get(BASE + "/{settlement_id}")
async def settlement_page(request: Request, settlement_id: int,
                          actor: Annotated[Actor, requires("reports.read", everywhere=True)]
                          ) -> Response:
    only = request.query_params.get("only") == "discrepancies"
    as_csv = request.query_params.get("format") == "csv"
    async with reports_db_of(request).reader() as s:
        settlement = await get_settlement(s, settlement_id)
        lines = await settlement_lines(s, settlement_id, only_discrepancies=only,
                                       limit=None if as_csv else SHOWN_LINES)
    if as_csv:
        sid = settlement.paytrail_id
        return _csv(f"settlement-{sid}.csv", [
            "settlement", "settled_on", "row", "kind", "stamp", "reference",
            "transaction_id", "status", "entry_date", "amount", "payment_method_fee",
            "payment_method_commission", "shop_in_shop_commission", "order", "state",
            "cause"], [
            [sid, settlement.settled_on.isoformat() if settlement.settled_on else "", x.row,
             x.kind, x.stamp, x.reference, x.transaction_id, x.status,
             x.entry_date.isoformat() if x.entry_date else "", format_euros(x.amount_cents),
             format_euros(x.fee_cents), format_euros(x.commission_cents),
             format_euros(x.shop_commission_cents),
             f"{x.order_id:06d}" if x.order_id else "", x.state, x.cause] for x in lines])
    notice = ""
    if request.query_params.get("imported"):
        notice = gettext(request, N_("The settlement was imported."))
    elif request.query_params.get("unchanged"):
        notice = gettext(request, N_("This settlement was imported before; nothing changed."))
    return render(request, "backoffice/settlements/detail.html", {
        "title": gettext(request, N_("Settlement %(id)s"), id=settlement.paytrail_id),
        "nav_key": "settlements", "s": settlement, "lines": lines, "only": only,
        "shown_max": SHOWN_LINES, "base": BASE, "causes": CAUSES, "notice": notice,
        "day": _day_formatter(request), "may_import": actor.can("reconcile.write"),
        "errors": {}, "month": _month_value(settlement.settled_on)
        if settlement.settled_on else ""})


@router.post(BASE + "/{settlement_id}/bank-amount")
async def bank_amount(request: Request, settlement_id: int,
                      actor: Annotated[Actor, requires("reconcile.write")]) -> Response:
    form = await checked_form(request)
    raw = str(form.get("bank_amount") or "").strip()
    cents: int | None = None
    if raw:
        try:
            cents = euros_to_cents(raw.replace("€", ""), signed=True)
        except ValueError:
            async with reports_db_of(request).reader() as s:
                settlement = await get_settlement(s, settlement_id)
                lines = await settlement_lines(s, settlement_id, limit=SHOWN_LINES)
            return render(request, "backoffice/settlements/detail.html", {
                "title": gettext(request, N_("Settlement %(id)s"), id=settlement.paytrail_id),
                "nav_key": "settlements", "s": settlement, "lines": lines, "only": False,
                "shown_max": SHOWN_LINES, "base": BASE, "causes": CAUSES, "notice": "",
                "day": _day_formatter(request), "may_import": True, "month": "",
                "errors": {"bank_amount": gettext(
                    request, N_("Write the amount in euros, e.g. 1234,56."))}}, status=422)
    async with db_of(request).uow() as uow:
        await set_bank_amount(uow, actor, settlement_id, cents)
        await uow.commit()
    return RedirectResponse(f"{BASE}/{settlement_id}", status_code=303)


@router.post(fetch.CALLBACK_PATH + "/{token}", dependencies=[public(
    "Paytrail delivers a requested settlement report: only the unguessable token of "
    "our own request is accepted")])
async def report_callback(request: Request, token: str) -> Response:
    """Paytrail POSTs the report here (the token names the request). 200 when it is
    imported, or was before; Paytrail re-sends on anything else."""
    if len(token) > 64:
        return PlainTextResponse("not found", status_code=404)
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        return PlainTextResponse("too large", status_code=413)
    try:
        out = await fetch.receive_report(db_of(request), token, body)
    except ReportInvalid as exc:
        return PlainTextResponse(exc.detail, status_code=422)
    except DomainError as exc:
        return PlainTextResponse(exc.code, status_code=exc.status)
    return PlainTextResponse("already imported" if out is None else "imported")
