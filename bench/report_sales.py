"""Time of the monthly sales report (per channel, with the period before and a year
earlier) on a scaled database, from the daily summary and live from the order book.

    SAUMATON_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB saumaton db upgrade
    python -m bench.report_sales --dsn postgresql://postgres@127.0.0.1:5432/DB \\
        [--month 2026-10] [--refresh] [--repeat 5]

--refresh rebuilds the whole summary first (what `saumaton report refresh` does) and
times it. Without it the summary must be built already.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.orders.models import OrderLine
from saumaton.reports.jobs import refresh, run_once
from saumaton.reports.period import Grain, Period
from saumaton.reports.sales import View, sales_report
from saumaton.reports.sales_detail import returns_by_reason, staff_sales, top_items
from saumaton.reports.summary import live_day

TZ = "Europe/Helsinki"


async def timed(label: str, repeat: int, call: Callable[[], Awaitable[Any]]) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        await call()
        runs.append(time.perf_counter() - t)
    med = statistics.median(runs)
    print(f"{label:<58} median {med * 1000:8.1f} ms  max {max(runs) * 1000:8.1f} ms "
          f"({repeat} runs)")
    return med


async def run(url: str) -> list[tuple[str, float]]:
    """What `python -m bench.reports` calls on its copy of scale_base: the whole summary
    built first, then last month's figures (medians of 5); the page figures are
    returned (each against the 1 s target), the rebuild and the all-live read printed."""
    return await measure(url, month_text="", refresh_first=True, repeat=5)


async def measure(dsn: str, *, month_text: str, refresh_first: bool,
                  repeat: int) -> list[tuple[str, float]]:
    db = Database(dsn)
    figures: list[tuple[str, float]] = []
    today = datetime.now(ZoneInfo(TZ)).date()
    if month_text:
        y, m = (int(p) for p in month_text.split("-"))
        month = Period.month(y, m)
    else:
        last = today.replace(day=1) - timedelta(days=1)
        month = Period.month(last.year, last.month)
    async with db.reader() as s:
        lines = await s.scalar(select(func.count()).select_from(OrderLine))
    print(f"order lines: {lines:,}; month {month.first} – {month.last}")
    if refresh_first:
        t = time.perf_counter()
        n = await refresh(db, TZ, progress=lambda done, total: print(
            f"\r  refresh {done}/{total} days", end="", flush=True) if done % 50 == 0 else None)
        print(f"\nfull refresh: {n} days in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        await run_once(db, TZ)
        print(f"job run (last 7 days + today): {time.perf_counter() - t:.2f} s")

    async def report(view: View = View.SOLD, compare: bool = True, source: str = "auto",
                     period: Period = month, grain: Grain = Grain.DAY) -> None:
        async with db.reader() as s:
            r = await sales_report(s, period, tz=TZ, view=view, compare=compare,
                                   source=source, grain=grain)  # type: ignore[arg-type]
        if r.live_days and source == "auto" and period is month:
            print(f"  note: {r.live_days} days read live")

    r = repeat

    async def figure(label: str, call: Callable[[], Awaitable[Any]]) -> None:
        figures.append((label, await timed(label, r, call)))

    await figure("monthly channel report (summary), no comparison",
                 lambda: report(compare=False))
    await figure("monthly channel report + period before + year earlier", lambda: report())
    await figure("the same, fulfilled view", lambda: report(view=View.FULFILLED))
    this_month = Period(today.replace(day=1), today)
    await figure("this month so far (today live) + comparisons",
                 lambda: report(period=this_month))
    await figure("a year by month + comparisons", lambda: report(
        period=Period(month.last - timedelta(days=364), month.last), grain=Grain.MONTH))

    async def today_live() -> None:
        async with db.reader() as s:
            await live_day(s, today, TZ)
    await figure("one day live from the order book (today)", today_live)

    async def detail(name: str) -> None:
        async with db.reader() as s:
            if name == "products":
                await top_items(s, month, tz=TZ)
            elif name == "categories":
                await top_items(s, month, tz=TZ, by="category")
            elif name == "staff":
                await staff_sales(s, month, tz=TZ)
            else:
                await returns_by_reason(s, month, tz=TZ)
    for name, how in (("products", "summary"), ("categories", "summary"), ("staff", "live"),
                      ("returns", "live")):
        await figure(f"month's {name} ({how})", lambda name=name: detail(name))  # type: ignore[misc]
    # For comparison only (what the summary saves), not a page's figure.
    await timed("monthly channel report, all live (no summary) + comparisons", 1,
                lambda: report(source="live"))
    await db.dispose()
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    p.add_argument("--dsn", required=True)
    p.add_argument("--month", default="", help="YYYY-MM (default: last month)")
    p.add_argument("--refresh", action="store_true")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    asyncio.run(measure(args.dsn, month_text=args.month, refresh_first=args.refresh,
                        repeat=args.repeat))


if __name__ == "__main__":
    main()

