"""Locations as each process keeps them (locations.reference): the web routing order
and the pickup stores come from the cache until a "settings.changed" event (the one
service that edits location rows sends it) drops it; a session of a Database finds
that Database's cache, any other session reads the rows."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.db.session_cache import database_of
from saumaton.db.uow import Database
from saumaton.locations.models import Location
from saumaton.locations.reference import locations_of, pickup_points
from saumaton.locations.services import web_fulfilment_locations
from tests.support import Shop


async def _ships(db: Database, location_id: int, ships: bool, *, announce: bool) -> None:
    async with db.uow() as uow:
        await uow.session.execute(update(Location).where(Location.id == location_id)
                                  .values(ships_web_orders=ships))
        if announce:
            uow.emit("settings.changed", {"keys": ["locations"]})
        await uow.commit()


async def test_web_locations_are_kept_until_the_settings_event(db: Database,
                                                               shop: Shop) -> None:
    async with db.reader() as s:
        assert database_of(s) is db
        before = await web_fulfilment_locations(s)
        assert shop.warehouse in before and shop.store2 not in before
        assert [loc.id for loc in pickup_points(await locations_of(s))] == \
            [shop.store1, shop.store2]
    try:
        await _ships(db, shop.store2, True, announce=False)
        async with db.reader() as s:  # a change made outside the app: the TTL's matter
            assert await web_fulfilment_locations(s) == before
        await _ships(db, shop.store2, True, announce=True)
        async with db.reader() as s:
            after = await web_fulfilment_locations(s)
        assert shop.store2 in after and set(after) - set(before) == {shop.store2}
    finally:
        await _ships(db, shop.store2, False, announce=True)
    async with db.reader() as s:
        assert await web_fulfilment_locations(s) == before


async def test_a_session_without_a_database_reads_the_rows(db: Database, shop: Shop) -> None:
    async with db.reader() as s:
        cached = await web_fulfilment_locations(s)
        bare = AsyncSession(bind=s.bind)  # made outside the Database: no cache to use
        try:
            assert database_of(bare) is None
            assert await web_fulfilment_locations(bare) == cached
        finally:
            await bare.close()
