"""Returns at the till: find the order (any channel, any store), take goods back, refund
them (the original payment, cash, the card terminal or store credit), print or e-mail
the credit receipt; and receive postal returns at this store.

Thin: finding is `orders.lookup`, what is returnable and every rule about windows,
amounts, stock and refunds is `saumaton.returns` (the pages only read the form).
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.core.errors import DomainError, NotFound
from saumaton.core.types import MAX_ID
from saumaton.customers.identities import normalise_email
from saumaton.orders.lookup import find_orders
from saumaton.orders.services import get_order
from saumaton.returns.services import ExchangeOut, email_credit_receipt, get_return
from saumaton.returns.services import credit_receipt as credit_receipt_of
from saumaton.tills.drawer import open_session_at
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
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
from saumaton.web.pos.exchange import Exchange, read_exchange
from saumaton.web.pos.routes import OrderId, Till, till_requires
from saumaton.web.returns_forms import (
    REASONS,
    ReturnForm,
    error_fields,
    messages,
    post_returns,
    read_return_form,
    receive,
    returnable_order,
    take_at_till,
)

router = page_router("/pos")
ReturnId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _secret(request: Request) -> str:
    return settings_of(request).resolved_secret_key()


# --- finding ------------------------------------------------------------------------------

@router.get("/{code}/returns")
async def returns_home(request: Request,
        till: Annotated[Till, till_requires("returns.create")],
                       q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Scan the receipt's or e-mail's code, type the order number, or the customer's
    phone or e-mail: one order opens, several are listed."""
    typed = q.strip()
    found = []
    errors: dict[str, str] = {}
    if "q" in request.query_params:
        if not typed:
            errors["q"] = gettext(request, N_(
                "Scan the receipt's code or type an order number, a phone number or an "
                "e-mail address."))
        else:
            async with db_of(request).reader() as s:
                found = await find_orders(s, typed, _secret(request))
            if len(found) == 1:
                return RedirectResponse(f"{till.base}/returns/orders/{found[0].id}",
                                        status_code=303)
            if not found:
                errors["q"] = gettext(request, N_("No order matches %(q)s."), q=typed)
    return _no_cache(render(request, "pos/returns.html", {
        "title": gettext(request, N_("Returns")), "till": till, "q": typed,
        "found": found, "errors": errors}, status=404 if typed and not found else 200))


# --- postal returns received at this store ---------------------------------------------

