"""The daily journal page in a real headless Chromium on a phone (375 px), against a
real server (both databases): finance picks the day, reads the tables in Finnish and
downloads the CSV, which is the journal's own."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.reports.journal import build_journal, journal_period, to_csv
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.journal_day import build_journal_day
from tests.support import Server, Shop

DAY = date(2026, 3, 11)  # a day of its own (tests/test_journal.py uses the 10th)


async def test_finance_reads_the_day_on_a_phone_and_downloads_the_csv(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        settings: Settings, shop: Shop) -> None:
    await build_journal_day(db, settings, shop, DAY)
    page = await open_page(contexts, browser, viewport=PHONE, accept_downloads=True)
    await page.goto(f"{server.base_url}/backoffice/journal")
    await fill_staff_login(page, shop, "finance")
    await expect(page.get_by_test_id("journal-form")).to_be_visible()
    await page.get_by_test_id("journal-date").fill(DAY.isoformat())
    await page.get_by_test_id("journal-show").click()
    store = page.get_by_test_id(f"journal-{DAY.isoformat()}-store-1")
    await expect(store).to_be_visible()
    await expect(store.get_by_test_id("line-sales.goods-1350")).to_contain_text("37,02")
    await expect(store.get_by_test_id("line-check.difference")).to_contain_text(
        "Erotus (pitää olla 0)")
    await expect(store.get_by_test_id("line-check.difference")).to_contain_text("0,00")
    await expect(page.get_by_test_id(f"journal-{DAY.isoformat()}-web")).to_be_visible()
    await assert_fits(page)
    async with page.expect_download() as info:
        await page.get_by_test_id("journal-csv").click()
    download = await info.value
    assert download.suggested_filename == f"journal-{DAY.isoformat()}.csv"
    got = await asyncio.to_thread(Path(await download.path()).read_bytes)
    async with db.reader() as s:
        expected = to_csv(await build_journal(s, journal_period(DAY), "Europe/Helsinki"))
    assert got == expected.encode("utf-8") and got.startswith(b"\xef\xbb\xbf")
