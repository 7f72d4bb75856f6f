"""Staff pages for fulfilling web orders, in the store (the till's /pos/{store}/orders:
web orders to prepare at this store) and in the back office (/backoffice/orders: every
order): filtered and searchable lists, an order's page with its lines, payments,
refunds, returns and history, the steps (picking, ready, packed, shipped, cancel), and
a printable pick list. Routes only translate HTTP to `fulfilment.queue` and
`fulfilment.steps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.models import AuditEntry
from saumaton.audit.services import entries_for
from saumaton.checkout.pickup import customer_contact
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, Forbidden, NotFound
from saumaton.core.types import MAX_ID
from saumaton.fulfilment import steps
from saumaton.fulfilment.queue import DELIVERY_METHODS, OrderQuery, order_page, pick_list
from saumaton.inventory import transfers
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations
from saumaton.orders.lifecycle import OrderStatus, can_move
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.orders.services import get_order
from saumaton.payments.refunds import refunds_of
from saumaton.returns.models import Return
from saumaton.staff.services import staff_names
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.backoffice.stock import STATUS_LABELS as TRANSFER_STATUSES
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    page_router,
    render,
    settings_of,
)
from saumaton.web.pos.routes import OrderId, Till, till_requires

router = page_router()
Step = Annotated[str, Path(pattern="^(picking|ready|packed|shipped|cancel)$")]

STATUS_LABELS = {
    "pending": N_("Awaiting payment"), "paid": N_("Paid, to prepare"),
    "picking": N_("Being picked"), "ready": N_("Ready for pickup"), "packed": N_("Packed"),
    "shipped": N_("Shipped"), "collected": N_("Collected"), "completed": N_("Completed"),
    "partly_returned": N_("Partly returned"), "returned": N_("Returned"),
    "cancelled": N_("Cancelled"),
}
DELIVERY_LABELS = {"home": N_("Home delivery"), "pickup": N_("Click & collect"),
                   "store": N_("Sale in the store")}
# The order page's history: the staff steps (audited as order.<state>) and the stamps.
STEP_LABELS = {
    "ordered": N_("Ordered"), "picking": N_("Picking started"),
    "ready": N_("Ready for pickup"), "reminded": N_("Reminder sent"), "packed": N_("Packed"),
    "shipped": N_("Shipped"), "collected": N_("Collected"), "cancelled": N_("Cancelled"),
}
PAYMENT_METHODS = {"paytrail": N_("Paytrail"), "points": N_("Loyalty points"),
                   "cash": N_("Cash"), "card": N_("Card"), "gift_card": N_("Gift card"),
                   "store_credit": N_("Store credit")}
PAYMENT_STATES = {"captured": N_("paid"), "to_confirm": N_("to confirm"),
                  "refunded": N_("refunded"), "refund_due": N_("refund due")}
REFUND_STATES = {"due": N_("to be sent"), "pending": N_("sent, awaiting confirmation"),
                 "ok": N_("refunded"), "fail": N_("failed")}
MESSAGES = {
    "transfer_pending": N_("The goods have not arrived at the store yet: receive their "
                           "transfer first (Stock → Transfers)."),
    "invalid_transition": N_("The order's state does not allow this any more. Reload "
                             "the page to see where it is."),
    "order_changed": N_("Someone else changed the order meanwhile. Reload the page."),
    "carrier_required": N_("Name the carrier."),
    "tracking_number_required": N_("Give the parcel's tracking number."),
    "carrier_too_long": N_("The carrier's name is too long."),
    "tracking_number_too_long": N_("The tracking number is too long."),
}


@dataclass(frozen=True)
class Where:
    """The store's till or the back office: where the pages link and what they show."""

    base: str  # .../orders
    layout: str
    actor: Actor
    location: Location | None = None  # the store (None: the back office)
    till: Any = None


def _backoffice(actor: Actor) -> Where:
    return Where("/backoffice/orders", "backoffice/base.html", actor)


def _store(till: Till) -> Where:
    return Where(f"{till.base}/orders", "pos/base.html", till.actor, till.location, till)


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    what: str  # a msgid of STEP_LABELS, or an audit action without one
    who: str = ""


