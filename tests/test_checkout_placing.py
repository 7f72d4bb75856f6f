"""Placing a web order with its Paytrail payment as the checkout page does it
(`checkout.placing.place_checkout`): on PostgreSQL the fast path and its round-trip
budget, its fallbacks to the portable path; on both databases the same order."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy import update as sql_update

from saumaton.checkout.placing import Placed, place_checkout
from saumaton.checkout.services import CheckoutIn, start_payment_in
from saumaton.config import Settings
from saumaton.core.errors import OutOfStock
from saumaton.customers.models import CustomerConsent, CustomerIdentity
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.inventory.models import StockReservation
from saumaton.inventory.services import verify_ledger
from saumaton.locations.models import Location
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn
from saumaton.orders.services import get_order
from saumaton.payments.models import PaytrailPayment
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.payments.paytrail.simulator import create_simulator
from tests.support import Shop, make_variants
from tests.test_checkout import cmd, level

ACCOUNT, SECRET, PUBLIC = "375917", "SAIPPUAKAUPPIAS", "http://paytrail.test"
# BEGIN, the lookup, the variants (their campaigns and bundles from the process's books),
# the order statement (its events too), COMMIT; then the Paytrail attempt's row (one
# statement, after Paytrail).
PLACING_ROUND_TRIPS = 6
# As bench/checkout_steps.py counts them: each call into asyncpg's protocol that waits
# for PostgreSQL.
ROUND_TRIPS = frozenset({"query", "prepare", "bind_execute", "bind_execute_many", "bind",
                         "execute", "close_statement", "copy_in", "copy_out"})


class _Counting:
    def __init__(self, inner: Any, counts: dict[str, int]) -> None:
        self._inner = inner
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ROUND_TRIPS:
            return attr

        def counted(*a: Any, **kw: Any) -> Any:
            self._counts["n"] += 1
            return attr(*a, **kw)
        return counted


@pytest.fixture
async def counted_db(database_url: str) -> AsyncIterator[tuple[Database, dict[str, int]]]:
    """A database of its own whose PostgreSQL round trips are counted."""
    database = Database(database_url)
    counts: dict[str, int] = defaultdict(int)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        conn = dbapi_connection.driver_connection
        if hasattr(conn, "_protocol"):
            conn._protocol = _Counting(conn._protocol, counts)
    event.listen(database.write_engine.sync_engine, "connect", on_connect)
    yield database, counts
    await database.dispose()


@pytest.fixture
async def paytrail() -> AsyncIterator[PaytrailClient]:
    """The Paytrail simulator in-process (no callbacks are sent in these tests)."""
    async with httpx.AsyncClient(base_url="http://shop.test") as callbacks:
        sim = create_simulator({ACCOUNT: SECRET}, PUBLIC, http_client=callbacks)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim),
                                     base_url=PUBLIC) as http:
            yield PaytrailClient(PaytrailConfig(ACCOUNT, SECRET, PUBLIC), http)


async def _place(db: Database, client: PaytrailClient, settings: Settings, *args: Any,
                 key: str, **kw: Any) -> Placed:
    return (await _place_paid(db, client, settings, *args, key=key, **kw))[0]


async def _place_paid(db: Database, client: PaytrailClient, settings: Settings, *args: Any,
                      key: str, **kw: Any) -> tuple[Placed, str]:
    """As the checkout page does it: the payment starts after the order's commit.
    Returns the order placed and the Paytrail payment page."""
    async with db.uow() as uow:
        placed = await place_checkout(uow, settings, cmd(*args, **kw),
                                      customer_id=None, key=key)
        await uow.commit()
        href = await start_payment_in(uow, client, settings, placed.order)
        await uow.commit()
    return placed, href


async def test_a_guest_order_and_its_payment_in_one_transaction(
        counted_db: tuple[Database, dict[str, int]], paytrail: PaytrailClient, shop: Shop,
        settings: Settings) -> None:
    db, counts = counted_db
    [v] = await make_variants(db, [2490], stock={shop.warehouse: 3})
    vid = int(str(v["id"]))
    await _place(db, paytrail, settings, vid, key=f"warm-{vid}",
                 email=f"warm-{vid}@example.fi")  # statements prepared, channel cached
    counts.clear()
    placed, href = await _place_paid(db, paytrail, settings, vid, 2, key=f"rt-{vid}",
                                     email=f"new-{vid}@example.fi")
    if db.is_postgres:
        assert counts["n"] <= PLACING_ROUND_TRIPS, counts
    assert href and not placed.replayed
    assert await level(db, vid, shop.warehouse) == (3, 3)
    async with db.reader() as s:
        # The view answered is the order as stored.
        assert await get_order(s, placed.order.id) == placed.order
        assert placed.order.lines[0].location_id == shop.warehouse
        order = await s.get(Order, placed.order.id)
        assert order is not None and order.access_token == placed.token
        # (a replay below starts a second attempt, as a shopper paying again does)
        attempt = (await s.scalars(select(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id))).one()
        assert (attempt.status, attempt.amount_cents, attempt.href) == (
            "new", order.total_cents, href)
        assert attempt.transaction_id
        held = (await s.scalars(select(StockReservation).where(
            StockReservation.reference == placed.order.number))).all()
        assert [(r.quantity, r.status, r.location_id) for r in held] == [
            (2, "active", shop.warehouse)]
        owner = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "email", CustomerIdentity.value == f"new-{vid}@example.fi"))
        assert owner == order.customer_id
        topics = [e.topic for e in (await s.scalars(
            select(OutboxEvent).where(OutboxEvent.id > 0).order_by(OutboxEvent.id.desc())
            .limit(3))).all()]
        assert sorted(topics) == ["customer.created", "order.created", "stock.changed"]
    if db.is_postgres:  # the order's statement wrote its events, as the portable way
        # emits them (payloads and order)
        async with db.reader() as s:
            events = [(e.topic, e.payload) for e in (await s.scalars(
                select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(3))).all()][::-1]
        assert events == [
            ("order.created", {"order_id": order.id, "channel_id": order.channel_id,
                               "location_id": None, "status": "pending",
                               "total_cents": order.total_cents,
                               "customer_id": order.customer_id, "channel": "web",
                               "delivery": "home"}),
            ("customer.created", {"customer_id": order.customer_id, "channel": "web"}),
            ("stock.changed", {"variant_id": vid, "location_id": shop.warehouse,
                               "on_hand": 3, "reserved": 3, "available": 0,
                               "needs_count": False})]
    async with db.reader() as s:
        assert await verify_ledger(s) == []

    # The same checkout again: the same order, no second reservation.
    again = await _place(db, paytrail, settings, vid, 2, key=f"rt-{vid}",
                         email=f"new-{vid}@example.fi")
    assert again.replayed and again.order.id == placed.order.id
    assert again.token == placed.token
    assert await level(db, vid, shop.warehouse) == (3, 3)


async def test_a_returning_buyer_is_found_by_e_mail(
        db: Database, paytrail: PaytrailClient, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    email = f"again-{vid}@example.fi"
    first = await _place(db, paytrail, settings, vid, key=f"a1-{vid}", email=email)
    second = await _place(db, paytrail, settings, vid, key=f"a2-{vid}", email=email)
    assert first.order.customer_id is not None
    assert second.order.customer_id == first.order.customer_id


async def test_a_line_no_location_holds_whole_is_split(
        db: Database, paytrail: PaytrailClient, shop: Shop, settings: Settings) -> None:
    """The fast path holds a line at one location; split across two, the portable path
    takes over (the same checkout, the same answer)."""
    async with db.uow() as uow:
        await uow.session.execute(sql_update(Location).where(Location.id == shop.store2)
                                  .values(ships_web_orders=True))
        uow.emit("settings.changed", {"keys": ["locations"]})  # as the shop settings do
        await uow.commit()
    try:
        [v] = await make_variants(db, [1000], stock={shop.warehouse: 1, shop.store2: 1})
        vid = int(str(v["id"]))
        placed = await _place(db, paytrail, settings, vid, 2, key=f"sp-{vid}",
                              email=f"sp-{vid}@example.fi")
        assert placed.order.status == "pending" and not placed.replayed
        assert await level(db, vid, shop.warehouse) == (1, 1)
        assert await level(db, vid, shop.store2) == (1, 1)
        with pytest.raises(OutOfStock):
            await _place(db, paytrail, settings, vid, 1, key=f"sp2-{vid}",
                         email=f"sp2-{vid}@example.fi")
        async with db.reader() as s:
            assert await s.scalar(select(func.count()).select_from(Order).where(
                Order.idempotency_key == f"sp2-{vid}")) == 0
            assert await verify_ledger(s) == []
    finally:
        async with db.uow() as uow:
            await uow.session.execute(sql_update(Location).where(Location.id == shop.store2)
                                      .values(ships_web_orders=False))
            uow.emit("settings.changed", {"keys": ["locations"]})
            await uow.commit()


async def test_concurrent_buyers_never_oversell_and_one_new_e_mail_is_one_customer(
        db: Database, paytrail: PaytrailClient, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 10})
    vid = int(str(v["id"]))
    email = f"crowd-{vid}@example.fi"

    async def one(i: int) -> str:
        try:
            await _place(db, paytrail, settings, vid, key=f"cr-{vid}-{i}", email=email)
        except OutOfStock:
            return "sold_out"
        return "placed"

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert results.count("placed") == 10 and results.count("sold_out") == 30
    assert await level(db, vid, shop.warehouse) == (10, 10)
    async with db.reader() as s:
        owners = (await s.scalars(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "email", CustomerIdentity.value == email))).all()
        assert len(owners) == 1
        buyers = set((await s.scalars(select(Order.customer_id).where(
            Order.idempotency_key.like(f"cr-{vid}-%")))).all())
        assert buyers == {owners[0]}
        assert await verify_ledger(s) == []


async def test_click_and_collect_with_a_gift_card_line_and_consent(
        db: Database, paytrail: PaytrailClient, shop: Shop, settings: Settings) -> None:
    """The store's stock is held; a gift card line holds none; a new buyer's ticked
    marketing consent is recorded."""
    [v] = await make_variants(db, [1500], stock={shop.store1: 2, shop.warehouse: 9})
    [g] = await make_variants(db, [2500], gift_card=True)
    vid, gid = int(str(v["id"])), int(str(g["id"]))
    email = f"cc-{vid}@example.fi"
    command = CheckoutIn(email=email, phone="040 765 4321", first_name="Cecilia",
                         last_name="Collect", delivery="pickup", pickup_location_id=shop.store1,
                         marketing_email=True,
                         lines=[LineIn(variant_id=gid, quantity=1),
                                LineIn(variant_id=vid, quantity=2)])
    async with db.uow() as uow:
        placed = await place_checkout(uow, settings, command, customer_id=None,
                                      key=f"cc-{vid}")
        await uow.commit()
    assert placed.order.location_id == shop.store1
    assert [(ln.variant_id, ln.location_id) for ln in placed.order.lines] == [
        (gid, None), (vid, shop.store1)]
    assert placed.order.total_cents == 2500 + 2 * 1500  # no delivery fee
    assert await level(db, vid, shop.store1) == (2, 2)
    assert await level(db, vid, shop.warehouse) == (9, 0)
    async with db.reader() as s:
        assert await get_order(s, placed.order.id) == placed.order
        consent = (await s.scalars(select(CustomerConsent).where(
            CustomerConsent.customer_id == placed.order.customer_id))).one()
        assert (consent.kind, consent.granted) == ("marketing_email", True)
        held = (await s.scalars(select(StockReservation).where(
            StockReservation.reference == placed.order.number))).all()
        assert [(r.variant_id, r.location_id, r.quantity) for r in held] == [
            (vid, shop.store1, 2)]
