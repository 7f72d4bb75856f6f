"""Loyalty on both databases: points earned in every channel exactly once (till, synced
offline sale, paid web order, API order), not for anonymous sales; tiers by rolling
12-month spend; member prices only for the right tier at the till and on the web;
paying with points at the till; expiry first in, first out; points taken back on a
refund; two tills spending the same points at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.checkout.cart import price_cart
from saumaton.checkout.services import place_web_order, record_payment_status
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.inventory.models import StockLevel
from saumaton.loyalty.ledger import (
    ExpiryRun,
    balance,
    earn_for_order,
    expire_due,
    history,
    redeem,
    reverse_for_order,
)
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.loyalty.tiers import loyalty_summary, tier_of, tier_status
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.models import Payment
from saumaton.payments.services import PaymentIn
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.service import chat
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from saumaton.tills.zreport import z_report
from tests.support import Shop, make_variants, staff_login, text_of
from tests.support import open_drawer as _drawer
from tests.support import staff_actor as _actor
from tests.test_checkout import attempt, cmd


async def _customer(db: Database, *, card: bool = True) -> int:
    async with db.uow() as uow:
        out = await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Anna", last_name=f"L{uuid.uuid4().hex[:6]}", issue_card=card,
            email=None if card else f"{uuid.uuid4().hex[:10]}@example.fi"))
        await uow.commit()
    return out.id


def _sale(sid: int, lines: list[dict[str, Any]], payments: list[dict[str, Any]],
          **kw: Any) -> TillSaleIn:
    return TillSaleIn(key=kw.pop("key", uuid.uuid4().hex), session_id=sid,
                      lines=[TillLineIn(**ln) for ln in lines],
                      payments=[TillPaymentIn(**p) for p in payments], **kw)


async def _points(db: Database, customer_id: int) -> int:
    async with db.reader() as s:
        return await balance(s, customer_id)


async def _entries(db: Database, **where: Any) -> list[LoyaltyEntry]:
    async with db.reader() as s:
        q = select(LoyaltyEntry).order_by(LoyaltyEntry.id)
        for k, v in where.items():
            q = q.where(getattr(LoyaltyEntry, k) == v)
        return list((await s.scalars(q)).all())


async def _till_sale(db: Database, shop: Shop, customer_id: int | None, price: int,
                     **kw: Any) -> int:
    [v] = await make_variants(db, [price], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, await _actor(db, shop, "cashier1"), shop.store1, _sale(
        sid, [{"variant_id": v["id"]}], [{"method": "cash"}], customer_id=customer_id, **kw))
    return order.id


# --- earning -------------------------------------------------------------------------------

async def test_till_sale_earns_per_whole_euro_and_emits(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    [a, b] = await make_variants(db, [1234, 999], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, await _actor(db, shop, "cashier1"), shop.store1, _sale(
        sid, [{"variant_id": a["id"], "quantity": 2}, {"variant_id": b["id"]}],
        [{"method": "card", "terminal_confirmed": True}], customer_id=cid))
    assert order.total_cents == 3467
    [entry] = await _entries(db, order_id=order.id)
    assert (entry.kind, entry.points, entry.customer_id, entry.channel) == (
        "earn", 34, cid, "pos-1")
    assert entry.key == f"earn:order:{order.id}"
    assert entry.expires_at is not None
    lapse = entry.expires_at - entry.created_at
    assert lapse == timedelta(days=730)
    assert await _points(db, cid) == 34
    async with db.reader() as s:
        topics = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "loyalty.changed"))).all()
        assert {"customer_id": cid, "kind": "earn", "points": 34,
                "order_id": order.id} in list(topics)
        [h] = await history(s, cid, 10)
        assert h.points == 34 and h.order_id == order.id


async def test_anonymous_sale_earns_nothing(db: Database, shop: Shop) -> None:
    order_id = await _till_sale(db, shop, None, 5000)
    assert await _entries(db, order_id=order_id) == []
    async with db.uow() as uow:  # asking again changes nothing either
        assert await earn_for_order(uow, order_id) == 0
        await uow.commit()
    assert await _entries(db, order_id=order_id) == []


async def test_offline_sale_earns_once_when_synced_twice(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    [v] = await make_variants(db, [2590], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    cmd_ = _sale(sid, [{"variant_id": v["id"], "quantity": 2, "unit_price_cents": 2590}],
                 [{"method": "cash"}], customer_id=cid, offline=True,
                 sold_at=utcnow() - timedelta(hours=2), client_ref="K1-000042")
    first, replayed = await sell(db, cashier, shop.store1, cmd_)
    assert not replayed and first.offline
    again, replayed = await sell(db, cashier, shop.store1, cmd_)
    assert replayed and again.id == first.id
    [entry] = await _entries(db, customer_id=cid)
    assert (entry.kind, entry.points, entry.order_id) == ("earn", 51, first.id)
    assert await _points(db, cid) == 51


async def test_paid_web_order_earns_once_without_delivery_fee(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1990], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    email = f"web-{uuid.uuid4().hex[:8]}@example.fi"
    order, _ = await place_web_order(db, settings, cmd(vid, 2, email=email), customer_id=None,
                                     key=f"lw-{vid}")
    assert order.customer_id is not None
    fee = settings.home_delivery_fee_cents
    assert fee > 0 and order.total_cents == 3980 + fee
    assert await _entries(db, order_id=order.id) == []  # pending: nothing yet
    stamp, txn = await attempt(db, order)
    for _ in range(3):  # the redirect, the callback, the callback again
        out = await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
        assert out.order_status == "paid"
    [entry] = await _entries(db, order_id=order.id)
    assert (entry.kind, entry.points, entry.channel) == ("earn", 39, "web")
    assert await _points(db, order.customer_id) == 39


async def test_paid_api_order_earns(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    [v] = await make_variants(db, [4550], stock={shop.store1: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=cid, lines=[LineIn(variant_id=v["id"])],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]))
    assert order.status == "completed"
    pending, _ = await place_order(db, SYSTEM, OrderIn(
        channel="api", customer_id=cid, location_id=shop.store1,
        lines=[LineIn(variant_id=v["id"])]))
    assert pending.status == "pending"
    assert [(e.order_id, e.points) for e in await _entries(db, customer_id=cid)] == [
        (order.id, 45)]


# --- tiers ---------------------------------------------------------------------------------

async def test_tiers_at_the_thresholds(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    async with db.reader() as s:
        st = await tier_status(s, cid)
    assert (st.tier, st.spend_cents, st.next_tier, st.to_next_cents) == (
        "member", 0, "silver", 30000)
    first = await _till_sale(db, shop, cid, 29999)
    async with db.reader() as s:
        assert await tier_of(s, cid) == "member"
        assert (await tier_status(s, cid)).to_next_cents == 1
    await _till_sale(db, shop, cid, 1)
    async with db.reader() as s:
        st = await tier_status(s, cid)
    assert (st.tier, st.spend_cents, st.next_tier, st.to_next_cents) == (
        "silver", 30000, "gold", 50000)
    await _till_sale(db, shop, cid, 49999)
    async with db.reader() as s:
        assert await tier_of(s, cid) == "silver"
    await _till_sale(db, shop, cid, 1)
    async with db.reader() as s:
        st = await tier_status(s, cid)
        summary = await loyalty_summary(s, cid)
    assert (st.tier, st.next_tier, st.to_next_cents) == ("gold", None, None)
    assert summary.points == 299 + 499 and summary.points_value_cents == 798
    # Rolling: a purchase older than 365 days no longer counts.
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == first).values(
            created_at=utcnow() - timedelta(days=366)))
        await uow.commit()
    async with db.reader() as s:
        assert await tier_of(s, cid) == "silver"
        assert (await tier_status(s, cid)).spend_cents == 50001
    # Without a loyalty card nobody is a member, whatever they spend.
    plain = await _customer(db, card=False)
    await _till_sale(db, shop, plain, 90000)
    async with db.reader() as s:
        assert await tier_of(s, plain) is None
        assert (await tier_status(s, plain)).tier is None
        assert await tier_of(s, None) is None


async def _silver(db: Database, shop: Shop) -> int:
    cid = await _customer(db)
    await _till_sale(db, shop, cid, 30000)
    return cid


async def test_member_price_only_for_the_tier_at_the_till(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2000], stock={shop.store1: 20})
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Silver price", kind="percent", value=2500, min_tier="silver",
            starts_at=utcnow() - timedelta(hours=1), variant_ids=[v["id"]]))
        await uow.commit()
    silver, member = await _silver(db, shop), await _customer(db)
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")

    async def total(customer_id: int | None) -> int:
        order, _ = await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}], [{"method": "cash"}], customer_id=customer_id))
        return order.total_cents

    assert await total(silver) == 1500
    assert await total(member) == 2000
    assert await total(None) == 2000
    # The till showed the store price but a silver customer is attached: the core
    # answers with the member price (409 price_changed, the till reprices).
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}], [{"method": "cash"}], customer_id=silver,
            expected_total_cents=2000))
    assert exc.value.code == "price_changed"
    assert exc.value.extra["quote"]["total_cents"] == 1500


async def test_member_price_only_for_the_tier_on_the_web(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [4000], stock={shop.warehouse: 20})
    vid = int(str(v["id"]))
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Members", kind="fixed", value=500, min_tier="member",
            starts_at=utcnow() - timedelta(hours=1), variant_ids=[vid]))
        await uow.commit()
    member = await _customer(db)
    plain = await _customer(db, card=False)
    async with db.reader() as s:
        cart_member = await price_cart(s, None, None, [(vid, 2)], utcnow(),
                                       customer_id=member)
        cart_plain = await price_cart(s, None, None, [(vid, 2)], utcnow(), customer_id=plain)
        cart_guest = await price_cart(s, None, None, [(vid, 2)], utcnow())
    assert cart_member.quote.total_cents == 7000
    assert cart_plain.quote.total_cents == cart_guest.quote.total_cents == 8000
    fee = settings.home_delivery_fee_cents if 7000 < settings.free_delivery_from_cents else 0
    order, _ = await place_web_order(db, settings, cmd(vid, 2), customer_id=member,
                                     key=f"mp-{vid}")
    assert order.customer_id == member and order.total_cents == 7000 + fee
    guest, _ = await place_web_order(db, settings, cmd(vid, 2, email="g@example.fi"),
                                     customer_id=None, key=f"mpg-{vid}")
    assert guest.lines[0].total_cents == 8000


# --- redeeming -----------------------------------------------------------------------------

async def test_pay_partly_with_points_at_the_till(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    await _till_sale(db, shop, cid, 50000)
    assert await _points(db, cid) == 500
    [v] = await make_variants(db, [1234], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, await _actor(db, shop, "cashier1"), shop.store1, _sale(
        sid, [{"variant_id": v["id"]}],
        [{"method": "points", "amount_cents": 300}, {"method": "cash", "tendered_cents": 1000}],
        customer_id=cid, expected_total_cents=1234))
    pts, cash = order.payments
    assert (pts.method, pts.amount_cents, pts.rounding_cents) == ("points", 300, 0)
    assert (cash.method, cash.amount_cents, cash.rounding_cents, cash.change_cents) == (
        "cash", 934, 1, 65)
    async with db.reader() as s:
        rows = (await s.execute(select(Payment.method, Payment.amount_cents).where(
            Payment.order_id == order.id).order_by(Payment.id))).all()
    assert [tuple(r) for r in rows] == [("points", 300), ("cash", 934)]
    kinds = [(e.kind, e.points) for e in await _entries(db, order_id=order.id)]
    assert kinds == [("redeem", -300), ("earn", 9)]  # earned on the part paid in cash
    assert await _points(db, cid) == 500 - 300 + 9
    async with db.reader() as s:  # the Z report keeps points apart from card and cash
        report = await z_report(s, sid)
    assert (report.points.count, report.points.amount_cents) == (1, 300)
    assert report.card.amount_cents == 0 and report.cash.amount_cents == 934


async def test_not_enough_points_changes_nothing(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    await _till_sale(db, shop, cid, 2000)
    [v] = await make_variants(db, [5000], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    async with db.reader() as s:
        orders_before = await s.scalar(select(func.count()).select_from(Order))
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}],
            [{"method": "points", "amount_cents": 2100}, {"method": "cash"}], customer_id=cid))
    assert exc.value.code == "not_enough_points" and exc.value.extra["balance"] == 20
    for bad, code in (({"method": "points", "amount_cents": 100}, "points_need_customer"),
                      ({"method": "points"}, "invalid_points")):
        with pytest.raises(ValidationFailed) as vexc:
            await sell(db, cashier, shop.store1, _sale(
                sid, [{"variant_id": v["id"]}], [bad, {"method": "cash"}],
                customer_id=None if code == "points_need_customer" else cid))
        assert vexc.value.code == code
    async with db.uow() as uow:  # and straight through the ledger
        with pytest.raises(Conflict):
            await redeem(uow, cashier, cid, 21, None, f"t-{uuid.uuid4().hex}")
    assert await _points(db, cid) == 20
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == orders_before
        assert await s.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == v["id"], StockLevel.location_id == shop.store1)) == 5


# --- expiry and reversal -------------------------------------------------------------------

async def test_expiry_is_first_in_first_out(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    old_order = await _till_sale(db, shop, cid, 10000)
    await _till_sale(db, shop, cid, 5000)
    cashier = await _actor(db, shop, "cashier1")
    async with db.uow() as uow:
        await redeem(uow, cashier, cid, 30, None, f"t-{uuid.uuid4().hex}")
        await uow.commit()
    assert await _points(db, cid) == 120
    now = utcnow()
    async with db.uow() as uow:  # the first 100 points were earned long ago
        await uow.session.execute(update(LoyaltyEntry).where(
            LoyaltyEntry.order_id == old_order, LoyaltyEntry.kind == "earn").values(
            created_at=now - timedelta(days=731), expires_at=now - timedelta(days=1)))
        await uow.commit()
    async with db.uow() as uow:
        run = await expire_due(uow, now)
        assert run.customers >= 1 and run.points >= 70
        await uow.commit()
    [gone] = await _entries(db, customer_id=cid, kind="expire")
    assert gone.points == -70 and gone.order_id == old_order
    assert await _points(db, cid) == 50
    async with db.uow() as uow:  # again: nothing more
        assert await expire_due(uow, now) == ExpiryRun(0, 0)
        await uow.commit()
    assert len(await _entries(db, customer_id=cid, kind="expire")) == 1
    assert await _points(db, cid) == 50
    # Points used up before they lapse: nothing to write off, and not asked again.
    spent = await _customer(db)
    spent_order = await _till_sale(db, shop, spent, 1000)
    async with db.uow() as uow:
        await redeem(uow, cashier, spent, 10, None, f"t-{uuid.uuid4().hex}")
        await uow.session.execute(update(LoyaltyEntry).where(
            LoyaltyEntry.order_id == spent_order).values(expires_at=now - timedelta(days=1)))
        await uow.commit()
    async with db.uow() as uow:
        assert await expire_due(uow, now) == ExpiryRun(1, 0)
        assert await expire_due(uow, now) == ExpiryRun(0, 0)
        await uow.commit()
    assert await _points(db, spent) == 0
    async with db.reader() as s:
        assert [h.kind for h in await history(s, spent)] == ["redeem", "earn"]


async def test_refund_takes_back_the_points(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [6000], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    email = f"ref-{uuid.uuid4().hex[:8]}@example.fi"
    order, _ = await place_web_order(db, settings, cmd(vid, 1, email=email), customer_id=None,
                                     key=f"rf-{vid}")
    stamp, txn = await attempt(db, order)
    await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
    assert order.customer_id is not None
    cid = order.customer_id
    assert await _points(db, cid) == 60
    # A second payment of the paid order goes back: it earned nothing, takes nothing.
    stamp2, txn2 = await attempt(db, order, 2)
    out = await record_payment_status(db, settings, stamp2, txn2, "ok", order.total_cents)
    assert out.refund_cents == order.total_cents
    assert await _points(db, cid) == 60
    # Part of the goods returned: the points for that part go.
    async with db.uow() as uow:
        assert await reverse_for_order(uow, order.id, 2550, "return", key="ret-1") == 25
        await uow.commit()
    async with db.uow() as uow:  # the same return again: nothing more
        assert await reverse_for_order(uow, order.id, 2550, "return", key="ret-1") == 0
        await uow.commit()
    assert await _points(db, cid) == 35
    # The order cancelled and its money refunded: the rest of its points go, no more.
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order.id)
                                  .values(status="cancelled"))
        await uow.commit()
    stamp3, txn3 = await attempt(db, order, 3)
    await record_payment_status(db, settings, stamp3, txn3, "ok", order.total_cents)
    assert await _points(db, cid) == 0
    kinds = [(e.kind, e.points) for e in await _entries(db, order_id=order.id)]
    assert kinds == [("earn", 60), ("reverse", -25), ("reverse", -35)]


async def test_two_tills_spend_the_same_points_once(db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    await _till_sale(db, shop, cid, 10000)
    [v] = await make_variants(db, [2000], stock={shop.store1: 10, shop.store2: 10})
    s1, s2 = await _drawer(db, shop.store1), await _drawer(db, shop.store2)
    c1, c2 = await _actor(db, shop, "cashier1"), await _actor(db, shop, "cashier2")

    async def pay(actor: Actor, location: int, sid: int) -> Any:
        return await sell(db, actor, location, _sale(
            sid, [{"variant_id": v["id"]}],
            [{"method": "points", "amount_cents": 80}, {"method": "cash"}], customer_id=cid))

    results = await asyncio.gather(pay(c1, shop.store1, s1), pay(c2, shop.store2, s2),
                                   return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1, results
    assert isinstance(failed[0], Conflict) and failed[0].code == "not_enough_points"
    assert await _points(db, cid) == 100 - 80 + 19
    assert len(await _entries(db, customer_id=cid, kind="redeem")) == 1


async def test_the_balance_shows_in_the_service_desk_and_the_back_office(
        db: Database, shop: Shop, web: httpx.AsyncClient) -> None:
    cid = await _customer(db)
    await _till_sale(db, shop, cid, 4250)  # 42 points
    async with db.uow() as uow:
        msg = await chat.post_visitor_message(uow, chat.new_visitor_token(), "Hei!",
                                              uuid.uuid4().hex, customer_id=cid)
        await uow.commit()
    await staff_login(web, shop, "manager")
    for url in (f"/service/c/{msg.conversation_id}", f"/backoffice/customers/{cid}"):
        page = (await web.get(url)).text
        assert text_of(page, "loyalty-points") == "42", url
        assert text_of(page, "loyalty-tier") == "Jäsen", url
