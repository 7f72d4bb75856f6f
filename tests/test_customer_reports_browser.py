"""The channel journeys page in a real Chromium on a 375 px phone (both databases): the
chart is drawn and visible, nothing is wider than the screen, the tab row leads to the
other customer reports, and a figure's CSV link downloads the file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.reports.journeys import refresh_journeys
from tests.browser import PHONE, assert_fits, browser, contexts, fill_staff_login, open_page
from tests.report_orders import add_order, channel_ids, new_customer
from tests.support import Server, Shop, make_variants

__all__ = ["browser", "contexts"]


async def test_journeys_page_on_a_phone(browser: Browser, contexts: list[BrowserContext],
                                        server: Server, shop: Shop, db: Database,
                                        tmp_path: Path) -> None:
    ch = await channel_ids(db)
    [v] = await make_variants(db, [1000])
    variant = int(str(v["id"]))
    start = utcnow() - timedelta(days=30)
    store_then_web = await new_customer(db, "Selma")
    await add_order(db, channel_id=ch["pos-1"], customer_id=store_then_web, at=start,
                    lines=[(variant, 2500)])
    await add_order(db, channel_id=ch["web"], customer_id=store_then_web,
                    at=start + timedelta(days=9), lines=[(variant, 4900)], status="shipped")
    web_only = await new_customer(db, "Veera")
    await add_order(db, channel_id=ch["web"], customer_id=web_only, at=start,
                    lines=[(variant, 1900)], status="shipped")
    async with db.uow() as uow:
        await refresh_journeys(uow, full=True)
        await uow.commit()

    page = await open_page(contexts, browser, viewport=PHONE, accept_downloads=True)
    await page.goto(f"{server.base_url}/staff/login?next=/backoffice/reports/customers")
    await fill_staff_login(page, shop, "owner")
    await expect(page).to_have_url(f"{server.base_url}/backoffice/reports/customers")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Asiakaspolut")
    chart = page.get_by_test_id("figure-kinds").locator("svg.chart")
    await expect(chart).to_be_visible()
    box = await chart.bounding_box()
    assert box is not None and 0 < box["width"] <= PHONE["width"] and box["height"] > 50
    await expect(page.get_by_test_id("figure-ltv").locator("svg.chart")).to_be_visible()
    await assert_fits(page)

    async with page.expect_download() as info:
        await page.get_by_test_id("figure-matrix-csv").click()
    download = await info.value
    target = tmp_path / "matrix.csv"
    await download.save_as(target)
    data = target.read_bytes()
    assert data.startswith("\ufeff".encode())
    assert data.decode("utf-8-sig").splitlines()[0].startswith("first_channel;customers;")

    await page.get_by_test_id("cr-tab-nps").click()
    await expect(page).to_have_url(f"{server.base_url}/backoffice/reports/nps")
    await assert_fits(page)
    await page.get_by_test_id("cr-tab-funnel").click()
    await expect(page.get_by_test_id("customer-reports-funnel")).to_be_visible()
    await assert_fits(page)