async def _history(s: AsyncSession, order: OrderOut,
                   entries: list[AuditEntry]) -> list[HistoryLine]:
    """Oldest first. A step a staff member took shows who (their name, not the audit
    label); steps without an audit entry (the pickup job, the shopper) show their stamp."""
    names = await staff_names(s, [e.actor for e in entries])
    lines: list[HistoryLine] = []
    steps: set[str] = set()
    for e in entries:
        step = e.action.removeprefix("order.")
        who = names[e.actor]
        if step in STEP_LABELS:
            steps.add(step)
            lines.append(HistoryLine(e.at, STEP_LABELS[step], who))
        else:
            lines.append(HistoryLine(e.at, e.action, who))
    stamps = (("ordered", order.created_at), ("ready", order.ready_at),
              ("reminded", order.pickup_reminded_at), ("packed", order.packed_at),
              ("shipped", order.shipped_at), ("collected", order.collected_at))
    lines += [HistoryLine(at, STEP_LABELS[step]) for step, at in stamps
              if at is not None and step not in steps]
    return sorted(lines, key=lambda ln: ln.at)


def _parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def _list(request: Request, where: Where) -> Response:
    p = request.query_params
    errors: dict[str, str] = {}
    dates: dict[str, date | None] = {}
    for key in ("date_from", "date_to"):
        raw = p.get(key, "").strip()[:10]
        dates[key] = _parse_date(raw)
        if raw and dates[key] is None:
            errors[key] = gettext(request, N_("Give the date as YYYY-MM-DD."))
    status = p.get("status", "open" if where.location else "")
    if status not in ("", "open", *STATUS_LABELS):
        status = ""
    delivery = p.get("delivery", "")
    if delivery not in DELIVERY_METHODS:
        delivery = ""
    try:
        page_no = max(1, min(int(p.get("page", "1")), 10**6))
    except ValueError:
        page_no = 1
    location_id = where.location.id if where.location else None
    if where.location is None and p.get("location", "").isdigit():
        location_id = int(p["location"][:9])
    query = OrderQuery(channel=p.get("channel", "")[:32] or None, status=status or None,
                       location_id=location_id, delivery_method=delivery or None,
                       date_from=dates["date_from"], date_to=dates["date_to"],
                       q=p.get("q", "")[:200], page=page_no)
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        found = await order_page(s, where.actor, query, timezone=settings.timezone,
                                 secret=settings.resolved_secret_key())
        locations = await list_locations(s)
    args = {k: v for k, v in p.items() if k != "page"}
    return _no_cache(render(request, "fulfilment/orders.html", {
        "title": gettext(request, N_("Orders")), "where": where, "till": where.till,
        "found": found, "query": query, "args": args, "errors": errors,
        "status": status, "statuses": STATUS_LABELS, "deliveries": DELIVERY_LABELS,
        "locations": locations}, status=422 if errors else 200))


@router.get("/pos/{code}/orders")
async def store_orders(request: Request,
        till: Annotated[Till, till_requires("orders.read")]) -> Response:
    return await _list(request, _store(till))


@router.get("/backoffice/orders")
async def backoffice_orders(request: Request,
        actor: Annotated[Actor, requires("orders.read")]) -> Response:
    return await _list(request, _backoffice(actor))


@router.get("/pos/{code}/orders/picklist")
async def store_pick_list(request: Request,
        till: Annotated[Till, till_requires("orders.read")]) -> Response:
    where = _store(till)
    assert where.location is not None
    async with db_of(request).reader() as s:
        picks = await pick_list(s, where.location.id)
    return _no_cache(render(request, "fulfilment/picklist.html", {
        "title": gettext(request, N_("Pick list")), "where": where, "till": where.till,
        "picks": picks}))


