"""Add-on suggestions at the till: what the customer may want with this order.

Two sources, both from the one order book:

* repeat purchases: variants this customer bought in 2 or more orders and not in
  the last 30 days (running low on their usual shade);
* often bought together: variants that share orders with the order's items, counted
  over the most recent orders.

Only variants not already in the order, for sale, and in stock at this store
(on hand − reserved > 0), priced for the store's till channel with the one price
function (campaigns as at the till).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from saumaton.catalogue.services import load_variant_infos
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.inventory.models import StockLevel
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


@dataclass(frozen=True)
class Suggestion:
    variant_id: int
    sku: str
    ean: str | None
    name: str
    price_cents: int  # what the till charges now (campaigns applied)
    list_cents: int
    available: int  # at this store
    reason: str  # "repeat" | "together"
    times: int = 0  # repeat: orders the customer bought it in
    with_name: str = ""  # together: the order's item it goes with
    score: int = 0  # together: orders both were in

    @property
    def reason_text(self) -> str:
        if self.reason == "repeat":
            return f"bought {self.times} times before"
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


async def suggestions(s: AsyncSession, location_id: int, customer_id: int | None,
                      variant_ids: Sequence[int], limit: int = 4) -> list[Suggestion]:
    """Up to `limit` add-ons for an order of `variant_ids` at this store: the
    customer's repeat purchases first, then what is often bought together."""
    exclude = set(variant_ids)
    repeats = await _repeats(s, customer_id, exclude) if customer_id is not None else []
    together = await _together(s, list(exclude), exclude)
    candidates = [v for v, _ in repeats] + sorted(
        (v for v in together if v not in dict(repeats)),
        key=lambda v: (-together[v][0], v))
    if not candidates:
        return []
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
    channel = await pos_channel_for(s, location_id)
    prices = await resolve_prices(s, [infos[v] for v in in_stock if v in infos],
                                  channel.id, now)
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
            reason="repeat" if v in times else "together", times=times.get(v, 0),
            with_name=mine_info.name if mine_info and v not in times else "", score=n))
        seen_products.add(info.product_id)
        if len(out) >= limit:
            break
    return out
