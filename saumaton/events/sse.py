"""A server-sent-events answer over the event hub: what the API's /api/v1/events and the
service desk's streams send."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from sse_starlette.sse import EventSourceResponse

from saumaton.events.hub import Event, EventHub


async def event_stream(hub: EventHub, accepts: Callable[[Event], bool],
                       after: int | None) -> EventSourceResponse:
    """The events `accepts` takes, live; a reconnect (`after`: the Last-Event-ID) first
    gets what it missed from the outbox. The first frame, `ready`, says the stream is
    live (a client may act on it, e.g. reload what it shows)."""
    sub = hub.subscribe(accepts)
    missed = await hub.replay(after, accepts) if after is not None else []

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
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
