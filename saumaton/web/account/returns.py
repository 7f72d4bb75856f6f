"""A shopper returns goods by post from her account: choose the lines, quantities and a
reason; she gets a return code (QR) and instructions, on the page and by e-mail. The
parcel is received at the warehouse or a store (`/backoffice/returns`,
`/pos/{store}/returns/receive`), which refunds it.

Thin: `returns.services.request_post_return` holds every rule.
"""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, NotFound
from saumaton.customers import accounts
from saumaton.returns.postal import post_return_address
from saumaton.returns.services import return_by_code
from saumaton.web.account.common import page
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_page,
    gettext,
    page_lang,
    page_router,
    settings_of,
)
from saumaton.web.returns_forms import (
    OrderForReturn,
    ReturnForm,
    error_fields,
    post_return_form_context,
    read_post_return_form,
    returnable_order,
    start_post_return,
)
from saumaton.web.route_access import customer_session

router = page_router("/account")
Number = Annotated[str, Path(max_length=20)]
ReturnCode = Annotated[str, Path(max_length=32)]


def shopper_actor(customer_id: int) -> Actor:
    """The shopper acting for herself (no staff grants; the core checks she owns the
    order)."""
    return Actor(label=f"customer:{customer_id}", name="customer")


def return_qr(code: str) -> Markup:
    svg = segno.make(code, micro=False, error="m").svg_inline(
        scale=5, border=4, dark="#2b2226", light="#ffffff", title=code)
    return Markup(svg)  # segno's own markup; the code is letters and digits only


async def _own_order(request: Request, customer_id: int, number: str
                     ) -> OrderForReturn | Response:
    """Her order as the return form shows it, or the page saying it is not hers."""
    try:
        async with db_of(request).reader() as s:
            entry = await accounts.customer_order(s, customer_id, number)
            return await returnable_order(s, settings_of(request), entry.order.id)
    except NotFound:
        return error_page(request, 404, gettext(request, N_(
            "There is no such order in your account.")))


async def _form_page(request: Request, customer_id: int, number: str, *,
                     form: ReturnForm | None = None, errors: dict[str, str] | None = None,
                     status: int = 200) -> Response:
    view = await _own_order(request, customer_id, number)
    if isinstance(view, Response):
        return view
    return page(request, "account/return_form.html", N_("Return items from order %(number)s"),
                post_return_form_context(view, settings_of(request), form, errors),
                status=status, title_values={"number": view.order.number})


@router.get("/orders/{number}/return")
async def return_form(request: Request,
        customer_id: Annotated[int, customer_session()], number: Number) -> Response:
    return await _form_page(request, customer_id, number)


@router.post("/orders/{number}/return")
async def start_return(request: Request,
        customer_id: Annotated[int, customer_session()], number: Number) -> Response:
    posted = await checked_form(request)
    settings = settings_of(request)
    view = await _own_order(request, customer_id, number)
    if isinstance(view, Response):
        return view
    form, bank, errors = read_post_return_form(request, posted, view, settings)
    if errors:
        return await _form_page(request, customer_id, number, form=form, errors=errors,
                                status=422)
    try:
        code = await start_post_return(
            db_of(request), shopper_actor(customer_id), settings, request, view, form,
            channel="web", customer_id=customer_id, bank=bank, lang=page_lang(request),
            page_url=f"{settings.resolved_public_url()}/account/returns/")
    except DomainError as exc:
        return await _form_page(request, customer_id, number, form=form,
                                errors=error_fields(request, exc, form), status=exc.status)
    return RedirectResponse(f"/account/returns/{code}?started=1", status_code=303)


@router.get("/returns/{code}")
async def return_page(request: Request,
        customer_id: Annotated[int, customer_session()], code: ReturnCode) -> Response:
    """The return's code, its QR and what to do; later, what was received and refunded."""
    try:
        async with db_of(request).reader() as s:
            ret = await return_by_code(s, code)
    except NotFound:
        ret = None
    if ret is None or ret.customer_id != customer_id:
        return error_page(request, 404, gettext(request, N_(
            "There is no such return in your account.")))
    return page(request, "account/return.html", N_("Return %(code)s"), {
        "ret": ret, "qr": return_qr(ret.code), "address": post_return_address(
            settings_of(request)), "started": request.query_params.get("started") == "1"},
        title_values={"code": ret.code})
