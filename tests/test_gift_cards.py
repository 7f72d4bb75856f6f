"""Gift cards and store credit on both databases: the ledger (issue, spend, credit,
expire, key replay), paying with a card or store credit through the API and at the
till (also refused offline), and selling gift cards (a card per unit, no stock, no
points, no campaign discount)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from saumaton.catalogue.schemas import ProductIn, VariantIn
from saumaton.catalogue.services import create_product
from saumaton.checkout.services import CheckoutIn, place_web_order, record_payment_status
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.giftcards import ledger
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from saumaton.inventory.models import StockMovement
from saumaton.loyalty.ledger import balance
from saumaton.mail.models import OutgoingMail
from saumaton.orders.schemas import LineIn
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import Shop, make_variants
from tests.support import open_drawer as _drawer
from tests.support import staff_actor as _actor
from tests.test_checkout import ADDRESS, attempt


async def _card(db: Database, cents: int, *, days: int = 365) -> ledger.CardView:
    async with db.uow() as uow:
        card = await ledger.issue(uow, SYSTEM, cents, valid_days=days)
        await uow.commit()
    return card


async def _balance(db: Database, code: str) -> int:
    async with db.reader() as s:
        return (await ledger.card_by_code(s, code)).balance_cents


async def _customer(db: Database) -> int:
    async with db.uow() as uow:
        out = await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Anna", last_name=f"L{uuid.uuid4().hex[:6]}", issue_card=True))
        await uow.commit()
    return out.id


def _sale(sid: int, lines: list[dict[str, Any]], payments: list[dict[str, Any]],
          **kw: Any) -> TillSaleIn:
    return TillSaleIn(key=kw.pop("key", uuid.uuid4().hex), session_id=sid,
                      lines=[TillLineIn(**ln) for ln in lines],
                      payments=[TillPaymentIn(**p) for p in payments], **kw)


# --- the ledger -------------------------------------------------------------------------

def test_codes_carry_a_check_digit() -> None:
    code = ledger.new_code()
    assert len(code) == 16 and ledger.clean_code(ledger.display_code(code)) == code
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    with pytest.raises(ValidationFailed) as exc:
        ledger.clean_code(wrong)
    assert exc.value.code == "invalid_gift_card_code"
    assert ledger.masked_code(code).endswith(code[-4:]) and code[:12] not in \
        ledger.masked_code(code)


async def test_issue_spend_credit_and_key_replay(db: Database, shop: Shop) -> None:
    card = await _card(db, 5000)
    async with db.uow() as uow:
        first = await ledger.spend(uow, SYSTEM, card.code, 1200, order_id=None, key="k-1")
        again = await ledger.spend(uow, SYSTEM, card.code, 1200, order_id=None, key="k-1")
        assert again.id == first.id  # the same key moves money once
        await uow.commit()
    assert await _balance(db, card.code) == 3800
    async with db.uow() as uow:
        with pytest.raises(Conflict) as exc:
            await ledger.spend(uow, SYSTEM, card.code, 3801, order_id=None)
        assert exc.value.code == "insufficient_gift_card_balance"
        assert exc.value.extra["balance_cents"] == 3800
        await ledger.credit(uow, SYSTEM, card.id, 200, key="c-1")
        await ledger.credit(uow, SYSTEM, card.id, 200, key="c-1")
        await uow.commit()
    assert await _balance(db, card.code) == 4000
    async with db.reader() as s:
        kinds = [(e.kind, e.amount_cents, e.balance_after_cents)
                 for e in await ledger.entries(s, card.id)]
        total = await s.scalar(select(func.sum(GiftCardEntry.amount_cents))
                               .where(GiftCardEntry.gift_card_id == card.id))
    assert kinds == [("refund", 200, 4000), ("spend", -1200, 3800), ("issue", 5000, 5000)]
    assert total == 4000  # the balance is the ledger's sum


async def test_expired_and_unknown_cards_are_refused(db: Database, shop: Shop) -> None:
    card = await _card(db, 3000, days=1)
    later = utcnow() + timedelta(days=2)
    async with db.uow() as uow:
        with pytest.raises(Conflict) as exc:
            await ledger.spend(uow, SYSTEM, card.code, 100, order_id=None, now=later)
        assert exc.value.code == "gift_card_expired"
        with pytest.raises(NotFound) as nf:
            await ledger.card_by_code(uow.session, ledger.new_code())
        assert nf.value.code == "gift_card_not_found"
    async with db.uow() as uow:
        assert await ledger.expire_cards(uow, SYSTEM, now=later) >= 1
        assert await ledger.expire_cards(uow, SYSTEM, now=later) == 0  # once
        await uow.commit()
    async with db.reader() as s:
        view = await ledger.card_by_code(s, card.code)
        [last, *_] = await ledger.entries(s, card.id)
    assert view.balance_cents == 0 and (last.kind, last.amount_cents) == ("expire", -3000)


async def test_store_credit_is_one_balance_per_customer(db: Database, shop: Shop) -> None:
    customer = await _customer(db)
    async with db.uow() as uow:
        a = await ledger.add_store_credit(uow, SYSTEM, customer, 1000, valid_days=30)
        b = await ledger.add_store_credit(uow, SYSTEM, customer, 500, valid_days=30)
        await uow.commit()
    assert a.id == b.id and b.balance_cents == 1500 and b.kind == "store_credit"


# --- paying with a card -----------------------------------------------------------------

async def test_api_order_paid_partly_with_a_gift_card(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [4990], stock={shop.store1: 5})
    card = await _card(db, 3000)
    body = {"channel": "pos-1", "lines": [{"variant_id": v["id"]}], "payments": [
        {"method": "gift_card", "code": ledger.display_code(card.code), "amount_cents": 3000},
        {"method": "cash", "tendered_cents": 2000}]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1") | key, json=body)
    assert r.status_code == 201, r.text
    order = r.json()
    gift, cash = order["payments"]
    assert (gift["method"], gift["amount_cents"]) == ("gift_card", 3000)
    assert gift["reference"].endswith(card.code[-4:]) and card.code not in r.text
    assert (cash["amount_cents"], cash["rounding_cents"], cash["change_cents"]) == (1990, 0, 10)
    assert order["status"] == "completed" and order["paid_cents"] == 4990
    assert await _balance(db, card.code) == 0
    # a retry of the same request replays the order and spends nothing more
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1") | key, json=body)
    assert r.status_code == 200 and r.json()["id"] == order["id"]
    async with db.reader() as s:
        spends = await s.scalar(select(func.count()).select_from(GiftCardEntry).where(
            GiftCardEntry.gift_card_id == card.id, GiftCardEntry.kind == "spend"))
    assert spends == 1


async def test_api_gift_card_refusals_change_nothing(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [4990], stock={shop.store1: 5})
    card = await _card(db, 1000)

    async def pay(code: str, amount: int) -> httpx.Response:
        return await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
            "channel": "pos-1", "lines": [{"variant_id": v["id"]}], "payments": [
                {"method": "gift_card", "code": code, "amount_cents": amount},
                {"method": "card", "terminal_confirmed": True}]})

    r = await pay(card.code, 1500)
    assert r.status_code == 409 and r.json()["code"] == "insufficient_gift_card_balance"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await pay(card.code[:-1] + str((int(card.code[-1]) + 1) % 10), 500)
    assert r.status_code == 422 and r.json()["code"] == "invalid_gift_card_code"
    r = await pay(ledger.new_code(), 500)
    assert r.status_code == 409 and r.json()["code"] == "gift_card_not_found"
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"]}],
        "payments": [{"method": "gift_card", "amount_cents": 500}]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_gift_card_code"
    assert await _balance(db, card.code) == 1000
    async with db.reader() as s:
        sold = await s.scalar(select(func.count()).select_from(StockMovement).where(
            StockMovement.variant_id == v["id"], StockMovement.kind == "sale"))
    assert sold == 0


async def test_api_order_paid_with_store_credit(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [2500], stock={shop.store1: 5})
    customer = await _customer(db)
    body = {"channel": "pos-1", "customer_id": customer, "lines": [{"variant_id": v["id"]}],
            "payments": [{"method": "store_credit", "amount_cents": 2000},
                         {"method": "card", "terminal_confirmed": True}]}
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json=body)
    assert r.status_code == 409 and r.json()["code"] == "no_store_credit"
    async with db.uow() as uow:
        await ledger.add_store_credit(uow, SYSTEM, customer, 2000, valid_days=30)
        await uow.commit()
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json=body)
    assert r.status_code == 201, r.text
    async with db.reader() as s:
        credit = await ledger.store_credit_of(s, customer)
    assert credit is not None and credit.balance_cents == 0


async def test_till_sale_paid_with_a_gift_card_and_refused_offline(
    db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 5})
    card = await _card(db, 1000)
    cashier = await _actor(db, shop, "cashier1")
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"]}],
        [{"method": "gift_card", "code": card.code, "amount_cents": 1000},
         {"method": "cash", "tendered_cents": 500}]))
    assert [p.method for p in order.payments] == ["gift_card", "cash"]
    assert await _balance(db, card.code) == 0
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}],
            [{"method": "gift_card", "code": card.code, "amount_cents": 100},
             {"method": "cash"}]))
    assert exc.value.code == "insufficient_gift_card_balance"
    assert exc.value.field == "payments.0.amount_cents"
    with pytest.raises(ValidationFailed) as offline:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"], "unit_price_cents": 1500}],
            [{"method": "gift_card", "code": card.code, "amount_cents": 100},
             {"method": "cash"}], offline=True))
    assert offline.value.code == "gift_card_offline"


# --- selling gift cards -----------------------------------------------------------------

async def test_till_sells_gift_cards_without_stock_points_or_campaigns(
    db: Database, shop: Shop
) -> None:
    [gc] = await make_variants(db, [5000], gift_card=True)
    [lip] = await make_variants(db, [2000], stock={shop.store1: 5})
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Kaikki -20 %", kind="percent", value=2000,
            starts_at=utcnow() - timedelta(hours=1),
            product_ids=[int(str(gc["product_id"])), int(str(lip["product_id"]))]))
        await uow.commit()
    customer = await _customer(db)
    cashier = await _actor(db, shop, "cashier1")
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": gc["id"], "quantity": 2}, {"variant_id": lip["id"]}],
        [{"method": "card", "terminal_confirmed": True}], customer_id=customer))
    gift_line, lip_line = order.lines
    assert gift_line.total_cents == 10000 and gift_line.vat_cents == 0  # no campaign, no VAT
    assert lip_line.total_cents == 1600
    async with db.reader() as s:
        cards = list((await s.scalars(select(GiftCard).where(GiftCard.order_id == order.id)
                                      .order_by(GiftCard.id))).all())
        moves = list((await s.scalars(select(StockMovement.variant_id).where(
            StockMovement.order_id == order.id))).all())
        points = await balance(s, customer)
    assert [(c.kind, c.balance_cents) for c in cards] == [("gift_card", 5000)] * 2
    assert cards[0].expires_at is not None
    assert moves == [lip["id"]]  # no stock kept of gift cards
    assert points == 16  # 1 point per euro, on the lipstick only


async def test_api_sells_a_gift_card_once_per_request(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [gc] = await make_variants(db, [2500], gift_card=True)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"channel": "pos-2", "lines": [{"variant_id": gc["id"]}],
            "payments": [{"method": "cash"}]}
    for _ in range(2):
        r = await client.post("/api/v1/orders", headers=shop.auth("cashier2") | key, json=body)
        assert r.status_code in (200, 201), r.text
    async with db.reader() as s:
        cards = list((await s.scalars(select(GiftCard).where(
            GiftCard.order_id == r.json()["id"]))).all())
    assert [c.balance_cents for c in cards] == [2500]


async def test_a_gift_card_product_is_sold_without_vat(db: Database, shop: Shop) -> None:
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as exc:
            await create_product(uow, SYSTEM, ProductIn(
                slug=f"gc-{uuid.uuid4().hex[:6]}", name="Gift", vat_class="standard",
                gift_card=True, variants=[VariantIn(sku=uuid.uuid4().hex[:10],
                                                    price_cents=100)]))
    assert exc.value.code == "gift_card_vat_class"


async def test_webshop_sells_a_digital_gift_card_by_mail_when_paid(
    db: Database, shop: Shop, settings: Settings
) -> None:
    [gc] = await make_variants(db, [2500], gift_card=True)
    [lip] = await make_variants(db, [1990], stock={shop.warehouse: 5})
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email="gift@example.fi", phone="040 123 4567", first_name="Anna", last_name="Lahja",
        delivery="home", address=ADDRESS, lines=[
            LineIn(variant_id=int(str(gc["id"])), quantity=2),
            LineIn(variant_id=int(str(lip["id"])))]), customer_id=None, key=uuid.uuid4().hex)
    gift_line = order.lines[0]
    assert gift_line.location_id is None and gift_line.vat_cents == 0
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(GiftCard).where(
            GiftCard.order_id == order.id)) == 0  # issued only once paid
    stamp, txn = await attempt(db, order)
    for _ in range(2):  # the callback and the redirect: one set of cards
        await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
    async with db.reader() as s:
        cards = list((await s.scalars(select(GiftCard).where(
            GiftCard.order_id == order.id))).all())
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.kind == "gift_card", OutgoingMail.reference == order.number))
        stock_moves = list((await s.scalars(select(StockMovement.variant_id).where(
            StockMovement.order_id == order.id))).all())
    assert [(c.balance_cents, c.email) for c in cards] == [(2500, "gift@example.fi")] * 2
    assert mail is not None and mail.to_addr == "gift@example.fi"
    for c in cards:
        assert ledger.display_code(c.code) in mail.body_text
        assert f'data-gift-card="{c.code}"' in mail.body_html
        assert f"cid:qr-{c.code}@qr.saumaton.invalid" in mail.body_html  # inline QR
    assert "data:image" not in mail.body_html
    assert stock_moves == [lip["id"]]


async def test_till_sale_paid_with_store_credit(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [3000], stock={shop.store1: 5})
    customer = await _customer(db)
    async with db.uow() as uow:
        await ledger.add_store_credit(uow, SYSTEM, customer, 1000, valid_days=30)
        await uow.commit()
    cashier = await _actor(db, shop, "cashier1")
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"]}],
        [{"method": "store_credit", "amount_cents": 1000}, {"method": "cash"}],
        customer_id=customer))
    assert [(p.method, p.amount_cents) for p in order.payments] == [
        ("store_credit", 1000), ("cash", 2000)]
    async with db.reader() as s:
        credit = await ledger.store_credit_of(s, customer)
        points = await balance(s, customer)
    assert credit is not None and credit.balance_cents == 0
    assert points == 30  # goods paid with credit earn points like any payment
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}],
            [{"method": "store_credit", "amount_cents": 100}, {"method": "cash"}],
            customer_id=customer))
    assert exc.value.code == "insufficient_gift_card_balance"
    assert exc.value.field == "payments.0.amount_cents"
