"""The one order writer: every channel's order row, its lines and payments are written
here — the API and service desk (`orders.services.place_order`), the till online and
synced from offline (`tills.sales.sell`), the webshop checkout
(`checkout.services.place_web_order`) — and the `order.created` event with them.

The callers decide prices, the stock policy (in hand at a till, strict for a remote
sale, reserved for a checkout) and payments; the writer only records, so one order
looks the same whichever channel wrote it. It freezes each line's unit cost (the
variant's cost price at this moment) for the margin reports.

PostgreSQL: one prepared statement writes the order, its lines and its payments
(arrays unnested in order); a store sale can have its drawer session found in the same
statement (`find_drawer`). Elsewhere the same rows go through SQLAlchemy Core.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from saumaton.catalogue.models import Variant
from saumaton.core.errors import Conflict
from saumaton.customers.new_buyer_pg import new_buyer_ctes
from saumaton.db.uow import UnitOfWork, outbox_ctes_pg
from saumaton.inventory.reserving_pg import RESERVED_COLUMNS, reserve_ctes, reserved_levels
from saumaton.inventory.services import LevelAfter
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment
from saumaton.reports.models import SalesDailyDay, touched_days
from saumaton.tills.models import DrawerSession, Register


@dataclass(frozen=True)
class OrderRecord:
    channel_id: int
    location_id: int | None
    customer_id: int | None
    status: str
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    vat_cents: int
    paid_cents: int
    idempotency_key: str | None
    request_hash: str | None
    created_by: str
    created_at: datetime
    drawer_session_id: int | None = None
    # A till sale synced from offline: the till's clock and its own receipt number.
    offline: bool = False
    sold_at: datetime | None = None
    client_ref: str = ""
    flags: str = ""
    discount_reason: str = ""
    # A web order: the buyer's contact, the delivery and the status link's secret.
    email: str = ""
    phone: str = ""
    language: str = "fi"
    delivery_method: str | None = None
    delivery_fee_cents: int = 0
    delivery_vat_rate_bp: int = 0
    delivery_vat_cents: int = 0
    shipping_address: dict[str, Any] | None = None
    access_token: str | None = None
    payment_due_at: datetime | None = None


@dataclass(frozen=True)
class LineRecord:
    line_no: int
    variant_id: int
    location_id: int | None
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    vat_rate_bp: int
    vat_cents: int
    campaign_id: int | None
    manual_discount_cents: int = 0
    discount_reason: str = ""
    taken_at_sale: bool = False  # an endless-aisle sale's line taken from the shelf
    source: str = ""  # 'upsell': a suggested add-on (OrderLine.source)


@dataclass(frozen=True)
class PaymentRecord:
    method: str
    amount_cents: int
    status: str = "captured"
    rounding_cents: int = 0
    tendered_cents: int | None = None
    change_cents: int = 0
    reference: str = ""


_ORDER_COLS = [f.name for f in fields(OrderRecord)]
_LINE_COLS = [f.name for f in fields(LineRecord)]
_PAY_COLS = [f.name for f in fields(PaymentRecord)]
_PG_TYPES = {"channel_id": "int", "location_id": "int", "customer_id": "bigint",
             "drawer_session_id": "bigint", "offline": "boolean", "sold_at": "timestamptz",
             "created_at": "timestamptz", "payment_due_at": "timestamptz",
             "shipping_address": "json", "taken_at_sale": "boolean"}
_INT_COLS = {"line_no", "variant_id", "location_id", "quantity", "unit_price_cents",
             "discount_cents", "total_cents", "vat_rate_bp", "vat_cents", "campaign_id",
             "manual_discount_cents", "amount_cents", "rounding_cents", "tendered_cents",
             "change_cents", "subtotal_cents", "paid_cents", "delivery_fee_cents",
             "delivery_vat_rate_bp", "delivery_vat_cents"}


def _pg_type(col: str) -> str:
    return _PG_TYPES.get(col) or ("int" if col in _INT_COLS else "text")


def _order_values(first: int) -> str:
    return ", ".join(f"${first + i}::{_pg_type(c)}" for i, c in enumerate(_ORDER_COLS))


def _lines_payments_sql(order_id: str, first: int, *, join_o: bool) -> tuple[str, str]:
    """INSERTs of the lines and payments, parameters $first… (one array per column)."""
    n_lines = len(_LINE_COLS)
    la = ", ".join(f"${first + i}::{_pg_type(c)}[]" for i, c in enumerate(_LINE_COLS))
    pa = ", ".join(f"${first + n_lines + i}::{_pg_type(c)}[]"
                   for i, c in enumerate(_PAY_COLS))
    frm = ", o" if join_o else ""
    loc_at = (f"${first + n_lines + len(_PAY_COLS)}::int, "
              f"${first + n_lines + len(_PAY_COLS) + 1}::timestamptz")
    # The unit cost is the variant's cost at this moment, read in the same statement.
    lines = (f"INSERT INTO order_lines (order_id, {', '.join(_LINE_COLS)}, unit_cost_cents)\n"
             f"SELECT {order_id}, {', '.join('l.' + c for c in _LINE_COLS)}, v.cost_cents\n"
             f"FROM unnest({la}) WITH ORDINALITY AS l({', '.join(_LINE_COLS)}, n)\n"
             f"LEFT JOIN variants v ON v.id = l.variant_id{frm}\n"
             "ORDER BY l.n")
    payments = (f"INSERT INTO payments (order_id, {', '.join(_PAY_COLS)}, location_id, "
                f"created_at)\nSELECT {order_id}, {', '.join(_PAY_COLS)}, {loc_at}\n"
                f"FROM unnest({pa}) WITH ORDINALITY AS p({', '.join(_PAY_COLS)}, n){frm}\n"
                "ORDER BY n")
    return lines, payments


_N = len(_ORDER_COLS)
_DRAWER = _ORDER_COLS.index("drawer_session_id") + 1
_LOCATION = _ORDER_COLS.index("location_id") + 1
_COLS = ", ".join(_ORDER_COLS)
# The order, its lines and payments in one statement. With $drawer NULL and the flag
# ($last) true, the store's open drawer session is found in it (FOR SHARE: a close
# computing the Z report either sees this sale or the sale sees the session closed;
# the till page's register first); with no open session no row is written or returned.
_L, _P = _lines_payments_sql("o.id", _N + 2, join_o=True)
# The drawer column takes the session found (or the one named).
_VALUES = _order_values(1).replace(f"${_DRAWER}::bigint",
                                   f"coalesce(d.id, ${_DRAWER}::bigint)")
_PG_WRITE_SQL = f"""
WITH d AS (
  SELECT ds.id FROM drawer_sessions ds JOIN registers r ON r.id = ds.register_id
  WHERE ${_N + 1}::boolean AND ds.location_id = ${_LOCATION}::int AND ds.status = 'open'
    AND (${_DRAWER}::bigint IS NULL OR ds.id = ${_DRAWER}::bigint)
  ORDER BY r.active DESC, r.id LIMIT 1 FOR SHARE OF ds
), o AS (
  INSERT INTO orders (currency, {_COLS})
  SELECT 'EUR', {_VALUES}
  FROM (SELECT 1) one LEFT JOIN d ON true
  WHERE NOT ${_N + 1}::boolean OR d.id IS NOT NULL
  RETURNING id, drawer_session_id
), l AS (
{_L}
), p AS (
{_P}
)
SELECT id, drawer_session_id FROM o"""
_L, _P = _lines_payments_sql("$1::bigint", 2, join_o=False)
# Lines and payments of an order written before (a remote sale's lines learn their
# location from the stock moves).
_PG_LINES_PAYMENTS_SQL = f"WITH l AS (\n{_L}\n)\n{_P}"


class DrawerClosed(Conflict):
    code = "drawer_closed"


def drawer_closed(named: int | None) -> DrawerClosed:
    if named:
        return DrawerClosed(f"drawer session {named} is not open at this store",
                            field="drawer_session_id")
    return DrawerClosed("the store's cash drawer is not open: open it at the till first, "
                        "so the sale reaches the day's Z report")


def _arrays(lines: list[LineRecord], payments: list[PaymentRecord]) -> list[Any]:
    return [*([getattr(ln, c) for ln in lines] for c in _LINE_COLS),
            *([getattr(p, c) for p in payments] for c in _PAY_COLS)]


def _order_args(order: OrderRecord) -> list[Any]:
    return [json.dumps(order.shipping_address) if c == "shipping_address"
            and order.shipping_address is not None else getattr(order, c)
            for c in _ORDER_COLS]


async def write_order(uow: UnitOfWork, order: OrderRecord, lines: list[LineRecord],
                      payments: list[PaymentRecord], *, find_drawer: bool = False,
                      event: dict[str, Any] | None = None) -> tuple[int, int | None]:
    """Write the order with its lines and payments and emit `order.created` (with
    `event` added to the payload); returns (order id, drawer session id). With
    `find_drawer` (a store sale) the order goes into `order.drawer_session_id` if it
    is open at the store, else the store's open session: 409 `drawer_closed` when
    there is none. Lines and payments may be empty (written later with
    `write_lines_payments`)."""
    if uow.db.is_postgres:
        row = await uow.fetchrow(_PG_WRITE_SQL, *_order_args(order), find_drawer,
                                 *_arrays(lines, payments), order.location_id,
                                 order.created_at)
        if row is None:
            raise drawer_closed(order.drawer_session_id)
        order_id, drawer_id = int(row[0]), None if row[1] is None else int(row[1])
    else:
        drawer_id = order.drawer_session_id
        if find_drawer:
            drawer_id = await _open_drawer(uow, order)
        values = asdict(order) | {"drawer_session_id": drawer_id, "currency": "EUR"}
        order_id = int((await uow.session.execute(
            insert(Order).values(**values).returning(Order.id))).scalar_one())
        await _insert_lines_payments(uow, order_id, lines, payments, order.location_id,
                                     order.created_at)
    if order.sold_at is not None:  # a sale synced late: its day's summary is stale
        await forget_summary_days(uow, order.sold_at)
    uow.emit("order.created", {
        "order_id": order_id, "channel_id": order.channel_id,
        "location_id": order.location_id, "status": order.status,
        "total_cents": order.total_cents, "customer_id": order.customer_id,
        **(event or {})})
    return order_id, drawer_id


async def forget_summary_days(uow: UnitOfWork, moment: datetime) -> None:
    """The sales summary no longer holds the day(s) of `moment` complete: reports read
    them live until the reports job rebuilds them (docs/reports.md, freshness)."""
    first, last = touched_days(moment)
    await uow.session.execute(delete(SalesDailyDay).where(SalesDailyDay.day >= first,
                                                          SalesDailyDay.day <= last))


async def write_lines_payments(uow: UnitOfWork, order_id: int, lines: list[LineRecord],
                               payments: list[PaymentRecord], *, location_id: int | None,
                               at: datetime) -> None:
    """The lines and payments of an order written before without them."""
    if uow.db.is_postgres:
        await uow.execute(_PG_LINES_PAYMENTS_SQL, order_id, *_arrays(lines, payments),
                          location_id, at)
    else:
        await _insert_lines_payments(uow, order_id, lines, payments, location_id, at)


async def _insert_lines_payments(uow: UnitOfWork, order_id: int, lines: list[LineRecord],
                                 payments: list[PaymentRecord], location_id: int | None,
                                 at: datetime) -> None:
    if lines:
        # The unit cost frozen at sale: one read of the lines' variants.
        costs = {r[0]: r[1] for r in (await uow.session.execute(
            select(Variant.id, Variant.cost_cents)
            .where(Variant.id.in_({ln.variant_id for ln in lines})))).all()}
        await uow.session.execute(insert(OrderLine), [
            {"order_id": order_id, **asdict(ln), "unit_cost_cents": costs.get(ln.variant_id)}
            for ln in lines])
    if payments:
        await uow.session.execute(insert(Payment), [
            {"order_id": order_id, **asdict(p), "location_id": location_id,
             "created_at": at} for p in payments])


async def _open_drawer(uow: UnitOfWork, order: OrderRecord) -> int:
    q = (select(DrawerSession.id)
         .join(Register, Register.id == DrawerSession.register_id)
         .where(DrawerSession.location_id == order.location_id,
                DrawerSession.status == "open")
         .order_by(Register.active.desc(), Register.id).limit(1))
    if order.drawer_session_id:
        q = q.where(DrawerSession.id == order.drawer_session_id)
    found = await uow.session.scalar(q.with_for_update(read=True))
    if found is None:
        raise drawer_closed(order.drawer_session_id)
    return int(found)


# --- a web order on PostgreSQL: everything in one statement ------------------------------

@dataclass(frozen=True)
class StockToReserve:
    """A web order's stock lines (distinct variants) and where they may be held."""
    variant_ids: list[int]
    quantities: list[int]
    candidates: list[int]  # locations in routing order
    reference: str  # the order number
    expires_at: datetime


