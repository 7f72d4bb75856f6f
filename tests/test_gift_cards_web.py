"""Gift cards at the webshop checkout on both databases: a card pays part of an order
(the rest through Paytrail) or all of it (no Paytrail step); an unpaid order that is
cancelled gives the card its money back, once; a bad or spent card is refused next to
its field in the page's language."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select

from saumaton.checkout.services import (
    cancel_unpaid_orders,
    order_by_token,
    place_web_order,
    record_payment_status,
)
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.giftcards import ledger
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.payments.models import PaytrailPayment
from saumaton.payments.paytrail.payload import amount_due, payment_items
from saumaton.payments.refunds import refunds_of
from tests.support import Shop, make_variants, staff_login
from tests.test_accounts import csrf, new_email, register_page, sign_in, text_of
from tests.test_checkout import cmd, level


async def _card(db: Database, cents: int) -> str:
    async with db.uow() as uow:
        card = await ledger.issue(uow, SYSTEM, cents, valid_days=365)
        await uow.commit()
    return card.code


async def _balance(db: Database, code: str) -> int:
    async with db.reader() as s:
        return (await ledger.card_by_code(s, code)).balance_cents


async def test_a_card_pays_part_and_paytrail_the_rest(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [5000], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    code = await _card(db, 2000)
    order, _ = await place_web_order(
        db, settings, cmd(vid).model_copy(update={"gift_card_code": ledger.display_code(code)}),
        customer_id=None, key=uuid.uuid4().hex)
    assert order.status == "pending" and order.paid_cents == 2000
    assert await _balance(db, code) == 0
    assert amount_due(order) == order.total_cents - 2000
    assert sum(i["unitPrice"] * i["units"] for i in payment_items(order)) == amount_due(order)
    stamp, txn = f"st-gc-{order.id}", f"tx-gc-{order.id}"
    async with db.uow() as uow:  # as start_payment records it: the amount due
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=stamp, transaction_id=txn,
                                        amount_cents=amount_due(order), status="new"))
        await uow.commit()
    out = await record_payment_status(db, settings, stamp, txn, "ok", amount_due(order))
    assert out.order_status == "paid"
    assert await level(db, vid, shop.warehouse) == (4, 0)
    async with db.reader() as s:
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.kind == "order_confirmation", OutgoingMail.reference == order.number))
    assert mail is not None
    assert "Maksettu lahjakortilla −20,00" in mail.body_text.replace("\xa0", " ")
    paytrail = order.total_cents - 2000
    assert f"{paytrail // 100},{paytrail % 100:02d}" in mail.body_text


async def test_a_card_covering_everything_needs_no_paytrail(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 5})
    code = await _card(db, 10000)
    order, _ = await place_web_order(
        db, settings, cmd(int(str(v["id"])), delivery="pickup", store=shop.store1)
        .model_copy(update={"gift_card_code": code}), customer_id=None, key=uuid.uuid4().hex)
    assert order.status == "paid" and order.paid_cents == order.total_cents == 1500
    assert await _balance(db, code) == 8500


async def test_cancelled_unpaid_order_gives_the_card_back_once(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [5000], stock={shop.warehouse: 5})
    code = await _card(db, 3000)
    order, _ = await place_web_order(
        db, settings, cmd(int(str(v["id"]))).model_copy(update={"gift_card_code": code}),
        customer_id=None, key=uuid.uuid4().hex)
    assert await _balance(db, code) == 0
    later = utcnow() + timedelta(seconds=settings.reservation_ttl_seconds + 60)
    for _ in range(2):
        async with db.uow() as uow:
            await cancel_unpaid_orders(uow, now=later)
            await uow.commit()
    assert await _balance(db, code) == 3000
    async with db.reader() as s:
        o = await s.get(Order, order.id)
        token = o.access_token if o else ""
        seen = await order_by_token(s, order.number, token or "")
    assert seen.status == "cancelled" and seen.paid_cents == 0
    assert [(p.method, p.amount_cents, p.status) for p in seen.payments] == [
        ("gift_card", 3000, "captured"), ("gift_card", -3000, "refunded")]


async def test_checkout_page_refuses_a_bad_card_next_to_the_field(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    [v] = await make_variants(db, [4000], stock={shop.warehouse: 3})
    spent = await _card(db, 100)
    async with db.uow() as uow:
        await ledger.spend(uow, SYSTEM, spent, 100, order_id=None)
        await uow.commit()
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test",
                                 headers={"Accept-Language": "fi"}) as web:
        page = (await web.get("/shop/cart")).text
        r = await web.post("/shop/cart/add", data={"csrf_token": csrf(page),
                                                   "variant_id": str(v["id"]), "quantity": "1"})
        assert r.status_code == 303
        page = (await web.get("/shop/checkout")).text
        assert 'data-testid="gift-card-code"' in page
        data = {"csrf_token": csrf(page), "key": uuid.uuid4().hex, "email": "gc@example.fi",
                "first_name": "Maija", "last_name": "Meikäläinen", "phone": "0401234567",
                "delivery": "home", "address_name": "Maija M", "street": "Katu 1",
                "postcode": "00100", "city": "Helsinki"}
        for raw, status, text in (
                ("1234 5678", 422, "Lahjakortin koodissa on 16 numeroa"),
                (ledger.new_code(), 409, "Tällä koodilla ei löydy lahjakorttia"),
                (spent, 409, "Kortilla ei ole enää saldoa")):
            r = await web.post("/shop/checkout", data=data | {"gift_card_code": raw})
            assert r.status_code == status, r.text
            assert text in text_of(r.text, "error-gift-card")
            assert 'aria-invalid="true" aria-describedby="gift-card-error' in r.text
        # The review shows the card's part as it is typed (htmx), and the rest to pay.
        good = await _card(db, 1500)
        r = await web.post("/shop/checkout/summary", data={
            "csrf_token": csrf(page), "delivery": "home", "gift_card_code": good})
        assert text_of(r.text, "gift-card-paid") == "−15,00 €"
        assert text_of(r.text, "to-pay") == f"{(4000 + 590 - 1500) / 100:.2f} €".replace(
            ".", ",")
    async with db.reader() as s:
        assert (await s.scalars(select(Order.id).where(Order.email == "gc@example.fi"))
                ).first() is None


async def test_shopper_buys_a_gift_card_and_checks_a_balance(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    [gc] = await make_variants(db, [5000], gift_card=True)  # no stock: always for sale
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test",
                                 headers={"Accept-Language": "en"}) as web:
        page = (await web.get("/shop/cart")).text
        r = await web.post("/shop/cart/add", data={"csrf_token": csrf(page),
                                                   "variant_id": str(gc["id"]), "quantity": "2"})
        assert r.status_code == 303, r.text
        page = (await web.get("/shop/checkout")).text
        r = await web.post("/shop/checkout", data={
            "csrf_token": csrf(page), "key": uuid.uuid4().hex, "email": "buyer@example.fi",
            "first_name": "Maija", "last_name": "Meikäläinen", "phone": "0401234567",
            "delivery": "pickup", "pickup_location_id": str(shop.store1)})
        assert r.status_code in (302, 303), r.text  # on to Paytrail
        async with db.reader() as s:
            order = (await s.scalars(select(Order).where(Order.email == "buyer@example.fi"))
                     ).one()
        assert (order.total_cents, order.vat_cents, order.status) == (10000, 0, "pending")

        code = await _card(db, 2500)
        r = await web.get("/shop/gift-card", params={"code": ledger.display_code(code)})
        assert r.status_code == 200
        assert text_of(r.text, "balance") == "€25.00"
        r = await web.get("/shop/gift-card", params={"code": code[:-1] + "x"})
        assert r.status_code == 422
        assert "A gift card code has 16 digits" in text_of(r.text, "error-code")
        r = await web.get("/shop/gift-card", params={"code": ledger.new_code()},
                          headers={"Accept-Language": "fi"})
        assert r.status_code == 422
        assert "Tällä koodilla ei löydy lahjakorttia" in text_of(r.text, "error-code")


async def test_store_credit_shows_on_every_customer_card(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test",
                                 headers={"Accept-Language": "fi"}) as shopper:
        email = new_email()
        r = await register_page(shopper, email)
        assert r.status_code == 303, r.text
        cid = await sign_in(db, email)
        page = (await shopper.get("/account/")).text
        assert 'data-testid="account-store-credit"' not in page  # none yet
        async with db.uow() as uow:
            await ledger.add_store_credit(uow, SYSTEM, cid, 1250, valid_days=365)
            await uow.commit()
        page = (await shopper.get("/account/")).text
        assert text_of(page, "store-credit-balance") == "12,50 €"
    async with httpx.AsyncClient(transport=client._transport,
                                 base_url="http://test") as staff:
        await staff_login(staff, shop, "manager")
        for url in (f"/pos/store-1/customers/{cid}", f"/backoffice/customers/{cid}"):
            page = (await staff.get(url)).text
            assert text_of(page, "store-credit-balance") == "12,50 €", url
        page = (await staff.get(f"/pos/store-1/customers/{cid}")).text
        assert 'data-store-credit="1250"' in page  # what the till may take


async def test_cancelling_a_paid_order_puts_the_card_part_back_on_the_card(
        db: Database, shop: Shop, settings: Settings, client: httpx.AsyncClient) -> None:
    [v] = await make_variants(db, [5000], stock={shop.warehouse: 5})
    code = await _card(db, 2000)
    order, _ = await place_web_order(
        db, settings, cmd(int(str(v["id"]))).model_copy(update={"gift_card_code": code}),
        customer_id=None, key=uuid.uuid4().hex)
    stamp, txn = f"st-gc-{order.id}", f"tx-gc-{order.id}"
    async with db.uow() as uow:
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=stamp, transaction_id=txn,
                                        amount_cents=amount_due(order), status="new"))
        await uow.commit()
    await record_payment_status(db, settings, stamp, txn, "ok", amount_due(order))
    r = await client.post(f"/api/v1/orders/{order.id}/cancel", json={"reason": "customer"},
                          headers=shop.auth("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["refund_cents"] == order.total_cents - 2000  # the Paytrail part
    assert await _balance(db, code) == 2000
    async with db.reader() as s:
        refunds = sorted((x.method, x.amount_cents) for x in await refunds_of(s, order.id))
    assert refunds == [("gift_card", 2000), ("paytrail", order.total_cents - 2000)]


async def test_gift_cards_alone_carry_no_delivery_fee(
        db: Database, shop: Shop, settings: Settings) -> None:
    """A digital card is e-mailed: home delivery of gift cards only costs nothing; with
    goods in the cart the fee is charged as usual."""
    assert settings.home_delivery_fee_cents > 0
    [gc] = await make_variants(db, [1000], gift_card=True)
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 5})
    only_cards, _ = await place_web_order(db, settings, cmd(int(str(gc["id"]))),
                                          customer_id=None, key=uuid.uuid4().hex)
    assert only_cards.delivery is not None and only_cards.delivery.fee_cents == 0
    assert only_cards.total_cents == 1000
    mixed = cmd(int(str(gc["id"])))
    mixed = mixed.model_copy(update={"lines": [*mixed.lines, *cmd(int(str(v["id"]))).lines]})
    with_goods, _ = await place_web_order(db, settings, mixed, customer_id=None,
                                          key=uuid.uuid4().hex)
    assert with_goods.delivery is not None
    assert with_goods.delivery.fee_cents == settings.home_delivery_fee_cents
    assert with_goods.total_cents == 2000 + settings.home_delivery_fee_cents
