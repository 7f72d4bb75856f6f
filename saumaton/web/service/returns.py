"""The service desk starts a postal return for a customer (on the phone or in the chat):
the same form as the shopper's, for an order on the customer's card; the customer gets
the return code and instructions by e-mail, and the agent sees them to read out.

Thin: `returns.services.request_post_return` (staff need `returns.create`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.returns.postal import post_return_address
from saumaton.returns.services import get_return, return_by_code
from saumaton.web.account.returns import return_qr
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    gettext,
    page_router,
    render,
    settings_of,
)
from saumaton.web.returns_forms import (
    ReturnForm,
    error_fields,
    post_return_form_context,
    read_post_return_form,
    returnable_order,
    start_post_return,
)

router = page_router("/service")
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
ReturnId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def _form_page(request: Request, order_id: int, *, form: ReturnForm | None = None,
                     errors: dict[str, str] | None = None, status: int = 200) -> Response:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        view = await returnable_order(s, settings, order_id)
    return render(request, "service/return_form.html", {
        "title": gettext(request, N_("Return items from order %(number)s"),
                         number=view.order.number),
        "section": "conversations",
        **post_return_form_context(view, settings, form, errors)}, status=status)


@router.get("/orders/{order_id}/return")
async def return_form(request: Request,
        _allowed: Annotated[Actor, requires("returns.create")], order_id: OrderId) -> Response:
    return await _form_page(request, order_id)


@router.post("/orders/{order_id}/return")
async def start_return(request: Request,
        actor: Annotated[Actor, requires("returns.create")], order_id: OrderId) -> Response:
    posted = await checked_form(request)
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        view = await returnable_order(s, settings, order_id)
    form, bank, errors = read_post_return_form(request, posted, view, settings)
    if errors:
        return await _form_page(request, order_id, form=form, errors=errors, status=422)
    try:
        code = await start_post_return(
            db_of(request), actor, settings, request, view, form, channel="service",
            customer_id=None, bank=bank, lang=view.order.language,
            page_url=f"{settings.resolved_public_url()}/account/returns/")
    except DomainError as exc:
        return await _form_page(request, order_id, form=form,
                                errors=error_fields(request, exc, form), status=exc.status)
    async with db_of(request).reader() as s:
        ret = await return_by_code(s, code)
    return RedirectResponse(f"/service/returns/{ret.id}", status_code=303)


@router.get("/returns/{return_id}")
async def return_page(request: Request,
        _allowed: Annotated[Actor, requires("returns.create")], return_id: ReturnId) -> Response:
    """What the agent reads out: the code and where to send the parcel."""
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
    return render(request, "service/return.html", {
        "title": gettext(request, N_("Return %(code)s"), code=ret.code),
        "section": "conversations", "ret": ret, "qr": return_qr(ret.code),
        "address": post_return_address(settings_of(request))})
