"""Is an agent online? An agent with the /service page open sends a heartbeat every
20 s. Each app process keeps the last heartbeat per agent in memory, and the heartbeat is
also published as a `service.presence` event (at most every 20 s per agent and process),
which every process's event hub delivers; so with several app processes a visitor served
by one process sees an agent whose page talks to another. "Online" means a heartbeat
within the last 60 s. A process that starts reads the last minute's presence events from
the outbox once.
"""

from __future__ import annotations

import time
from datetime import timedelta
from weakref import WeakKeyDictionary

from sqlalchemy import select

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.events.hub import Event, EventHub
from saumaton.events.models import OutboxEvent
from saumaton.service.chat import require_agent

TOPIC = "service.presence"
ONLINE_SECONDS = 60.0
PUBLISH_EVERY = 20.0


class Presence:
    def __init__(self) -> None:
        self.seen: dict[int, float] = {}  # staff id -> wall-clock time of the last beat
        self.published: dict[int, float] = {}
        self.warmed = False

    def note(self, staff_id: int, at: float, away: bool = False) -> None:
        if away:
            if self.seen.get(staff_id, 0.0) <= at:
                self.seen.pop(staff_id, None)
            return
        if at > self.seen.get(staff_id, 0.0):
            self.seen[staff_id] = at

    def accepts(self, e: Event) -> bool:
        """The hub's filter: notes presence events, delivers nothing."""
        if e.topic == TOPIC:
            try:
                self.note(int(e.payload["staff_id"]), float(e.payload["at"]),
                          bool(e.payload.get("away")))
            except (KeyError, TypeError, ValueError):
                pass
        return False

    def online_agents(self, now: float | None = None) -> set[int]:
        limit = (time.time() if now is None else now) - ONLINE_SECONDS
        return {sid for sid, at in self.seen.items() if at > limit}

    def is_online(self, now: float | None = None) -> bool:
        return bool(self.online_agents(now))


_presences: WeakKeyDictionary[EventHub, Presence] = WeakKeyDictionary()


async def presence_of(hub: EventHub) -> Presence:
    """This process's presence, listening on `hub` from the first call on."""
    presence = _presences.get(hub)
    if presence is None:
        presence = _presences[hub] = Presence()
        hub.subscribe(presence.accepts)
    if not presence.warmed:
        presence.warmed = True
        await _warm(hub.db, presence)
    return presence


async def _warm(db: Database, presence: Presence) -> None:
    since = utcnow() - timedelta(seconds=ONLINE_SECONDS)
    async with db.reader() as s:
        rows = (await s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.topic == TOPIC,
                                              OutboxEvent.created_at >= since)
            .order_by(OutboxEvent.id))).all()
    for payload in rows:
        try:
            presence.note(int(payload["staff_id"]), float(payload["at"]),
                          bool(payload.get("away")))
        except (KeyError, TypeError, ValueError):
            continue


async def heartbeat(hub: EventHub, actor: Actor, *, away: bool = False) -> None:
    """The agent's page is open (`away`: it was just closed)."""
    require_agent(actor)
    if actor.staff_id is None:
        return
    presence = await presence_of(hub)
    now = time.time()
    presence.note(actor.staff_id, now, away)
    last = presence.published.get(actor.staff_id, 0.0)
    if not away and now - last < PUBLISH_EVERY:
        return
    presence.published[actor.staff_id] = 0.0 if away else now
    async with hub.db.uow() as uow:
        uow.emit(TOPIC, {"staff_id": actor.staff_id, "at": now, "away": away})
        await uow.commit()


async def agent_online(hub: EventHub) -> bool:
    return (await presence_of(hub)).is_online()
