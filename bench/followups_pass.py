"""CPU of the follow-ups job per purchase that leads to nothing (a guest's web order).

Every paid order is looked at once by the follow-ups job (saumaton/followups): most,
a guest's web order among them, can lead to nothing (no marketing consent, no refill
reminder pending). This measures the job's CPU per such order, in this process: it
takes the benchmark's own guest orders of the last day that were claimed with nothing
scheduled (`followup_orders.scheduled = 0`, e-mail `...@example.fi`), deletes their
claims so that they are due again, runs one warm-up pass, then PASSES passes of
`run_once` (up to 100 orders each) and divides the CPU (`time.process_time`) by the
orders claimed. ROUNDS rounds; the least is the figure (the machine may be shared).

    python -m bench.followups_pass --dsn postgresql://postgres@127.0.0.1:5432/DB \\
        [--rounds 3] [--passes 6]

The database needs such orders: run bench/served.py's flow on it first (or
bench/web_checkout.py). Only their claims are touched, and they are re-made by the
passes. With SAUMATON_SRC=another tree, that tree's package is measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import asyncpg
import uvloop

UNCLAIM = """
    DELETE FROM followup_orders f USING orders o
    WHERE o.id = f.order_id AND f.scheduled = 0 AND o.email LIKE '%@example.fi'
      AND o.created_at > now() - interval '1 day'"""


async def claims(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM followup_orders"))
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from saumaton.config import Settings
    from saumaton.db.uow import Database
    from saumaton.followups.sender import run_once

    settings = Settings(database_url=args.dsn)
    rounds: list[tuple[int, float]] = []
    for _ in range(args.rounds):
        conn = await asyncpg.connect(args.dsn)
        try:
            await conn.execute(UNCLAIM)
        finally:
            await conn.close()
        db = Database(args.dsn)
        try:
            await run_once(db, settings)  # warm-up: the first 100
            orders, cpu = 0, 0.0
            for _ in range(args.passes):
                before = await claims(args.dsn)
                t0 = time.process_time()
                await run_once(db, settings)
                cpu += time.process_time() - t0
                orders += await claims(args.dsn) - before
        finally:
            await db.dispose()
        rounds.append((orders, 1000 * cpu / orders if orders else float("nan")))
    return {"rounds": [{"orders": n, "cpu_ms_per_order": round(ms, 3)} for n, ms in rounds],
            "cpu_ms_per_order": round(min(ms for _, ms in rounds), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=6)
    args = ap.parse_args()
    src = os.environ.get("SAUMATON_SRC")
    if src:
        sys.path.insert(0, src)
    res = uvloop.run(run(args))
    print(f"follow-ups job, CPU ms per purchase that leads to nothing: "
          f"{res['cpu_ms_per_order']} (least of {res['rounds']})")


if __name__ == "__main__":
    main()
