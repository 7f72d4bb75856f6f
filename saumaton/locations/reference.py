"""Locations and channels as each process keeps them.

The app never changes these rows (they are set up with the shop), and every shop
page needs some of them: read once per process and kept REFERENCE_SECONDS, the
backstop for a change made directly in the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.db.uow import Database
from saumaton.locations.models import Location
from saumaton.locations.services import channel_by_code

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


async def locations(db: Database, session: AsyncSession) -> tuple[LocationRef, ...]:
    """Every location, by id."""
    async def load() -> tuple[LocationRef, ...]:
        rows = (await session.scalars(select(Location).order_by(Location.id))).all()
        return tuple(LocationRef(r.id, r.code, r.name, r.kind, r.sells_in_person,
                                 r.ships_web_orders, r.pickup_point) for r in rows)
    return await db.cached(("location-refs",), REFERENCE_SECONDS, load)


async def channel_id(db: Database, session: AsyncSession, code: str) -> int:
    """The id of the channel `code`; an unknown code raises ValidationFailed (as
    `channel_by_code`) and is not kept."""
    async def load() -> int:
        return (await channel_by_code(session, code)).id
    return await db.cached(("channel-id", code), REFERENCE_SECONDS, load)
