"""Benchmark 6: till sales as the till sends them, at 16 concurrent tills.

Each till is a register with its own open drawer session at store-1 and its own
keep-alive connection, logged in as the demo cashier (staff session cookie + CSRF
header, exactly what the till's JavaScript sends). A sale is one or two lines from
the whole demo catalogue, cash, with a fresh key: `POST /pos/store-1/api/sales`.

Two runs:

* **paced**: every till rings up one sale per `--interval` seconds (default 1.0, far
  busier than any real till: a cashier needs 20–60 s per customer). Sales are sent on
  a fixed schedule, and latency is measured from the scheduled time, so a slow answer
  also delays (and is charged to) the next sale — no coordinated omission.
* **saturated**: every till sends its next sale as soon as the previous one is
  answered (a closed loop): the server's ceiling for this endpoint.

Afterwards every answered sale must be in the database with its lines and payment.

    python -m bench.pos_till --url http://127.0.0.1:PORT --dsn postgresql://... \
        [--server-pid PID] [--tills 16] [--duration 20] [--warmup 3] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import uuid
from typing import Any

from bench.common import TillStep, drive_tills, pg_fetch, report_tills
from bench.web_checkout import Browser

STORE = "store-1"
LOGIN = ("kassa1@kaunisiho.fi", "demo-kassa-1")
_CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


class Till:
    def __init__(self, url: str, session_id: int) -> None:
        self.b = Browser(url)
        self.session_id = session_id
        self.csrf = ""

    async def login(self) -> None:
        r = await self.b.request("GET", "/staff/login")
        m = _CSRF.search(r.body.decode())
        assert m, "no csrf token on the login page"
        r = await self.b.request("POST", "/staff/login", {
            "csrf_token": m[1], "email": LOGIN[0], "password": LOGIN[1], "next": "/pos/"})
        assert r.status == 303, f"login failed: {r.status}"
        r = await self.b.request("GET", "/staff/login")
        m = _CSRF.search(r.body.decode())
        assert m
        self.csrf = m[1]

    async def sell(self, variants: list[int]) -> tuple[int, str]:
        key = uuid.uuid4().hex
        lines = [{"variant_id": v, "quantity": 1} for v in variants]
        body = {"key": key, "session_id": self.session_id, "lines": lines,
                "payments": [{"method": "cash"}]}
        r = await self.b.send("POST", f"/pos/{STORE}/api/sales", {
            "Content-Type": "application/json", "X-CSRF-Token": self.csrf},
            json.dumps(body).encode())
        return r.status, key


async def open_drawers(dsn: str, n: int, tag: str) -> list[int]:
    [loc] = await pg_fetch(dsn, "SELECT id FROM locations WHERE code = $1", STORE)
    ids = []
    for i in range(n):
        [reg] = await pg_fetch(dsn, """INSERT INTO registers (location_id, name, active,
            created_at) VALUES ($1, $2, true, now()) RETURNING id""", loc["id"],
            f"Bench {tag} {i + 1}")
        [ses] = await pg_fetch(dsn, """INSERT INTO drawer_sessions (register_id, location_id,
            status, float_cents, opened_by, opened_at, closed_by, note)
            VALUES ($1, $2, 'open', 0, 'bench', now(), '', '') RETURNING id""",
            reg["id"], loc["id"])
        ids.append(int(ses["id"]))
    return ids


async def close_drawers(dsn: str, ids: list[int]) -> None:
    await pg_fetch(dsn, "UPDATE drawer_sessions SET status = 'closed', closed_at = now() "
                   "WHERE id = ANY($1::bigint[])", ids)


async def run_part(tills: list[Till], variants: list[int], duration: float, warmup: float,
                   interval: float | None, server_pid: list[int] | None) -> dict[str, Any]:
    def seller(t: Till, index: int) -> TillStep:
        rnd = random.Random(index)
        return lambda: t.sell(rnd.sample(variants, rnd.choice((1, 2))))

    return await drive_tills([seller(t, i) for i, t in enumerate(tills)], duration, warmup,
                             interval, server_pid, "sale")


async def run(args: argparse.Namespace) -> int:
    tag = uuid.uuid4().hex[:6]
    sessions = await open_drawers(args.dsn, args.tills, tag)
    rows = await pg_fetch(args.dsn, "SELECT v.id FROM variants v JOIN products p ON "
                         "p.id = v.product_id WHERE v.active AND NOT p.gift_card ORDER BY v.id")
    variants = [int(r["id"]) for r in rows]
    tills = [Till(args.url, sid) for sid in sessions]
    try:
        # One after another, as tills are switched on: a burst of connections would
        # all be accepted by whichever worker process woke first.
        for t in tills:
            await t.login()
        paced = await run_part(tills, variants, args.duration, args.warmup, args.interval,
                               args.server_pid)
        saturated = await run_part(tills, variants, args.duration, args.warmup, None,
                                   args.server_pid)
    finally:
        await asyncio.gather(*(t.b.close() for t in tills))
        await close_drawers(args.dsn, sessions)
    keys = paced.pop("keys") + saturated.pop("keys")
    [facts] = await pg_fetch(args.dsn, """
        WITH o AS (SELECT id FROM orders WHERE drawer_session_id = ANY($1::bigint[]))
        SELECT (SELECT count(*) FROM o) AS orders,
               (SELECT count(*) FROM payments WHERE order_id IN (SELECT id FROM o)) AS pays,
               (SELECT count(*) FROM order_lines WHERE order_id IN (SELECT id FROM o))
                   AS lines""", sessions)
    agrees = facts["orders"] == len(keys) == facts["pays"]
    return report_tills("pos_till", "sale", args.tills, STORE, paced, saturated, dict(facts),
                        len(keys), agrees)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--server-pid", type=int, action="append",
                   help="repeatable: every server process (and a proxy) counts")
    p.add_argument("--tills", type=int, default=16)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--interval", type=float, default=1.0)
    raise SystemExit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
