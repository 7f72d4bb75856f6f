"""The background jobs: one list, run by every `saumaton serve` process (SAUMATON_RUN_JOBS,
on by default) or by a dedicated `saumaton worker` (docs/deployment.md).

Every job may run in several processes on one PostgreSQL at once; `Job.shared_by` says
what keeps that safe, and docs/deployment.md lists the same table:

- SKIP LOCKED: each process claims rows with `SELECT … FOR UPDATE SKIP LOCKED`, so two
  processes never take the same row (and re-check the row's state after the claim);
- advisory lock: `pg_try_advisory_xact_lock` lets one process do a run, the others skip it;
- idempotent: a unique key or a conditional UPDATE makes a second write a no-op.

On SQLite there is one writer at a time and one process (`serve` refuses several).

What is not here runs in every process whatever SAUMATON_RUN_JOBS says, because it keeps
that process's own memory current: the event hub, the settings follower (`LiveSettings.
follow`), and in the web app the staff-event follower (session cache) and the analytics
buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from saumaton.checkout.jobs import run_checkout_jobs
from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.events.hub import EventHub
from saumaton.followups.sender import run_followups_job
from saumaton.giftcards.jobs import run_expiry as run_gift_card_expiry
from saumaton.inventory.expiry import run_expiry as run_reservation_expiry
from saumaton.loyalty.ledger import run_expiry as run_loyalty_expiry
from saumaton.mail.mailings import run_segment_mailings
from saumaton.mail.sender import run_mail_sender
from saumaton.outbound_webhooks.worker import run_webhook_worker
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.pricing.changes import run_price_changes
from saumaton.reports.jobs import run_reports_job
from saumaton.service.nps import run_nps_job
from saumaton.shopsettings.live import LiveSettings
from saumaton.tryon.jobs import run_try_expiry

log = logging.getLogger(__name__)

SKIP_LOCKED = "SKIP LOCKED"
ADVISORY_LOCK = "advisory lock"
IDEMPOTENT = "idempotent"


@dataclass(frozen=True)
class JobContext:
    """What a job may use: the database, the environment's settings, the live (owner-
    edited) settings read each round, the Paytrail client, and the event that stops it."""

    db: Database
    settings: Settings
    live: LiveSettings
    paytrail: PaytrailClient
    stop: asyncio.Event


@dataclass(frozen=True)
class Job:
    name: str
    shared_by: str  # how several processes run it at once safely (see the module doc)
    how: str  # the mechanism in a phrase, for the docs and logs
    run: Callable[[JobContext], Coroutine[Any, Any, None]]


JOBS: tuple[Job, ...] = (
    Job("reservation expiry", SKIP_LOCKED,
        "expired reservations claimed FOR UPDATE SKIP LOCKED (inventory.services.expire_due)",
        lambda c: run_reservation_expiry(c.db, stop=c.stop)),
    Job("reserve-to-try expiry", SKIP_LOCKED,
        "no-shows claimed FOR UPDATE SKIP LOCKED, each closed by a conditional UPDATE, the "
        "note queued in the same transaction (tryon.services.expire_due)",
        lambda c: run_try_expiry(c.db, c.live, c.stop,
                                 c.settings.try_expiry_interval_seconds)),
    Job("mail sender", SKIP_LOCKED,
        "a batch claimed FOR UPDATE SKIP LOCKED and leased; sent once per claim",
        lambda c: run_mail_sender(c.db, c.live, c.stop)),
    Job("checkout jobs", SKIP_LOCKED,
        "unpaid orders, refunds and pickups claimed FOR UPDATE SKIP LOCKED; a payment "
        "poll's result is recorded under the order's row lock and is idempotent",
        lambda c: run_checkout_jobs(c.db, c.paytrail, c.live, c.stop)),
    Job("after-purchase surveys", IDEMPOTENT,
        "one survey per order: INSERT … ON CONFLICT (order_id) DO NOTHING, mail queued "
        "only by the process whose insert won",
        lambda c: run_nps_job(c.db, c.live, c.stop)),
    Job("follow-ups", SKIP_LOCKED,
        "each purchase scheduled once (INSERT … ON CONFLICT (order_id) DO NOTHING); due "
        "mails claimed FOR UPDATE SKIP LOCKED, their status re-checked after the claim",
        lambda c: run_followups_job(c.db, c.live, c.stop)),
    Job("segment mailings", IDEMPOTENT,
        "each batch's mails and the mailing's new position commit together; the position "
        "moves only from where the batch started (a conditional UPDATE)",
        lambda c: run_segment_mailings(c.db, c.live, c.stop)),
    Job("loyalty point expiry", IDEMPOTENT,
        "the customer row locked, one `expire:<entry>` key per lapsed lot",
        lambda c: run_loyalty_expiry(c.db, stop=c.stop)),
    Job("gift card expiry", SKIP_LOCKED,
        "cards claimed FOR UPDATE SKIP LOCKED, balance moved by a conditional UPDATE",
        lambda c: run_gift_card_expiry(c.db, stop=c.stop)),
    Job("scheduled price changes", SKIP_LOCKED,
        "the due change claimed FOR UPDATE SKIP LOCKED, its status re-checked",
        lambda c: run_price_changes(c.db, c.stop, c.settings.price_job_interval_seconds)),
    Job("reports summaries", ADVISORY_LOCK,
        "pg_try_advisory_xact_lock: one process rebuilds a run, the others skip it",
        lambda c: run_reports_job(c.db, c.stop, c.settings.reports_job_interval_seconds,
                                  c.settings.timezone)),
    Job("webhook delivery", SKIP_LOCKED,
        "the outbox cursor and due deliveries claimed FOR UPDATE SKIP LOCKED with a lease; "
        "the same webhook-id on every attempt (docs/webhooks.md)",
        lambda c: run_webhook_worker(c.db, c.live, c.stop)),
)


def start_jobs(ctx: JobContext, jobs: tuple[Job, ...] = JOBS) -> list[asyncio.Task[None]]:
    """Start every job as a task of the running loop; they end when `ctx.stop` is set."""
    return [asyncio.create_task(_guarded(job, ctx), name=f"job: {job.name}")
            for job in jobs]


async def _guarded(job: Job, ctx: JobContext) -> None:
    # Each job retries its own failed rounds; this only keeps a crash of the loop itself
    # from ending the job silently for the process's life.
    while not ctx.stop.is_set():
        try:
            await job.run(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s crashed; restarting it", job.name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await ctx.stop.wait()


async def stop_jobs(ctx: JobContext, tasks: list[asyncio.Task[None]]) -> None:
    """Ask the jobs to stop and wait for each to finish its round."""
    ctx.stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def paytrail_client(settings: Settings) -> PaytrailClient:
    account, secret, base_url = settings.paytrail()
    return PaytrailClient(PaytrailConfig(account, secret, base_url))


async def run_worker(settings: Settings, stop: asyncio.Event,
                     ready: Callable[[], None] | None = None) -> None:
    """`saumaton worker`: the jobs alone, no HTTP, until `stop` is set. The owner's
    settings changes reach it as they reach the web processes (the settings follower)."""
    db = Database(settings.resolved_database_url(), pool_size=settings.db_pool_size,
                  pool_timeout=settings.db_pool_timeout)
    hub = EventHub(db)
    await hub.start()
    live = LiveSettings(settings)
    paytrail = paytrail_client(settings)
    try:
        await live.refresh(db)
        ctx = JobContext(db, settings, live, paytrail, stop)
        follower = asyncio.create_task(live.follow(db, hub, stop))
        tasks = start_jobs(ctx)
        log.info("worker running %d jobs", len(tasks))
        if ready is not None:
            ready()
        await stop.wait()
        await stop_jobs(ctx, [*tasks, follower])
    finally:
        await paytrail.aclose()
        await hub.stop()
        await db.dispose()
