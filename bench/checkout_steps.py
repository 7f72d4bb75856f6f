"""CPU time and SQL statements of each step of one web checkout, in-process.

The app runs inside this process (httpx.ASGITransport, its own mounted Paytrail
simulator), so the CPU measured is the app's alone; statements are counted with
a SQLAlchemy event on the engine. Needs a database with the demo shop loaded and
stock at the location that ships web orders:

    python -m bench.checkout_steps --dsn postgresql://postgres@127.0.0.1:5432/DB \\
        [--slug kaunis-iho-silk-foundation] [--variant 1] [--rounds 12] [--warmup 2]

When the PostgreSQL server runs on this machine (readable /proc), each step's
PostgreSQL CPU is printed too: the CPU of every backend of the database
(/proc/PID/schedstat, the pids from pg_stat_activity), before and after the step;
work a step leaves to a background job counts to the step during which it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.inventory.services import receive
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.web.app import create_app

BASE = "http://shop.bench"


ROUND_TRIPS = frozenset({"query", "prepare", "bind_execute", "bind_execute_many", "bind",
                         "execute", "close_statement", "copy_in", "copy_out"})


class _CountingProtocol:
    """Stands in for an asyncpg connection's protocol and counts the calls that are a
    round trip to PostgreSQL."""

    def __init__(self, inner: Any, counts: dict[str, int], current: list[str]) -> None:
        self._inner = inner
        self._counts = counts
        self._current = current

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in ROUND_TRIPS:
            def counted(*a: Any, **kw: Any) -> Any:
                self._counts[self._current[0]] += 1
                return attr(*a, **kw)
            return counted
        return attr


def _backend_ns(pids: list[int]) -> dict[int, int]:
    """Nanoseconds on CPU of each of these PostgreSQL backends (0 if gone)."""
    out: dict[int, int] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                out[pid] = int(f.read().split(maxsplit=1)[0])
        except (OSError, ValueError):
            out[pid] = 0
    return out


def _counting(counts: dict[str, int], current: list[str]) -> Any:
    # On every checkout from the pool, not only on connect: connections the app opened
    # before the listener was added (at start-up) are handed out too, and then the
    # count would miss whole requests.
    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        conn = dbapi_connection.driver_connection
        if hasattr(conn, "_protocol") and not isinstance(conn._protocol, _CountingProtocol):
            conn._protocol = _CountingProtocol(conn._protocol, counts, current)
    return on_checkout


async def run(args: argparse.Namespace) -> None:
    settings = Settings(database_url=args.dsn, var_dir=tempfile.mkdtemp(), public_url=BASE,
                        secret_key="bench-secret-key-0123456789")
    app = create_app(settings)
    counts: dict[str, int] = defaultdict(int)
    current = ["-"]
    times: dict[str, list[float]] = defaultdict(list)
    pg_times: dict[str, list[float]] = defaultdict(list)
    pg_local = sys.platform.startswith("linux")
    async with app.router.lifespan_context(app):
        # A round trip is a call into asyncpg's protocol (a simple query, a prepare, a
        # bind+execute, ...): each one sends its messages and waits for the answer.
        # Counted on every pooled connection, whatever sent it (SQLAlchemy, a raw
        # prepared statement, BEGIN/COMMIT, a background job).
        # (The read engine shares the write engine's pool: one listener sees both.)
        event.listen(app.state.db.write_engine.sync_engine, "checkout",
                     _counting(counts, current))

        transport = httpx.ASGITransport(app=app)
        sim = BASE + "/paytrail-sim"
        app.state.paytrail = PaytrailClient(PaytrailConfig("375917", "SAIPPUAKAUPPIAS", sim),
                                            httpx.AsyncClient(transport=transport, base_url=sim))
        async with app.state.db.uow() as uow:
            loc = (await uow.fetchrow(
                "SELECT id FROM locations WHERE ships_web_orders ORDER BY web_priority, id"))[0]
            await receive(uow, SYSTEM, args.variant, loc, 1_000_000, reference="bench steps")
            await uow.commit()
        async def backends() -> list[int]:
            # A connection of its own (not pooled): its own CPU is not counted.
            conn = await asyncpg.connect(args.dsn.replace("+asyncpg", ""))
            try:
                rows = await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()")
            finally:
                await conn.close()
            return [r[0] for r in rows]
        pids: list[int] = await backends() if pg_local else []
        last: dict[str, int] = {}
        for i in range(args.rounds):
            counts.clear()
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as h:
                async def step(name: str, request: Any) -> httpx.Response:
                    current[0] = name
                    ns0 = _backend_ns(pids)
                    t = time.process_time()
                    r: httpx.Response = await request
                    times[name].append((time.process_time() - t) * 1000)
                    ns1 = _backend_ns(pids)
                    pg_times[name].append(sum(ns1[p] - ns0[p] for p in pids if ns1[p]) / 1e6)
                    return r

                r = await step("1 product page", h.get(f"/shop/p/{args.slug}"))
                m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
                assert m, "no CSRF token on the product page"
                token = m.group(1)
                await step("2 add to cart", h.post("/shop/cart/add", data={
                    "csrf_token": token, "variant_id": str(args.variant), "quantity": "1"}))
                r = await step("3 checkout form", h.get("/shop/checkout"))
                m = re.search(r'name="key" value="([^"]+)"', r.text)
                assert m, r.text[:300]
                r = await step("4 place order + payment", h.post("/shop/checkout", data={
                    "csrf_token": token, "key": m.group(1),
                    "email": f"steps-{time.time_ns()}-{i}@example.fi", "first_name": "Bench",
                    "last_name": "Shopper", "phone": "0401234567", "delivery": "home",
                    "address_name": "Bench Shopper", "street": "Katu 1", "postcode": "00100",
                    "city": "Helsinki"}))
                assert r.status_code == 303, r.text[:300]
                r = await step("5 simulator (not ours)", h.post(
                    r.headers["location"] + "/success?callbacks=0", data={"provider": "nordea"}))
                back = r.headers["location"]
                await step("6 callback", h.get(back.replace("/return/", "/callback/")))
                r = await step("7 return", h.get(back))
                if r.status_code != 200:  # an app that redirects to the status page
                    assert r.status_code == 303, r.status_code
                    r = await step("8 status page", h.get(r.headers["location"]))
                assert 'data-status="paid"' in r.text
            last = dict(counts)
            if pg_local:  # connections the pool opened during the round
                pids[:] = await backends()
    total_ms = total_n = total_pg = 0.0
    print(f"{'step':28s} {'CPU ms (median)':>16s} {'round trips':>11s} {'PG CPU ms':>10s}")
    for name in sorted(times):
        ms = statistics.median(times[name][args.warmup:] or times[name])
        # The mean, not the median: PostgreSQL's share of a step is small and bursty
        # (a background job, a checkpoint); the first rounds warm the backends' caches.
        pg = statistics.fmean(pg_times[name][args.warmup:] or pg_times[name])
        n = last.get(name, 0)
        if not name.startswith("5 "):
            total_ms += ms
            total_n += n
        total_pg += pg
        print(f"{name:28s} {ms:16.1f} {n:11d} {pg:10.2f}")
    print(f"{'whole checkout (ours)':28s} {total_ms:16.1f} {int(total_n):11d} {total_pg:10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--slug", default="kaunis-iho-silk-foundation")
    ap.add_argument("--variant", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2, help="first rounds left out of the figures")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
