"""Sending the follow-ups that are due, with the customer's consent checked now.

A pass (`send_due_in`) first records what the mail sender did with the mails queued
earlier (`settle_queued`), cancels pending follow-ups of orders that were returned or
cancelled (nothing of the matching products kept), then claims due rows — FOR UPDATE
SKIP LOCKED on PostgreSQL, so two processes never take the same row; the row's status
is re-checked after the claim — and for each one either queues the mail through
`mail.marketing.queue_marketing_mail` (which checks the current marketing_email consent
and adds the one-click unsubscribe headers) or closes it:

- queued: the mail is in the outbox (`mail_id`), its subject kept for the timeline;
  then, as the mail sender recorded it, sent | suppressed (the consent was withdrawn
  before the sender's turn) | failed (undeliverable, or out of attempts);
- skipped_no_consent: the customer withdrew the consent after the purchase;
- skipped_no_address: no e-mail address any more (erased, removed);
- cancelled: the order was returned or cancelled (`returned`), the sequence was
  switched off (`disabled`) or the step removed (`step_removed`).

Queueing emits `followup.queued`; the outcome `followup.sent`, a mail not sent
(skipped, suppressed, failed) `followup.skipped` (the timeline updates live).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.customers.models import Customer
from saumaton.db.uow import Database, UnitOfWork
from saumaton.followups.models import Followup, FollowupSequence, FollowupStep
from saumaton.followups.schedule import (
    BoughtLine,
    bought_lines,
    category_ancestors,
    claim_unfollowed,
    due_orders,
    email_of,
    schedule_order,
)
from saumaton.followups.state import MAIL_OUTCOMES, QUEUED
from saumaton.followups.templates import fill, paragraphs
from saumaton.i18n import N_
from saumaton.locations.models import Channel, Location
from saumaton.mail.marketing import queue_marketing_mail, unsubscribe_url
from saumaton.mail.messages import Mail
from saumaton.mail.models import OutgoingMail
from saumaton.mail.render import gettext, render_mail
from saumaton.orders.lifecycle import OrderStatus
from saumaton.orders.models import Order
from saumaton.orders.services import order_number

log = logging.getLogger(__name__)

BATCH = 100
JOB_SECONDS = 60.0
MAIL_KIND = "followup"
_GONE = (OrderStatus.CANCELLED.value, OrderStatus.RETURNED.value)
_MAYBE_GONE = (*_GONE, OrderStatus.PARTLY_RETURNED.value)


@dataclass(frozen=True)
class PassResult:
    scheduled: int = 0
    queued: int = 0  # mails handed to the outbox in this pass
    skipped: int = 0
    cancelled: int = 0
    settled: int = 0  # queued ones whose outcome (sent, suppressed, failed) was recorded


def _matching(lines: list[BoughtLine], category_id: int,
              ancestors: dict[int, list[int]]) -> list[BoughtLine]:
    return [ln for ln in lines if ln.category_id is not None
            and category_id in ancestors.get(ln.category_id, [])]


async def _still_bought(session: AsyncSession, row: Followup, status: str,
                        ancestors: dict[int, list[int]], category_id: int | None,
                        lang: str) -> list[BoughtLine]:
    """The lines this follow-up is about that the customer still has ([] when returned
    or cancelled)."""
    if status in _GONE:
        return []
    lines = await bought_lines(session, row.order_id, lang)
    if row.kind == "refill":
        return [ln for ln in lines if ln.product_id == row.product_id]
    return _matching(lines, category_id, ancestors) if category_id is not None else []


def _topic(status: str) -> str:
    return {"queued": "followup.queued", "sent": "followup.sent"}.get(
        status, "followup.skipped")


def _close(uow: UnitOfWork, row: Followup, status: str, now: datetime, *,
           reason: str = "") -> None:
    row.status, row.reason, row.closed_at = status, reason, now
    if status != "cancelled" and row.customer_id is not None:
        uow.emit(_topic(status), {"customer_id": row.customer_id, "followup_id": row.id,
                                  "order_id": row.order_id, "status": status})


async def settle_queued(uow: UnitOfWork, limit: int = 500) -> int:
    """Queued follow-ups whose mail the mail sender has finished with take its outcome
    (`sent`, `suppressed`, `failed`; the outbox row is the record of delivery), each
    emitting `followup.sent` or `followup.skipped`. Claimed FOR UPDATE SKIP LOCKED on
    PostgreSQL: two passes at once settle each row once. `closed_at` stays the time it
    was queued (the timeline's place for it does not move)."""
    q = (select(Followup, OutgoingMail.status)
         .join(OutgoingMail, OutgoingMail.id == Followup.mail_id)
         .where(Followup.status == QUEUED, OutgoingMail.status.in_(MAIL_OUTCOMES))
         .order_by(Followup.id).limit(limit))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True, of=Followup)
    n = 0
    for row, outcome in (await uow.session.execute(q)).all():
        if row.status != QUEUED:  # settled by another pass before our claim
            continue
        row.status = str(outcome)
        if row.customer_id is not None:
            uow.emit(_topic(row.status), {
                "customer_id": row.customer_id, "followup_id": row.id,
                "order_id": row.order_id, "status": row.status})
        n += 1
    await uow.session.flush()
    return n


