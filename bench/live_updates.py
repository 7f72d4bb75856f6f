"""Benchmark 3: live-update latency, from a POS sale's commit to the SSE event
at webshop subscribers.

SUBSCRIBERS connections listen on GET /api/v1/events?topic=stock.changed&
variant_id=X (with two worker processes the kernel spreads them over both, so
some subscribers sit on a different process than the seller's connection).
One seller then makes SALES POS sales of X, one at a time, GAP ms apart.
Each sale's event is matched by its new on-hand level. Three latencies per
(sale, subscriber):

* commit: receipt minus the outbox row's created_at, which the server stamps
  just before sending COMMIT (same machine clock) -- the figure to quote;
* after_response: receipt minus the moment the POST's answer arrived (a lower
  bound; negative when the event beat the HTTP answer);
* after_send: receipt minus the moment the POST was sent (an upper bound).

    python -m bench.live_updates --url http://127.0.0.1:PORT --dsn postgresql://... \
        --token sau_... [--sales 500] [--subscribers 8] [--gap-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass
class Subscriber:
    conn: Connection
    # on_hand -> (event id, wall-clock receipt, perf_counter receipt)
    got: dict[int, tuple[int, float, float]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)


async def listen(sub: Subscriber, path: str, location_id: int) -> None:
    await sub.conn.send(sub.conn.encode("GET", path, {"Accept": "text/event-stream"}))
    status, _headers = await sub.conn.read_head()
    if status != 200:
        raise SystemExit(f"events: HTTP {status}")
    buf = ""
    async for chunk in sub.conn.chunks():
        wall, perf = time.time(), time.perf_counter()
        buf += chunk.decode().replace("\r\n", "\n")
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line and not line.startswith(":"):
                    k, _, v = line.partition(":")
                    fields[k] = v[1:] if v.startswith(" ") else v
            if fields.get("event") == "ready":
                sub.ready.set()
            elif fields.get("event") == "stock.changed":
                payload = json.loads(fields["data"])["payload"]
                if payload["location_id"] == location_id:
                    sub.got[int(payload["on_hand"])] = (int(fields["id"]), wall, perf)
                    if len(sub.got) >= sub.expect:
                        sub.complete.set()


async def run(args: argparse.Namespace) -> int:
    u = urlsplit(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    [ch] = await pg_fetch(args.dsn, "SELECT location_id FROM channels WHERE code = 'pos-1'")
    store = int(ch["location_id"])
    [v] = await pg_fetch(args.dsn, """
        SELECT v.id, v.ean FROM variants v JOIN products p ON p.id = v.product_id
        WHERE v.active AND p.active AND NOT p.gift_card AND v.ean IS NOT NULL
        ORDER BY v.id LIMIT 1""")
    vid, ean = int(v["id"]), str(v["ean"])

    subs = [Subscriber(Connection(host, port), expect=args.sales)
            for _ in range(args.subscribers)]
    path = f"/api/v1/events?topic=stock.changed&variant_id={vid}"
    tasks = [asyncio.create_task(listen(s, path, store)) for s in subs]
    async with asyncio.timeout(15):
        await asyncio.gather(*(s.ready.wait() for s in subs))

    seller = Connection(host, port)
    avail = (await seller.request("GET", f"/api/v1/variants/{vid}/availability")).json()
    start = next(x["on_hand"] for x in avail["locations"] if x["location_id"] == store)
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    body = json_body({"channel": "pos-1", "lines": [{"ean": ean, "quantity": 1}],
                      "payments": [{"method": "cash"}]})
    tag = uuid.uuid4().hex[:8]
    sent: dict[int, tuple[float, float]] = {}  # on_hand after the sale -> (send, answer)
    cpu0 = own_cpu_seconds()
    cpu = CpuSampler(args.server_pid).__enter__()
    for k in range(1, args.sales + 1):
        t_send = time.perf_counter()
        r = await seller.request("POST", "/api/v1/orders",
                                 {**headers, "Idempotency-Key": f"live-{tag}-{k}"}, body)
        t_answer = time.perf_counter()
        if r.status != 201:
            raise SystemExit(f"sale {k}: HTTP {r.status} {r.body[:200]!r}")
        sent[start - k] = (t_send, t_answer)
        await asyncio.sleep(args.gap_ms / 1000)
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*(s.complete.wait() for s in subs))
    except TimeoutError:
        pass  # counted as missing below
    cpu.__exit__()
    client_cpu = own_cpu_seconds() - cpu0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in subs:
        await s.conn.close()
    await seller.close()

    ids = sorted({s.got[oh][0] for s in subs for oh in sent if oh in s.got})
    created = {int(r["id"]): r["created_at"] for r in await pg_fetch(
        args.dsn, "SELECT id, created_at FROM outbox WHERE id = ANY($1::bigint[])", ids)}
    commit_ms: list[float] = []
    after_answer_ms: list[float] = []
    after_send_ms: list[float] = []
    per_sub: list[dict[str, Any]] = []
    missing = 0
    for s in subs:
        mine: list[float] = []
        for oh, (t_send, t_answer) in sent.items():
            hit = s.got.get(oh)
            if hit is None:
                missing += 1
                continue
            eid, wall, perf = hit
            at: datetime = created[eid]
            mine.append((wall - at.timestamp()) * 1000)
            after_answer_ms.append((perf - t_answer) * 1000)
            after_send_ms.append((perf - t_send) * 1000)
        commit_ms += mine
        per_sub.append(latency_summary(mine))
    commit = latency_summary(commit_ms)
    result: dict[str, Any] = {
        "benchmark": "live_updates",
        "client": "python asyncio streams (bench/common.py), seller and subscribers in "
                  "one process",
        "sales": args.sales, "subscribers": args.subscribers, "gap_ms": args.gap_ms,
        "variant_id": vid, "events_expected": args.sales * args.subscribers,
        "events_missing": missing,
        "latency_ms_commit_to_receipt": commit,
        "latency_ms_answer_to_receipt": latency_summary(after_answer_ms),
        "latency_ms_send_to_receipt": latency_summary(after_send_ms),
        "per_subscriber_commit_to_receipt": per_sub,
        "cpu": cpu.report(client_cpu),
        "target_p99_ms": 50,
        "target_met": missing == 0 and commit.get("p99", 1e9) <= 50,
    }
    write_result(args.name, result)
    print(f"Live updates: {args.sales} sales x {args.subscribers} subscribers, "
          f"{missing} events missing; commit->receipt ms p50 {commit.get('p50')} "
          f"p95 {commit.get('p95')} p99 {commit.get('p99')} max {commit.get('max')}")
    return 0 if missing == 0 else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--sales", type=int, default=500)
    ap.add_argument("--subscribers", type=int, default=8)
    ap.add_argument("--gap-ms", type=float, default=5.0)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--name", default="live_updates")
    sys.exit(asyncio.run(run(ap.parse_args())))


if __name__ == "__main__":
    main()
