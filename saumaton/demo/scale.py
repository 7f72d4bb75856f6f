"""Benchmark-sized data on top of the demo shop: many customers and order lines.

Rows go in with bulk inserts, chunk by chunk, each chunk in one transaction.
Orders and customers get their ids from the database (INSERT .. RETURNING on
PostgreSQL; on SQLite, read back under the write lock), so this is safe on a
database that already has rows. Then come the lines, payments and the matching
"sale" rows of the stock ledger (COPY on PostgreSQL, executemany on SQLite).
Before a chunk's sales, any level that would run low gets a "receipt", and
stock_levels are moved by the same deltas in the same transaction, so
`on_hand == sum(ledger)` holds after every commit. Prices, discounts (none)
and VAT are frozen on the lines exactly as `place_order` would.

Assumes nothing else writes stock for the demo variants while it runs (the
ledger's balance_after values are computed here).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

import saumaton.db.models  # noqa: F401  (every table on the metadata)
from saumaton.catalogue.models import Product, Variant
from saumaton.catalogue.services import display_name, vat_rates_on
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.core.money import round_cash, vat_included
from saumaton.customers.models import Customer
from saumaton.db.base import Base
from saumaton.db.uow import Database
from saumaton.demo.names import random_name
from saumaton.inventory.models import StockLevel
from saumaton.locations.models import Channel
from saumaton.locations.services import web_fulfilment_locations
from saumaton.orders.services import business_day, order_number

Progress = Callable[[str, int, int], None]

CUSTOMER_CHUNK = 10_000
LINES_PER_CHUNK = 20_000
DEFAULT_VAT_BP = 2550
ACTOR = "system:demo-scale"
# Mobile prefixes (after +358) for generated customers; the demo shop uses 040/050.
_SCALE_MOBILE_PREFIXES = ("41", "44", "45", "46")
# (channel code, share of orders)
_CHANNEL_MIX = (("web", 0.40), ("pos-1", 0.35), ("pos-2", 0.25))
_HISTORY = timedelta(days=365)


class DemoNotLoaded(DomainError):
    code = "demo_not_loaded"


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


@dataclass(frozen=True)
class _Variant:
    id: int
    sku: str
    name: str
    price_cents: int
    vat_rate_bp: int


@dataclass(frozen=True)
class _Channel:
    id: int
    code: str
    location_id: int | None  # POS: its store


@dataclass
class _Context:
    variants: list[_Variant]
    channels: list[_Channel]
    channel_weights: list[float]
    web_locations: list[int]  # routing order


async def _context(db: Database) -> _Context:
    async with db.reader() as s:
        rates = await vat_rates_on(s, business_day(utcnow()))
        rows = (await s.execute(
            select(Variant.id, Variant.sku, Product.name, Variant.name, Variant.price_cents,
                   Product.vat_class_code)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.active, Product.active)
            .order_by(Variant.id)
        )).all()
        variants = [_Variant(r[0], r[1], display_name(r[2], r[3]), r[4],
                             rates.get(r[5], DEFAULT_VAT_BP)) for r in rows]
        channels = {c.code: c for c in (await s.scalars(select(Channel))).all()}
        web_locations = await web_fulfilment_locations(s)
    missing = [code for code, _ in _CHANNEL_MIX if code not in channels]
    if not variants or missing or not web_locations:
        raise DemoNotLoaded("load the demo shop first (saumaton.demo.load_demo): the scale "
                            "generator needs its variants, channels web/pos-1/pos-2 and "
                            "locations")
    for code in ("pos-1", "pos-2"):
        if channels[code].location_id is None:
            raise DemoNotLoaded(f"channel {code} has no store")
    return _Context(
        variants=variants,
        channels=[_Channel(channels[c].id, c, channels[c].location_id if c != "web" else None)
                  for c, _ in _CHANNEL_MIX],
        channel_weights=[w for _, w in _CHANNEL_MIX],
        web_locations=web_locations,
    )


def _insert_ignore(db: Database, table: Table) -> Any:
    ins = postgresql.insert(table) if db.is_postgres else sqlite.insert(table)
    return ins.on_conflict_do_nothing()


async def _insert_returning_ids(db: Database, s: AsyncSession, table: Table,
                                rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows and return their database-assigned ids, in row order."""
    if db.is_postgres:
        res = await s.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        return [int(i) for i in res.scalars().all()]
    # SQLite cannot promise RETURNING order for a batch, so SQLAlchemy would go row by
    # row. Our write transaction holds the database's write lock (BEGIN IMMEDIATE), so
    # the rows above the current maximum rowid are exactly these, in insertion order.
    before = int(await s.scalar(select(func.max(table.c.id))) or 0)
    await s.execute(insert(table), rows)
    ids = [int(i) for i in (await s.scalars(
        select(table.c.id).where(table.c.id > before).order_by(table.c.id))).all()]
    if len(ids) != len(rows):
        raise RuntimeError(f"expected {len(rows)} new {table.name} rows, found {len(ids)}")
    return ids