async def cancel_returned(uow: UnitOfWork, now: datetime | None = None,
                          limit: int = 500) -> int:
    """Pending follow-ups of orders returned or cancelled since they were scheduled
    (a partly returned order: those whose products all went back). The mail itself
    checks again when due; this keeps the lists and counts true before that."""
    now = now or utcnow()
    s = uow.session
    rows = (await s.execute(
        select(Followup, Order.status, FollowupSequence.category_id)
        .join(Order, Order.id == Followup.order_id)
        .outerjoin(FollowupSequence, FollowupSequence.id == Followup.sequence_id)
        .where(Followup.status == "pending", Order.status.in_(_MAYBE_GONE))
        # whole returns and cancellations first: they need no look at the lines
        .order_by(case((Order.status == OrderStatus.PARTLY_RETURNED.value, 1), else_=0),
                  Followup.id)
        .limit(limit))).all()
    if not rows:
        return 0
    ancestors = await category_ancestors(s)
    n = 0
    for row, status, category_id in rows:
        if not await _still_bought(s, row, str(status), ancestors, category_id, row.language):
            _close(uow, row, "cancelled", now, reason="returned")
            n += 1
    await s.flush()
    return n


def render_followup(settings: Settings, *, lang: str, subject: str, body: str,
                    unsubscribe: str) -> Mail:
    text, html = render_mail("followup", lang, settings, {
        "subject": subject, "body": body, "paragraphs": paragraphs(body),
        "unsubscribe_url": unsubscribe})
    return Mail(subject=subject, text=text, html=html)


async def _values(s: AsyncSession, settings: Settings, row: Followup,
                  lines: list[BoughtLine]) -> dict[str, str]:
    first = await s.scalar(select(Customer.first_name).where(Customer.id == row.customer_id))
    where = (await s.execute(
        select(Channel.kind, Location.name).select_from(Order)
        .join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .where(Order.id == row.order_id))).first()
    store = gettext(row.language, N_("the webshop"))
    if where is not None and where[0] != "webshop" and where[1]:
        store = str(where[1])
    return {"first_name": str(first or ""),
            "product": ", ".join(dict.fromkeys(ln.product for ln in lines)),
            "shade": ", ".join(dict.fromkeys(ln.shade for ln in lines if ln.shade)),
            "shop": settings.business_name, "store": store,
            "order_number": order_number(row.order_id),
            "shop_url": settings.resolved_public_url(),
            "refill_days": str(row.interval_days or "")}


