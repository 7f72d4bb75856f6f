"""The webhook delivery worker (docs/webhooks.md).

One round: *fan out* new outbox events into delivery rows (one per matching
subscription), *claim* due deliveries, *send* them signed over HTTP, *record* the
outcomes (success, or a retry with exponential backoff and jitter, or given up after
Settings.webhook_retry_hours; a subscription failing for
Settings.webhook_disable_after_hours is disabled and its owners mailed).

Several processes may run it against one database:

* the fan-out's position in the outbox is one row (webhook_cursor); on PostgreSQL a
  round takes it with FOR UPDATE SKIP LOCKED (a busy cursor: another process is
  fanning out, skip), on SQLite the write transaction itself is exclusive (BEGIN
  IMMEDIATE) and the update is a compare-and-set;
* a claim marks rows "delivering" with a lease (next_attempt_at) in one committed
  transaction, choosing them FOR UPDATE SKIP LOCKED on PostgreSQL, so two workers
  never send the same attempt at once; a worker that dies leaves its rows to be
  claimed again when the lease runs out (at least once).

Sending happens outside any transaction a sale holds: a sale only inserts its outbox
row. A slow receiver holds at most MAX_IN_FLIGHT requests of its own subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
from sqlalchemy import Table, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from standardwebhooks.webhooks import Webhook

from saumaton import __version__
from saumaton.audit.services import record as audit
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.waiting import first_of
from saumaton.db.engine import asyncpg_dsn
from saumaton.db.uow import NOTIFY_CHANNEL, Database
from saumaton.events.models import OutboxEvent
from saumaton.mail.queue import queue_mail
from saumaton.outbound_webhooks.models import (
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscription,
)
from saumaton.outbound_webhooks.services import (
    SUBSCRIPTIONS_TOPIC,
    owner_addresses,
    subscriptions_changed,
    webhook_id_for,
)
from saumaton.outbound_webhooks.topics import TEST_TOPIC, resource_of, subscribed

log = logging.getLogger(__name__)

CURSOR = "fanout"
FANOUT_PAGE = 1000
CLAIM_BATCH = 500
# Requests one subscription may have open at once (per process).
MAX_IN_FLIGHT = 16
# A claimed delivery is this process's until then; after, anyone may send it again. At
# least long enough for a whole claim to wait its turn behind a receiver that times out
# every request (lease_for).
LEASE = timedelta(minutes=5)
# An outbox id missing below newer ones usually belongs to a transaction committing
# right now; it is waited for this long before the fan-out moves past it (a rolled
# back insert leaves a hole for ever).
GAP_WAIT = timedelta(seconds=10)
# Backoff: 5 s, 10 s, 20 s, … doubling up to 6 h between attempts, each ±20 % (jitter:
# many deliveries failing together do not all come back in the same second).
FIRST_DELAY_SECONDS = 5.0
MAX_DELAY_SECONDS = 6 * 3600.0
POLL_SECONDS = 1.0
BATCH_WINDOW_SECONDS = 0.05
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = f"Saumaton-Webhooks/{__version__}"

_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_ATTEMPTS = cast(Table, WebhookAttempt.__table__)
_SUBSCRIPTIONS = cast(Table, WebhookSubscription.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_CURSOR = cast(Table, WebhookCursor.__table__)
Clock = Callable[[], datetime]
SettingsSource = Settings | Callable[[], Settings]


def lease_for(timeout_seconds: float, limit: int = CLAIM_BATCH) -> timedelta:
    """A claim of `limit` deliveries to one subscription goes out MAX_IN_FLIGHT at a time,
    each taking up to the timeout: the lease outlasts that, so no other worker takes a
    delivery this one still holds."""
    return max(LEASE, timedelta(seconds=(limit / MAX_IN_FLIGHT + 2) * timeout_seconds + 60))


def retry_delay(attempts: int, rnd: random.Random | None = None) -> timedelta:
    """The wait after the `attempts`-th failed attempt (1-based)."""
    base = min(FIRST_DELAY_SECONDS * 2 ** max(attempts - 1, 0), MAX_DELAY_SECONDS)
    return timedelta(seconds=base * (rnd or random).uniform(0.8, 1.2))


def schedule(retry_hours: float) -> list[timedelta]:
    """The nominal waits (no jitter) between attempts until a delivery is given up."""
    out: list[timedelta] = []
    total, n = 0.0, 1
    while True:
        wait = min(FIRST_DELAY_SECONDS * 2 ** (n - 1), MAX_DELAY_SECONDS)
        if total + wait > retry_hours * 3600:
            return out
        out.append(timedelta(seconds=wait))
        total += wait
        n += 1


# --- fan-out ----------------------------------------------------------------------------

async def any_enabled(db: Database) -> bool:
    """Whether some subscription is enabled, kept in this process until a subscription
    changes (`SUBSCRIPTIONS_TOPIC`). With none, the worker neither fans out nor claims:
    a shop without webhooks pays no round trips for them per event. (The cursor then
    stays where it is; the first subscription's fan-out pages past the old events,
    which are older than it and so not delivered.)"""
    async def load() -> bool:
        async with db.reader() as r:
            found = await r.scalar(select(_SUBSCRIPTIONS.c.id)
                                   .where(_SUBSCRIPTIONS.c.enabled.is_(True)).limit(1))
        return found is not None
    return await db.cached(("webhooks-enabled",), 60.0, load, topics=(SUBSCRIPTIONS_TOPIC,))


async def fan_out(db: Database, now: datetime | None = None) -> int:
    """Turn outbox events after the cursor into deliveries; how many events were read
    (0: nothing new, or another process is fanning out)."""
    now = now or utcnow()
    if not db.is_postgres:
        # A look without a lock first: every SQLite write transaction takes the database's
        # one write lock, and most rounds find nothing new.
        async with db.reader() as r:
            seen = await r.scalar(select(_CURSOR.c.last_event_id)
                                  .where(_CURSOR.c.name == CURSOR))
            newest = await r.scalar(select(func.max(_OUTBOX.c.id)))
        if seen is not None and int(newest or 0) <= int(seen):
            return 0
    async with db.uow() as uow:
        s = uow.session
        q = select(_CURSOR.c.last_event_id).where(_CURSOR.c.name == CURSOR)
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        last = await s.scalar(q)
        if last is None:
            exists_ = await s.scalar(select(func.count()).select_from(WebhookCursor)
                                     .where(WebhookCursor.name == CURSOR))
            if exists_:
                return 0  # locked by another process's fan-out
            # First run: start at the present, not at the beginning of history.
            start = int(await s.scalar(select(func.max(OutboxEvent.id))) or 0)
            ins = (pg_insert if db.is_postgres else sqlite_insert)(WebhookCursor).values(
                name=CURSOR, last_event_id=start, updated_at=now)
            await s.execute(ins.on_conflict_do_nothing())
            await uow.commit()
            return 0
        events = (await s.execute(
            select(_OUTBOX.c.id, _OUTBOX.c.topic, _OUTBOX.c.payload, _OUTBOX.c.created_at)
            .where(_OUTBOX.c.id > last).order_by(_OUTBOX.c.id).limit(FANOUT_PAGE))).all()
        if not events:
            return 0
        taken = []
        expected = int(last) + 1
        for e in events:
            if e.id != expected and now - e.created_at < GAP_WAIT:
                break  # wait for the missing id's transaction (its notify wakes us)
            taken.append(e)
            expected = int(e.id) + 1
        if not taken:
            return 0
        subs = (await s.execute(
            select(_SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.topics, _SUBSCRIPTIONS.c.created_at)
            .where(_SUBSCRIPTIONS.c.enabled.is_(True)))).all()
        rows: list[dict[str, Any]] = []
        for e in taken:
            for sid, topics, created in subs:
                if e.topic == TEST_TOPIC:
                    if e.payload.get("subscription_id") != sid:
                        continue
                elif e.created_at < created or not subscribed(list(topics), e.topic):
                    continue
                rows.append({
                    "subscription_id": sid, "event_id": e.id,
                    "webhook_id": webhook_id_for(e.id, sid), "topic": e.topic,
                    "resource": resource_of(e.topic, e.payload), "status": "pending",
                    "attempts": 0, "next_attempt_at": now, "last_error": "",
                    "created_at": now})
        if rows:
            await s.execute(insert(_DELIVERIES), rows)
        new_last = int(taken[-1].id)
        cas = await s.execute(
            update(_CURSOR)
            .where(_CURSOR.c.name == CURSOR, _CURSOR.c.last_event_id == last)
            .values(last_event_id=new_last, updated_at=now))
        if getattr(cas, "rowcount", 1) != 1:
            return 0  # another process moved the cursor first: its deliveries stand
        await uow.commit()
        return len(taken)


# --- claiming ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    id: int
    subscription_id: int
    webhook_id: str
    topic: str
    attempts: int
    created_at: datetime
    url: str
    secret: str
    event_at: datetime
    payload: dict[str, Any]


async def claim(db: Database, now: datetime | None = None, *, limit: int = CLAIM_BATCH,
                skip_subscriptions: frozenset[int] = frozenset(),
                lease: timedelta = LEASE) -> list[Claimed]:
    """Due deliveries of enabled subscriptions whose earlier deliveries about the same
    resource are all finished, marked "delivering" under a lease and committed."""
    now = now or utcnow()
    d, earlier = WebhookDelivery, aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.subscription_id == d.subscription_id, earlier.resource == d.resource,
        earlier.event_id < d.event_id, earlier.status.in_(("pending", "delivering")))
    q = (select(d.id).join(WebhookSubscription, WebhookSubscription.id == d.subscription_id)
         .where(d.status.in_(("pending", "delivering")), d.next_attempt_at <= now,
                WebhookSubscription.enabled.is_(True),
                ~and_(d.resource != "", blocked))
         .order_by(d.next_attempt_at, d.id).limit(limit))
    if skip_subscriptions:
        q = q.where(d.subscription_id.not_in(sorted(skip_subscriptions)))
    if not db.is_postgres:  # one writer at a time: choose, mark, read back
        async with db.reader() as r:  # nothing due (most rounds): no write lock taken
            if await r.scalar(select(_DELIVERIES.c.id).where(
                    _DELIVERIES.c.status.in_(("pending", "delivering")),
                    _DELIVERIES.c.next_attempt_at <= now).limit(1)) is None:
                return []
        async with db.uow() as uow:
            s = uow.session
            ids = list((await s.scalars(q)).all())
            if not ids:
                return []
            await s.execute(update(d).where(d.id.in_(ids))
                            .values(status="delivering", next_attempt_at=now + lease)
                            .execution_options(synchronize_session=False))
            rows = (await s.execute(
                select(d.id, d.subscription_id, d.webhook_id, d.topic, d.attempts,
                       d.created_at, WebhookSubscription.url, WebhookSubscription.secret,
                       OutboxEvent.created_at, OutboxEvent.payload)
                .join(WebhookSubscription, WebhookSubscription.id == d.subscription_id)
                .join(OutboxEvent, OutboxEvent.id == d.event_id)
                .where(d.id.in_(ids)).order_by(d.id))).all()
            await uow.commit()
        return [Claimed(*r) for r in rows]
    # PostgreSQL, one Core statement: choose (skipping rows another worker holds), mark,
    # and return what sending needs; round trips are what a busy database makes slow.
    dt, st, ot = _DELIVERIES, _SUBSCRIPTIONS, _OUTBOX
    e = dt.alias("earlier")
    choose = (select(dt.c.id).join(st, st.c.id == dt.c.subscription_id)
              .where(dt.c.status.in_(("pending", "delivering")), dt.c.next_attempt_at <= now,
                     st.c.enabled.is_(True),
                     ~and_(dt.c.resource != "", exists().where(
                         e.c.subscription_id == dt.c.subscription_id,
                         e.c.resource == dt.c.resource, e.c.event_id < dt.c.event_id,
                         e.c.status.in_(("pending", "delivering")))))
              .order_by(dt.c.next_attempt_at, dt.c.id).limit(limit)
              .with_for_update(of=dt, skip_locked=True))
    if skip_subscriptions:
        choose = choose.where(dt.c.subscription_id.not_in(sorted(skip_subscriptions)))
    stmt = (update(dt)
            .where(dt.c.id.in_(choose.scalar_subquery()), st.c.id == dt.c.subscription_id,
                   ot.c.id == dt.c.event_id)
            .values(status="delivering", next_attempt_at=now + lease)
            .returning(dt.c.id, dt.c.subscription_id, dt.c.webhook_id, dt.c.topic,
                       dt.c.attempts, dt.c.created_at, st.c.url, st.c.secret,
                       ot.c.created_at.label("event_at"), ot.c.payload))
    async with db.uow() as uow:
        rows = sorted((await uow.session.execute(stmt)).all(), key=lambda r: int(r[0]))
        if not rows:
            return []
        await uow.commit()
    return [Claimed(*r) for r in rows]


# --- sending ----------------------------------------------------------------------------

def body_of(topic: str, event_at: datetime, payload: dict[str, Any]) -> str:
    return json.dumps({"type": topic, "timestamp": event_at.astimezone(UTC).isoformat(),
                       "data": payload}, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, webhook_id: str, body: str,
                   sent_at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers. The timestamp is the real time of sending, whatever
    the worker's clock says: receivers refuse a signature older than a few minutes."""
    at = sent_at or datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class Outcome:
    delivery: Claimed
    at: datetime
    status_code: int | None
    error: str
    response_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def send(client: httpx.AsyncClient, c: Claimed, seconds: float,
               clock: Clock = utcnow) -> Outcome:
    body = body_of(c.topic, c.event_at, c.payload)
    headers = signed_headers(c.secret, c.webhook_id, body)
    started = time.perf_counter()
    code: int | None = None
    error = ""
    try:
        async with asyncio.timeout(seconds):
            async with client.stream("POST", c.url, content=body.encode(),
                                     headers=headers) as response:
                code = response.status_code
                # Only the status counts; a short answer is read so that the connection
                # is kept for the next delivery, a long one is cut off.
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except TimeoutError:
        error = f"no answer within {seconds:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
    ms = int((time.perf_counter() - started) * 1000)
    return Outcome(c, clock(), code, error[:300], ms)


