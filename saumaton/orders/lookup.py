"""Finding a customer's order from what she shows or says: the order number (typed or
on the e-mail), the pickup code's QR, a till receipt's number, or her phone number,
e-mail address or loyalty card (her orders, newest first).

Used where something is done to an order after the sale (a return at any store, a
return started by the service desk), so it searches every channel and location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.checkout.pickup import CODE_PATTERN, order_id_from_code
from saumaton.core.errors import DomainError
from saumaton.customers.identities import normalise_card, normalise_email, normalise_phone
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order
from saumaton.orders.services import order_number

FIND_LIMIT = 20
# A till receipt's number as printed: register, dash, sequence ("1-000042"); offline
# receipts carry the till's own prefix ("K1-000017").
RECEIPT_NO = re.compile(r"[A-Za-z]{0,3}\d{1,6}-\d{1,9}")
PHONE_LIKE = re.compile(r"\+?[\d\s\-()]{6,20}")


@dataclass(frozen=True)
class FoundOrder:
    """One line of the search's answer: enough to pick the right order."""

    id: int
    number: str
    status: str
    channel_name: str
    channel_kind: str
    location_name: str
    customer_name: str
    total_cents: int
    created_at: datetime


def _customer_ids(q: str) -> ColumnElement[bool] | None:
    """The customer an e-mail, a phone number or a card number names."""
    values: list[tuple[str, str]] = []
    if "@" in q:
        try:
            values.append(("email", normalise_email(q)))
        except DomainError:
            return None
    else:
        if PHONE_LIKE.fullmatch(q):
            try:
                values.append(("phone", normalise_phone(q)))
            except DomainError:
                pass
        try:
            values.append(("card", normalise_card(q)))
        except DomainError:
            pass
    if not values:
        return None
    return Order.customer_id.in_(
        select(CustomerIdentity.customer_id).where(or_(*[
            (CustomerIdentity.kind == kind) & (CustomerIdentity.value == value)
            for kind, value in values])))


def search_conditions(q: str, secret: str | None) -> list[ColumnElement[bool]]:
    """Which orders `q` may mean (empty: nothing it could be)."""
    text = q.strip()[:200]
    compact = text.replace(" ", "")
    if not compact:
        return []
    if CODE_PATTERN.fullmatch(compact):
        order_id = order_id_from_code(compact, secret)
        return [] if order_id is None else [Order.id == order_id]
    conds: list[ColumnElement[bool]] = []
    if compact.isascii() and compact.isdigit() and len(compact) <= 18 and int(compact) > 0:
        conds.append(Order.id == int(compact))
    if RECEIPT_NO.fullmatch(compact):
        conds.append(or_(Order.receipt_no == compact.upper(),
                         Order.client_ref == compact.upper()))
    if "@" in text:
        conds.append(func.lower(Order.email) == text.lower())
    elif PHONE_LIKE.fullmatch(text):
        try:
            conds.append(Order.phone == normalise_phone(text))
        except DomainError:
            pass
    by_customer = _customer_ids(text)
    if by_customer is not None:
        conds.append(by_customer)
    return conds


async def find_orders(s: AsyncSession, q: str, secret: str | None = None,
                      limit: int = FIND_LIMIT) -> list[FoundOrder]:
    """Orders `q` finds in every channel and location, newest first (pending and
    cancelled ones too: the page says why they cannot be returned)."""
    conds = search_conditions(q, secret)
    if not conds:
        return []
    rows = (await s.execute(
        select(Order.id, Order.status, Channel.name, Channel.kind, Location.name,
               Customer.first_name, Customer.last_name, Order.total_cents,
               Order.created_at)
        .join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(or_(*conds))
        .order_by(Order.id.desc()).limit(limit))).all()
    return [FoundOrder(int(r[0]), order_number(int(r[0])), str(r[1]), str(r[2]), str(r[3]),
                       str(r[4] or ""), f"{r[5] or ''} {r[6] or ''}".strip(), int(r[7]),
                       r[8]) for r in rows]