async def send_one(uow: UnitOfWork, settings: Settings, row: Followup,
                   now: datetime) -> str:
    """Send or close one claimed pending follow-up; its new status."""
    s = uow.session
    info = (await s.execute(
        select(Order.status, FollowupSequence.enabled, FollowupSequence.category_id)
        .select_from(Order)
        .outerjoin(FollowupSequence, FollowupSequence.id == row.sequence_id)
        .where(Order.id == row.order_id))).first()
    step = await s.get(FollowupStep, row.step_id) if row.step_id is not None else None
    if info is None or info.category_id is None:
        _close(uow, row, "cancelled", now, reason="disabled")
        return row.status
    if not info.enabled:
        _close(uow, row, "cancelled", now, reason="disabled")
        return row.status
    if step is None:
        _close(uow, row, "cancelled", now, reason="step_removed")
        return row.status
    lines = await _still_bought(s, row, str(info.status), await category_ancestors(s),
                                int(info.category_id), row.language)
    if not lines:
        _close(uow, row, "cancelled", now, reason="returned")
        return row.status
    to = await email_of(s, row.customer_id) if row.customer_id is not None else ""
    erased = row.customer_id is None or await s.scalar(
        select(Customer.erased_at).where(Customer.id == row.customer_id)) is not None
    if not to or erased:
        _close(uow, row, "skipped_no_address", now)
        return row.status
    assert row.customer_id is not None
    values = await _values(s, settings, row, lines)
    subject = fill(step.subject_en if row.language == "en" else step.subject_fi, values)
    body = fill(step.body_en if row.language == "en" else step.body_fi, values)
    mail = render_followup(settings, lang=row.language, subject=subject, body=body,
                           unsubscribe=unsubscribe_url(settings, row.customer_id))
    mail_id = await queue_marketing_mail(
        uow, settings, customer_id=row.customer_id, kind=MAIL_KIND, to=to,
        subject=mail.subject, text=mail.text, html=mail.html,
        reference=f"followup:{row.id}")
    if mail_id is None:
        _close(uow, row, "skipped_no_consent", now)
        return row.status
    row.mail_id, row.subject = mail_id, subject[:300]
    _close(uow, row, QUEUED, now)  # not sent yet: the mail sender's outcome settles it
    return row.status


async def send_due_in(uow: UnitOfWork, settings: Settings, now: datetime | None = None,
                      limit: int = BATCH) -> PassResult:
    """In the caller's transaction: record the outcomes of mails queued earlier, cancel
    what was returned, then queue or close the due follow-ups (at most `limit`)."""
    now = now or utcnow()
    settled = await settle_queued(uow)
    cancelled = await cancel_returned(uow, now)
    q = (select(Followup).where(Followup.status == "pending", Followup.due_at <= now)
         .order_by(Followup.due_at, Followup.id).limit(limit))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True, of=Followup)
    rows = list((await uow.session.scalars(q)).all())
    queued = skipped = 0
    for row in rows:
        if row.status != "pending":  # closed by another process before our claim
            continue
        status = await send_one(uow, settings, row, now)
        queued += status == QUEUED
        skipped += status.startswith("skipped")
        cancelled += status == "cancelled"
    await uow.session.flush()
    return PassResult(0, queued, skipped, cancelled, settled)


async def anything_to_schedule(session: AsyncSession) -> bool:
    """Whether a purchase can lead to anything: a sequence in use, or a pending refill
    reminder a new purchase would cancel. A shop without follow-ups pays no write per
    purchase (the purchases of the last days are scheduled once a sequence is on)."""
    on = await session.scalar(select(FollowupSequence.id)
                              .where(FollowupSequence.enabled.is_(True)).limit(1))
    if on is not None:
        return True
    return await session.scalar(select(Followup.id).where(
        Followup.status == "pending", Followup.kind == "refill").limit(1)) is not None


async def run_once(db: Database, settings: Settings, now: datetime | None = None) -> PassResult:
    """One pass of the job: schedule the new purchases (each order in its own
    transaction), then send what is due. Safe in several processes at once."""
    async with db.reader() as r:
        ids = await due_orders(r, now) if await anything_to_schedule(r) else []
    if ids:  # those that can lead to nothing, claimed together
        async with db.uow() as uow:
            ids = await claim_unfollowed(uow, ids, now)
            await uow.commit()
    scheduled = 0
    for order_id in ids:
        async with db.uow() as uow:
            scheduled += await schedule_order(uow, settings, order_id, now) or 0
            await uow.commit()
    async with db.uow() as uow:
        out = await send_due_in(uow, settings, now)
        await uow.commit()
    return PassResult(scheduled, out.queued, out.skipped, out.cancelled, out.settled)


async def run_followups_job(db: Database, settings: Callable[[], Settings],
                            stop: asyncio.Event | None = None,
                            every_seconds: float = JOB_SECONDS) -> None:
    """`settings()` is read each round (the current settings, not the ones at startup)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            out = await run_once(db, settings())
            if out.scheduled or out.queued or out.skipped or out.cancelled or out.settled:
                log.info("follow-ups: %d scheduled, %d queued, %d skipped, %d cancelled, "
                         "%d settled", out.scheduled, out.queued, out.skipped,
                         out.cancelled, out.settled)
        except Exception:  # a failed pass is retried on the next tick
            log.exception("follow-ups failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
