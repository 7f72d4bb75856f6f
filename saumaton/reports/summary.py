"""The daily sales figures: one SELECT per business day that both fills the summary
table `sales_daily` (the reports job) and answers a report live for the days the
summary does not cover yet. The same statement on SQLite and PostgreSQL.

Definitions (docs/reports.md): a sale is an order that is neither `pending` nor
`cancelled`, on the business day of `sold_at` (an offline till sale) else `created_at`;
gift card lines are not sales (kind "giftcard"); a return counts when completed, on
the business day of `received_at` else `created_at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.catalogue.models import Product, Variant
from saumaton.orders.models import Order, OrderLine
from saumaton.reports.models import SalesDaily, SalesDailyItem
from saumaton.reports.period import Period
from saumaton.returns.models import Return, ReturnLine

# Statuses that are not (or no longer) a sale.
NOT_SALES = ("pending", "cancelled")

COLUMNS = ("day", "kind", "channel_id", "location_id", "fulfil_location_id", "vat_rate_bp",
           "gross_cents", "vat_cents", "costed_net_cents", "cost_cents", "units", "orders")


@dataclass(frozen=True)
class DayRow:
    """One row of `sales_daily` (or the same figures computed live)."""

    day: date
    kind: str
    channel_id: int
    location_id: int | None
    fulfil_location_id: int | None
    vat_rate_bp: int
    gross_cents: int
    vat_cents: int
    costed_net_cents: int
    cost_cents: int
    units: int
    orders: int


def sale_moment_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    """The order's sale moment (sold_at, else created_at) is in [start, end); written as
    two index ranges (ix_orders_sold_at, ix_orders_created_at)."""
    return or_(and_(Order.sold_at.is_(None), Order.created_at >= start,
                    Order.created_at < end),
               and_(Order.sold_at >= start, Order.sold_at < end))


def return_moment_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return or_(and_(Return.received_at.is_(None), Return.created_at >= start,
                    Return.created_at < end),
               and_(Return.received_at >= start, Return.received_at < end))


def is_sale() -> ColumnElement[bool]:
    return Order.status.not_in(NOT_SALES)


def sold_location() -> ColumnElement[int | None]:
    """Where sold: the store of a sale made there; a web order (home delivery or click &
    collect) is sold by the webshop, no location."""
    return case((Order.delivery_method.is_(None), Order.location_id), else_=None)


def line_fulfil_location() -> ColumnElement[int | None]:
    """Where a line was fulfilled: click & collect at the pickup store, otherwise the
    location the goods left from (the store for a till sale)."""
    return case((Order.delivery_method == literal_column("'pickup'"), Order.location_id),
                else_=func.coalesce(OrderLine.location_id, Order.location_id))


def _consts(day: date, kind: str) -> list[ColumnElement[Any]]:
    return [literal(day, Date).label("day"), literal(kind, String).label("kind")]


def _lines(day: date, start: datetime, end: datetime) -> Select[Any]:
    """Goods sold ("sale") and gift cards sold ("giftcard") in one pass over the day's
    lines."""
    sold, fulfil = sold_location(), line_fulfil_location()
    known = OrderLine.unit_cost_cents.is_not(None)
    kind = case((Product.gift_card.is_(True), literal_column("'giftcard'")),
                else_=literal_column("'sale'"))
    return (
        select(literal(day, Date).label("day"), kind.label("kind"), Order.channel_id,
               sold.label("location_id"), fulfil.label("fulfil_location_id"),
               OrderLine.vat_rate_bp,
               func.sum(OrderLine.total_cents).label("gross_cents"),
               func.sum(OrderLine.vat_cents).label("vat_cents"),
               func.sum(case((known, OrderLine.total_cents - OrderLine.vat_cents),
                             else_=0)).label("costed_net_cents"),
               func.sum(func.coalesce(OrderLine.unit_cost_cents * OrderLine.quantity, 0)
                        ).label("cost_cents"),
               func.sum(OrderLine.quantity).label("units"),
               literal_column("0", Integer).label("orders"))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(sale_moment_in(start, end), is_sale())
        .group_by(kind, Order.channel_id, sold, fulfil, OrderLine.vat_rate_bp))


def _orders(day: date, start: datetime, end: datetime) -> list[Select[Any]]:
    """Delivery fees (per their VAT rate) and the count of orders with goods in them."""
    first_line_at = (select(func.min(OrderLine.location_id))
                     .where(OrderLine.order_id == Order.id).scalar_subquery())
    goods = exists().where(
        OrderLine.order_id == Order.id, Variant.id == OrderLine.variant_id,
        Product.id == Variant.product_id, Product.gift_card.is_(False))
    inner = (
        select(Order.channel_id, sold_location().label("location_id"),
               case((Order.delivery_method == literal_column("'pickup'"), Order.location_id),
                    else_=func.coalesce(Order.location_id, first_line_at)
                    ).label("fulfil_location_id"),
               Order.delivery_vat_rate_bp, Order.delivery_fee_cents, Order.delivery_vat_cents,
               case((goods, 1), else_=0).label("goods"))
        .where(sale_moment_in(start, end), is_sale())
        .subquery())
    keys = (inner.c.channel_id, inner.c.location_id, inner.c.fulfil_location_id)
    zero = literal_column("0", Integer)
    delivery = (
        select(*_consts(day, "delivery"), *keys, inner.c.delivery_vat_rate_bp,
               func.sum(inner.c.delivery_fee_cents), func.sum(inner.c.delivery_vat_cents),
               zero, zero, zero, zero)
        .where(inner.c.delivery_fee_cents != 0)
        .group_by(*keys, inner.c.delivery_vat_rate_bp))
    orders = (
        select(*_consts(day, "order"), *keys, zero, zero, zero, zero, zero, zero,
               func.sum(inner.c.goods))
        .where(inner.c.goods == 1)
        .group_by(*keys))
    return [delivery, orders]


def _returns(day: date, start: datetime, end: datetime) -> Select[Any]:
    sold = sold_location()
    known = OrderLine.unit_cost_cents.is_not(None)
    return (
        select(*_consts(day, "return"), Order.channel_id, sold.label("location_id"),
               Return.location_id.label("fulfil_location_id"), ReturnLine.vat_rate_bp,
               func.sum(ReturnLine.refund_cents), func.sum(ReturnLine.vat_cents),
               func.sum(case((known, ReturnLine.refund_cents - ReturnLine.vat_cents),
                             else_=0)),
               func.sum(func.coalesce(OrderLine.unit_cost_cents * ReturnLine.quantity, 0)),
               func.sum(ReturnLine.quantity), literal_column("0", Integer))
        .select_from(ReturnLine)
        .join(Return, Return.id == ReturnLine.return_id)
        .join(Order, Order.id == Return.order_id)
        .join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
        .join(Variant, Variant.id == ReturnLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(Return.status == "completed", return_moment_in(start, end),
               Product.gift_card.is_(False))
        .group_by(Order.channel_id, sold, Return.location_id, ReturnLine.vat_rate_bp))


def day_select(day: date, tz: str) -> Select[Any]:
    """Every summary row of one business day, in `COLUMNS` order."""
    start, end = Period.day(day).bounds(tz)
    parts = [_lines(day, start, end), *_orders(day, start, end), _returns(day, start, end)]
    return union_all(*parts)  # type: ignore[return-value]


def _row(r: Sequence[Any]) -> DayRow:
    values = tuple(r)
    day = values[0]
    if isinstance(day, str):  # SQLite hands a literal date back as text
        day = date.fromisoformat(day)
    loc = values[3]
    fulfil = values[4]
    return DayRow(day, str(values[1]), int(values[2]), None if loc is None else int(loc),
                  None if fulfil is None else int(fulfil), int(values[5] or 0),
                  *(int(v or 0) for v in values[6:]))


async def live_day(s: AsyncSession, day: date, tz: str) -> list[DayRow]:
    """A day's rows straight from the order book."""
    return [_row(r) for r in (await s.execute(day_select(day, tz))).all()]


