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
from saumaton.orders.models import Order
from saumaton.tryon.models import TryReservation
from tests.browser import open_page
from tests.builders import a_customer, a_try_reservation
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


async def test_selling_her_reservation_puts_her_on_the_sale(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    """A signed-in shopper's reservation: *Sell at the till* puts her on the sale (the
    chip names her and the reservation; her points are offered), so the sale is hers. A
    customer the cashier attached first stays, with a note of who reserved; one the
    cashier takes off stays off."""
    [v] = await make_variants(db, [2490], stock={shop.store1: 4})
    vid = int(str(v["id"]))
    her, bea = await a_customer(db), await a_customer(db, first_name="Bea")
    assert bea.card
    r1, r2, r3 = [await a_try_reservation(db, shop, vid, customer_id=her.id)
                  for _ in range(3)]
    await open_drawer(db, shop.store1)
    till = await open_page(contexts, browser)
    await open_till(till, server, shop)
    chip = till.get_by_test_id("sale-customer")

    async def sell_reservation(code: str) -> None:
        await till.goto(f"{server.base_url}/pos/store-1/tries?q={code}")
        await till.get_by_test_id(f"try-sell-{code}").click()
        await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
        await expect(till.get_by_test_id("cart-line")).to_have_count(1)

    async def pay() -> Order:
        await till.get_by_test_id("tendered").fill("30")
        await till.get_by_test_id("pay-cash").click()
        await expect(till.get_by_test_id("receipt")).to_be_visible()
        order, _, _ = await order_of(till, db)
        await till.get_by_test_id("new-sale").click()
        return order

    await sell_reservation(r1.code)
    await expect(chip).to_contain_text("Anna Asiakas")
    await expect(till.get_by_test_id("sale-customer-from")).to_have_text(f"varaus {r1.code}")
    assert (await pay()).customer_id == her.id

    # The cashier attached Bea first: she stays; the note says Anna reserved.
    await till.get_by_test_id("customer-q").fill(bea.card)
    await till.get_by_test_id("customer-q").press("Enter")
    await till.get_by_test_id("customer-panel").get_by_test_id("attach-customer").click()
    await expect(chip).to_contain_text("Bea Asiakas")
    await sell_reservation(r2.code)
    await expect(till.get_by_test_id("try-customer-kept")).to_contain_text(
        f"Varauksen {r2.code} teki Anna Asiakas")
    await expect(chip).to_contain_text("Bea Asiakas")
    await expect(till.get_by_test_id("sale-customer-from")).to_be_hidden()
    assert (await pay()).customer_id == bea.id

    # Her next visit: her points from the first sale are offered with her.
    await sell_reservation(r3.code)
    await expect(chip).to_contain_text("Anna Asiakas")
    await expect(till.get_by_test_id("points-balance")).to_contain_text("24")
    await expect(till.get_by_test_id("try-customer-kept")).to_be_hidden()
    assert (await pay()).customer_id == her.id

    # Taken off the sale (✕): the sale is nobody's, though the reservation is hers.
    r4 = await a_try_reservation(db, shop, vid, customer_id=her.id)
    await sell_reservation(r4.code)
    await expect(chip).to_contain_text("Anna Asiakas")
    await till.get_by_test_id("remove-customer").click()
    await expect(chip).to_be_hidden()
    assert (await pay()).customer_id is None
