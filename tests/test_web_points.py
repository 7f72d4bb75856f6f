"""Paying part (or all) of a web order with loyalty points, on both databases: the
points are spent in the order's own transaction, Paytrail is asked only for the rest
(its items still add up), the paid order earns only on the money part, an unpaid
order that is cancelled gives the points back, and too few points change nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from saumaton.checkout.services import (
    CheckoutIn,
    cancel_unpaid_orders,
    check_points,
    place_web_order,
    record_payment_status,
)
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.db.uow import Database
from saumaton.loyalty.ledger import _write, balance, points_for
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.payments.models import Payment, PaytrailPayment
from saumaton.payments.paytrail.payload import amount_due, payment_request
from tests.support import Shop, make_variants
from tests.test_accounts import csrf, new_email, register_page, sign_in, text_of
from tests.test_checkout import cmd, level
from tests.test_loyalty import _customer


async def give_points(db: Database, customer_id: int, points: int, tag: str) -> None:
    """Points as the ledger writes them (an adjustment with its own key)."""
    async with db.uow() as uow:
        await _write(uow, customer_id=customer_id, kind="adjust", points=points,
                     key=f"test:{customer_id}:{tag}", channel="test",
                     expires_at=utcnow() + timedelta(days=30))
        await uow.commit()


def with_points(c: CheckoutIn, points: int) -> CheckoutIn:
    return c.model_copy(update={"points": points})


async def points_payments(db: Database, order_id: int) -> list[tuple[str, int]]:
    async with db.reader() as s:
        rows = (await s.execute(select(Payment.status, Payment.amount_cents).where(
            Payment.order_id == order_id, Payment.method == "points")
            .order_by(Payment.id))).all()
    return [(str(a), int(b)) for a, b in rows]


async def entries(db: Database, order_id: int) -> list[tuple[str, int, str]]:
    async with db.reader() as s:
        rows = (await s.execute(select(LoyaltyEntry.kind, LoyaltyEntry.points,
                                       LoyaltyEntry.key)
                                .where(LoyaltyEntry.order_id == order_id)
                                .order_by(LoyaltyEntry.id))).all()
    return [(str(a), int(b), str(c)) for a, b, c in rows]


async def paytrail_attempt(db: Database, order: OrderOut) -> tuple[str, str, int]:
    """The attempt start_payment records: for the amount its request asks."""
    body = payment_request(order, stamp=f"st-{order.id}", reference=order.number,
                           email=order.email, language="fi", success_url="https://x/s",
                           cancel_url="https://x/c")
    async with db.uow() as uow:
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=f"st-{order.id}",
                                        transaction_id=f"tx-{order.id}",
                                        amount_cents=int(body["amount"]), status="new"))
        await uow.commit()
    return f"st-{order.id}", f"tx-{order.id}", int(body["amount"])


async def test_part_paid_with_points_paytrail_asks_the_rest_and_earns_on_money(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [2490], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    cid = await _customer(db)
    await give_points(db, cid, 1500, "a")
    order, _ = await place_web_order(db, settings, with_points(cmd(vid, 2), 1200),
                                     customer_id=cid, key=f"pp-{vid}")
    fee = settings.home_delivery_fee_cents if 2 * 2490 < settings.free_delivery_from_cents \
        or not settings.free_delivery_from_cents else 0
    assert order.status == "pending" and order.customer_id == cid
    assert order.total_cents == 2 * 2490 + fee
    assert order.paid_cents == 1200
    assert await points_payments(db, order.id) == [("captured", 1200)]
    assert await entries(db, order.id) == [("redeem", -1200, f"redeem:order:{order.id}")]
    async with db.reader() as s:
        assert await balance(s, cid) == 300

    # Paytrail is asked for the rest; the items (with a negative points row) add up.
    body = payment_request(order, stamp="s", reference=order.number, email=order.email,
                           language="fi", success_url="https://x/s", cancel_url="https://x/c")
    assert body["amount"] == order.total_cents - 1200 == amount_due(order)
    assert sum(i["unitPrice"] * i["units"] for i in body["items"]) == body["amount"]
    points_row = [i for i in body["items"] if i["productCode"] == "points"]
    assert points_row == [{"unitPrice": -1200, "units": 1, "vatPercentage": 0,
                           "productCode": "points", "description": "Paid with loyalty points",
                           "stamp": f"{order.id}-points"}]

    stamp, txn, amount = await paytrail_attempt(db, order)
    out = await record_payment_status(db, settings, stamp, txn, "ok", amount)
    assert out.order_status == "paid" and out.refund_cents == 0
    async with db.reader() as s:
        paid = await s.get(Order, order.id)
        assert paid is not None and paid.paid_cents == order.total_cents
        earned = points_for(order.total_cents - fee - 1200)
        assert earned == (2 * 2490 - 1200) // 100
        assert await balance(s, cid) == 300 + earned
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.kind == "order_confirmation", OutgoingMail.reference == order.number))
    assert mail is not None and "12,00" in mail.body_text
    assert [k for k, _, _ in await entries(db, order.id)] == ["redeem", "earn"]
    # A repeated callback changes nothing.
    again = await record_payment_status(db, settings, stamp, txn, "ok", amount)
    assert not again.changed
    async with db.reader() as s:
        assert await balance(s, cid) == 300 + earned


async def test_whole_order_paid_with_points_needs_no_paytrail(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1990], stock={shop.warehouse: 3})
    vid = int(str(v["id"]))
    cid = await _customer(db)
    await give_points(db, cid, 10000, "b")
    c = cmd(vid, 1)
    fee = settings.home_delivery_fee_cents if 1990 < settings.free_delivery_from_cents \
        or not settings.free_delivery_from_cents else 0
    total = 1990 + fee
    order, _ = await place_web_order(db, settings, with_points(c, total), customer_id=cid,
                                     key=f"pa-{vid}")
    assert order.status == "paid" and order.paid_cents == total
    assert order.payment_due_at is None
    assert await points_payments(db, order.id) == [("captured", total)]
    assert await level(db, vid, shop.warehouse) == (2, 0)  # home: out of stock at once
    async with db.reader() as s:
        assert await balance(s, cid) == 10000 - total  # nothing earned on points
        assert await s.scalar(select(func.count()).select_from(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id)) == 0
        assert await s.scalar(select(func.count()).select_from(OutgoingMail).where(
            OutgoingMail.kind == "order_confirmation",
            OutgoingMail.reference == order.number)) == 1
    assert [k for k, _, _ in await entries(db, order.id)] == ["redeem"]
    # The unpaid-order job leaves it alone.
    async with db.uow() as uow:
        await cancel_unpaid_orders(uow, utcnow() + timedelta(days=1))
        await uow.commit()
    async with db.reader() as s:
        o = await s.get(Order, order.id)
        assert o is not None and o.status == "paid"


async def test_cancelled_unpaid_order_gives_the_points_back(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [3000], stock={shop.warehouse: 3})
    vid = int(str(v["id"]))
    cid = await _customer(db)
    await give_points(db, cid, 800, "c")
    order, _ = await place_web_order(db, settings, with_points(cmd(vid, 1), 700),
                                     customer_id=cid, key=f"pc-{vid}")
    async with db.reader() as s:
        assert await balance(s, cid) == 100
    for _ in range(2):  # a second run finds nothing to do
        async with db.uow() as uow:
            await cancel_unpaid_orders(uow, utcnow() + timedelta(days=1))
            await uow.commit()
    async with db.reader() as s:
        o = await s.get(Order, order.id)
        assert o is not None and o.status == "cancelled" and o.paid_cents == 0
        assert await balance(s, cid) == 800
    assert await entries(db, order.id) == [("redeem", -700, f"redeem:order:{order.id}"),
                                           ("refund", 700, f"refund:order:{order.id}")]
    assert await points_payments(db, order.id) == [("captured", 700), ("refunded", -700)]
    assert await level(db, vid, shop.warehouse) == (3, 0)


async def test_not_enough_points_is_409_and_nothing_changes(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [5000], stock={shop.warehouse: 3})
    vid = int(str(v["id"]))
    cid = await _customer(db)
    await give_points(db, cid, 500, "d")
    with pytest.raises(Conflict) as err:
        await place_web_order(db, settings, with_points(cmd(vid, 1), 600), customer_id=cid,
                              key=f"pn-{vid}")
    assert err.value.status == 409 and err.value.code == "not_enough_points"
    assert err.value.field == "points" and err.value.extra["balance"] == 500
    async with db.reader() as s:
        assert await balance(s, cid) == 500
        assert await s.scalar(select(func.count()).select_from(Order).where(
            Order.idempotency_key == f"pn-{vid}")) == 0
    assert await level(db, vid, shop.warehouse) == (3, 0)
    # A guest cannot use points; neither more than the total nor leaving a few cents.
    with pytest.raises(ValidationFailed) as bad:
        await place_web_order(db, settings, with_points(cmd(vid, 1), 100), customer_id=None,
                              key=f"pg-{vid}")
    assert bad.value.code == "points_need_account"
    with pytest.raises(ValidationFailed) as bad:
        check_points(5000, 4999, signed_in=True)
    assert bad.value.code == "points_exceed_total"
    with pytest.raises(ValidationFailed) as bad:
        check_points(4950, 5000, signed_in=True)
    assert bad.value.code == "points_leave_too_little"
    assert check_points(4900, 5000, signed_in=True) == 4900
    assert check_points(5000, 5000, signed_in=True) == 5000


async def test_checkout_page_offers_points_and_shows_409_next_to_the_field(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    [v] = await make_variants(db, [4000], stock={shop.warehouse: 3})
    vid = int(str(v["id"]))
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test",
                                 headers={"Accept-Language": "en"}) as web:
        email = new_email()
        r = await register_page(web, email)
        assert r.status_code == 303, r.text
        cid = await sign_in(db, email)
        await give_points(db, cid, 2500, "e")
        page = (await web.get("/shop/cart")).text
        r = await web.post("/shop/cart/add", data={"csrf_token": csrf(page),
                                                   "variant_id": str(vid), "quantity": "1"})
        assert r.status_code == 303
        page = (await web.get("/shop/checkout")).text
        assert "2500 points, worth €25.00" in text_of(page, "points-balance")
        # Spent meanwhile at a till: the balance is lower when the order is placed.
        async with db.uow() as uow:
            await _write(uow, customer_id=cid, kind="redeem", points=-2000,
                         key=f"test:{cid}:till", channel="pos")
            await uow.commit()
        data = {"csrf_token": csrf(page), "key": "k" * 20, "email": email,
                "first_name": "Maija", "last_name": "Meikäläinen", "phone": "0401234567",
                "delivery": "home", "address_name": "Maija M", "street": "Katu 1",
                "postcode": "00100", "city": "Helsinki", "points": "1000"}
        r = await web.post("/shop/checkout", data=data)
        assert r.status_code == 409
        assert "You have only 500 points now" in text_of(r.text, "error-points")
        assert 'aria-invalid="true" aria-describedby="points-error points-hint"' in r.text
        async with db.reader() as s:
            assert await balance(s, cid) == 500
            assert await s.scalar(select(func.count()).select_from(Order).where(
                Order.customer_id == cid)) == 0
        # With what is left, the order is placed and the summary shows the points part.
        r = await web.post("/shop/checkout/summary", data={
            "csrf_token": csrf(page), "delivery": "home", "points": "500"})
        assert text_of(r.text, "points-paid") == "−€5.00"
