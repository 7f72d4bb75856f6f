"""Background work of the web checkout, run by every app process:
cancel orders not paid in time (their stock goes back on sale), ask Paytrail
about payments that have had no final answer, pay back refunds that are due, and
remind about and cancel uncollected pickups (fulfilment.pickups)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import update

from saumaton.checkout.services import (
    cancel_unpaid_orders,
    payments_to_poll,
    record_payment_status,
)
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.db.uow import Database
from saumaton.fulfilment.pickups import uncollected_pickups
from saumaton.payments.models import PaytrailPayment
from saumaton.payments.paytrail.client import PaytrailClient
from saumaton.payments.paytrail_refunds import send_due_refunds

log = logging.getLogger(__name__)

# A payment with no answer this long is asked about (Paytrail's own callbacks
# normally arrive within seconds).
POLL_AFTER = timedelta(minutes=2)


async def cancel_unpaid_once(db: Database) -> int:
    async with db.uow() as uow:
        n = await cancel_unpaid_orders(uow)
        await uow.commit()
    return n


async def poll_once(db: Database, client: PaytrailClient, settings: Settings) -> int:
    """Ask Paytrail about unanswered payments; returns how many changed."""
    now = utcnow()
    async with db.reader() as s:
        due = await payments_to_poll(s, now, older_than=POLL_AFTER)
    changed = 0
    for stamp, txn in due:
        try:
            data = await client.get_payment(txn)
            status = str(data.get("status", ""))
            out = await record_payment_status(db, settings, stamp, txn, status,
                                              int(data.get("amount", -1)),
                                              str(data.get("provider") or ""))
        except DomainError as exc:
            log.warning("polling payment %s failed: %s", txn, exc.detail)
            continue
        finally:
            async with db.uow() as uow:  # asked now: next time after POLL_AFTER again
                await uow.session.execute(
                    update(PaytrailPayment).where(PaytrailPayment.stamp == stamp)
                    .values(updated_at=utcnow()).execution_options(synchronize_session=False))
                await uow.commit()
        if out.changed:
            changed += 1
    return changed


async def run_checkout_jobs(db: Database, client: PaytrailClient,
                            settings: Callable[[], Settings], stop: asyncio.Event,
                            every_seconds: float = 30.0) -> None:
    """`settings()` is read each round: the owner's changes apply without a restart."""
    async def cancel() -> int:
        return await cancel_unpaid_once(db)

    async def poll() -> int:
        return await poll_once(db, client, settings())

    async def refunds() -> int:
        return await send_due_refunds(db, client, settings())

    async def pickups() -> int:
        return (await uncollected_pickups(db, settings())).total

    jobs: list[tuple[str, Callable[[], Awaitable[int]]]] = [
        ("cancel unpaid orders", cancel), ("poll payments", poll), ("refunds", refunds),
        ("uncollected pickups", pickups)]
    while not stop.is_set():
        for name, job in jobs:
            try:
                n = await job()
                if n:
                    log.info("%s: %d", name, n)
            except Exception:  # retried on the next tick
                log.exception("%s failed", name)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
