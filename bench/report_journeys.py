"""Customer reports at scale: the full refresh of the journey summary tables (the
reports job's work, not a page), an incremental refresh, then what the pages read: the
journey matrix and figures, and a month of NPS, funnel and loyalty figures.

`run(url)` is what `python -m bench.reports` calls on its copy of `scale_base`; it
returns the page figures (seconds, best of several runs), each against the 1 s target,
and prints the refresh times. By hand, on a copy (never on the template itself):

    createdb -h 127.0.0.1 -U postgres -T scale_base journeys_bench
    SAUMATON_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/journeys_bench \\
        python -m saumaton db upgrade
    python -m bench.report_journeys --dsn postgresql://postgres@127.0.0.1:5432/journeys_bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy import func, select, text

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.customers.models import Customer
from saumaton.db.uow import Database
from saumaton.orders.models import Order, OrderLine
from saumaton.reports.funnel_report import funnel_report
from saumaton.reports.journeys import journey_report, refresh_journeys
from saumaton.reports.loyalty_report import loyalty_report
from saumaton.reports.nps_report import nps_report
from saumaton.reports.period import Grain, Period

RUNS = 5


async def _best(runs: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await call()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


async def run(url: str, *, runs: int = RUNS, skip_full: bool = False
              ) -> list[tuple[str, float]]:
    db = Database(url)
    settings = Settings(database_url=url, secret_key="bench-secret-key-0123456789")
    figures: list[tuple[str, float]] = []
    try:
        async with db.reader() as s:
            customers = await s.scalar(select(func.count()).select_from(Customer))
            orders = await s.scalar(select(func.count()).select_from(Order))
            lines = await s.scalar(select(func.count()).select_from(OrderLine))
            last = await s.scalar(select(func.max(Order.created_at)))
        print(f"data: {customers:,} customers, {orders:,} orders, {lines:,} order lines",
              flush=True)
        if not skip_full:
            t0 = time.perf_counter()
            async with db.uow() as uow:
                n = await refresh_journeys(uow, full=True)
                await uow.commit()
            print(f"full refresh: {n:,} customers with a purchase in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            async with db.write_engine.connect() as conn:  # statistics, visibility map
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE customer_journeys"))
                await conn.execute(text("VACUUM ANALYZE customer_channels"))
        t0 = time.perf_counter()
        async with db.uow() as uow:
            n = await refresh_journeys(uow)
            await uow.commit()
        print(f"incremental refresh (customers changed since the watermark): {n:,} customers "
              f"in {time.perf_counter() - t0:.2f} s", flush=True)

        async def journeys() -> Any:
            async with db.reader() as s:
                return await journey_report(s, SYSTEM)
        best, median, report = await _best(runs, journeys)
        print(f"journey matrix and figures ({report.customers:,} customers, "
              f"{len(report.rows)} first channels, {len(report.journeys)} journeys): "
              f"best {best * 1000:.0f} ms, median {median * 1000:.0f} ms of {runs}; "
              f"omnichannel {report.omni_kinds.customers:,} customers "
              f"({(report.omni_kinds.customer_share or 0) * 100:.1f} %)", flush=True)
        figures.append(("journey matrix and figures", best))
        end = (last.date() if last else date.today())
        month = Period.month(end.year, end.month)
        tz = settings.timezone
        for name, call in (
                ("NPS, a month by week", lambda s: nps_report(s, SYSTEM, month, Grain.WEEK, tz)),
                ("funnel, a month", lambda s: funnel_report(s, SYSTEM, month, tz)),
                ("loyalty, a month", lambda s: loyalty_report(s, SYSTEM, month, settings))):
            async def page(call: Callable[[Any], Awaitable[Any]] = call) -> Any:
                async with db.reader() as s:
                    return await call(s)
            best, median, _ = await _best(runs, page)
            print(f"{name} ({month.first}..{month.last}): best {best * 1000:.0f} ms, "
                  f"median {median * 1000:.0f} ms of {runs}", flush=True)
            figures.append((name, best))
    finally:
        await db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("BENCH_DSN"))
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--skip-full", action="store_true",
                        help="reuse the tables a previous run filled")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn (or BENCH_DSN) is required")
    asyncio.run(run(args.dsn, runs=args.runs, skip_full=args.skip_full))


if __name__ == "__main__":
    main()
