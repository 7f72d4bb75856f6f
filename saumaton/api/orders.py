"""/api/v1 orders: one order book for every channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden
from saumaton.core.types import MAX_ID
from saumaton.orders import services as orders
from saumaton.orders.schemas import OrderIn, OrderOut
from saumaton.web.auth import db_of, require_actor

router = APIRouter(prefix="/api/v1", tags=["orders"])


@router.post(
    "/orders", response_model=OrderOut, status_code=201,
    summary="Place an order from any channel",
    responses={200: {"description": "replay: this Idempotency-Key was seen; same order"},
               409: {"description": "out_of_stock or idempotency_key_reused"}},
)
async def create_order(
    request: Request, response: Response, body: OrderIn,
    actor: Actor = Depends(require_actor),
    idempotency_key: Annotated[str | None, Header(
        min_length=8, max_length=200,
        description="any unique string (a UUID); a retry with the same key returns the "
                    "same order and never sells twice")] = None,
) -> OrderOut:
    out, replayed = await orders.place_order(db_of(request), actor, body, idempotency_key)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/orders/{out.id}"
    return out


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(request: Request, order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    actor: Actor = Depends(require_actor)) -> OrderOut:
    async with db_of(request).reader() as s:
        out = await orders.get_order(s, order_id)
    if not actor.can("orders.read", out.location_id):
        raise Forbidden("you may not read this order", code="forbidden")
    return out


@router.get("/orders", response_model=list[OrderOut], summary="Newest first")
async def list_orders(
    request: Request, actor: Actor = Depends(require_actor),
    channel: Annotated[str | None, Query(max_length=32)] = None,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[OrderOut]:
    async with db_of(request).reader() as s:
        return await orders.list_orders(s, actor, channel=channel, location_id=location_id,
                                        customer_id=customer_id, limit=limit,
                                        before_id=before_id)
