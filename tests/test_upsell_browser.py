"""Upsell in a real Chromium against a real server (both databases): the shopper takes
the "Sopii yhteen" add-on on the checkout page with one click, pays, and the owner's
sales report counts it as an add-on sale of the webshop."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton import i18n
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.orders.models import OrderLine
from saumaton.orders.services import business_day
from saumaton.reports.addons import addon_sales
from saumaton.reports.period import Period
from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_checkout_browser import (
    ORDER_URL,
    add_to_cart_and_check_out,
    fill_contact,
    fill_home_delivery,
    new_item,
    number_of,
    submit_checkout,
)
from tests.test_till_api import open_drawer
from tests.test_till_browser import open_till, order_of
from tests.test_upsell import store_sale


async def _web_addons(db: Database, settings: Settings) -> int:
    today = business_day(utcnow())
    async with db.reader() as s:
        rows = await addon_sales(s, Period(today, today), tz=settings.timezone)
    return sum(r.sales_cents for r in rows if r.channel == "Webshop")


async def test_an_add_on_taken_at_the_web_checkout_counts_as_upsell_in_the_reports(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    stock = {shop.warehouse: 5, shop.store1: 5}
    serum = await new_item(db, server.base_url, 2990, stock)
    balm = await new_item(db, server.base_url, 737, stock)
    for _ in range(2):  # bought together at the till
        await store_sale(db, [(serum.id, ""), (balm.id, "")])
    before = await _web_addons(db, settings)

    page = await open_page(contexts, browser)
    await add_to_cart_and_check_out(page, server.base_url, serum)
    block = page.get_by_test_id("suggestions")
    await expect(block).to_contain_text("Sopii yhteen")
    await expect(block.get_by_test_id(f"suggestion-{balm.id}")).to_contain_text("7,37")
    await block.get_by_test_id(f"add-suggestion-{balm.id}").click()  # one click, no JS
    await expect(page).to_have_url(f"{server.base_url}/shop/checkout")
    await expect(page.get_by_test_id("summary")).to_contain_text("37,27")  # 29,90 + 7,37
    await expect(page.get_by_test_id(f"add-suggestion-{balm.id}")).to_have_count(0)
    await fill_contact(page, "lisa.myynti@example.fi")
    await fill_home_delivery(page)
    await submit_checkout(page)
    await page.get_by_label("OP").check()
    await page.locator("#success").click()
    await expect(page).to_have_url(ORDER_URL)
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")
    number = number_of(page.url)
    async with db.reader() as s:
        sources = dict((await s.execute(select(OrderLine.variant_id, OrderLine.source)
                                        .where(OrderLine.order_id == int(number)))).all())
    assert sources == {serum.id: "", balm.id: "upsell"}
    after = await _web_addons(db, settings)
    assert after - before == 737

    owner = await open_page(contexts, browser)
    await owner.goto(f"{server.base_url}/backoffice/reports")
    await fill_staff_login(owner, shop, "owner")
    figure = owner.get_by_test_id("figure-addons")
    await expect(figure).to_contain_text("Lisätuotteet kanavittain")
    table = owner.get_by_test_id("figure-addons-table")
    await expect(table).to_contain_text("Webshop")
    await expect(table).to_contain_text(i18n.money(after, "fi"))


async def test_the_till_offers_an_add_on_and_sells_it_as_upsell(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    [mascara] = await make_variants(db, [2400], stock={shop.store1: 10})
    [remover] = await make_variants(db, [890], stock={shop.store1: 10})
    for _ in range(2):
        await store_sale(db, [(int(str(mascara["id"])), ""), (int(str(remover["id"])), "")])
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    await page.keyboard.type(f"{mascara['ean']}\n")
    addons = page.get_by_test_id("till-addons")
    await expect(addons).to_be_visible()
    await expect(addons).to_contain_text("Sopii yhteen")
    offer = addons.locator(f"[data-variant-id='{remover['id']}']")
    await expect(offer).to_contain_text("Ostetaan usein yhdessä")
    await offer.get_by_test_id("till-addon-add").click()
    await expect(page.get_by_test_id("cart-line")).to_have_count(2)
    await expect(addons).to_be_hidden()  # the one add-on is on the sale now
    await page.get_by_test_id("tendered").fill("40")
    await page.get_by_test_id("pay-cash").click()
    await expect(page.get_by_test_id("receipt")).to_be_visible()
    _, lines, _ = await order_of(page, db)
    assert [(ln.variant_id, ln.source) for ln in lines] == [
        (int(str(mascara["id"])), ""), (int(str(remover["id"])), "upsell")]
