"""Uncollected click & collect orders, a background job run by every app process.

A pickup marked ready is held for `pickup_hold_days` from `ready_at`. Some
`pickup_reminder_days_before` days before the hold ends the shopper gets one reminder
(`pickup_reminded_at`); when it has ended the order is cancelled: its units go back on
sale, the Paytrail part is recorded as a refund due, points are settled and the
shopper is told (fulfilment.steps.cancel_order).

Each order is handled in its own transaction, claimed with FOR UPDATE SKIP LOCKED on
PostgreSQL, so several processes never remind or cancel the same order twice and a
handover at the till (which locks the order) is never overtaken; on SQLite writes are
serialised and the conditional UPDATEs decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.db.uow import Database, UnitOfWork
from saumaton.fulfilment.steps import cancel_order, status_url
from saumaton.locations.models import Location
from saumaton.mail.messages import pickup_reminder
from saumaton.mail.queue import queue_mail
from saumaton.orders.lifecycle import OrderStatus
from saumaton.orders.models import Order
from saumaton.orders.services import get_order

log = logging.getLogger(__name__)

PICKUP_JOB = Actor(label="job:uncollected pickups", name="pickup job", system=True)
BATCH = 100


@dataclass
class PickupRun:
    reminded: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.reminded + self.cancelled


async def _claim(uow: UnitOfWork, *conds: object, skip: set[int]) -> Order | None:
    q = (select(Order).where(Order.delivery_method == "pickup",
                             Order.status == OrderStatus.READY, *conds)  # type: ignore[arg-type]
         .order_by(Order.ready_at, Order.id).limit(1))
    if skip:
        q = q.where(Order.id.not_in(skip))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True)
    order: Order | None = await uow.session.scalar(q)
    return order


async def _remind(uow: UnitOfWork, settings: Settings, order: Order, now: datetime) -> bool:
    moved = await uow.session.execute(
        update(Order).where(Order.id == order.id, Order.pickup_reminded_at.is_(None),
                            Order.status == OrderStatus.READY)
        .values(pickup_reminded_at=now).execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        return False
    assert order.ready_at is not None
    out = await get_order(uow.session, order.id)
    store = await uow.session.get(Location, order.location_id)
    mail = pickup_reminder(out, status_url=status_url(settings, order), settings=settings,
                           store_name=store.name if store else "",
                           hold_until=order.ready_at + timedelta(days=settings.pickup_hold_days))
    await queue_mail(uow, kind="pickup_reminder", to=order.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=out.number)
    uow.emit("order.pickup_reminded", {"order_id": order.id, "customer_id": order.customer_id,
                                       "location_id": order.location_id})
    return True


async def uncollected_pickups(db: Database, settings: Settings, now: datetime | None = None,
                              limit: int = BATCH) -> PickupRun:
    """Remind about and cancel uncollected pickups; returns how many of each."""
    now = now or utcnow()
    hold = timedelta(days=settings.pickup_hold_days)
    remind_from = now - hold + timedelta(days=settings.pickup_reminder_days_before)
    run = PickupRun()
    failed: set[int] = set()
    for _ in range(limit):  # expiries first: a lapsed hold needs no reminder any more
        async with db.uow() as uow:
            order = await _claim(uow, Order.ready_at <= now - hold, skip=failed)
            if order is None:
                break
            try:
                await cancel_order(uow, PICKUP_JOB, settings, order.id, reason="not_collected",
                                   now=now, checked=False)
                await uow.commit()
                run.cancelled += 1
            except DomainError as exc:  # left for a person; the others go on
                log.warning("uncollected pickup %s not cancelled: %s", order.id, exc.detail)
                failed.add(order.id)
    for _ in range(limit):
        async with db.uow() as uow:
            order = await _claim(uow, Order.ready_at <= remind_from,
                                 Order.ready_at > now - hold,
                                 Order.pickup_reminded_at.is_(None), skip=failed)
            if order is None:
                break
            if await _remind(uow, settings, order, now):
                run.reminded += 1
            else:
                failed.add(order.id)
            await uow.commit()
    return run
