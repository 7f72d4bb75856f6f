"""The effective settings of one app process, kept current without a restart.

The app loads them at startup (`refresh`), the page that saves a change refreshes them
at once, and `follow` refreshes them when a "settings.changed" event arrives from any
process (PostgreSQL LISTEN / the SQLite poll of the EventHub), with a slow re-read as a
safety net. Long-running jobs take the holder itself (a `Callable[[], Settings]`) and
call it each round instead of keeping the object they were started with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from saumaton.config import Settings
from saumaton.core.waiting import first_of
from saumaton.db.uow import Database
from saumaton.events.hub import Event, EventHub
from saumaton.shopsettings.services import TOPIC, effective

log = logging.getLogger(__name__)

RELOAD_SECONDS = 60.0  # in case an event was missed (a dropped LISTEN connection)


class LiveSettings:
    """`live()` is the current effective Settings; `on_change` callbacks see each new one."""

    def __init__(self, base: Settings) -> None:
        self.base = base
        self.current = base
        self.on_change: list[Callable[[Settings], None]] = []

    def __call__(self) -> Settings:
        return self.current

    async def refresh(self, db: Database) -> Settings:
        async with db.reader() as s:
            fresh = await effective(s, self.base)
        if fresh != self.current:
            self.current = fresh
            for callback in self.on_change:
                callback(fresh)
        return fresh

    async def follow(self, db: Database, hub: EventHub, stop: asyncio.Event,
                     reload_seconds: float = RELOAD_SECONDS) -> None:
        """Refresh on every "settings.changed" event until `stop` is set."""
        def accepts(event: Event) -> bool:
            return event.topic == TOPIC

        sub = hub.subscribe(accepts)
        try:
            while not stop.is_set():
                if sub.overflowed:  # cut off by the hub: listen again
                    hub.unsubscribe(sub)
                    sub = hub.subscribe(accepts)
                await first_of(stop.wait(), sub.queue.get(), within=reload_seconds)
                if stop.is_set():
                    break
                while not sub.queue.empty():  # one reload for a burst of changes
                    sub.queue.get_nowait()
                try:
                    await self.refresh(db)
                except Exception:  # retried on the next event or tick
                    log.exception("reloading the shop settings failed")
        finally:
            hub.unsubscribe(sub)
