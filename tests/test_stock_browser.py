"""Stock in a real headless Chromium against a real server (both databases).

* A transfer in transit is sellable at neither end: 10 units sent from the warehouse to
  Tampere leave the warehouse's (web) stock at once, while Tampere's till shows none on
  the shelf (10 on the way) and the webshop offers none for pickup in Tampere; once
  Tampere posts the receipt, the webshop shows them there and the till sells one.
* A count by scanning: EANs typed into the scan field with Enter, a typed correction,
  the variances reviewed, then posted.
"""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import verify_ledger
from saumaton.orders.models import Order
from tests.browser import PHONE, assert_fits, browser, contexts, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_browser import log_in
from tests.test_till_api import open_drawer

__all__ = ["browser", "contexts"]
EUR = "\xa0€"


async def staff_page(contexts: list[BrowserContext], browser: Browser, server: Server,
                     shop: Shop, who: str, path: str, **options: object) -> Page:
    page = await open_page(contexts, browser, **options)
    await page.goto(f"{server.base_url}/staff/login?next={path}")
    await fill_staff_login(page, shop, who)
    await expect(page).to_have_url(f"{server.base_url}{path}")
    return page


async def scanning_ready(page: Page) -> None:
    """The scan field is focused and its queue is listening (before that, Enter is a
    page load and the keys typed meanwhile go to the page being left)."""
    await expect(page.locator("form[data-scan-queue]")).to_have_attribute(
        "data-scan-ready", "true")
    await expect(page.get_by_test_id("scan")).to_be_focused()


async def scan(page: Page, code: str) -> None:
    await scanning_ready(page)  # the page keeps the scan field focused
    await page.keyboard.type(f"{code}\n")


async def on_hand(db: Database, variant_id: int, location_id: int) -> int:
    async with db.reader() as s:
        lv = await s.get(StockLevel, (variant_id, location_id))
    return lv.on_hand if lv else 0


async def test_a_transfer_in_transit_is_sellable_at_neither_end(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.warehouse: 10})
    vid, ean = int(str(v["id"])), str(v["ean"])
    await open_drawer(db, shop.store2)

    # A shopper watches the product page: 10 online (the warehouse), none in Tampere.
    shopper = await open_page(contexts, browser)
    await shopper.goto(f"{server.base_url}/shop/p/{v['product_slug']}?variant={vid}")
    await expect(shopper.get_by_test_id("availability-online")).to_have_text("10")
    await expect(shopper.get_by_test_id("availability-store-2")).to_have_text("0")

    # The owner sends 10 from the warehouse to Tampere by scanning.
    owner = await staff_page(contexts, browser, server, shop, "owner",
                             "/backoffice/stock/transfers/new")
    await scan(owner, ean)
    await expect(owner.get_by_test_id(f"qty-{v['sku']}")).to_have_value("1")
    await owner.keyboard.type(f"{ean}\n{ean}\n")  # faster than a page load: queued
    await expect(owner.get_by_test_id(f"qty-{v['sku']}")).to_have_value("3")
    await scan(owner, "4000000000000")
    await expect(owner.get_by_test_id("error-code")).to_contain_text("4000000000000")
    await owner.get_by_test_id(f"qty-{v['sku']}").fill("10")
    await owner.get_by_test_id("from").select_option(str(shop.warehouse))
    await owner.get_by_test_id("to").select_option(str(shop.store2))
    await owner.get_by_test_id("send").click()
    await expect(owner.get_by_test_id("transfer-status")).to_have_attribute(
        "data-status", "in_transit")
    transfer_url = owner.url.split("?")[0]

    # In transit: gone from the warehouse (the webshop sees it live), not in Tampere.
    await expect(shopper.get_by_test_id("availability-online")).to_have_text("0")
    await shopper.reload()
    await expect(shopper.get_by_test_id("availability-online")).to_have_text("0")
    await expect(shopper.get_by_test_id("availability-store-2")).to_have_text("0")
    assert await on_hand(db, vid, shop.warehouse) == 0
    assert await on_hand(db, vid, shop.store2) == 0

    # Tampere's till: nothing on the shelf, 10 on the way.
    cashier = await open_page(contexts, browser)
    await log_in(cashier, server.base_url, shop, "cashier2")
    await expect(cashier).to_have_url(f"{server.base_url}/pos/store-2")
    await cashier.get_by_test_id("stock-link").click()
    await cashier.get_by_test_id("stock-code").fill(ean)
    await cashier.get_by_test_id("stock-code").press("Enter")
    await expect(cashier.get_by_test_id("till-available")).to_have_text("0")
    await expect(cashier.get_by_test_id("till-in-transit")).to_have_text("10")
    await expect(cashier.get_by_test_id("till-none")).to_be_visible()
    # The levels page agrees: 10 in transit to Tampere.
    await owner.goto(f"{server.base_url}/backoffice/stock?state=in_transit&q={v['sku']}")
    row = owner.get_by_test_id(f"level-{v['sku']}-{shop.store2}")
    await expect(row.get_by_test_id("on-hand")).to_have_text("0")
    await expect(row.get_by_test_id("in-transit")).to_have_text("10")

    # Tampere's manager posts the receipt: 9 arrived (one broken on the way).
    manager = await staff_page(contexts, browser, server, shop, "manager",
                               transfer_url.removeprefix(server.base_url))
    received = manager.get_by_test_id(f"received-{v['sku']}")
    await received.fill("9")
    await expect(manager.get_by_test_id(f"tline-{v['sku']}")).to_have_class("difference")
    await manager.get_by_test_id("receive-note").fill("yksi rikki")
    await manager.get_by_test_id("receive").click()
    await expect(manager.get_by_test_id("transfer-status")).to_have_attribute(
        "data-status", "received")
    await expect(manager.get_by_test_id(f"difference-{v['sku']}")).to_have_text("-1")

    # Now on Tampere's shelf: the webshop offers them for pickup there, the till sells.
    await expect(shopper.get_by_test_id("availability-store-2")).to_have_text("9")
    await cashier.get_by_test_id("stock-code").fill(ean)
    await cashier.get_by_test_id("stock-find").click()
    await expect(cashier.get_by_test_id("till-available")).to_have_text("9")
    await expect(cashier.get_by_test_id("till-in-transit")).to_have_text("0")
    await cashier.goto(f"{server.base_url}/pos/store-2")
    await expect(cashier.locator("#till[data-ready='1']")).to_have_count(1)
    code = cashier.get_by_test_id("code-input")
    await expect(code).to_be_focused()
    await code.press_sequentially(ean)
    await code.press("Enter")
    await expect(cashier.get_by_test_id("total")).to_have_text(f"24,90{EUR}")
    await cashier.get_by_test_id("pay-cash").click()
    await expect(cashier.get_by_test_id("receipt")).to_be_visible()
    await expect(shopper.get_by_test_id("availability-store-2")).to_have_text("8")
    assert await on_hand(db, vid, shop.store2) == 8
    async with db.reader() as s:
        flags = (await s.scalars(select(Order.flags).where(Order.location_id == shop.store2)
                                 .order_by(Order.id.desc()).limit(1))).one()
        assert "negative_stock" not in (flags or "")
        assert await verify_ledger(s) == []


