"""Webhook delivery end to end against a real local HTTP receiver, on both databases.

Time is driven by the worker's `now` (a delivery's next_attempt_at), never by sleeping;
a timeout is a real one (the receiver holds the request past the worker's limit).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, text, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from saumaton.audit.models import AuditEntry
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.mail.models import OutgoingMail
from saumaton.outbound_webhooks import services as webhooks
from saumaton.outbound_webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from saumaton.outbound_webhooks.services import SubscriptionIn
from saumaton.outbound_webhooks.worker import (
    GAP_WAIT,
    any_enabled,
    claim,
    fan_out,
    new_client,
    record,
    run_round,
    send,
)
from saumaton.web.app import create_app
from tests.support import (
    Shop,
    build_shop,
    drop_pg_database,
    eventually,
    fresh_database,
    make_variants,
)
from tests.webhook_receiver import Receiver


@pytest.fixture(scope="module")
async def wurl(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database of this module's own: the session's in-process app runs a webhook
    worker of its own, which would deliver these tests' events behind their backs."""
    url = await fresh_database(backend, tmp_path_factory.mktemp("webhooks"))
    yield url
    if backend == "postgresql":
        await drop_pg_database(url)


@pytest.fixture(scope="module")
async def wdb(wurl: str) -> AsyncIterator[Database]:
    database = Database(wurl)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def wshop(wdb: Database) -> Shop:
    return await build_shop(wdb)


@pytest.fixture
def wsettings(wurl: str, tmp_path: Path) -> Settings:
    return Settings(database_url=wurl, var_dir=tmp_path, secret_key="test-secret-key-0123456789",
                    webhook_timeout_seconds=10, webhook_retry_hours=30,
                    webhook_disable_after_hours=72)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(5.0) as c:
        yield c


async def _quiet(db: Database) -> None:
    """Earlier tests' subscriptions off and the fan-out caught up: each test sees only
    its own deliveries."""
    async with db.uow() as uow:
        await uow.session.execute(update(WebhookSubscription).values(enabled=False))
        await uow.commit()
    while await fan_out(db):
        pass


async def _subscribe(db: Database, settings: Settings, url: str,
                     topics: list[str] | None = None) -> webhooks.SubscriptionCreated:
    await _quiet(db)
    async with db.uow() as uow:
        sub = await webhooks.create_subscription(
            uow, SYSTEM, SubscriptionIn(url=url, topics=topics or ["order.*"]), settings)
        await uow.commit()
    while await fan_out(db):  # past the subscription's own event
        pass
    return sub


async def _emit(db: Database, *events: tuple[str, dict[str, Any]]) -> None:
    async with db.uow() as uow:
        for topic, payload in events:
            uow.emit(topic, payload)
        await uow.commit()


async def _deliveries(db: Database, sub_id: int) -> list[WebhookDelivery]:
    async with db.reader() as s:
        return list((await s.scalars(select(WebhookDelivery).where(
            WebhookDelivery.subscription_id == sub_id).order_by(WebhookDelivery.event_id))).all())


