"""Segment counts and price-time membership on PostgreSQL (docs/segments.md).

Fills an empty, migrated database with N customers (an e-mail each, a third with a
loyalty card, tags, a shade, half with a marketing consent, an eighth withdrawn), 2 N
orders over 400 days and journeys for four in five, then times `count_members` for a
few rule sets (median of five) with the server's own execution time, and
`buyer_segments` for 200 customers against a segment with four criteria:

    createdb -h 127.0.0.1 -U postgres saumaton_segbench
    saumaton db upgrade   # with SAUMATON_DATABASE_URL pointing at it
    python -m bench.segment_counts \\
        --dsn postgresql+asyncpg://postgres@127.0.0.1:5432/saumaton_segbench \\
        [--customers 100000] [--fill]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from saumaton.config import Settings
from saumaton.customers.models import Customer
from saumaton.customers.segments import buyer_segments, conditions, count_members, parse_rules

FILL = """
INSERT INTO channels (code, kind, name) VALUES ('sb-web', 'webshop', 'Web'),
    ('sb-pos', 'pos', 'POS') ON CONFLICT DO NOTHING;
INSERT INTO customers (first_name, last_name, created_at)
    SELECT 'F' || g, 'L' || g, now() FROM generate_series(1, :n) g;
INSERT INTO customer_identities (customer_id, kind, value)
    SELECT id, 'email', 'c' || id || '@example.fi' FROM customers;
INSERT INTO customer_identities (customer_id, kind, value)
    SELECT id, 'card', 'card' || id FROM customers WHERE id % 3 = 0;
INSERT INTO customer_tags (customer_id, tag, created_at)
    SELECT id, CASE WHEN id % 10 = 0 THEN 'vip' ELSE 'tag' || (id % 50) END, now()
    FROM customers;
INSERT INTO customer_consents (customer_id, kind, granted, channel, created_at)
    SELECT id, 'marketing_email', true, 'web', now() FROM customers WHERE id % 2 = 0;
INSERT INTO customer_consents (customer_id, kind, granted, channel, created_at)
    SELECT id, 'marketing_email', false, 'web', now() FROM customers WHERE id % 8 = 0;
INSERT INTO preference_fields (key, label, kind, options, position, active, created_at,
    updated_at) VALUES ('shade', 'Shade', 'text', '[]', 0, true, now(), now())
    ON CONFLICT DO NOTHING;
INSERT INTO customer_preferences (customer_id, key, value, updated_by, updated_at)
    SELECT id, 'shade', (ARRAY['1N', '2N', '3W', '4C'])[1 + id % 4], '', now()
    FROM customers;
INSERT INTO orders (channel_id, status, currency, subtotal_cents, discount_cents,
    total_cents, vat_cents, paid_cents, created_by, created_at, customer_id)
    SELECT (SELECT min(id) FROM channels), 'completed', 'EUR', 5000, 0,
           5000 + (g % 7) * 10000, 1000, 5000, 'bench',
           now() - ((g % 400) || ' days')::interval, 1 + (g * 7919) % :n
    FROM generate_series(1, 2 * :n) g;
INSERT INTO customer_journeys (customer_id, first_at, first_channel_id, first_kind, orders,
    revenue_cents, kinds_mask, later_kinds_mask, channels)
    SELECT id, now(), (SELECT min(id) FROM channels),
           CASE WHEN id % 2 = 0 THEN 'webshop' ELSE 'pos' END, 2, 10000, 3,
           CASE WHEN id % 4 = 0 THEN 1 ELSE 2 END, 2
    FROM customers WHERE id % 5 <> 0;
INSERT INTO customer_segments (name, rules, created_by, created_at, updated_by, updated_at)
    VALUES ('bench', '{"tiers": ["member"], "consent": "not_granted",
            "last_purchase": {"op": "before", "days": 30},
            "preferences": [{"key": "shade", "values": ["2N"]}]}', '', now(), '', now());
INSERT INTO campaigns (name, kind, value, starts_at, active, created_at, created_by,
    ended_by, segment_id)
    SELECT 'bench', 'percent', 1000, now(), true, now(), '', '', max(id)
    FROM customer_segments;
"""

CASES: dict[str, dict[str, Any]] = {
    "tag vip": {"tags": ["vip"]},
    "web then store": {"first_channel": "webshop", "then_channel": "pos"},
    "shade 2N + consent": {"preferences": [{"key": "shade", "values": ["2N"]}],
                           "consent": "granted"},
    "silver or gold": {"tiers": ["silver", "gold"]},
    "lapsed 180 days": {"last_purchase": {"op": "before", "days": 180}},
    "all six": {"tiers": ["member", "silver", "gold"], "tags": ["vip"],
                "preferences": [{"key": "shade", "values": ["2N", "3W"]}],
                "bought_in": ["pos"], "last_purchase": {"op": "within", "days": 365},
                "consent": "granted"},
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--fill", action="store_true", help="fill the database first")
    args = parser.parse_args()
    engine = create_async_engine(args.dsn)
    settings = Settings(database_url=args.dsn)
    if args.fill:
        async with engine.begin() as conn:
            for statement in FILL.split(";\n"):
                if statement.strip():
                    await conn.execute(text(statement), {"n": args.customers}
                                       if ":n" in statement else {})
            await conn.execute(text("ANALYZE"))
    async with AsyncSession(engine) as s:
        for name, raw in CASES.items():
            rules = parse_rules(raw)
            members = await count_members(s, rules, settings=settings)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                await count_members(s, rules, settings=settings)
                times.append((time.perf_counter() - t0) * 1000)
            stmt = select(func.count()).select_from(Customer).where(
                *conditions(rules, settings=settings))
            sql = str(stmt.compile(dialect=postgresql.dialect(),
                                   compile_kwargs={"literal_binds": True}))
            plan = (await s.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql))).scalar()
            print(f"{name:20s} members={members:7d} median={statistics.median(times):8.1f} ms"
                  f"  server={plan[0]['Execution Time']:8.1f} ms")
        price_times = []
        for cid in range(1, 2001, 10):
            t0 = time.perf_counter()
            await buyer_segments(s, cid, settings=settings)
            price_times.append((time.perf_counter() - t0) * 1000)
        price_times.sort()
        print(f"buyer_segments       median={statistics.median(price_times):8.2f} ms"
              f"  p95={price_times[int(len(price_times) * 0.95)]:8.2f} ms")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
