"""The cash drawer pages: open with a float, cash in and out, close with the count, Z reports.

Thin: amounts typed in euros are parsed here, everything else is
`saumaton.tills.drawer` (opening, movements, closing) and `saumaton.tills.zreport`
(the X report of the open drawer, the stored Z reports).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.core.errors import DomainError, Forbidden, NotAuthenticated, NotFound
from saumaton.core.types import MAX_ID, MAX_INT32
from saumaton.tills.drawer import cash_movement, close_session, open_session, open_session_at
from saumaton.tills.zreport import get_report, list_reports, z_report
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_, money, parse_money
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_lang,
    page_router,
    render,
    settings_of,
)
from saumaton.web.pos.routes import Till, till_requires

router = page_router("/pos")
ZNumber = Annotated[int, Path(ge=1, le=MAX_INT32)]

# Notes and coins for the counting helper, in cents.
DENOMINATIONS = (50000, 20000, 10000, 5000, 2000, 1000, 500, 200, 100, 50, 20, 10, 5)
_MESSAGES = {
    "drawer_already_open": N_("The till is already open."),
    "drawer_closed": N_("This till session is already closed."),
    "drawer_not_found": N_("This till session was not found. Reload the page."),
    "invalid_amount": N_("Enter an amount above zero and at most €100,000."),
    "amount_required": N_("Enter the amount."),
    "reason_required": N_("Give a reason."),
    "reason_too_long": N_("The reason is too long (at most 200 characters)."),
    "count_required": N_("Enter the cash you counted in the drawer."),
    "invalid_count": N_("Enter the counted cash as an amount such as 215,40."),
    "note_too_long": N_("The note is too long (at most 500 characters)."),
    "idempotency_key_reused": N_("This form was already sent with other figures. Reload the page."),
    "z_report_not_found": N_("There is no such Z report."),
}
_BAD_MONEY = N_("Enter an amount such as 150,00.")


def _new_key() -> str:
    return secrets.token_urlsafe(18)


def _key(form: FormData) -> str:
    key = form.get("key")
    return key if isinstance(key, str) and 16 <= len(key) <= 64 else _new_key()


def _message(request: Request, exc: DomainError) -> str:
    text = _MESSAGES.get(exc.code)
    return gettext(request, text) if text else error_message(request, exc)


def _money(request: Request, form: FormData, name: str) -> tuple[int | None, str | None]:
    """(cents, error): what was typed in euros."""
    try:
        return parse_money(str(form.get(name) or "")[:32]), None
    except ValueError:
        return None, gettext(request, _BAD_MONEY)


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() \
        and 0 < int(value) <= MAX_ID else None


# --- open / overview ---------------------------------------------------------------------

async def _overview(request: Request, till: Till, *, errors: dict[str, str] | None = None,
                    values: dict[str, str] | None = None, status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        drawer = await open_session_at(s, till.location.id)
        report = None if drawer is None else await z_report(s, drawer.id)
    context: dict[str, Any] = {
        "till": till, "drawer": drawer, "report": report, "errors": errors or {},
        "values": values or {}, "key_in": _new_key(), "key_out": _new_key(),
        "key": _new_key(), "saved": request.query_params.get("saved", ""),
    }
    if drawer is None:
        context["title"] = gettext(request, N_("Open the till"))
        return _no_cache(render(request, "pos/drawer_open.html", context, status=status))
    context["title"] = gettext(request, N_("Cash drawer"))
    return _no_cache(render(request, "pos/drawer.html", context, status=status))


@router.get("/{code}/drawer")
async def drawer_page(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    return await _overview(request, till)


@router.post("/{code}/drawer")
async def open_drawer(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    form = await checked_form(request)
    float_cents, error = _money(request, form, "float")
    typed = str(form.get("float") or "")[:32]
    if error is None and float_cents is None:
        error = gettext(request, N_("Enter the cash in the drawer, e.g. 150,00."))
    if error is None and float_cents is not None:
        try:
            async with db_of(request).uow() as uow:
                await open_session(uow, till.actor, till.location.id, float_cents,
                                   _key(form))
                await uow.commit()
        except (Forbidden, NotAuthenticated):
            raise
        except DomainError as exc:
            if exc.code == "drawer_already_open":
                return RedirectResponse(f"{till.base}/drawer", status_code=303)
            error = _message(request, exc)
        else:
            return RedirectResponse(till.base, status_code=303)
    return await _overview(request, till, errors={"float": error or ""},
                           values={"float": typed}, status=422)


@router.post("/{code}/drawer/cash")
async def cash_in_out(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    form = await checked_form(request)
    kind = "out" if form.get("kind") == "out" else "in"
    amount, error = _money(request, form, "amount")
    reason = str(form.get("reason") or "")[:500]
    errors: dict[str, str] = {}
    if error:
        errors[f"{kind}-amount"] = error
    else:
        try:
            async with db_of(request).uow() as uow:
                await cash_movement(uow, till.actor, _int(form.get("session_id")) or 0, kind,
                                    amount, reason, _key(form), location_id=till.location.id)
                await uow.commit()
        except (Forbidden, NotAuthenticated):
            raise
        except DomainError as exc:
            field = exc.field if exc.field in ("amount", "reason") else "amount"
            errors[f"{kind}-{field}"] = _message(request, exc)
        else:
            return RedirectResponse(f"{till.base}/drawer?saved={kind}", status_code=303)
    return await _overview(request, till, errors=errors, status=422, values={
        f"{kind}-amount": str(form.get("amount") or "")[:32], f"{kind}-reason": reason[:200]})


# --- closing -----------------------------------------------------------------------------

async def _close_page(request: Request, till: Till, *, errors: dict[str, str] | None = None,
                      values: dict[str, str] | None = None, status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        drawer = await open_session_at(s, till.location.id)
        report = None if drawer is None else await z_report(s, drawer.id)
    if drawer is None:
        return RedirectResponse(f"{till.base}/drawer", status_code=303)
    return _no_cache(render(request, "pos/drawer_close.html", {
        "title": gettext(request, N_("Close the till")), "till": till, "drawer": drawer,
        "report": report, "errors": errors or {}, "values": values or {},
        "denominations": DENOMINATIONS}, status=status))


@router.get("/{code}/drawer/close")
async def close_form(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    return await _close_page(request, till)


@router.post("/{code}/drawer/close")
async def close_drawer(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    form = await checked_form(request)
    counted, error = _money(request, form, "counted")
    note = str(form.get("note") or "")[:1000]
    errors: dict[str, str] = {}
    if error:
        errors["counted"] = gettext(request, N_(
            "Enter the counted cash as an amount such as 215,40."))
    else:
        try:
            async with db_of(request).uow() as uow:
                confirmed = form.get("confirm_difference") == "1"
                report = await close_session(
                    uow, till.actor, _int(form.get("session_id")) or 0, counted, note,
                    location_id=till.location.id, confirm_over_cents=None if confirmed
                    else settings_of(request).pos_close_confirm_cents)
                await uow.commit()
        except (Forbidden, NotAuthenticated):
            raise
        except DomainError as exc:
            if exc.code == "drawer_closed":
                return RedirectResponse(f"{till.base}/reports", status_code=303)
            if exc.code == "difference_needs_confirmation":
                errors["confirm_difference"] = "1"
                errors["counted"] = gettext(request, N_(
                    "The counted cash differs from the expected by %(difference)s. Count "
                    "again; if the count is right, tick the box and close."),
                    difference=money(abs(exc.extra["difference_cents"]), page_lang(request)))
            else:
                errors["note" if exc.field == "note" else "counted"] = _message(request, exc)
        else:
            return RedirectResponse(f"{till.base}/reports/{report.z_number}?closed=1",
                                    status_code=303)
    return await _close_page(request, till, errors=errors, status=422, values={
        "counted": str(form.get("counted") or "")[:32], "note": note[:500]})


# --- Z reports ---------------------------------------------------------------------------

@router.get("/{code}/reports")
async def reports(request: Request,
        till: Annotated[Till, till_requires("orders.read")]) -> Response:
    async with db_of(request).reader() as s:
        found = await list_reports(s, till.location.id, 100)
    return _no_cache(render(request, "pos/reports.html", {
        "title": gettext(request, N_("Z reports")), "till": till, "reports": found}))


@router.get("/{code}/reports/{z_number}")
async def report_page(request: Request,
        till: Annotated[Till, till_requires("orders.read")], z_number: ZNumber) -> Response:
    try:
        async with db_of(request).reader() as s:
            report = await get_report(s, till.location.id, z_number)
    except NotFound as exc:
        return _no_cache(error_page(request, 404, _message(request, exc)))
    return _no_cache(render(request, "pos/zreport.html", {
        "title": gettext(request, N_("Z report %(number)s"), number=z_number), "till": till,
        "report": report, "just_closed": request.query_params.get("closed") == "1"}))