@router.get("/{code}/returns/receive")
async def receive_list(request: Request,
        till: Annotated[Till, till_requires("returns.create")],
                       q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Returns on their way by post; scanning a return code opens it."""
    typed = q.strip()
    errors: dict[str, str] = {}
    async with db_of(request).reader() as s:
        found = await post_returns(s, typed, secret=_secret(request))
    if typed and len(found) == 1:
        return RedirectResponse(f"{till.base}/returns/receive/{found[0].id}", status_code=303)
    if typed and not found:
        errors["q"] = gettext(request, N_("No return on its way matches %(q)s."), q=typed)
    return _no_cache(render(request, "pos/receive.html", {
        "title": gettext(request, N_("Returns by post")), "till": till, "q": typed,
        "found": found, "errors": errors, "base": f"{till.base}/returns/receive"}))


async def _receive_page(request: Request, till: Till, return_id: int, *,
                        errors: dict[str, str] | None = None, status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
    if ret.status == "completed" and ret.location_id == till.location.id:
        return RedirectResponse(f"{till.base}/returns/{ret.id}", status_code=303)
    return _no_cache(render(request, "pos/receive_one.html", {
        "title": gettext(request, N_("Return %(code)s"), code=ret.code), "till": till,
        "ret": ret, "errors": errors or {}, "show_terminal": True,
        "action": f"{till.base}/returns/receive/{ret.id}"}, status=status))


@router.get("/{code}/returns/receive/{return_id}")
async def receive_form(request: Request,
        till: Annotated[Till, till_requires("returns.create")], return_id: ReturnId) -> Response:
    return await _receive_page(request, till, return_id)


@router.post("/{code}/returns/receive/{return_id}")
async def receive_parcel(request: Request,
        till: Annotated[Till, till_requires("returns.create")], return_id: ReturnId) -> Response:
    """The parcel is here and inspected: goods back (or written off) and refunded."""
    posted = await checked_form(request)
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
        drawer = await open_session_at(s, till.location.id)
    try:
        async with db_of(request).uow() as uow:
            done = await receive(uow, till.actor, settings, ret, posted,
                                 location_id=till.location.id,
                                 drawer_session_id=drawer.id if drawer else None)
            await uow.commit()
    except DomainError as exc:
        return await _receive_page(request, till, return_id,
                                   errors={"general": messages(request, exc)},
                                   status=exc.status)
    return RedirectResponse(f"{till.base}/returns/{done.id}?done=1", status_code=303)


# --- one order: the return form ----------------------------------------------------------

async def _order_page(request: Request, till: Till, order_id: int, *,
                      form: ReturnForm | None = None, errors: dict[str, str] | None = None,
                      status: int = 200, swap: Exchange | None = None,
                      preview: ExchangeOut | None = None) -> Response:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        view = await returnable_order(s, settings, order_id)
        drawer = await open_session_at(s, till.location.id)
    return _no_cache(render(request, "pos/return_order.html", {
        "title": gettext(request, N_("Return from order %(number)s"), number=view.order.number),
        "till": till, "v": view, "form": form or ReturnForm.blank(view),
        "errors": errors or {}, "reasons": REASONS, "drawer": drawer,
        "may_override": till.actor.can("returns.override", till.location.id),
        "swap": swap or Exchange(), "preview": preview,
        "key": secrets.token_urlsafe(18)}, status=status))


@router.get("/{code}/returns/orders/{order_id}")
async def return_form(request: Request,
        till: Annotated[Till, till_requires("returns.create")], order_id: OrderId) -> Response:
    return await _order_page(request, till, order_id)


@router.post("/{code}/returns/orders/{order_id}")
async def take(request: Request,
        till: Annotated[Till, till_requires("returns.create")], order_id: OrderId) -> Response:
    """Confirm: the goods come back here and the refund is made; then the credit
    receipt. With replacement items scanned, an exchange: the first press shows what
    the new items cost and the difference, the second makes it (one transaction).
    Every error comes back next to its field and nothing changes."""
    posted: FormData = await checked_form(request)
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        view = await returnable_order(s, settings, order_id)
        drawer = await open_session_at(s, till.location.id)
    form, errors = read_return_form(request, posted, view)
    swap = read_exchange(request, posted)
    errors.update(swap.errors)
    if swap.codes and drawer is None:
        errors["exchange_codes"] = gettext(request, N_(
            "Open the cash drawer first: an exchange is a sale."))
    if not errors and swap.codes:
        async with db_of(request).reader() as s:
            errors.update(await swap.resolve(request, s, till))
    if errors:
        return await _order_page(request, till, order_id, form=form, errors=errors,
                                 status=422, swap=swap)
    drawer_id = drawer.id if drawer else None
    try:
        if swap.codes:
            assert drawer_id is not None
            preview = await swap.run(db_of(request), till, settings, request, view, form,
                                     drawer_id, dry=not swap.confirmed)
            if not swap.confirmed:  # show the difference; the cashier confirms
                return await _order_page(request, till, order_id, form=form, swap=swap,
                                         preview=preview)
            return RedirectResponse(f"{till.base}/returns/{preview.return_.id}?done=1",
                                    status_code=303)
        async with db_of(request).uow() as uow:
            ret = await take_at_till(uow, till.actor, settings, request, view, form,
                                     location_id=till.location.id,
                                     drawer_session_id=drawer_id,
                                     channel=till.channel_code)
            await uow.commit()
    except DomainError as exc:
        return await _order_page(request, till, order_id, form=form, swap=swap,
                                 errors=error_fields(request, exc, form), status=exc.status)
    return RedirectResponse(f"{till.base}/returns/{ret.id}?done=1", status_code=303)


# --- the credit receipt -----------------------------------------------------------------

@router.get("/{code}/returns/{return_id}")
async def credit_receipt(request: Request,
        till: Annotated[Till, till_requires("orders.read")], return_id: ReturnId) -> Response:
    return await _receipt_page(request, till, return_id)


async def _receipt_page(request: Request, till: Till, return_id: int, *,
                        email: str | None = None, email_error: str = "",
                        status: int = 200) -> Response:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
        if ret.location_id != till.location.id:
            raise NotFound(f"no return {return_id} at {till.location.code}",
                           code="return_not_found")
        receipt = await credit_receipt_of(s, return_id, settings)
        order = await get_order(s, ret.order_id)
    if ret.location_id != till.location.id:
        return _no_cache(error_page(request, 404, gettext(
            request, N_("There is no such return at this store."))))
    return _no_cache(render(request, "pos/credit_receipt.html", {
        "title": gettext(request, N_("Credit receipt %(number)s"), number=receipt.receipt_no),
        "till": till, "ret": ret, "receipt": receipt,
        "done": request.query_params.get("done") == "1",
        "emailed": request.query_params.get("emailed", "")[:320],
        "receipt_email": email if email is not None else order.email,
        "email_error": email_error}, status=status))


@router.post("/{code}/returns/{return_id}/email")
async def email_receipt(request: Request,
        till: Annotated[Till, till_requires("returns.create")], return_id: ReturnId) -> Response:
    form = await checked_form(request)
    typed = str(form.get("email") or "").strip()[:320]
    try:
        to = normalise_email(typed)
    except DomainError as exc:
        return await _receipt_page(request, till, return_id, email=typed,
                                   email_error=error_message(request, exc, {
                                       "invalid_email": N_(
                                           "Enter a valid e-mail address, such as "
                                           "name@example.fi.")}), status=exc.status)
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
    if ret.location_id != till.location.id:
        raise NotFound(f"no return {return_id} at {till.location.code}", code="return_not_found")
    async with db_of(request).uow() as uow:
        await email_credit_receipt(uow, return_id, to, lang=page_lang(request),
                                   settings=settings_of(request))
        await uow.commit()
    return RedirectResponse(f"{till.base}/returns/{return_id}?"
                            + urlencode({"emailed": to}), status_code=303)
