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

After the sales of a chunk come its after-sale rows (see `generate_scale`):
completed returns with their lines, refunds and "return" (and, for damaged goods,
"write_off") ledger rows, a few cancelled web orders, loyalty points earned and
taken back, NPS answers and the web shop's funnel events.

Assumes nothing else writes stock for the demo variants while it runs (the
ledger's balance_after values are computed here).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

import saumaton.db.models  # noqa: F401  (every table on the metadata)
from saumaton.catalogue.models import Product, Variant
from saumaton.catalogue.services import display_name, vat_rates_on
from saumaton.checkout.services import DELIVERY_VAT_CLASS
from saumaton.config import Settings, get_settings
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
# Web orders: share collected at a store (click & collect), the rest delivered home.
_PICKUP_SHARE = 0.20
_PENDING_SHARE = 0.03  # web orders still waiting for their payment
_CANCELLED_SHARE = 0.01  # web orders cancelled unpaid (no payment, no stock moved)
# Returns: share of sold orders with a completed return, 1-30 days after the sale.
_RETURN_SHARE = 0.05
_RETURN_AT_STORE_WEB = 0.35  # web orders brought back to a store (the rest by post)
_RETURN_OTHER_STORE = 0.15  # store sales brought back to the other store
_WRITE_OFF_SHARE = 0.10  # returned units too damaged to sell again
RETURN_REASONS = ("väärä sävy", "ei sopinut iholle", "muutti mieltä", "viallinen tuote",
                  "tilasi väärän tuotteen")
# NPS: share of identified customers' sales asked, and of those asked, who answered.
_NPS_ASKED = 0.30
_NPS_ANSWERED = 0.45
_NPS_SCORES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
_NPS_WEIGHTS = {"web": (1, 1, 1, 2, 2, 4, 6, 12, 20, 25, 26),
                "pos": (1, 1, 1, 1, 2, 3, 4, 10, 18, 27, 32)}
NPS_COMMENTS = ("Ystävällinen palvelu!", "Toimitus kesti liian kauan.",
                "Hyvät neuvot sävyn valintaan.", "Kassajono oli pitkä.",
                "Helppo tilata netistä.", "Tuote loppui kesken.", "Kiitos, tulen uudelleen.",
                "Nouto myymälästä toimi hyvin.")
# Funnel events: one web order in ANALYTICS_ORDER_SHARE has its whole session
# (visit -> order_placed); each such session comes with _SESSIONS_PER_ORDER
# sessions that bought nothing, so visit -> order conversion is about 10 %. Sampled
# to keep the table at a few million rows for the default 5 M order lines.
ANALYTICS_ORDER_SHARE = 0.15
_SESSIONS_PER_ORDER = 9
_DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_WEIGHTS = (0.60, 0.32, 0.08)


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
    delivery_vat_bp: int
    home_fee_cents: int
    free_delivery_from_cents: int
    points_per_euro: int
    points_valid: timedelta

    @property
    def stores(self) -> list[_Channel]:
        return [c for c in self.channels if c.location_id is not None]


async def _context(db: Database, settings: Settings) -> _Context:
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
        delivery_vat_bp=rates.get(DELIVERY_VAT_CLASS, DEFAULT_VAT_BP),
        home_fee_cents=settings.home_delivery_fee_cents,
        free_delivery_from_cents=settings.free_delivery_from_cents,
        points_per_euro=settings.loyalty_points_per_euro,
        points_valid=timedelta(days=settings.loyalty_points_valid_days),
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
    # Only a few columns need converting (timestamps, JSON): convert those in place
    # instead of calling a generator per value (millions of rows).
    procs = [(i, proc) for i, c in enumerate(cols)
             if (proc := table.c[c].type.bind_processor(conn.dialect)) is not None]
    get = itemgetter(*cols)
    records: list[tuple[Any, ...]] = []
    for r in rows:
        values = list(get(r)) if len(cols) > 1 else [get(r)]
        for i, proc in procs:
            values[i] = proc(values[i])
        records.append(tuple(values))
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, records=records, columns=cols)


