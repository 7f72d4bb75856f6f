"""The cart's rules on both paths: PostgreSQL adds to the cart and reads it in one
statement each (checkout/cart_pg.py), SQLite through the portable code; both must
refuse, cap and show exactly the same."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from saumaton.catalogue.models import Product, ProductImage, Variant
from saumaton.checkout import cart as carts
from saumaton.checkout.models import Cart
from saumaton.core.clock import utcnow
from saumaton.core.errors import OutOfStock, ValidationFailed
from saumaton.db.uow import Database
from saumaton.inventory.services import availability
from tests.support import Shop, make_variants
from tests.test_cart import add, new_customer


def _id(v: dict[str, object]) -> int:
    return int(str(v["id"]))


async def _carts(db: Database) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(Cart)) or 0)


async def test_a_cart_holds_at_most_fifty_different_products(db: Database, shop: Shop) -> None:
    variants = await make_variants(db, [100] * (carts.MAX_LINES + 1),
                                   stock={shop.warehouse: 5})
    token = (await add(db, None, None, _id(variants[0]), 1)).token
    for v in variants[1:carts.MAX_LINES]:
        assert (await add(db, token, None, _id(v), 1)).token == token
    with pytest.raises(ValidationFailed) as full:
        await add(db, token, None, _id(variants[-1]), 1)
    assert full.value.code == "cart_full"
    # More of a product already in the cart is still fine.
    more = await add(db, token, None, _id(variants[0]), 2)
    assert more.quantity == 3 and more.token == token
    async with db.reader() as s:
        view = await carts.view_cart(s, token, None, utcnow())
    assert len(view.lines) == carts.MAX_LINES and view.count == carts.MAX_LINES + 2


async def test_unknown_inactive_and_sold_out_products_make_no_cart(db: Database,
                                                                    shop: Shop) -> None:
    [on, off] = await make_variants(db, [100, 200], stock={shop.warehouse: 2})
    async with db.uow() as uow:
        await uow.session.execute(update(Variant).where(Variant.id == _id(off))
                                  .values(active=False))
        await uow.commit()
    before = await _carts(db)
    for vid, code, error in ((2**31 - 1, "unknown_variant", ValidationFailed),
                             (_id(off), "variant_inactive", ValidationFailed)):
        with pytest.raises(error) as exc:
            await add(db, None, None, vid, 1)
        assert exc.value.code == code and exc.value.field == "variant_id"
    [none] = await make_variants(db, [500])  # nothing in stock anywhere
    with pytest.raises(OutOfStock) as sold:
        await add(db, None, None, _id(none), 1)
    assert sold.value.code == "out_of_stock" and sold.value.extra == {"variant_id": _id(none)}
    assert await _carts(db) == before
    # An existing cart is not touched by a refused add either.
    token = (await add(db, None, None, _id(on), 1)).token
    with pytest.raises(OutOfStock):
        await add(db, token, None, _id(none), 1)
    async with db.reader() as s:
        assert await carts.cart_lines(s, token, None) == [(_id(on), 1)]


async def test_a_gift_card_keeps_no_stock_and_is_capped_per_line(db: Database,
                                                                  shop: Shop) -> None:
    [card] = await make_variants(db, [2500], gift_card=True)
    first = await add(db, None, None, _id(card), 60)
    assert first.quantity == 60 and not first.limited
    capped = await add(db, first.token, None, _id(card), 60)
    assert capped.quantity == carts.MAX_QUANTITY and capped.limited
    assert capped.limit == carts.MAX_QUANTITY and capped.requested == 120


async def test_another_customers_cart_is_never_used(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 10})
    alice, bob = await new_customer(db), await new_customer(db)
    hers = await add(db, None, alice, _id(v), 2)
    # Bob's browser somehow holds Alice's cookie: he gets a cart of his own.
    his = await add(db, hers.token, bob, _id(v), 1)
    assert his.token != hers.token and his.quantity == 1
    # So does a signed-out browser.
    guest = await add(db, hers.token, None, _id(v), 1)
    assert guest.token not in (hers.token, his.token)
    # Alice on another device, without the cookie: her latest cart.
    again = await add(db, None, alice, _id(v), 1)
    assert again.token == hers.token and again.quantity == 3
    async with db.reader() as s:
        assert await carts.cart_lines(s, hers.token, alice) == [(_id(v), 3)]
        assert (await carts.view_cart(s, hers.token, bob, utcnow())).empty
        assert (await carts.view_cart(s, "x" * 65, None, utcnow())).empty


async def test_the_cart_shows_pictures_names_and_stock_as_the_catalogue(
        db: Database, shop: Shop) -> None:
    a, b, c = await make_variants(db, [1000, 2000, 3000],
                                  stock={shop.warehouse: 3, shop.store1: 7, shop.store2: 1})
    product_id = int(str(a["product_id"]))
    async with db.uow() as uow:
        s = uow.session
        s.add_all([ProductImage(product_id=product_id, position=1, url="/media/p1.jpg"),
                   ProductImage(product_id=product_id, position=0, url="/media/p0.jpg"),
                   ProductImage(product_id=product_id, variant_id=_id(b), position=2,
                                url="/media/b2.jpg"),
                   ProductImage(product_id=product_id, variant_id=_id(b), position=5,
                                url="/media/b5.jpg")])
        await s.execute(update(Product).where(Product.id == product_id)
                        .values(name_en="Lipstick"))
        await s.execute(update(Variant).where(Variant.id == _id(b)).values(name_en="Red"))
        await uow.commit()
    token = (await add(db, None, None, _id(a), 1)).token
    await add(db, token, None, _id(b), 2)
    await add(db, token, None, _id(c), 1)
    async with db.uow() as uow:  # c is taken off sale after it was put in the cart
        await uow.session.execute(update(Variant).where(Variant.id == _id(c))
                                  .values(active=False))
        await uow.commit()
    async with db.reader() as s:
        view = await carts.view_cart(s, token, None, utcnow())
        expected = await availability(s, [_id(a), _id(b)])
    assert [ln.priced.variant_id for ln in view.lines] == [_id(a), _id(b)]
    assert view.dropped == 1 and view.quote.total_cents == 5000
    la, lb = view.lines
    # The product's first picture; the variant's own (the last of them) before it.
    assert (la.image_url, lb.image_url) == ("/media/p0.jpg", "/media/b5.jpg")
    assert (la.name_en, lb.name_en) == ("Lipstick – V0", "Lipstick – Red")
    assert la.product_slug == str(a["product_slug"])
    assert dict(view.stock) == expected
    assert (lb.online, lb.sellable) == (3, 7)
