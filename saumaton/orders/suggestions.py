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
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from saumaton.catalogue.models import Variant
from saumaton.catalogue.services import load_variant_infos
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.customers.models import CustomerPreference
from saumaton.db.session_cache import database_of
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import availability
from saumaton.locations.reference import channel_id_of
from saumaton.locations.services import pos_channel_for
from saumaton.orders.lifecycle import SOLD
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.services import business_day
from saumaton.pricing.services import resolve_prices

# Orders that count as purchases (not waiting for payment, not cancelled).
BOUGHT = tuple(SOLD)
RECENT_ORDERS = 5000
REPEAT_MIN_ORDERS = 2
REPEAT_QUIET_DAYS = 30
WEB_CHANNEL = "web"
CACHE_SECONDS = 60.0
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


async def _repeats(s: AsyncSession, customer_id: int, exclude: set[int]
                   ) -> list[tuple[int, int]]:
    """(variant, orders) bought 2+ times by the customer and not in the last 30 days."""
    quiet_since = utcnow() - timedelta(days=REPEAT_QUIET_DAYS)
    times = func.count(func.distinct(Order.id))
    rows = (await s.execute(
        select(OrderLine.variant_id, times)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.customer_id == customer_id, Order.status.in_(BOUGHT))
        .group_by(OrderLine.variant_id)
        .having(times >= REPEAT_MIN_ORDERS, func.max(Order.created_at) < quiet_since)
        .order_by(times.desc(), OrderLine.variant_id).limit(50))).all()
    return [(int(v), int(n)) for v, n in rows if int(v) not in exclude]


async def _shade(s: AsyncSession, customer_id: int, exclude: set[int]) -> list[int]:
    """Variants named as the customer's shade, in products not among `exclude`'s."""
    mine = select(Variant.product_id).where(Variant.id.in_(list(exclude)))
    rows = (await s.execute(
        select(Variant.id)
        .join(CustomerPreference, func.lower(CustomerPreference.value)
              == func.lower(Variant.name))
        .where(CustomerPreference.customer_id == customer_id,
               CustomerPreference.key == SHADE_KEY, Variant.active.is_(True),
               Variant.product_id.not_in(mine))
        .order_by(Variant.id).limit(50))).all()
    return [int(v) for (v,) in rows if int(v) not in exclude]


async def _together(s: AsyncSession, variant_ids: Sequence[int], exclude: set[int]
                    ) -> dict[int, tuple[int, int]]:
    """{other variant: (orders shared, the order's variant it shares most with)}."""
    if not variant_ids:
        return {}
    recent = (select(Order.id).where(Order.status.in_(BOUGHT))
              .order_by(Order.id.desc()).limit(RECENT_ORDERS).subquery())
    a, b = aliased(OrderLine), aliased(OrderLine)
    shared = func.count(func.distinct(a.order_id))
    rows = (await s.execute(
        select(b.variant_id, a.variant_id, shared)
        .join(b, b.order_id == a.order_id)
        .where(a.order_id.in_(select(recent.c.id)), a.variant_id.in_(list(variant_ids)),
               b.variant_id.not_in(list(exclude)))
        .group_by(b.variant_id, a.variant_id)
        .order_by(shared.desc(), b.variant_id, a.variant_id).limit(200))).all()
    best: dict[int, tuple[int, int]] = {}
    for other, mine, n in rows:
        other, mine, n = int(other), int(mine), int(n)
        if other not in best or n > best[other][0]:
            best[other] = (n, mine)
    return best


async def suggestions(s: AsyncSession, location_id: int | None, customer_id: int | None,
                      variant_ids: Sequence[int], limit: int = 4) -> list[Suggestion]:
    """Up to `limit` add-ons for an order of `variant_ids` at this store
    (`location_id`), or in the webshop (None): the customer's refills first, then her
    shade in other products, then what is often bought together."""
    exclude = set(variant_ids)
    repeats = await _repeats(s, customer_id, exclude) if customer_id is not None else []
    shade = await _shade(s, customer_id, exclude) if customer_id is not None else []
    together = await _together(s, list(exclude), exclude)
    repeat_ids = dict(repeats)
    shade_ids = [v for v in shade if v not in repeat_ids]
    candidates = list(repeat_ids) + shade_ids + sorted(
        (v for v in together if v not in repeat_ids and v not in shade_ids),
        key=lambda v: (-together[v][0], v))
    if not candidates:
        return []
    if location_id is None:
        stock = {v: a.one_order_max for v, a in (await availability(s, candidates)).items()}
    else:
        stock = dict((await s.execute(
            select(StockLevel.variant_id, StockLevel.on_hand - StockLevel.reserved)
            .where(StockLevel.location_id == location_id,
                   StockLevel.variant_id.in_(candidates)))).all())
    in_stock = [v for v in candidates if int(stock.get(v) or 0) > 0]
    if not in_stock:
        return []
    now = utcnow()
    try:
        infos = {i.id: i for i in await load_variant_infos(
            s, business_day(now), ids=set(in_stock) | exclude)}
    except DomainError:  # a variant with no VAT rate in force cannot be sold now
        return []
    channel_id = (await channel_id_of(s, WEB_CHANNEL) if location_id is None
                  else (await pos_channel_for(s, location_id)).id)
    prices = await resolve_prices(s, [infos[v] for v in in_stock if v in infos],
                                  channel_id, now)
    times = dict(repeats)
    out: list[Suggestion] = []
    seen_products: set[int] = set()
    for v in in_stock:
        info = infos.get(v)
        if info is None or not info.active or info.product_id in seen_products:
            continue
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
        seen_products.add(info.product_id)
        if len(out) >= limit:
            break
    return out


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