async def generate_scale(
    db: Database, *, customers: int, order_lines: int,
    progress: Callable[[str, int, int], None] | None = None, seed: int = 1,
    settings: Settings | None = None,
) -> None:
    """Add `customers` customers and orders with `order_lines` lines in total (1-5 per
    order) over channels web, pos-1 and pos-2, with the matching stock ledger, and
    what follows a sale: returns (about 5 % of the sold orders, some of them web orders
    brought back to a store) with their refunds and stock, cancelled web orders,
    loyalty points, NPS answers and sampled funnel events.

    Requires the demo shop (saumaton.demo.load_demo). Calls progress(stage, done,
    total) after each committed chunk; stages are "customers" and "order_lines".
    `settings`: delivery fees and the loyalty rate (default: the current settings).
    """
    if customers < 0 or order_lines < 0:
        raise ValueError("customers and order_lines must not be negative")
    rng = random.Random(seed)
    ctx = await _context(db, settings or get_settings())
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
class _DraftReturn:
    # (index of the order's line, units back, back on the shelf)
    lines: list[tuple[int, int, bool]]
    at: datetime
    location_id: int  # where the goods came back (a store, or the warehouse by post)
    kind: str  # in_store | post
    channel: str  # the channel code it was taken in
    refund_method: str
    reason: str


@dataclass
class _DraftOrder:
    channel: _Channel
    location_id: int | None  # the order's store (POS, click & collect) or None
    fulfil_at: int  # where the stock leaves
    customer_id: int | None
    created_at: datetime
    lines: list[tuple[_Variant, int]]
    cash: bool
    status: str
    delivery_method: str | None = None  # web: home | pickup
    fee_cents: int = 0
    ret: _DraftReturn | None = None

    @property
    def goods_cents(self) -> int:
        return sum(v.price_cents * q for v, q in self.lines)

    @property
    def sold(self) -> bool:
        return self.status not in ("pending", "cancelled")


def _quantity(rng: random.Random) -> int:
    r = rng.random()
    return 1 if r < 0.85 else 2 if r < 0.97 else 3


def _draft_return(rng: random.Random, ctx: _Context, d: _DraftOrder,
                  now: datetime) -> _DraftReturn | None:
    # Every draw is made whatever the outcome, so a seed gives the same data whenever
    # it runs (only a return that would lie in the future is left out).
    at = d.created_at + timedelta(days=rng.uniform(1, 30))
    picked = [i for i in range(len(d.lines)) if rng.random() < 0.6]
    first = rng.randrange(len(d.lines))
    lines = [(i, d.lines[i][1] if rng.random() < 0.8 else rng.randint(1, d.lines[i][1]),
              rng.random() >= _WRITE_OFF_SHARE) for i in picked or [first]]
    reason = rng.choice(RETURN_REASONS)
    stores = ctx.stores
    where, other = rng.random(), rng.choice(stores)
    if at >= now:
        return None
    if d.channel.location_id is not None:  # a store sale: mostly back to the same store
        store = d.channel if where >= _RETURN_OTHER_STORE or len(stores) == 1 \
            else next(c for c in stores if c.id != d.channel.id)
        method = "cash" if d.cash else "card"
    elif where < _RETURN_AT_STORE_WEB:  # a web order brought to a store
        store = other
        method = "paytrail"
    else:  # a web order sent back by post, received at the warehouse
        return _DraftReturn(lines=lines, at=at, location_id=ctx.web_locations[0],
                            kind="post", channel="web", refund_method="paytrail",
                            reason=reason)
    assert store.location_id is not None
    return _DraftReturn(lines=lines, at=at, location_id=store.location_id, kind="in_store",
                        channel=store.code, refund_method=method, reason=reason)


