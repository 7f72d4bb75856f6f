"""Paytrail refunds: the one way money goes back to a Paytrail payment.

A refund is written `due` (by a return, by a payment that came for a cancelled order,
by an expired pickup) through `payments.refunds.record_refund`. `send_due_refunds`,
run by every app process's checkout job (and right after a refund is written), asks
Paytrail for each: `POST /payments/{transactionId}/refund`, signed, with the refund's
own `refundStamp` so that asking again after a lost answer is still one refund at
Paytrail. Paytrail answers `ok` or `pending` (then a callback says `ok` or `fail`
later). A failure (Paytrail unreachable, refused) is counted on the refund and asked
again on the next run; after `MAX_ATTEMPTS` the refund is `fail`, visible to staff,
with Paytrail's last message.

Paytrail's refund callbacks (`GET /shop/checkout/refund/{success,cancel}`, signed)
go to `record_refund_callback`: found by the refund stamp or Paytrail's refund id,
idempotent (a callback repeated, late or before the answer changes a state once and
only forward: due → pending → ok | fail).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record as audit
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, Forbidden
from saumaton.db.uow import Database, UnitOfWork
from saumaton.orders.models import Order
from saumaton.orders.services import order_number
from saumaton.payments.models import Refund
from saumaton.payments.paytrail.client import PaytrailClient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
REFUND_CALLBACK_PATH = "/shop/checkout/refund"
_OPEN = ("due", "pending")


class InvalidRefundNotice(DomainError):
    status = 400
    code = "invalid_signature"


def callback_urls(settings: Settings) -> dict[str, str]:
    base = settings.resolved_public_url() + REFUND_CALLBACK_PATH
    return {"success": f"{base}/success", "cancel": f"{base}/cancel"}


async def _emit(uow: UnitOfWork, refund_id: int, status: str) -> None:
    row = (await uow.session.execute(
        select(Refund.order_id, Refund.amount_cents, Refund.return_id, Order.customer_id)
        .join(Order, Order.id == Refund.order_id).where(Refund.id == refund_id))).one()
    uow.emit(f"refund.{status}", {"refund_id": refund_id, "order_id": int(row[0]),
                                  "amount_cents": int(row[1]), "return_id": row[2],
                                  "customer_id": row[3], "status": status})


async def _send_one(db: Database, client: PaytrailClient, settings: Settings,
                    refund_id: int) -> bool:
    """Ask Paytrail for one due refund; True when Paytrail took it."""
    async with db.uow() as uow:
        q = select(Refund).where(Refund.id == refund_id, Refund.status == "due")
        if uow.db.is_postgres:
            # Held while Paytrail is asked: another process skips it (and the stamp
            # would make a second ask one refund anyway).
            q = q.with_for_update(skip_locked=True)
        refund = await uow.session.scalar(q)
        if refund is None:
            return False
        now = utcnow()
        try:
            answer = await client.refund(refund.reference, {
                "amount": refund.amount_cents, "refundStamp": refund.refund_stamp,
                "refundReference": order_number(refund.order_id),
                "callbackUrls": callback_urls(settings)})
        except DomainError as exc:
            refund.attempts += 1
            refund.error = exc.detail[:300]
            refund.updated_at = now
            if refund.attempts >= MAX_ATTEMPTS:
                refund.status = "fail"
                await uow.session.flush()
                await _emit(uow, refund.id, "fail")
                log.error("refund %s of order %s failed for good: %s", refund.id,
                          order_number(refund.order_id), exc.detail)
            else:
                log.warning("refund %s of order %s not taken yet: %s", refund.id,
                            order_number(refund.order_id), exc.detail)
            await uow.commit()
            return False
        status = "ok" if answer.get("status") == "ok" else "pending"
        refund.status = status
        refund.provider_refund_id = str(answer.get("transactionId") or "")[:64] or None
        refund.attempts += 1
        refund.error = ""
        refund.updated_at = now
        await uow.session.flush()
        await _emit(uow, refund.id, status)
        await uow.commit()
        return True


async def send_due_refunds(db: Database, client: PaytrailClient, settings: Settings,
                           limit: int = 20, *, order_id: int | None = None) -> int:
    """Ask Paytrail for every due Paytrail refund (oldest first), or only those of
    `order_id` (right after a request wrote them: a request never waits for other
    orders' refunds); returns how many it took. Safe with several app processes."""
    q = (select(Refund.id).where(Refund.method == "paytrail", Refund.status == "due")
         .order_by(Refund.id).limit(limit))
    if order_id is not None:
        q = q.where(Refund.order_id == order_id)
    async with db.reader() as s:
        ids = list((await s.scalars(q)).all())
    done = 0
    for refund_id in ids:
        if await _send_one(db, client, settings, int(refund_id)):
            done += 1
    return done


@dataclass(frozen=True)
class RefundNotice:
    refund_id: int
    status: str
    changed: bool


async def record_refund_callback(db: Database, client: PaytrailClient,
                                 params: Mapping[str, str]) -> RefundNotice:
    """Paytrail's signed notice about a refund: `ok` or `fail`. Raises
    InvalidRefundNotice (400) when it is not signed or names no refund of ours."""
    if not client.verify_return(params):
        raise InvalidRefundNotice("the refund notice is not signed by Paytrail")
    stamp = params.get("checkout-refund-stamp") or params.get("checkout-stamp") or ""
    provider_id = params.get("checkout-transaction-id") or ""
    status = params.get("checkout-status", "")
    if status not in ("ok", "fail", "pending"):
        raise InvalidRefundNotice(f"unknown refund status {status!r}")
    async with db.uow() as uow:
        refund_id = await uow.session.scalar(
            select(Refund.id).where(Refund.method == "paytrail", or_(
                Refund.refund_stamp == stamp,
                Refund.provider_refund_id == (provider_id or None))).limit(1))
        if refund_id is None:
            raise InvalidRefundNotice("no such refund of ours", code="refund_not_found")
        frm = ("due",) if status == "pending" else _OPEN
        values: dict[str, object] = {"status": status, "updated_at": utcnow()}
        if provider_id:
            values["provider_refund_id"] = provider_id[:64]
        if status == "fail":
            values["error"] = "Paytrail reported the refund failed"
        moved = await uow.session.execute(
            update(Refund).where(Refund.id == refund_id, Refund.status.in_(frm))
            .values(**values).execution_options(synchronize_session=False))
        changed = getattr(moved, "rowcount", 1) == 1
        if changed:
            await _emit(uow, int(refund_id), status)
        now_status = str(await uow.session.scalar(
            select(Refund.status).where(Refund.id == refund_id)))
        await uow.commit()
    return RefundNotice(int(refund_id), now_status, changed)


async def refunds_needing_attention(s: AsyncSession, limit: int = 100) -> list[Refund]:
    """Refunds someone must look at: Paytrail refunds that failed, and bank transfers
    finance has still to pay (oldest first)."""
    return list((await s.scalars(
        select(Refund).where(or_(Refund.status == "fail",
                                 (Refund.method == "bank_transfer") & (Refund.status == "due")))
        .order_by(Refund.id).limit(limit))).all())


async def retry_refund(uow: UnitOfWork, actor: Actor, refund_id: int) -> None:
    """A failed Paytrail refund asked for again (its attempts start over)."""
    actor.require("returns.override")
    moved = await uow.session.execute(
        update(Refund).where(Refund.id == refund_id, Refund.method == "paytrail",
                             Refund.status == "fail")
        .values(status="due", attempts=0, error="", updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        raise Conflict("only a failed Paytrail refund is asked for again",
                       code="refund_not_failed")
    await audit(uow, actor, "refund.retried", "refund", refund_id)


async def mark_transfer_paid(uow: UnitOfWork, actor: Actor, refund_id: int,
                             reference: str = "") -> None:
    """Finance paid a refund by bank transfer."""
    actor.require("orders.read")
    if not actor.can("returns.override") and not any(g.role == "finance"
                                                     for g in actor.grants):
        raise Forbidden("only finance or a manager marks a transfer paid", code="forbidden")
    moved = await uow.session.execute(
        update(Refund).where(Refund.id == refund_id, Refund.method == "bank_transfer",
                             Refund.status == "due")
        .values(status="ok", error=reference[:300], updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        raise Conflict("this is not a bank transfer still to pay", code="refund_not_due")
    await _emit(uow, refund_id, "ok")
    await audit(uow, actor, "refund.transfer_paid", "refund", refund_id,
                {"reference": reference[:100]})
