"""Benchmark 2: a flash sale. Exactly UNITS units are online (spread over the
locations that ship web orders) and BUYERS buyers each POST one web order for
one unit at the same moment. Exactly UNITS must get 201 and the rest 409
out_of_stock; the database must agree.

All buyers' connections are opened first; then every request is written in
one burst and the answers are timed from the moment the burst started.

    python -m bench.flash_sale --url http://127.0.0.1:PORT --dsn postgresql://... \
        --token sau_... [--buyers 1000] [--units 100] [--server-pid PID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    Connection,
    CpuSampler,
    json_body,
    latency_summary,
    own_cpu_seconds,
    pg_fetch,
    write_result,
)


async def setup_stock(base: Connection, dsn: str, token: str, units: int
                      ) -> tuple[int, list[int]]:
    """Pick a variant and count it so that exactly `units` are available online."""
    [variant] = await pg_fetch(dsn, """
        SELECT v.id FROM variants v JOIN products p ON p.id = v.product_id
        WHERE v.active AND p.active AND NOT p.gift_card ORDER BY v.id DESC LIMIT 1""")
    vid = int(variant["id"])
    locs = [int(r["id"]) for r in await pg_fetch(
        dsn, "SELECT id FROM locations WHERE ships_web_orders ORDER BY web_priority, id")]
    avail = (await base.request("GET", f"/api/v1/variants/{vid}/availability")).json()
    reserved = {x["location_id"]: x["reserved"] for x in avail["locations"]}
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    share, extra = divmod(units, len(locs))
    for i, loc in enumerate(locs):
        want = share + (extra if i == 0 else 0)
        r = await base.request("POST", "/api/v1/stock/counts", auth, json_body({
            "variant_id": vid, "location_id": loc, "counted": want + reserved.get(loc, 0),
            "reference": "bench flash sale"}))
        if r.status != 201:
            raise SystemExit(f"count failed: {r.status} {r.body!r}")
    avail = (await base.request("GET", f"/api/v1/variants/{vid}/availability")).json()
    if avail["online"] != units:
        raise SystemExit(f"expected {units} online, availability says {avail['online']}")
    return vid, locs


async def run(args: argparse.Namespace) -> int:
    u = urlsplit(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    base = Connection(host, port)
    vid, locs = await setup_stock(base, args.dsn, args.token, args.units)
    await base.close()

    tag = f"flash-{uuid.uuid4().hex[:8]}"
    raws: list[bytes] = []
    conns = [Connection(host, port) for _ in range(args.buyers)]
    for i, c in enumerate(conns):
        raws.append(c.encode("POST", "/api/v1/orders", {
            "Authorization": f"Bearer {args.token}", "Content-Type": "application/json",
            "Idempotency-Key": f"{tag}-{i}"}, json_body({
                "channel": "web", "lines": [{"variant_id": vid, "quantity": 1}],
                "payments": [{"method": "card", "terminal_confirmed": True,
                              "reference": f"{tag}-{i}"}]})))
    gate = asyncio.Semaphore(100)

    async def connect(c: Connection) -> None:
        async with gate:
            await c.open()

    await asyncio.gather(*(connect(c) for c in conns))
    await asyncio.sleep(0.2)  # let both workers accept every connection

    cpu0 = own_cpu_seconds()
    cpu = CpuSampler(args.server_pid).__enter__()
    done: list[tuple[float, int, str]] = []

    async def answer(c: Connection) -> None:
        status, headers = await c.read_head()
        body = await c.read_body(headers)
        code = ""
        if status != 201:
            try:
                code = str(c_json(body).get("code", ""))
            except ValueError:
                code = body[:80].decode(errors="replace")
        done.append((time.perf_counter() - t0, status, code))

    t0 = time.perf_counter()
    for c, raw in zip(conns, raws, strict=True):
        assert c.writer is not None
        c.writer.write(raw)
    burst_s = time.perf_counter() - t0
    await asyncio.wait_for(asyncio.gather(*(answer(c) for c in conns)), timeout=120)
    total_s = time.perf_counter() - t0
    cpu.__exit__()
    client_cpu = own_cpu_seconds() - cpu0
    await asyncio.gather(*(c.close() for c in conns))

    statuses = Counter(str(s) for _, s, _ in done)
    codes = Counter(code for _, s, code in done if s != 201)
    won = sorted(t for t, s, _ in done if s == 201)
    [db] = await pg_fetch(args.dsn, """
        SELECT (SELECT count(*) FROM orders WHERE idempotency_key LIKE $1) AS orders,
               (SELECT coalesce(sum(m.quantity), 0) FROM stock_movements m
                  JOIN orders o ON o.id = m.order_id WHERE o.idempotency_key LIKE $1) AS moved,
               (SELECT coalesce(sum(on_hand - reserved), 0) FROM stock_levels
                  WHERE variant_id = $2 AND location_id = ANY($3::int[])) AS left_online,
               (SELECT coalesce(min(on_hand - reserved), 0) FROM stock_levels
                  WHERE variant_id = $2) AS lowest
    """, tag + "-%", vid, locs)
    ok = (statuses == Counter({"201": args.units, "409": args.buyers - args.units})
          and set(codes) == {"out_of_stock"} and int(db["orders"]) == args.units
          and int(db["moved"]) == -args.units and int(db["left_online"]) == 0
          and int(db["lowest"]) >= 0)
    result: dict[str, Any] = {
        "benchmark": "flash_sale",
        "client": "python asyncio streams (bench/common.py), one process",
        "buyers": args.buyers, "units_online": args.units, "variant_id": vid,
        "web_locations": locs, "statuses": dict(statuses), "error_codes": dict(codes),
        "burst_write_ms": round(burst_s * 1000, 2),
        "sold_out_s": round(won[-1], 3) if won else None,
        "first_sale_s": round(won[0], 3) if won else None,
        "total_s": round(total_s, 3),
        "latency_ms_all": latency_summary(t * 1000 for t, _, _ in done),
        "latency_ms_201": latency_summary(t * 1000 for t in won),
        "latency_ms_409": latency_summary(t * 1000 for t, s, _ in done if s == 409),
        "database_check": {k: int(db[k]) for k in ("orders", "moved", "left_online",
                                                   "lowest")},
        "cpu": cpu.report(client_cpu),
        "passed": ok,
    }
    write_result(args.name, result)
    print(f"Flash sale: {args.buyers} buyers for {args.units} units -> {dict(statuses)} "
          f"{dict(codes)}; sold out after {result['sold_out_s']} s, all answered after "
          f"{result['total_s']} s; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def c_json(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    return data if isinstance(data, dict) else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--buyers", type=int, default=1000)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--name", default="flash_sale")
    sys.exit(asyncio.run(run(ap.parse_args())))


if __name__ == "__main__":
    main()
