"""The sales report's detail pages, read live from the order book over the period (one
grouped query each, on the orders-by-day indexes): top products and categories, sales
per staff member per store, returns by reason and channel. The same definitions as the
summary (saumaton.reports.summary)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from saumaton.catalogue.models import Category, Product, Variant
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order, OrderLine
from saumaton.reports.period import Period
from saumaton.reports.sales import Scope, Source, View, split_days
from saumaton.reports.summary import (
    is_sale,
    live_item_day,
    return_moment_in,
    sale_moment_in,
    sold_location,
    stored_item_rows,
)
from saumaton.returns.models import Return, ReturnLine

TOP = 20


@dataclass(frozen=True)
class ItemFigures:
    """A product or a category: goods sold and returned in the period."""

    key: int | None
    code: str  # SKU, or "" for a category
    name: str
    units_sold: int
    sales_cents: int  # VAT incl.
    sales_vat_cents: int
    returns_cents: int
    units_returned: int
    costed_net_cents: int
    cost_cents: int

    @property
    def net_cents(self) -> int:
        return self.sales_cents - self.returns_cents

    @property
    def margin_cents(self) -> int:
        return self.costed_net_cents - self.cost_cents


def _scoped(expr: ColumnElement[Any] | InstrumentedAttribute[Any], scope: Scope
            ) -> list[ColumnElement[bool]]:
    if scope.locations is None:
        return []
    return [expr.in_(sorted(scope.locations))]


async def top_items(s: AsyncSession, period: Period, *, tz: str, by: str = "product",
                    view: View = View.SOLD, scope: Scope = Scope(None), limit: int = TOP,
                    source: Source = "auto") -> list[ItemFigures]:
    """The best-selling products (by="product", per variant) or categories
    (by="category") by net sales, returns taken off: the per-variant daily summary for
    the days it holds, the order book for the rest (as the channel report)."""
    stored, live = await split_days(s, period, tz, source=source)
    rows = await stored_item_rows(s, stored)
    for d in live:
        rows.extend(await live_item_day(s, d, tz))
    rows = [r for r in rows if scope.allows(
        r.location_id if view is View.SOLD else r.fulfil_location_id)]
    variants = {r.variant_id for r in rows}
    info: dict[int, tuple[str, str, int | None]] = {}
    if variants:
        info = {r[0]: (r[1], f"{r[2]} – {r[3]}" if r[3] else r[2], r[4])
                for r in (await s.execute(
                    select(Variant.id, Variant.sku, Product.name, Variant.name,
                           Product.category_id)
                    .join(Product, Product.id == Variant.product_id)
                    .where(Variant.id.in_(sorted(variants))))).all()}
    sums: dict[int | None, list[int]] = {}
    for r in rows:
        key = info.get(r.variant_id, ("", "", None))[2] if by == "category" else r.variant_id
        acc = sums.setdefault(key, [0] * 7)
        if r.kind == "sale":
            acc[0] += r.units
            acc[1] += r.gross_cents
            acc[2] += r.vat_cents
            acc[5] += r.costed_net_cents
            acc[6] += r.cost_cents
        else:
            acc[3] += r.gross_cents
            acc[4] += r.units
            acc[5] -= r.costed_net_cents
            acc[6] -= r.cost_cents
    names: dict[int | None, tuple[str, str]] = {}
    if by == "category":
        ids = [k for k in sums if k is not None]
        names = {c.id: ("", c.name) for c in (await s.scalars(
            select(Category).where(Category.id.in_(ids)))).all()} if ids else {}
    else:
        names = {k: (v[0], v[1]) for k, v in info.items()}
    out = [ItemFigures(k, *names.get(k, ("", "")), *acc) for k, acc in sums.items()]
    out.sort(key=lambda i: (-i.net_cents, i.name))
    return out[:limit]


@dataclass(frozen=True)
class StaffFigures:
    location_id: int
    location: str
    staff: str  # the order's created_by: "staff:3 anna@shop.fi"
    orders: int
    sales_cents: int  # goods, VAT incl.
    units: int

    @property
    def average_basket_cents(self) -> int | None:
        return round(self.sales_cents / self.orders) if self.orders else None


async def staff_sales(s: AsyncSession, period: Period, *, tz: str,
                      scope: Scope = Scope(None)) -> list[StaffFigures]:
    """Sales made in the stores (till and counter sales) per store and staff member."""
    start, end = period.bounds(tz)
    q = (select(Order.location_id, Location.name, Order.created_by,
                func.count(func.distinct(Order.id)), func.sum(OrderLine.total_cents),
                func.sum(OrderLine.quantity))
         .select_from(OrderLine).join(Order, Order.id == OrderLine.order_id)
         .join(Location, Location.id == Order.location_id)
         .join(Variant, Variant.id == OrderLine.variant_id)
         .join(Product, Product.id == Variant.product_id)
         .where(sale_moment_in(start, end), is_sale(), Order.delivery_method.is_(None),
                Order.location_id.is_not(None), Product.gift_card.is_(False),
                *_scoped(Order.location_id, scope))
         .group_by(Order.location_id, Location.name, Order.created_by))
    rows = [StaffFigures(int(r[0] or 0), r[1], r[2], int(r[3]), int(r[4] or 0), int(r[5] or 0))
            for r in (await s.execute(q)).all()]
    rows.sort(key=lambda f: (f.location, -f.sales_cents, f.staff))
    return rows


@dataclass(frozen=True)
class ReturnReason:
    reason: str
    channel: str  # the sale's channel
    returned_at: str  # where the goods came back ("" = by post to the webshop)
    lines: int
    units: int
    refund_cents: int
    vat_cents: int


async def returns_by_reason(s: AsyncSession, period: Period, *, tz: str,
                            view: View = View.SOLD, scope: Scope = Scope(None)
                            ) -> list[ReturnReason]:
    """Completed returns per reason (the line's, else the return's), the sale's channel and where
    they came back."""
    start, end = period.bounds(tz)
    where = sold_location() if view is View.SOLD else Return.location_id
    # A line's own reason, else the return's.
    reason = func.coalesce(func.nullif(ReturnLine.reason, literal_column("''")), Return.reason)
    q = (select(reason, Channel.name, Location.name, func.count(),
                func.sum(ReturnLine.quantity), func.sum(ReturnLine.refund_cents),
                func.sum(ReturnLine.vat_cents))
         .select_from(ReturnLine).join(Return, Return.id == ReturnLine.return_id)
         .join(Order, Order.id == Return.order_id)
         .join(Channel, Channel.id == Order.channel_id)
         .outerjoin(Location, Location.id == Return.location_id)
         .where(Return.status == "completed", return_moment_in(start, end),
                *_scoped(where, scope))
         .group_by(reason, Channel.name, Location.name))
    rows = [ReturnReason(r[0] or "", r[1], r[2] or "", int(r[3]), int(r[4] or 0),
                         int(r[5] or 0), int(r[6] or 0)) for r in (await s.execute(q)).all()]
    rows.sort(key=lambda r: (-r.refund_cents, r.reason, r.channel))
    return rows
