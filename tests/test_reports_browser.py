"""The sales report in a real Chromium: the finance person opens Reports on a 375 px
phone, sees the charts and their tables without the page growing sideways, downloads
a chart's CSV (the same figures), and moves to the detail pages."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants


async def test_reports_on_a_phone_chart_table_and_csv(
    browser: Browser, contexts: list[BrowserContext], server: Server, shop: Shop,
    db: Database, tmp_path: Path,
) -> None:
    [v] = await make_variants(db, [4990], stock={shop.store1: 5})
    await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)],
        payments=[PaymentIn(method="cash")]))
    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/backoffice/reports")
    await fill_staff_login(page, shop, "finance")
    await expect(page.get_by_test_id("reports")).to_be_visible()
    await expect(page.get_by_test_id("card-net-value")).to_be_visible()
    channels = page.get_by_test_id("figure-channels")
    await expect(channels.locator("svg.chart")).to_be_visible()
    await expect(channels.get_by_test_id("figure-channels-table")).to_contain_text("POS Helsinki")
    await expect(page.get_by_test_id("figure-series").locator("svg.chart")).to_be_visible()
    await expect(page.get_by_test_id("figure-vat-table")).to_contain_text("25,5")
    await assert_fits(page)

    async with page.expect_download() as info:
        await channels.get_by_test_id("figure-channels-csv").click()
    download = await info.value
    target = tmp_path / "channels.csv"
    await download.save_as(target)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    assert rows[-1]["channel"] == "Kaikki kanavat"
    # The page's headline figure is the CSV's total net sales.
    net = (await page.get_by_test_id("card-net-value").inner_text()).replace("\u00a0", " ")
    assert net.replace(" ", "").replace("€", "") == rows[-1]["net_sales_eur"]

    await page.get_by_test_id("rs-products").click()
    await expect(page.get_by_test_id("figure-products").locator("svg.chart")).to_be_visible()
    await assert_fits(page)
    await page.get_by_test_id("rs-returns").click()
    await expect(page.get_by_test_id("figure-reasons")).to_be_visible()
    await assert_fits(page)
