"""Web checkout in the core: reservations while paying, Paytrail results settled once,
unpaid orders cancelled, no oversell."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from saumaton.checkout.services import (
    AddressIn,
    CheckoutIn,
    cancel_unpaid_orders,
    delivery_options,
    place_web_order,
    record_payment_status,
)
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import OutOfStock, ValidationFailed
from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel, StockReservation
from saumaton.inventory.services import verify_ledger
from saumaton.orders.quote import quote_order
from saumaton.orders.schemas import LineIn, OrderOut
from saumaton.payments.models import Payment, PaytrailPayment
from tests.support import Shop, make_variants

ADDRESS = AddressIn(name="Anna Asiakas", street="Mannerheimintie 1", postcode="00100",
                    city="Helsinki")


def cmd(variant_id: int, qty: int = 1, *, delivery: str = "home", store: int | None = None,
        email: str = "anna@example.fi") -> CheckoutIn:
    return CheckoutIn(email=email, phone="040 123 4567", first_name="Anna",
                      last_name="Asiakas", delivery=delivery,  # type: ignore[arg-type]
                      pickup_location_id=store, address=ADDRESS if delivery == "home" else None,
                      lines=[LineIn(variant_id=variant_id, quantity=qty)])


async def level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        row = (await s.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id))).one()
    return int(row[0]), int(row[1])


async def attempt(db: Database, order: OrderOut, n: int = 1) -> tuple[str, str]:
    """A Paytrail attempt as start_payment records it (stamp, transaction id)."""
    stamp, txn = f"st-{order.id}-{n}", f"tx-{order.id}-{n}"
    async with db.uow() as uow:
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=stamp, transaction_id=txn,
                                        amount_cents=order.total_cents, status="new"))
        await uow.commit()
    return stamp, txn


async def test_home_delivery_reserves_then_paid_takes_stock(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1990], stock={shop.warehouse: 5, shop.store1: 2})
    vid = int(str(v["id"]))
    order, replayed = await place_web_order(db, settings, cmd(vid, 2), customer_id=None,
                                            key=f"k-{vid}")
    assert not replayed and order.status == "pending"
    fee = settings.home_delivery_fee_cents
    assert order.delivery is not None and order.delivery.fee_cents == fee
    assert order.total_cents == 2 * 1990 + fee
    assert sum(v.gross_cents for v in order.vat_breakdown) == order.total_cents
    assert order.lines[0].location_id == shop.warehouse  # the location that ships
    assert order.customer_id is not None and order.email == "anna@example.fi"
    assert await level(db, vid, shop.warehouse) == (5, 2)
    # the same key again: the same order, nothing reserved twice
    again, replayed = await place_web_order(db, settings, cmd(vid, 2), customer_id=None,
                                            key=f"k-{vid}")
    assert replayed and again.id == order.id
    assert await level(db, vid, shop.warehouse) == (5, 2)

    stamp, txn = await attempt(db, order)
    out = await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
    assert out.changed and out.order_status == "paid"
    assert await level(db, vid, shop.warehouse) == (3, 0)
    # the callback again, and the redirect: nothing more happens
    for _ in range(2):
        out = await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
        assert not out.changed and out.order_status == "paid"
    async with db.reader() as s:
        n = await s.scalar(select(func.count()).select_from(Payment)
                           .where(Payment.order_id == order.id))
        assert n == 1
        assert await verify_ledger(s) == []
    assert await level(db, vid, shop.warehouse) == (3, 0)


async def test_free_delivery_from_the_threshold(db: Database, shop: Shop,
                                                settings: Settings) -> None:
    [v] = await make_variants(db, [settings.free_delivery_from_cents], stock={shop.warehouse: 1})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=f"free-{v['id']}")
    assert order.delivery is not None and order.delivery.fee_cents == 0
    assert order.total_cents == settings.free_delivery_from_cents


async def test_click_and_collect_holds_units_at_the_store(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 3, shop.warehouse: 9})
    vid = int(str(v["id"]))
    async with db.reader() as s:
        q = await quote_order(s, "web", [LineIn(variant_id=vid, quantity=3)], utcnow())
        options = {(o.method, o.location_id): o for o in await delivery_options(s, settings, q)}
    assert options[("pickup", shop.store1)].available
    assert not options[("pickup", shop.store2)].available
    with pytest.raises(OutOfStock):
        await place_web_order(db, settings, cmd(vid, 1, delivery="pickup", store=shop.store2),
                              customer_id=None, key=f"cc2-{vid}")
    with pytest.raises(ValidationFailed) as e:
        await place_web_order(db, settings, cmd(vid, 1, delivery="pickup", store=shop.warehouse),
                              customer_id=None, key=f"ccw-{vid}")
    assert e.value.code == "not_a_pickup_point"
    order, _ = await place_web_order(db, settings, cmd(vid, 3, delivery="pickup",
                                                       store=shop.store1),
                                     customer_id=None, key=f"cc1-{vid}")
    assert order.total_cents == 4500 and order.location_id == shop.store1
    assert await level(db, vid, shop.store1) == (3, 3)
    stamp, txn = await attempt(db, order)
    await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
    # paid: still reserved at the store (handed over at the till), held for days
    assert await level(db, vid, shop.store1) == (3, 3)
    async with db.reader() as s:
        r = (await s.scalars(select(StockReservation).where(
            StockReservation.reference == order.number))).one()
    assert r.status == "active"
    assert r.expires_at > utcnow() + timedelta(days=settings.pickup_hold_days - 1)


async def test_unpaid_order_is_cancelled_and_stock_released(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    vid = int(str(v["id"]))
    order, _ = await place_web_order(db, settings, cmd(vid), customer_id=None, key=f"u-{vid}")
    stamp, txn = await attempt(db, order)
    out = await record_payment_status(db, settings, stamp, txn, "fail", order.total_cents)
    assert out.order_status == "pending"  # a cancelled payment may be retried
    assert await level(db, vid, shop.warehouse) == (1, 1)
    async with db.uow() as uow:  # not yet due
        assert await cancel_unpaid_orders(uow) == 0
        await uow.commit()
    later = utcnow() + timedelta(seconds=settings.reservation_ttl_seconds + 1)
    async with db.uow() as uow:
        assert await cancel_unpaid_orders(uow, now=later) >= 1
        await uow.commit()
    assert await level(db, vid, shop.warehouse) == (1, 0)
    # Paid after all, too late: the shopper was told it is cancelled, so it is refunded.
    stamp2, txn2 = await attempt(db, order, 2)
    out = await record_payment_status(db, settings, stamp2, txn2, "ok", order.total_cents)
    assert out.order_status == "cancelled" and out.refund_cents == order.total_cents


async def test_tampered_amount_changes_nothing(db: Database, shop: Shop,
                                               settings: Settings) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=f"t-{v['id']}")
    stamp, txn = await attempt(db, order)
    from saumaton.checkout.services import InvalidSignature
    with pytest.raises(InvalidSignature):
        await record_payment_status(db, settings, stamp, txn, "ok", 1)
    with pytest.raises(InvalidSignature):
        await record_payment_status(db, settings, stamp, "other-txn", "ok", order.total_cents)
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Payment)
                              .where(Payment.order_id == order.id)) == 0


async def test_concurrent_checkouts_never_oversell(db: Database, shop: Shop,
                                                   settings: Settings) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 20})
    vid = int(str(v["id"]))

    async def one(i: int) -> str:
        try:
            await place_web_order(db, settings, cmd(vid, email=f"buyer{i}@example.fi"),
                                  customer_id=None, key=f"c-{vid}-{i}")
        except OutOfStock:
            return "sold_out"
        return "placed"

    results = await asyncio.gather(*(one(i) for i in range(100)))
    assert results.count("placed") == 20 and results.count("sold_out") == 80
    assert await level(db, vid, shop.warehouse) == (20, 20)


async def test_concurrent_guests_with_one_new_email_become_one_customer(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 10})
    vid = int(str(v["id"]))
    email = f"same-{vid}@example.fi"
    orders = await asyncio.gather(*(
        place_web_order(db, settings, cmd(vid, email=email), customer_id=None,
                        key=f"same-{vid}-{i}") for i in range(8)))
    assert len({o.customer_id for o, _ in orders}) == 1
    async with db.reader() as s:
        from saumaton.customers.models import CustomerIdentity
        owners = (await s.scalars(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "email", CustomerIdentity.value == email))).all()
    assert list(owners) == [orders[0][0].customer_id]


async def test_a_line_is_split_across_shipping_locations_when_needed(
        db: Database, shop: Shop, settings: Settings) -> None:
    """Two locations ship web orders, each with 1 unit: an order for 2 is taken from
    both (the product page promised 2 online), and paying takes both."""
    from sqlalchemy import update as sql_update

    from saumaton.locations.models import Location
    async with db.uow() as uow:  # store 2 ships web orders for this test
        await uow.session.execute(sql_update(Location).where(Location.id == shop.store2)
                                  .values(ships_web_orders=True))
        # Each process keeps the locations (locations.reference): announced as the
        # settings service announces its edits of location rows.
        uow.emit("settings.changed", {"keys": ["locations"]})
        await uow.commit()
    try:
        [v] = await make_variants(db, [1000], stock={shop.warehouse: 1, shop.store2: 1})
        vid = int(str(v["id"]))
        order, _ = await place_web_order(db, settings, cmd(vid, 2), customer_id=None,
                                         key=f"split-{vid}")
        assert await level(db, vid, shop.warehouse) == (1, 1)
        assert await level(db, vid, shop.store2) == (1, 1)
        with pytest.raises(OutOfStock):  # nothing left anywhere
            await place_web_order(db, settings, cmd(vid, 1, email="other@example.fi"),
                                  customer_id=None, key=f"split2-{vid}")
        stamp, txn = await attempt(db, order)
        out = await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
        assert out.order_status == "paid"
        assert await level(db, vid, shop.warehouse) == (0, 0)
        assert await level(db, vid, shop.store2) == (0, 0)
        async with db.reader() as s:
            assert await verify_ledger(s) == []
    finally:
        async with db.uow() as uow:
            await uow.session.execute(sql_update(Location).where(Location.id == shop.store2)
                                      .values(ships_web_orders=False))
            uow.emit("settings.changed", {"keys": ["locations"]})
            await uow.commit()


async def test_payment_states_only_move_forward(db: Database, shop: Shop,
                                                settings: Settings) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=f"fwd-{v['id']}")
    stamp, txn = await attempt(db, order)
    t = order.total_cents
    assert (await record_payment_status(db, settings, stamp, txn, "fail", t)).changed
    assert not (await record_payment_status(db, settings, stamp, txn, "pending", t)).changed
    out = await record_payment_status(db, settings, stamp, txn, "ok", t)  # another bank
    assert out.changed and out.order_status == "paid"
    assert not (await record_payment_status(db, settings, stamp, txn, "fail", t)).changed


async def test_marketing_consent_only_for_a_buyer_we_may_speak_for(
        db: Database, shop: Shop, settings: Settings) -> None:
    from saumaton.customers.models import CustomerConsent
    [v] = await make_variants(db, [500], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    new_email = f"consent-{vid}@example.fi"
    first = cmd(vid, email=new_email).model_copy(update={"marketing_email": True})
    order, _ = await place_web_order(db, settings, first, customer_id=None, key=f"mc1-{vid}")
    # A guest who types an e-mail that is now a known customer's and ticks the box
    # does not change that customer's consents (one row, from the first checkout).
    again = cmd(vid, email=new_email).model_copy(update={"marketing_email": True})
    await place_web_order(db, settings, again, customer_id=None, key=f"mc2-{vid}")
    async with db.reader() as s:
        rows = (await s.execute(select(CustomerConsent.kind, CustomerConsent.granted,
                                       CustomerConsent.channel)
                                .where(CustomerConsent.customer_id == order.customer_id)
                                )).all()
    assert rows == [("marketing_email", True, "checkout")]
