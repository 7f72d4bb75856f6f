"""/api/v1 orders: one order book for every channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from saumaton.api.pagination import CursorQuery, Page, id_after, page_of
from saumaton.checkout.pickup import hand_over
from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotFound
from saumaton.core.types import MAX_ID, Input, IsoDate
from saumaton.db.uow import UnitOfWork
from saumaton.fulfilment import steps
from saumaton.orders import services as orders
from saumaton.orders.lifecycle import OrderStatus
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderIn, OrderOut
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["orders"])
T = TypeVar("T")


@router.post(
    "/orders", response_model=OrderOut, status_code=201,
    summary="Place an order from any channel",
    responses={200: {"description": "replay: this Idempotency-Key was seen; same order"},
               409: {"description": "out_of_stock or idempotency_key_reused"}},
)
async def create_order(
    request: Request, response: Response, body: OrderIn,
    actor: Annotated[Actor, api_requires("orders.create")],
    idempotency_key: Annotated[str | None, Header(
        min_length=8, max_length=200,
        description="any unique string (a UUID); a retry with the same key returns the "
                    "same order and never sells twice")] = None,
) -> OrderOut:
    out, replayed = await orders.place_order(db_of(request), actor, body, idempotency_key,
                                             settings=request.app.state.settings)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/orders/{out.id}"
    return out


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(request: Request, order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    actor: Annotated[Actor, api_requires("orders.read")]) -> OrderOut:
    async with db_of(request).reader() as s:
        out = await orders.get_order(s, order_id)
    if not actor.can("orders.read", out.location_id):
        raise Forbidden("you may not read this order", code="forbidden")
    return out


@router.get("/orders", response_model=Page[OrderOut], summary="Newest first")
async def list_orders(
    request: Request, actor: Annotated[Actor, api_requires("orders.read")],
    channel: Annotated[str | None, Query(max_length=32)] = None,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200, description="items per page")] = 50,
    before_id: Annotated[int | None, Query(
        ge=1, le=MAX_ID, deprecated=True,
        description="the old way to page: use `cursor`")] = None,
    status: Annotated[OrderStatus | None, Query()] = None,
    delivery_method: Annotated[Literal["home", "pickup", "store"] | None, Query(
        description="store: a sale in the store")] = None,
    date_from: Annotated[IsoDate | None, Query(description="created on or after this day "
                                                        "(the shop's time zone)")] = None,
    date_to: Annotated[IsoDate | None, Query(description="created on or before this day")]
    = None,
) -> Page[OrderOut]:
    after = id_after(cursor)
    zone = ZoneInfo(request.app.state.settings.timezone)

    def start(d: date) -> datetime:
        return datetime.combine(d, time.min, zone)
    async with db_of(request).reader() as s:
        rows = await orders.list_orders(
            s, actor, channel=channel, location_id=location_id, customer_id=customer_id,
            limit=limit + 1, before_id=after if after is not None else before_id,
            status=status.value if status else None,
            delivery_method=delivery_method,
            created_from=start(date_from) if date_from else None,
            created_before=start(date_to + timedelta(days=1)) if date_to else None)
    return page_of(rows, limit, lambda o: {"id": o.id})


# --- fulfilment of web orders ---------------------------------------------------------------

_TRANSITION_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "forbidden: no orders.fulfil at the order's location"},
    404: {"description": "order_not_found"},
    409: {"description": "invalid_transition (the order's state does not allow it; "
                         "`order_status` names it), order_changed, not_a_web_order"}}
OrderIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class ShippedIn(Input):
    carrier: str = Field(max_length=200, description="e.g. Posti, Matkahuolto, DB Schenker")
    tracking_number: str = Field(max_length=200)


class CollectedIn(Input):
    id_checked: bool = Field(description="the customer's ID was checked against the order")


class CancelIn(Input):
    reason: str = Field(default="cancelled_by_shop", min_length=1, max_length=60)


class CancelOut(BaseModel):
    order: OrderOut
    refund_cents: int = Field(description="recorded as a Paytrail refund due (sent by "
                                          "the refund job)")


async def _committed(request: Request, step: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """One fulfilment step in its own transaction, committed (the steps never commit)."""
    async with db_of(request).uow() as uow:
        out = await step(uow)
        await uow.commit()
    return out


@router.post("/orders/{order_id}/picking", response_model=OrderOut,
             summary="Start picking a paid web order", responses=_TRANSITION_ERRORS,
             operation_id="start_picking")
async def picking(request: Request, order_id: OrderIdPath,
                  actor: Annotated[Actor, api_requires("orders.fulfil")]) -> OrderOut:
    return await _committed(request, lambda uow: steps.start_picking(uow, actor, order_id))


@router.post("/orders/{order_id}/ready", response_model=OrderOut,
             summary="Click & collect: ready for pickup (e-mails the pickup code)",
             responses=_TRANSITION_ERRORS, operation_id="mark_ready")
async def ready(request: Request, order_id: OrderIdPath,
                actor: Annotated[Actor, api_requires("orders.fulfil")]) -> OrderOut:
    return await _committed(request, lambda uow: steps.mark_ready(
        uow, actor, request.app.state.settings, order_id))


@router.post("/orders/{order_id}/packed", response_model=OrderOut,
             summary="Home delivery: packed", responses=_TRANSITION_ERRORS,
             operation_id="mark_packed")
async def packed(request: Request, order_id: OrderIdPath,
                 actor: Annotated[Actor, api_requires("orders.fulfil")]) -> OrderOut:
    return await _committed(request, lambda uow: steps.mark_packed(uow, actor, order_id))


@router.post("/orders/{order_id}/shipped", response_model=OrderOut,
             summary="Home delivery: shipped (e-mails the tracking number)",
             responses=_TRANSITION_ERRORS, operation_id="mark_shipped")
async def shipped(request: Request, order_id: OrderIdPath, body: ShippedIn,
                  actor: Annotated[Actor, api_requires("orders.fulfil")]) -> OrderOut:
    return await _committed(request, lambda uow: steps.mark_shipped(
        uow, actor, request.app.state.settings, order_id, body.carrier,
        body.tracking_number))


@router.post("/orders/{order_id}/collected", response_model=OrderOut,
             summary="Click & collect: handed over at the pickup store",
             operation_id="mark_collected",
             responses={**_TRANSITION_ERRORS,
                        409: {"description": "already_collected, pickup_not_paid, "
                                             "order_cancelled"},
                        422: {"description": "id_not_checked"}})
async def collected(request: Request, order_id: OrderIdPath, body: CollectedIn,
                    actor: Annotated[Actor, api_requires("orders.create")]) -> OrderOut:
    async with db_of(request).uow() as uow:
        location_id = await uow.session.scalar(
            select(Order.location_id).where(Order.id == order_id))
        if location_id is None:
            raise NotFound(f"no click & collect order {order_id}", code="pickup_not_found")
        out = await hand_over(uow, actor, order_id, int(location_id), body.id_checked)
        await uow.commit()
    return out


@router.post("/orders/{order_id}/cancel", response_model=CancelOut,
             summary="Cancel a paid web order: stock back on sale, Paytrail refund due",
             responses=_TRANSITION_ERRORS, operation_id="cancel_order")
async def cancel(request: Request, order_id: OrderIdPath,
                 actor: Annotated[Actor, api_requires("orders.fulfil")],
                 body: CancelIn | None = None) -> CancelOut:
    done = await _committed(request, lambda uow: steps.cancel_order(
        uow, actor, request.app.state.settings, order_id,
        reason=(body or CancelIn()).reason))
    return CancelOut(order=done.order, refund_cents=done.refund_cents)