async def test_a_count_by_scanning_with_the_variances_reviewed(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1500], stock={shop.store1: 3})
    manager = await staff_page(contexts, browser, server, shop, "manager1",
                               "/backoffice/stock/counts", viewport=PHONE)  # a phone
    await assert_fits(manager)
    await manager.get_by_test_id("count-location").select_option(str(shop.store1))
    await manager.get_by_test_id("count-open").click()  # no scope, not the whole store
    await expect(manager.get_by_test_id("error-scope")).to_be_visible()
    await expect(manager.get_by_test_id("count-scope")).to_have_attribute("aria-invalid",
                                                                          "true")
    await manager.get_by_test_id("count-scope").fill("hylly A3")
    await manager.get_by_test_id("count-open").click()
    await expect(manager.get_by_test_id("scan-form")).to_be_visible()
    # Scan a twice, b four times (a scanner types the EAN and Enter), as fast as the
    # keyboard goes: the scans queue up and none is lost.
    await scanning_ready(manager)
    await manager.keyboard.type("".join(f"{code}\n" for code in [
        a["ean"], b["ean"], b["ean"], a["ean"], b["ean"], b["ean"]]))
    await expect(manager.get_by_test_id("notice")).to_contain_text(f"{b['sku']}) × 4")
    await expect(manager.get_by_test_id(f"set-{a['sku']}")).to_have_value("2")
    await expect(manager.get_by_test_id(f"set-{b['sku']}")).to_have_value("4")
    await scan(manager, "123")
    await expect(manager.get_by_test_id("error-code")).to_contain_text("123")
    # One b was from another shelf: typed over.
    await manager.get_by_test_id(f"set-{b['sku']}").fill("3")
    await manager.get_by_test_id(f"save-{b['sku']}").click()
    await expect(manager.get_by_test_id(f"set-{b['sku']}")).to_have_value("3")
    await manager.get_by_test_id("review").click()
    row_a = manager.get_by_test_id(f"variance-{a['sku']}")
    await expect(row_a.get_by_test_id("expected")).to_have_text("3")
    await expect(row_a.get_by_test_id("counted")).to_have_text("2")
    await expect(row_a.get_by_test_id("variance")).to_have_text("-1")
    await expect(manager.get_by_test_id(f"variance-{b['sku']}").get_by_test_id(
        "variance")).to_have_text("0")
    assert await on_hand(db, int(str(a["id"])), shop.store1) == 3  # nothing posted yet
    await manager.get_by_test_id("post-count").click()
    await expect(manager.get_by_test_id("count-status")).to_have_attribute("data-status",
                                                                           "posted")
    await assert_fits(manager)
    for path in ("/backoffice/stock", "/backoffice/stock/receive",
                 "/backoffice/stock/transfers/new", f"/backoffice/stock/variants/{a['id']}"):
        await manager.goto(f"{server.base_url}{path}")
        await assert_fits(manager)
    assert await on_hand(db, int(str(a["id"])), shop.store1) == 2
    assert await on_hand(db, int(str(b["id"])), shop.store1) == 3
