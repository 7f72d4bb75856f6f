"""The staff home and the back office's shared menu in a real Chromium (both databases):
one staff login leads to a home page by role, the menu works by keyboard and folds on a
375 px phone, a page the role may not open answers the HTML 403 page with a way home,
and the pages switch between Finnish and English."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, expect

from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop


async def test_owner_signs_in_to_her_home_and_moves_through_the_back_office(
    browser: Browser, contexts: list[BrowserContext], server: Server, shop: Shop,
) -> None:
    page = await open_page(contexts, browser)
    await page.goto(f"{server.base_url}/staff/login")
    await fill_staff_login(page, shop, "owner")
    await expect(page).to_have_url(f"{server.base_url}/staff/")
    home = page.get_by_test_id("staff-home")
    for tile in ("till-store-1", "till-store-2", "service", "backoffice", "reports"):
        await expect(home.get_by_test_id(f"home-{tile}")).to_be_visible()
    await expect(home.get_by_test_id("home-till-store-2")).to_contain_text("Kassa: Store Tampere")

    await home.get_by_test_id("home-backoffice").click()
    await expect(page).to_have_url(f"{server.base_url}/backoffice/")
    menu = page.get_by_test_id("bo-nav")
    for item in ("orders", "products", "campaigns", "price-parity", "stock", "staff", "audit",
                 "settings", "import-export"):
        await expect(menu.get_by_test_id(f"nav-{item}")).to_be_visible()
    await expect(menu.get_by_test_id("nav-orders")).to_have_text("Tilaukset")

    # By keyboard: Tab from the menu's first link reaches the next ones, Enter opens one.
    await menu.get_by_test_id("nav-orders").focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{server.base_url}/backoffice/orders")
    await expect(page.get_by_test_id("nav-orders")).to_have_attribute("aria-current", "page")

    # English on request, and the menu with it.
    await page.goto(f"{server.base_url}/backoffice/?lang=en")
    await expect(page.get_by_test_id("nav-orders")).to_have_text("Orders")
    await expect(page.get_by_test_id("tile-stock")).to_contain_text("Stock levels")
    # The header leads back home, and home back to the till.
    await page.get_by_test_id("nav-staff-home").click()
    await expect(page).to_have_url(f"{server.base_url}/staff/")


async def test_cashier_on_a_phone_sees_only_her_pages_and_a_clear_403(
    browser: Browser, contexts: list[BrowserContext], server: Server, shop: Shop,
) -> None:
    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/backoffice/")
    await expect(page).to_have_url(f"{server.base_url}/staff/login?next=%2Fbackoffice%2F")
    await fill_staff_login(page, shop, "cashier1")
    await expect(page).to_have_url(f"{server.base_url}/backoffice/")
    await assert_fits(page)

    # On a phone the menu starts folded; the keyboard opens it.
    menu = page.get_by_test_id("bo-nav")
    await expect(menu).to_be_hidden()
    await page.get_by_test_id("bo-menu").locator("summary").focus()
    await page.keyboard.press("Enter")
    await expect(menu).to_be_visible()
    await expect(menu.get_by_test_id("nav-orders")).to_be_visible()
    for hidden in ("settings", "staff", "audit", "products", "price-parity", "import-export"):
        await expect(menu.get_by_test_id(f"nav-{hidden}")).to_have_count(0)
    await assert_fits(page)

    # A page her role may not open: the HTML 403 page, with the way back home.
    response = await page.goto(f"{server.base_url}/backoffice/settings")
    assert response is not None and response.status == 403
    await expect(page.get_by_test_id("error-page")).to_be_visible()
    await expect(page.get_by_test_id("error-message")).to_have_text(
        "Sinulla ei ole oikeutta tähän.")
    await assert_fits(page)
    await page.get_by_test_id("error-home").click()
    await expect(page).to_have_url(f"{server.base_url}/staff/")
    await expect(page.get_by_test_id("home-till-store-1")).to_be_visible()
    await expect(page.get_by_test_id("home-till-store-2")).to_have_count(0)
