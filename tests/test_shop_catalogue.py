"""The webshop catalogue: search, category pages, filters and facets, the home page,
product pictures, the add-to-cart form, and the demo's pictures (both databases)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ViewportSize, async_playwright, expect
from sqlalchemy import event, func, select

from saumaton.catalogue.models import ProductImage
from saumaton.catalogue.schemas import ImageIn, ProductIn, ProductOut, VariantIn
from saumaton.catalogue.search import SearchFilters, gtin_forms, product_for_code, search_products
from saumaton.catalogue.services import (
    add_images,
    create_category,
    create_product,
    get_product,
    list_products,
)
from saumaton.core.actor import SYSTEM
from saumaton.core.errors import DomainError, NotFound
from saumaton.db.uow import Database
from saumaton.demo import load_demo
from saumaton.inventory.services import Move, apply_moves
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.web.analytics import CONSENT_COOKIE
from tests.support import Server, Shop, fresh_database, new_ean, text_of

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
PHONE: ViewportSize = {"width": 375, "height": 740}
expect.set_options(timeout=10_000)

# (variant name, attributes, price, {location: quantity})
Spec = tuple[str, dict[str, str], int, dict[int, int]]


def tag() -> str:
    return uuid.uuid4().hex[:8]


async def category(db: Database, name: str, parent: str | None = None) -> str:
    slug = f"{name.lower()}-{tag()}"
    async with db.uow() as uow:
        await create_category(uow, SYSTEM, slug, f"{name} {slug[-8:]}", parent)
        await uow.commit()
    return slug


async def product(db: Database, name: str, variants: list[Spec], *, category_slug: str | None
                  = None, brand: str = "Testimerkki") -> ProductOut:
    t = tag()
    async with db.uow() as uow:
        out = await create_product(uow, SYSTEM, ProductIn(
            slug=f"{name.lower().replace(' ', '-')}-{t}", name=f"{name} {t}", brand=brand,
            category_slug=category_slug,
            variants=[VariantIn(sku=f"T-{t}-{i}", ean=new_ean(), name=vname, attributes=attrs,
                                price_cents=price)
                      for i, (vname, attrs, price, _) in enumerate(variants)]))
        moves = [Move(v.id, loc, qty, "receipt") for v, spec in zip(out.variants, variants,
                                                                      strict=True)
                 for loc, qty in spec[3].items() if qty]
        if moves:
            await apply_moves(uow, SYSTEM, moves)
        await uow.commit()
    return out


async def campaign(db: Database, product_id: int, percent: int, name: str = "Kevätale") -> None:
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name=name, kind="percent", value=percent * 100,
            starts_at=datetime.now(UTC) - timedelta(hours=1), product_ids=[product_id]))
        await uow.commit()


async def web_price_lookup(db: Database) -> Any:
    from saumaton.web.shop.views import price_lookup

    async def lookup(ids: Any) -> Any:
        async with db.reader() as s:
            return await price_lookup(s, datetime.now(UTC))(ids)
    return lookup


async def find(db: Database, **kw: Any) -> Any:
    async with db.reader() as s:
        return await search_products(s, SearchFilters(**kw), prices=await web_price_lookup(db))


def names(result: Any) -> list[str]:
    return [h.product.name for h in result.hits]


def facet(result: Any, attribute: str) -> dict[str, int]:
    [f] = [f for f in result.facets if f.attribute == attribute]
    return {v.value: v.count for v in f.values}


# Other tests add stores of their own to the shared database; these are the test shop's.
SHOP_OPTIONS = ("online", "store-1", "store-2")


def shop_options(result: Any) -> list[Any]:
    return [o for o in result.stock_options if o.code in SHOP_OPTIONS]


def stock_counts(result: Any) -> dict[str, int]:
    return {o.code: o.count for o in shop_options(result)}


@contextmanager
def count_queries(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


# --- the search service ---------------------------------------------------------------------

async def test_search_finds_name_brand_shade_sku_and_barcode(db: Database, shop: Shop) -> None:
    t = tag()
    lip = await product(db, f"Satiini{t}", [
        ("101 Puolukka", {"shade": "101 Puolukka"}, 2190, {shop.warehouse: 3}),
        (f"102 Mustikka{t}", {"shade": "102 Mustikka"}, 2190, {})], brand=f"Merkki{t}")
    other = await product(db, f"Voide{t}", [("50 ml", {}, 1990, {})], brand=f"Merkki{t}")

    assert names(await find(db, q=f"satiini{t.upper()}")) == [lip.name]  # any case
    assert set(names(await find(db, q=f"merkki{t}"))) == {lip.name, other.name}
    first = await product(db, f"Merkki{t} kasvovesi", [("A", {}, 990, {})], brand="Muu")
    # relevance: the name starting with the words comes before a brand-only match
    assert names(await find(db, q=f"merkki{t}"))[0] == first.name
    # a word of the name first, then the brand; every word must match somewhere
    assert names(await find(db, q=f"merkki{t} voide{t}")) == [other.name]
    shade = await find(db, q=f"mustikka{t}")  # only the matching variant is a hit
    assert names(shade) == [lip.name]
    assert shade.hits[0].variant_ids == (lip.variants[1].id,)
    assert names(await find(db, q=lip.variants[0].sku.lower())) == [lip.name]
    assert names(await find(db, q=f"%{t}")) == []  # % is a character, not a wildcard

    ean = str(lip.variants[1].ean)
    async with db.reader() as s:
        assert await product_for_code(s, ean) == (lip.slug, lip.variants[1].id)
        # as typed with spaces, or scanned as a GTIN-14 with a leading zero
        assert await product_for_code(s, f"{ean[:1]} {ean[1:7]} {ean[7:]}") == (
            lip.slug, lip.variants[1].id)
        assert await product_for_code(s, "0" + ean) == (lip.slug, lip.variants[1].id)
        bad = ean[:-1] + str((int(ean[-1]) + 1) % 10)
        assert await product_for_code(s, bad) is None
    assert gtin_forms("abc") == [] and gtin_forms("12345") == []
    assert set(gtin_forms("4006381333931")) == {"4006381333931", "04006381333931"}
    assert "036000291452" in gtin_forms("0036000291452")  # UPC-A kept as EAN-13


async def test_search_finds_the_english_names_in_product_and_category_slugs(
    db: Database, shop: Shop, web: httpx.AsyncClient
) -> None:
    """The names are Finnish; the English ones are in the slugs. Searching the English
    word finds every product of the category, and of its subcategories."""
    t = tag()
    word = f"foundation{t}"
    parent = f"makeup{t}"
    async with db.uow() as uow:
        await create_category(uow, SYSTEM, parent, f"Meikit {t}")
        await create_category(uow, SYSTEM, word, f"Meikkivoiteet {t}", parent)
        await create_category(uow, SYSTEM, f"tinted-{word}", f"Sävyttävät {t}", word)
        await uow.commit()
    silk = await product(db, f"Silk {word} -meikkivoide", [("1", {}, 3999, {})],
                         category_slug=word)
    matte = await product(db, f"Matte Finish {t} -meikkivoide", [("1", {}, 3490, {})],
                          category_slug=word)
    tint = await product(db, f"Skin Tint {t}", [("1", {}, 2990, {})],
                         category_slug=f"tinted-{word}")
    async with db.uow() as uow:  # an English word only in the product's slug
        bright = await create_product(uow, SYSTEM, ProductIn(
            slug=f"brightening-{t}", name=f"Kirkastava peitevoide {t}", brand="Pohjoisvalo",
            variants=[VariantIn(sku=f"B-{t}", price_cents=2490)]))
        await uow.commit()

    assert set(names(await find(db, q=word))) == {silk.name, matte.name, tint.name}
    assert set(names(await find(db, q=f"meikkivoiteet {t}"))) == {
        silk.name, matte.name, tint.name}
    assert names(await find(db, q=f"brightening-{t}")) == [bright.name]
    assert names(await find(db, q=f"{word} matte")) == [matte.name]  # still every word
    page = (await web.get("/shop/search", params={"q": word, "lang": "en"})).text
    assert page.count('data-testid="product-tile"') == 3


async def test_a_long_search_is_shortened_with_a_note_not_a_404(
    db: Database, shop: Shop, web: httpx.AsyncClient
) -> None:
    t = tag()
    lip = await product(db, f"Pitka{t}", [("1", {}, 990, {})])
    long_q = f"pitka{t} " + "x" * 5000
    r = await web.get("/shop/search", params={"q": long_q})
    assert r.status_code == 200
    assert text_of(r.text, "search-shortened") == (
        "Hakusi oli pitkä: haimme sen 100 ensimmäisellä merkillä.")
    box = re.search(r'id="shop-q"[^>]*value="([^"]*)"', r.text)
    assert box and box[1] == long_q[:100]  # what was searched, in the search box
    r = await web.get("/shop/search", params={"q": f"pitka{t}"})
    assert 'data-testid="search-shortened"' not in r.text
    assert text_of(r.text, "tile-name") == lip.name
    r = await web.get("/shop/", params={"q": long_q, "lang": "en"})  # the old list URL
    assert r.status_code == 200
    assert text_of(r.text, "search-shortened") == (
        "Your search was long: we searched with its first 100 characters.")


async def test_category_filters_or_within_an_attribute_and_across_variants(
    db: Database, shop: Shop
) -> None:
    top = await category(db, "Meikit")
    lips = await category(db, "Huulipunat", parent=top)
    a = await product(db, "Alfa", [
        ("Puolukka", {"shade": "Puolukka", "finish": "satin"}, 2000, {shop.store1: 2}),
        ("Mustikka", {"shade": "Mustikka", "finish": "satin"}, 2000, {shop.warehouse: 5})],
        category_slug=lips)
    b = await product(db, "Beta", [
        ("Puolukka", {"shade": "Puolukka", "finish": "matte"}, 1500, {shop.warehouse: 1}),
        ("Lakka", {"shade": "Lakka", "finish": "matte"}, 1500, {})], category_slug=lips)
    c = await product(db, "Gamma", [("Lakka", {"shade": "Lakka"}, 900, {})], category_slug=top)

    everything = await find(db, category=top, sort="name")  # subcategories included
    assert names(everything) == [a.name, b.name, c.name]
    assert facet(everything, "shade") == {"Lakka": 2, "Mustikka": 1, "Puolukka": 2}
    assert stock_counts(everything) == {"online": 2, "store-1": 1, "store-2": 0}
    assert [o.name for o in shop_options(everything)[1:]] == ["Store Helsinki", "Store Tampere"]
    assert everything.category is not None and everything.category.slug == top

    # values of one attribute are alternatives
    either = await find(db, category=top, sort="name",
                        attributes={"shade": ["Mustikka", "Lakka"]})
    assert names(either) == [a.name, b.name, c.name]
    assert facet(either, "shade") == {"Lakka": 2, "Mustikka": 1, "Puolukka": 2}
    # attributes and availability must hold for the same variant
    matte = await find(db, category=top, attributes={"shade": ["Puolukka"], "finish": ["matte"]})
    assert names(matte) == [b.name]
    assert matte.hits[0].variant_ids == (b.variants[0].id,)
    assert facet(matte, "finish") == {"matte": 1, "satin": 1}
    online = await find(db, category=top, stock="online", attributes={"shade": ["Puolukka"]})
    assert names(online) == [b.name]  # Alfa's Puolukka is only in the Helsinki store
    assert facet(online, "shade") == {"Lakka": 0, "Mustikka": 1, "Puolukka": 1}
    helsinki = await find(db, category=lips, stock="store-1")
    assert names(helsinki) == [a.name] and helsinki.hits[0].variant_ids == (a.variants[0].id,)
    assert [o.selected for o in shop_options(helsinki)] == [False, True, False]
    # unknown attributes, values and places (an old link, utm_source) are ignored
    # rather than emptying the page
    ignored = await find(db, category=lips, stock="mars",
                         attributes={"utm_source": ["x"], "shade": ["Ei ole"]})
    assert len(ignored.hits) == 2 and not any(o.selected for o in ignored.stock_options)
    with pytest.raises(NotFound):
        await find(db, category=f"no-such-{tag()}")


async def test_sorts_use_the_web_price_and_pages_split_the_result(
    db: Database, shop: Shop
) -> None:
    cat = await category(db, "Seerumit")
    cheap = await product(db, "Cheap", [("30 ml", {}, 2000, {})], category_slug=cat)
    sale = await product(db, "Sale", [("30 ml", {}, 3000, {})], category_slug=cat)
    dear = await product(db, "Dear", [("30 ml", {"size": "30 ml"}, 2500, {}),
                                      ("50 ml", {"size": "50 ml"}, 9000, {})],
                         category_slug=cat)
    await campaign(db, sale.id, 50)  # 15,00 € on the web: cheapest of all

    assert names(await find(db, category=cat, sort="price_asc")) == [
        sale.name, cheap.name, dear.name]
    assert names(await find(db, category=cat, sort="price_desc")) == [
        dear.name, cheap.name, sale.name]
    assert names(await find(db, category=cat, sort="name")) == [
        cheap.name, dear.name, sale.name]
    newest = await find(db, category=cat)
    assert newest.sort == "newest" and names(newest) == [dear.name, sale.name, cheap.name]
    assert (await find(db, category=cat, sort="relevance")).sort == "newest"  # no words

    first = await find(db, category=cat, sort="name", page_size=2)
    second = await find(db, category=cat, sort="name", page_size=2, page=2)
    assert (first.total, first.pages, second.page) == (3, 2, 2)
    assert names(first) + names(second) == [cheap.name, dear.name, sale.name]
    assert names(await find(db, category=cat, page_size=2, page=3)) == []


async def test_search_runs_a_fixed_number_of_queries(db: Database, shop: Shop) -> None:
    cat = await category(db, "Paljon")
    for i in range(2):
        p = await product(db, f"Few{i}", [("A", {"shade": "A"}, 1000, {shop.store1: 1}),
                                         ("B", {"shade": "B"}, 1100, {})], category_slug=cat)
        await add_image(db, p.id, None, f"/media/t/{p.slug}.svg")
    with count_queries(db) as few:
        await find(db, category=cat, sort="price_asc")
    for i in range(8):
        p = await product(db, f"Many{i}", [("A", {"shade": "A"}, 1000, {shop.store1: 1}),
                                          ("B", {"shade": "B"}, 1100, {})], category_slug=cat)
        await add_image(db, p.id, p.variants[0].id, f"/media/t/{p.slug}.svg")
    with count_queries(db) as many:
        result = await find(db, category=cat, sort="price_asc")
    assert result.total == 10 and all(h.product.images for h in result.hits)
    assert len(many) == len(few), "queries grow with the number of products (N+1)"


# --- pictures -------------------------------------------------------------------------------

async def add_image(db: Database, product_id: int, variant_id: int | None, url: str,
                    alt: str = "kuva") -> None:
    async with db.uow() as uow:
        await add_images(uow, SYSTEM, [ImageIn(product_id=product_id, variant_id=variant_id,
                                               url=url, alt=alt)])
        await uow.commit()


async def test_images_are_added_in_order_and_checked(db: Database, shop: Shop) -> None:
    p = await product(db, "Kuvat", [("A", {"shade": "A"}, 1000, {}),
                                     ("B", {"shade": "B"}, 1000, {})])
    other = await product(db, "Muu", [("A", {}, 1000, {})])
    await add_image(db, p.id, None, "/media/demo/pullo.svg", "Pullo")
    await add_image(db, p.id, p.variants[1].id, "/media/demo/b.svg", "Sävy B")
    await add_image(db, p.id, None, "https://cdn.example/kuva.jpg", "Toinen")
    async with db.reader() as s:
        got = await get_product(s, p.id)
        listed, _ = await list_products(s, p.name)
    assert [(i.url, i.alt, i.variant_id) for i in got.images] == [
        ("/media/demo/pullo.svg", "Pullo", None), ("/media/demo/b.svg", "Sävy B",
                                                   p.variants[1].id),
        ("https://cdn.example/kuva.jpg", "Toinen", None)]
    assert listed[0].images == got.images
    bad: list[tuple[dict[str, Any], str]] = [
        (dict(url="javascript:alert(1)"), "invalid_image_url"),
        (dict(url="/media/../secret_key"), "invalid_image_url"),
        (dict(url="/media/x.svg", variant_id=other.variants[0].id), "variant_not_of_product"),
        (dict(url="/media/x.svg", product_id=2**31 - 2), "product_not_found"),
    ]
    for over, code in bad:
        data: dict[str, Any] = {"product_id": p.id, **over}
        with pytest.raises(DomainError) as err:
            async with db.uow() as uow:
                await add_images(uow, SYSTEM, [ImageIn(**data)])
        assert err.value.code == code
    async with db.reader() as s:
        assert len((await get_product(s, p.id)).images) == 3  # nothing changed


# --- pages ----------------------------------------------------------------------------------

def texts_of(page: str, testid: str) -> list[str]:
    """Texts of every element marked data-testid=testid, in page order."""
    found = re.findall(rf'<(\w+)[^>]*\sdata-testid="{re.escape(testid)}"[^>]*>(.*?)</\1>',
                       page, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", m)).replace("\xa0", " ").split())
            for _, m in found]


def attr(page: str, testid: str, name: str) -> str | None:
    m = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>', page)
    assert m, f"no data-testid={testid!r} in page"
    found = re.search(rf'\s{name}(?:="([^"]*)")?[\s>]', m[0])
    return None if found is None else html.unescape(found[1] or "")


async def test_category_page_filters_live_in_the_url(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    lips = await category(db, "Huulet")
    a = await product(db, "Satin", [
        ("101 Puolukka", {"shade": "101 Puolukka"}, 2190, {shop.warehouse: 9}),
        ("102 Mustikka", {"shade": "102 Mustikka"}, 2490, {shop.store2: 1})],
        category_slug=lips)
    b = await product(db, "Velvet", [("101 Puolukka", {"shade": "101 Puolukka"}, 1990, {})],
                      category_slug=lips)
    await campaign(db, b.id, 10, "Huulipunaviikko")
    r = await web.get(f"/shop/c/{lips}")
    assert r.status_code == 200
    page = r.text
    assert text_of(page, "listing-title").startswith("Huulet")
    assert text_of(page, "result-count") == "2 tuotetta"
    assert texts_of(page, "tile-name") == [b.name, a.name]  # newest first
    assert texts_of(page, "tile-price") == ["17,91 €", "21,90 €"]
    assert texts_of(page, "tile-list-price") == ["Normaalihinta 19,90 €"]
    assert texts_of(page, "tile-from") == ["alk."]  # Satin's shades differ in price
    assert texts_of(page, "campaign") == ["Huulipunaviikko"]
    assert texts_of(page, "tile-stock") == ["Loppu", "Varastossa verkossa"]
    assert 'name="shade" value="102 Mustikka"' in page
    facet_stock = text_of(page, "facet-stock")
    assert facet_stock.count("(") >= 3  # online and the stores
    assert all(f"{name} (" in facet_stock for name in ("Store Helsinki", "Store Tampere"))

    r = await web.get(f"/shop/c/{lips}", params=[("shade", "102 Mustikka"),
                                                 ("stock", "store-2"), ("sort", "name")])
    page = r.text
    assert texts_of(page, "tile-name") == [a.name]
    assert texts_of(page, "tile-price") == ["24,90 €"] and "tile-from" not in page
    assert texts_of(page, "tile-stock") == ["Vain myymälöissä"]
    assert f'href="/shop/p/{a.slug}?variant={a.variants[1].id}"' in page
    assert attr(page, "filter-shade-102 Mustikka", "checked") == ""
    assert attr(page, "stock-store-2", "checked") == ""
    assert texts_of(page, "remove-filter") == ["Varastossa: Store Tampere × (poista)",
                                               "Sävy: 102 Mustikka × (poista)"]
    assert (f'href="/shop/c/{lips}?sort=name&amp;shade=102+Mustikka" '
            'data-testid="remove-filter"') in page
    assert f'href="/shop/c/{lips}?sort=name"' in page  # clear filters keeps the sort
    assert (await web.get(f"/shop/c/no-such-{tag()}")).status_code == 404
    en = (await web.get(f"/shop/c/{lips}", params={"lang": "en", "sort": "price_asc"})).text
    assert text_of(en, "result-count") == "2 products"
    assert texts_of(en, "tile-price") == ["€17.91", "€21.90"]
    assert "Price: low to high" in en


async def test_search_page_pages_and_barcode(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    t = tag()
    made = [await product(db, f"Haku{t} {i}", [("A", {}, 1000 + i, {shop.warehouse: 1})])
            for i in range(26)]
    r = await web.get("/shop/search", params={"q": f"haku{t}", "sort": "price_desc"})
    page = r.text
    assert text_of(page, "result-count") == "26 tuotetta"
    assert len(texts_of(page, "tile-name")) == 24
    assert texts_of(page, "tile-name")[0] == made[-1].name
    assert text_of(page, "page-of") == "Sivu 1 / 2"
    next_url = attr(page, "next-page", "href") or ""
    assert next_url == f"/shop/search?q=haku{t}&sort=price_desc&page=2"
    page2 = (await web.get(next_url)).text
    assert texts_of(page2, "tile-name") == [made[1].name, made[0].name]
    assert attr(page2, "prev-page", "href") == f"/shop/search?q=haku{t}&sort=price_desc"
    # The old list URL still works and shows the same.
    old = (await web.get("/shop/", params={"q": f"haku{t}"})).text
    assert text_of(old, "result-count") == "26 tuotetta"

    # A barcode typed or scanned opens the product, on that variant.
    ean = str(made[3].variants[0].ean)
    r = await web.get("/shop/search", params={"q": f" {ean} "})
    assert r.status_code == 303
    assert r.headers["location"] == f"/shop/p/{made[3].slug}?variant={made[3].variants[0].id}"
    r = await web.get("/shop/search", params={"q": "4006381333931"})  # valid, not ours
    assert r.status_code == 200 and text_of(r.text, "result-count") == "0 tuotetta"
    assert has_no_results(r.text)


def has_no_results(page: str) -> bool:
    return 'data-testid="no-results"' in page


async def test_home_shows_categories_offers_and_newest(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    top = await category(db, "Kotisivu")
    sub = await category(db, "Alasivu", parent=top)
    offer = await product(db, "Aaa tarjous", [("A", {}, 4000, {shop.warehouse: 2})],
                          category_slug=sub)
    await campaign(db, offer.id, 25, "Kotisivun ale")
    newest = await product(db, "Uusin", [("A", {}, 1234, {})])
    page = (await web.get("/shop/")).text
    assert f'href="/shop/c/{top}"' in page and f'href="/shop/c/{sub}"' in page
    offers = page[page.index('data-testid="offers"'):page.index('data-testid="newest"')]
    assert texts_of(offers, "tile-name")[0] == offer.name
    assert texts_of(offers, "tile-price")[0] == "30,00 €"
    assert texts_of(offers, "tile-list-price")[0] == "Normaalihinta 40,00 €"
    assert texts_of(offers, "campaign")[0] == "Kotisivun ale"
    newest_part = page[page.index('data-testid="newest"'):]
    assert texts_of(newest_part, "tile-name")[0] == newest.name
    assert 'hx-get="/shop/cart/count"' in page and 'href="/account/"' in page
    assert 'action="/shop/search"' in page


async def test_product_page_gallery_and_add_to_cart_form(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    p = await product(db, "Galleria", [
        ("Vanilja", {"shade": "Vanilja"}, 2990, {shop.warehouse: 2, shop.store1: 6}),
        ("Hunaja", {"shade": "Hunaja"}, 2990, {shop.store2: 4}),
        ("Kaneli", {"shade": "Kaneli"}, 2990, {})])
    await add_image(db, p.id, None, "/media/t/pullo.svg", "Pullo")
    await add_image(db, p.id, p.variants[0].id, "/media/t/vanilja.svg", "Vanilja")
    await add_image(db, p.id, p.variants[1].id, "/media/t/hunaja.svg", "Hunaja")

    page = (await web.get(f"/shop/p/{p.slug}?variant={p.variants[1].id}")).text
    gallery = re.findall(r'<img src="([^"]+)" alt="([^"]*)"[^>]*data-testid="gallery-image"',
                         page)
    assert gallery == [("/media/t/hunaja.svg", "Hunaja"), ("/media/t/pullo.svg", "Pullo")]
    form = page[page.index('data-testid="buy-form"') - 200:page.index('id="cart-message"')]
    assert 'action="/shop/cart/add"' in form and 'hx-post="/shop/cart/add"' in form
    assert 'hx-target="#cart-message"' in form
    assert re.search(r'name="csrf_token" value="[^"]{20,}"', form)
    assert f'name="variant_id" value="{p.variants[1].id}"' in form
    assert '<label for="quantity">Määrä</label>' in form
    assert attr(page, "quantity", "max") == "4" and attr(page, "quantity", "min") == "1"
    assert attr(page, "add-to-cart", "disabled") is None
    assert 'aria-live="polite" data-testid="cart-message"' in page
    # the most one can buy: the web stock or one pickup store, whichever is larger
    page = (await web.get(f"/shop/p/{p.slug}?variant={p.variants[0].id}")).text
    assert attr(page, "quantity", "max") == "6"
    page = (await web.get(f"/shop/p/{p.slug}?variant={p.variants[2].id}")).text
    assert text_of(page, "sold-out") == "Loppu"
    assert attr(page, "add-to-cart", "disabled") == ""
    assert re.findall(r'<img src="([^"]+)"[^>]*data-testid="gallery-image"', page) == [
        "/media/t/pullo.svg"]  # other shades' swatches are not this shade's pictures


# --- demo pictures --------------------------------------------------------------------------

async def test_demo_writes_small_pictures_with_alt_texts(backend: str, tmp_path: Path) -> None:
    url = await fresh_database(backend, tmp_path)
    db = Database(url)
    try:
        media = tmp_path / "media"
        summary = await load_demo(db, media_dir=media)
        async with db.reader() as s:
            rows = (await s.scalars(select(ProductImage))).all()
            hero = await get_product(s, summary.hero_slug)
            with_pictures = await s.scalar(select(func.count()).select_from(
                select(ProductImage.product_id).group_by(ProductImage.product_id).subquery()))
    finally:
        await db.dispose()
        if backend == "postgresql":
            from tests.support import drop_pg_database
            await drop_pg_database(url)
    assert with_pictures == summary.products  # every product has a picture
    assert len(rows) >= summary.products + 100  # and every shade a swatch
    assert all(r.url.startswith("/media/demo/") and r.alt for r in rows)
    files = [media / r.url.removeprefix("/media/") for r in rows]
    assert all(f.is_file() and f.stat().st_size < 2000 for f in files)
    assert hero.images[0].variant_id is None and "meikkivoide" in hero.images[0].alt
    swatch = hero.images[1]
    assert swatch.variant_id == hero.variants[0].id and "1C Lumi" in swatch.alt
    assert (media / swatch.url.removeprefix("/media/")).read_text().startswith("<svg")


# --- in a browser -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


async def test_phone_shopper_filters_lipsticks_by_shade_and_searches_by_ean(
    browser: Browser, server: Server, db: Database, shop: Shop, tmp_path: Path
) -> None:
    lips = await category(db, "Puikot")
    shades = ["101 Puolukka", "102 Mustikka", "103 Lakka erittäin pitkä sävyn nimi"]
    a = await product(db, "Satin-huulipuna", [
        (s, {"shade": s}, 2190, {shop.warehouse: 5}) for s in shades], category_slug=lips)
    b = await product(db, "Matte-huulipuna", [
        (s, {"shade": s}, 1990, {shop.store1: 2}) for s in shades[:2]], category_slug=lips)
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                        locale="fi-FI")
    context.set_default_timeout(10_000)
    # The cookie question answered already, so its banner covers nothing.
    await context.add_cookies([{"name": CONSENT_COOKIE, "value": "necessary",
                                "url": server.base_url}])
    try:
        page = await context.new_page()
        await page.goto(f"{server.base_url}/shop/c/{lips}")
        await expect(page.get_by_test_id("product-tile")).to_have_count(2)
        filters = page.get_by_test_id("filter-form")
        await expect(filters).to_be_hidden()  # folded away on a phone
        await page.get_by_text("Suodata ja järjestä").click()
        await expect(filters).to_be_visible()
        await page.get_by_label("103 Lakka erittäin pitkä sävyn nimi").check()
        await page.get_by_test_id("apply-filters").click()
        await expect(page).to_have_url(re.compile(r"shade=103\+Lakka"))
        await expect(page.get_by_test_id("product-tile")).to_have_count(1)
        await expect(page.get_by_test_id("remove-filter")).to_contain_text("103 Lakka")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"page is {width}px wide"
        await page.screenshot(path=str(tmp_path / "phone-category.png"), full_page=True)
        await page.get_by_test_id("tile-name").click()
        await expect(page).to_have_url(re.compile(
            rf"/shop/p/{a.slug}\?variant={a.variants[2].id}$"))
        await expect(page.get_by_test_id("variant-name")).to_have_text(shades[2])
        await expect(page.get_by_test_id("add-to-cart")).to_be_enabled()
        await expect(page.get_by_label("Määrä")).to_have_attribute("max", "5")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"page is {width}px wide"

        # Scanning or typing an EAN in the header's search box opens that shade.
        box = page.get_by_test_id("search")
        await box.fill(str(b.variants[1].ean))
        await box.press("Enter")
        await expect(page).to_have_url(re.compile(
            rf"/shop/p/{b.slug}\?variant={b.variants[1].id}$"))
        await expect(page.get_by_test_id("product-name")).to_have_text(b.name)
        await expect(page.get_by_test_id("variant-name")).to_have_text(shades[1])
    finally:
        await context.close()

