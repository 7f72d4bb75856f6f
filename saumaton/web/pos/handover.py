"""Click & collect at the till: find an order, check ID, hand over; receipts by e-mail.

Routes only translate HTTP to `checkout.pickup` (find, hand over),
`orders.suggestions` (add-on sales) and `mail.messages.receipt` + `queue_mail`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.checkout.pickup import (
    customer_contact,
    find_pickups,
    hand_over,
    lapsed_note,
    pickup_detail,
)
from saumaton.checkout.services import pickup_orders
from saumaton.core.errors import DomainError, NotFound, ValidationFailed
from saumaton.mail import receipts
from saumaton.orders.services import get_order
from saumaton.orders.suggestions import suggestions
from saumaton.staff.services import staff_names
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_router,
    render,
    settings_of,
)
from saumaton.web.pos.routes import OrderId, Till, till_requires

router = page_router("/pos")

# What the cashier reads when a handover or a receipt e-mail cannot be done.
MESSAGES = {
    "id_not_checked": N_("Check the customer's ID and tick the box first."),
    "already_collected": N_("This order was already handed over."),
    "pickup_not_paid": N_("This order is not paid yet: it cannot be handed over."),
    "order_cancelled": N_("This order was cancelled: it cannot be handed over."),
    "pickup_not_found": N_("There is no such click & collect order at this store."),
    "invalid_email": N_("Enter a valid e-mail address, such as name@example.fi."),
}


def _message(request: Request, exc: DomainError) -> str:
    text = MESSAGES.get(exc.code)
    return gettext(request, text) if text else error_message(request, exc)


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _secret(request: Request) -> str:
    return settings_of(request).resolved_secret_key()


# --- finding ------------------------------------------------------------------------------

@router.get("/{code}/pickups/find")
async def find(request: Request,
        till: Annotated[Till, till_requires("orders.read")],
               q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """One match: its page; several: the list; none: a message by the search field."""
    typed = q.strip()
    async with db_of(request).reader() as s:
        found = await find_pickups(s, till.location.id, typed, _secret(request)) \
            if typed else []
        if len(found) == 1:
            return RedirectResponse(f"{till.base}/pickups/{found[0].order.id}", status_code=303)
        waiting = found or await pickup_orders(s, till.location.id)
    errors: dict[str, str] = {}
    if not typed:
        errors["q"] = gettext(request, N_("Type an order number, a name, a phone number or "
                                          "scan the pickup code."))
    elif not found:
        errors["q"] = gettext(request, N_("No order waiting here matches %(q)s."), q=typed)
    return _no_cache(render(request, "pos/pickups.html", {
        "title": gettext(request, N_("Click & collect")), "till": till, "waiting": waiting,
        "q": typed, "errors": errors, "searched": bool(found)}))


# --- one order -------------------------------------------------------------------------------

async def _page(request: Request, till: Till, order_id: int, *, errors: dict[str, str]
                | None = None, status: int = 200, handed: bool = False) -> Response:
    async with db_of(request).reader() as s:
        try:
            detail = await pickup_detail(s, order_id, till.location.id, _secret(request))
        except NotFound as exc:
            return _no_cache(error_page(request, 404, _message(request, exc)))
        extra = await suggestions(s, till.location.id, detail.order.customer_id,
                                  [ln.variant_id for ln in detail.order.lines])
        by = detail.order.collected_by
        collected_by = (await staff_names(s, [by]))[by] if by else ""
    return _no_cache(render(request, "pos/pickup.html", {
        "title": gettext(request, N_("Order %(number)s"), number=detail.order.number),
        "till": till, "p": detail, "suggestions": extra, "errors": errors or {},
        "handed": handed, "lapsed": lapsed_note(detail.order),
        "collected_by": collected_by}, status=status))


@router.get("/{code}/pickups/{order_id}")
async def pickup_page(request: Request,
        till: Annotated[Till, till_requires("orders.read")], order_id: OrderId) -> Response:
    return await _page(request, till, order_id,
                       handed=request.query_params.get("handed") == "1")


@router.post("/{code}/pickups/{order_id}")
async def hand_over_order(request: Request,
        till: Annotated[Till, till_requires("orders.create")], order_id: OrderId) -> Response:
    """The "Hand over" button: with the ID checked, the order is collected."""
    form = await checked_form(request)
    id_checked = form.get("id_checked") in ("1", "on", "yes", "true")
    try:
        async with db_of(request).uow() as uow:
            await hand_over(uow, till.actor, order_id, till.location.id, id_checked)
            await uow.commit()
    except NotFound as exc:
        return _no_cache(error_page(request, 404, _message(request, exc)))
    except DomainError as exc:
        field = "id_checked" if exc.field == "id_checked" else "general"
        return await _page(request, till, order_id, errors={field: _message(request, exc)},
                           status=exc.status)
    return RedirectResponse(f"{till.base}/pickups/{order_id}?handed=1", status_code=303)


# --- receipts by e-mail ------------------------------------------------------------------------

@router.post("/{code}/receipt/{order_id}/email")
async def email_receipt(request: Request,
        till: Annotated[Till, till_requires("orders.create")], order_id: OrderId) -> Response:
    """Queue the receipt to the address typed (prefilled with the customer's)."""
    form = await checked_form(request)
    typed = str(form.get("email") or "").strip()[:320]
    async with db_of(request).reader() as s:
        order = await get_order(s, order_id)
        if order.location_id != till.location.id:
            raise NotFound(f"no order {order_id} at {till.location.code}", code="order_not_found")
        name, _ = await customer_contact(s, order.customer_id)
    try:
        async with db_of(request).uow() as uow:
            to = await receipts.email_receipt(uow, till.actor, order_id, typed,
                                              settings=settings_of(request))
            await uow.commit()
    except ValidationFailed as exc:
        return _no_cache(render(request, "pos/receipt.html", {
            "title": gettext(request, N_("Receipt %(number)s"),
                             number=order.receipt_no or order.number),
            "till": till, "order": order, "just_paid": False, "customer_name": name,
            "receipt_email": typed, "email_error": _message(request, exc)},
            status=exc.status))
    return RedirectResponse(f"{till.base}/receipt/{order_id}?emailed={quote(to)}",
                            status_code=303)