@dataclass(frozen=True)
class NewBuyer:
    first_name: str
    last_name: str
    email: str
    phone: str
    channel: str  # named by its customer.created


@dataclass(frozen=True)
class WebOrderWritten:
    order_id: int | None  # None: the idempotency key was taken meanwhile (nothing written)
    customer_id: int | None  # the new buyer's id (when one was asked for)
    buyer_won: bool  # the new buyer's e-mail identity was written (else: taken meanwhile)
    levels: list[LevelAfter]  # each line reserved (the caller checks them all were)


def _web_order_sql() -> str:
    n = _N
    lines_at = n + 2
    nl = len(_LINE_COLS)
    v, q, cand, ref, exp, now = range(lines_at + nl, lines_at + nl + 6)
    create, first, last, email, phone = range(now + 1, now + 6)
    head, customer_json, tail, buyer_channel = range(now + 6, now + 10)
    customer = _ORDER_COLS.index("customer_id") + 1
    values = _order_values(1).replace(f"${customer}::bigint",
                                      f"coalesce((SELECT id FROM nc), ${customer}::bigint)")
    la = ", ".join(f"${lines_at + i}::{_pg_type(c)}[]" for i, c in enumerate(_LINE_COLS))
    picked = ", ".join("coalesce(r.location_id, l.location_id)" if c == "location_id"
                       else "l." + c for c in _LINE_COLS)
    return f"""
WITH {new_buyer_ctes(create=create, first_name=first, last_name=last, email=email,
                     phone=phone, now=now)}, o AS (
  INSERT INTO orders (id, currency, {_COLS})
  SELECT ${n + 1}::bigint, 'EUR', {values}
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id
), {reserve_ctes(variants=v, quantities=q, candidates=cand, reference=ref, expires=exp,
                 now=now)}, l AS (
  INSERT INTO order_lines (order_id, {', '.join(_LINE_COLS)}, unit_cost_cents)
  SELECT o.id, {picked}, vc.cost_cents
  FROM o CROSS JOIN unnest({la}) WITH ORDINALITY AS l({', '.join(_LINE_COLS)}, n)
  LEFT JOIN variants vc ON vc.id = l.variant_id
  LEFT JOIN r ON r.variant_id = l.variant_id
  ORDER BY l.n
), {outbox_ctes_pg(_web_order_events(head, customer_json, tail, buyer_channel),
                   now=f"${now}")}
SELECT (SELECT id FROM o), (SELECT id FROM nc), (SELECT customer_id FROM ne),
       {RESERVED_COLUMNS}, (SELECT n FROM outbox_notified)"""


