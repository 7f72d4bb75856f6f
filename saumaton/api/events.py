"""/api/v1/events: a server-sent-events stream of committed domain events.

Stock, price and campaign topics are public (the webshop shows them); every other
topic needs a staff session or token with the permission in TOPICS: orders and
payments `orders.read`, customers (also their loyalty points and survey answers)
`customers.read`, chats a service desk agent. A reconnecting client sends
Last-Event-ID and gets what it missed replayed from the outbox.

Not offered: `service.canned` and `service.presence` (the service desk's own pages
keep themselves current with them; there is nothing to read them with in the API).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import Field
from sse_starlette.sse import EventSourceResponse

from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, ValidationFailed
from saumaton.core.types import MAX_ID, MAX_INT32
from saumaton.events import sse
from saumaton.events.hub import Event, EventHub
from saumaton.service.chat import is_agent
from saumaton.web.auth import optional_actor
from saumaton.web.route_access import public

router = APIRouter(prefix="/api/v1", tags=["events"])

AGENT = "service.agent"  # not a permission: the service desk's roles (service.chat)
# Topic -> who may subscribe: None anyone, else a permission (or AGENT).
TOPICS: dict[str, str | None] = {
    "stock.changed": None, "price.changed": None, "campaign.changed": None,
    "order.created": "orders.read", "order.paid": "orders.read",
    "order.cancelled": "orders.read", "order.collected": "orders.read",
    "order.picking": "orders.read", "order.ready": "orders.read",
    "order.packed": "orders.read", "order.shipped": "orders.read",
    "order.pickup_reminded": "orders.read",
    "order.partly_returned": "orders.read", "order.returned": "orders.read",
    "payment.status": "orders.read", "refund.created": "orders.read",
    "refund.pending": "orders.read", "refund.ok": "orders.read", "refund.fail": "orders.read",
    "return.created": "orders.read", "return.completed": "orders.read",
    "return.cancelled": "orders.read", "product.created": "orders.read",
    "product.updated": None, "stock.transfer": "stock.read",
    "board.changed": "orders.read",  # the staff board is read with orders.read
    "customer.created": "customers.read", "customer.updated": "customers.read",
    "customer.merged": "customers.read", "customer.unmerged": "customers.read",
    "loyalty.changed": "customers.read", "nps.answered": "customers.read",
    "chat.message": AGENT, "chat.updated": AGENT,
}
PUBLIC_TOPICS = frozenset(t for t, need in TOPICS.items() if need is None)
ALL_TOPICS = frozenset(TOPICS)


def _may(actor: Actor, need: str) -> bool:
    return is_agent(actor) if need == AGENT else actor.can(need)


def refused(actor: Actor | None, topics: set[str]) -> list[str]:
    """The topics this actor may not subscribe to (None: not logged in), sorted."""
    return sorted(t for t in topics if (need := TOPICS[t]) is not None
                  and (actor is None or not _may(actor, need)))


def _filter(topics: set[str], variant_ids: set[int], product_id: int | None) -> Any:
    def accepts(e: Event) -> bool:
        if e.topic not in topics:
            return False
        if variant_ids and "variant_id" in e.payload:
            return int(e.payload["variant_id"]) in variant_ids
        if product_id is not None and "product_id" in e.payload:
            return int(e.payload["product_id"]) == product_id
        return True
    return accepts


@router.get("/events", summary="Server-sent events (text/event-stream)",
            operation_id="follow_events",
            response_class=EventSourceResponse,
            dependencies=[public("stock, price and campaign topics are public; the handler "
                                 "checks the caller's session or token for the others")])
async def events(
    request: Request,
    topic: Annotated[list[Annotated[str, Field(max_length=40)]] | None, Query(
        max_length=10, description="repeatable; default: stock+price")]
    = None,
    variant_id: Annotated[list[Annotated[int, Field(ge=1, le=MAX_INT32)]] | None, Query(
        max_length=200, description="only these variants (repeatable)")] = None,
    product_id: Annotated[int | None, Query(
        ge=1, le=MAX_INT32, description="events naming a product: only this one's "
                                        "(e.g. product.updated for a product page)")] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
) -> EventSourceResponse:
    topics = set(topic or ["stock.changed", "price.changed", "campaign.changed"])
    unknown = topics - ALL_TOPICS
    if unknown:
        raise ValidationFailed(f"unknown topics: {', '.join(sorted(unknown))}",
                               code="unknown_topic", field="topic")
    if topics - PUBLIC_TOPICS:
        actor = await optional_actor(request)
        if actor is None:
            raise Forbidden("staff topics need a staff login or token", code="forbidden")
        denied = refused(actor, topics)
        if denied:
            raise Forbidden(f"you may not follow {', '.join(denied)}", code="forbidden",
                            field="topic", extra={"topics": denied})
    accepts = _filter(topics, set(variant_id or []), product_id)
    hub: EventHub = request.app.state.hub
    return await sse.event_stream(hub, accepts, last_event_id)
