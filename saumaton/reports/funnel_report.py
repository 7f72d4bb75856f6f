"""The conversion funnel per business day, channel and device.

Counts the analytics events of each step (saumaton.analytics.KINDS) per local day,
event channel and device (saumaton/analytics/device.py), and each step's conversion
from the step before. An `order_placed` event is written by the checkout itself,
without a User-Agent: it takes the device of its order's `payment_started` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.analytics import KINDS
from saumaton.analytics.device import DEVICES
from saumaton.analytics.models import AnalyticsEvent
from saumaton.core.actor import Actor
from saumaton.reports.journeys import require_journeys
from saumaton.reports.period import Period
from saumaton.tryon.models import TryReservation

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
    # Web visits that ended in a store: reservations to try made in the period (by
    # their outcome: active|sold|released|expired; docs/reserve-to-try.md).
    web_to_store: dict[str, int] = field(default_factory=dict)

    def sorted_rows(self) -> list[tuple[date, str, str, FunnelCounts]]:
        return [(d, c, dev, self.rows[(d, c, dev)]) for d, c, dev in sorted(
            self.rows, key=lambda k: (k[0], k[1], DEVICES.index(k[2])
                                      if k[2] in DEVICES else 99))]


def _hour(s: AsyncSession, at: Any) -> Any:
    """The UTC hour an event falls in (Helsinki's offset is whole hours, so an hour lies
    within one local day)."""
    if s.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", at)
    return func.strftime("%Y-%m-%d %H:00:00", at)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's strftime
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def funnel_report(s: AsyncSession, actor: Actor, period: Period, tz: str
                        ) -> FunnelReport:
    require_journeys(actor)
    start, end = period.bounds(tz)
    zone = ZoneInfo(tz)
    e = AnalyticsEvent
    in_period = (e.at >= start, e.at < end, e.kind.in_(KINDS))
    # Counted in the database per UTC hour: a month of events is a few thousand rows.
    placed_unknown = (e.kind == "order_placed") & (e.device == "unknown")
    hour = _hour(s, e.at)
    counted: Any = await s.execute(
        select(hour, e.kind, e.channel, e.device, func.count())
        .where(*in_period, ~placed_unknown)
        .group_by(hour, e.kind, e.channel, e.device))
    events: list[tuple[datetime, str, str, str, int]] = [
        (_as_utc(h), str(kind), str(channel), str(device), int(n))
        for h, kind, channel, device, n in counted]
    # Orders placed are written by the checkout without a User-Agent: each takes the
    # device of its order's payment page (at most a day before).
    placed: Any = await s.execute(
        select(e.at, e.channel, e.order_id).where(*in_period, placed_unknown))
    placed_rows = [(at, str(channel), order_id) for at, channel, order_id in placed]
    orders = sorted({int(o) for _, _, o in placed_rows if o})
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
    events += [(_as_utc(at), "order_placed", channel,
                device_of_order.get(int(o), "unknown") if o else "unknown", 1)
               for at, channel, o in placed_rows]
    rows: dict[tuple[date, str, str], FunnelCounts] = {}
    by_device: dict[str, FunnelCounts] = {}
    total = FunnelCounts()
    for at, kind, channel, device, n in events:
        key = (at.astimezone(zone).date(), channel, device)
        for counts in (rows.setdefault(key, FunnelCounts()),
                       by_device.setdefault(device, FunnelCounts()), total):
            counts.events[kind] += n
    ordered = {d: by_device[d] for d in sorted(
        by_device, key=lambda d: DEVICES.index(d) if d in DEVICES else 99)}
    tried: Any = await s.execute(
        select(TryReservation.status, func.count())
        .where(TryReservation.created_at >= start, TryReservation.created_at < end)
        .group_by(TryReservation.status))
    web_to_store = dict.fromkeys(("active", "sold", "released", "expired"), 0)
    for status, n in tried:
        web_to_store[str(status)] = int(n)
    return FunnelReport(period, rows, ordered, total, web_to_store)
