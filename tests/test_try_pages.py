"""Reserve to try on the pages: the product page's form (every error at once, in the
page's language, nothing changed; a unit gone meanwhile: 409 by the store), the code
page, and the till's list: find by code, phone or name, release."""

from __future__ import annotations

import random
import re

import httpx
from sqlalchemy import func, select

from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.inventory.services import Move, apply_moves, availability
from saumaton.tryon.models import TryReservation
from tests.support import Shop, csrf_of, make_variants, staff_login, text_of


async def _reserved(db: Database, variant_id: int, location_id: int) -> int:
    async with db.reader() as s:
        loc = (await availability(s, [variant_id]))[variant_id].at(location_id)
    assert loc is not None
    return loc.reserved


async def _count(db: Database, variant_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(TryReservation).where(
            TryReservation.variant_id == variant_id)) or 0)


async def test_reserve_from_the_product_page(web: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    product = (await web.get(f"/shop/p/{v['product_slug']}")).text
    assert text_of(product, "reserve-to-try") == "Varaa kokeiltavaksi myymälään"
    url = f"/shop/p/{v['product_slug']}/try?variant={vid}"
    form = (await web.get(url)).text
    assert 'data-testid="try-store-store-1"' in form
    assert 'data-testid="try-store-store-2"' not in form  # no unit there
    # every error at once, in Finnish, next to its field; nothing changed
    r = await web.post(url, data={"csrf_token": csrf_of(form), "store": "",
                                  "name": "", "phone": "12", "email": "x@"})
    assert r.status_code == 422
    assert text_of(r.text, "try-name-error") == "Anna nimesi."
    assert text_of(r.text, "try-phone-error") == "Tarkista puhelinnumero."
    assert text_of(r.text, "try-email-error") == "Tarkista sähköpostiosoite."
    assert await _count(db, vid) == 0 and await _reserved(db, vid, shop.store1) == 0
    phone = f"050{random.randrange(10**6, 10**7)}"
    r = await web.post(url, data={"csrf_token": csrf_of(form), "store": str(shop.store1),
                                  "name": "Maija Meikäläinen", "phone": phone})
    assert r.status_code == 303, r.text
    done = (await web.get(r.headers["location"])).text
    code = text_of(done, "try-code")
    assert re.fullmatch(r"KT[A-Z0-9]{6}", code)
    assert "Store Helsinki" in text_of(done, "try-until")
    assert await _reserved(db, vid, shop.store1) == 1
    # the last unit is now held: a second shopper is told so, by the store, with 409
    r = await web.post(url, data={"csrf_token": csrf_of(form), "store": str(shop.store1),
                                  "name": "Toinen", "email": "toinen@example.com"})
    assert r.status_code == 409
    assert "ei ole enää vapaata" in text_of(r.text, "try-store-error")
    assert await _count(db, vid) == 1


async def test_english_page_and_sold_meanwhile(web: httpx.AsyncClient, db: Database,
                                               shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.store2: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    url = f"/shop/p/{v['product_slug']}/try?variant={vid}"
    form = (await web.get(url + "&lang=en")).text
    async with db.uow() as uow:  # sold at the till meanwhile
        await apply_moves(uow, SYSTEM, [Move(vid, shop.store2, -1, "sale")])
        await uow.commit()
    r = await web.post(url, data={"csrf_token": csrf_of(form), "store": str(shop.store2),
                                  "name": "Mary", "email": "mary@example.com"})
    assert r.status_code == 409
    assert text_of(r.text, "try-store-error").startswith("Sorry, that store has no unit")
    assert await _count(db, vid) == 0


async def test_the_till_finds_and_releases(web: httpx.AsyncClient, db: Database,
                                           shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 2})
    vid = int(v["id"])  # type: ignore[call-overload]
    url = f"/shop/p/{v['product_slug']}/try?variant={vid}"
    form = (await web.get(url)).text
    phone = f"044{random.randrange(10**6, 10**7)}"
    r = await web.post(url, data={"csrf_token": csrf_of(form), "store": str(shop.store1),
                                  "name": "Liisa Lahtinen", "phone": phone})
    code = text_of((await web.get(r.headers["location"])).text, "try-code")
    web.cookies.clear()
    await staff_login(web, shop, "cashier1")
    for q in (code.lower(), phone, "lahtinen"):
        page = (await web.get("/pos/store-1/tries", params={"q": q})).text
        assert f'data-testid="try-{code}"' in page, q
    page = (await web.get("/pos/store-1/tries", params={"q": "KTXXXXXX"})).text
    assert "KTXXXXXX" in text_of(page, "try-q-error")
    page = (await web.get("/pos/store-1/tries", params={"q": code})).text
    sell = re.search(rf'href="([^"]+)" data-testid="try-sell-{code}"', page)
    assert sell and "&amp;try=" in sell[1]
    m = re.search(r'action="(/pos/store-1/tries/\d+/release)"', page)
    assert m
    r = await web.post(m[1], data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303
    assert code in text_of((await web.get(r.headers["location"])).text, "try-released")
    assert await _reserved(db, vid, shop.store1) == 0
    r = await web.post(m[1], data={"csrf_token": csrf_of(page)})
    assert r.status_code == 409  # already released: changes nothing
    # another store's cashier does not see it
    web.cookies.clear()
    await staff_login(web, shop, "cashier2")
    assert (await web.get("/pos/store-1/tries")).status_code == 403
