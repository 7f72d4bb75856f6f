"""Refunds: money given back for an order, by any method, never more than was paid.

`record_refund` is the one place a refund is written. It moves `orders.refunded_cents`
with one conditional UPDATE (refunded + amount <= paid), so two returns at two tills,
or a return and an expiry job, can never together give back more than the order took:
the second gets 409 `refund_exceeds_paid` and its transaction rolls back.

A Paytrail refund is written `due` and sent by a background job (the refund stamp makes
a resend one refund at Paytrail); every other method is done on the spot (`ok`): cash
from the drawer, the card terminal (confirmed by the cashier), store credit or a gift
card (through giftcards.ledger).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict
from saumaton.db.uow import UnitOfWork
from saumaton.orders.models import Order
from saumaton.payments.models import PaytrailPayment, Refund

# bank_transfer: written "due" with the account in `reference`; finance pays it.
# exchange: the value went into a new sale in the same transaction (its `exchange` payment).
METHODS = ("paytrail", "card", "cash", "store_credit", "gift_card", "bank_transfer",
           "exchange")


async def record_refund(uow: UnitOfWork, actor: Actor, order_id: int, method: str,
                        amount_cents: int, *, return_id: int | None = None,
                        status: str = "ok", reference: str = "",
                        rounding_cents: int = 0, gift_card_id: int | None = None,
                        location_id: int | None = None,
                        drawer_session_id: int | None = None,
                        refund_stamp: str | None = None,
                        now: datetime | None = None) -> Refund:
    if method not in METHODS:
        raise ValueError(f"unknown refund method {method!r}")
    if amount_cents <= 0:
        raise ValueError("a refund is a positive amount")
    now = now or utcnow()
    moved = await uow.session.execute(
        update(Order)
        .where(Order.id == order_id,
               Order.refunded_cents + amount_cents <= Order.paid_cents)
        .values(refunded_cents=Order.refunded_cents + amount_cents)
        .execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        left = await uow.session.scalar(
            select(Order.paid_cents - Order.refunded_cents).where(Order.id == order_id))
        raise Conflict("a refund cannot exceed what was paid",
                       code="refund_exceeds_paid", extra={"refundable_cents": left or 0})
    refund = Refund(order_id=order_id, return_id=return_id, method=method, status=status,
                    amount_cents=amount_cents, rounding_cents=rounding_cents,
                    reference=reference, refund_stamp=refund_stamp,
                    gift_card_id=gift_card_id, location_id=location_id,
                    drawer_session_id=drawer_session_id, created_by=actor.label,
                    created_at=now, updated_at=now)
    uow.session.add(refund)
    await uow.session.flush()
    if refund.refund_stamp is None:
        refund.refund_stamp = f"refund-{refund.id}"
    customer_id = await uow.session.scalar(
        select(Order.customer_id).where(Order.id == order_id))
    await record(uow, actor, "refund.create", "order", order_id, {
        "refund_id": refund.id, "method": method, "status": status,
        "amount_cents": amount_cents, "return_id": return_id})
    uow.emit("refund.created", {"order_id": order_id, "refund_id": refund.id,
                                "method": method, "status": status,
                                "amount_cents": amount_cents, "return_id": return_id,
                                "customer_id": customer_id})
    return refund


async def paytrail_transaction_of(s: AsyncSession, order_id: int) -> str | None:
    """The Paytrail payment that paid the order (the one a refund goes back to)."""
    return (await s.scalars(
        select(PaytrailPayment.transaction_id)
        .where(PaytrailPayment.order_id == order_id, PaytrailPayment.status == "ok")
        .order_by(PaytrailPayment.id).limit(1))).first()


async def refunds_of(s: AsyncSession, order_id: int) -> list[Refund]:
    return list((await s.scalars(
        select(Refund).where(Refund.order_id == order_id).order_by(Refund.id))).all())