def _draft_orders(rng: random.Random, ctx: _Context, customer_ids: list[int],
                  lines_wanted: int, seq: int, start: datetime, step: timedelta,
                  now: datetime) -> tuple[list[_DraftOrder], int, int]:
    """A chunk of orders with about `lines_wanted` lines: (drafts, lines, next seq)."""
    drafts: list[_DraftOrder] = []
    chunk_lines = 0
    while chunk_lines < min(LINES_PER_CHUNK, lines_wanted):
        n = min(rng.randint(1, 5), lines_wanted - chunk_lines)
        channel = rng.choices(ctx.channels, ctx.channel_weights)[0]
        at = min(now, start + step * (seq + rng.random()))
        seq += 1
        lines = [(rng.choice(ctx.variants), _quantity(rng)) for _ in range(n)]
        chunk_lines += n
        if channel.location_id is not None:
            customer = rng.choice(customer_ids) if customer_ids and rng.random() < 0.6 \
                else None
            d = _DraftOrder(channel=channel, location_id=channel.location_id,
                            fulfil_at=channel.location_id, customer_id=customer,
                            created_at=at, lines=lines, cash=rng.random() < 0.3,
                            status="completed")
        else:
            customer = rng.choice(customer_ids) if customer_ids else None
            r = rng.random()
            status = "pending" if r < _PENDING_SHARE else \
                "cancelled" if r < _PENDING_SHARE + _CANCELLED_SHARE else "paid"
            if rng.random() < _PICKUP_SHARE:
                store = rng.choice(ctx.stores).location_id
                assert store is not None
                d = _DraftOrder(channel=channel, location_id=store, fulfil_at=store,
                                customer_id=customer, created_at=at, lines=lines, cash=False,
                                status=status, delivery_method="pickup")
            else:
                fulfil = (ctx.web_locations[0] if len(ctx.web_locations) == 1
                          or rng.random() < 0.85 else rng.choice(ctx.web_locations[1:]))
                d = _DraftOrder(channel=channel, location_id=None, fulfil_at=fulfil,
                                customer_id=customer, created_at=at, lines=lines, cash=False,
                                status=status, delivery_method="home")
                free_from = ctx.free_delivery_from_cents
                if not (free_from > 0 and d.goods_cents >= free_from):
                    d.fee_cents = ctx.home_fee_cents
        if d.sold and rng.random() < _RETURN_SHARE:
            d.ret = _draft_return(rng, ctx, d, now)
        if d.ret is not None:
            back = {i: q for i, q, _ in d.ret.lines}
            d.status = "returned" if all(
                back.get(i, 0) == q for i, (_, q) in enumerate(d.lines)) else "partly_returned"
        drafts.append(d)
    return drafts, chunk_lines, seq


