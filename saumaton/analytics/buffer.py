"""In-memory buffer of analytics events, written in batches by a background task.

Recording an event must never slow a page or a checkout: `add()` only appends
to a bounded deque. A task flushes it every second, or as soon as a batch is
full, with one multi-row INSERT per batch. If the buffer overflows (the
database is down or slow), the oldest events are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any, cast

from sqlalchemy import Table, insert

from saumaton.analytics.models import AnalyticsEvent
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database

log = logging.getLogger(__name__)

BATCH = 500
CAPACITY = 10_000
INTERVAL_SECONDS = 1.0
MAX_TRIES = 5
_TABLE = cast(Table, AnalyticsEvent.__table__)
# Every row names every column: one multi-row VALUES statement needs the same keys.
COLUMNS = ("at", "kind", "channel", "visitor_id", "customer_id", "order_id",
           "variant_id", "path", "data", "device")
# PostgreSQL: the batch as one array per column, one prepared statement outside a
# transaction (a single statement is atomic on its own): no BEGIN/COMMIT round trips and
# none of SQLAlchemy's compiling of a multi-row VALUES statement, which it cannot cache
# (its shape changes with the number of rows) and which cost more than the write.
_INSERT_PG = (
    "INSERT INTO analytics_events (" + ", ".join(COLUMNS) + ") "
    "SELECT at, kind, channel, visitor_id, customer_id, order_id, variant_id, path, "
    "data::json, device FROM unnest($1::timestamptz[], $2::text[], $3::text[], "
    "$4::text[], $5::bigint[], $6::bigint[], $7::int[], $8::text[], $9::text[], "
    "$10::text[]) AS r(at, kind, channel, visitor_id, customer_id, order_id, variant_id, "
    "path, data, device)")


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in COLUMNS}
    out["at"] = out["at"] or utcnow()
    out["channel"] = out["channel"] or "web"
    out["path"] = out["path"] or ""
    out["data"] = out["data"] or {}
    out["device"] = out["device"] or "unknown"
    return out


class AnalyticsBuffer:
    def __init__(self, db: Database, *, capacity: int = CAPACITY, batch: int = BATCH,
                 interval: float = INTERVAL_SECONDS) -> None:
        self.db = db
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        # (failed attempts so far, row)
        self._rows: deque[tuple[int, dict[str, Any]]] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # overflow, or rows that failed MAX_TRIES times
        self.written = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: dict[str, Any]) -> None:
        """Queue one event row (keys: COLUMNS). Synchronous and O(1)."""
        if len(self._rows) >= self.capacity:
            self._rows.popleft()
            self.dropped += 1
        self._rows.append((0, row))
        if len(self._rows) >= self.batch:
            self._wake.set()

    def forget(self, visitor_id: str) -> int:
        """Drop the visitor id from queued events (consent withdrawn); returns how many."""
        n = 0
        for _, row in self._rows:
            if row.get("visitor_id") == visitor_id:
                row["visitor_id"] = None
                n += 1
        return n

    async def flush(self) -> int:
        """Write everything queued now; returns the number of rows written. Never
        raises: a failed batch goes back to the front of the queue for the next
        flush, up to MAX_TRIES times (a row the database refuses must not block
        every later event; an outage of a few seconds loses nothing)."""
        written = 0
        async with self._lock:
            while self._rows:
                batch = [self._rows.popleft() for _ in range(min(self.batch, len(self._rows)))]
                try:
                    await self._insert([row for _, row in batch])
                except Exception as exc:
                    if batch[0][0] == 0:  # once per batch, not every second of an outage
                        log.warning("writing %d analytics events failed, will retry: %r",
                                    len(batch), exc)
                    self._requeue(batch)
                    break
                written += len(batch)
        self.written += written
        async with self._progress:
            self._progress.notify_all()
        return written

    async def wait_written(self, total: int) -> None:
        """Wait until `total` rows have been written since start (tests, shutdown)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.written >= total)

    def _requeue(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        again = [(tries + 1, row) for tries, row in batch if tries + 1 < MAX_TRIES]
        room = max(self.capacity - len(self._rows), 0)
        if len(again) > room:  # newer events arrived meanwhile; keep those
            again = again[len(again) - room:]
        if len(batch) > len(again):
            self.dropped += len(batch) - len(again)
            log.warning("dropped %d analytics events", len(batch) - len(again))
        self._rows.extendleft(reversed(again))

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        if self.db.is_postgres:
            complete = [_complete(r) for r in rows]
            columns: list[list[Any]] = [[row[c] for row in complete] for c in COLUMNS]
            if any(at.tzinfo is None for at in columns[0]):  # as UTCDateTime refuses it
                raise ValueError("naive datetime given; use saumaton.core.clock.utcnow()")
            data = COLUMNS.index("data")
            columns[data] = [json.dumps(d) for d in columns[data]]
            await self.db.fetch_once(_INSERT_PG, *columns)
            return
        async with self.db.uow() as uow:
            # .values(list): one INSERT ... VALUES (...), (...), ... statement.
            await uow.session.execute(insert(_TABLE).values([_complete(r) for r in rows]))
            await uow.commit()

    # --- background task ----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="analytics-flush")

    async def stop(self) -> None:
        """Stop the task and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the task die; the next tick retries
                log.exception("analytics flush failed")
