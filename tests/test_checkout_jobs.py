"""The checkout's background work: polling Paytrail for payments nobody told us
about, refunding late payments, and cancelling unpaid orders from several
processes at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.checkout.jobs import POLL_AFTER, poll_once
from saumaton.checkout.services import (
    cancel_unpaid_orders,
    place_web_order,
    start_payment,
)
from saumaton.config import TEST_MERCHANT, Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import verify_ledger
from saumaton.orders.models import Order
from saumaton.payments.models import Payment, PaytrailPayment, Refund
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.payments.paytrail.simulator import create_simulator
from saumaton.payments.paytrail_refunds import send_due_refunds
from tests.support import Shop, make_variants
from tests.test_checkout import cmd

SIM = "http://paytrail.test"


@pytest.fixture
async def paytrail() -> AsyncIterator[tuple[PaytrailClient, httpx.AsyncClient]]:
    app = create_simulator({TEST_MERCHANT[0]: TEST_MERCHANT[1]}, SIM)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=SIM) as http:
        yield PaytrailClient(PaytrailConfig(*TEST_MERCHANT, SIM), http), http


async def _age_attempts(db: Database, order_id: int) -> None:
    """Make the order's attempts look unanswered for longer than POLL_AFTER."""
    async with db.uow() as uow:
        await uow.session.execute(
            update(PaytrailPayment).where(PaytrailPayment.order_id == order_id)
            .values(updated_at=utcnow() - POLL_AFTER - timedelta(seconds=1))
            .execution_options(synchronize_session=False))
        await uow.commit()


async def test_a_payment_nobody_reported_is_found_by_polling(
        db: Database, shop: Shop, settings: Settings,
        paytrail: tuple[PaytrailClient, httpx.AsyncClient]) -> None:
    client, http = paytrail
    [v] = await make_variants(db, [2490], stock={shop.warehouse: 2})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=f"poll-{v['id']}")
    href = await start_payment(db, client, settings, order)
    # The shopper pays but neither the browser nor a callback reaches the shop.
    assert (await http.post(href.removeprefix(SIM) + "/success?callbacks=0")).status_code == 303
    assert await poll_once(db, client, settings) == 0  # too early to ask
    await _age_attempts(db, order.id)
    assert await poll_once(db, client, settings) == 1
    async with db.reader() as s:
        o = await s.get(Order, order.id)
        assert o is not None and o.status == "paid" and o.paid_cents == order.total_cents
        assert await verify_ledger(s) == []
    await _age_attempts(db, order.id)
    assert await poll_once(db, client, settings) == 0  # settled: not asked again


async def test_a_payment_after_cancellation_is_refunded(
        db: Database, shop: Shop, settings: Settings,
        paytrail: tuple[PaytrailClient, httpx.AsyncClient]) -> None:
    client, http = paytrail
    [v] = await make_variants(db, [1990], stock={shop.warehouse: 1})
    vid = int(str(v["id"]))
    order, _ = await place_web_order(db, settings, cmd(vid), customer_id=None,
                                     key=f"late-{vid}")
    href = await start_payment(db, client, settings, order)
    later = utcnow() + timedelta(seconds=settings.reservation_ttl_seconds + 1)
    async with db.uow() as uow:
        await cancel_unpaid_orders(uow, now=later)
        await uow.commit()
    await http.post(href.removeprefix(SIM) + "/success?callbacks=0")  # paid, too late
    await _age_attempts(db, order.id)
    # a cancelled order is not polled for; the late answer comes by the redirect
    assert await poll_once(db, client, settings) == 0
    from saumaton.checkout.services import record_payment_status
    async with db.reader() as s:
        attempt = (await s.scalars(select(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id))).one()
    out = await record_payment_status(db, settings, attempt.stamp,
                                      str(attempt.transaction_id), "ok", order.total_cents)
    assert out.order_status == "cancelled" and out.refund_cents == order.total_cents
    # The refund is due, recorded with the payment in one transaction ...
    async with db.reader() as s:
        rows = (await s.execute(select(Payment.amount_cents, Payment.status).where(
            Payment.order_id == order.id))).all()
        refunds = (await s.execute(select(Refund.method, Refund.status, Refund.amount_cents,
                                          Refund.reference)
                                   .where(Refund.order_id == order.id))).all()
    assert [tuple(r) for r in rows] == [(order.total_cents, "captured")]
    assert [tuple(r) for r in refunds] == [("paytrail", "due", order.total_cents,
                                            out.transaction_id)]
    # ... and paid back through Paytrail by the checkout job (once).
    assert await send_due_refunds(db, client, settings, order_id=order.id) == 1
    assert await send_due_refunds(db, client, settings, order_id=order.id) == 0
    async with db.reader() as s:
        [status] = (await s.scalars(select(Refund.status).where(
            Refund.order_id == order.id))).all()
        o = await s.get(Order, order.id)
        level = (await s.scalars(select(StockLevel).where(
            StockLevel.variant_id == vid, StockLevel.location_id == shop.warehouse))).one()
    assert status == "ok"
    assert o is not None and (o.paid_cents, o.refunded_cents) == (order.total_cents,
                                                                  order.total_cents)
    assert (level.on_hand, level.reserved) == (1, 0)  # the unit never left
    # Paytrail (the simulator) took the refund: nothing more is refundable now.
    from saumaton.payments.paytrail.client import PaytrailError
    with pytest.raises(PaytrailError):
        await client.refund(out.transaction_id, {
            "amount": 1, "refundStamp": "again", "refundReference": order.number,
            "callbackUrls": {"success": "https://shop.example/r",
                             "cancel": "https://shop.example/r"}})


async def test_sweeps_in_parallel_cancel_each_order_once(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [500], stock={shop.warehouse: 30})
    vid = int(str(v["id"]))
    for i in range(30):
        await place_web_order(db, settings, cmd(vid, email=f"sweep{i}@example.fi"),
                              customer_id=None, key=f"sweep-{vid}-{i}")
    later = utcnow() + timedelta(seconds=settings.reservation_ttl_seconds + 1)

    async def sweep() -> int:
        done = 0
        while True:  # like several app processes, each in batches
            async with db.uow() as uow:
                n = await cancel_unpaid_orders(uow, now=later, limit=4)
                await uow.commit()
            if n == 0:
                return done
            done += n

    results = await asyncio.gather(*(sweep() for _ in range(3)))
    async with db.reader() as s:
        level = (await s.scalars(select(StockLevel).where(
            StockLevel.variant_id == vid, StockLevel.location_id == shop.warehouse))).one()
        pending = await s.scalar(select(func.count()).select_from(Order).where(
            Order.status == "pending", Order.email.like("sweep%")))
        assert await verify_ledger(s) == []
    assert sum(results) >= 30 and pending == 0
    assert (level.on_hand, level.reserved) == (30, 0)
