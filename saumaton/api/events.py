"""/api/v1/events: a server-sent-events stream of committed domain events.

Stock and price topics are public (the webshop shows them); other topics need
a staff session or token. A reconnecting client sends Last-Event-ID and gets
what it missed replayed from the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import Field
from sse_starlette.sse import EventSourceResponse

from saumaton.core.errors import Forbidden, ValidationFailed
from saumaton.core.types import MAX_ID, MAX_INT32
from saumaton.events.hub import Event, EventHub
from saumaton.web.auth import optional_actor

router = APIRouter(prefix="/api/v1", tags=["events"])

PUBLIC_TOPICS = frozenset({"stock.changed", "price.changed", "campaign.changed"})
ALL_TOPICS = PUBLIC_TOPICS | {"order.created", "customer.created", "product.created"}


def _filter(topics: set[str], variant_ids: set[int]) -> Any:
    def accepts(e: Event) -> bool:
        if e.topic not in topics:
            return False
        if variant_ids and "variant_id" in e.payload:
            return int(e.payload["variant_id"]) in variant_ids
        return True
    return accepts


@router.get("/events", summary="Server-sent events (text/event-stream)",
            response_class=EventSourceResponse)
async def events(
    request: Request,
    topic: Annotated[list[str] | None, Query(
        max_length=10, description="repeatable; default: stock+price")]
    = None,
    variant_id: Annotated[list[Annotated[int, Field(ge=1, le=MAX_INT32)]] | None, Query(
        max_length=200, description="only these variants (repeatable)")] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
) -> EventSourceResponse:
    topics = set(topic or ["stock.changed", "price.changed", "campaign.changed"])
    unknown = topics - ALL_TOPICS
    if unknown:
        raise ValidationFailed(f"unknown topics: {', '.join(sorted(unknown))}",
                               code="unknown_topic", field="topic")
    if topics - PUBLIC_TOPICS:
        actor = await optional_actor(request)
        if actor is None or not actor.can("orders.read"):
            raise Forbidden("staff topics need a staff login or token", code="forbidden")
    accepts = _filter(topics, set(variant_id or []))
    hub: EventHub = request.app.state.hub
    sub = hub.subscribe(accepts)
    missed = await hub.replay(last_event_id, accepts) if last_event_id is not None else []

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            # First frame tells the client the subscription is live.
            yield {"event": "ready", "data": "{}"}
            seen = 0
            for e in missed:
                seen = e.id
                yield {"id": str(e.id), "event": e.topic, "data": e.sse_data()}
            async for e in sub:
                if e.id <= seen:
                    continue
                yield {"id": str(e.id), "event": e.topic, "data": e.sse_data()}
        finally:
            hub.unsubscribe(sub)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})
