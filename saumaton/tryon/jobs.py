"""Background release of reservations to try whose hold ended (no-shows), with a note."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from saumaton.db.uow import Database
from saumaton.shopsettings.live import LiveSettings
from saumaton.tryon.services import expire_due

log = logging.getLogger(__name__)


async def expire_once(db: Database, live: LiveSettings) -> int:
    async with db.uow() as uow:
        done = await expire_due(uow, live())
        await uow.commit()
    return len(done)


async def run_try_expiry(db: Database, live: LiveSettings, stop: asyncio.Event,
                         every_seconds: float = 30.0) -> None:
    while not stop.is_set():
        try:
            n = await expire_once(db, live)
            if n:
                log.info("released %d reservations to try (no-shows)", n)
        except Exception:  # a failed sweep is retried on the next tick
            log.exception("reserve-to-try expiry failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
