"""The background job every app process runs: what is left on expired gift cards and
store credit is written off (an `expire` entry each), so the ledger's sum stays the
shop's outstanding liability. Several processes may run it at once: the ledger skips
cards another process holds and moves each balance with a conditional UPDATE."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import IntegrityError

from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.giftcards.ledger import expire_cards

log = logging.getLogger(__name__)

EXPIRY_EVERY_SECONDS = 3600.0


async def expire_once(db: Database) -> int:
    """One sweep; the number of cards written off."""
    try:
        async with db.uow() as uow:
            n = await expire_cards(uow, SYSTEM)
            await uow.commit()
    except IntegrityError:  # another process wrote the same card off first
        return 0
    return n


async def run_expiry(db: Database, every_seconds: float = EXPIRY_EVERY_SECONDS,
                     stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            n = await expire_once(db)
            if n:
                log.info("wrote off %d expired gift cards", n)
        except Exception:  # retried on the next tick
            log.exception("gift card expiry failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
