"""The funnel report: how many events of each kind, by how many visitors.

Events are counted whether or not the shopper consented; distinct visitors can
only be counted among those who did (the others carry no visitor id).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.analytics import KINDS
from saumaton.analytics.models import AnalyticsEvent
from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed

# No reporting permission exists yet: whoever may read every location's orders
# may see the funnel (owner, manager, service, finance - not a store cashier).
PERMISSION = "orders.read"


class FunnelStep(BaseModel):
    kind: str
    events: int
    visitors: int  # distinct consenting visitors with at least one such event


class FunnelReport(BaseModel):
    since: datetime
    until: datetime
    steps: list[FunnelStep]
    # order_placed events / visit events; None when there were no visits
    conversion: float | None


def require_funnel_access(actor: Actor) -> None:
    actor.require(PERMISSION, everywhere=True)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def funnel(session: AsyncSession, since: datetime, until: datetime) -> FunnelReport:
    """Events in [since, until), per kind in funnel order (naive times are UTC)."""
    since, until = _utc(since), _utc(until)
    if since >= until:
        raise ValidationFailed("since must be before until", code="invalid_period",
                               field="since")
    e = AnalyticsEvent
    rows = await session.execute(
        select(e.kind, func.count(), func.count(e.visitor_id.distinct()))
        .where(e.at >= since, e.at < until)
        .group_by(e.kind))
    counts = {kind: (int(events), int(visitors)) for kind, events, visitors in rows}
    steps = [FunnelStep(kind=k, events=counts.get(k, (0, 0))[0],
                        visitors=counts.get(k, (0, 0))[1]) for k in KINDS]
    visits = counts.get("visit", (0, 0))[0]
    orders = counts.get("order_placed", (0, 0))[0]
    return FunnelReport(since=since, until=until, steps=steps,
                        conversion=round(orders / visits, 4) if visits else None)