def _token_hash(order_id: int) -> str:
    return hashlib.sha256(f"demo-scale-nps:{order_id}".encode()).hexdigest()


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
        drafts, chunk_lines, seq = _draft_orders(rng, ctx, customer_ids, total_lines - done,
                                                 seq, start, step, now)
        order_rows: list[dict[str, Any]] = []
        totals: list[int] = []
        for d in drafts:
            goods = d.goods_cents
            fee_vat = vat_included(d.fee_cents, ctx.delivery_vat_bp)
            total = goods + d.fee_cents
            vat = sum(vat_included(v.price_cents * q, v.vat_rate_bp) for v, q in d.lines)
            totals.append(total)
            order_rows.append({
                "channel_id": d.channel.id, "location_id": d.location_id,
                "customer_id": d.customer_id, "status": d.status, "currency": "EUR",
                "subtotal_cents": total, "discount_cents": 0, "total_cents": total,
                "vat_cents": vat + fee_vat, "paid_cents": total if d.sold else 0,
                "idempotency_key": None, "request_hash": None, "created_by": ACTOR,
                "created_at": d.created_at, "delivery_method": d.delivery_method,
                "delivery_fee_cents": d.fee_cents,
                "delivery_vat_rate_bp": ctx.delivery_vat_bp if d.fee_cents else 0,
                "delivery_vat_cents": fee_vat,
                "refunded_cents": _return_money(d),
            })

        # Stock: top up whatever this chunk would take below a small buffer. A cancelled
        # order took nothing (its reservation was released).
        demand: dict[tuple[int, int], int] = {}
        for d in drafts:
            if d.status == "cancelled":
                continue
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

        stock = _Stock(on_hand, delta, move_rows)
        move = stock.move

        async with db.uow() as uow:
            s = uow.session
            order_ids = await _insert_returning_ids(db, s, orders_t, order_rows)
            line_rows: list[dict[str, Any]] = []
            payment_rows: list[dict[str, Any]] = []
            for oid, d, total in zip(order_ids, drafts, totals, strict=True):
                ref = order_number(oid)
                back = {i: q for i, q, _ in d.ret.lines} if d.ret else {}
                for no, (v, q) in enumerate(d.lines, 1):
                    gross = v.price_cents * q
                    line_rows.append({
                        "order_id": oid, "line_no": no, "variant_id": v.id,
                        "location_id": d.fulfil_at, "sku": v.sku, "name": v.name,
                        "quantity": q, "unit_price_cents": v.price_cents, "discount_cents": 0,
                        "total_cents": gross, "vat_rate_bp": v.vat_rate_bp,
                        "vat_cents": vat_included(gross, v.vat_rate_bp), "campaign_id": None,
                        "returned_quantity": back.get(no - 1, 0)})
                    if d.status != "cancelled":
                        move(v.id, d.fulfil_at, -q, "sale", "", ref, oid, d.created_at)
                if not d.sold:
                    continue
                if d.cash:
                    collect = round_cash(total)
                    payment_rows.append({
                        "order_id": oid, "method": "cash", "status": "captured",
                        "amount_cents": total, "rounding_cents": collect - total,
                        "tendered_cents": collect, "change_cents": 0, "reference": "",
                        "location_id": d.location_id, "created_at": d.created_at})
                elif d.channel.location_id is not None:
                    payment_rows.append({
                        "order_id": oid, "method": "card", "status": "captured",
                        "amount_cents": total, "rounding_cents": 0, "tendered_cents": None,
                        "change_cents": 0, "reference": "",
                        "location_id": d.location_id, "created_at": d.created_at})
                else:
                    payment_rows.append({
                        "order_id": oid, "method": "paytrail", "status": "captured",
                        "amount_cents": total, "rounding_cents": 0, "tendered_cents": None,
                        "change_cents": 0, "reference": _transaction_id(oid),
                        "location_id": d.location_id, "created_at": d.created_at})
            await _bulk_insert(db, s, lines_t, line_rows)
            await _bulk_insert(db, s, payments_t, payment_rows)
            await _after_sale(db, s, rng, ctx, drafts, order_ids, move, now)
            await _bulk_insert(db, s, moves_t, move_rows)
            await s.execute(level_update, [
                {"k_variant": k[0], "k_location": k[1], "delta": dq, "at": now}
                for k, dq in sorted(delta.items()) if dq])
            await uow.commit()
        done += chunk_lines
        if progress:
            progress("order_lines", done, total_lines)


