"""Benchmark 7: returns at 16 concurrent tills.

Each till is a register with its own open drawer session at store-1 and its own
keep-alive connection. Before measuring, each till rings up a few sales of many units
(the till's JSON endpoint, as the till sends them); then it takes returns of one unit
at a time from them — `POST /api/v1/orders/{id}/returns` with an Idempotency-Key,
refunded in cash from its drawer (the till's return screen calls the same service):
the order row lock, the conditional UPDATE of the returned quantity, the "return"
stock movement, the cash refund with its rounding, the loyalty and order-state steps.

Two runs, like benchmark 6: **paced** (one return per `--interval` seconds per till,
latency from the scheduled time) and **saturated** (closed loop). Afterwards every
answered return must be in the database with its refund, and the returned quantities
must add up.

    python -m bench.returns_till --url http://127.0.0.1:PORT --dsn postgresql://... \
        --token TOKEN [--server-pid PID] [--tills 16] [--duration 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

from bench.common import TillStep, drive_tills, pg_fetch, report_tills
from bench.pos_till import STORE, Till, close_drawers, open_drawers

UNITS_PER_SALE = 400
SALES_PER_TILL = 4


class ReturnTill(Till):
    def __init__(self, url: str, session_id: int, token: str) -> None:
        super().__init__(url, session_id)
        self.token = token
        self.orders: list[int] = []  # sold here, with units left to return
        self.left: dict[int, int] = {}

    async def sell_many(self, variant: int) -> None:
        for _ in range(SALES_PER_TILL):
            body = {"key": uuid.uuid4().hex, "session_id": self.session_id,
                    "lines": [{"variant_id": variant, "quantity": UNITS_PER_SALE}],
                    "payments": [{"method": "cash"}]}
            r = await self.b.send("POST", f"/pos/{STORE}/api/sales", {
                "Content-Type": "application/json", "X-CSRF-Token": self.csrf},
                json.dumps(body).encode())
            assert r.status in (200, 201), f"sale failed: {r.status} {r.body[:200]!r}"
            order_id = int(json.loads(r.body)["order"]["id"])
            self.orders.append(order_id)
            self.left[order_id] = UNITS_PER_SALE

    async def take_return(self) -> tuple[int, str]:
        order_id = next(o for o in self.orders if self.left[o] > 0)
        self.left[order_id] -= 1
        key = uuid.uuid4().hex
        body = {"location": STORE, "lines": [{"line_no": 1, "quantity": 1}],
                "refund_method": "cash", "drawer_session_id": self.session_id,
                "reason": "bench"}
        r = await self.b.send("POST", f"/api/v1/orders/{order_id}/returns", {
            "Content-Type": "application/json", "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": key}, json.dumps(body).encode())
        return r.status, key


async def run_part(tills: list[ReturnTill], duration: float, warmup: float,
                   interval: float | None, server_pid: int | None) -> dict[str, Any]:
    def returner(t: ReturnTill) -> TillStep:
        async def step() -> tuple[int, str] | None:
            return await t.take_return() if any(t.left.values()) else None
        return step

    return await drive_tills([returner(t) for t in tills], duration, warmup, interval,
                             server_pid, "return")


async def run(args: argparse.Namespace) -> int:
    tag = uuid.uuid4().hex[:6]
    sessions = await open_drawers(args.dsn, args.tills, f"returns {tag}")
    [row] = await pg_fetch(args.dsn, "SELECT v.id FROM variants v JOIN products p ON "
                           "p.id = v.product_id WHERE v.active AND NOT p.gift_card "
                           "ORDER BY v.id LIMIT 1")
    tills = [ReturnTill(args.url, sid, args.token) for sid in sessions]
    try:
        for t in tills:
            await t.login()
            await t.sell_many(int(row["id"]))
        paced = await run_part(tills, args.duration, args.warmup, args.interval,
                               args.server_pid)
        saturated = await run_part(tills, args.duration, args.warmup, None, args.server_pid)
    finally:
        await asyncio.gather(*(t.b.close() for t in tills))
        await close_drawers(args.dsn, sessions)
    keys = paced.pop("keys") + saturated.pop("keys")
    orders = [o for t in tills for o in t.orders]
    [facts] = await pg_fetch(args.dsn, """
        SELECT (SELECT count(*) FROM returns WHERE order_id = ANY($1::bigint[])) AS returns,
               (SELECT count(*) FROM refunds WHERE order_id = ANY($1::bigint[])) AS refunds,
               (SELECT coalesce(sum(returned_quantity), 0) FROM order_lines
                 WHERE order_id = ANY($1::bigint[])) AS returned_units""", orders)
    agrees = facts["returns"] == len(keys) == facts["refunds"] == facts["returned_units"]
    return report_tills("returns_till", "return", args.tills, STORE, paced, saturated,
                        dict(facts), len(keys), agrees)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--server-pid", type=int)
    p.add_argument("--tills", type=int, default=16)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--interval", type=float, default=1.0)
    raise SystemExit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
