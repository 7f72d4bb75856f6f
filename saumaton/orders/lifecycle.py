"""The one order lifecycle: every state an order can be in and the moves between them.

An order's status changes only through `transition` (or `transition_row` for a
caller that holds no ORM object). Each move is one conditional UPDATE (the order must
still be in the state the caller saw, so two tills or two app processes never both
move it), sets the step's timestamp, writes the outbox event `order.<state>` and, for
a staff member's action or any cancellation, an audit entry — all in the caller's
transaction.

    pending ──► paid ──► picking ──► ready ──► collected ─┐
       │          │  └──────┬─────► packed ──► shipped ───┼─► partly_returned ─► returned
       ▼          ▼         ▼                              │
    cancelled  cancelled  cancelled           completed ───┘  (a store sale)
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from saumaton.audit.services import record as audit
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict
from saumaton.db.uow import UnitOfWork
from saumaton.orders.models import Order
from saumaton.orders.writer import forget_summary_days


class OrderStatus(StrEnum):
    PENDING = "pending"  # a web order awaiting payment
    PAID = "paid"
    PICKING = "picking"  # staff are collecting the goods
    READY = "ready"  # click & collect: waiting at the pickup store
    PACKED = "packed"  # home delivery: packed, waiting for the carrier
    SHIPPED = "shipped"
    COLLECTED = "collected"  # click & collect: handed over
    COMPLETED = "completed"  # a store sale: paid and handed over at once
    PARTLY_RETURNED = "partly_returned"
    RETURNED = "returned"  # every unit back, the price paid refunded
    CANCELLED = "cancelled"


S = OrderStatus
# Returns are taken from any state in which the customer has (or may have) the goods;
# a paid order that was never marked shipped (an API order, a home delivery shipped
# outside the system) can be returned too.
_RETURNABLE = frozenset({S.PAID, S.PICKING, S.READY, S.PACKED, S.SHIPPED, S.COLLECTED,
                         S.COMPLETED, S.PARTLY_RETURNED})
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.PICKING, S.READY, S.PACKED, S.SHIPPED, S.COLLECTED, S.CANCELLED,
                       S.PARTLY_RETURNED, S.RETURNED}),
    S.PICKING: frozenset({S.READY, S.PACKED, S.SHIPPED, S.COLLECTED, S.CANCELLED,
                          S.PARTLY_RETURNED, S.RETURNED}),
    S.READY: frozenset({S.COLLECTED, S.CANCELLED, S.PARTLY_RETURNED, S.RETURNED}),
    S.PACKED: frozenset({S.SHIPPED, S.CANCELLED, S.PARTLY_RETURNED, S.RETURNED}),
    S.SHIPPED: frozenset({S.PARTLY_RETURNED, S.RETURNED}),
    S.COLLECTED: frozenset({S.PARTLY_RETURNED, S.RETURNED}),
    S.COMPLETED: frozenset({S.PARTLY_RETURNED, S.RETURNED}),
    S.PARTLY_RETURNED: frozenset({S.PARTLY_RETURNED, S.RETURNED}),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
}
# Paid for and not given back or cancelled: counts as a sale (figures, tiers, history).
SOLD = frozenset({S.PAID, S.PICKING, S.READY, S.PACKED, S.SHIPPED, S.COLLECTED,
                  S.COMPLETED, S.PARTLY_RETURNED})
# A web order still to be handed over or sent: the fulfilment queues.
OPEN_FULFILMENT = frozenset({S.PAID, S.PICKING, S.READY, S.PACKED})
# The step's timestamp column, set when the order enters the state.
_STAMPS = {S.READY: "ready_at", S.PACKED: "packed_at", S.SHIPPED: "shipped_at",
           S.COLLECTED: "collected_at"}


def returnable(status: str) -> bool:
    return OrderStatus(status) in _RETURNABLE


def can_move(frm: str | OrderStatus, to: OrderStatus) -> bool:
    return to in TRANSITIONS[OrderStatus(frm)]


class InvalidTransition(Conflict):
    code = "invalid_transition"


def _check(order_id: int, frm: OrderStatus, to: OrderStatus) -> None:
    if to not in TRANSITIONS[frm]:
        raise InvalidTransition(
            f"order {order_id:06d} is {frm.value}; it cannot become {to.value}",
            extra={"order_status": frm.value, "to": to.value})


async def transition(uow: UnitOfWork, order: Order, to: OrderStatus, *,
                     actor: Actor | None = None, data: dict[str, Any] | None = None,
                     values: dict[str, Any] | None = None, now: datetime | None = None,
                     ) -> None:
    """Move `order` (an ORM object in `uow`) to `to`. `values` are further columns set in
    the same UPDATE (e.g. a tracking number); `data` goes into the event and audit entry.
    Raises InvalidTransition (409) when the move is not allowed or another request moved
    the order first."""
    frm = OrderStatus(order.status)
    await _move(uow, order.id, frm, to, actor=actor, data=data, values=values, now=now,
                customer_id=order.customer_id)
    set_committed_value(order, "status", to.value)
    for col, val in (values or {}).items():
        set_committed_value(order, col, val)
    stamp = _STAMPS.get(to)
    if stamp and stamp not in (values or {}):
        set_committed_value(order, stamp, now or utcnow())


async def transition_row(uow: UnitOfWork, order_id: int, frm: str | OrderStatus,
                         to: OrderStatus, *, customer_id: int | None = None,
                         actor: Actor | None = None, data: dict[str, Any] | None = None,
                         values: dict[str, Any] | None = None,
                         now: datetime | None = None) -> None:
    """`transition` for a caller that read the order's status without loading it."""
    await _move(uow, order_id, OrderStatus(frm), to, actor=actor, data=data, values=values,
                now=now, customer_id=customer_id)


