"""The customer a new sale is recorded for, on both databases: a till (or an offline
sale synced later) that still holds a merged customer's old id records the sale, its
points and its member prices for the kept customer; an erased customer takes no new
sale online, and an offline sale made before the erasure is kept without them; API
orders price a member's lines with their member prices, like the till and the webshop."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.customers.duplicates import merge_customers
from saumaton.customers.gdpr import erase_customer
from saumaton.db.uow import Database
from saumaton.loyalty.ledger import balance
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from saumaton.tills.sales import sell
from tests.support import Shop, make_variants
from tests.test_loyalty import _actor, _customer, _drawer, _sale
from tests.test_member_prices import member_campaign


async def merged_pair(db: Database, shop: Shop) -> tuple[int, int]:
    kept, merged = await _customer(db), await _customer(db)
    async with db.uow() as uow:
        await merge_customers(uow, await _actor(db, shop, "manager"), kept, merged)
        await uow.commit()
    return kept, merged


async def test_a_sale_for_a_merged_id_lands_on_the_kept_customer(
        db: Database, shop: Shop) -> None:
    kept, merged = await merged_pair(db, shop)
    [v] = await make_variants(db, [5000], stock={shop.store1: 5})
    await member_campaign(db, int(str(v["id"])), 1000, "member")
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    online, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"]}], [{"method": "cash"}], customer_id=merged))
    offline, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"], "unit_price_cents": 5000,
               "campaign_discount_cents": 1000}], [{"method": "cash"}],
        customer_id=merged, offline=True, sold_at=utcnow() - timedelta(minutes=5),
        client_ref=f"R{uuid.uuid4().hex[:6]}"))
    for order in (online, offline):
        assert order.customer_id == kept
        assert order.total_cents == 4000  # the kept customer's member price
    async with db.reader() as s:
        assert await balance(s, kept) == 80
        assert await balance(s, merged) == 0
        flags = await s.scalar(select(Order.flags).where(Order.id == offline.id))
    assert "price_mismatch" not in (flags or "")


async def test_an_erased_customer_takes_no_new_sale_but_an_offline_one_is_kept(
        db: Database, shop: Shop) -> None:
    cid = await _customer(db)
    async with db.uow() as uow:
        await erase_customer(uow, SYSTEM, cid, "asked at the till")
        await uow.commit()
    [v] = await make_variants(db, [1500], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    before = await _count_orders(db)
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}], [{"method": "cash"}], customer_id=cid))
    assert (exc.value.code, exc.value.field) == ("customer_erased", "customer_id")
    assert await _count_orders(db) == before
    # Sold offline before the erasure reached the till: the sale stands, anonymously.
    order, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"], "unit_price_cents": 1500}], [{"method": "cash"}],
        customer_id=cid, offline=True, sold_at=utcnow() - timedelta(minutes=1),
        client_ref=f"R{uuid.uuid4().hex[:6]}"))
    assert order.customer_id is None and order.total_cents == 1500
    async with db.reader() as s:
        flags = await s.scalar(select(Order.flags).where(Order.id == order.id))
        assert "customer_erased" in (flags or "")
        assert await balance(s, cid) == 0
    # An unknown id is still a plain 422 on the field.
    with pytest.raises(ValidationFailed) as bad:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}], [{"method": "cash"}], customer_id=2_000_000_000))
    assert (bad.value.code, bad.value.field) == ("unknown_customer", "customer_id")


async def _count_orders(db: Database) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(Order)) or 0)


async def test_api_orders_use_member_prices_and_follow_merges(db: Database, shop: Shop) -> None:
    kept, merged = await merged_pair(db, shop)
    plain = await _customer(db, card=False)
    [v] = await make_variants(db, [2000], stock={shop.store1: 10})
    await member_campaign(db, int(str(v["id"])), 300, "member")

    async def total(customer_id: int | None) -> tuple[int, int | None]:
        order, _ = await place_order(db, SYSTEM, OrderIn(
            channel="pos-1", customer_id=customer_id,
            lines=[LineIn(variant_id=int(str(v["id"])), quantity=2)],
            payments=[PaymentIn(method="cash", tendered_cents=5000)]))
        return order.total_cents, order.customer_id

    assert await total(kept) == (3400, kept)
    assert await total(merged) == (3400, kept)
    assert await total(plain) == (4000, plain)
    assert await total(None) == (4000, None)
