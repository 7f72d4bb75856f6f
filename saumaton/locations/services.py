"""Looking up locations and channels."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.locations.models import Channel, Location


async def channel_by_code(session: AsyncSession, code: str) -> Channel:
    ch = await session.scalar(select(Channel).where(Channel.code == code))
    if ch is None:
        raise ValidationFailed(f"unknown channel '{code}'", code="unknown_channel",
                               field="channel")
    return ch


async def location_by_code(session: AsyncSession, code: str) -> Location:
    loc = await session.scalar(select(Location).where(Location.code == code))
    if loc is None:
        raise NotFound(f"no location '{code}'", code="location_not_found")
    return loc


async def list_locations(session: AsyncSession) -> list[Location]:
    return list((await session.scalars(select(Location).order_by(Location.id))).all())


async def list_channels(session: AsyncSession) -> list[Channel]:
    return list((await session.scalars(select(Channel).order_by(Channel.id))).all())


async def pos_channel_for(session: AsyncSession, location_id: int) -> Channel:
    ch = await session.scalar(select(Channel).where(
        Channel.kind == "pos", Channel.location_id == location_id).order_by(Channel.id))
    if ch is None:
        raise NotFound(f"location {location_id} has no POS channel", code="no_pos_channel")
    return ch


async def web_fulfilment_locations(session: AsyncSession) -> list[int]:
    """Locations that ship web orders, in routing order (kept per process with the
    other locations: locations.reference)."""
    from saumaton.locations.reference import locations_of, web_fulfilment_ids

    return web_fulfilment_ids(await locations_of(session))
