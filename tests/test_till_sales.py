"""Till sales through the core (`tills.sales.sell`), on both databases: manual discounts
and their limits, split tender, voids, the price-changed check, offline sales recorded as
charged and flagged, idempotency on the till's key (also across online → offline), and
concurrent retries of one sale on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, ValidationFailed
from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.orders.discounts import DiscountIn, spread
from saumaton.orders.models import Order, OrderLine, SaleVoid
from saumaton.payments.models import Payment
from saumaton.payments.terminal import TerminalResult
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.tills.sales import (
    TillLineIn,
    TillPaymentIn,
    TillSaleIn,
    VoidIn,
    VoidsIn,
    record_voids,
    sell,
)
from tests.support import Shop, make_variants
from tests.support import open_drawer as _drawer
from tests.support import staff_actor as _actor


def _key() -> str:
    return uuid.uuid4().hex


def _sale(session_id: int, lines: list[dict[str, Any]], payments: list[dict[str, Any]],
          **kw: Any) -> TillSaleIn:
    return TillSaleIn(key=kw.pop("key", _key()), session_id=session_id,
                      lines=[TillLineIn(**ln) for ln in lines],
                      payments=[TillPaymentIn(**p) for p in payments], **kw)


async def _on_hand(db: Database, variant_id: int, location_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)) or 0)


def test_spread_is_exact_and_proportional() -> None:
    assert spread(100, [1, 1, 1]) == [34, 33, 33]
    assert spread(7, [500, 300, 200]) == [4, 2, 1]
    assert sum(spread(12345, [7, 13, 999, 1])) == 12345
    assert spread(0, [5, 5]) == [0, 0]


async def test_cash_sale_with_line_and_order_discounts(db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1999, 3450], stock={shop.store1: 10})
    cashier = await _actor(db, shop, "cashier1")
    sid = await _drawer(db, shop.store1)
    cmd = _sale(sid, [
        {"variant_id": a["id"], "quantity": 2,
         "discount": DiscountIn(percent_bp=1000, reason="damaged box")},
        {"variant_id": b["id"], "quantity": 1},
    ], [{"method": "cash", "tendered_cents": 10000}],
        order_discount=DiscountIn(cents=100, reason="regular customer"))
    order, replayed = await sell(db, cashier, shop.store1, cmd)
    assert not replayed
    la, lb = order.lines
    # line a: 39.98 − 10 % (4.00) = 35.98; order −1.00 spread over 35.98 : 34.50
    assert la.manual_discount_cents == 400 + 51 and la.discount_reason == "damaged box"
    assert lb.manual_discount_cents == 49 and lb.discount_reason == "regular customer"
    assert order.total_cents == 3998 + 3450 - 500 == la.total_cents + lb.total_cents
    assert order.status == "completed" and order.drawer_session_id == sid
    [pay] = order.payments
    assert pay.method == "cash" and pay.rounding_cents == 2 and pay.change_cents == 10000 - 6950
    assert order.discount_reason == "regular customer"
    assert await _on_hand(db, a["id"], shop.store1) == 8


async def test_cashier_discount_limit_and_manager_override(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [10000], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    line = {"variant_id": v["id"], "discount": DiscountIn(percent_bp=5000, reason="x")}
    with pytest.raises(Forbidden) as exc:
        await sell(db, await _actor(db, shop, "cashier1"), shop.store1,
                   _sale(sid, [line], [{"method": "cash"}]))
    assert exc.value.code == "discount_over_limit" and exc.value.field == "lines.0.discount"
    assert await _on_hand(db, v["id"], shop.store1) == 5
    order, _ = await sell(db, await _actor(db, shop, "manager"), shop.store1,
                          _sale(sid, [line], [{"method": "cash"}]))
    assert order.total_cents == 5000


async def test_split_tender_card_then_cash(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [4998], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    order, _ = await sell(db, await _actor(db, shop, "cashier1"), shop.store1, _sale(
        sid, [{"variant_id": v["id"]}],
        [{"method": "card", "amount_cents": 2000, "terminal_confirmed": True},
         {"method": "cash", "tendered_cents": 3000}]))
    card, cash = order.payments
    assert (card.method, card.amount_cents, card.status) == ("card", 2000, "captured")
    assert (cash.amount_cents, cash.rounding_cents, cash.change_cents) == (2998, 2, 0)


async def test_price_changed_is_refused_online(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2000], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Flash -25 %", kind="percent", value=2500,
            starts_at=utcnow() - timedelta(minutes=1), variant_ids=[v["id"]]))
        await uow.commit()
    cmd = _sale(sid, [{"variant_id": v["id"]}], [{"method": "cash"}],
                expected_total_cents=2000)
    with pytest.raises(Conflict) as exc:
        await sell(db, await _actor(db, shop, "cashier1"), shop.store1, cmd)
    assert exc.value.code == "price_changed"
    assert exc.value.extra["quote"]["total_cents"] == 1500
    assert await _on_hand(db, v["id"], shop.store1) == 5


async def test_offline_sale_is_recorded_as_charged_and_flagged(
        db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2000], stock={shop.store1: 1})
    sid = await _drawer(db, shop.store1)
    sold_at = utcnow() - timedelta(minutes=30)
    cmd = _sale(sid, [{"variant_id": v["id"], "quantity": 3, "unit_price_cents": 1800,
                       "campaign_discount_cents": 0}],
                [{"method": "card"}], offline=True, sold_at=sold_at, client_ref="K1-000007",
                voids=[VoidIn(variant_id=v["id"], quantity=1, amount_cents=1800)])
    order, _ = await sell(db, await _actor(db, shop, "cashier1"), shop.store1, cmd)
    assert order.total_cents == 5400 and order.offline and order.client_ref == "K1-000007"
    assert order.sold_at == sold_at
    assert set(order.flags) == {"price_mismatch", "card_unconfirmed", "negative_stock"}
    assert order.payments[0].status == "to_confirm"
    assert await _on_hand(db, v["id"], shop.store1) == -2
    async with db.reader() as s:
        voids = (await s.scalars(select(SaleVoid).where(SaleVoid.order_id == order.id))).all()
    assert [(x.quantity, x.amount_cents, x.drawer_session_id) for x in voids] == [(1, 1800, sid)]


async def test_offline_sale_after_the_drawer_closed_is_kept(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1, status="closed")
    cashier = await _actor(db, shop, "cashier1")
    with pytest.raises(Conflict):
        await sell(db, cashier, shop.store1, _sale(sid, [{"variant_id": v["id"]}],
                                                   [{"method": "cash"}]))
    order, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"], "unit_price_cents": 1000}], [{"method": "cash"}],
        offline=True, sold_at=utcnow()))
    assert order.flags == ["after_close"]


async def test_same_key_is_one_sale_even_when_resent_offline(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    key = _key()
    first, replayed = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"]}], [{"method": "cash"}], key=key))
    assert not replayed
    again, replayed = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"], "unit_price_cents": 1000}], [{"method": "cash"}],
        key=key, offline=True, sold_at=utcnow(), client_ref="K1-000001"))
    assert replayed and again.id == first.id and not again.offline
    # The same key at another store is another sale's key.
    other = await _drawer(db, shop.store2)
    third, replayed = await sell(db, await _actor(db, shop, "cashier2"), shop.store2, _sale(
        other, [{"variant_id": v["id"]}], [{"method": "cash"}], key=key))
    assert not replayed and third.id != first.id
    assert await _on_hand(db, v["id"], shop.store1) == 4


async def test_bad_sales_change_nothing(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    other = await _drawer(db, shop.store2)
    cashier = await _actor(db, shop, "cashier1")
    async with db.reader() as s:
        before = await s.scalar(select(func.count()).select_from(Order))
    cases: list[tuple[TillSaleIn, str]] = [
        (_sale(other, [{"variant_id": v["id"]}], [{"method": "cash"}]),
         "drawer_session_invalid"),
        (_sale(sid, [{"variant_id": 2**31 - 1}], [{"method": "cash"}]), "unknown_variant"),
        (_sale(sid, [{"variant_id": v["id"]}], [{"method": "cash", "tendered_cents": 500}]),
         "insufficient_cash"),
        (_sale(sid, [{"variant_id": v["id"]}], [{"method": "card"}]), "card_not_confirmed"),
        (_sale(sid, [{"variant_id": v["id"],
                      "discount": DiscountIn(cents=5000, reason="too much")}],
               [{"method": "cash"}]), "discount_too_large"),
    ]
    for cmd, code in cases:
        with pytest.raises(ValidationFailed) as exc:
            await sell(db, cashier, shop.store1, cmd)
        assert exc.value.code == code
    with pytest.raises(Forbidden):  # a Helsinki cashier at the Tampere store
        await sell(db, cashier, shop.store2, _sale(other, [{"variant_id": v["id"]}],
                                                   [{"method": "cash"}]))
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == before
    assert await _on_hand(db, v["id"], shop.store1) == 5


async def test_cancelled_sale_voids_are_recorded_once(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1250], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    cmd = VoidsIn(key=_key(), session_id=sid, voids=[
        VoidIn(variant_id=v["id"], quantity=2, amount_cents=2500, reason="changed mind")])
    assert await record_voids(db, cashier, shop.store1, cmd) == 1
    assert await record_voids(db, cashier, shop.store1, cmd) == 0
    async with db.reader() as s:
        rows = (await s.scalars(select(SaleVoid).where(
            SaleVoid.drawer_session_id == sid))).all()
    assert [(r.quantity, r.amount_cents, r.reason, r.order_id) for r in rows] == [
        (2, 2500, "changed mind", None)]


async def test_concurrent_retries_of_one_sale_make_one_order(db: Database, shop: Shop) -> None:
    """8 copies of one sale at once (a till retrying while the first is in flight);
    on PostgreSQL they really run concurrently on separate connections."""
    [v] = await make_variants(db, [990], stock={shop.store1: 50})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    key = _key()
    results = await asyncio.gather(*[sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"]}], [{"method": "cash"}], key=key)) for _ in range(8)])
    assert len({o.id for o, _ in results}) == 1
    assert sum(1 for _, replayed in results if not replayed) == 1
    async with db.reader() as s:
        n = await s.scalar(select(func.count()).select_from(OrderLine).join(
            Order, Order.id == OrderLine.order_id).where(Order.drawer_session_id == sid))
        pays = await s.scalar(select(func.count()).select_from(Payment).join(
            Order, Order.id == Payment.order_id).where(Order.drawer_session_id == sid))
    assert n == 1 and pays == 1
    assert await _on_hand(db, v["id"], shop.store1) == 49


class _Terminal:
    """An integrated card terminal as the till would drive it (an external device)."""

    def __init__(self, approve: bool) -> None:
        self.approve = approve
        self.charges: list[tuple[int, str]] = []

    async def charge(self, amount_cents: int, sale_key: str) -> TerminalResult:
        self.charges.append((amount_cents, sale_key))
        return TerminalResult(self.approve, reference="T-42" if self.approve else "",
                              message="" if self.approve else "Declined by the issuer")


async def test_integrated_terminal_charges_or_declines(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2500], stock={shop.store1: 5})
    sid = await _drawer(db, shop.store1)
    cashier = await _actor(db, shop, "cashier1")
    declined = _Terminal(False)
    with pytest.raises(ValidationFailed) as exc:
        await sell(db, cashier, shop.store1, _sale(
            sid, [{"variant_id": v["id"]}], [{"method": "card"}]), declined)
    assert exc.value.code == "card_declined" and exc.value.field == "payments.0"
    assert declined.charges and await _on_hand(db, v["id"], shop.store1) == 5
    approved = _Terminal(True)
    order, _ = await sell(db, cashier, shop.store1, _sale(
        sid, [{"variant_id": v["id"]}],
        [{"method": "cash", "amount_cents": 500}, {"method": "card"}]), approved)
    assert [c[0] for c in approved.charges] == [2000]
    assert order.payments[1].reference == "T-42"
