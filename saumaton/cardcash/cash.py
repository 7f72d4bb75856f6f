"""Cash per till per day, from the closed drawer sessions (their Z reports): what the
drawer should have held, what was counted, the difference, who opened and closed it and
the Z number; with the totals per store per day and per store per month.

A session's business day is the local day (Settings.timezone) it was opened on: the
day whose sales it took, also when it is closed after midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.locations.models import Location
from saumaton.reports.period import Period
from saumaton.tills.models import DrawerSession, Register


@dataclass(frozen=True)
class TillDay:
    """One closed drawer session."""

    location_id: int
    store_code: str
    store_name: str
    register_name: str
    day: date
    session_id: int
    z_number: int
    opened_by: str
    opened_at: datetime
    closed_by: str
    closed_at: datetime | None
    expected_cents: int
    counted_cents: int | None
    difference_cents: int | None  # counted − expected: below zero, cash is missing

    @property
    def z_href(self) -> str:
        return f"/pos/{self.store_code}/reports/{self.z_number}"


@dataclass
class CashTotal:
    """The sessions of one store on one day (or in one month: `day` is its first day)."""

    location_id: int
    store_code: str
    store_name: str
    day: date
    sessions: int = 0
    expected_cents: int = 0
    counted_cents: int = 0
    difference_cents: int = 0
    uncounted: int = 0  # sessions closed without a count (none since counts are required)


async def till_days(s: AsyncSession, location_ids: Iterable[int], period: Period, *,
                    tz: str) -> list[TillDay]:
    """The closed sessions opened in `period` at these stores, by store, day, register."""
    ids = list(location_ids)
    if not ids:
        return []
    start, end = period.bounds(tz)
    zone = ZoneInfo(tz)
    rows = (await s.execute(
        select(DrawerSession, Register.name, Location.code, Location.name)
        .join(Register, Register.id == DrawerSession.register_id)
        .join(Location, Location.id == DrawerSession.location_id)
        .where(DrawerSession.location_id.in_(ids), DrawerSession.status == "closed",
               DrawerSession.z_number.is_not(None), DrawerSession.opened_at >= start,
               DrawerSession.opened_at < end)
        .order_by(Location.code, DrawerSession.opened_at, DrawerSession.id))).all()
    out = []
    for ds, register, code, name in rows:
        assert ds.z_number is not None
        expected = ds.expected_cents or 0
        counted = ds.counted_cents
        out.append(TillDay(
            ds.location_id, code, name, register, ds.opened_at.astimezone(zone).date(),
            ds.id, ds.z_number, ds.opened_by, ds.opened_at, ds.closed_by, ds.closed_at,
            expected, counted, None if counted is None else counted - expected))
    return out


def _total(rows: list[TillDay], key: tuple[int, date], first: TillDay) -> CashTotal:
    t = CashTotal(first.location_id, first.store_code, first.store_name, key[1])
    for r in rows:
        t.sessions += 1
        t.expected_cents += r.expected_cents
        if r.counted_cents is None or r.difference_cents is None:
            t.uncounted += 1
        else:
            t.counted_cents += r.counted_cents
            t.difference_cents += r.difference_cents
    return t


def totals(rows: list[TillDay], *, monthly: bool = False) -> list[CashTotal]:
    """Per store per day (or per month), in store and day order."""
    groups: dict[tuple[int, date], list[TillDay]] = {}
    for r in rows:
        day = r.day.replace(day=1) if monthly else r.day
        groups.setdefault((r.location_id, day), []).append(r)
    out = [_total(g, k, g[0]) for k, g in groups.items()]
    out.sort(key=lambda t: (t.store_code, t.day))
    return out
