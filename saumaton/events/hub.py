"""Fan-out of committed outbox events to live subscribers in this process.

* PostgreSQL: one LISTEN connection per process receives the pg_notify sent by
  whichever process committed the change, so every app instance sees every
  other instance's sales.
* SQLite (one machine): the hub reads new outbox rows right after a local
  commit, and polls once a second for rows written by other processes (CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import func, select

from saumaton.db.engine import asyncpg_dsn
from saumaton.db.uow import NOTIFY_CHANNEL, Database
from saumaton.events.models import OutboxEvent

log = logging.getLogger(__name__)


def _notification_id(raw: str) -> int | None:
    """The event id from a notification without parsing it all: the outbox's
    json_build_object('id', id, ...) renders as '{"id" : 123, ...'."""
    head, sep, _ = raw.partition(",")
    if sep and head.startswith('{"id"'):
        try:
            return int(head.partition(":")[2])
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Event:
    id: int
    topic: str
    payload: dict[str, Any]

    def sse_data(self) -> str:
        return json.dumps({"id": self.id, "topic": self.topic, "payload": self.payload},
                          separators=(",", ":"))


@dataclass(eq=False)
class Subscription:
    accepts: Callable[[Event], bool]
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    async def __aiter__(self) -> AsyncIterator[Event]:
        while not self.overflowed:
            yield await self.queue.get()


class EventHub:
    POLL_SECONDS = 1.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self.subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_id = 0
        self._stopping = False
        self.ready = asyncio.Event()

    async def start(self) -> None:
        async with self.db.reader() as s:
            self._last_id = int(await s.scalar(select(func.max(OutboxEvent.id))) or 0)
        if self.db.is_postgres:
            self._task = asyncio.create_task(self._listen_postgres())
        else:
            self.db.on_commit.append(self._wake.set)
            self._task = asyncio.create_task(self._poll_sqlite())
            self.ready.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._wake.set in self.db.on_commit:
            self.db.on_commit.remove(self._wake.set)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, accepts: Callable[[Event], bool]) -> Subscription:
        sub = Subscription(accepts)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def publish(self, event: Event) -> None:
        self.db.invalidate((event.topic,))  # reference data another process changed
        for sub in list(self.subscribers):
            if not sub.accepts(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A subscriber that cannot keep up is cut off; its client reconnects
                # with Last-Event-ID and replays from the outbox.
                sub.overflowed = True
                self.subscribers.discard(sub)

    async def _fetch_since(self, last_id: int, limit: int = 500) -> list[Event]:
        async with self.db.reader() as s:
            rows = (await s.execute(
                select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.payload)
                .where(OutboxEvent.id > last_id).order_by(OutboxEvent.id).limit(limit)
            )).all()
        return [Event(int(r[0]), r[1], r[2]) for r in rows]

    async def replay(self, after_id: int, accepts: Callable[[Event], bool]) -> list[Event]:
        """Events after `after_id` that `accepts` takes, page by page up to now: a
        client's own events may sit behind any number of others."""
        out: list[Event] = []
        while True:
            page = await self._fetch_since(after_id, 1000)
            out += [e for e in page if accepts(e)]
            if len(page) < 1000:
                return out
            after_id = page[-1].id

    async def _poll_sqlite(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while True:
                    events = await self._fetch_since(self._last_id)
                    for e in events:
                        self._last_id = e.id
                        self.publish(e)
                    if len(events) < 500:
                        break
            except Exception:  # keep the hub alive through a transient database error
                log.exception("event poll failed")

    async def _listen_postgres(self) -> None:
        dsn = asyncpg_dsn(self.db.url)
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn)
                queue: asyncio.Queue[str] = asyncio.Queue()

                def on_notify(_c: Any, _pid: int, _channel: str, payload: str,
                              queue: asyncio.Queue[str] = queue) -> None:
                    queue.put_nowait(payload)

                await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                # Catch up on anything committed while we were not listening.
                while True:  # catch up page by page, however long we were away
                    missed = await self._fetch_since(self._last_id)
                    for e in missed:
                        self._deliver(e)
                    if len(missed) < 500:
                        break
                self.ready.set()
                delay = 0.2
                while not conn.is_closed():
                    if not queue.empty():  # busy: no timer per notification
                        raw = queue.get_nowait()
                    else:
                        try:
                            async with asyncio.timeout(5.0):
                                raw = await queue.get()
                        except TimeoutError:
                            await conn.execute("SELECT 1")  # keep-alive; notices a dead link
                            continue
                    if not self.subscribers and not self.db.caches_by_topic:
                        # Nobody listens in this process: just note how far we are.
                        seen = _notification_id(raw)
                        if seen is not None:
                            self._last_id = max(self._last_id, seen)
                            continue
                    data = json.loads(raw)
                    payload = data.get("payload")
                    if payload is None:  # too big for NOTIFY: read it from the outbox
                        fetched = await self._fetch_since(int(data["id"]) - 1, 1)
                        if fetched:
                            self._deliver(fetched[0])
                        continue
                    self._deliver(Event(int(data["id"]), data["topic"], payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("LISTEN connection lost; reconnecting")
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _deliver(self, e: Event) -> None:
        self._last_id = max(self._last_id, e.id)
        self.publish(e)
