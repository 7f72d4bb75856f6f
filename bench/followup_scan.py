"""The follow-up scheduler's scan of recent purchases (`followups.schedule.due_orders`,
run by the job every minute in every process) with many orders: migration 0027's index
ix_orders_status_collected, and the same scan with it dropped (as before 0027).

A throwaway database is created and migrated (PostgreSQL; `--sqlite PATH` for SQLite)
and gets `--orders` orders spread over two years, every fifth a handed-over click &
collect pickup, then ANALYZE. Prints the best of `--calls` runs of the scan (ms) with
and without the index as JSON and writes bench/results/followup_scan.json.

    python -m bench.followup_scan [--orders 300000] [--calls 7] \\
        [--admin postgresql://postgres@127.0.0.1:5432/postgres | --sqlite /tmp/scan.db]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert

from bench.common import write_result
from saumaton.core.clock import utcnow
from saumaton.customers.models import Customer
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.followups.schedule import due_orders
from saumaton.locations.models import Channel
from saumaton.orders.models import Order

BATCH = 20_000


async def populate(db: Database, orders: int, now: datetime) -> None:
    async with db.uow() as uow:
        uow.session.add(Channel(id=1, code="web", kind="webshop", name="Verkkokauppa"))
        uow.session.add(Customer(id=1, first_name="Anna"))
        await uow.commit()
    minutes = 2 * 365 * 24 * 60 // orders
    for start in range(0, orders, BATCH):
        rows: list[dict[str, Any]] = []
        for i in range(start, min(orders, start + BATCH)):
            at = now - timedelta(minutes=minutes * (orders - i))
            pickup = i % 5 == 0
            rows.append({"channel_id": 1, "customer_id": 1,
                         "status": "collected" if pickup else "completed",
                         "delivery_method": "pickup" if pickup else "home",
                         "created_at": at,
                         "collected_at": at + timedelta(days=1) if pickup else None,
                         "subtotal_cents": 1000, "discount_cents": 0, "total_cents": 1000,
                         "vat_cents": 200, "paid_cents": 1000})
        async with db.uow() as uow:
            await uow.session.execute(insert(Order), rows)
            await uow.commit()
    await sql(db, "ANALYZE")


async def sql(db: Database, statement: str) -> None:
    async with db.write_engine.connect() as conn:
        await conn.exec_driver_sql(statement)
        await conn.commit()


async def best_ms(db: Database, now: datetime, calls: int) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(calls):
        async with db.reader() as s:
            t = time.perf_counter()
            found = len(await due_orders(s, now))
            best = min(best, time.perf_counter() - t)
    return round(best * 1000, 2), found


async def run(url: str, orders: int, calls: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    now = utcnow()
    try:
        await populate(db, orders, now)
        await best_ms(db, now, 2)  # warm up: pool, prepared plans
        with_ms, found = await best_ms(db, now, calls)
        await sql(db, "DROP INDEX ix_orders_status_collected")
        await sql(db, "ANALYZE orders")
        without_ms, _ = await best_ms(db, now, calls)
    finally:
        await db.dispose()
    return {"orders": orders, "due": found, "calls": calls, "with_index_ms": with_ms,
            "without_index_ms": without_ms}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--sqlite", default="", help="a path: run on SQLite there instead")
    ap.add_argument("--orders", type=int, default=300_000)
    ap.add_argument("--calls", type=int, default=7)
    args = ap.parse_args()
    if args.sqlite:
        path = Path(args.sqlite)
        if await asyncio.to_thread(path.exists):
            raise SystemExit(f"{path} exists: give a new path")
        try:
            result = await run(f"sqlite+aiosqlite:///{path}", args.orders, args.calls)
        finally:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                await asyncio.to_thread(p.unlink, missing_ok=True)
        result["database"] = "sqlite"
    else:
        name = f"saumaton_bench_fs_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(args.admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        try:
            result = await run(args.admin.rsplit("/", 1)[0] + "/" + name, args.orders,
                               args.calls)
        finally:
            conn = await asyncpg.connect(args.admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
        result["database"] = "postgresql"
    write_result("followup_scan", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