# --- recording --------------------------------------------------------------------------

_RECORD = (update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("b_id"))
           .values({c: bindparam(c) for c in (
               "status", "attempts", "next_attempt_at", "last_status_code", "last_error",
               "last_response_ms", "delivered_at")}))


async def record(db: Database, outcomes: list[Outcome], settings: Settings,
                 now: datetime | None = None, rnd: random.Random | None = None) -> list[int]:
    """Write the outcomes; ids of subscriptions disabled now."""
    if not outcomes:
        return []
    now = now or utcnow()
    give_up_after = timedelta(hours=settings.webhook_retry_hours)
    updates: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    succeeded: set[int] = set()
    failed: set[int] = set()
    for o in outcomes:
        c = o.delivery
        n = c.attempts + 1
        row: dict[str, Any] = {"b_id": c.id, "attempts": n, "last_status_code": o.status_code,
                               "last_error": o.error, "last_response_ms": o.response_ms}
        if o.ok:
            row |= {"status": "delivered", "delivered_at": o.at, "next_attempt_at": o.at}
            succeeded.add(c.subscription_id)
        else:
            retry_at = now + retry_delay(n, rnd)
            gives_up = retry_at > c.created_at + give_up_after
            row |= {"status": "failed" if gives_up else "pending", "delivered_at": None,
                    "next_attempt_at": now if gives_up else retry_at}
            failed.add(c.subscription_id)
        updates.append(row)
        attempts.append({"delivery_id": c.id, "at": o.at, "status_code": o.status_code,
                         "error": o.error, "response_ms": o.response_ms})
    disabled: list[int] = []
    async with db.uow() as uow:
        s = uow.session
        # Deliveries deleted meanwhile (their subscription was) are left out; the rows
        # kept are locked until commit so that a delete waits for this.
        still = select(_DELIVERIES.c.id).where(
            _DELIVERIES.c.id.in_([u["b_id"] for u in updates]))
        if db.is_postgres:
            still = still.with_for_update()
        kept = set((await s.scalars(still)).all())
        updates = [u for u in updates if u["b_id"] in kept]
        attempts = [a for a in attempts if a["delivery_id"] in kept]
        if not updates:
            return []
        # Core statements, executemany: the ORM's bulk paths cost several times the CPU.
        await s.execute(_RECORD, updates)
        await s.execute(insert(_ATTEMPTS), attempts)
        if succeeded:
            await s.execute(update(_SUBSCRIPTIONS)
                            .where(_SUBSCRIPTIONS.c.id.in_(sorted(succeeded)))
                            .values(failing_since=None))
        only_failed = sorted(failed - succeeded)
        if only_failed:
            await s.execute(update(_SUBSCRIPTIONS)
                            .where(_SUBSCRIPTIONS.c.id.in_(only_failed),
                                   _SUBSCRIPTIONS.c.failing_since.is_(None))
                            .values(failing_since=now))
            cutoff = now - timedelta(hours=settings.webhook_disable_after_hours)
            q = (select(WebhookSubscription).where(
                WebhookSubscription.id.in_(only_failed), WebhookSubscription.enabled.is_(True),
                WebhookSubscription.failing_since <= cutoff))
            if db.is_postgres:
                q = q.with_for_update()
            for sub in (await s.scalars(q)).all():
                await _disable(uow, sub, settings, now)
                disabled.append(sub.id)
        await uow.commit()
    return disabled


