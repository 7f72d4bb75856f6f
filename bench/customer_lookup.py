"""Benchmark 7 (issue 5): finding a customer in a big register, and their card.

Run against a database made with `saumaton demo-data --scale` (1 M customers, 5 M
order lines) and a running server. Customers are looked up through the API
(`GET /api/v1/customers/lookup?q=`; a quarter of them from one client alone, as one
till looks a customer up, then all from 16 clients at once) by e-mail, by phone typed
the Finnish way ("040 123 4567") and by loyalty card number (1000 cards are issued first, if the
database has none), 2000 lookups in all; then the till's customer card
(`customers.card.customer_card`: identities, purchase count and lifetime value over
the 5 M order lines, recent purchases, loyalty) is built in-process for 200 random
customers who have orders; then the till's search by name in-process (`--names`
random customers, three kinds of query). Prints p50/p95/p99 per kind as JSON and writes
bench/results/customer_lookup.json.

    python -m bench.customer_lookup --url http://127.0.0.1:PORT --dsn postgresql://... \\
        --token sau_... [--lookups 2000] [--clients 16] [--cards 200] [--names 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any
from urllib.parse import quote, urlsplit

from bench.common import Connection, latency_summary, pg_fetch, write_result


def national(phone: str) -> str:
    """+358401234567 -> '040 123 4567' (as a cashier types it)."""
    rest = "0" + phone.removeprefix("+358")
    return f"{rest[:3]} {rest[3:6]} {rest[6:]}"


async def ensure_cards(dsn: str, n: int) -> None:
    [row] = await pg_fetch(dsn, "SELECT count(*) AS c FROM customer_identities "
                                "WHERE kind = 'card'")
    if row["c"] >= n:
        return
    await pg_fetch(dsn, """
        INSERT INTO customer_identities (customer_id, kind, value)
        SELECT id, 'card', '8' || lpad(id::text, 11, '0')
        FROM customers ORDER BY random() LIMIT $1
        ON CONFLICT DO NOTHING""", n)


async def sample(dsn: str, kind: str, n: int) -> list[tuple[str, str]]:
    # Cards are few: pick them from all; e-mails and phones from a sample of pages.
    rows = await pg_fetch(dsn, """
        SELECT value FROM customer_identities WHERE kind = 'card'
        ORDER BY random() LIMIT $1""", n) if kind == "card" else await pg_fetch(dsn, """
        SELECT value FROM customer_identities TABLESAMPLE SYSTEM (5)
        WHERE kind = $1 LIMIT $2""", kind, n)
    values = [str(r["value"]) for r in rows]
    if kind == "phone":
        values = [national(v) for v in values]
    return [(kind, v) for v in values]


async def run_lookups(url: str, token: str, work: list[tuple[str, str]], clients: int
                      ) -> dict[str, Any]:
    u = urlsplit(url)
    queue = list(work)
    random.Random(7).shuffle(queue)
    times: dict[str, list[float]] = {"email": [], "phone": [], "card": []}
    statuses: dict[int, int] = {}

    async def client() -> None:
        conn = Connection(u.hostname or "127.0.0.1", u.port or 80)
        await conn.open()
        try:
            while queue:
                kind, value = queue.pop()
                t0 = time.perf_counter()
                r = await conn.request("GET", f"/api/v1/customers/lookup?q={quote(value)}",
                                       {"Authorization": f"Bearer {token}"})
                times[kind].append((time.perf_counter() - t0) * 1000)
                statuses[r.status] = statuses.get(r.status, 0) + 1
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"lookups": len(work), "per_s": round(len(work) / wall, 1), "statuses": statuses,
            "latency_ms": {k: latency_summary(v) for k, v in times.items()},
            "all_ms": latency_summary([x for v in times.values() for x in v])}


async def run_cards(dsn: str, n: int) -> dict[str, Any]:
    from saumaton.core.actor import SYSTEM
    from saumaton.customers.card import customer_card
    from saumaton.db.uow import Database

    rows = await pg_fetch(dsn, """
        SELECT DISTINCT customer_id FROM orders TABLESAMPLE SYSTEM (2)
        WHERE customer_id IS NOT NULL LIMIT $1""", n)
    db = Database(dsn, pool_size=2)
    times: list[float] = []
    try:
        for r in rows:
            t0 = time.perf_counter()
            async with db.reader() as s:
                await customer_card(s, SYSTEM, int(r["customer_id"]))
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        await db.write_engine.dispose()
        await db.read_engine.dispose()
    return {"cards": len(times), "latency_ms": latency_summary(times)}


async def run_names(dsn: str, n: int) -> dict[str, Any]:
    """The till's search by name (`customers.card.find_customers`), in-process, for
    `n` random customers: "first last-prefix" ("anna vir"), a last-name prefix of four
    letters ("virt") and two letters only ("vi", the shortest allowed)."""
    from saumaton.core.actor import SYSTEM
    from saumaton.customers.card import find_customers
    from saumaton.db.uow import Database

    rows = await pg_fetch(dsn, """
        SELECT first_name, last_name FROM customers TABLESAMPLE SYSTEM (1)
        WHERE erased_at IS NULL AND merged_into_id IS NULL LIMIT $1""", n)
    queries = {
        "first_and_last_prefix": [f"{r['first_name']} {r['last_name'][:3]}" for r in rows],
        "last_prefix_4": [str(r["last_name"])[:4] for r in rows],
        "prefix_2": [str(r["last_name"])[:2] for r in rows],
    }
    db = Database(dsn, pool_size=2)
    out: dict[str, Any] = {}
    try:
        for kind, qs in queries.items():
            times: list[float] = []
            for q in qs:
                t0 = time.perf_counter()
                async with db.reader() as s:
                    await find_customers(s, SYSTEM, q)
                times.append((time.perf_counter() - t0) * 1000)
            out[kind] = latency_summary(times)
    finally:
        await db.write_engine.dispose()
        await db.read_engine.dispose()
    return out


async def run(args: argparse.Namespace) -> int:
    [size] = await pg_fetch(args.dsn, """SELECT (SELECT count(*) FROM customers) AS customers,
        (SELECT count(*) FROM orders) AS orders,
        (SELECT count(*) FROM order_lines) AS order_lines""")
    await ensure_cards(args.dsn, 1000)
    third = args.lookups // 3
    work = (await sample(args.dsn, "email", third) + await sample(args.dsn, "phone", third)
            + await sample(args.dsn, "card", args.lookups - 2 * third))
    alone = await run_lookups(args.url, args.token, work[: len(work) // 4], 1)
    lookups = await run_lookups(args.url, args.token, work, args.clients)
    cards = await run_cards(args.dsn, args.cards)
    names = await run_names(args.dsn, args.names)
    result = {"database": dict(size), "clients": args.clients, "lookup_one_client": alone,
              "lookup": lookups, "card": cards, "name_search": names,
              "target": "lookup p99 <= 20 ms"}
    path = write_result("customer_lookup", result)
    print(f"{dict(size)}")
    print(f"one client: all p50 {alone['all_ms'].get('p50')} p95 {alone['all_ms'].get('p95')}"
          f" p99 {alone['all_ms'].get('p99')} ms")
    every = lookups["all_ms"]
    print(f"{args.clients} clients: {lookups['per_s']}/s, all p50 {every.get('p50')} p95 "
          f"{every.get('p95')} p99 {every.get('p99')} ms; "
          f"statuses {lookups['statuses']}")
    for k, v in lookups["latency_ms"].items():
        print(f"  {k}: p50 {v.get('p50')} p99 {v.get('p99')} ms (n {v.get('n')})")
    c = cards["latency_ms"]
    print(f"customer card (in-process): p50 {c.get('p50')} p95 {c.get('p95')} p99 "
          f"{c.get('p99')} ms")
    for k, v in names.items():
        print(f"name search {k}: p50 {v.get('p50')} p95 {v.get('p95')} p99 {v.get('p99')} ms")
    print(path)
    return 0 if set(lookups["statuses"]) | set(alone["statuses"]) == {200} else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--lookups", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--cards", type=int, default=200)
    p.add_argument("--names", type=int, default=200)
    raise SystemExit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
