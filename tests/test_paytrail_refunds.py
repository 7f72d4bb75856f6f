"""Paytrail refunds: a return of a web order refunds the Paytrail payment through the
job (signed, one refund per stamp however often it is asked), Paytrail's signed refund
callbacks are recorded once, and a refund Paytrail keeps refusing becomes `fail`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.checkout.services import place_web_order, record_payment_status, start_payment
from saumaton.config import TEST_MERCHANT, Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.errors import Conflict, Forbidden
from saumaton.db.uow import Database
from saumaton.orders.models import Order
from saumaton.payments.models import PaytrailPayment, Refund
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.payments.paytrail.signing import sign
from saumaton.payments.paytrail.simulator import SimulatorState, create_simulator
from saumaton.payments.paytrail_refunds import (
    MAX_ATTEMPTS,
    InvalidRefundNotice,
    mark_transfer_paid,
    record_refund_callback,
    refunds_needing_attention,
    retry_refund,
    send_due_refunds,
)
from saumaton.payments.refunds import record_refund
from saumaton.returns.schemas import ReturnIn, ReturnLineIn, ReturnOut
from saumaton.returns.services import take_return
from tests.support import Shop, make_variants, staff_actor
from tests.test_checkout import cmd

SIM = "http://paytrail.test"


@pytest.fixture
async def sim(client: httpx.AsyncClient
              ) -> AsyncIterator[tuple[PaytrailClient, httpx.AsyncClient, SimulatorState]]:
    """The simulator in-process; its callbacks reach the in-process app."""
    callbacks = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    app = create_simulator({TEST_MERCHANT[0]: TEST_MERCHANT[1]}, SIM, http_client=callbacks)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=SIM) as http:
        yield PaytrailClient(PaytrailConfig(*TEST_MERCHANT, SIM), http), http, \
            app.state.simulator
    await callbacks.aclose()


async def paid_web_order(db: Database, shop: Shop, settings: Settings,
                         client: PaytrailClient, http: httpx.AsyncClient) -> tuple[int, str]:
    [v] = await make_variants(db, [3490], stock={shop.warehouse: 3})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"])), 2), customer_id=None,
                                     key=f"pr-{uuid.uuid4().hex}")
    href = await start_payment(db, client, settings, order)
    await http.post(href.removeprefix(SIM) + "/success?callbacks=0")
    async with db.reader() as s:
        attempt = (await s.scalars(select(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id))).one()
    out = await record_payment_status(db, settings, attempt.stamp, str(attempt.transaction_id),
                                      "ok", order.total_cents)
    assert out.order_status == "paid"
    return order.id, out.transaction_id


async def refund_row(db: Database, refund_id: int) -> Refund:
    async with db.reader() as s:
        r = await s.get(Refund, refund_id)
        assert r is not None
        return r


async def returned_at_store(db: Database, shop: Shop, order_id: int, quantity: int,
                            reason: str) -> ReturnOut:
    """Line 1 of the order brought back to store 1 by a cashier: a Paytrail refund due."""
    out, _ = await take_return(db, await staff_actor(db, shop, "cashier1"), order_id, ReturnIn(
        location_id=shop.store1, lines=[ReturnLineIn(line_no=1, quantity=quantity)],
        reason=reason))
    return out


async def set_refund(db: Database, refund_id: int, **values: str) -> None:
    async with db.uow() as uow:
        await uow.session.execute(update(Refund).where(Refund.id == refund_id).values(**values))
        await uow.commit()


async def test_a_return_is_refunded_through_paytrail_once(
        db: Database, shop: Shop, settings: Settings, client: httpx.AsyncClient,
        sim: tuple[PaytrailClient, httpx.AsyncClient, SimulatorState]) -> None:
    paytrail, http, state = sim
    order_id, txn = await paid_web_order(db, shop, settings, paytrail, http)
    out = await returned_at_store(db, shop, order_id, 1, "wrong shade")
    [due] = out.refunds
    assert (due.method, due.status, due.amount_cents, due.reference) == (
        "paytrail", "due", 3490, txn)
    assert await send_due_refunds(db, paytrail, settings, order_id=order_id) == 1
    sent = await refund_row(db, due.id)
    assert (sent.status, sent.attempts) == ("ok", 1) and sent.provider_refund_id
    payment = state.payments[txn]
    assert [r["amount"] for r in payment.refunds] == [3490]
    assert payment.refunds[0]["refundStamp"] == sent.refund_stamp
    # Paytrail's refund callback reached the shop (signed) and changed nothing more.
    await asyncio.wait_for(asyncio.gather(*state.tasks), 10)
    assert [code for url, code in state.callback_log if "/refund/" in url] == [200]
    # Asked again (the first answer lost): the stamp keeps it one refund at Paytrail.
    await set_refund(db, due.id, status="due")
    assert await send_due_refunds(db, paytrail, settings, order_id=order_id) == 1
    assert [r["amount"] for r in payment.refunds] == [3490]


async def test_refund_callbacks_are_signed_and_idempotent(
        db: Database, shop: Shop, settings: Settings, client: httpx.AsyncClient,
        sim: tuple[PaytrailClient, httpx.AsyncClient, SimulatorState]) -> None:
    paytrail, http, state = sim
    state.refund_callbacks = 0
    order_id, _ = await paid_web_order(db, shop, settings, paytrail, http)
    out = await returned_at_store(db, shop, order_id, 2, "changed my mind")
    [due] = out.refunds
    stamp = (await refund_row(db, due.id)).refund_stamp
    assert stamp
    params = {"checkout-account": TEST_MERCHANT[0], "checkout-algorithm": "sha256",
              "checkout-amount": str(due.amount_cents), "checkout-stamp": stamp,
              "checkout-reference": out.order_number, "checkout-transaction-id": "rf-1",
              "checkout-status": "ok", "checkout-provider": "nordea"}
    signed = {**params, "signature": sign(params, "", TEST_MERCHANT[1], "sha256")}
    r = await client.get("/shop/checkout/refund/success",
                         params={**signed, "checkout-status": "fail"})
    assert r.status_code == 400  # tampered: the signature no longer matches
    assert (await refund_row(db, due.id)).status == "due"
    for _ in range(3):  # Paytrail may call several times
        r = await client.get("/shop/checkout/refund/success", params=signed)
        assert r.status_code == 200
    row = await refund_row(db, due.id)
    assert (row.status, row.provider_refund_id) == ("ok", "rf-1")
    again = await record_refund_callback(db, paytrail, signed)
    assert (again.status, again.changed) == ("ok", False)
    with pytest.raises(InvalidRefundNotice):
        bad = {**params, "checkout-stamp": "no-such", "checkout-transaction-id": "nope"}
        await record_refund_callback(db, paytrail, {
            **bad, "signature": sign(bad, "", TEST_MERCHANT[1], "sha256")})


async def test_a_refund_paytrail_refuses_fails_after_its_attempts(
        db: Database, shop: Shop, settings: Settings,
        sim: tuple[PaytrailClient, httpx.AsyncClient, SimulatorState]) -> None:
    paytrail, http, _ = sim
    order_id, _ = await paid_web_order(db, shop, settings, paytrail, http)
    out = await returned_at_store(db, shop, order_id, 1, "faulty")
    [due] = out.refunds
    # A transaction Paytrail does not know.
    await set_refund(db, due.id, reference="unknown-transaction")
    for n in range(1, MAX_ATTEMPTS + 1):
        await send_due_refunds(db, paytrail, settings, order_id=order_id)
        row = await refund_row(db, due.id)
        assert row.attempts == n and row.error
        assert row.status == ("fail" if n == MAX_ATTEMPTS else "due")
    await send_due_refunds(db, paytrail, settings, order_id=order_id)
    assert (await refund_row(db, due.id)).attempts == MAX_ATTEMPTS  # not asked again


async def test_a_failed_refund_is_visible_and_asked_again_by_a_manager(
        db: Database, shop: Shop) -> None:
    async with db.uow() as uow:
        order = Order(channel_id=1, status="paid", subtotal_cents=1000, discount_cents=0,
                      total_cents=1000, vat_cents=0, paid_cents=1000)
        uow.session.add(order)
        await uow.session.flush()
        failed = await record_refund(uow, SYSTEM, order.id, "paytrail", 600,
                                     status="fail", reference="t")
        transfer = await record_refund(uow, SYSTEM, order.id, "bank_transfer", 400,
                                       status="due", reference="FI00 Anna")
        await uow.commit()
    async with db.reader() as s:
        seen = {r.id for r in await refunds_needing_attention(s, limit=10_000)}
    assert {failed.id, transfer.id} <= seen
    with pytest.raises(Forbidden):
        async with db.uow() as uow:
            await retry_refund(uow, await staff_actor(db, shop, "cashier1"), failed.id)
    async with db.uow() as uow:
        await retry_refund(uow, await staff_actor(db, shop, "manager"), failed.id)
        await mark_transfer_paid(uow, await staff_actor(db, shop, "finance"), transfer.id,
                                 "paid 2026-12-06")
        await uow.commit()
    assert ((await refund_row(db, failed.id)).status,
            (await refund_row(db, failed.id)).attempts) == ("due", 0)
    assert (await refund_row(db, transfer.id)).status == "ok"
    with pytest.raises(Conflict):
        async with db.uow() as uow:
            await mark_transfer_paid(uow, await staff_actor(db, shop, "finance"), transfer.id)