async def _disable(uow: Any, sub: WebhookSubscription, settings: Settings,
                   now: datetime) -> None:
    hours = settings.webhook_disable_after_hours
    sub.enabled = False
    sub.disabled_reason = (f"every delivery failed for {hours:g} hours "
                           f"(since {sub.failing_since:%Y-%m-%d %H:%M} UTC)")[:300]
    sub.updated_at = now
    await audit(uow, SYSTEM, "webhook.disable", "webhook", sub.id,
                {"reason": sub.disabled_reason, "automatic": True})
    subscriptions_changed(uow, sub.id)
    link = settings.resolved_public_url() + f"/backoffice/webhooks/{sub.id}"
    text = (
        f"Webhook-tilaus on poistettu käytöstä / A webhook subscription was disabled\n\n"
        f"{sub.url}\n\n"
        f"Kaikki toimitukset tähän osoitteeseen ovat epäonnistuneet {hours:g} tunnin ajan. "
        f"Korjaa vastaanottaja ja ota tilaus uudelleen käyttöön: jonossa olevat "
        f"tapahtumat lähetetään silloin.\n\n"
        f"Every delivery to this address has failed for {hours:g} hours. Fix the receiver "
        f"and enable the subscription again: the queued events are then sent.\n\n{link}\n")
    for to in await owner_addresses(uow.session):
        await queue_mail(uow, kind="webhook_disabled", to=to, reference=f"webhook:{sub.id}",
                         subject=f"Webhook poistettu käytöstä / disabled: {sub.url}"[:300],
                         text=text)


