"""Click & collect at the store: the pickup code, finding an order, handing it over.

A paid click & collect order holds its units as active reservations at the store
(`checkout.services._secure_stock`). At handover the cashier checks the customer's
ID against the name on the order; `hand_over` then turns the reservations into a
sale (on-hand and reserved both go down, a "sale" ledger row per reservation) and
marks the order collected, all in one transaction.

The pickup code is "NT" + the order number + 4 check digits made with the app's
secret key, so the code of another order cannot be worked out from its number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import segno
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from saumaton.customers.identities import normalise_phone
from saumaton.customers.models import Customer
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.models import StockReservation
from saumaton.inventory.services import Move, apply_moves, consume
from saumaton.orders.lifecycle import OrderStatus, transition
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.schemas import OrderOut
from saumaton.orders.services import _orders_out, get_order, order_number

if TYPE_CHECKING:
    from saumaton.checkout.services import PickupOrder

CODE_PREFIX = "NT"
CHECK_DIGITS = 4
# What the till's scanner field sends here: NT + 6-digit number + 4 check digits.
CODE_PATTERN = re.compile(r"NT(\d{7,})", re.IGNORECASE)
# Flag on an order whose reservation had lapsed: its units were taken off the shelf.
LAPSED_FLAG = "reservation_lapsed"
FIND_LIMIT = 20
# Paid and waiting at the store: handed over whether or not it was marked ready yet.
AWAITING_HANDOVER = frozenset({OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.READY})


# --- the pickup code ----------------------------------------------------------------------

def _secret(secret: str | None) -> bytes:
    if secret is None:
        from saumaton.config import get_settings

        secret = get_settings().resolved_secret_key()
    return secret.encode()


def _check(order_id: int, secret: str | None) -> str:
    mac = hmac.new(_secret(secret), f"pickup:{order_id}".encode(), hashlib.sha256)
    return f"{int.from_bytes(mac.digest()[:8], 'big') % 10**CHECK_DIGITS:0{CHECK_DIGITS}d}"


def pickup_code(order_id: int, secret: str | None = None) -> str:
    """"NT" + order number + 4 check digits, e.g. NT0001234821. `secret` is the app's
    secret key (`settings.resolved_secret_key()`; by default the process settings')."""
    return f"{CODE_PREFIX}{order_number(order_id)}{_check(order_id, secret)}"


def order_id_from_code(code: str, secret: str | None = None) -> int | None:
    """The order id of a genuine pickup code, else None (compared in constant time)."""
    m = CODE_PATTERN.fullmatch(code.strip().replace(" ", ""))
    if m is None or len(m[1]) > 18 + CHECK_DIGITS:
        return None
    digits = m[1]
    number, check = digits[:-CHECK_DIGITS], digits[-CHECK_DIGITS:]
    order_id = int(number)
    if order_id < 1 or number != order_number(order_id):
        return None
    if not hmac.compare_digest(check.encode(), _check(order_id, secret).encode()):
        return None
    return order_id


@dataclass(frozen=True)
class PickupCodeView:
    """The pickup code as text and as a QR code (for the order page and the e-mail)."""

    code: str
    svg: str  # inline <svg> element (the e-mail's picture: mail/inline.py)

    @property
    def spaced(self) -> str:
        """Easier to read aloud: NT 000123 4821."""
        return f"{self.code[:2]} {self.code[2:-CHECK_DIGITS]} {self.code[-CHECK_DIGITS:]}"


def pickup_code_view(order_id: int, secret: str | None = None) -> PickupCodeView:
    code = pickup_code(order_id, secret)
    qr = segno.make(code, error="m", micro=False)
    svg = qr.svg_inline(scale=5, border=2, title=code)
    return PickupCodeView(code, svg)


def pickup_code_for(order: OrderOut, secret: str | None = None) -> PickupCodeView | None:
    """The code view of a click & collect order; None for any other order."""
    if order.delivery is None or order.delivery.method != "pickup":
        return None
    return pickup_code_view(order.id, secret)


# --- finding -------------------------------------------------------------------------------

async def customer_contact(s: AsyncSession, customer_id: int | None) -> tuple[str, str]:
    """(name, e-mail) of a customer in the register ("" when unknown)."""
    if customer_id is None:
        return "", ""
    from saumaton.customers.models import CustomerIdentity

    row = (await s.execute(select(Customer.first_name, Customer.last_name)
                           .where(Customer.id == customer_id))).first()
    name = f"{row[0] or ''} {row[1] or ''}".strip() if row else ""
    email = await s.scalar(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "email")
        .order_by(CustomerIdentity.id).limit(1))
    return name, str(email or "")


