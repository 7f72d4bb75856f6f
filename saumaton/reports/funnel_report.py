"""The conversion funnel per business day, channel and device.

Counts the analytics events of each step (saumaton.analytics.KINDS) per local day,
event channel and device (saumaton/analytics/device.py), and each step's conversion
from the step before. An `order_placed` event is written by the checkout itself,
without a User-Agent: it takes the device of its order's `payment_started` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.analytics import KINDS
from saumaton.analytics.device import DEVICES
from saumaton.analytics.models import AnalyticsEvent
from saumaton.core.actor import Actor
from saumaton.reports.journeys import require_journeys
from saumaton.reports.period import Period

ORDER_LOOKUP_CHUNK = 1000


@dataclass
class FunnelCounts:
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def step_conversion(self, kind: str) -> float | None:
        """This step's events / the previous step's; None for the first step or when
        the previous step had none."""
        i = KINDS.index(kind)
        if i == 0:
            return None
        before = self.events[KINDS[i - 1]]
        return self.events[kind] / before if before else None

    @property
    def conversion(self) -> float | None:
        """Orders placed per visit."""
        visits = self.events["visit"]
        return self.events["order_placed"] / visits if visits else None


@dataclass
class FunnelReport:
    period: Period
    rows: dict[tuple[date, str, str], FunnelCounts]  # (day, channel, device)
    by_device: dict[str, FunnelCounts]
    total: FunnelCounts

    def sorted_rows(self) -> list[tuple[date, str, str, FunnelCounts]]:
        return [(d, c, dev, self.rows[(d, c, dev)]) for d, c, dev in sorted(
            self.rows, key=lambda k: (k[0], k[1], DEVICES.index(k[2])
                                      if k[2] in DEVICES else 99))]


async def funnel_report(s: AsyncSession, actor: Actor, period: Period, tz: str
                        ) -> FunnelReport:
    require_journeys(actor)
    start, end = period.bounds(tz)
    zone = ZoneInfo(tz)
    e = AnalyticsEvent
    events = (await s.execute(
        select(e.at, e.kind, e.channel, e.device, e.order_id)
        .where(e.at >= start, e.at < end, e.kind.in_(KINDS)))).all()
    # The device of a placed order: its payment's page view (a day before at most).
    orders = sorted({int(r.order_id) for r in events
                     if r.kind == "order_placed" and r.device == "unknown" and r.order_id})
    device_of_order: dict[int, str] = {}
    for i in range(0, len(orders), ORDER_LOOKUP_CHUNK):
        chunk = orders[i:i + ORDER_LOOKUP_CHUNK]
        found: Any = await s.execute(
                select(e.order_id, e.device).where(
                    e.kind == "payment_started", e.at >= start - timedelta(days=1),
                    e.at < end, e.order_id.in_(chunk), e.device != "unknown")
                .order_by(e.at))
        for order_id, device in found:
            device_of_order.setdefault(int(order_id), str(device))
    rows: dict[tuple[date, str, str], FunnelCounts] = {}
    by_device: dict[str, FunnelCounts] = {}
    total = FunnelCounts()
    for at, kind, channel, device, order_id in events:
        if kind == "order_placed" and device == "unknown" and order_id:
            device = device_of_order.get(int(order_id), device)
        key = (at.astimezone(zone).date(), str(channel), str(device))
        for counts in (rows.setdefault(key, FunnelCounts()),
                       by_device.setdefault(str(device), FunnelCounts()), total):
            counts.events[kind] += 1
    ordered = {d: by_device[d] for d in sorted(
        by_device, key=lambda d: DEVICES.index(d) if d in DEVICES else 99)}
    return FunnelReport(period, rows, ordered, total)
