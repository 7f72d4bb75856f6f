"""The accountant's daily journal at scale: one business day and one week, every
location, read as the page and `saumaton report journal` read it (no summary: the
journal reads the order book, payments, refunds, returns and the gift card ledger).

`run(url)` is what `python -m bench.reports` calls on its copy of `scale_base`; it
returns the best of several runs per figure (seconds). By hand, on a copy:

    createdb -h 127.0.0.1 -U postgres -T scale_base journal_bench
    SAUMATON_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/journal_bench \\
        python -m saumaton db upgrade
    python -m bench.report_journal --dsn postgresql://postgres@127.0.0.1:5432/journal_bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.orders.models import Order
from saumaton.reports.journal import build_journal, journal_period

RUNS = 3
TZ = "Europe/Helsinki"


async def _best(db: Database, first: date, last: date) -> tuple[float, int]:
    times, lines = [], 0
    for _ in range(RUNS):
        t0 = time.perf_counter()
        async with db.reader() as s:
            journal = await build_journal(s, journal_period(first, last), TZ)
        times.append(time.perf_counter() - t0)
        lines = len(journal.lines)
    return min(times), lines


async def run(url: str) -> list[tuple[str, float]]:
    db = Database(url)
    try:
        async with db.reader() as s:
            last_sale = await s.scalar(select(func.max(Order.created_at)))
        if last_sale is None:
            raise SystemExit("no orders: load the scaled data first")
        # The last full day of the data set, and the week that ends with it.
        day = last_sale.astimezone(ZoneInfo(TZ)).date() - timedelta(days=1)
        figures = []
        for name, first in (("journal, one day, every location", day),
                            ("journal, one week, every location", day - timedelta(days=6))):
            seconds, lines = await _best(db, first, day)
            print(f"{name}: {seconds * 1000:.0f} ms ({lines} lines, ending {day})",
                  flush=True)
            figures.append((name, seconds))
        # The journal is a day's export: the week is printed for scale, not held to 1 s.
        return figures[:1]
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("BENCH_DSN", ""),
                        help="the database (a copy of scale_base, upgraded)")
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit("--dsn (or BENCH_DSN) is required")
    asyncio.run(run(args.dsn))


if __name__ == "__main__":
    main()
