"""The reports job: keeps the daily sales summary (`sales_daily`) and the customers'
channel journeys (`customer_journeys`, reports/journeys.py) up to date.

Every run rebuilds the last `RECENT_DAYS` business days and today, and up to
`BACKFILL_DAYS` older days the summary does not hold complete (never built, or taken
out by a late change: see orders.writer.forget_summary_days); `refresh(db, since=…)`
rebuilds any range (the CLI: `saumaton report refresh --since DATE`). Each day is one transaction:
DELETE its rows, INSERT … SELECT from the order book, mark it built. On PostgreSQL a
transaction-level advisory lock lets one app process rebuild at a time (the others skip
the run); SQLite has one writer anyway.

More summaries join by adding a step: to `STEPS` (an async function of the unit of
work, a day and the time zone, run for every day rebuilt) or to `RUN_STEPS` (an async
function of the unit of work, run once per job run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, text

from saumaton.core.clock import utcnow
from saumaton.db.uow import Database, UnitOfWork
from saumaton.reports.journeys import refresh_journeys
from saumaton.reports.models import SalesDailyDay
from saumaton.reports.period import Period
from saumaton.reports.sales import first_order_day
from saumaton.reports.summary import rebuild_day

log = logging.getLogger(__name__)

RECENT_DAYS = 7
# Older days a run rebuilds at most when the summary lacks them.
BACKFILL_DAYS = 31
# pg_try_advisory_xact_lock key: "sales" in ASCII.
LOCK_KEY = 0x73616C6573

Step = Callable[[UnitOfWork, date, str], Awaitable[None]]
RunStep = Callable[[UnitOfWork], Awaitable[None]]


async def sales_step(uow: UnitOfWork, day: date, tz: str) -> None:
    await rebuild_day(uow.session, day, tz)
    await uow.session.execute(delete(SalesDailyDay).where(SalesDailyDay.day == day))
    await uow.session.execute(insert(SalesDailyDay).values(day=day, refreshed_at=utcnow()))


# What one run rebuilds for each day, in order.
STEPS: tuple[Step, ...] = (sales_step,)


async def journeys_step(uow: UnitOfWork) -> None:
    """The customers whose purchases changed since the last run (all of them the first
    time): their journeys and the summed figures the journey page reads."""
    await refresh_journeys(uow)


# What one run does once, after the days (each in its own transaction): summaries that
# are not per day.
RUN_STEPS: tuple[RunStep, ...] = (journeys_step,)


async def _locked(uow: UnitOfWork) -> bool:
    if not uow.db.is_postgres:
        return True
    got = await uow.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                   {"k": LOCK_KEY})
    return bool(got)


async def refresh_days(db: Database, days: Sequence[date], tz: str,
                       steps: Sequence[Step] = STEPS,
                       progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild these days (one transaction each); returns how many were rebuilt (0 when
    another process holds the lock)."""
    done = 0
    for day in days:
        async with db.uow() as uow:
            if not await _locked(uow):
                log.info("another process is refreshing the sales summary")
                return done
            for step in steps:
                await step(uow, day, tz)
            await uow.commit()
        done += 1
        if progress:
            progress(done, len(days))
    return done


async def first_sale_day(db: Database, tz: str) -> date | None:
    async with db.reader() as s:
        return await first_order_day(s, tz)


async def refresh(db: Database, tz: str, *, since: date | None = None,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild from `since` (default: the first sale's day) through yesterday and today
    (today is read live by the reports; building it costs little and keeps it warm)."""
    today = datetime.now(ZoneInfo(tz)).date()
    first = since or await first_sale_day(db, tz) or today
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    return await refresh_days(db, days, tz, progress=progress)


async def stale_days(db: Database, tz: str, limit: int = BACKFILL_DAYS) -> list[date]:
    """Days from the first order to yesterday that the summary does not hold complete
    (never built, built before they ended, or taken out by a late change), oldest
    first, at most `limit`."""
    today = datetime.now(ZoneInfo(tz)).date()
    first = await first_sale_day(db, tz)
    if first is None:
        return []
    async with db.reader() as s:
        built = {d: at for d, at in (await s.execute(
            select(SalesDailyDay.day, SalesDailyDay.refreshed_at)
            .where(SalesDailyDay.day >= first))).all()}
    out = []
    for i in range((today - first).days):
        d = first + timedelta(days=i)
        at = built.get(d)
        if at is None or at < Period.day(d).bounds(tz)[1]:
            out.append(d)
            if len(out) >= limit:
                break
    return out


async def run_once(db: Database, tz: str) -> int:
    """One run: the last RECENT_DAYS days and today, then up to BACKFILL_DAYS older days
    the summary lacks (a new installation fills its history this way, a month a run)."""
    today = datetime.now(ZoneInfo(tz)).date()
    recent = [today - timedelta(days=i) for i in range(RECENT_DAYS, -1, -1)]
    older = [d for d in await stale_days(db, tz) if d not in set(recent)]
    done = await refresh_days(db, [*older, *recent], tz)
    for step in RUN_STEPS:
        async with db.uow() as uow:
            if not await _locked(uow):
                break
            await step(uow)
            await uow.commit()
    return done


async def run_reports_job(db: Database, stop: asyncio.Event, interval_seconds: float,
                          tz: str = "Europe/Helsinki") -> None:
    """The background job every app process runs: the recent days every interval."""
    while not stop.is_set():
        try:
            await run_once(db, tz)
        except Exception:  # retried on the next tick
            log.exception("refreshing the sales summary failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_seconds):
                await stop.wait()
