"""The checkout form in-process: every problem at once, next to its field, in the page's
language; what is required says so (home delivery's address, click & collect's phone).
The same in a real browser: tests/test_shop_forms_browser.py."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.orders.models import Order
from tests.support import Shop, csrf_of, make_variants, text_of

ADDRESS = ("address_name", "street", "postcode", "city")


async def checkout_page(web: httpx.AsyncClient, db: Database, shop: Shop,
                        lang: str = "fi") -> str:
    """A cart with one item; the checkout form in `lang`."""
    [v] = await make_variants(db, [1990], stock={shop.warehouse: 5, shop.store1: 5})
    product = await web.get(f"/shop/p/{v['product_slug']}", params={"lang": lang})
    r = await web.post("/shop/cart/add", data={"csrf_token": csrf_of(product.text),
                                               "variant_id": str(v["id"])})
    assert r.status_code == 303
    page = await web.get("/shop/checkout")
    assert page.status_code == 200
    return page.text


async def submit(web: httpx.AsyncClient, page: str, **fields: str) -> httpx.Response:
    key = re.search(r'name="key" value="([^"]+)"', page)
    assert key
    return await web.post("/shop/checkout", data={"csrf_token": csrf_of(page),
                                                  "key": key[1], **fields})


def label_of(page: str, field: str) -> str:
    m = re.search(rf'<label for="{field}">(.*?)</label>', page, re.S)
    assert m, field
    return " ".join(re.sub(r"<[^>]+>", " ", m[1]).split())


async def orders_for(db: Database, email: str) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(Order)
                                  .where(Order.email == email)) or 0)


async def test_home_delivery_shows_every_error_at_once_in_finnish(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    page = await checkout_page(web, db, shop)
    for field in ADDRESS:  # required for home delivery: not labelled optional
        assert "vapaaehtoinen" not in label_of(page, field), field
    assert label_of(page, "phone") == "Puhelin (pakollinen, jos noudat myymälästä)"

    r = await submit(web, page, email="ei-osoite", first_name="A" * 5000, last_name="",
                     phone="12", delivery="home", postcode="123")
    assert r.status_code == 422
    assert {k: text_of(r.text, f"error-{k}") for k in (
        "email", "first_name", "last_name", "phone", *ADDRESS)} == {
        "email": "Tarkista sähköpostiosoite.",
        "first_name": "Käytä enintään 100 merkkiä.",
        "last_name": "Anna sukunimesi.",
        "phone": "Tarkista puhelinnumero.",
        "address_name": "Anna vastaanottajan nimi.",
        "street": "Anna katuosoite.",
        "postcode": "Postinumerossa on viisi numeroa.",
        "city": "Anna postitoimipaikka.",
    }
    assert not re.search(r"String should|address_name:|last_name:", r.text)
    for field in ("email", "first_name", "street"):  # required fields too (a lost space)
        assert re.search(rf'id="{field}"[^>]*\srequired\s+aria-invalid="true"\s+'
                         rf'aria-describedby="{field}-error', r.text), field
    assert 'value="123"' in r.text  # what was typed stays

    r = await submit(web, page, email="koti@example.fi", first_name="Kaisa",
                     last_name="Koti", delivery="home", address_name="Kaisa Koti",
                     street=" ", postcode="00100", city="Helsinki")
    assert r.status_code == 422
    assert text_of(r.text, "error-street") == "Anna katuosoite."
    assert await orders_for(db, "koti@example.fi") == 0


async def test_the_english_page_is_english_and_says_when_the_phone_is_needed(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    # The Finnish form first: the English one must not keep its words.
    assert "Puhelin" in await checkout_page(web, db, shop, lang="fi")
    page = (await web.get("/shop/checkout", params={"lang": "en"})).text
    assert "vapaaehtoinen" not in page and "(optional)" not in page
    assert label_of(page, "phone") == "Phone (required for click & collect)"
    assert label_of(page, "street") == "Street address"

    r = await submit(web, page, email="nouto@example.fi", first_name="Noora",
                     last_name="Noutaja", delivery="pickup")
    assert r.status_code == 422
    assert text_of(r.text, "error-phone") == (
        "Enter your phone number: click & collect needs it, so the store can reach you "
        "about the order.")
    assert text_of(r.text, "error-delivery") == "Choose the store where you collect the order."
    assert "error-street" not in r.text  # click & collect needs no address

    r = await submit(web, page, email="x@example.fi", first_name="X", last_name="Y" * 101,
                     delivery="home", address_name="X", street="Tie 1", postcode="00100",
                     city="Espoo")
    assert r.status_code == 422
    assert text_of(r.text, "error-last_name") == "Use at most 100 characters."
    assert await orders_for(db, "nouto@example.fi") == 0


async def test_click_and_collect_with_a_phone_needs_no_address(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    page = await checkout_page(web, db, shop)
    r = await submit(web, page, email="puhelin@example.fi", first_name="Pia",
                     last_name="Puhelin", delivery="pickup", phone="040 123 4567",
                     pickup_location_id=str(shop.store1))
    assert r.status_code == 303, r.text
    assert await orders_for(db, "puhelin@example.fi") == 1