def _web_order_events(head: int, customer_json: int, tail: int, buyer_channel: int) -> str:
    """The events the portable way emits, in its order: order.created (its JSON as
    the caller wrote it around the customer's id, which only the statement knows for
    a new buyer), customer.created for a new buyer, stock.changed per level reserved
    (as `LevelAfter.event`), in variant order. Written with the order, so one round
    trip less; rolled back with it when the write is not whole."""
    return f"""SELECT 1 AS n, 'order.created' AS topic,
  (${head}::text || coalesce((SELECT id FROM nc)::text, ${customer_json}::text)
   || ${tail}::text)::json AS payload FROM o
UNION ALL SELECT 2, 'customer.created',
  json_build_object('customer_id', customer_id, 'channel', ${buyer_channel}::text) FROM ne
UNION ALL SELECT 2 + row_number() OVER (ORDER BY variant_id), 'stock.changed',
  json_build_object('variant_id', variant_id, 'location_id', location_id,
                    'on_hand', on_hand, 'reserved', reserved,
                    'available', on_hand - reserved, 'needs_count', needs_count) FROM r"""


_PG_WEB_ORDER_SQL = _web_order_sql()


async def write_web_order_pg(uow: UnitOfWork, order_id: int, order: OrderRecord,
                             lines: list[LineRecord], stock: StockToReserve,
                             buyer: NewBuyer | None, *,
                             event: dict[str, Any] | None = None) -> WebOrderWritten:
    """PostgreSQL: a pending web order in one statement, under the id `order_id` (taken
    from the order sequence): the new buyer (`buyer`: the customer and their
    identities; the order then belongs to them), the order and its lines (each line's
    location: where it was reserved), the reservation of `stock`, and their events in
    the outbox: `order.created` (with `event`'s keys), `customer.created` for the new
    buyer and `stock.changed` for each level reserved, as the portable way emits them.

    The caller checks the result and rolls back when it is not whole (the events go
    with it): no order (the key was used meanwhile), a buyer who lost the race for
    their e-mail, or fewer levels reserved than stock lines."""
    # order.created's JSON as `uow.emit` would write it, cut where the customer's id
    # goes (a new buyer's id comes from the statement).
    base = json.dumps({"order_id": order_id, "channel_id": order.channel_id,
                       "location_id": order.location_id, "status": order.status,
                       "total_cents": order.total_cents}, separators=(",", ":"))
    rest = {k: v for k, v in (event or {}).items() if k not in _ORDER_EVENT_KEYS}
    tail = json.dumps(rest, separators=(",", ":"))
    row = await uow.fetchrow(
        _PG_WEB_ORDER_SQL, *_order_args(order), order_id,
        *([getattr(ln, c) for ln in lines] for c in _LINE_COLS),
        stock.variant_ids, stock.quantities, stock.candidates, stock.reference,
        stock.expires_at, order.created_at,
        buyer is not None, buyer.first_name if buyer else "", buyer.last_name if buyer else "",
        buyer.email if buyer else "", buyer.phone if buyer else "",
        base[:-1] + ',"customer_id":', json.dumps(order.customer_id),
        "}" if not rest else "," + tail[1:], buyer.channel if buyer else "")
    written = None if row[0] is None else int(row[0])
    new_customer = None if row[1] is None else int(row[1])
    if written is not None:
        uow.wrote_events(("order.created", "customer.created", "stock.changed"))
    return WebOrderWritten(written, new_customer, row[2] is not None,
                           reserved_levels(row[3:8]))


# order.created's own keys: an `event` key of the same name does not repeat them.
_ORDER_EVENT_KEYS = frozenset({"order_id", "channel_id", "location_id", "status",
                               "total_cents", "customer_id"})
