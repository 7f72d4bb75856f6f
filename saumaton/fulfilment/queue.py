"""The staff's order lists and pick lists.

`order_page` lists orders for the back office (all of them) and for a store's queue
(web orders to prepare there: pickups at the store and home deliveries with a line
that ships from it), with filters, a search (order number, pickup code, name, e-mail,
phone) and pages. `pick_list` sums what a location has to collect for its open web
orders. There is no shelf data yet, so a pick list is in product and variant name
order (then SKU), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.checkout.pickup import search_conditions
from saumaton.core.actor import Actor
from saumaton.customers.models import Customer
from saumaton.locations.models import Channel, Location
from saumaton.orders.lifecycle import OPEN_FULFILMENT, OrderStatus
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.services import order_number

PAGE_SIZE = 50
DELIVERY_METHODS = ("home", "pickup", "store")  # store: a sale in the store
# Steps still to do before a pick list line is collected.
TO_PICK = (OrderStatus.PAID, OrderStatus.PICKING)


@dataclass(frozen=True)
class OrderQuery:
    channel: str | None = None
    status: str | None = None  # an OrderStatus value, or "open" (still to fulfil)
    location_id: int | None = None
    delivery_method: str | None = None  # home | pickup | store
    date_from: date | None = None  # the shop's calendar days, inclusive
    date_to: date | None = None
    q: str = ""
    page: int = 1


@dataclass(frozen=True)
class OrderRow:
    id: int
    number: str
    created_at: datetime
    status: str
    channel: str
    delivery_method: str | None
    location_name: str
    customer_name: str
    email: str
    phone: str
    total_cents: int
    items: int


@dataclass(frozen=True)
class OrderPage:
    rows: list[OrderRow]
    total: int
    page: int
    pages: int


def _day_start(d: date, timezone: str) -> datetime:
    return datetime.combine(d, time.min, ZoneInfo(timezone))


def prepared_at(location_id: int) -> ColumnElement[bool]:
    """SQL: a web order prepared at this location (its pickup store, or an order with a
    line shipping from it: a home delivery, an endless-aisle pickup elsewhere)."""
    ships = exists().where(OrderLine.order_id == Order.id,
                           OrderLine.location_id == location_id,
                           OrderLine.taken_at_sale.is_(False))
    # An endless-aisle pickup also shows where its lines ship from (tills.aisle).
    return or_(
        and_(Order.delivery_method == "pickup", Order.location_id == location_id),
        and_(Order.delivery_method.is_not(None), ships))


def _readable(actor: Actor) -> ColumnElement[bool] | None:
    """SQL limiting the orders to the staff member's stores (None: every order)."""
    if actor.can("orders.read", everywhere=True):
        return None
    stores = [g.location_id for g in actor.grants if g.location_id is not None
              and actor.can("orders.read", g.location_id)]
    return or_(Order.location_id.in_(stores), *[prepared_at(loc) for loc in stores])


def _filtered(q: Select[int], query: OrderQuery, actor: Actor, timezone: str,
              secret: str | None) -> Select[int]:
    if (limit := _readable(actor)) is not None:
        q = q.where(limit)
    if query.channel:
        q = q.where(Order.channel_id.in_(select(Channel.id).where(
            Channel.code == query.channel)))
    if query.status == "open":
        q = q.where(Order.status.in_(OPEN_FULFILMENT), Order.delivery_method.is_not(None))
    elif query.status:
        q = q.where(Order.status == query.status)
    if query.location_id is not None:
        q = q.where(or_(Order.location_id == query.location_id,
                        prepared_at(query.location_id)))
    if query.delivery_method == "store":
        q = q.where(Order.delivery_method.is_(None))
    elif query.delivery_method:
        q = q.where(Order.delivery_method == query.delivery_method)
    if query.date_from:
        q = q.where(Order.created_at >= _day_start(query.date_from, timezone))
    if query.date_to:
        q = q.where(Order.created_at < _day_start(query.date_to + timedelta(days=1),
                                                  timezone))
    if query.q.strip():
        conds = search_conditions(query.q.strip()[:200], secret)
        q = q.where(or_(*conds) if conds else Order.id.is_(None))
    return q


async def open_order_count(s: AsyncSession, actor: Actor) -> int:
    """Web orders of the staff member's stores still to prepare (paid … packed)."""
    q = _filtered(select(Order.id), OrderQuery(status="open"), actor, "UTC", None)
    return int(await s.scalar(select(func.count()).select_from(q.subquery())) or 0)


