"""Where an order's fulfilment stands for one staff member: the locations preparing it,
the steps they may take next, whether they may cancel it, and its history (the staff
steps as audited, with who took them, and the stamps of steps nobody audited: the
pickup job's reminder, the shopper's order). The order pages show the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import entries_for
from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotFound
from saumaton.fulfilment.steps import CANCELLABLE, fulfil_locations, may_fulfil
from saumaton.orders.lifecycle import OrderStatus, can_move
from saumaton.orders.models import Order
from saumaton.staff.services import staff_names

# The steps a history names (audited as order.<step>, or stamped on the order).
STEPS = ("ordered", "picking", "ready", "reminded", "packed", "shipped", "collected",
         "cancelled")


@dataclass(frozen=True)
class HistoryStep:
    at: datetime
    step: str  # one of STEPS, or another audited action (e.g. "return.cancelled")
    who: str  # a staff member's name; "" for a stamp without an audit entry


@dataclass(frozen=True)
class FulfilmentState:
    order_id: int
    status: str
    delivery_method: str | None
    locations: list[int]
    actions: list[str]  # picking | ready | packed | shipped, those allowed now
    may_cancel: bool
    history: list[HistoryStep]  # oldest first


async def fulfilment_state(s: AsyncSession, actor: Actor, order_id: int) -> FulfilmentState:
    """404 for no such order; 403 unless `actor` may read orders where it is prepared."""
    order = await s.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    places = await fulfil_locations(s, order)
    readable: set[int | None] = set(places) or {None}
    if not any(actor.can("orders.read", loc) for loc in readable):
        raise Forbidden("you may not read this order", code="forbidden")
    method = order.delivery_method
    may = may_fulfil(actor, places) and method is not None
    allowed = {"picking": True, "ready": method == "pickup", "packed": method == "home",
               "shipped": method == "home"}
    actions = [a for a, ok in allowed.items()
               if may and ok and can_move(OrderStatus(order.status), OrderStatus(a))]
    return FulfilmentState(
        order_id=order.id, status=str(order.status), delivery_method=method,
        locations=sorted(places), actions=actions,
        may_cancel=may and order.status in CANCELLABLE,
        history=await _history(s, order))


async def _history(s: AsyncSession, order: Order) -> list[HistoryStep]:
    entries = await entries_for(s, "order", order.id)
    names = await staff_names(s, [e.actor for e in entries])
    lines: list[HistoryStep] = []
    audited: set[str] = set()
    for e in entries:
        step = e.action.removeprefix("order.")
        if step in STEPS:
            audited.add(step)
        lines.append(HistoryStep(e.at, step if step in STEPS else e.action, names[e.actor]))
    stamps = (("ordered", order.created_at), ("ready", order.ready_at),
              ("reminded", order.pickup_reminded_at), ("packed", order.packed_at),
              ("shipped", order.shipped_at), ("collected", order.collected_at))
    lines += [HistoryStep(at, step, "") for step, at in stamps
              if at is not None and step not in audited]
    return sorted(lines, key=lambda ln: ln.at)