def _phone(q: str) -> str | None:
    if not re.fullmatch(r"\+?[\d\s\-()]{6,20}", q):
        return None
    try:
        return normalise_phone(q)
    except DomainError:
        return None


def search_conditions(q: str, secret: str | None) -> list[ColumnElement[bool]]:
    """Which orders `q` can mean: a pickup code, an order number, a phone number,
    an e-mail address or the customer's name."""
    text = q.strip()
    compact = text.replace(" ", "")
    if CODE_PATTERN.fullmatch(compact):
        order_id = order_id_from_code(compact, secret)
        return [] if order_id is None else [Order.id == order_id]
    conds: list[ColumnElement[bool]] = []
    if compact.isascii() and compact.isdigit() and len(compact) <= 18:
        conds.append(Order.id == int(compact))
    phone = _phone(text)
    if phone:
        conds.append(Order.phone == phone)
    if "@" in text:
        conds.append(func.lower(Order.email) == text.lower())
    elif not (compact.isascii() and compact.isdigit()):
        words = [w for w in re.split(r"\s+", text.lower()) if w][:4]
        if words:
            conds.append(and_(*[or_(func.lower(Customer.first_name).contains(w, autoescape=True),
                                    func.lower(Customer.last_name).contains(w, autoescape=True))
                                for w in words]))
    return conds


async def find_pickups(s: AsyncSession, location_id: int, q: str,
                       secret: str | None = None) -> list[PickupOrder]:
    """Click & collect orders waiting at this store (paid, or still being paid) that
    `q` finds: pickup code, order number ("123" or "000123"), or the customer's
    name, e-mail or phone. Newest first."""
    from saumaton.checkout.services import PickupOrder

    q = q.strip()[:200]
    conds = search_conditions(q, secret) if q else []
    if not conds:
        return []
    rows = (await s.execute(
        select(Order.id, Customer.first_name, Customer.last_name)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(Order.location_id == location_id, Order.delivery_method == "pickup",
               Order.status.in_((OrderStatus.PENDING, *AWAITING_HANDOVER)), or_(*conds))
        .order_by(Order.id.desc()).limit(FIND_LIMIT))).all()
    names = {int(r[0]): f"{r[1] or ''} {r[2] or ''}".strip() for r in rows}
    orders = await _orders_out(s, list(names))
    return [PickupOrder(o, names[o.id], o.status in AWAITING_HANDOVER) for o in orders]


@dataclass(frozen=True)
class PickupDetail:
    """A click & collect order as the handover page shows it."""

    order: OrderOut
    customer_name: str
    customer_email: str
    code: str

    @property
    def ready(self) -> bool:
        """Paid and waiting here: may be handed over (marked ready or not)."""
        return self.order.status in AWAITING_HANDOVER

    @property
    def collected(self) -> bool:
        return self.order.status == OrderStatus.COLLECTED


async def pickup_detail(s: AsyncSession, order_id: int, location_id: int,
                        secret: str | None = None) -> PickupDetail:
    """A click & collect order of this store (404 for any other order)."""
    row = (await s.execute(select(Order.location_id, Order.delivery_method)
                           .where(Order.id == order_id))).first()
    if row is None or row[0] != location_id or row[1] != "pickup":
        raise NotFound(f"no click & collect order {order_id} at this store",
                       code="pickup_not_found")
    order = await get_order(s, order_id)
    name, email = await customer_contact(s, order.customer_id)
    return PickupDetail(order, name, order.email or email, pickup_code(order_id, secret))


