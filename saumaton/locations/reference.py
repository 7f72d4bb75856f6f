"""Locations and channels as each process keeps them.

The app never changes these rows (they are set up with the shop), and every shop
page needs some of them: read once per process and kept REFERENCE_SECONDS, the
backstop for a change made directly in the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.db.session_cache import database_of
from saumaton.db.uow import Database
from saumaton.locations.models import Location
from saumaton.locations.services import channel_by_code, pos_channel_for

REFERENCE_SECONDS = 60.0


@dataclass(frozen=True)
class LocationRef:
    id: int
    code: str
    name: str
    kind: str
    sells_in_person: bool
    ships_web_orders: bool
    pickup_point: bool
    address: str = ""
    web_priority: int = 100


# The one service that edits location rows (a store's return days, shopsettings)
# announces it with this event; tests that edit them directly emit it too.
LOCATION_TOPICS = ("settings.changed",)


async def _load_locations(session: AsyncSession) -> tuple[LocationRef, ...]:
    rows = (await session.scalars(select(Location).order_by(Location.id))).all()
    return tuple(LocationRef(r.id, r.code, r.name, r.kind, r.sells_in_person,
                             r.ships_web_orders, r.pickup_point, r.address,
                             r.web_priority) for r in rows)


async def locations(db: Database, session: AsyncSession) -> tuple[LocationRef, ...]:
    """Every location, by id."""
    async def load() -> tuple[LocationRef, ...]:
        return await _load_locations(session)
    return await db.cached(("location-refs",), REFERENCE_SECONDS, load,
                           topics=LOCATION_TOPICS)


async def locations_of(session: AsyncSession) -> tuple[LocationRef, ...]:
    """`locations` for a service given only a session (its Database: session.info)."""
    db = database_of(session)
    return await (locations(db, session) if db is not None else _load_locations(session))


async def channel_id(db: Database, session: AsyncSession, code: str) -> int:
    """The id of the channel `code`; an unknown code raises ValidationFailed (as
    `channel_by_code`) and is not kept."""
    async def load() -> int:
        return (await channel_by_code(session, code)).id
    return await db.cached(("channel-id", code), REFERENCE_SECONDS, load)


async def channel_id_of(session: AsyncSession, code: str) -> int:
    """`channel_id` for a service given only a session."""
    db = database_of(session)
    if db is None:
        return (await channel_by_code(session, code)).id
    return await channel_id(db, session, code)


async def pos_channel_id_of(session: AsyncSession, location_id: int) -> int:
    """The till channel of the store `location_id` (`pos_channel_for`), kept as the
    other channels are; a store without one raises NotFound and is not kept."""
    async def load() -> int:
        return (await pos_channel_for(session, location_id)).id
    db = database_of(session)
    if db is None:
        return await load()
    return await db.cached(("pos-channel-id", location_id), REFERENCE_SECONDS, load)


def web_fulfilment_ids(places: tuple[LocationRef, ...]) -> list[int]:
    """Locations that ship web orders, in routing order."""
    return [loc.id for loc in sorted((loc for loc in places if loc.ships_web_orders),
                                     key=lambda loc: (loc.web_priority, loc.id))]


def pickup_points(places: tuple[LocationRef, ...]) -> list[LocationRef]:
    """Stores where web orders can be collected, by id."""
    return [loc for loc in places if loc.pickup_point]
