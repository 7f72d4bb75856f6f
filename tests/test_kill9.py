"""kill -9 of app servers under load: nothing acknowledged is lost, nothing is doubled.

Two `saumaton serve` processes on one PostgreSQL behind nginx (tests/cluster.py). Client
tasks place till sales (POST /api/v1/orders, each with its own Idempotency-Key) as fast as
they can; a server is killed with SIGKILL mid-load, restarted, then the other, several
times. A client whose request dies with its server (a connection error, or nginx's 502)
sends the same request with the same key again until it is answered: 201 (placed) or 200
(the first attempt had committed before the kill: the same order, replayed).

At the end: every acknowledged order exists exactly once under its key with the id the
client was given, the database holds no other orders, each stock level equals the sum of
its ledger movements, and the levels moved by exactly the acknowledged orders' lines.
PostgreSQL only (several processes on one database).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select

from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import verify_ledger
from saumaton.orders.models import Order, OrderLine
from tests.cluster import Cluster
from tests.support import make_variants

CLIENTS = 8
KILLS = 4  # each server killed twice, alternately
ORDERS_BETWEEN_KILLS = 25  # acknowledged orders between one restart and the next kill
RETRIES = 200  # per order: a client never gives up on a dead server's answer sooner
RETRYABLE = {502, 503, 504}
START = 10_000  # units of each variant in each store


@dataclass
class Load:
    acked: dict[str, tuple[int, int, list[tuple[int, int, int]]]] = field(
        default_factory=dict)  # key -> (order id, HTTP status, [(variant, location, qty)])
    retried: int = 0  # requests sent again after a connection error or a 502
    replayed: int = 0  # answered 200: the killed attempt had committed
    in_flight: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)


async def _client(c: Cluster, load: Load, variants: list[int], stop: asyncio.Event,
                  seed: int) -> None:
    rnd = random.Random(seed)
    stores = [("pos-1", c.shop.store1), ("pos-2", c.shop.store2)]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=c.base_url, timeout=30, limits=limits) as http:
        while not stop.is_set():
            channel, location = rnd.choice(stores)
            lines = [(v, rnd.randint(1, 3)) for v in rnd.sample(variants, rnd.randint(1, 3))]
            key = f"k9-{uuid.uuid4()}"
            body = {"channel": channel, "payments": [{"method": "cash"}],
                    "lines": [{"variant_id": v, "quantity": q} for v, q in lines]}
            headers = {**c.shop.auth("owner"), "Idempotency-Key": key}
            load.in_flight += 1
            try:
                for attempt in range(RETRIES):
                    try:
                        r = await http.post("/api/v1/orders", json=body, headers=headers)
                    except httpx.TransportError:
                        load.retried += 1
                        continue
                    if r.status_code in RETRYABLE:
                        load.retried += 1
                        continue
                    assert r.status_code in (200, 201), f"{key}: {r.status_code} {r.text}"
                    if r.status_code == 200:
                        load.replayed += 1
                        assert attempt > 0, f"{key}: a replay without a retry"
                    load.acked[key] = (int(r.json()["id"]), r.status_code,
                                       [(v, location, q) for v, q in lines])
                    load.progress.set()
                    break
                else:
                    raise AssertionError(f"{key}: not answered after {RETRIES} attempts")
            finally:
                load.in_flight -= 1


async def _acks(load: Load, at_least: int) -> None:
    """Wait (event-driven) until at least this many orders are acknowledged."""
    async with asyncio.timeout(30):
        while len(load.acked) < at_least:
            load.progress.clear()
            await load.progress.wait()


async def test_kill_9_under_load_loses_and_doubles_nothing(two_servers: Cluster) -> None:
    c = two_servers
    began = time.monotonic()
    made = await make_variants(c.db, [500 + 10 * i for i in range(6)],
                               stock={c.shop.store1: START, c.shop.store2: START})
    variants = [int(str(v["id"])) for v in made]
    load, stop = Load(), asyncio.Event()
    clients = [asyncio.create_task(_client(c, load, variants, stop, seed))
               for seed in range(CLIENTS)]
    killed_in_flight: list[int] = []
    try:
        for k in range(KILLS):
            await _acks(load, len(load.acked) + ORDERS_BETWEEN_KILLS)
            victim = c.servers[k % 2]
            killed_in_flight.append(load.in_flight)
            victim.kill9()
            victim.start()  # as a supervisor (systemd) would restart it
            # The survivor carries the load while the victim comes back.
            await _acks(load, len(load.acked) + ORDERS_BETWEEN_KILLS // 2)
            await victim.wait_ready_async()
        await _acks(load, len(load.acked) + ORDERS_BETWEEN_KILLS)
    finally:
        stop.set()
        results = await asyncio.gather(*clients, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert all(n > 0 for n in killed_in_flight), killed_in_flight  # killed mid-load
    assert [s.starts for s in c.servers] == [1 + KILLS // 2] * 2

    async with c.db.reader() as s:
        rows = (await s.execute(select(Order.id, Order.idempotency_key))).all()
        lines = (await s.execute(select(OrderLine.variant_id, OrderLine.location_id,
                                        func.sum(OrderLine.quantity))
                                 .group_by(OrderLine.variant_id, OrderLine.location_id)
                                 )).all()
        levels = {(int(v), int(loc)): int(q) for v, loc, q in (await s.execute(
            select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand)
            .where(StockLevel.variant_id.in_(variants)))).all()}
        mismatches = await verify_ledger(s)
    by_key = {str(k): int(i) for i, k in rows}
    # Exactly the acknowledged orders, each once, under the id its client was given.
    assert len(rows) == len(by_key) == len(load.acked), (len(rows), len(load.acked))
    assert by_key == {k: oid for k, (oid, _, _) in load.acked.items()}
    # The stock ledger invariant, and the levels moved by exactly those orders' lines.
    assert mismatches == []
    sold: dict[tuple[int, int], int] = {}
    for _, _, order_lines in load.acked.values():
        for v, loc, q in order_lines:
            sold[(v, loc)] = sold.get((v, loc), 0) + q
    assert {(int(v), int(loc)): int(q) for v, loc, q in lines} == sold
    assert levels == {k: START - sold.get(k, 0) for k in levels}
    print(f"\nkill -9 x{KILLS}: {len(load.acked)} orders acknowledged, {load.retried} "
          f"requests retried, {load.replayed} answered as replays, in flight at the kills "
          f"{killed_in_flight}, {time.monotonic() - began:.1f} s")
