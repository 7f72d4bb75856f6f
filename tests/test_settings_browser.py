"""The settings form in a real headless Chromium on a 375 px phone against a real server
(both databases): the owner signs in, types bad values and sees every error next to its
field at once (nothing saved), corrects them and saves; restoring a default puts the
environment's value back."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, BrowserContext, expect

from saumaton.db.uow import Database
from saumaton.shopsettings.live import LiveSettings
from tests.browser import PHONE, assert_fits, browser, contexts, fill_staff_login, open_page
from tests.support import Server, Shop, eventually
from tests.test_settings import restore, restore_settings, stored

__all__ = ["browser", "contexts", "restore"]  # fixtures used by name


async def test_owner_corrects_errors_and_saves_settings_on_a_phone(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, restore: LiveSettings) -> None:
    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/backoffice/settings")
    await expect(page).to_have_url(
        f"{server.base_url}/staff/login?next=%2Fbackoffice%2Fsettings")
    await fill_staff_login(page, shop, "owner")
    await expect(page).to_have_url(f"{server.base_url}/backoffice/settings")
    await expect(page.get_by_role("heading", name="Asetukset")).to_be_visible()
    await expect(page.get_by_test_id("default-web_return_days")).to_have_text("Oletus: 14")

    # Bad values: every error at once, each next to its field; nothing saved.
    business_id = page.get_by_label("Y-tunnus")
    await business_id.fill("1234567-8")
    await page.get_by_label("Verkkotilausten palautusaika (päivää)").fill("7")
    await page.get_by_label("Kotiinkuljetuksen hinta (€)").fill("-1")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-errors")).to_be_visible()
    await expect(page.get_by_test_id("error-business_id")).to_have_text(
        "Tämä ei ole kelvollinen Y-tunnus, esim. 1234567-1.")
    await expect(page.get_by_test_id("error-web_return_days")).to_have_text(
        "Anna vähintään 14.")
    await expect(page.get_by_test_id("error-home_delivery_fee_cents")).to_have_text(
        "Anna vähintään 0,00 €.")
    await expect(business_id).to_have_attribute("aria-invalid", "true")
    await expect(business_id).to_have_value("1234567-8")  # what was typed stays
    # Next to its field: the error sits right below the input it belongs to.
    field_box = await business_id.bounding_box()
    error_box = await page.get_by_test_id("error-business_id").bounding_box()
    assert field_box and error_box
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 40
    await assert_fits(page)
    assert await stored(db) == {}

    # Corrected (a decimal comma in euros) and saved: the notice, the new values kept.
    await business_id.fill("1572860-0")
    await page.get_by_label("Verkkotilausten palautusaika (päivää)").fill("21")
    await page.get_by_label("Kotiinkuljetuksen hinta (€)").fill("6,9")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-notice")).to_contain_text(
        "Asetukset tallennettu")
    await expect(page.get_by_label("Kotiinkuljetuksen hinta (€)")).to_have_value("6,90")
    await expect(page.get_by_test_id("changed-web_return_days")).to_be_visible()
    await expect(page.get_by_test_id("error-business_id")).to_have_count(0)
    assert await stored(db) == {"business_id": "1572860-0", "web_return_days": 21,
                                "home_delivery_fee_cents": 690}
    await assert_fits(page)

    # Enter in a field saves (not a "Restore default" of a changed field above it).
    hold = page.get_by_label("Noudon säilytysaika (päivää)")
    await hold.fill("10")
    await hold.press("Enter")
    await expect(page.get_by_test_id("changed-pickup_hold_days")).to_be_visible()
    await expect(page.get_by_test_id("changed-business_id")).to_be_visible()
    assert (await stored(db))["pickup_hold_days"] == 10

    # Restore one default by keyboard: the override goes, the default is shown.
    await page.get_by_test_id("reset-web_return_days").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("settings-notice")).to_have_text(
        "Oletusarvo on taas käytössä.")
    await expect(page.get_by_label("Verkkotilausten palautusaika (päivää)")).to_have_value(
        "14")
    await expect(page.get_by_test_id("changed-web_return_days")).to_have_count(0)
    assert await stored(db) == {"business_id": "1572860-0", "home_delivery_fee_cents": 690,
                                "pickup_hold_days": 10}

    # Back to the defaults before the next test uses this server: wait until it has
    # reloaded them (its footer prints the business ID).
    await restore_settings(db, restore, {})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
        async def reloaded() -> bool:
            return restore.base.business_id in (await c.get("/shop/")).text
        await eventually(reloaded, within=20, what="the server reloads the defaults")
