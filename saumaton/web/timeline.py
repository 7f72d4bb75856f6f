"""The customer timeline for staff: the fragment every channel shows (`_timeline.html`)
and its live stream. The back office's customer page is in web/backoffice/customers.py.

- `GET /timeline/{customer_id}` — the fragment (staff with customers.read); `?before=`
  a cursor for the older page.
- `GET /timeline/{customer_id}/chats/{conversation_id}` — one of the customer's chats,
  read-only, opened inside the timeline ("Show messages"): also for a cashier, who may
  not open the service desk's view of it.
- `GET /timeline/{customer_id}/events` — server-sent events for this customer only
  (`static/js/timeline.js` reloads the fragment on each): orders (also cancelled),
  handovers, refunds, notes, consents and other customer changes, chat messages,
  loyalty points, NPS answers, merges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound
from saumaton.core.types import MAX_ID
from saumaton.customers.duplicates import resolve_customer_id
from saumaton.customers.timeline import MAX_LIMIT, TimelineEvent, chat_transcript, timeline
from saumaton.events.hub import Event, EventHub
from saumaton.service.models import Conversation
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import error_page, gettext, page_router, render

router = page_router()
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
ConversationId = Annotated[int, Path(ge=1, le=MAX_ID)]
PAGE = 50
# What changes a customer's timeline (each payload names the customer, or a chat of theirs).
TOPICS = frozenset({
    "order.created", "order.paid", "order.cancelled", "order.collected",
    "order.picking", "order.ready", "order.packed", "order.shipped",
    "refund.created", "refund.ok", "refund.fail", "customer.updated", "customer.merged",
    "customer.unmerged", "chat.message", "chat.updated", "loyalty.changed", "nps.answered",
    "followup.queued", "followup.sent", "followup.skipped"})


def _no_customer(request: Request) -> Response:
    return error_page(request, 404, gettext(request, N_("There is no such customer.")))


async def _events(request: Request, actor: Actor, customer_id: int, before: str | None,
                  limit: int) -> tuple[int, list[TimelineEvent]]:
    async with db_of(request).reader() as s:
        cid = await resolve_customer_id(s, customer_id)
        return cid, await timeline(s, actor, cid, limit=limit + 1, before=before)


def _fragment(request: Request, customer_id: int, events: list[TimelineEvent], limit: int,
              *, older: bool) -> Response:
    more = len(events) > limit
    shown = events[:limit]
    response = render(request, "_timeline.html", {
        "timeline": shown, "timeline_customer_id": customer_id,
        "timeline_next": shown[-1].cursor if more and shown else "",
        "timeline_older": older})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/timeline/{customer_id}")
async def timeline_fragment(
        request: Request,
        actor: Annotated[Actor, requires("customers.read")], customer_id: CustomerId,
        before: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE) -> Response:
    """The timeline fragment; with `before`, the older page's items only."""
    try:
        cid, events = await _events(request, actor, customer_id, before, limit)
    except NotFound:
        return _no_customer(request)
    return _fragment(request, cid, events, limit, older=before is not None)


@router.get("/timeline/{customer_id}/chats/{conversation_id}")
async def timeline_chat(request: Request,
        actor: Annotated[Actor, requires("customers.read")], customer_id: CustomerId,
                        conversation_id: ConversationId) -> Response:
    """The chat's messages, the fragment a chat on the timeline opens."""
    try:
        async with db_of(request).reader() as s:
            transcript = await chat_transcript(s, actor, customer_id, conversation_id)
    except NotFound:
        return error_page(request, 404, gettext(request, N_("There is no such chat.")))
    response = render(request, "_timeline_chat.html", {"transcript": transcript})
    response.headers["Cache-Control"] = "no-store"
    return response


def _accepts(customer_id: int, conversations: set[int]) -> Any:
    """Events about this customer; chat.updated of any conversation is let through to be
    checked in the stream (a chat linked to the customer just now names only itself)."""
    def accepts(e: Event) -> bool:
        if e.topic not in TOPICS:
            return False
        p = e.payload
        for key in ("customer_id", "merged_id"):
            value = p.get(key)
            if isinstance(value, int) and value == customer_id:
                return True
        conv = p.get("conversation_id")
        return isinstance(conv, int) and (conv in conversations or e.topic == "chat.updated")
    return accepts


async def _about(request: Request, e: Event, customer_id: int,
                 conversations: set[int]) -> bool:
    """Whether an accepted event is this customer's: a chat.updated of a conversation
    not known yet is looked up (was it linked to this customer?)."""
    conv = e.payload.get("conversation_id")
    if e.topic != "chat.updated" or not isinstance(conv, int) or conv in conversations:
        return True
    if e.payload.get("customer_id") == customer_id:
        return True
    async with db_of(request).reader() as s:
        owner = await s.scalar(select(Conversation.customer_id)
                               .where(Conversation.id == conv))
    if owner is not None and int(owner) == customer_id:
        conversations.add(conv)
        return True
    return False


@router.get("/timeline/{customer_id}/events", response_class=EventSourceResponse)
async def timeline_events(request: Request,
        actor: Annotated[Actor, requires("customers.read")],
        customer_id: CustomerId) -> Response:
    """Server-sent events that change this customer's timeline; `ready` first."""
    async with db_of(request).reader() as s:
        cid = await resolve_customer_id(s, customer_id)
        conversations = {int(c) for c in (await s.scalars(
            select(Conversation.id).where(Conversation.customer_id == cid))).all()}
    hub: EventHub = request.app.state.hub
    sub = hub.subscribe(_accepts(cid, conversations))

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"event": "ready", "data": "{}"}
            async for e in sub:
                if await _about(request, e, cid, conversations):
                    yield {"id": str(e.id), "event": "changed", "data": e.sse_data()}
        finally:
            hub.unsubscribe(sub)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})