async def stored_rows(s: AsyncSession, days: list[date]) -> list[DayRow]:
    """The summary's rows of these days."""
    if not days:
        return []
    t = SalesDaily
    q = select(t.day, t.kind, t.channel_id, t.location_id, t.fulfil_location_id,
               t.vat_rate_bp, t.gross_cents, t.vat_cents, t.costed_net_cents, t.cost_cents,
               t.units, t.orders)
    if len(days) == (days[-1] - days[0]).days + 1:
        q = q.where(t.day >= days[0], t.day <= days[-1])
    else:
        q = q.where(t.day.in_(days))
    return [_row(r) for r in (await s.execute(q)).all()]


ITEM_COLUMNS = ("day", "kind", "variant_id", "location_id", "fulfil_location_id", "units",
                "gross_cents", "vat_cents", "costed_net_cents", "cost_cents")


def item_day_select(day: date, tz: str) -> Select[Any]:
    """Goods sold and returned on one business day per variant, in `ITEM_COLUMNS` order."""
    start, end = Period.day(day).bounds(tz)
    sold, fulfil = sold_location(), line_fulfil_location()
    known = OrderLine.unit_cost_cents.is_not(None)
    sales = (
        select(*_consts(day, "sale"), OrderLine.variant_id, sold, fulfil,
               func.sum(OrderLine.quantity), func.sum(OrderLine.total_cents),
               func.sum(OrderLine.vat_cents),
               func.sum(case((known, OrderLine.total_cents - OrderLine.vat_cents), else_=0)),
               func.sum(func.coalesce(OrderLine.unit_cost_cents * OrderLine.quantity, 0)))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(sale_moment_in(start, end), is_sale(), Product.gift_card.is_(False))
        .group_by(OrderLine.variant_id, sold, fulfil))
    r_sold = sold_location()
    back = (
        select(*_consts(day, "return"), ReturnLine.variant_id, r_sold, Return.location_id,
               func.sum(ReturnLine.quantity), func.sum(ReturnLine.refund_cents),
               func.sum(ReturnLine.vat_cents),
               func.sum(case((known, ReturnLine.refund_cents - ReturnLine.vat_cents),
                             else_=0)),
               func.sum(func.coalesce(OrderLine.unit_cost_cents * ReturnLine.quantity, 0)))
        .select_from(ReturnLine)
        .join(Return, Return.id == ReturnLine.return_id)
        .join(Order, Order.id == Return.order_id)
        .join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
        .join(Variant, Variant.id == ReturnLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(Return.status == "completed", return_moment_in(start, end),
               Product.gift_card.is_(False))
        .group_by(ReturnLine.variant_id, r_sold, Return.location_id))
    return union_all(sales, back)  # type: ignore[return-value]


@dataclass(frozen=True)
class ItemRow:
    kind: str
    variant_id: int
    location_id: int | None
    fulfil_location_id: int | None
    units: int
    gross_cents: int
    vat_cents: int
    costed_net_cents: int
    cost_cents: int


def _item(values: Sequence[Any]) -> ItemRow:
    loc, fulfil = values[2], values[3]
    return ItemRow(str(values[0]), int(values[1]), None if loc is None else int(loc),
                   None if fulfil is None else int(fulfil),
                   *(int(v or 0) for v in values[4:]))


async def live_item_day(s: AsyncSession, day: date, tz: str) -> list[ItemRow]:
    return [_item(tuple(r)[1:]) for r in (await s.execute(item_day_select(day, tz))).all()]


async def stored_item_rows(s: AsyncSession, days: list[date]) -> list[ItemRow]:
    """The per-variant summary of these days, summed over the days."""
    if not days:
        return []
    t = SalesDailyItem
    keys = (t.kind, t.variant_id, t.location_id, t.fulfil_location_id)
    q = select(*keys, func.sum(t.units), func.sum(t.gross_cents), func.sum(t.vat_cents),
               func.sum(t.costed_net_cents), func.sum(t.cost_cents)).group_by(*keys)
    if len(days) == (days[-1] - days[0]).days + 1:
        q = q.where(t.day >= days[0], t.day <= days[-1])
    else:
        q = q.where(t.day.in_(days))
    return [_item(tuple(r)) for r in (await s.execute(q)).all()]


async def rebuild_day(s: AsyncSession, day: date, tz: str) -> None:
    """Replace the summaries' rows of `day` (in the caller's transaction)."""
    await s.execute(delete(SalesDaily).where(SalesDaily.day == day))
    await s.execute(insert(SalesDaily).from_select(list(COLUMNS), day_select(day, tz)))
    await s.execute(delete(SalesDailyItem).where(SalesDailyItem.day == day))
    await s.execute(insert(SalesDailyItem).from_select(list(ITEM_COLUMNS),
                                                       item_day_select(day, tz)))
