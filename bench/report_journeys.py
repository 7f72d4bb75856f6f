"""Channel journeys at scale: the full refresh of the summary tables, an incremental
refresh, and the journey matrix the page reads (best and median of several runs).

On a copy of the scaled data set (never on the template itself):

    createdb -h 127.0.0.1 -U postgres -T scale_base journeys_bench
    SAUMATON_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/journeys_bench \\
        python -m saumaton db upgrade
    python -m bench.report_journeys --dsn postgresql://postgres@127.0.0.1:5432/journeys_bench

--skip-full reuses tables a previous run filled.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from sqlalchemy import func, select, text

from saumaton.core.actor import SYSTEM
from saumaton.customers.models import Customer
from saumaton.db.uow import Database
from saumaton.orders.models import Order, OrderLine
from saumaton.reports.journeys import journey_report, refresh_journeys


async def run(args: argparse.Namespace) -> None:
    db = Database(args.dsn)
    try:
        async with db.reader() as s:
            customers = await s.scalar(select(func.count()).select_from(Customer))
            orders = await s.scalar(select(func.count()).select_from(Order))
            lines = await s.scalar(select(func.count()).select_from(OrderLine))
        print(f"data: {customers:,} customers, {orders:,} orders, {lines:,} order lines")
        if not args.skip_full:
            t0 = time.perf_counter()
            async with db.uow() as uow:
                n = await refresh_journeys(uow, full=True)
                await uow.commit()
            print(f"full refresh: {n:,} customers with a purchase in "
                  f"{time.perf_counter() - t0:.1f} s")
            async with db.write_engine.connect() as conn:  # fresh statistics, visibility map
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE customer_journeys"))
                await conn.execute(text("VACUUM ANALYZE customer_channels"))
        t0 = time.perf_counter()
        async with db.uow() as uow:
            n = await refresh_journeys(uow)
            await uow.commit()
        print(f"incremental refresh (changes since the watermark): {n:,} customers in "
              f"{time.perf_counter() - t0:.2f} s")
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            async with db.reader() as s:
                report = await journey_report(s, SYSTEM)
            times.append(time.perf_counter() - t0)
        print(f"journey matrix and figures ({report.customers:,} customers, "
              f"{len(report.rows)} first channels, {len(report.journeys)} journeys): best "
              f"{min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms "
              f"of {args.runs}")
        print(f"omnichannel (kinds): {report.omni_kinds.customers:,} customers, "
              f"{(report.omni_kinds.customer_share or 0) * 100:.1f} % of customers, "
              f"{(report.omni_kinds.revenue_share or 0) * 100:.1f} % of revenue")
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-full", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
