"""/api/v1 fulfilment as the back office's /backoffice/orders and a store's
/pos/{store}/orders pages show it: the orders to prepare (per location, with the same
filters and search), a location's pick list, and where one order stands (the steps the
caller may take next, and its history). The steps themselves are
`POST /api/v1/orders/{id}/picking|ready|packed|shipped|collected|cancel` (api.orders;
`shipped` carries the carrier and tracking number).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from saumaton.api.fields import cursor_ints
from saumaton.api.pagination import CursorQuery, LimitQuery, Page, page_of
from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, MAX_INT32, IsoDate, NoNul
from saumaton.fulfilment.queue import OrderQuery, order_rows, pick_list
from saumaton.fulfilment.state import fulfilment_state
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["fulfilment"])
Reads = Annotated[Actor, api_requires("orders.read")]
QueueStatus = Literal["open", "pending", "paid", "picking", "ready", "packed", "shipped",
                      "collected", "completed", "partly_returned", "returned", "cancelled"]


class QueueOrderOut(BaseModel):
    id: int
    number: str
    created_at: datetime
    status: str
    channel: str
    delivery_method: str | None = Field(description="home, pickup; null: a sale in the "
                                                    "store")
    location_name: str = Field(description="the pickup store or the store of the sale")
    customer_name: str
    email: str
    phone: str
    total_cents: int
    items: int = Field(description="units ordered")


@router.get("/fulfilment/orders", response_model=Page[QueueOrderOut],
            summary="Orders to prepare, newest first, filtered like the order pages",
            responses={403: {"description": "forbidden: no orders.read (at location_id)"}})
async def queue(
    request: Request, actor: Reads, cursor: CursorQuery = None, limit: LimitQuery = 50,
    status: Annotated[QueueStatus | None, Query(
        description="open: paid and not yet shipped, collected or cancelled (the "
                    "store's queue); or one order status")] = None,
    location_id: Annotated[int | None, Query(
        ge=1, le=MAX_INT32, description="orders prepared at (or sold in) this location")]
    = None,
    channel: Annotated[str | None, Query(max_length=32), NoNul] = None,
    delivery_method: Annotated[Literal["home", "pickup", "store"] | None, Query(
        description="store: a sale in the store")] = None,
    date_from: Annotated[IsoDate | None, Query(description="ordered on or after this day (the "
                                                        "shop's time zone)")] = None,
    date_to: Annotated[IsoDate | None, Query(description="ordered on or before this day")]
    = None,
    q: Annotated[str, Query(max_length=200, description=(
        "order number, pickup code, the customer's name, e-mail or phone")), NoNul] = "",
) -> Page[QueueOrderOut]:
    before = cursor_ints(cursor, "id")
    settings = settings_of(request)
    query = OrderQuery(channel=channel or None,
                       status=status,
                       location_id=location_id, delivery_method=delivery_method,
                       date_from=date_from, date_to=date_to, q=q)
    async with db_of(request).reader() as s:
        rows = await order_rows(s, actor, query, timezone=settings.timezone,
                                secret=settings.resolved_secret_key(),
                                before_id=before[0] if before else None, limit=limit + 1)
    return page_of([QueueOrderOut(
        id=r.id, number=r.number, created_at=r.created_at, status=r.status,
        channel=r.channel, delivery_method=r.delivery_method, location_name=r.location_name,
        customer_name=r.customer_name, email=r.email, phone=r.phone,
        total_cents=r.total_cents, items=r.items) for r in rows], limit,
        lambda r: {"id": r.id})


class PickLineOut(BaseModel):
    variant_id: int
    sku: str
    name: str
    quantity: int
    orders: list[str] = Field(description="the order numbers the units are for")


class PickListOut(BaseModel):
    location_id: int
    lines: list[PickLineOut] = Field(description="in product and variant name order")
    order_numbers: list[str]


@router.get("/fulfilment/pick-list", response_model=PickListOut,
            summary="What a location collects for its web orders still to pick",
            responses={403: {"description": "forbidden: no orders.read at location_id"}})
async def get_pick_list(
    request: Request, actor: Reads,
    location_id: Annotated[int, Query(ge=1, le=MAX_INT32)],
) -> PickListOut:
    actor.require("orders.read", location_id)
    async with db_of(request).reader() as s:
        picks = await pick_list(s, location_id)
    return PickListOut(location_id=picks.location_id, order_numbers=picks.order_numbers,
                       lines=[PickLineOut(variant_id=ln.variant_id, sku=ln.sku, name=ln.name,
                                          quantity=ln.quantity, orders=ln.orders)
                              for ln in picks.lines])


class HistoryStepOut(BaseModel):
    at: datetime
    step: str = Field(description="ordered, picking, ready, reminded, packed, shipped, "
                                  "collected, cancelled, or another audited action")
    who: str = Field(description="the staff member; empty for a step nobody audited")


class FulfilmentOut(BaseModel):
    order_id: int
    status: str
    delivery_method: str | None
    locations: list[int] = Field(description="where the order is prepared")
    actions: list[Literal["picking", "ready", "packed", "shipped"]] = Field(
        description="the steps the caller may take now")
    may_cancel: bool
    history: list[HistoryStepOut] = Field(description="oldest first")


@router.get("/orders/{order_id}/fulfilment", response_model=FulfilmentOut,
            summary="Where an order's fulfilment stands: next steps and history",
            responses={403: {"description": "forbidden: no orders.read where the order is "
                                            "prepared"},
                       404: {"description": "order_not_found"}})
async def get_fulfilment(request: Request, actor: Reads,
                         order_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> FulfilmentOut:
    async with db_of(request).reader() as s:
        st = await fulfilment_state(s, actor, order_id)
    return FulfilmentOut(
        order_id=st.order_id, status=st.status, delivery_method=st.delivery_method,
        locations=st.locations, actions=st.actions,
        may_cancel=st.may_cancel,
        history=[HistoryStepOut(at=h.at, step=h.step, who=h.who) for h in st.history])
