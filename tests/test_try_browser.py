"""Reserve to try in a real headless Chromium against a real server (both databases):
a shopper reserves on the product page and gets a code; the store's cashier finds the
reservation by that code, sells it at the till, and the held unit is the one sold."""

from __future__ import annotations

import random
import re

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.tryon.models import TryReservation
from tests.browser import open_page
from tests.support import Server, Shop, make_variants
from tests.test_till_api import open_drawer
from tests.test_till_browser import open_till, order_of


async def level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        row = (await s.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id))).one()
    return int(row[0]), int(row[1])


async def test_reserve_to_try_then_the_store_sells_it(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 2})
    vid = int(str(v["id"]))
    base = server.base_url

    # The shopper, on her phone, reserves one at the Helsinki store.
    shopper = await open_page(contexts, browser, viewport={"width": 375, "height": 812})
    await shopper.goto(f"{base}/shop/p/{v['product_slug']}")
    await shopper.get_by_test_id("reserve-to-try").click()
    await shopper.get_by_test_id("try-store-store-1").check()
    await shopper.get_by_test_id("try-name").fill("Sanna Sovittaja")
    await shopper.get_by_test_id("try-phone").fill(f"040{random.randrange(10**6, 10**7)}")
    await shopper.get_by_test_id("try-submit").click()
    code_el = shopper.get_by_test_id("try-code")
    await expect(code_el).to_have_text(re.compile(r"^KT[A-Z0-9]{6}$"))
    code = (await code_el.text_content() or "").strip()
    await expect(shopper.get_by_test_id("try-until")).to_contain_text("Store Helsinki")
    assert await level(db, vid, shop.store1) == (2, 1)

    # The cashier finds it by the code and sells it at the till.
    await open_drawer(db, shop.store1)
    till = await open_page(contexts, browser)
    await open_till(till, server, shop)
    await till.get_by_test_id("tries-link").click()
    await till.get_by_test_id("try-q").fill(code.lower())
    await till.get_by_test_id("try-find").click()
    await expect(till.get_by_test_id(f"try-{code}")).to_contain_text("Sanna Sovittaja")
    await till.get_by_test_id(f"try-sell-{code}").click()
    await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
    lines = till.get_by_test_id("cart-line")
    await expect(lines).to_have_count(1)
    await till.get_by_test_id("tendered").fill("30")
    await till.get_by_test_id("pay-cash").click()
    await expect(till.get_by_test_id("receipt")).to_be_visible()
    order, order_lines, _ = await order_of(till, db)
    assert [(ln.variant_id, ln.quantity) for ln in order_lines] == [(vid, 1)]

    async with db.reader() as s:
        r = (await s.scalars(select(TryReservation).where(TryReservation.code == code))).one()
    assert (r.status, r.order_id) == ("sold", order.id)
    assert await level(db, vid, shop.store1) == (1, 0)  # the held unit, sold once