async def order_page(s: AsyncSession, actor: Actor, query: OrderQuery, *, timezone: str,
                     secret: str | None = None, page_size: int = PAGE_SIZE) -> OrderPage:
    """One page of orders, newest first, and how many there are in all."""
    actor.require("orders.read", query.location_id)
    base = select(Order.id).outerjoin(Customer, Customer.id == Order.customer_id)
    ids_q = _filtered(base, query, actor, timezone, secret)
    total = int(await s.scalar(select(func.count()).select_from(ids_q.subquery())) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(1, query.page), pages)
    ids = [int(i) for i in (await s.scalars(
        ids_q.order_by(Order.id.desc()).offset((page - 1) * page_size).limit(page_size)))]
    return OrderPage(await _rows_of(s, ids), total, page, pages)


async def order_rows(s: AsyncSession, actor: Actor, query: OrderQuery, *, timezone: str,
                     secret: str | None = None, before_id: int | None = None,
                     limit: int = PAGE_SIZE) -> list[OrderRow]:
    """The same orders as `order_page` (same filters, same stores) for the API's keyset
    pages: newest first, those before `before_id`, at most `limit`."""
    actor.require("orders.read", query.location_id)
    base = select(Order.id).outerjoin(Customer, Customer.id == Order.customer_id)
    ids_q = _filtered(base, query, actor, timezone, secret)
    if before_id is not None:
        ids_q = ids_q.where(Order.id < before_id)
    ids = [int(i) for i in (await s.scalars(ids_q.order_by(Order.id.desc()).limit(limit)))]
    return await _rows_of(s, ids)


async def _rows_of(s: AsyncSession, ids: list[int]) -> list[OrderRow]:
    """The list rows of these orders, in this order."""
    if not ids:
        return []
    items = dict((await s.execute(
        select(OrderLine.order_id, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_(ids)).group_by(OrderLine.order_id))).all())
    rows = (await s.execute(
        select(Order.id, Order.created_at, Order.status, Channel.code, Order.delivery_method,
               Location.name, Customer.first_name, Customer.last_name, Order.email,
               Order.phone, Order.total_cents)
        .join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(Order.id.in_(ids)))).all()
    by_id = {int(r[0]): OrderRow(
        int(r[0]), order_number(int(r[0])), r[1], str(r[2]), str(r[3]), r[4], str(r[5] or ""),
        f"{r[6] or ''} {r[7] or ''}".strip(), str(r[8] or ""), str(r[9] or ""), int(r[10]),
        int(items.get(r[0]) or 0)) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


@dataclass
class PickLine:
    variant_id: int
    sku: str
    name: str
    quantity: int = 0
    orders: list[str] = field(default_factory=list)  # order numbers


@dataclass(frozen=True)
class PickList:
    location_id: int
    lines: list[PickLine]
    order_numbers: list[str]


async def pick_list(s: AsyncSession, location_id: int) -> PickList:
    """What to collect at `location_id` for its web orders still to pick (paid or being
    picked): the lines that ship from here (a pickup at this store, a home delivery, an
    endless-aisle pickup at another store), never one taken at the till nor units
    returned before the order was sent. In name
    order (no shelf data), then SKU. Gift cards are not picked:
    they are codes, e-mailed when the order is paid."""
    rows = (await s.execute(
        select(OrderLine.order_id, OrderLine.variant_id, OrderLine.sku, OrderLine.name,
               OrderLine.quantity - OrderLine.returned_quantity)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(Order.status.in_(TO_PICK), Product.gift_card.is_(False),
               OrderLine.taken_at_sale.is_(False),
               # units already returned (before the order was sent) are not picked
               OrderLine.quantity > OrderLine.returned_quantity, or_(
            and_(Order.delivery_method == "pickup", Order.location_id == location_id,
                 OrderLine.location_id.is_(None)),
            # a pickup's lines here, a home delivery's lines that ship from here, an
            # endless-aisle pickup's lines that ship from here to its store
            and_(Order.delivery_method.is_not(None), OrderLine.location_id == location_id)))
        .order_by(OrderLine.name, OrderLine.sku, OrderLine.order_id))).all()
    lines: dict[int, PickLine] = {}
    numbers: set[int] = set()
    for order_id, variant_id, sku, name, qty in rows:
        ln = lines.setdefault(int(variant_id), PickLine(int(variant_id), str(sku), str(name)))
        ln.quantity += int(qty)
        number = order_number(int(order_id))
        if number not in ln.orders:
            ln.orders.append(number)
        numbers.add(int(order_id))
    return PickList(location_id, sorted(lines.values(), key=lambda ln: (ln.name, ln.sku)),
                    [order_number(i) for i in sorted(numbers)])
