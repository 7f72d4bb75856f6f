"""The connection pool keeps what the steady load needs open: a process busy with as many
concurrent requests as its pool size reuses the same PostgreSQL backends instead of
forking new ones (a new backend fills its caches and plans every statement again); a
peak above that opens at most half as many more, and beyond that a request waits."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from saumaton.db.engine import overflow_for
from saumaton.db.uow import Database


def test_overflow_is_half_the_pool() -> None:
    assert [overflow_for(n) for n in (1, 2, 4, 5, 20)] == [1, 1, 2, 2, 10]


async def _backend_pids(db: Database, concurrent: int, rounds: int) -> set[int]:
    """The PostgreSQL backends that served `rounds` waves of `concurrent` reads held at
    once (each read waits until the whole wave holds its connection); on SQLite, none."""
    seen: set[int] = set()
    probe = "SELECT pg_backend_pid()" if db.is_postgres else "SELECT 0"
    for _ in range(rounds):
        held = asyncio.Barrier(concurrent)

        async def read(held: asyncio.Barrier = held) -> None:
            async with db.reader() as s:
                seen.add(int((await s.execute(text(probe))).scalar_one()))
                await held.wait()
        await asyncio.gather(*(read() for _ in range(concurrent)))
    return seen


async def test_steady_load_reuses_its_backends(database_url: str) -> None:
    db = Database(database_url, pool_size=4, pool_timeout=0.5)
    try:
        steady = await _backend_pids(db, 4, 5)
        peak = await _backend_pids(db, 6, 3)
        if db.is_postgres:
            # At the pool's size: the same four backends, round after round.
            assert len(steady) == 4
            # A peak of size + overflow works; the overflow's backends are closed
            # afterwards, so each peak round forks new ones (what a too-small pool costs).
            assert len(peak) > 6
        # With size + overflow held, a seventh waits and times out.
        async with AsyncExitStack() as held:
            for _ in range(6):
                s = await held.enter_async_context(db.reader())
                await s.execute(text("SELECT 1"))
            with pytest.raises(PoolTimeout):
                async with db.reader() as s:
                    await s.execute(text("SELECT 1"))
    finally:
        await db.dispose()
