"""The pages in a real headless Chromium against a real uvicorn server (both databases).

The demo scenario: a shopper watches a product page while a cashier sells the
item in the store; the shopper's page updates by itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect

from saumaton.db.uow import Database
from tests.browser import PHONE, WAIT_MS, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_till_api import open_drawer


async def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Saved with the test; also copied to $SAUMATON_SCREENSHOTS when set."""
    path = tmp_path / f"{name}.png"
    target = os.environ.get("SAUMATON_SCREENSHOTS")
    for p in [path, *([Path(target) / path.name] if target else [])]:
        await page.screenshot(path=str(p), full_page=True)  # creates missing folders
    return path


async def log_in(page: Page, base_url: str, shop: Shop, who: str) -> None:
    await page.goto(f"{base_url}/pos/")
    await expect(page).to_have_url(f"{base_url}/staff/login?next=%2Fpos%2F")
    await fill_staff_login(page, shop, who)


async def test_store_sale_updates_the_open_webshop_page(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, tmp_path: Path, backend: str,
) -> None:
    [v] = await make_variants(db, [1999], stock={shop.store1: 5, shop.warehouse: 2})
    await open_drawer(db, shop.store1)
    product_url = f"{server.base_url}/shop/p/{v['product_slug']}?variant={v['id']}"

    # Tab A: a shopper on the product page.
    shopper = await open_page(contexts, browser)
    await shopper.goto(product_url)
    store1 = shopper.get_by_test_id("availability-store-1")
    await expect(store1).to_have_text("5")
    await expect(shopper.get_by_test_id("availability-online")).to_have_text("2")
    await expect(shopper.get_by_test_id("price")).to_have_text("19,99\xa0€")
    await expect(shopper.locator("article[data-live=ready]")).to_have_count(1)

    # Tab B: the cashier of store-1 sells one with a scanner and cash.
    cashier = await open_page(contexts, browser)
    await log_in(cashier, server.base_url, shop, "cashier1")
    await expect(cashier).to_have_url(f"{server.base_url}/pos/store-1")
    await expect(cashier.locator("#till[data-ready='1']")).to_have_count(1)
    code = cashier.get_by_test_id("code-input")
    await expect(code).to_be_focused()
    await code.press_sequentially(str(v["ean"]))
    await code.press("Enter")
    await expect(cashier.get_by_test_id("cart-line")).to_have_count(1)
    await expect(cashier.get_by_test_id("total")).to_have_text("19,99\xa0€")
    await expect(cashier.get_by_test_id("cash-due")).to_have_text("20,00\xa0€")
    await expect(cashier.get_by_test_id("code-input")).to_be_focused()  # ready for the next
    tendered = cashier.get_by_test_id("tendered")
    await tendered.fill("50")
    await expect(cashier.get_by_test_id("change")).to_have_text("30,00\xa0€")
    await cashier.get_by_test_id("pay-cash").click()

    receipt = cashier.get_by_test_id("receipt")
    await expect(receipt).to_be_visible()
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text("19,99\xa0€")
    await expect(receipt.get_by_test_id("rounding")).to_have_text("+0,01\xa0€")
    await expect(receipt.get_by_test_id("cash-paid")).to_have_text("20,00\xa0€")
    await expect(receipt.get_by_test_id("change")).to_have_text("30,00\xa0€")
    await expect(receipt.get_by_test_id("vat-breakdown")).to_contain_text("25,5 %")
    await expect(receipt.get_by_test_id("vat-row")).to_have_count(1)
    await screenshot(cashier, tmp_path, f"pos-receipt-{backend}")

    # Tab A was never reloaded: the store sale reached it over server-sent events.
    await expect(store1).to_have_text("4", timeout=WAIT_MS)
    await expect(shopper.get_by_test_id("availability-online")).to_have_text("2")
    # ... on the one stream it opened, not by reconnecting and re-reading.
    await expect(shopper.locator("article[data-connects='1']")).to_have_count(1)
    await screenshot(shopper, tmp_path, f"product-{backend}")


async def test_pages_fit_a_phone_screen(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, tmp_path: Path, backend: str,
) -> None:
    [v, _] = await make_variants(
        db, [4990, 4990], stock={shop.store1: 2, shop.store2: 0},
        attributes=[{"shade": "2N Posliini erittäin pitkä sävynimi", "size": "30 ml"},
                    {"shade": "3W Hunaja", "size": "30 ml"}])
    page = await open_page(contexts, browser, viewport=PHONE, is_mobile=True,
                           has_touch=True)
    await page.goto(f"{server.base_url}/shop/p/{v['product_slug']}?variant={v['id']}")
    await expect(page.get_by_test_id("status-store-1")).to_have_text("Vähän jäljellä")
    await assert_fits(page)
    await screenshot(page, tmp_path, f"phone-product-{backend}")
    await page.goto(f"{server.base_url}/shop/")
    await assert_fits(page)

    await open_drawer(db, shop.store1)
    await log_in(page, server.base_url, shop, "cashier1")
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    code = page.get_by_test_id("code-input")
    await code.fill(str(v["ean"]))
    await code.press("Enter")
    await expect(page.get_by_test_id("cart-line")).to_have_count(1)
    await page.get_by_test_id("inc").click()
    await expect(page.get_by_test_id("line-qty")).to_have_value("2")
    await code.fill("4006381333931")
    await code.press("Enter")
    await expect(page.get_by_test_id("error-code")).to_contain_text("4006381333931")
    await assert_fits(page)
    await screenshot(page, tmp_path, f"phone-pos-{backend}")
    await page.get_by_test_id("pay-card").click()
    await expect(page.get_by_test_id("card-paid")).to_have_text("99,80\xa0€")
    await assert_fits(page)
    await screenshot(page, tmp_path, f"phone-receipt-{backend}")


async def test_english_pages(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    [v] = await make_variants(db, [1290], stock={shop.store1: 7})
    page = await open_page(contexts, browser, locale="fi-FI")
    await page.goto(f"{server.base_url}/shop/p/{v['product_slug']}")
    await expect(page.get_by_role("heading", name="Saatavuus")).to_be_visible()
    await page.get_by_role("link", name="EN", exact=True).click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", name="Availability")).to_be_visible()
    await expect(page.get_by_test_id("price")).to_have_text("€12.90")
    await expect(page.get_by_test_id("status-store-1")).to_have_text("In stock")
    await expect(page.get_by_test_id("vat-note")).to_have_text("Incl. VAT 25.5 %")
    # the choice sticks (cookie) on the next page
    await page.goto(f"{server.base_url}/staff/login")
    await expect(page.get_by_role("heading", name="Staff login")).to_be_visible()