# --- one round (tests, the CLI) and the long-running worker ------------------------------

async def run_round(db: Database, settings: Settings, client: httpx.AsyncClient,
                    now: datetime | None = None, rnd: random.Random | None = None) -> int:
    """Fan out, claim what is due at `now`, send it all and record: how many sent."""
    now = now or utcnow()
    while await fan_out(db, now) == FANOUT_PAGE:
        pass
    claimed = await claim(db, now, lease=lease_for(settings.webhook_timeout_seconds))
    outcomes = await asyncio.gather(*(
        send(client, c, settings.webhook_timeout_seconds, lambda: now) for c in claimed))
    await record(db, list(outcomes), settings, now, rnd)
    return len(claimed)


def new_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None
               ) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False,
        transport=transport,
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=64))


async def _listen(db: Database, wake: asyncio.Event) -> None:
    """PostgreSQL: every committed outbox event (any process's) wakes the worker."""
    delay = 0.2
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(asyncpg_dsn(db.url))
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_a: wake.set())
            wake.set()  # anything committed while we were not listening
            delay = 0.2
            while not conn.is_closed():
                await asyncio.sleep(5.0)
                await conn.execute("SELECT 1")  # keep-alive; notices a dead link
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook LISTEN connection lost; reconnecting")
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


class _Runner:
    def __init__(self, db: Database, settings: Callable[[], Settings], clock: Clock,
                 client: httpx.AsyncClient, wake: asyncio.Event) -> None:
        self.db, self.settings, self.clock, self.client = db, settings, clock, client
        self.wake = wake
        self.done: list[Outcome] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight: dict[int, int] = {}
        self.gates: dict[int, asyncio.Semaphore] = {}
        self.claimed: dict[int, Claimed] = {}  # sent or being sent, not yet recorded
        self.recording: asyncio.Task[None] | None = None
        self.fanned_out = False  # a fan-out has run: the cursor exists

    async def _record(self, done: list[Outcome]) -> None:
        try:
            await record(self.db, done, self.settings(), self.clock())
            for o in done:
                self.claimed.pop(o.delivery.id, None)
        except Exception:
            # Not retried here (a batch that cannot be written would block every later
            # one): the rows stay "delivering" until their lease ends and are sent
            # again then (at least once).
            log.exception("recording webhook outcomes failed")
            for o in done:
                self.claimed.pop(o.delivery.id, None)
        finally:
            self.wake.set()  # later deliveries of the same resources may go now

    async def step(self) -> None:
        settings = self.settings()
        # Outcomes are written alongside the next fan-out and claim (another connection),
        # not before them: each costs round trips a busy database makes slow.
        if self.done and (self.recording is None or self.recording.done()):
            done, self.done = self.done, []
            self.recording = asyncio.create_task(self._record(done))
        # Once the cursor exists (the first fan-out makes it, at the present), rounds
        # with no subscription enabled do nothing; events after a subscription's
        # creation are fanned out from the cursor when it comes.
        if self.fanned_out and not await any_enabled(self.db):
            return
        while await fan_out(self.db, self.clock()) == FANOUT_PAGE:
            pass
        self.fanned_out = True
        while True:
            busy = frozenset(s for s, n in self.in_flight.items() if n >= MAX_IN_FLIGHT)
            claimed = await claim(self.db, self.clock(), skip_subscriptions=busy,
                                  lease=lease_for(settings.webhook_timeout_seconds))
            for c in claimed:
                self.claimed[c.id] = c
                self.in_flight[c.subscription_id] = self.in_flight.get(c.subscription_id, 0) + 1
                task = asyncio.create_task(self._send(c, settings.webhook_timeout_seconds))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            if len(claimed) < CLAIM_BATCH:
                return

    async def _send(self, c: Claimed, seconds: float) -> None:
        gate = self.gates.setdefault(c.subscription_id, asyncio.Semaphore(MAX_IN_FLIGHT))
        try:
            async with gate:
                outcome = await send(self.client, c, seconds, self.clock)
            self.done.append(outcome)
        finally:
            left = self.in_flight.get(c.subscription_id, 1) - 1
            if left:
                self.in_flight[c.subscription_id] = left
            else:
                self.in_flight.pop(c.subscription_id, None)
            self.wake.set()

    async def close(self) -> None:
        """Stop sending: unfinished deliveries are handed back (due now, for whichever
        worker runs next); finished ones are recorded."""
        unfinished = {t for t in self.tasks if not t.done()}
        for t in unfinished:
            t.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if self.recording is not None:
            await self.recording
        if self.done:
            await record(self.db, self.done, self.settings(), self.clock())
            for o in self.done:
                self.claimed.pop(o.delivery.id, None)
            self.done = []
        if self.claimed:
            await release_leases(self.db, sorted(self.claimed))
            self.claimed.clear()


