"""Withdrawn consent and retention: unlinking visitor ids, deleting old events."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, update

from saumaton.analytics.buffer import AnalyticsBuffer
from saumaton.analytics.models import AnalyticsEvent
from saumaton.db.uow import Database

log = logging.getLogger(__name__)


async def forget_visitor(db: Database, buffer: AnalyticsBuffer | None, vid: str) -> bool:
    """Remove a visitor id from every event, queued or stored: the events stay, as
    anonymous counts. Never raises (the shopper's choice is saved regardless);
    returns False if the database could not be updated."""
    if buffer is not None:
        buffer.forget(vid)
        await buffer.flush()  # waits for a batch in flight that may still carry the id
    try:
        async with db.uow() as uow:
            await uow.session.execute(
                update(AnalyticsEvent).where(AnalyticsEvent.visitor_id == vid)
                .values(visitor_id=None))
            await uow.commit()
    except Exception as exc:
        log.warning("could not unlink analytics visitor: %r", exc)
        return False
    return True


async def prune_events(db: Database, before: datetime) -> int:
    """Delete events recorded before `before`; returns how many."""
    async with db.uow() as uow:
        result = await uow.session.execute(
            delete(AnalyticsEvent).where(AnalyticsEvent.at < before))
        await uow.commit()
    return int(getattr(result, "rowcount", 0) or 0)
