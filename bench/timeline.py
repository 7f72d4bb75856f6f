"""Timeline load time: p95 of `customers.timeline.timeline()` for a customer with 500
events, on PostgreSQL.

A throwaway database is created and migrated (or `--dsn` names an empty, migrated one);
it gets one customer with 500 events across every source — store and web orders, click
& collect handovers, refunds, chats started and closed, notes, NPS answers, loyalty
entries, consent changes — and `--noise` other customers' orders, so the indexes have
something to skip. Then `timeline()` (the first page of 100, as the card shows it; and
with `--limit`) runs `--calls` times on one reader session each, as a page request does.
Prints the latency summary (ms) as JSON and writes bench/results/timeline.json.

    python -m bench.timeline [--admin postgresql://postgres@127.0.0.1:5432/postgres] \\
        [--calls 200] [--limit 100] [--noise 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import insert

from bench.common import latency_summary, write_result
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.customers.models import Customer, CustomerConsent, CustomerNote
from saumaton.customers.timeline import timeline
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.orders.models import Order
from saumaton.payments.models import Payment
from saumaton.service.models import Conversation, NpsSurvey

READER = Actor(label="bench", name="bench", grants=(RoleGrant("service", None),))
# The customer's 500 events.
ORDERS, COLLECTED, REFUNDS, CHATS, NOTES, NPS, LOYALTY, CONSENTS = (
    150, 30, 20, 25, 60, 20, 150, 20)  # with the chats' closings: 500 events in all


def _order(i: int, customer_id: int, channel: int, store: int | None, now: Any,
           **extra: Any) -> dict[str, Any]:
    return {"channel_id": channel, "location_id": store, "customer_id": customer_id,
            "status": extra.pop("status", "completed"), "currency": "EUR",
            "subtotal_cents": 1000 + i, "discount_cents": 0, "total_cents": 1000 + i,
            "vat_cents": 200, "paid_cents": 1000 + i, "created_by": "bench",
            "created_at": now - timedelta(minutes=i), "email": "", "phone": "",
            "language": "fi", "offline": False, "client_ref": "", "flags": "",
            "discount_reason": "", "collected_by": "", "delivery_fee_cents": 0,
            "delivery_vat_rate_bp": 0, "delivery_vat_cents": 0, **extra}


async def populate(db: Database, noise: int) -> int:
    now = utcnow()
    async with db.uow() as uow:
        s = uow.session
        store = Location(code="b-store", name="Bench Store", kind="store",
                         sells_in_person=True)
        s.add(store)
        await s.flush()
        pos = Channel(code="b-pos", kind="pos", name="Bench POS", location_id=store.id)
        web = Channel(code="b-web", kind="webshop", name="Webshop")
        s.add_all([pos, web])
        customer = Customer(first_name="Bench", last_name="Customer")
        others = [Customer(first_name=f"Other{i}", last_name="X") for i in range(200)]
        s.add(customer)
        s.add_all(others)
        await s.flush()
        cid = customer.id
        rows = [_order(i, cid, web.id if i % 3 == 0 else pos.id,
                       None if i % 3 == 0 else store.id, now) for i in range(ORDERS)]
        for i in range(COLLECTED):
            rows[i * 3 + 1].update(status="collected", delivery_method="pickup",
                                   collected_at=now - timedelta(minutes=i * 3))
        ids = [int(r) for r in (await s.scalars(
            insert(Order).returning(Order.id), rows)).all()]
        await s.execute(insert(Payment), [{
            "order_id": ids[i], "method": "paytrail", "status": "refunded",
            "amount_cents": -500, "rounding_cents": 0, "change_cents": 0, "reference": "",
            "created_at": now - timedelta(minutes=i * 5)} for i in range(REFUNDS)])
        await s.execute(insert(Conversation), [{
            "visitor_token_hash": uuid.uuid4().hex, "customer_id": cid, "status": "closed",
            "name": "", "email": "", "language": "fi", "page": "/shop/", "offline_message":
            False, "created_at": now - timedelta(minutes=i * 7),
            "last_message_at": now - timedelta(minutes=i * 7),
            "closed_at": now - timedelta(minutes=i * 7 - 3)} for i in range(CHATS)])
        await s.execute(insert(CustomerNote), [{
            "customer_id": cid, "body": f"note {i}", "author": "bench", "channel": "pos",
            "created_at": now - timedelta(minutes=i * 2)} for i in range(NOTES)])
        await s.execute(insert(NpsSurvey), [{
            "customer_id": cid, "order_id": ids[i], "token_hash": uuid.uuid4().hex * 2,
            "sent_at": now - timedelta(minutes=i * 4), "score": i % 11, "comment": "ok",
            "answered_at": now - timedelta(minutes=i * 4 - 1)} for i in range(NPS)])
        await s.execute(insert(LoyaltyEntry), [{
            "customer_id": cid, "kind": "earn" if i % 4 else "redeem",
            "points": 10 if i % 4 else -5, "order_id": ids[i % ORDERS], "channel": "b-pos",
            "reason": "", "key": f"bench:{uuid.uuid4().hex}", "created_by": "bench",
            "created_at": now - timedelta(minutes=i)} for i in range(LOYALTY)])
        await s.execute(insert(CustomerConsent), [{
            "customer_id": cid, "kind": "marketing_email", "granted": i % 2 == 0,
            "channel": "pos", "created_at": now - timedelta(minutes=i * 11)}
            for i in range(CONSENTS)])
        # other customers' orders: what the customer_id indexes skip
        batch: list[dict[str, Any]] = []
        for i in range(noise):
            batch.append(_order(i, others[i % len(others)].id, pos.id, store.id, now))
            if len(batch) == 5000:
                await s.execute(insert(Order), batch)
                batch = []
        if batch:
            await s.execute(insert(Order), batch)
        await uow.commit()
    return cid


async def measure(db: Database, customer_id: int, calls: int, limit: int) -> list[float]:
    times: list[float] = []
    for _ in range(calls):
        t0 = time.perf_counter()
        async with db.reader() as s:
            events = await timeline(s, READER, customer_id, limit=limit)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(events) == min(limit, 500), len(events)
    return times


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--noise", type=int, default=20_000)
    args = ap.parse_args()
    name = f"saumaton_bench_tl_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(args.admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = args.admin.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            cid = await populate(db, args.noise)
            async with db.reader() as s:
                all_events = await timeline(s, READER, cid, limit=500)
            assert len(all_events) == 500, len(all_events)
            await measure(db, cid, 20, args.limit)  # warm up: pool, prepared plans
            first_page = await measure(db, cid, args.calls, args.limit)
            everything = await measure(db, cid, args.calls, 500)
        finally:
            await db.dispose()
    finally:
        conn = await asyncpg.connect(args.admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    result = {"events": 500, "calls": args.calls, "noise_orders": args.noise,
              f"limit_{args.limit}_ms": latency_summary(first_page),
              "limit_500_ms": latency_summary(everything)}
    write_result("timeline", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
