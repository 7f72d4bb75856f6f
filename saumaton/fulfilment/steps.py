"""The staff's fulfilment steps on a web order, each one lifecycle transition.

picking (any web order) → ready (click & collect: the shopper gets the pickup code)
or packed → shipped (home delivery: carrier and tracking number, e-mailed). A paid web
order can also be cancelled: its stock goes back on sale, the Paytrail part is
recorded as a refund due (sent by the refund job), points spent come back, points
earned are taken back and the shopper gets an e-mail.

Staff need `orders.fulfil` at a location of the order: the pickup store, or a location
its home-delivery lines ship from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.checkout.services import order_status_path, return_points
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.giftcards.sales import refund_spent_cards
from saumaton.inventory.models import StockMovement, StockReservation, StockTransfer
from saumaton.inventory.services import Move, apply_moves, release
from saumaton.locations.models import Location
from saumaton.loyalty.ledger import POINTS_METHOD, reverse_for_order
from saumaton.mail.messages import order_cancelled, order_shipped, pickup_ready
from saumaton.mail.queue import queue_mail
from saumaton.orders.lifecycle import InvalidTransition, OrderStatus
from saumaton.orders.lifecycle import transition as lifecycle_transition
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.schemas import OrderOut
from saumaton.orders.services import get_order, order_number
from saumaton.payments.models import Payment
from saumaton.payments.refunds import paytrail_transaction_of, record_refund

S = OrderStatus
# A ready pickup's reservation outlives the hold by this much, so the pickup job (not
# the reservation sweep) is what ends it: reminder, cancellation, refund, e-mail.
RESERVATION_MARGIN = timedelta(days=1)
# Paid web orders not yet handed over or sent (pending ones the unpaid-order job ends).
CANCELLABLE = frozenset({S.PAID, S.PICKING, S.READY, S.PACKED})
CARRIER_MAX = 60
TRACKING_MAX = 100


async def fulfil_locations(s: AsyncSession, order: Order) -> set[int]:
    """Where the order is prepared: the pickup store, or the locations its lines ship
    from (a store sale: its store)."""
    if order.delivery_method == "home":
        rows = await s.scalars(select(OrderLine.location_id).where(
            OrderLine.order_id == order.id, OrderLine.location_id.is_not(None),
            OrderLine.taken_at_sale.is_(False)).distinct())
        return {int(r) for r in rows if r is not None}
    return {order.location_id} if order.location_id is not None else set()


def may_fulfil(actor: Actor, locations: set[int]) -> bool:
    if not locations:
        return actor.can("orders.fulfil", everywhere=True)
    return any(actor.can("orders.fulfil", loc) for loc in locations)


async def _order(uow: UnitOfWork, actor: Actor, order_id: int) -> Order:
    """The order, locked (PostgreSQL) so a handover or the pickup job waits for us."""
    q = select(Order).where(Order.id == order_id)
    if uow.db.is_postgres:
        q = q.with_for_update()
    order: Order | None = await uow.session.scalar(q)
    if order is None:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    if not may_fulfil(actor, await fulfil_locations(uow.session, order)):
        raise Forbidden(f"{actor.name or actor.label} may not fulfil order "
                        f"{order_number(order_id)}", code="forbidden")
    if order.delivery_method is None:
        raise InvalidTransition(f"order {order_number(order_id)} is a sale in the store: "
                                "there is nothing to prepare", code="not_a_web_order",
                                extra={"order_status": order.status})
    return order


def _needs(order: Order, method: str, to: OrderStatus) -> None:
    if order.delivery_method != method:
        what = "click & collect" if method == "pickup" else "home delivery"
        raise InvalidTransition(
            f"order {order_number(order.id)} is not a {what} order: it cannot become "
            f"{to.value}", extra={"order_status": order.status, "to": to.value})


def status_url(settings: Settings, order: Order) -> str:
    return settings.resolved_public_url() + order_status_path(order.id,
                                                              order.access_token or "")


async def _fresh(uow: UnitOfWork, order_id: int) -> OrderOut:
    await uow.session.flush()
    return await get_order(uow.session, order_id)


async def start_picking(uow: UnitOfWork, actor: Actor, order_id: int) -> OrderOut:
    order = await _order(uow, actor, order_id)
    await lifecycle_transition(uow, order, S.PICKING, actor=actor,
                               data={"delivery": order.delivery_method})
    return await _fresh(uow, order_id)


async def mark_ready(uow: UnitOfWork, actor: Actor, settings: Settings, order_id: int,
                     now: datetime | None = None) -> OrderOut:
    """Click & collect: the goods wait at the store. The hold (pickup_hold_days) counts
    from now; the shopper gets the pickup code and QR by e-mail."""
    now = now or utcnow()
    order = await _order(uow, actor, order_id)
    _needs(order, "pickup", S.READY)
    # An endless-aisle pickup: its goods come on a transfer; not ready before they came.
    pending = await uow.session.scalar(select(StockTransfer.id).where(
        StockTransfer.order_id == order_id,
        StockTransfer.status.in_(("requested", "in_transit"))).limit(1))
    if pending is not None:
        raise Conflict("the order's goods have not arrived at the store yet",
                       code="transfer_pending", extra={"transfer_id": int(pending)})
    await lifecycle_transition(uow, order, S.READY, actor=actor, now=now,
                               data={"location_id": order.location_id})
    hold_until = now + timedelta(days=settings.pickup_hold_days)
    await uow.session.execute(update(StockReservation).where(
        StockReservation.reference == order_number(order.id),
        StockReservation.status == "active")
        .values(expires_at=hold_until + RESERVATION_MARGIN)
        .execution_options(synchronize_session=False))
    out = await _fresh(uow, order_id)
    store = await uow.session.get(Location, order.location_id)
    mail = pickup_ready(out, status_url=status_url(settings, order), settings=settings,
                        store_name=store.name if store else "",
                        store_address=store.address if store else "", hold_until=hold_until)
    await queue_mail(uow, kind="pickup_ready", to=order.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=out.number)
    return out


async def mark_packed(uow: UnitOfWork, actor: Actor, order_id: int) -> OrderOut:
    order = await _order(uow, actor, order_id)
    _needs(order, "home", S.PACKED)
    await lifecycle_transition(uow, order, S.PACKED, actor=actor)
    return await _fresh(uow, order_id)


def clean_tracking(carrier: str, tracking_number: str) -> tuple[str, str]:
    """Both are needed; every problem at once (422 with the fields)."""
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    problems: list[tuple[str, str, str]] = []
    if not carrier:
        problems.append(("carrier", "carrier_required", "name the carrier"))
    elif len(carrier) > CARRIER_MAX:
        problems.append(("carrier", "carrier_too_long",
                         f"the carrier is at most {CARRIER_MAX} characters"))
    if not tracking_number:
        problems.append(("tracking_number", "tracking_number_required",
                         "give the parcel's tracking number"))
    elif len(tracking_number) > TRACKING_MAX:
        problems.append(("tracking_number", "tracking_number_too_long",
                         f"the tracking number is at most {TRACKING_MAX} characters"))
    if problems:
        field, code, message = problems[0]
        raise ValidationFailed(message, code=code, field=field, extra={"errors": [
            {"field": f, "code": c, "message": m} for f, c, m in problems]})
    return carrier, tracking_number


async def mark_shipped(uow: UnitOfWork, actor: Actor, settings: Settings, order_id: int,
                       carrier: str, tracking_number: str) -> OrderOut:
    """Home delivery: handed to the carrier; the shopper gets the tracking number."""
    carrier, tracking_number = clean_tracking(carrier, tracking_number)
    order = await _order(uow, actor, order_id)
    _needs(order, "home", S.SHIPPED)
    await lifecycle_transition(uow, order, S.SHIPPED, actor=actor, values={
        "carrier": carrier, "tracking_number": tracking_number},
        data={"carrier": carrier, "tracking_number": tracking_number})
    out = await _fresh(uow, order_id)
    mail = order_shipped(out, status_url=status_url(settings, order), settings=settings)
    await queue_mail(uow, kind="order_shipped", to=order.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=out.number)
    return out


@dataclass(frozen=True)
class Cancelled:
    order: OrderOut
    refund_cents: int  # recorded as a Paytrail refund due


async def _restock(uow: UnitOfWork, actor: Actor, order: Order, number: str) -> None:
    """Units held for the order go back on sale: active reservations are released, units
    already taken out of stock (a paid home delivery) are put back where they left."""
    s = uow.session
    for rid in (await s.scalars(select(StockReservation.id).where(
            StockReservation.reference == number, StockReservation.status == "active")
            .order_by(StockReservation.variant_id, StockReservation.id))).all():
        await release(uow, int(rid))
    taken: dict[tuple[int, int], int] = defaultdict(int)
    for variant_id, location_id, qty in (await s.execute(
            select(StockMovement.variant_id, StockMovement.location_id,
                   func.sum(StockMovement.quantity))
            .where(StockMovement.order_id == order.id)
            .group_by(StockMovement.variant_id, StockMovement.location_id))).all():
        taken[(int(variant_id), int(location_id))] += int(qty or 0)
    moves = [Move(v, loc, -qty, "return", reference=number, order_id=order.id,
                  reason="order cancelled") for (v, loc), qty in sorted(taken.items()) if qty < 0]
    if moves:
        await apply_moves(uow, actor, moves)


async def _paytrail_refundable(s: AsyncSession, order: Order) -> int:
    """What came in through Paytrail for this order and has not gone back yet."""
    net = int(await s.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.order_id == order.id, Payment.method == "paytrail")) or 0)
    points = int(await s.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.order_id == order.id, Payment.method == POINTS_METHOD)) or 0)
    return max(0, min(net, order.paid_cents - order.refunded_cents - points))


async def cancel_order(uow: UnitOfWork, actor: Actor, settings: Settings, order_id: int, *,
                       reason: str = "cancelled_by_shop", now: datetime | None = None,
                       checked: bool = True) -> Cancelled:
    """Cancel a web order that is paid (or being prepared, or waiting for pickup).
    `checked=False`: the caller (the pickup job) has locked the order already and acts
    for the shop."""
    now = now or utcnow()
    if checked:
        order = await _order(uow, actor, order_id)
    else:
        found = await uow.session.get(Order, order_id)
        if found is None:
            raise NotFound(f"no order {order_id}", code="order_not_found")
        order = found
    s = uow.session
    frm = OrderStatus(order.status)
    if frm not in CANCELLABLE:
        raise InvalidTransition(
            f"order {order_number(order_id)} is {frm.value}; it cannot be cancelled",
            extra={"order_status": frm.value, "to": "cancelled"})
    if order.drawer_session_id is not None:  # an endless-aisle sale, paid at the till
        raise InvalidTransition(
            f"order {order_number(order_id)} was paid at a till: take it back as a return "
            "at the till (the money goes back the way it was paid)",
            code="paid_at_till", extra={"order_status": frm.value, "to": "cancelled"})
    number = order_number(order.id)
    refund = await _paytrail_refundable(s, order)
    await lifecycle_transition(uow, order, S.CANCELLED, actor=actor, now=now,
                               values={"payment_due_at": None},
                               data={"reason": reason, "refund_cents": refund})
    await _restock(uow, actor, order, number)
    if refund:
        await record_refund(uow, actor, order.id, "paytrail", refund, status="due",
                            reference=await paytrail_transaction_of(s, order.id) or "",
                            now=now)
    await return_points(uow, order, reason, now, settings=settings)
    await refund_spent_cards(uow, actor, order.id, now=now)
    await reverse_for_order(uow, order.id, order.total_cents, reason,
                            key=f"reverse:cancel:{order.id}", now=now, settings=settings)
    out = await _fresh(uow, order_id)
    if order.email:
        mail = order_cancelled(out, status_url=status_url(settings, order), settings=settings,
                               reason=reason, refund_cents=refund)
        await queue_mail(uow, kind="order_cancelled", to=order.email, subject=mail.subject,
                         text=mail.text, html=mail.html, reference=number)
    return Cancelled(out, refund)