async def test_a_delivery_is_signed_per_standard_webhooks(
        wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    sub = await _subscribe(wdb, wsettings, receiver.url, ["order.paid", "stock.*"])
    assert sub.secret.startswith("whsec_")
    await _emit(wdb, ("order.paid", {"order_id": 7, "status": "paid"}),
                ("order.created", {"order_id": 8}),  # not subscribed
                ("stock.changed", {"variant_id": 3, "location_id": 1, "on_hand": 4}))
    assert await run_round(wdb, wsettings, http) == 2
    paid, stock = receiver.requests
    body = Webhook(sub.secret).verify(paid.body, paid.headers)
    assert body["type"] == "order.paid"
    assert body["data"] == {"order_id": 7, "status": "paid"}
    assert body["timestamp"].endswith("+00:00")
    assert paid.webhook_id.startswith("msg_") and paid.webhook_id != stock.webhook_id
    assert Webhook(sub.secret).verify(stock.body, stock.headers)["type"] == "stock.changed"
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(paid.body, paid.headers)
    with pytest.raises(WebhookVerificationError):  # a changed body
        Webhook(sub.secret).verify(paid.body.replace(b"7", b"9"), paid.headers)


async def test_fails_times_out_then_recovers_with_one_webhook_id_and_growing_backoff(
        wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    wsettings = wsettings.model_copy(update={"webhook_timeout_seconds": 0.5})
    sub = await _subscribe(wdb, wsettings, receiver.url)
    await _emit(wdb, ("order.paid", {"order_id": 11}))
    rnd = random.Random(1)
    now = utcnow()
    delays: list[float] = []
    errors: list[str] = []
    for mode in ("fail", "hang", "fail", "hang", "fail"):
        receiver.mode = mode
        assert await run_round(wdb, wsettings, http, now, rnd) == 1
        [d] = await _deliveries(wdb, sub.id)
        assert d.status == "pending"
        delays.append((d.next_attempt_at - now).total_seconds())
        errors.append(d.last_error)
        # Not due yet: a round a moment before the next attempt sends nothing.
        assert await run_round(wdb, wsettings, http, d.next_attempt_at - timedelta(seconds=1),
                               rnd) == 0
        now = d.next_attempt_at
    assert all(b > a for a, b in itertools.pairwise(delays)), delays
    assert errors[0] == "HTTP 500" and errors[1].startswith("no answer within 0.5 s")
    receiver.mode = "ok"
    assert await run_round(wdb, wsettings, http, now, rnd) == 1
    [d] = await _deliveries(wdb, sub.id)
    assert d.status == "delivered" and d.attempts == 6 and d.last_status_code == 200
    assert {r.webhook_id for r in receiver.requests} == {d.webhook_id}
    assert len(receiver.requests) == 6
    # Later rounds send nothing more: the receiver took it exactly once.
    assert await run_round(wdb, wsettings, http, now + timedelta(days=2)) == 0
    assert receiver.accepted == {d.webhook_id: 1}
    async with wdb.reader() as s:
        codes = list((await s.scalars(select(WebhookAttempt.status_code).where(
            WebhookAttempt.delivery_id == d.id).order_by(WebhookAttempt.id))).all())
        failing = await s.scalar(select(WebhookSubscription.failing_since)
                                 .where(WebhookSubscription.id == sub.id))
    assert codes == [500, None, 500, None, 500, 200]
    assert failing is None  # the success ended the failure period


async def test_a_delivery_is_given_up_after_the_retry_period(
        wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    sub = await _subscribe(wdb, wsettings, receiver.url)
    receiver.mode = "fail"
    await _emit(wdb, ("order.paid", {"order_id": 12}), ("order.shipped", {"order_id": 12}))
    start = utcnow()
    await run_round(wdb, wsettings, http, start)
    first, second = await _deliveries(wdb, sub.id)
    assert first.status == "pending" and second.attempts == 0  # held back: same order
    await run_round(wdb, wsettings, http, start + timedelta(hours=30, minutes=1))
    first, second = await _deliveries(wdb, sub.id)
    assert first.status == "failed" and first.attempts == 2
    # Given up, the earlier event no longer holds the later one back.
    receiver.mode = "ok"
    await run_round(wdb, wsettings, http, start + timedelta(hours=30, minutes=2))
    first, second = await _deliveries(wdb, sub.id)
    assert second.status == "delivered"


async def test_events_about_one_resource_arrive_in_order(
        wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    sub = await _subscribe(wdb, wsettings, receiver.url, ["*"])
    await _emit(wdb, ("order.created", {"order_id": 21}), ("order.paid", {"order_id": 21}),
                ("order.created", {"order_id": 22}), ("order.shipped", {"order_id": 21}))
    receiver.mode = "fail"
    now = utcnow()
    await run_round(wdb, wsettings, http, now)
    a, b, c, e = await _deliveries(wdb, sub.id)
    assert (a.resource, c.resource) == ("order:21", "order:22")
    # Only the first event of each order was tried; the later ones of order 21 wait.
    assert {r.webhook_id for r in receiver.requests} == {a.webhook_id, c.webhook_id}
    receiver.mode = "ok"
    for _ in range(4):
        now += timedelta(hours=1)
        await run_round(wdb, wsettings, http, now)
    assert receiver.delivered_ids() in (
        [a.webhook_id, c.webhook_id, b.webhook_id, e.webhook_id],
        [c.webhook_id, a.webhook_id, b.webhook_id, e.webhook_id])


async def test_persistent_failure_disables_and_mails_the_owner(
        wdb: Database, wshop: Shop, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    settings = wsettings.model_copy(update={"webhook_disable_after_hours": 2.0})
    sub = await _subscribe(wdb, settings, receiver.url)
    receiver.mode = "fail"
    await _emit(wdb, ("order.paid", {"order_id": 31}))
    now = utcnow()
    await run_round(wdb, settings, http, now)
    for hours in (1, 3):  # not disabled an hour in; disabled after two
        async with wdb.reader() as s:
            enabled = await s.scalar(select(WebhookSubscription.enabled)
                                     .where(WebhookSubscription.id == sub.id))
        assert enabled is True
        await run_round(wdb, settings, http, now + timedelta(hours=hours))
    async with wdb.reader() as s:
        row = await s.get(WebhookSubscription, sub.id)
        assert row is not None and row.enabled is False
        assert "failed for 2 hours" in row.disabled_reason
        mails = list((await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == f"webhook:{sub.id}"))).all())
        audit = list((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "webhook", AuditEntry.subject_id == sub.id))).all())
    assert [m.to_addr for m in mails] == [wshop.logins["owner"][0]]
    assert receiver.url in mails[0].body_text and mails[0].kind == "webhook_disabled"
    assert "webhook.disable" in audit and "webhook.create" in audit
    # Disabled: nothing is sent any more, and new events are not queued for it.
    sent = len(receiver.requests)
    await _emit(wdb, ("order.paid", {"order_id": 32}))
    await run_round(wdb, settings, http, now + timedelta(hours=5))
    assert len(receiver.requests) == sent and len(await _deliveries(wdb, sub.id)) == 1
    # Enabled again: the queued delivery goes out.
    receiver.mode = "ok"
    async with wdb.uow() as uow:
        await webhooks.set_enabled(uow, SYSTEM, sub.id, True)
        await uow.commit()
    await run_round(wdb, settings, http, now + timedelta(hours=6))
    [d] = await _deliveries(wdb, sub.id)
    assert d.status == "delivered"


async def test_send_again_and_test_event_reuse_the_webhook_id(
        wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    sub = await _subscribe(wdb, wsettings, receiver.url)
    await _emit(wdb, ("order.paid", {"order_id": 41}))
    await run_round(wdb, wsettings, http)
    [d] = await _deliveries(wdb, sub.id)
    assert d.status == "delivered"
    async with wdb.uow() as uow:
        again = await webhooks.redeliver(uow, SYSTEM, d.id)
        await uow.commit()
    assert again.status == "pending" and again.webhook_id == d.webhook_id
    await run_round(wdb, wsettings, http)
    [d2] = await _deliveries(wdb, sub.id)
    assert d2.status == "delivered" and d2.attempts == 2
    assert receiver.accepted == {d.webhook_id: 2}
    async with wdb.uow() as uow:
        await webhooks.send_test_event(uow, SYSTEM, sub.id)
        await uow.commit()
    await run_round(wdb, wsettings, http)
    test = receiver.requests[-1]
    assert Webhook(sub.secret).verify(test.body, test.headers)["type"] == "webhook.test"


async def test_two_workers_never_send_the_same_delivery_at_once(
        wurl: str, wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    """Two worker processes' worth of connections (two Database objects) claim from the
    same rows concurrently; every delivery reaches the receiver exactly once."""
    sub = await _subscribe(wdb, wsettings, receiver.url, ["stock.*"])
    await _emit(wdb, *[("stock.changed", {"variant_id": i, "location_id": 1})
                       for i in range(1, 301)])
    other = Database(wurl)
    try:
        async def worker(db: Database) -> int:
            sent = 0
            while n := await run_round(db, wsettings, http):
                sent += n
            return sent

        a, b = await asyncio.gather(worker(wdb), worker(other))
    finally:
        await other.dispose()
    ids = [r.webhook_id for r in receiver.requests]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert a + b == 300
    assert all(d.status == "delivered" for d in await _deliveries(wdb, sub.id))


async def test_a_hanging_receiver_does_not_slow_a_sale(
        wurl: str, wdb: Database, wshop: Shop, tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(database_url=wurl, var_dir=tmp_path, secret_key="k" * 32,
                        webhook_timeout_seconds=60)
    await _subscribe(wdb, settings, receiver.url, ["order.*", "stock.*"])
    receiver.mode = "hang"
    [v] = await make_variants(wdb, [990], stock={wshop.store1: 50})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as c:
            async def sale() -> float:
                started = time.perf_counter()
                r = await c.post("/api/v1/orders", headers=wshop.auth("cashier1"), json={
                    "channel": "pos-1", "lines": [{"variant_id": v["id"]}],
                    "payments": [{"method": "cash"}]})
                assert r.status_code == 201, r.text
                return time.perf_counter() - started

            await sale()
            await asyncio.wait_for(receiver.got_one.wait(), 10)  # the worker is stuck
            took = [await sale() for _ in range(5)]
            await eventually(lambda: _hanging(receiver, 3), within=10,
                             what="the worker sends the later sales' events too")
    # The receiver holds every request for up to 60 s; the sales took no part of that.
    assert max(took) < 2.0, took


async def _hanging(receiver: Receiver, n: int) -> bool:
    return len(receiver.requests) >= n


async def _outbox_row(db: Database, event_id: int, topic: str, payload: dict[str, Any]) -> None:
    """An outbox row with a chosen id (a transaction that took its id earlier and commits
    later); the sequence is moved past it on PostgreSQL."""
    async with db.uow() as uow:
        await uow.session.execute(insert(OutboxEvent).values(
            id=event_id, topic=topic, payload=payload, created_at=utcnow()))
        if db.is_postgres:
            await uow.session.execute(text(
                "SELECT setval(pg_get_serial_sequence('outbox', 'id'), "
                "(SELECT max(id) FROM outbox))"))
        await uow.commit()


async def test_the_fan_out_waits_for_a_missing_id_and_misses_nothing_across_restarts(
        wurl: str, wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    sub = await _subscribe(wdb, wsettings, receiver.url, ["order.*"])
    async with wdb.reader() as s:
        last = int(await s.scalar(select(func.max(OutboxEvent.id))) or 0)
    # Event last+2 commits before last+1 (which holds its id, still committing).
    await _outbox_row(wdb, last + 2, "order.paid", {"order_id": 52})
    assert await fan_out(wdb) == 0  # waits for last+1
    assert await _deliveries(wdb, sub.id) == []
    await _outbox_row(wdb, last + 1, "order.paid", {"order_id": 51})
    # A worker of another process (its own connections) starts now and takes both.
    other = Database(wurl)
    try:
        assert await run_round(other, wsettings, http) == 2
    finally:
        await other.dispose()
    assert sorted(r.json()["data"]["order_id"] for r in receiver.requests) == [51, 52]
    # A hole that never fills (a rolled-back insert) is passed after GAP_WAIT.
    await _outbox_row(wdb, last + 4, "order.paid", {"order_id": 54})
    assert await fan_out(wdb) == 0
    assert await fan_out(wdb, utcnow() + GAP_WAIT + timedelta(seconds=1)) == 1
    assert [d.event_id for d in await _deliveries(wdb, sub.id)] == [last + 1, last + 2,
                                                                      last + 4]


async def test_a_subscription_deleted_while_its_delivery_is_sent_blocks_nothing(
        wdb: Database, wsettings: Settings, receiver: Receiver,
        http: httpx.AsyncClient) -> None:
    gone = await _subscribe(wdb, wsettings, receiver.url, ["order.*"])
    async with wdb.uow() as uow:
        kept = await webhooks.create_subscription(
            uow, SYSTEM, SubscriptionIn(url=receiver.url, topics=["order.*"]), wsettings)
        await uow.commit()
    await _emit(wdb, ("order.paid", {"order_id": 61}))
    await fan_out(wdb)
    claimed = await claim(wdb)
    assert {c.subscription_id for c in claimed} == {gone.id, kept.id}
    async with wdb.uow() as uow:  # deleted while the requests are out
        await webhooks.delete_subscription(uow, SYSTEM, gone.id)
        await uow.commit()
    outcomes = [await send(http, c, 5.0) for c in claimed]
    await record(wdb, outcomes, wsettings)  # no foreign-key failure
    [d] = await _deliveries(wdb, kept.id)
    assert d.status == "delivered"
    assert await _deliveries(wdb, gone.id) == []


async def test_the_worker_knows_at_once_whether_any_subscription_is_enabled(
        wdb: Database, wsettings: Settings, receiver: Receiver) -> None:
    """With none enabled the worker skips its rounds (no round trips per event); the
    answer is kept per process and dropped by every change of a subscription."""
    await _quiet(wdb)
    async with wdb.uow() as uow:  # _quiet wrote directly; a service says so by its event
        webhooks.subscriptions_changed(uow, 0)
        await uow.commit()
    assert not await any_enabled(wdb)
    sub = await _subscribe(wdb, wsettings, receiver.url, ["order.*"])
    assert await any_enabled(wdb)
    async with wdb.uow() as uow:
        await webhooks.set_enabled(uow, SYSTEM, sub.id, False)
        await uow.commit()
    assert not await any_enabled(wdb)
    async with wdb.uow() as uow:
        await webhooks.set_enabled(uow, SYSTEM, sub.id, True)
        await uow.commit()
    assert await any_enabled(wdb)
