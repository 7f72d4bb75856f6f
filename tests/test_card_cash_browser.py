"""The offline flags' review in a real headless Chromium at phone width (375 px), both
databases: a Helsinki manager resolves a sale's price flag with a note; without a note
the error is shown next to the field and nothing is resolved."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.cardcash.models import FlagResolution
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.card_cash_builders import card_sale, card_store
from tests.support import Server, Shop, open_drawer, staff_actor


async def test_a_manager_resolves_a_flag_on_a_phone(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    store = await card_store(db)
    order = await card_sale(db, store, 2400, offline_at=utcnow() - timedelta(minutes=10),
                            unit_price_cents=2200, location_id=shop.store1,
                            session_id=await open_drawer(db, shop.store1),
                            cashier=await staff_actor(db, shop, "cashier1"))
    assert "price_mismatch" in order.flags
    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/staff/login?next=/backoffice/flags%3Fflag%3Dprice_mismatch")
    await fill_staff_login(page, shop, "manager1")
    await page.goto(f"{server.base_url}/backoffice/flags?flag=price_mismatch&store=store-1")
    item = page.get_by_test_id(f"flag-{order.id}-price_mismatch")
    await expect(item).to_be_visible()
    await expect(item).to_contain_text("Hinta poikkeaa hinnastosta")
    await assert_fits(page)

    await item.get_by_test_id("resolve").click()  # no note yet
    item = page.get_by_test_id(f"flag-{order.id}-price_mismatch")
    await expect(item.get_by_test_id("error-note")).to_have_text(
        "Kirjoita, mitä tarkistit ja miksi merkinnän voi kuitata.")
    await expect(item.get_by_test_id("note")).to_have_attribute("aria-invalid", "true")
    await assert_fits(page)

    await item.get_by_test_id("note").fill("Hyllyn hintalappu oli vanha, hinnasto oikein.")
    await item.get_by_test_id("resolve").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Merkintä on kuitattu.")
    await expect(page.get_by_test_id(f"flag-{order.id}-price_mismatch")).to_have_count(0)
    await assert_fits(page)
    async with db.reader() as s:
        res = await s.scalar(select(FlagResolution).where(
            FlagResolution.order_id == order.id, FlagResolution.flag == "price_mismatch"))
    assert res is not None and res.note.startswith("Hyllyn hintalappu")
    assert res.resolved_by.startswith("staff:") and not res.automatic

    # The card and cash page fits the phone too (its tables scroll inside their frame).
    await page.goto(f"{server.base_url}/backoffice/card-cash")
    await expect(page.get_by_test_id("cash")).to_be_visible()
    await assert_fits(page)
