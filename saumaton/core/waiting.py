"""Waiting in the background loops: until the first of several things happens or a
timeout passes, leaving nothing pending behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


async def first_of(*awaitables: Awaitable[object], within: float) -> None:
    """Return when any of `awaitables` is done or after `within` seconds; the others
    are cancelled and awaited (no task is left pending at shutdown)."""
    waits = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await w
