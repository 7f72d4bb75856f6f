"""The CSV import in a real headless Chromium against a real server (both databases), at
a phone's width: upload a file with a wrong row -> the preview shows the error next to
the row and offers no import; upload the fixed file -> preview counts -> Import -> the
progress bar, polled every second, reaches 100 % and the result is shown."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import func, select

from saumaton.catalogue.models import Product, Variant
from saumaton.db.uow import Database
from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, new_ean


def products_file(tmp_path: Path, tag: str, rows: int, bad_row: bool) -> Path:
    lines = ["product;name;name_en;sku;ean;price;attributes"]
    for i in range(rows):
        lines.append(f"tuonti-{tag}-{i // 5};Huulipuna {i // 5};Lipstick {i // 5};"
                     f"T-{tag}-{i};{new_ean()};{9 + i % 7},90;shade=S{i % 5}")
    if bad_row:
        lines.append(f"tuonti-{tag}-x;Huulipuna;;T-{tag}-x;6412345678900;9,90;")
    path = tmp_path / f"tuotteet-{tag}{'-bad' if bad_row else ''}.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    return path


async def test_upload_preview_import_and_progress_bar(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    page = await open_page(contexts, browser, viewport={"width": 375, "height": 800})
    await page.goto(f"{server.base_url}/backoffice/import-export")
    await fill_staff_login(page, shop, "owner")
    await expect(page).to_have_url(f"{server.base_url}/backoffice/import-export")

    # A file with a wrong EAN on its last row: the preview shows it next to the row.
    await page.get_by_test_id("kind").select_option("products")
    await page.get_by_test_id("file").set_input_files(products_file(tmp_path, tag, 20, True))
    await page.get_by_test_id("upload").click()
    await expect(page.get_by_test_id("count-errors")).to_have_text("1")
    await expect(page.get_by_test_id("count-new")).to_have_text("20")
    wrong = page.get_by_test_id("row-22")
    await expect(wrong.get_by_test_id("row-error")).to_have_attribute("data-field", "ean")
    await expect(wrong.get_by_test_id("row-error")).to_contain_text("tarkistusnumero")
    await expect(page.get_by_test_id("run-import")).to_have_count(0)
    await expect(page.get_by_test_id("fix-errors")).to_be_visible()

    # The fixed file (1 200 rows: three batches) imports with a progress bar.
    await page.goto(f"{server.base_url}/backoffice/import-export")
    await page.get_by_test_id("file").set_input_files(products_file(tmp_path, tag, 1200, False))
    await page.get_by_test_id("upload").click()
    await expect(page.get_by_test_id("count-new")).to_have_text("1200")
    await expect(page.get_by_test_id("count-errors")).to_have_text("0")
    await page.get_by_test_id("run-import").click()
    await expect(page.get_by_test_id("progress")).to_have_attribute("data-status", "done")
    await expect(page.get_by_test_id("progress-text")).to_have_text("100 %")
    await expect(page.get_by_test_id("progress-bar")).to_have_attribute("value", "100")
    await expect(page.get_by_test_id("import-done")).to_contain_text("1200")
    async with db.reader() as s:
        n = await s.scalar(select(func.count()).select_from(Variant).join(Product).where(
            Product.slug.like(f"tuonti-{tag}-%")))
    assert n == 1200