async def _move(uow: UnitOfWork, order_id: int, frm: OrderStatus, to: OrderStatus, *,
                actor: Actor | None, data: dict[str, Any] | None,
                values: dict[str, Any] | None, now: datetime | None,
                customer_id: int | None) -> None:
    _check(order_id, frm, to)
    now = now or utcnow()
    cols: dict[str, Any] = {"status": to.value}
    stamp = _STAMPS.get(to)
    if stamp:
        cols[stamp] = now
    cols.update(values or {})
    # Becoming a sale (paid) or ceasing to be one (cancelled) changes the figures of the
    # order's day, which the sales summary may already hold: that day is read live again
    # until the reports job rebuilds it.
    changes_sales = (frm is S.PENDING) != (to is S.CANCELLED)
    stmt = (update(Order).where(Order.id == order_id, Order.status == frm.value)
            .values(**cols).execution_options(synchronize_session=False))
    if changes_sales:
        row = (await uow.session.execute(
            stmt.returning(Order.created_at, Order.sold_at))).first()
        if row is not None:
            await forget_summary_days(uow, row[1] or row[0])
        changed = row is not None
    else:
        result = await uow.session.execute(stmt)
        changed = getattr(result, "rowcount", 1) == 1
    if not changed:
        raise InvalidTransition(
            f"order {order_id:06d} changed while you were looking at it; reload it",
            code="order_changed", extra={"order_status": frm.value, "to": to.value})
    uow.emit(*moved_event(order_id, frm, to, customer_id=customer_id, data=data))
    if audited(actor, to):
        assert actor is not None
        await audit(uow, actor, f"order.{to.value}", "order", order_id,
                    {"from": frm.value, **(data or {})})


def moved_event(order_id: int, frm: OrderStatus, to: OrderStatus, *,
                customer_id: int | None, data: dict[str, Any] | None = None
                ) -> tuple[str, dict[str, Any]]:
    """The outbox event of a move: (topic, payload)."""
    return f"order.{to.value}", {"order_id": order_id, "from": frm.value, "status": to.value,
                                 "customer_id": customer_id, **(data or {})}


def audited(actor: Actor | None, to: OrderStatus) -> bool:
    """Staff actions are audited, and so is every cancellation (a job's too: the order's
    history then says when and why)."""
    return actor is not None and (not actor.system or to is S.CANCELLED)


def move_cte_pg(order_id: int, frm: OrderStatus, to: OrderStatus, *, id_param: str,
                now_param: str, set_sql: str = "") -> str:
    """PostgreSQL: a move as the CTE `moved` of a caller's statement that merges its
    other writes into the same round trip (checkout/paid_pg.py). The same conditional
    UPDATE as `transition` (the order must still be `frm`), RETURNING id, created_at and
    sold_at (a sale's day, for `forget_summary_days`); `set_sql` sets further columns.
    The caller emits `moved_event` and writes the audit entry when `audited` says so,
    and treats no row from `moved` as another request having moved the order first."""
    _check(order_id, frm, to)
    stamp = _STAMPS.get(to)
    sets = [f"status = '{to.value}'"] + ([f"{stamp} = {now_param}::timestamptz"] if stamp else []) \
        + ([set_sql] if set_sql else [])
    return (f"moved AS (UPDATE orders SET {', '.join(sets)} "
            f"WHERE id = {id_param}::bigint AND status = '{frm.value}' "
            "RETURNING id, created_at, sold_at)")
