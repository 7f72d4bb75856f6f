"""The webshop cart: limits from availability, merge on sign-in, privacy."""

from __future__ import annotations

import pytest

from saumaton.checkout import cart as carts
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import OutOfStock, ValidationFailed
from saumaton.customers.models import Customer
from saumaton.db.uow import Database
from tests.support import Shop, make_variants


async def new_customer(db: Database) -> int:
    async with db.uow() as uow:
        c = Customer(first_name="Cart", last_name="Tester")
        uow.session.add(c)
        await uow.session.flush()
        await uow.commit()
        return c.id


async def add(db: Database, token: str | None, customer: int | None, vid: int,
              qty: int) -> carts.CartChange:
    async with db.uow() as uow:
        change = await carts.add_to_cart(uow, token, customer, vid, qty)
        await uow.commit()
    return change


async def test_quantity_is_capped_by_what_can_be_sold(db: Database, shop: Shop) -> None:
    # 2 online, 5 at the Helsinki pickup store: one order can get at most 5
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 2, shop.store1: 5})
    vid = int(str(v["id"]))
    first = await add(db, None, None, vid, 3)
    assert first.quantity == 3 and not first.limited and len(first.token) >= 24
    more = await add(db, first.token, None, vid, 4)
    assert more.token == first.token and more.quantity == 5 and more.limited
    async with db.reader() as s:
        view = await carts.view_cart(s, first.token, None, utcnow())
    [line] = view.lines
    assert line.wanted == 5 and line.sellable == 5 and not line.short
    assert view.quote.total_cents == 5000 and view.count == 5


async def test_sold_out_is_refused_and_shortage_is_shown(db: Database, shop: Shop,
                                                         settings: Settings) -> None:
    [v, sold] = await make_variants(db, [1000, 500], stock={shop.warehouse: 1})
    vid = int(str(v["id"]))
    change = await add(db, None, None, vid, 1)
    from saumaton.checkout.services import place_web_order
    from tests.test_checkout import cmd  # the same checkout command helper

    # someone else buys the last unit of v; and the other variant is gone too
    await place_web_order(db, settings, cmd(vid), customer_id=None, key=f"other-{vid}")
    async with db.uow() as uow:
        from saumaton.core.actor import SYSTEM
        from saumaton.inventory.services import adjust
        await adjust(uow, SYSTEM, int(str(sold["id"])), shop.warehouse, -1, reason="damaged")
        await uow.commit()
    with pytest.raises(OutOfStock):
        await add(db, change.token, None, int(str(sold["id"])), 1)
    async with db.reader() as s:
        view = await carts.view_cart(s, change.token, None, utcnow())
    [line] = view.lines
    assert line.sold_out and line.short and view.has_problems
    with pytest.raises(ValidationFailed):
        await add(db, change.token, None, vid, 0)


async def test_guest_cart_merges_into_the_customers_cart(db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 2000], stock={shop.warehouse: 10})
    va, vb = int(str(a["id"])), int(str(b["id"]))
    customer = await new_customer(db)
    saved = await add(db, None, customer, va, 2)  # on another device, signed in
    guest = await add(db, None, None, va, 1)  # this browser, not signed in yet
    await add(db, guest.token, None, vb, 3)
    assert guest.token != saved.token
    async with db.uow() as uow:
        token = await carts.merge_on_sign_in(uow, guest.token, customer)
        await uow.commit()
    assert token == saved.token
    async with db.reader() as s:
        view = await carts.view_cart(s, token, customer, utcnow())
        assert {ln.priced.variant_id: ln.wanted for ln in view.lines} == {va: 3, vb: 3}
        # the guest cart is gone; the customer's cart is not shown to anyone else
        assert (await carts.view_cart(s, guest.token, None, utcnow())).empty
        assert (await carts.view_cart(s, token, None, utcnow())).empty
        assert await carts.cart_count(s, token, customer) == 6
        assert await carts.cart_count(s, token, customer + 1) == 0


async def test_first_sign_in_adopts_the_guest_cart(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 10})
    customer = await new_customer(db)
    guest = await add(db, None, None, int(str(v["id"])), 2)
    async with db.uow() as uow:
        token = await carts.merge_on_sign_in(uow, guest.token, customer)
        await uow.commit()
    assert token == guest.token
    async with db.reader() as s:
        assert await carts.cart_count(s, token, customer) == 2
        assert await carts.cart_count(s, token, None) == 0  # signed out: not shown


async def test_paid_items_leave_the_cart_but_later_additions_stay(
        db: Database, shop: Shop, settings: Settings) -> None:
    from saumaton.checkout.services import place_web_order
    from tests.test_checkout import cmd
    a, b = await make_variants(db, [1000, 2000], stock={shop.warehouse: 10})
    va, vb = int(str(a["id"])), int(str(b["id"]))
    change = await add(db, None, None, va, 2)
    order, _ = await place_web_order(db, settings, cmd(va, 2), customer_id=None,
                                     key=f"rm-{va}")
    await add(db, change.token, None, va, 1)  # one more, after checking out
    await add(db, change.token, None, vb, 1)
    async with db.uow() as uow:
        await carts.remove_ordered(uow, change.token, None, order.id)
        await uow.commit()
    async with db.reader() as s:
        view = await carts.view_cart(s, change.token, None, utcnow())
    assert {ln.priced.variant_id: ln.wanted for ln in view.lines} == {va: 1, vb: 1}