async def _order_page(request: Request, where: Where, order_id: int, *,
                      errors: dict[str, str] | None = None, status: int = 200,
                      form: dict[str, str] | None = None) -> Response:
    async with db_of(request).reader() as s:
        row = await s.get(Order, order_id)
        if row is None:
            raise NotFound(f"no order {order_id}", code="order_not_found")
        places = await steps.fulfil_locations(s, row)
        # An endless-aisle sale (paid at a till) is also read where it was sold.
        seen = places | ({row.location_id} if row.drawer_session_id is not None
                         and row.location_id is not None else set())
        if where.location is not None and where.location.id not in seen:
            raise NotFound(f"no order {order_id} to prepare here", code="order_not_found")
        readable: set[int | None] = set(seen) or {None}
        if not any(where.actor.can("orders.read", loc) for loc in readable):
            raise Forbidden("you may not read this order", code="forbidden")
        order = await get_order(s, order_id)
        name, email = await customer_contact(s, order.customer_id)
        refunds = await refunds_of(s, order_id)
        returns = list((await s.scalars(select(Return).where(Return.order_id == order_id)
                                        .order_by(Return.id))).all())
        moving = await transfers.for_order(s, order_id)
        history = await _history(s, order, await entries_for(s, "order", order_id))
        store = await s.get(Location, order.location_id) if order.location_id else None
    may = steps.may_fulfil(where.actor, places) and order.delivery is not None
    method = order.delivery.method if order.delivery else None
    allowed = {"picking": True, "ready": method == "pickup", "packed": method == "home",
               "shipped": method == "home"}
    actions = [a for a, ok in allowed.items()
               if may and ok and can_move(order.status, OrderStatus(a))]
    return _no_cache(render(request, "fulfilment/order.html", {
        "title": gettext(request, N_("Order %(number)s"), number=order.number),
        "where": where, "till": where.till, "order": order, "customer_name": name,
        "customer_email": order.email or email, "refunds": refunds, "returns": returns,
        "history": history, "store": store, "actions": actions,
        "transfers": [(t, any(where.actor.can("stock.read", loc)
                              for loc in (t.from_location_id, t.to_location_id)))
                      for t in moving],
        "transfer_statuses": TRANSFER_STATUSES,
        "may_cancel": may and order.status in steps.CANCELLABLE,
        "statuses": STATUS_LABELS, "deliveries": DELIVERY_LABELS, "errors": errors or {},
        "methods": PAYMENT_METHODS, "payment_states": PAYMENT_STATES,
        "refund_states": REFUND_STATES,
        "form": form or {}, "done": request.query_params.get("done", "")}, status=status))


@router.get("/pos/{code}/orders/{order_id}")
async def store_order(request: Request, till: Annotated[Till, till_requires("orders.read")],
                      order_id: OrderId) -> Response:
    return await _order_page(request, _store(till), order_id)


@router.get("/backoffice/orders/{order_id}")
async def backoffice_order(request: Request,
        actor: Annotated[Actor, requires("orders.read")],
        order_id: OrderId) -> Response:
    return await _order_page(request, _backoffice(actor), order_id)


async def _step(request: Request, where: Where, order_id: int, step: str) -> Response:
    form = await checked_form(request)
    typed = {k: str(form.get(k) or "")[:200] for k in ("carrier", "tracking_number")}
    settings = settings_of(request)
    if where.location is not None:  # the store's page acts for its own orders only
        await _order_page(request, where, order_id)
    try:
        async with db_of(request).uow() as uow:
            if step == "picking":
                await steps.start_picking(uow, where.actor, order_id)
            elif step == "ready":
                await steps.mark_ready(uow, where.actor, settings, order_id)
            elif step == "packed":
                await steps.mark_packed(uow, where.actor, order_id)
            elif step == "shipped":
                await steps.mark_shipped(uow, where.actor, settings, order_id,
                                         typed["carrier"], typed["tracking_number"])
            else:
                await steps.cancel_order(uow, where.actor, settings, order_id)
            await uow.commit()
    except (NotFound, Forbidden):
        raise
    except DomainError as exc:
        problems = exc.extra.get("errors") or [{"field": exc.field, "code": exc.code}]
        errors = {str(e.get("field") or "general"):
                  gettext(request, MESSAGES[str(e["code"])]) if str(e["code"]) in MESSAGES
                  else error_message(request, exc, MESSAGES) for e in problems}
        return await _order_page(request, where, order_id, errors=errors,
                                 status=exc.status, form=typed)
    return RedirectResponse(f"{where.base}/{order_id}?done={step}", status_code=303)


@router.post("/pos/{code}/orders/{order_id}/{step}")
async def store_step(request: Request,
        till: Annotated[Till, till_requires("orders.fulfil")],
        order_id: OrderId, step: Step) -> Response:
    return await _step(request, _store(till), order_id, step)


@router.post("/backoffice/orders/{order_id}/{step}")
async def backoffice_step(request: Request,
        actor: Annotated[Actor, requires("orders.fulfil")],
        order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                          step: Step) -> Response:
    return await _step(request, _backoffice(actor), order_id, step)