async def _bulk_insert(db: Database, s: AsyncSession, table: Table,
                       rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction: COPY on PostgreSQL (several times
    faster than INSERT for millions of rows), an executemany INSERT elsewhere."""
    if not rows:
        return
    if not db.is_postgres:
        await s.execute(insert(table), rows)
        return
    conn = await s.connection()
    cols = list(rows[0])
    binds = [(c, table.c[c].type.bind_processor(conn.dialect)) for c in cols]
    records = [tuple(proc(r[c]) if proc else r[c] for c, proc in binds) for r in rows]
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, records=records, columns=cols)


async def generate_scale(
    db: Database, *, customers: int, order_lines: int,
    progress: Callable[[str, int, int], None] | None = None, seed: int = 1,
) -> None:
    """Add `customers` customers and orders with `order_lines` lines in total (1–5 per
    order) over channels web, pos-1 and pos-2, with the matching stock ledger.

    Requires the demo shop (saumaton.demo.load_demo). Calls progress(stage, done,
    total) after each committed chunk; stages are "customers" and "order_lines".
    """
    if customers < 0 or order_lines < 0:
        raise ValueError("customers and order_lines must not be negative")
    rng = random.Random(seed)
    ctx = await _context(db)
    customer_ids = await _generate_customers(db, rng, customers, progress)
    if order_lines:
        if not customer_ids:
            async with db.reader() as s:
                customer_ids = [int(i) for i in (await s.scalars(
                    select(Customer.id).order_by(Customer.id).limit(1_000_000))).all()]
        await _generate_orders(db, rng, ctx, order_lines, customer_ids, progress)
    # Fresh planner statistics: right after a bulk load autovacuum has not analysed the
    # tables yet, and PostgreSQL would plan a customer's orders by a status index that
    # now matches nearly every row (25 ms instead of 0.3 ms for a customer card query).
    if db.is_postgres:
        async with db.write_engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


# --- customers ---------------------------------------------------------------------------


def _scale_phone(customer_id: int) -> str | None:
    """A valid Finnish mobile number (E.164) unique to the customer id."""
    block, number = divmod(customer_id, 10_000_000)
    if block >= len(_SCALE_MOBILE_PREFIXES):
        return None
    return f"+358{_SCALE_MOBILE_PREFIXES[block]}{number:07d}"


async def _generate_customers(db: Database, rng: random.Random, total: int,
                              progress: Progress | None) -> list[int]:
    customers_t, identities_t = _table("customers"), _table("customer_identities")
    now = utcnow()
    ids: list[int] = []
    done = 0
    while done < total:
        n = min(CUSTOMER_CHUNK, total - done)
        names = [random_name(rng) for _ in range(n)]
        rows = [{"first_name": f, "last_name": ln,
                 "created_at": now - timedelta(seconds=rng.randrange(2 * 365 * 86400))}
                for f, ln in names]
        async with db.uow() as uow:
            chunk_ids = await _insert_returning_ids(db, uow.session, customers_t, rows)
            idents: list[dict[str, Any]] = []
            for cid, (first, last) in zip(chunk_ids, names, strict=True):
                local = f"{first}.{last}".lower()
                idents.append({"customer_id": cid, "kind": "email",
                               "value": f"{local}.{cid}@example.net"})
                if rng.random() < 0.6 and (phone := _scale_phone(cid)):
                    idents.append({"customer_id": cid, "kind": "phone", "value": phone})
            await uow.session.execute(_insert_ignore(db, identities_t), idents)
            await uow.commit()
        ids.extend(chunk_ids)
        done += n
        if progress:
            progress("customers", done, total)
    return ids


# --- orders ------------------------------------------------------------------------------


@dataclass
class _DraftOrder:
    channel: _Channel
    location_id: int | None  # the order's store (POS) or None (web)
    fulfil_at: int  # where the stock leaves
    customer_id: int | None
    created_at: datetime
    lines: list[tuple[_Variant, int]]
    cash: bool
    pending: bool


def _quantity(rng: random.Random) -> int:
    r = rng.random()
    return 1 if r < 0.85 else 2 if r < 0.97 else 3


async def _generate_orders(db: Database, rng: random.Random, ctx: _Context, total_lines: int,
                           customer_ids: list[int], progress: Progress | None) -> None:
    orders_t, lines_t = _table("orders"), _table("order_lines")
    payments_t, moves_t = _table("payments"), _table("stock_movements")
    levels_t = _table("stock_levels")

    now = utcnow()
    start = now - _HISTORY
    est_orders = max(1, total_lines // 3)
    step = _HISTORY / est_orders

    keys = {(v.id, loc) for v in ctx.variants for loc in ctx.web_locations}
    keys |= {(v.id, c.location_id) for v in ctx.variants for c in ctx.channels if c.location_id}
    async with db.uow() as uow:
        await uow.session.execute(_insert_ignore(db, levels_t), [
            {"variant_id": v, "location_id": loc, "on_hand": 0, "reserved": 0,
             "needs_count": False, "updated_at": now} for v, loc in sorted(keys)])
        on_hand: dict[tuple[int, int], int] = {
            (int(r[0]), int(r[1])): int(r[2]) for r in (await uow.session.execute(
                select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand)
            )).all()}
        await uow.commit()

    level_update = (
        update(levels_t)
        .where(and_(levels_t.c.variant_id == bindparam("k_variant"),
                    levels_t.c.location_id == bindparam("k_location")))
        .values(on_hand=levels_t.c.on_hand + bindparam("delta"), updated_at=bindparam("at"))
    )

    done = 0
    seq = 0
    while done < total_lines:
        # Draft a chunk of orders.
        drafts: list[_DraftOrder] = []
        chunk_lines = 0
        while chunk_lines < LINES_PER_CHUNK and done + chunk_lines < total_lines:
            n = min(rng.randint(1, 5), total_lines - done - chunk_lines)
            channel = rng.choices(ctx.channels, ctx.channel_weights)[0]
            if channel.location_id is not None:
                fulfil = channel.location_id
                customer = rng.choice(customer_ids) if customer_ids and rng.random() < 0.6 \
                    else None
            else:
                fulfil = (ctx.web_locations[0] if len(ctx.web_locations) == 1
                          or rng.random() < 0.85 else rng.choice(ctx.web_locations[1:]))
                customer = rng.choice(customer_ids) if customer_ids else None
            at = min(now, start + step * (seq + rng.random()))
            seq += 1
            drafts.append(_DraftOrder(
                channel=channel, location_id=channel.location_id, fulfil_at=fulfil,
                customer_id=customer, created_at=at,
                lines=[(rng.choice(ctx.variants), _quantity(rng)) for _ in range(n)],
                cash=channel.location_id is not None and rng.random() < 0.3,
                pending=channel.location_id is None and rng.random() < 0.03,
            ))
            chunk_lines += n

        order_rows: list[dict[str, Any]] = []
        totals: list[int] = []
        for d in drafts:
            total = sum(v.price_cents * q for v, q in d.lines)
            vat = sum(vat_included(v.price_cents * q, v.vat_rate_bp) for v, q in d.lines)
            totals.append(total)
            status = "pending" if d.pending else "completed" if d.location_id else "paid"
            order_rows.append({
                "channel_id": d.channel.id, "location_id": d.location_id,
                "customer_id": d.customer_id, "status": status, "currency": "EUR",
                "subtotal_cents": total, "discount_cents": 0, "total_cents": total,
                "vat_cents": vat, "paid_cents": 0 if d.pending else total,
                "idempotency_key": None, "request_hash": None, "created_by": ACTOR,
                "created_at": d.created_at,
            })

        # Stock: top up whatever this chunk would take below a small buffer.
        demand: dict[tuple[int, int], int] = {}
        for d in drafts:
            for v, q in d.lines:
                key = (v.id, d.fulfil_at)
                demand[key] = demand.get(key, 0) + q
        chunk_start = drafts[0].created_at - timedelta(hours=1)
        move_rows: list[dict[str, Any]] = []
        delta: dict[tuple[int, int], int] = {}
        for key in sorted(demand):
            have = on_hand.get(key, 0)
            if have - demand[key] < 5:
                restock = rng.randint(20, 60) if key[1] in ctx.web_locations else \
                    rng.randint(5, 15)
                qty = demand[key] - have + restock
                have += qty
                on_hand[key] = have
                delta[key] = qty
                move_rows.append({
                    "variant_id": key[0], "location_id": key[1], "kind": "receipt",
                    "quantity": qty, "balance_after": have, "reason": "täydennys",
                    "reference": "demo-scale", "order_id": None, "actor": ACTOR,
                    "created_at": chunk_start})

        async with db.uow() as uow:
            s = uow.session
            order_ids = await _insert_returning_ids(db, s, orders_t, order_rows)
            line_rows: list[dict[str, Any]] = []
            payment_rows: list[dict[str, Any]] = []
            for oid, d, total in zip(order_ids, drafts, totals, strict=True):
                ref = order_number(oid)
                for no, (v, q) in enumerate(d.lines, 1):
                    gross = v.price_cents * q
                    line_rows.append({
                        "order_id": oid, "line_no": no, "variant_id": v.id,
                        "location_id": d.fulfil_at, "sku": v.sku, "name": v.name,
                        "quantity": q, "unit_price_cents": v.price_cents, "discount_cents": 0,
                        "total_cents": gross, "vat_rate_bp": v.vat_rate_bp,
                        "vat_cents": vat_included(gross, v.vat_rate_bp), "campaign_id": None})
                    key = (v.id, d.fulfil_at)
                    on_hand[key] -= q
                    delta[key] = delta.get(key, 0) - q
                    move_rows.append({
                        "variant_id": v.id, "location_id": d.fulfil_at, "kind": "sale",
                        "quantity": -q, "balance_after": on_hand[key], "reason": "",
                        "reference": ref, "order_id": oid, "actor": ACTOR,
                        "created_at": d.created_at})
                if d.pending:
                    continue
                if d.cash:
                    collect = round_cash(total)
                    payment_rows.append({
                        "order_id": oid, "method": "cash", "status": "captured",
                        "amount_cents": total, "rounding_cents": collect - total,
                        "tendered_cents": collect, "change_cents": 0, "reference": "",
                        "location_id": d.location_id, "created_at": d.created_at})
                else:
                    payment_rows.append({
                        "order_id": oid, "method": "card", "status": "captured",
                        "amount_cents": total, "rounding_cents": 0, "tendered_cents": None,
                        "change_cents": 0,
                        "reference": "" if d.location_id else f"verkkomaksu-{ref}",
                        "location_id": d.location_id, "created_at": d.created_at})
            await _bulk_insert(db, s, lines_t, line_rows)
            await _bulk_insert(db, s, payments_t, payment_rows)
            await _bulk_insert(db, s, moves_t, move_rows)
            await s.execute(level_update, [
                {"k_variant": k[0], "k_location": k[1], "delta": dq, "at": now}
                for k, dq in sorted(delta.items()) if dq])
            await uow.commit()
        done += chunk_lines
        if progress:
            progress("order_lines", done, total_lines)