# --- handing over ----------------------------------------------------------------------------

async def hand_over(uow: UnitOfWork, actor: Actor, order_id: int, location_id: int,
                    id_checked: bool) -> OrderOut:
    """Give a paid click & collect order to the customer at this store.

    The order's active reservations here are consumed (on-hand and reserved both go
    down; a "sale" ledger row with the order number). Units whose reservation had
    lapsed are taken straight from the store's stock — the goods are on the shelf —
    and the order gets the `reservation_lapsed` flag. The order becomes "collected"
    and `order.collected` is emitted.
    """
    actor.require("orders.create", location_id)
    s = uow.session
    q = select(Order).where(Order.id == order_id)
    if uow.db.is_postgres:
        q = q.with_for_update()
    order: Order | None = await s.scalar(q)
    if order is None or order.location_id != location_id or order.delivery_method != "pickup":
        raise NotFound(f"no click & collect order {order_id} at this store",
                       code="pickup_not_found")
    number = order_number(order.id)
    if order.status == OrderStatus.COLLECTED:
        raise Conflict(f"order {number} was already handed over", code="already_collected")
    if order.status not in AWAITING_HANDOVER:
        raise Conflict(f"order {number} is {order.status}, not paid",
                       code="pickup_not_paid" if order.status == OrderStatus.PENDING
                       else f"order_{order.status}")
    if not id_checked:
        raise ValidationFailed("check the customer's ID first", code="id_not_checked",
                               field="id_checked")

    wanted: dict[int, int] = defaultdict(int)
    for variant_id, qty in (await s.execute(
            select(OrderLine.variant_id, OrderLine.quantity - OrderLine.returned_quantity)
            # not the lines taken at a till, nor units returned before the handover (an
            # order being fulfilled keeps its status through a partial return)
            .where(OrderLine.order_id == order.id,
                   OrderLine.taken_at_sale.is_(False)))).all():
        wanted[int(variant_id)] += int(qty)
    held: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for rid, variant_id, qty in (await s.execute(
            select(StockReservation.id, StockReservation.variant_id, StockReservation.quantity)
            .where(StockReservation.reference == number, StockReservation.status == "active",
                   StockReservation.location_id == location_id)
            .order_by(StockReservation.variant_id, StockReservation.id))).all():
        held[int(variant_id)].append((int(rid), int(qty)))

    lapsed: list[tuple[int, int]] = []
    for variant_id in sorted(set(wanted) | set(held)):  # stock-row order: no deadlocks
        got = 0
        for rid, qty in held[variant_id]:
            await consume(uow, actor, rid, order_id=order.id, reference=number)
            got += qty
        missing = wanted[variant_id] - got
        if missing > 0:
            await apply_moves(uow, actor, [Move(
                variant_id, location_id, -missing, "sale", reference=number,
                order_id=order.id, reason="click & collect: reservation had lapsed")])
            lapsed.append((variant_id, missing))

    flags = order.flags.split()
    if lapsed and LAPSED_FLAG not in flags:
        flags.append(LAPSED_FLAG)
    await transition(uow, order, OrderStatus.COLLECTED, actor=actor, values={
        "collected_by": actor.label[:200], "flags": " ".join(flags)[:200]}, data={
        "location_id": location_id, "total_cents": order.total_cents,
        "collected_by": actor.label,
        "lapsed": [{"variant_id": v, "quantity": n} for v, n in lapsed]})
    await s.flush()
    s.expire_all()  # the row was changed with a statement: read it afresh
    return await get_order(s, order_id)


def lapsed_note(order: OrderOut) -> bool:
    """True when the handover took units off the shelf because a reservation lapsed."""
    return LAPSED_FLAG in order.flags