def _transaction_id(order_id: int) -> str:
    """A Paytrail-like transaction id (a UUID), the same for the same order id."""
    h = hashlib.md5(f"demo-scale:{order_id}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _return_lines_money(d: _DraftOrder) -> list[tuple[int, int]]:
    """(refund cents, VAT cents) per returned line, in the return's line order."""
    assert d.ret is not None
    out = []
    for i, q, _ in d.ret.lines:
        v = d.lines[i][0]
        out.append((v.price_cents * q, vat_included(v.price_cents * q, v.vat_rate_bp)))
    return out


def _return_money(d: _DraftOrder) -> int:
    return sum(m for m, _ in _return_lines_money(d)) if d.ret else 0


Mover = Callable[[int, int, int, str, str, str, int, datetime], None]


@dataclass
class _Stock:
    """A chunk's ledger rows, with the running balances and the levels' deltas."""

    on_hand: dict[tuple[int, int], int]
    delta: dict[tuple[int, int], int]
    rows: list[dict[str, Any]]

    def move(self, variant_id: int, location_id: int, q: int, kind: str, reason: str,
             ref: str, oid: int, at: datetime) -> None:
        key = (variant_id, location_id)
        self.on_hand[key] = self.on_hand.get(key, 0) + q
        self.delta[key] = self.delta.get(key, 0) + q
        self.rows.append({
            "variant_id": variant_id, "location_id": location_id, "kind": kind,
            "quantity": q, "balance_after": self.on_hand[key], "reason": reason,
            "reference": ref, "order_id": oid, "actor": ACTOR, "created_at": at})


async def _after_sale(db: Database, s: AsyncSession, rng: random.Random, ctx: _Context,
                      drafts: list[_DraftOrder], order_ids: list[int], move: Mover,
                      now: datetime) -> None:
    """Returns (with refunds and stock), loyalty points, NPS answers and funnel events
    of a chunk's orders, in the chunk's transaction."""
    returns_t, return_lines_t = _table("returns"), _table("return_lines")
    refunds_t, points_t = _table("refunds"), _table("loyalty_entries")
    nps_t, events_t = _table("nps_surveys"), _table("analytics_events")

    returned = [(oid, d) for oid, d in zip(order_ids, drafts, strict=True) if d.ret]
    return_ids: list[int] = []
    if returned:
        return_ids = await _insert_returning_ids(db, s, returns_t, [{
            "order_id": oid, "customer_id": d.customer_id, "code": f"RS-{oid}",
            "status": "completed", "kind": d.ret.kind, "channel": d.ret.channel,
            "location_id": d.ret.location_id, "refund_method": d.ret.refund_method,
            "refund_cents": _return_money(d), "reason": d.ret.reason, "note": "",
            "override_reason": "", "idempotency_key": None, "request_hash": None,
            "drawer_session_id": None, "receipt_no": f"R-{oid}", "exchange_order_id": None,
            "created_by": ACTOR, "created_at": d.ret.at, "received_by": ACTOR,
            "received_at": d.ret.at} for oid, d in returned if d.ret])
        line_ids = {(int(r[0]), int(r[1])): int(r[2]) for r in (await s.execute(
            select(_table("order_lines").c.order_id, _table("order_lines").c.line_no,
                   _table("order_lines").c.id)
            .where(_table("order_lines").c.order_id.in_([oid for oid, _ in returned]))
        )).all()}
        rl_rows: list[dict[str, Any]] = []
        refund_rows: list[dict[str, Any]] = []
        for rid, (oid, d) in zip(return_ids, returned, strict=True):
            ret = d.ret
            assert ret is not None
            ref = order_number(oid)
            money = _return_lines_money(d)
            for (i, q, restock), (cents, vat) in zip(ret.lines, money, strict=True):
                v = d.lines[i][0]
                rl_rows.append({
                    "return_id": rid, "order_line_id": line_ids[(oid, i + 1)],
                    "line_no": i + 1, "variant_id": v.id, "sku": v.sku, "name": v.name,
                    "quantity": q, "refund_cents": cents, "vat_rate_bp": v.vat_rate_bp,
                    "vat_cents": vat, "reason": "", "restock": restock})
                move(v.id, ret.location_id, q, "return", ret.reason, ref, oid, ret.at)
                if not restock:
                    move(v.id, ret.location_id, -q, "write_off", f"damaged: {ret.reason}",
                         ref, oid, ret.at)
            amount = sum(c for c, _ in money)
            refund_rows.append({
                "order_id": oid, "return_id": rid, "method": ret.refund_method,
                "status": "ok", "amount_cents": amount,
                "rounding_cents": round_cash(amount) - amount
                if ret.refund_method == "cash" else 0,
                "reference": _transaction_id(oid) if ret.refund_method == "paytrail" else "",
                "refund_stamp": None, "provider_refund_id": None, "gift_card_id": None,
                "location_id": ret.location_id if ret.kind == "in_store" else None,
                "drawer_session_id": None, "attempts": 0, "error": "",
                "created_by": ACTOR, "created_at": ret.at, "updated_at": ret.at})
        await _bulk_insert(db, s, return_lines_t, rl_rows)
        await _bulk_insert(db, s, refunds_t, refund_rows)

    rid_of = {oid: rid for rid, (oid, _) in zip(return_ids, returned, strict=True)}
    point_rows: list[dict[str, Any]] = []
    nps_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    rate = ctx.points_per_euro
    for oid, d in zip(order_ids, drafts, strict=True):
        if d.channel.location_id is None:
            _funnel(rng, d, oid, event_rows)
        if d.customer_id is None or not d.sold:
            continue
        earned = d.goods_cents // 100 * rate
        if earned > 0:
            point_rows.append({
                "customer_id": d.customer_id, "kind": "earn", "points": earned,
                "order_id": oid, "channel": d.channel.code, "reason": "",
                "expires_at": d.created_at + ctx.points_valid, "key": f"earn:order:{oid}",
                "created_by": ACTOR, "created_at": d.created_at})
            if d.ret is not None:
                take = min(earned, _return_money(d) // 100 * rate)
                if take > 0:
                    point_rows.append({
                        "customer_id": d.customer_id, "kind": "reverse", "points": -take,
                        "order_id": oid, "channel": d.channel.code, "reason": "return",
                        "expires_at": None, "key": f"reverse:return:{rid_of[oid]}",
                        "created_by": ACTOR, "created_at": d.ret.at})
        if rng.random() < _NPS_ASKED:
            sent = d.created_at + timedelta(minutes=rng.randint(5, 120))
            answered = rng.random() < _NPS_ANSWERED
            when = min(now, sent + timedelta(hours=rng.uniform(0.2, 72)))
            weights = _NPS_WEIGHTS["pos" if d.channel.location_id else "web"]
            nps_rows.append({
                "customer_id": d.customer_id, "order_id": oid, "token_hash": _token_hash(oid),
                "sent_at": min(sent, now),
                "score": rng.choices(_NPS_SCORES, weights)[0] if answered else None,
                "comment": rng.choice(NPS_COMMENTS) if answered and rng.random() < 0.3
                else "",
                "answered_at": when if answered else None})
    await _bulk_insert(db, s, points_t, point_rows)
    await _bulk_insert(db, s, nps_t, nps_rows)
    await _bulk_insert(db, s, events_t, event_rows)


def _event(rows: list[dict[str, Any]], at: datetime, kind: str, visitor: str | None,
           device: str, *, customer_id: int | None = None, order_id: int | None = None,
           variant_id: int | None = None, path: str = "") -> None:
    rows.append({"at": at, "kind": kind, "channel": "web", "visitor_id": visitor,
                 "customer_id": customer_id, "order_id": order_id, "variant_id": variant_id,
                 "path": path, "data": {"device": device}})


def _funnel(rng: random.Random, d: _DraftOrder, oid: int, rows: list[dict[str, Any]]) -> None:
    """The sampled funnel around one web order: maybe the order's own session, and then
    the sessions of that time that bought nothing."""
    if rng.random() >= ANALYTICS_ORDER_SHARE:
        return
    variants = [v.id for v, _ in d.lines]
    latest = d.created_at  # sessions around an order never lie in the future

    def visitor() -> str | None:  # consented visitors carry a cookie id
        return f"{rng.getrandbits(64):016x}" if rng.random() < 0.6 else None

    device = rng.choices(_DEVICES, _DEVICE_WEIGHTS)[0]
    who = visitor()
    t = d.created_at - timedelta(minutes=rng.uniform(3, 40))
    _event(rows, t, "visit", who, device, path="/")
    for vid in variants[:3]:
        t += timedelta(seconds=rng.uniform(10, 120))
        _event(rows, t, "product_view", who, device, variant_id=vid)
        _event(rows, t + timedelta(seconds=5), "add_to_cart", who, device, variant_id=vid)
    for kind in ("checkout_started", "payment_started"):
        t += timedelta(seconds=rng.uniform(20, 90))
        _event(rows, min(t, d.created_at), kind, who, device, customer_id=d.customer_id)
    _event(rows, d.created_at, "order_placed", who, device, customer_id=d.customer_id,
           order_id=oid)
    # Sessions without an order, spread over the same hours.
    for _ in range(_SESSIONS_PER_ORDER):
        device = rng.choices(_DEVICES, _DEVICE_WEIGHTS)[0]
        who = visitor()
        t = min(d.created_at + timedelta(minutes=rng.uniform(-90, 90)), latest)
        _event(rows, t, "visit", who, device, path="/")
        if rng.random() >= 0.55:
            continue
        vid = rng.choice(variants)
        _event(rows, t + timedelta(seconds=30), "product_view", who, device, variant_id=vid)
        if rng.random() >= 0.25:
            continue
        _event(rows, t + timedelta(seconds=60), "add_to_cart", who, device, variant_id=vid)
        if rng.random() >= 0.4:
            continue
        _event(rows, t + timedelta(seconds=120), "checkout_started", who, device)
        if rng.random() < 0.5:
            _event(rows, t + timedelta(seconds=180), "payment_started", who, device)
