"""Add-on sales per channel: order lines taken from the suggestions (`source` 'upsell',
see `saumaton.orders.suggestions`), in orders that count as sold, placed in the period.

A figure of its own beside the sales per channel: how many orders took an add-on, the
add-ons' units and their sales (VAT incl., after discounts), and their share of the
channel's goods sales in the same orders' period.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.locations.models import Channel
from saumaton.orders.lifecycle import SOLD
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.suggestions import UPSELL
from saumaton.reports.period import Period
from saumaton.reports.sales import Scope


@dataclass(frozen=True)
class AddonRow:
    channel_id: int
    channel: str
    orders: int  # orders with at least one add-on
    units: int
    sales_cents: int  # the add-on lines' totals
    goods_cents: int  # every line of the channel's sold orders in the period

    @property
    def share_bp(self) -> int | None:
        """The add-ons' part of the channel's goods sales, in basis points."""
        return None if not self.goods_cents else self.sales_cents * 10_000 // self.goods_cents


async def addon_sales(s: AsyncSession, period: Period, *, tz: str,
                      scope: Scope = Scope()) -> list[AddonRow]:
    """One row per channel that sold anything in `period` (as `scope` may see it)."""
    start, end = period.bounds(tz)
    upsell = OrderLine.source == UPSELL
    where = [Order.status.in_([st.value for st in SOLD]), Order.created_at >= start,
             Order.created_at < end]
    if scope.locations is not None:
        where.append(Order.location_id.in_(list(scope.locations)))
    rows = (await s.execute(
        select(Order.channel_id, Channel.name,
               func.count(func.distinct(case((upsell, Order.id)))),
               func.coalesce(func.sum(case((upsell, OrderLine.quantity), else_=0)), 0),
               func.coalesce(func.sum(case((upsell, OrderLine.total_cents), else_=0)), 0),
               func.coalesce(func.sum(OrderLine.total_cents), 0))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Channel, Channel.id == Order.channel_id)
        .where(and_(*where))
        .group_by(Order.channel_id, Channel.name)
        .order_by(Channel.name))).all()
    return [AddonRow(int(c), str(n), int(o), int(u), int(a), int(g))
            for c, n, o, u, a, g in rows]
