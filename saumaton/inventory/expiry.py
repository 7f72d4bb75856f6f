"""Background release of expired reservations, run by every app process.

Several processes may run it at once: on PostgreSQL each claims rows with
FOR UPDATE SKIP LOCKED, on SQLite writes are serialised anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from saumaton.db.uow import Database
from saumaton.inventory.services import expire_due

log = logging.getLogger(__name__)


async def expire_once(db: Database) -> int:
    async with db.uow() as uow:
        n = await expire_due(uow)
        await uow.commit()
    return n


async def run_expiry(db: Database, every_seconds: float = 30.0,
                     stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            n = await expire_once(db)
            if n:
                log.info("released %d expired reservations", n)
        except Exception:  # a failed sweep is retried on the next tick
            log.exception("reservation expiry failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
