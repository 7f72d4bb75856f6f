"""A per-process cache of who a session or token belongs to, that a revocation empties at
once: staff sessions and API tokens (web/auth.py) and shopper sessions (web/shopper.py).

Look-ups are kept for `ttl` seconds so that a busy till does not read its session row on
every request; revoking (logout, password change, disabling, erasure) drops the owner's
entries right after the commit in this process and, through the outbox event that the
revocation writes, in every other process (`follow_revocations`). The TTL is only a
backstop. A look-up that began before an eviction is not stored: it may have read the
state from before the revocation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from saumaton.events.hub import Event, EventHub

log = logging.getLogger(__name__)
V = TypeVar("V")
LIMIT = 10_000  # entries; a cache past it starts again empty


@dataclass
class RevocableCache(Generic[V]):
    owner_of: Callable[[V], int | None]  # whose entry it is (staff id, customer id)
    ttl: float = 30.0
    _entries: dict[str, tuple[float, V]] = field(default_factory=dict)
    generation: int = 0  # bumped by every eviction

    def get(self, key: str) -> V | None:
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, key: str, value: V, read_at_generation: int) -> None:
        """Keep `value`, unless an eviction happened since the look-up began."""
        if read_at_generation != self.generation:
            return
        if len(self._entries) > LIMIT:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def forget(self, owner: int) -> None:
        self.generation += 1
        for key in [k for k, (_, v) in self._entries.items() if self.owner_of(v) == owner]:
            self._entries.pop(key, None)

    def forget_everyone(self) -> None:
        self.generation += 1
        self._entries.clear()


async def follow_revocations(hub: EventHub, accepts: Callable[[Event], bool], owner_key: str,
                             caches: Sequence[RevocableCache[Any]], what: str) -> None:
    """Run for the app's life: evict an owner's entries from `caches` when another process
    (or the CLI) revokes them (the event's payload names the owner under `owner_key`).
    A subscription cut off for lagging forgets everyone and subscribes again."""
    while True:
        sub = hub.subscribe(accepts)
        try:
            async for e in sub:
                try:
                    owner = int(e.payload.get(owner_key, 0))
                except (TypeError, ValueError):
                    owner = None
                for cache in caches:
                    if owner is None:
                        cache.forget_everyone()
                    else:
                        cache.forget(owner)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let the cache listener die
            log.exception("%s event listener failed", what)
        finally:
            hub.unsubscribe(sub)
        for cache in caches:
            cache.forget_everyone()
