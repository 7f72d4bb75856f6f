"""The per-process cache of reference data (`Database.cached(..., topics=...)`): a value
is dropped by a committed outbox event of its topics, in this process at once and in
another process through the event hub; a load under way when such an event comes is
not kept; other topics leave it alone."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from saumaton.db.uow import Database
from saumaton.events.hub import EventHub
from tests.support import eventually

_keys = itertools.count()


def _loader(values: list[int]) -> tuple[list[int], Callable[[], Awaitable[int]]]:
    calls: list[int] = []

    async def load() -> int:
        calls.append(1)
        return values[0]
    return calls, load


async def test_a_committed_event_of_the_topic_drops_the_value(db: Database) -> None:
    key = ("ref-test", next(_keys))
    values = [1]
    calls, load = _loader(values)
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 1
    values[0] = 2
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 1
    async with db.uow() as uow:  # another topic: kept
        uow.emit("stock.changed", {"variant_id": 0})
        await uow.commit()
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 1
    assert len(calls) == 1
    async with db.uow() as uow:
        uow.emit("campaign.changed", {"campaign_id": 0})
        await uow.commit()
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 2
    assert len(calls) == 2


async def test_an_event_committed_by_another_process_drops_the_value(
        db: Database, database_url: str) -> None:
    """Two Database objects on one database are two processes: the second one's cache
    follows the first one's commits through its event hub."""
    other = Database(database_url, pool_size=2)
    hub = EventHub(other)
    await hub.start()
    await asyncio.wait_for(hub.ready.wait(), 15)
    try:
        key = ("ref-test", next(_keys))
        values = [1]
        _, load = _loader(values)
        assert await other.cached(key, 60, load, topics=("price.changed",)) == 1
        values[0] = 2
        async with db.uow() as uow:
            uow.emit("price.changed", {"variant_id": 0})
            await uow.commit()

        async def fresh() -> bool:
            return await other.cached(key, 60, load, topics=("price.changed",)) == 2
        await eventually(fresh, within=15, what="the other process's cache to drop the value")
    finally:
        await hub.stop()
        await other.dispose()


async def test_a_load_under_way_when_the_event_comes_is_not_kept(db: Database) -> None:
    key = ("ref-test", next(_keys))
    started, release = asyncio.Event(), asyncio.Event()
    values = [1]

    async def slow() -> int:
        seen = values[0]
        started.set()
        await release.wait()
        return seen

    async def quick() -> int:
        return values[0]

    first = asyncio.create_task(db.cached(key, 60, slow, topics=("product.updated",)))
    await started.wait()
    values[0] = 2
    db.invalidate(["product.updated"])  # what a commit or the hub does
    release.set()
    assert await first == 1  # the caller gets what it read …
    # … but it is not kept: the next call loads the new value
    assert await db.cached(key, 60, quick, topics=("product.updated",)) == 2


async def test_events_written_by_a_statement_drop_the_value_on_commit_only(
        db: Database) -> None:
    """A statement that writes its own outbox rows (`outbox_ctes_pg`, the paid web
    order) tells the unit of work with `wrote_events`: the same as emitting them."""
    key = ("ref-test", next(_keys))
    values = [1]
    calls, load = _loader(values)
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 1
    values[0] = 2
    async with db.uow() as uow:  # rolled back: nothing happened, the value stays
        uow.wrote_events(("campaign.changed",))
        await uow.rollback()
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 1
    async with db.uow() as uow:
        uow.wrote_events(("campaign.changed",))
        await uow.commit()
    assert await db.cached(key, 60, load, topics=("campaign.changed",)) == 2
    assert len(calls) == 2
