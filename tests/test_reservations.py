"""Reservations at service level: holding stock for web checkouts and click & collect."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import OutOfStock, ValidationFailed
from saumaton.db.uow import Database
from saumaton.inventory.models import StockMovement, StockReservation
from saumaton.inventory.services import (
    Move,
    apply_moves,
    availability,
    consume,
    expire_due,
    release,
    reserve,
    verify_ledger,
)
from tests.support import Shop, make_variants

TTL = timedelta(minutes=15)


async def hold(db: Database, variant_id: int, location_id: int, qty: int,
               ttl: timedelta = TTL, now: datetime | None = None) -> int:
    async with db.uow() as uow:
        rid = await reserve(uow, SYSTEM, variant_id, location_id, qty,
                            reference=f"cart-{uuid.uuid4().hex[:8]}", ttl=ttl, now=now)
        await uow.commit()
    return rid


async def state(db: Database, variant_id: int, location_id: int) -> tuple[int, int, int]:
    """(on_hand, reserved, online) and the ledger still agrees with the levels."""
    async with db.reader() as s:
        a = (await availability(s, [variant_id]))[variant_id]
        assert await verify_ledger(s) == []
    loc = a.at(location_id)
    assert loc is not None
    return loc.on_hand, loc.reserved, a.online


async def status(db: Database, rid: int) -> str:
    async with db.reader() as s:
        return str(await s.scalar(select(StockReservation.status)
                                  .where(StockReservation.id == rid)))


async def test_reserve_holds_stock_without_touching_on_hand(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 5, shop.store1: 7})
    vid = v["id"]
    assert await state(db, vid, shop.warehouse) == (5, 0, 5)
    r1 = await hold(db, vid, shop.warehouse, 2)
    assert await state(db, vid, shop.warehouse) == (5, 2, 3)
    r2 = await hold(db, vid, shop.warehouse, 3)
    assert r1 != r2
    assert await state(db, vid, shop.warehouse) == (5, 5, 0)
    # a store's stock is not online stock, but can be held for click & collect
    await hold(db, vid, shop.store1, 7)
    assert await state(db, vid, shop.store1) == (7, 7, 0)
    async with db.reader() as s:
        kinds = (await s.scalars(select(StockMovement.kind)
                                 .where(StockMovement.variant_id == vid))).all()
    assert sorted(kinds) == ["receipt", "receipt"]  # holding is not a movement


async def test_reserve_beyond_available_is_out_of_stock_and_changes_nothing(
    db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 3})
    vid = v["id"]
    await hold(db, vid, shop.warehouse, 2)
    with pytest.raises(OutOfStock) as err:
        await hold(db, vid, shop.warehouse, 2)
    assert err.value.code == "out_of_stock" and err.value.status == 409
    assert err.value.extra == {"variant_id": vid, "location_id": shop.warehouse}
    with pytest.raises(OutOfStock):  # no level row at all
        await hold(db, vid, shop.store2, 1)
    assert await state(db, vid, shop.warehouse) == (3, 2, 1)
    async with db.reader() as s:
        held = (await s.scalars(select(StockReservation.quantity)
                                .where(StockReservation.variant_id == vid))).all()
    assert held == [2]
    await hold(db, vid, shop.warehouse, 1)  # the last one is still there to hold
    assert await state(db, vid, shop.warehouse) == (3, 3, 0)


async def test_web_order_cannot_take_held_stock(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 2})
    await hold(db, v["id"], shop.warehouse, 2)
    with pytest.raises(OutOfStock):
        async with db.uow() as uow:
            await apply_moves(uow, SYSTEM, [Move(v["id"], shop.warehouse, -1, "sale",
                                                 strict=True)])
    assert await state(db, v["id"], shop.warehouse) == (2, 2, 0)


async def test_release_is_idempotent(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 4})
    vid = v["id"]
    rid = await hold(db, vid, shop.warehouse, 3)
    results = []
    for _ in range(3):
        async with db.uow() as uow:
            results.append(await release(uow, rid))
            await uow.commit()
    assert results == [True, False, False]
    assert await status(db, rid) == "released"
    assert await state(db, vid, shop.warehouse) == (4, 0, 4)
    async with db.uow() as uow:
        assert await release(uow, 2**40) is False  # unknown: nothing to do


async def test_consume_turns_a_hold_into_a_sale(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 5})
    vid = v["id"]
    rid = await hold(db, vid, shop.warehouse, 2)
    async with db.uow() as uow:
        after = await consume(uow, SYSTEM, rid, reference="W-1")
        await uow.commit()
    assert (after.on_hand, after.reserved, after.available) == (3, 0, 3)
    assert await status(db, rid) == "consumed"
    assert await state(db, vid, shop.warehouse) == (3, 0, 3)
    async with db.reader() as s:
        sale = (await s.scalars(select(StockMovement).where(
            StockMovement.variant_id == vid, StockMovement.kind == "sale"))).one()
    assert (sale.quantity, sale.balance_after, sale.reference) == (-2, 3, "W-1")
    assert sale.reason == f"reservation {rid}" and sale.actor == "system"
    # a second consume, or consuming a released hold, sells nothing
    with pytest.raises(OutOfStock) as err:
        async with db.uow() as uow:
            await consume(uow, SYSTEM, rid)
    assert err.value.code == "reservation_inactive"
    other = await hold(db, vid, shop.warehouse, 1)
    async with db.uow() as uow:
        await release(uow, other)
        await uow.commit()
    with pytest.raises(OutOfStock):
        async with db.uow() as uow:
            await consume(uow, SYSTEM, other)
    assert await state(db, vid, shop.warehouse) == (3, 0, 3)


async def test_expire_due_releases_only_expired_holds(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 10})
    vid = v["id"]
    t0 = utcnow()
    short = await hold(db, vid, shop.warehouse, 2, ttl=timedelta(minutes=1), now=t0)
    edge = await hold(db, vid, shop.warehouse, 3, ttl=timedelta(minutes=5), now=t0)
    long = await hold(db, vid, shop.warehouse, 4, ttl=timedelta(hours=1), now=t0)
    consumed = await hold(db, vid, shop.warehouse, 1, ttl=timedelta(minutes=1), now=t0)
    async with db.uow() as uow:
        await consume(uow, SYSTEM, consumed)
        await uow.commit()
    assert await state(db, vid, shop.warehouse) == (9, 9, 0)

    async with db.uow() as uow:  # nothing of ours is due yet
        await expire_due(uow, now=t0 + timedelta(seconds=59))
        await uow.commit()
    assert [await status(db, r) for r in (short, edge, long)] == ["active"] * 3

    async with db.uow() as uow:  # due at exactly its expiry time
        n = await expire_due(uow, now=t0 + timedelta(minutes=5))
        await uow.commit()
    assert n >= 2
    assert [await status(db, r) for r in (short, edge, long, consumed)] == [
        "expired", "expired", "active", "consumed"]
    assert await state(db, vid, shop.warehouse) == (9, 4, 5)

    async with db.uow() as uow:  # running again finds nothing more of ours
        await expire_due(uow, now=t0 + timedelta(minutes=5))
        await uow.commit()
    assert await state(db, vid, shop.warehouse) == (9, 4, 5)
    async with db.uow() as uow:  # an expired hold cannot be consumed or released
        assert await release(uow, short) is False
        with pytest.raises(OutOfStock):
            await consume(uow, SYSTEM, short)
    assert await status(db, long) == "active"


async def test_reserve_refuses_non_positive_quantities(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 1})
    for qty in (0, -1):
        with pytest.raises(ValidationFailed) as err:
            await hold(db, v["id"], shop.warehouse, qty)
        assert err.value.code == "invalid_quantity"
    assert await state(db, v["id"], shop.warehouse) == (1, 0, 1)


async def test_consume_of_a_hold_the_till_already_sold_flags_the_level(
        db: Database, shop: Shop) -> None:
    """The till sold a held unit (a sale in hand never waits): consuming the hold still
    takes its units (they were sold), the level goes below zero and is flagged for a
    count; the events are those of closing the hold, then of the sale. (The same on
    both databases: PostgreSQL does it in one statement.)"""
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 2})
    vid = v["id"]
    rid = await hold(db, vid, shop.warehouse, 2)
    async with db.uow() as uow:
        await apply_moves(uow, SYSTEM, [Move(vid, shop.warehouse, -1, "sale")])
        await uow.commit()
    async with db.uow() as uow:
        after = await consume(uow, SYSTEM, rid, order_id=77, reference="W-9")
        assert [(t, p["on_hand"], p["reserved"], p["needs_count"]) for t, p in uow.events] == [
            ("stock.changed", 1, 0, False), ("stock.changed", -1, 0, True)]
        await uow.commit()
    assert (after.on_hand, after.reserved, after.needs_count) == (-1, 0, True)
    assert await status(db, rid) == "consumed"
    assert await state(db, vid, shop.warehouse) == (-1, 0, 0)  # nothing to sell
    async with db.reader() as s:
        sale = (await s.scalars(select(StockMovement).where(
            StockMovement.reference == "W-9"))).one()
        assert (sale.quantity, sale.balance_after, sale.order_id) == (-2, -1, 77)
        assert await verify_ledger(s) == []
