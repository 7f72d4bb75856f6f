"""Add-on suggestions, one engine for every channel: the pickup counter, the till's
current sale, the webshop's cart and checkout. What the customer may want with
these items:

* refills (repeat purchases): variants this customer bought in 2 or more orders and
  not in the last 30 days (running low on their usual product);
* her shade in other products: variants named as the customer's `shade` preference
  (customer_preferences) in products not already in the order;
* often bought together: variants that share orders with the order's items, counted
  over the most recent orders.

Only variants not already in the order and for sale. At a store (`location_id`): in
stock there (on hand − reserved > 0) and priced for the store's till channel; on the
web (`location_id` None): what one web order can get (`Availability.one_order_max`)
and the web price. Prices come from the one price function (campaigns as in that
channel). A suggestion taken is marked `source='upsell'` on the cart/order line, so
the reports count add-on sales per channel (`saumaton.reports.sales`).

`cached_suggestions` keeps a result per process for a minute (the webshop's pages:
no query at all when warm, see docs/suggestions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Select, bindparam, func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from saumaton.catalogue.models import Product, Variant
from saumaton.catalogue.services import (
    VARIANT_INFO_RATE_COLUMN,
    VariantInfo,
    load_variant_infos,
    pg_variant_info_columns,
    variant_info_of,
)
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.customers.models import CustomerPreference
from saumaton.db.base import UTCDateTime
from saumaton.db.session_cache import database_of
from saumaton.db.uow import session_connection
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import availability, live_availability
from saumaton.inventory.stock_view import pg_one_order_max
from saumaton.locations.reference import channel_id_of, locations_of, pos_channel_id_of
from saumaton.orders.lifecycle import SOLD
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.services import business_day
from saumaton.pricing.book import book_prices
from saumaton.pricing.services import resolve_prices

# Orders that count as purchases (not waiting for payment, not cancelled).
BOUGHT = tuple(SOLD)
RECENT_ORDERS = 5000
REPEAT_MIN_ORDERS = 2
REPEAT_QUIET_DAYS = 30
WEB_CHANNEL = "web"
CACHE_SECONDS = 60.0
FLOOR_SECONDS = 60.0  # how long a process keeps where the recent orders begin
SHADE_KEY = "shade"
UPSELL = "upsell"  # the cart/order line's source of a suggestion taken


@dataclass(frozen=True)
class Suggestion:
    variant_id: int
    sku: str
    ean: str | None
    name: str
    price_cents: int  # what the till charges now (campaigns applied)
    list_cents: int
    available: int  # at this store (web: what one web order can get)
    reason: str  # "repeat" | "shade" | "together"
    times: int = 0  # repeat: orders the customer bought it in
    with_name: str = ""  # together: the order's item it goes with
    score: int = 0  # together: orders both were in

    @property
    def reason_text(self) -> str:
        if self.reason == "repeat":
            return f"bought {self.times} times before"
        if self.reason == "shade":
            return "in her shade"
        return f"often bought with {self.with_name}"


REPEAT, SHADE, TOGETHER = 1, 2, 3  # the candidates statement's kinds of row
_Part = Select[Any, Any, Any, Any]  # (kind, variant, n, the order's variant)


# The portable path (SQLite, or a session without its Database; PostgreSQL runs
# `_PG_LOOKUP_SQL`, the same parts in SQL of its own). The statements are built once
# per shape (with or without a customer, items, a store) with their values as
# parameters: building SQLAlchemy's aliases and sub-selects costs more CPU than the
# database spends running them.

def _repeats() -> _Part:
    """(variant, orders) bought 2+ times by the customer and not in the last 30 days
    (`quiet_since`): her orders by `ix_orders_customer_id`, their lines by order."""
    times = func.count(func.distinct(Order.id))
    return (select(literal_column(str(REPEAT)).label("kind"),
                   OrderLine.variant_id.label("variant_id"), times.label("n"),
                   literal_column("0").label("mine"))
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.customer_id == bindparam("customer_id"), Order.status.in_(BOUGHT))
            .group_by(OrderLine.variant_id)
            .having(times >= REPEAT_MIN_ORDERS, func.max(Order.created_at)
                    < bindparam("quiet_since", type_=UTCDateTime()))
            .order_by(times.desc(), OrderLine.variant_id).limit(50))


def _shade() -> _Part:
    """Variants named as the customer's shade, in products not among the `items`': her
    preference by its key, the variants by `ix_variants_lower_name`."""
    mine = select(Variant.product_id).where(
        Variant.id.in_(bindparam("items", expanding=True)))
    return (select(literal_column(str(SHADE)).label("kind"), Variant.id.label("variant_id"),
                   literal_column("0").label("n"), literal_column("0").label("mine"))
            .join(CustomerPreference, func.lower(CustomerPreference.value)
                  == func.lower(Variant.name))
            .where(CustomerPreference.customer_id == bindparam("customer_id"),
                   CustomerPreference.key == SHADE_KEY, Variant.active.is_(True),
                   Variant.product_id.not_in(mine))
            .order_by(Variant.id).limit(50))


def _recent_floor() -> Select[Any]:
    """The id of the RECENT_ORDERS-th newest sold order: the recent sold orders are
    the sold orders from it on (all of them when there are fewer: no row)."""
    return (select(Order.id).where(Order.status.in_(BOUGHT)).order_by(Order.id.desc())
            .offset(RECENT_ORDERS - 1).limit(1))


async def _floor(s: AsyncSession) -> int | None:
    """`_recent_floor`, kept in this process for FLOOR_SECONDS (it costs a walk back
    over RECENT_ORDERS orders, more than the rest of a lookup). Meanwhile the window
    grows by the orders sold since: never fewer than RECENT_ORDERS orders, and every
    new one counts at once. None: not kept (no Database), read in the statement."""
    db = database_of(s)
    if db is None:
        return None

    async def load() -> int:
        return int(await s.scalar(_recent_floor()) or 0)
    return await db.cached(("suggestions-floor",), FLOOR_SECONDS, load)


def _together(floor_known: bool) -> _Part:
    """(other variant, the order's item, orders both were in) over the recent sold
    orders, those from `floor` on (not `floor_known`: the floor read in this
    statement). The `items`' lines are read from `ix_order_lines_variant_order` within
    that range of order ids, not through every one of the recent orders' lines."""
    since: Any = (bindparam("floor", type_=BigInteger()) if floor_known
                  else func.coalesce(_recent_floor().scalar_subquery(), 0))
    a, b = aliased(OrderLine), aliased(OrderLine)
    sold = aliased(Order)
    shared = func.count(func.distinct(a.order_id))
    items: Any = bindparam("items", expanding=True)
    return (select(literal_column(str(TOGETHER)).label("kind"), b.variant_id.label("variant_id"),
                   shared.label("n"), a.variant_id.label("mine"))
            .join(sold, sold.id == a.order_id)
            .join(b, b.order_id == a.order_id)
            .where(a.variant_id.in_(items), a.order_id >= since,
                   sold.status.in_(BOUGHT), b.variant_id.not_in(items))
            .group_by(b.variant_id, a.variant_id)
            .order_by(shared.desc(), b.variant_id, a.variant_id).limit(200))


@cache
def _candidates_statement(customer: bool, items: bool, at_store: bool, floor_known: bool
                          ) -> Select[Any, Any, Any, Any, Any, Any]:
    """The parts wanted in one statement, each in a sub-select of its own so that its
    ORDER BY .. LIMIT stays its own (SQLite allows none in a compound SELECT's members);
    each candidate's gift-card flag, and at a store (`location_id`) its stock there."""
    parts = [_repeats(), _shade()] if customer else []
    if items:
        parts.append(_together(floor_known))
    subs = [p.subquery() for p in parts]
    u = union_all(*(select(q.c.kind, q.c.variant_id, q.c.n, q.c.mine) for q in subs)
                  ).subquery()
    stmt = (select(u.c.kind, u.c.variant_id, u.c.n, u.c.mine, Product.gift_card,
                   (StockLevel.on_hand - StockLevel.reserved) if at_store
                   else literal_column("NULL"))
            .join(Variant, Variant.id == u.c.variant_id)
            .join(Product, Product.id == Variant.product_id))
    if at_store:
        stmt = stmt.outerjoin(StockLevel, (StockLevel.variant_id == u.c.variant_id)
                              & (StockLevel.location_id == bindparam("location_id")))
    return stmt


@dataclass
class _Candidates:
    repeats: list[tuple[int, int]]  # (variant, orders), most bought first
    shade: list[int]
    together: dict[int, tuple[int, int]]  # other variant: (orders shared, the item)
    gift_cards: set[int]
    # At a store: on hand − reserved there (absent: no level row). PostgreSQL's one
    # statement: on the web too, what one web order can get.
    here: dict[int, int]
    # PostgreSQL's one statement: the variants (candidates and items) as
    # `variant_info_of` reads them.
    variants: dict[int, Sequence[Any]] | None = None


async def _candidates(s: AsyncSession, location_id: int | None, customer_id: int | None,
                      variant_ids: Sequence[int], exclude: set[int]) -> _Candidates:
    """Refills, her shade and what is bought together, as one statement (one round
    trip): each part keeps its own order and limit. The gift-card flag of each
    candidate comes along (the web's stock needs it), and at a store its stock there."""
    found = _Candidates([], [], {}, set(), {})
    if customer_id is None and not variant_ids:
        return found
    floor = await _floor(s) if variant_ids else None
    stmt = _candidates_statement(customer_id is not None, bool(variant_ids),
                                 location_id is not None, floor is not None)
    params: dict[str, Any] = {"items": list(variant_ids), "customer_id": customer_id,
                              "floor": floor, "location_id": location_id}
    if customer_id is not None:
        params["quiet_since"] = utcnow() - timedelta(days=REPEAT_QUIET_DAYS)
    repeats: list[tuple[int, int]] = []
    pairs: list[tuple[int, int, int]] = []
    for kind, v, n, mine, gift_card, here in (await s.execute(stmt, params)).all():
        v, n, mine = int(v), int(n), int(mine)
        if gift_card:
            found.gift_cards.add(v)
        if here is not None:
            found.here[v] = int(here)
        if kind == REPEAT:
            repeats.append((v, n))
        elif kind == SHADE:
            found.shade.append(v)
        else:
            pairs.append((v, mine, n))
    _in_order(found, repeats, pairs, exclude)
    return found


def _in_order(found: _Candidates, repeats: list[tuple[int, int]],
              pairs: list[tuple[int, int, int]], exclude: set[int]) -> None:
    """The order each part's ORDER BY gave (a compound statement keeps none)."""
    found.repeats = [(v, n) for v, n in sorted(repeats, key=lambda r: (-r[1], r[0]))
                     if v not in exclude]
    found.shade = [v for v in sorted(found.shade) if v not in exclude]
    for other, mine, n in sorted(pairs, key=lambda r: (-r[2], r[0], r[1])):
        if other not in found.together or n > found.together[other][0]:
            found.together[other] = (n, mine)


# PostgreSQL: the whole lookup as one constant prepared statement (one round trip): the
# candidates as `_candidates_statement` finds them, each with its variant (as
# `load_variant_infos` reads it) and its stock (at a store on hand − reserved there, on
# the web what one web order can get), and the items' own variants (kind ITEM: their VAT
# rate and names). $1 the items, $2 the customer (NULL: none), $3 where the recent sold
# orders begin (`_floor`), $4 quiet since, $5 the business day, $6 the store (NULL: the
# web), $7 and $8 the locations that ship web orders and the pickup points (the
# process's copy, as `live_availability` takes them). Every value is read through a
# sub-select, so that after PostgreSQL's five tailored plans the generic one is kept
# (saumaton.db.uow: generic plans): planning the statement anew cost more than running
# it. Each candidate's variant is read in a lateral sub-select kept apart (OFFSET 0) so
# that it stays a lookup by primary key: the generic plan, not knowing how few
# candidates there are, hashed every variant. The stock is one figure per candidate, not
# its level rows: building an Availability of each of up to a hundred candidates in
# Python cost more than the statement.
ITEM = 0
_SOLD_SQL = ", ".join(f"'{status.value}'" for status in sorted(BOUGHT))
_PG_LOOKUP_SQL = f"""
SELECT c.kind, c.n, c.mine, x.*,
       CASE WHEN c.kind = {ITEM} THEN NULL
            WHEN (SELECT $6::int) IS NULL THEN {pg_one_order_max(
                "c.variant_id", "x.gift_card", "(SELECT $7::int[])::int[]",
                "(SELECT $8::int[])::int[]")}
            ELSE (SELECT sl.on_hand - sl.reserved FROM stock_levels sl
                  WHERE sl.variant_id = c.variant_id AND sl.location_id = (SELECT $6::int))
       END
FROM (
  (SELECT {REPEAT} AS kind, l.variant_id, count(DISTINCT o.id) AS n, 0 AS mine
   FROM orders o JOIN order_lines l ON l.order_id = o.id
   WHERE o.customer_id = (SELECT $2::bigint) AND o.status IN ({_SOLD_SQL})
   GROUP BY l.variant_id
   HAVING count(DISTINCT o.id) >= {REPEAT_MIN_ORDERS}
          AND max(o.created_at) < (SELECT $4::timestamptz)
   ORDER BY 3 DESC, 2 LIMIT 50)
  UNION ALL
  (SELECT {SHADE}, v.id, 0, 0
   FROM customer_preferences cp JOIN variants v ON lower(v.name) = lower(cp.value)
   WHERE cp.customer_id = (SELECT $2::bigint) AND cp.key = '{SHADE_KEY}' AND v.active
     AND v.product_id NOT IN (SELECT i.product_id FROM variants i
                              WHERE i.id = ANY((SELECT $1::int[])::int[]))
   ORDER BY v.id LIMIT 50)
  UNION ALL
  (SELECT {TOGETHER}, b.variant_id, count(DISTINCT a.order_id), a.variant_id
   FROM order_lines a JOIN orders o ON o.id = a.order_id
        JOIN order_lines b ON b.order_id = a.order_id
   WHERE a.variant_id = ANY((SELECT $1::int[])::int[]) AND a.order_id >= (SELECT $3::bigint)
     AND o.status IN ({_SOLD_SQL}) AND b.variant_id <> ALL((SELECT $1::int[])::int[])
   GROUP BY b.variant_id, a.variant_id
   ORDER BY 3 DESC, 2, 4 LIMIT 200)
  UNION ALL
  SELECT {ITEM}, i.id, 0, 0 FROM unnest((SELECT $1::int[])::int[]) AS i(id)
) c (kind, variant_id, n, mine)
CROSS JOIN LATERAL (
  SELECT {pg_variant_info_columns("(SELECT $5::date)")}
  FROM variants v JOIN products p ON p.id = v.product_id
  WHERE v.id = c.variant_id OFFSET 0) x"""
_INFO = slice(3, 14)  # the row's `pg_variant_info_columns`
_STOCK = 14


async def _web_places(s: AsyncSession) -> tuple[list[int], list[int]]:
    """The ids of the locations that ship web orders and of the pickup points, from
    this process's copy of the locations."""
    places = await locations_of(s)
    return ([p.id for p in places if p.ships_web_orders],
            [p.id for p in places if p.pickup_point])


async def _candidates_pg(s: AsyncSession, location_id: int | None, customer_id: int | None,
                         variant_ids: Sequence[int], exclude: set[int], day: date
                         ) -> _Candidates:
    """`_candidates` and what `suggestions` reads after it (the candidates' stock, the
    variants) in one statement on PostgreSQL."""
    found = _Candidates([], [], {}, set(), {}, {})
    if customer_id is None and not variant_ids:
        return found
    floor = await _floor(s) if variant_ids else 0
    ships: list[int] = []
    pickups: list[int] = []
    if location_id is None:
        ships, pickups = await _web_places(s)
    conn = await session_connection(s)
    rows = await conn.fetch(_PG_LOOKUP_SQL, list(variant_ids), customer_id, floor,
                            utcnow() - timedelta(days=REPEAT_QUIET_DAYS), day, location_id,
                            ships, pickups)
    variants: dict[int, Sequence[Any]] = {}
    stock = found.here
    repeats: list[tuple[int, int]] = []
    pairs: list[tuple[int, int, int]] = []
    for r in rows:
        kind, v = r[0], r[3]
        if v not in variants:
            variants[v] = r[_INFO]
        if kind == ITEM:
            continue
        if r[_STOCK] is not None:  # at a store: absent without a level row there
            stock[v] = r[_STOCK]
        if kind == REPEAT:
            repeats.append((v, r[1]))
        elif kind == SHADE:
            found.shade.append(v)
        else:
            pairs.append((v, r[2], r[1]))
    found.variants = variants
    _in_order(found, repeats, pairs, exclude)
    return found


async def _web_stock(s: AsyncSession, candidates: list[int], gift_cards: set[int]
                     ) -> dict[int, int]:
    """What one web order can get of each candidate (the locations from this process's
    copy, the levels read live)."""
    db = database_of(s)
    found = (await live_availability(db, s, candidates, gift_cards) if db is not None
             else await availability(s, candidates))
    return {v: a.one_order_max for v, a in found.items()}


async def suggestions(s: AsyncSession, location_id: int | None, customer_id: int | None,
                      variant_ids: Sequence[int], limit: int = 4) -> list[Suggestion]:
    """Up to `limit` add-ons for an order of `variant_ids` at this store
    (`location_id`), or in the webshop (None): the customer's refills first, then her
    shade in other products, then what is often bought together. On PostgreSQL one
    statement at a store and on the web alike (`_PG_LOOKUP_SQL`: the candidates with
    their stock and variants); elsewhere the candidates (at a store with their stock
    there), on the web their stock, and the variants. The channel, the locations, the
    campaigns and where the recent orders begin come from this process's copies."""
    exclude = set(variant_ids)
    now = utcnow()
    day = business_day(now)
    db = database_of(s)
    pg = db is not None and db.is_postgres
    found = (await _candidates_pg(s, location_id, customer_id, list(exclude), exclude, day)
             if pg else
             await _candidates(s, location_id, customer_id, list(exclude), exclude))
    together = found.together
    repeat_ids = dict(found.repeats)
    shade_ids = [v for v in found.shade if v not in repeat_ids]
    candidates = list(repeat_ids) + shade_ids + sorted(
        (v for v in together if v not in repeat_ids and v not in shade_ids),
        key=lambda v: (-together[v][0], v))
    if not candidates:
        return []
    stock = (found.here if location_id is not None or pg
             else await _web_stock(s, candidates, found.gift_cards))
    in_stock = [v for v in candidates if int(stock.get(v) or 0) > 0]
    if not in_stock:
        return []
    wanted = set(in_stock) | exclude
    try:
        infos = (_Infos(found.variants, wanted, day) if found.variants is not None
                 else {i.id: i for i in await load_variant_infos(s, day, ids=wanted)})
    except DomainError:  # a variant with no VAT rate in force cannot be sold now
        return []
    # The first `limit` of them for sale, one per product; then only those priced (each
    # variant's price is its own).
    chosen: list[VariantInfo] = []
    seen_products: set[int] = set()
    for v in in_stock:
        info = infos.get(v)
        if info is None or not info.active or info.product_id in seen_products:
            continue
        chosen.append(info)
        seen_products.add(info.product_id)
        if len(chosen) >= limit:
            break
    channel_id = (await channel_id_of(s, WEB_CHANNEL) if location_id is None
                  else await pos_channel_id_of(s, location_id))
    prices = (await book_prices(db, s, chosen, channel_id, now) if db is not None
              else await resolve_prices(s, chosen, channel_id, now))
    times = dict(found.repeats)
    out: list[Suggestion] = []
    for info in chosen:
        v = info.id
        price = prices.get(v)
        n, mine = together.get(v, (0, 0))
        mine_info = infos.get(mine)
        out.append(Suggestion(
            variant_id=v, sku=info.sku, ean=info.ean, name=info.name,
            price_cents=price.price_cents if price else info.price_cents,
            list_cents=info.price_cents, available=int(stock[v]),
            reason=("repeat" if v in times else "shade" if v in shade_ids else "together"),
            times=times.get(v, 0),
            with_name=(mine_info.name if mine_info and v not in times and v not in shade_ids
                       else ""), score=n))
    return out


class _Infos:
    """The `wanted` variants' infos from the lookup's rows, as `load_variant_infos`
    reads them (the same error when one has no VAT rate in force), each made when
    first asked for: the engine looks at a few of up to a hundred."""

    def __init__(self, variants: dict[int, Sequence[Any]], wanted: set[int], day: date
                 ) -> None:
        for v in wanted:
            row = variants.get(v)
            if row is not None and row[VARIANT_INFO_RATE_COLUMN] is None:
                variant_info_of(row, day)  # raises, as load_variant_infos would
        self._rows = {v: variants[v] for v in wanted if v in variants}
        self._day = day
        self._made: dict[int, VariantInfo] = {}

    def get(self, v: int) -> VariantInfo | None:
        info = self._made.get(v)
        if info is None:
            row = self._rows.get(v)
            if row is None:
                return None
            info = self._made[v] = variant_info_of(row, day=self._day)
        return info


async def cached_suggestions(s: AsyncSession, location_id: int | None,
                             customer_id: int | None, variant_ids: Sequence[int],
                             limit: int = 4) -> list[Suggestion]:
    """`suggestions`, kept in this process for a minute per (place, customer, items):
    the webshop's cart and checkout pages ask on every view. A campaign or stock
    change shows within the minute; the cart prices an added line afresh."""
    db = database_of(s)
    if db is None:
        return await suggestions(s, location_id, customer_id, variant_ids, limit)
    key = ("suggestions", location_id, customer_id, tuple(sorted(set(variant_ids))), limit)

    async def load() -> list[Suggestion]:
        return await suggestions(s, location_id, customer_id, variant_ids, limit)

    return await db.cached(key, CACHE_SECONDS, load, topics=("campaign.changed", "price.changed"))