async def release_leases(db: Database, ids: list[int]) -> None:
    async with db.uow() as uow:
        await uow.session.execute(update(WebhookDelivery).where(
            WebhookDelivery.id.in_(ids), WebhookDelivery.status == "delivering")
            .values(status="pending", next_attempt_at=utcnow()))
        await uow.commit()


async def run_webhook_worker(db: Database, settings: SettingsSource, stop: asyncio.Event, *,
                             clock: Clock = utcnow,
                             transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Deliver webhooks until `stop` is set (the app's lifespan, or `saumaton worker`).
    Wakes on every committed outbox event (LISTEN on PostgreSQL, this process's commits
    on SQLite) and at least every POLL_SECONDS (retries coming due, other processes)."""
    current: Callable[[], Settings] = settings if callable(settings) else (lambda: settings)
    wake = asyncio.Event()
    listener: asyncio.Task[None] | None = None
    if db.is_postgres:
        listener = asyncio.create_task(_listen(db, wake))
    else:
        db.on_commit.append(wake.set)
    # httpx's own limit is the largest the setting allows; each attempt is cut at the
    # current setting (asyncio.timeout in send), which may change while this runs.
    client = new_client(120.0, transport)
    runner = _Runner(db, current, clock, client, wake)
    try:
        while not stop.is_set():
            # Events come in bursts (a sale commits several; 200 sales a second each
            # notify): a short pause lets one round take them all, a few transactions
            # for many events instead of for each.
            await asyncio.sleep(BATCH_WINDOW_SECONDS)
            wake.clear()
            try:
                await runner.step()
            except Exception:  # a failed round is retried on the next wake or tick
                log.exception("webhook round failed")
            await first_of(stop.wait(), wake.wait(), within=POLL_SECONDS)
    finally:
        try:
            await runner.close()
        except Exception:
            log.exception("webhook worker could not hand back its deliveries")
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        elif wake.set in db.on_commit:
            db.on_commit.remove(wake.set)
        await client.aclose()

