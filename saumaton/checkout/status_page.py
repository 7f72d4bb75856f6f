"""What an order's status page shows, and the shopper's return from Paytrail, which
answers with that page itself (no redirect to it: one request less per checkout).

On PostgreSQL the page is one statement: the order as `get_order` reads it, its pickup
store and whether it has returns or refunds (read the portable way only when it has).
The return after the callback (the usual order of the two) is one statement too, with
no transaction: the answer is already recorded, and the bought items leave the cart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from saumaton.checkout import cart as carts
from saumaton.checkout.paid_pg import settled_pg
from saumaton.checkout.services import (
    PaymentOutcome,
    nothing_new,
    order_by_token,
    record_payment_status,
)
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound
from saumaton.db.uow import Database
from saumaton.locations.models import Location
from saumaton.orders.read_pg import ORDER_JSON, loads, order_out
from saumaton.orders.schemas import OrderOut
from saumaton.payments.refunds import refunds_of
from saumaton.returns.services import returns_of_order


@dataclass(frozen=True)
class StatusView:
    order: OrderOut
    token: str
    store: Any  # the pickup store: name and address (a Location or a dict), or None
    order_returns: list[Any] = field(default_factory=list)
    refunds: list[Any] = field(default_factory=list)


_PAGE_SQL = f"""
SELECT o.access_token, {ORDER_JSON},
       (SELECT json_build_object('name', s.name, 'address', s.address)::text
        FROM locations s WHERE s.id = o.location_id),
       EXISTS (SELECT 1 FROM returns rt WHERE rt.order_id = o.id)
       OR EXISTS (SELECT 1 FROM refunds rf WHERE rf.order_id = o.id)
FROM orders o WHERE o.id = $1"""


def _no_order() -> NotFound:
    return NotFound("no such order", code="order_not_found")


async def _with_history(db: Database, view: StatusView) -> StatusView:
    """The returns and refunds of an order that has some (rare: read the portable way)."""
    async with db.reader() as s:
        return StatusView(view.order, view.token, view.store,
                          await returns_of_order(s, view.order.id),
                          await refunds_of(s, view.order.id))


async def status_view(db: Database, number: str, token: str) -> StatusView:
    """The status page of order `number`; its secret `token` must match (else NotFound)."""
    if not db.is_postgres:
        async with db.reader() as s:
            order = await order_by_token(s, number, token)
            store = await s.get(Location, order.location_id) if order.location_id else None
            return StatusView(order, token, store, await returns_of_order(s, order.id),
                              await refunds_of(s, order.id))
    if not number.isdigit() or len(number) > 18 or not token or len(token) > 64:
        raise _no_order()
    row = await db.fetchrow_once(_PAGE_SQL, int(number))
    if row is None or not secrets.compare_digest(str(row[0] or "").encode(), token.encode()):
        raise _no_order()
    view = StatusView(order_out(loads(row[1])), token, loads(row[2]) if row[2] else None)
    return await _with_history(db, view) if row[3] else view


@dataclass(frozen=True)
class ReturnAnswer:
    outcome: PaymentOutcome
    view: StatusView


async def record_return(db: Database, settings: Settings, stamp: str, txn: str, status: str,
                        amount: int, provider: str, *, cart_token: str | None,
                        customer_id: int | None) -> ReturnAnswer:
    """The shopper back from Paytrail (the signature checked by the caller): the answer
    recorded unless it is already (usually the callback came first), a paid order's
    items taken out of this browser's cart, and the order's status page."""
    if db.is_postgres:
        st = await settled_pg(db, stamp, cart_token=cart_token, customer_id=customer_id,
                              now=utcnow())
        if st is not None and nothing_new(st.attempt_status, st.attempt_txn,
                                          st.attempt_amount, txn, status, amount):
            out = PaymentOutcome(st.order_id, st.access_token, st.order_status,
                                 st.attempt_status, False, 0, txn)
            view = StatusView(st.order, st.access_token, st.store)
            return ReturnAnswer(out, await _with_history(db, view)
                                if st.has_returns_or_refunds else view)
    out = await record_payment_status(db, settings, stamp, txn, status, amount, provider)
    if db.is_postgres:
        # Recorded now (the return came first): the same one statement again empties
        # the cart of a paid order and reads the page.
        st = await settled_pg(db, stamp, cart_token=cart_token, customer_id=customer_id,
                              now=utcnow())
        assert st is not None  # the attempt was just found
        view = StatusView(st.order, st.access_token, st.store)
        return ReturnAnswer(out, await _with_history(db, view)
                            if st.has_returns_or_refunds else view)
    if out.order_status == "paid":
        async with db.uow() as uow:  # bought: those items leave the cart
            await carts.remove_ordered(uow, cart_token, customer_id, out.order_id)
            await uow.commit()
    view = await status_view(db, f"{out.order_id:06d}", out.access_token)
    return ReturnAnswer(out, view)
