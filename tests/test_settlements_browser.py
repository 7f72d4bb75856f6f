"""The settlement pages in a real Chromium on a 375 px phone: finance uploads a report
file, reads the settlement's lines, then the month at a glance and the discrepancies;
nothing is wider than the screen."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.config import Settings
from saumaton.db.uow import Database
from tests.browser import PHONE, assert_fits, browser, contexts, fill_staff_login, open_page
from tests.settlement_files import Row, paid_web_order, report_json, row_for
from tests.support import Server, Shop

__all__ = ["browser", "contexts"]


async def test_finance_uploads_a_settlement_and_reads_the_month_on_a_phone(
    browser: Browser, contexts: list[BrowserContext], server: Server, shop: Shop,
    db: Database, settings: Settings, tmp_path: Path,
) -> None:
    paid = await paid_web_order(db, settings, shop, 4200, date(2025, 11, 3))
    missing = await paid_web_order(db, settings, shop, 1500, date(2025, 11, 4))
    file = tmp_path / "tilitys-marraskuu.json"
    file.write_bytes(report_json("phone-11", "9000123", date(2025, 11, 12), [
        row_for(paid, fee=25, commission=63), Row(777, stamp="a-stranger-with-a-long-stamp-"
                                                  "that-must-wrap-on-a-phone", fee=25)]))
    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/backoffice/settlements/import")
    await fill_staff_login(page, shop, "finance")
    await expect(page.get_by_test_id("upload-form")).to_be_visible()
    await assert_fits(page)
    await page.get_by_test_id("file").set_input_files(str(file))
    await page.get_by_test_id("upload").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Tilitys tuotiin.")
    await expect(page.get_by_test_id("line")).to_have_count(2)
    await expect(page.locator('[data-testid="line"][data-cause="settled_unknown"]')
                 ).to_have_count(1)
    await assert_fits(page)

    await page.get_by_test_id("tab-month").click()
    await page.get_by_test_id("month").fill("2025-11")
    await page.get_by_role("button", name="Näytä").click()
    await expect(page.get_by_test_id("settlement-phone-11")).to_be_visible()
    await expect(page.get_by_test_id("fig-discrepancies")).to_have_text("1")
    await expect(page.get_by_test_id("missing")).to_contain_text(missing.stamp)
    await assert_fits(page)

    await page.get_by_test_id("tab-discrepancies").click()
    await expect(page.locator('[data-testid="discrepancy"]')).to_have_count(2)
    await expect(page.locator('[data-cause="not_settled"]')).to_have_count(1)
    await assert_fits(page)
