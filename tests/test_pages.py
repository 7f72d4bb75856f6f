"""Webshop, staff login and POS pages through the in-process app (both databases)."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from saumaton.db.uow import Database
from saumaton.web import i18n
from tests.support import Shop, make_variants, text_of
from tests.support import staff_login as login
from tests.test_till_api import config_of, open_drawer

HX = {"HX-Request": "true"}


def has(page: str, testid: str) -> bool:
    return f'data-testid="{testid}"' in page


def hidden(page: str, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(rf'name="{name}" value="([^"]*)"', page)]


def sale_form(page: str, **extra: str) -> dict[str, object]:
    """The cart state carried by the sale screen's first form, plus extra fields."""
    m = re.search(r'<form class="scan".*?</form>', page, re.S)
    assert m
    form = m[0]
    return {"csrf_token": hidden(form, "csrf_token")[0], "key": hidden(form, "key")[0],
            "line": hidden(form, "line"), **extra}




async def web_only_campaign(client: httpx.AsyncClient, shop: Shop, variant_id: int,
                            channels: list[str] | None = None) -> None:
    r = await client.post("/api/v1/campaigns", headers=shop.auth("owner"), json={
        "name": "Verkkoviikko -10 %", "kind": "percent", "value": 1000,
        "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "variant_ids": [variant_id], "channel_codes": channels or []})
    assert r.status_code == 201, r.text


# --- webshop ------------------------------------------------------------------------------

async def test_root_redirects_to_the_webshop(web: httpx.AsyncClient) -> None:
    r = await web.get("/")
    assert r.status_code == 302 and r.headers["location"] == "/shop/"
    assert "/shop/" not in (await web.get("/api/v1/openapi.json")).json()["paths"]


async def test_product_page_shows_web_price_campaign_and_stock_per_store(
    web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    v1, v2 = await make_variants(db, [2000, 2000], stock={
        shop.store1: 5, shop.store2: 2, shop.warehouse: 0},
        attributes=[{"shade": "Vanilja"}, {"shade": "Hunaja"}])
    await web_only_campaign(client, shop, v1["id"], ["web"])
    r = await web.get(f"/shop/p/{v1['product_slug']}?variant={v1['id']}")
    assert r.status_code == 200
    page = r.text
    assert text_of(page, "product-name") == f"Product {v1['product_slug'][2:]}"
    assert text_of(page, "brand") == "Test"
    assert text_of(page, "price") == "18,00 €"
    assert text_of(page, "list-price") == "20,00 €"
    assert text_of(page, "campaign") == "Verkkoviikko -10 %"
    assert text_of(page, "campaign-limited") == "Vain verkkokaupassa"
    assert text_of(page, "vat-note") == "Sis. ALV 25,5 %"
    assert text_of(page, "availability-store-1") == "5"
    assert text_of(page, "status-store-1") == "Varastossa"
    assert text_of(page, "availability-store-2") == "2"
    assert text_of(page, "status-store-2") == "Vähän jäljellä"
    assert text_of(page, "availability-online") == "0"
    assert not has(page, "availability-warehouse")  # stores only, plus the online total
    assert f'href="?variant={v2["id"]}"' in page  # the shade picker
    assert f"variant_id={v1['id']}" in page  # the live event stream of this variant

    # The other shade has no campaign; the fragment alone has the same numbers.
    page2 = (await web.get(f"/shop/p/{v1['product_slug']}?variant={v2['id']}")).text
    assert text_of(page2, "price") == "20,00 €" and not has(page2, "list-price")
    frag = await web.get(f"/shop/p/{v1['product_slug']}/availability?variant={v1['id']}")
    assert frag.status_code == 200 and "<html" not in frag.text
    assert text_of(frag.text, "availability-store-1") == "5"
    price = (await web.get(f"/shop/p/{v1['product_slug']}/price?variant={v1['id']}")).text
    assert text_of(price, "price") == "18,00 €"

    # The product list shows the same campaign price; search and category filter work.
    listing = (await web.get("/shop/", params={"q": v1["product_slug"][2:]})).text
    assert text_of(listing, "result-count") == "1 tuote"
    assert text_of(listing, "tile-price") == "18,00 €"
    empty = (await web.get("/shop/", params={"q": v1["product_slug"][2:],
                                              "category": "no-such"})).text
    assert text_of(empty, "result-count") == "0 tuotetta"


async def test_campaign_in_every_channel_is_not_marked_limited(
    web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 1})
    await web_only_campaign(client, shop, v["id"])
    page = (await web.get(f"/shop/p/{v['product_slug']}")).text
    assert text_of(page, "price") == "9,00 €"
    assert not has(page, "campaign-limited")


async def test_unknown_product_or_variant_is_a_404_page(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    r = await web.get("/shop/p/no-such-product")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert text_of(r.text, "error-message") == "Tuotetta ei löytynyt."
    [v] = await make_variants(db, [1000])
    r = await web.get(f"/shop/p/{v['product_slug']}/availability?variant=999999999")
    assert r.status_code == 404
    r = await web.get(f"/shop/p/{v['product_slug']}?variant=abc")
    assert r.status_code == 404 and "<html" in r.text


async def test_language_from_query_cookie_or_accept_language(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1250], stock={shop.store1: 9})
    url = f"/shop/p/{v['product_slug']}"
    fi = (await web.get(url)).text
    assert '<html lang="fi">' in fi and "Saatavuus" in fi
    assert text_of(fi, "price") == "12,50 €"
    assert f'href="{url}?lang=en"' in fi  # the switch on every page
    en = await web.get(url, params={"lang": "en"})
    assert '<html lang="en">' in en.text and "Availability" in en.text
    assert text_of(en.text, "price") == "€12.50"
    assert text_of(en.text, "status-store-1") == "In stock"
    assert en.cookies.get(i18n.LANG_COOKIE) == "en"
    # remembered in the cookie
    assert '<html lang="en">' in (await web.get(url)).text
    web.cookies.clear()
    assert '<html lang="en">' in (await web.get(url, headers={
        "Accept-Language": "sv-SE, en;q=0.8, fi;q=0.5"})).text
    assert '<html lang="fi">' in (await web.get(url, headers={"Accept-Language": "de"})).text


def test_every_finnish_message_is_translated() -> None:
    from babel.messages.pofile import read_po

    missing = []
    for path in i18n.catalog_files("fi"):
        with path.open("rb") as f:
            catalog = read_po(f)
        missing += [(path.name, m.id) for m in catalog if m.id and not all(
            m.string if isinstance(m.string, tuple) else [m.string])]
    assert missing == []
    assert i18n.translations("fi").gettext("Rounding") == "Pyöristys"


# --- staff login ----------------------------------------------------------------------------

async def test_login_errors_are_shown_next_to_the_field(
    web: httpx.AsyncClient, shop: Shop
) -> None:
    page = (await web.get("/staff/login")).text
    token = hidden(page, "csrf_token")[0]
    email, _ = shop.logins["cashier1"]
    r = await web.post("/staff/login", data={"email": email, "password": "wrong-password",
                                             "csrf_token": token})
    assert r.status_code == 401
    assert text_of(r.text, "error-password") == "Väärä sähköposti tai salasana."
    assert 'aria-describedby="password-error"' in r.text
    assert f'value="{email}"' in r.text  # what was typed stays
    r = await web.post("/staff/login", data={"email": "", "password": "",
                                             "csrf_token": token})
    assert r.status_code == 422
    assert text_of(r.text, "error-email") == "Anna sähköpostiosoitteesi."
    assert text_of(r.text, "error-password") == "Anna salasanasi."
    r = await web.post("/staff/login", data={"email": email, "password": "x"})
    assert r.status_code == 403 and has(r.text, "error-form")


async def test_login_logout_and_csrf(web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    await login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    page = (await web.get("/pos/store-1")).text
    r = await web.post("/staff/logout")  # no CSRF token
    assert r.status_code == 403
    r = await web.post("/staff/logout", data={"csrf_token": hidden(page, "csrf_token")[0]})
    assert r.status_code == 303 and r.headers["location"] == "/staff/login"
    assert (await web.get("/pos/store-1")).status_code == 303


# --- POS (the till's own endpoints: tests/test_till_api.py) ---------------------------------

async def test_pos_requires_login(web: httpx.AsyncClient) -> None:
    r = await web.get("/pos/")
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?next=%2Fpos%2F"
    r = await web.get("/pos/store-1")
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    r = await web.post("/pos/store-1/api/sales", json={})
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"


async def test_cashier_sells_only_in_their_own_store(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    await login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    r = await web.get("/pos/")
    assert r.status_code == 303 and r.headers["location"] == "/pos/store-1"
    cfg = config_of((await web.get("/pos/store-1")).text)
    r = await web.get("/pos/store-2")
    assert r.status_code == 403 and has(r.text, "error-page")
    r = await web.post("/pos/store-2/api/voids", headers={"X-CSRF-Token": cfg["csrfToken"]},
                       json={"key": "k" * 20, "voids": [
                           {"variant_id": 1, "quantity": 1, "amount_cents": 1}]})
    assert r.status_code == 403
    assert (await web.get("/pos/no-such-store")).status_code == 404


async def test_owner_gets_a_store_picker(web: httpx.AsyncClient, shop: Shop) -> None:
    await login(web, shop, "owner")
    r = await web.get("/pos/")
    assert r.status_code == 200
    assert has(r.text, "store-store-1") and has(r.text, "store-store-2")
    assert not has(r.text, "store-warehouse")


async def test_the_till_page_is_the_client_side_till(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    await login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    page = (await web.get("/pos/store-1", params={"lang": "en"})).text
    assert has(page, "code-input") and has(page, "cart-empty") and has(page, "pay-cash")
    assert 'type="module" src="/static/pos/till.js' in page
    assert config_of(page)["strings"]["unknown_code"] == "No product has the code {code}."
    assert (await web.get("/static/pos/till.js")).status_code == 200
    assert (await web.get("/static/pos/pricing.js")).status_code == 200


async def test_cash_sale_gives_a_receipt_with_vat_breakdown_and_rounding(
    web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1999], stock={shop.store1: 5})
    await login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    cfg = config_of((await web.get("/pos/store-1")).text)
    r = await web.post("/pos/store-1/api/sales", headers={"X-CSRF-Token": cfg["csrfToken"]},
                       json={"key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
                             "lines": [{"variant_id": v["id"], "quantity": 1}],
                             "payments": [{"method": "cash", "tendered_cents": 5000}]})
    assert r.status_code == 201, r.text
    url = r.json()["receipt_url"]
    receipt = await web.get(url)
    assert receipt.status_code == 200
    page = receipt.text
    assert text_of(page, "business-name") == "Saumaton Demo Oy"
    assert text_of(page, "business-id") == "2077474-0"
    assert "Esimerkkikatu 1, 00100 Helsinki" in page
    # The register's own sequence ("1-000042"), and the order number to find it by.
    assert re.fullmatch(r"\d+-\d{6}", text_of(page, "receipt-number"))
    assert r.json()["order"]["receipt_no"] == text_of(page, "receipt-number")
    assert re.fullmatch(r"\d{6}", text_of(page, "order-number"))
    assert re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4} \d{1,2}\.\d{2}\.\d{2}",
                        text_of(page, "receipt-time"))
    assert text_of(page, "receipt-total") == "19,99 €"
    assert text_of(page, "rounding") == "+0,01 €"
    assert text_of(page, "cash-paid") == "20,00 €"
    assert text_of(page, "tendered") == "50,00 €"
    assert text_of(page, "change") == "30,00 €"
    assert text_of(page, "vat-row") == "25,5 % 15,93 € 4,06 € 19,99 €"
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    assert next(x for x in avail["locations"] if x["code"] == "store-1")["on_hand"] == 4
    # the till loads the receipt with htmx: just the panel
    panel = await web.get(url, headers=HX)
    assert panel.status_code == 200 and "<html" not in panel.text and has(panel.text, "paid")
    # cashier2 may not read store-1's receipts
    other = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    async with other:
        await login(other, shop, "cashier2")
        assert (await other.get(url)).status_code == 403
    # the receipt belongs to store-1, not to another store's address
    number = url.rsplit("/", 1)[1]
    assert (await web.get(f"/pos/store-1/receipt/{int(number) + 10_000}")).status_code == 404
