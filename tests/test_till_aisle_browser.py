"""Endless aisle at the till in a real headless Chromium against a real server (both
databases): at the Tampere store the cashier sees every location's stock of a product
(refreshed live when the stock changes elsewhere), sells a line the store does not
have from the warehouse with home delivery and takes the card payment; the receipt says
what is still to come; the order appears in the warehouse's fulfilment queue, is packed
and shipped there, and the customer gets the shipped e-mail. Offline the till says the
line needs the network."""

from __future__ import annotations

import uuid

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.inventory.services import Move, apply_moves
from saumaton.orders.models import Order, OrderLine
from tests.browser import open_page
from tests.support import Server, Shop, make_variants
from tests.test_browser import log_in
from tests.test_fulfilment_browser import eml, sent, staff_page
from tests.test_till_api import open_drawer

EUR = "\xa0€"


async def test_endless_aisle_sale_at_tampere_shipped_from_the_warehouse(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    [here] = await make_variants(db, [1500], stock={shop.store2: 2, shop.warehouse: 3})
    [there] = await make_variants(db, [2900], stock={shop.warehouse: 3})
    await open_drawer(db, shop.store2)
    page = await open_page(contexts, browser)
    await log_in(page, server.base_url, shop, "cashier2")
    await expect(page).to_have_url(f"{server.base_url}/pos/store-2")
    till = page.locator("#till")
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    await expect(page.locator("#till[data-live='1']")).to_have_count(1)

    # Search shows every location's stock; the line view too.
    await page.get_by_test_id("code-input").fill(str(there["sku"]))
    await expect(page.get_by_test_id("suggestion-stock").first).to_have_text(
        "Täällä 0 · Warehouse 3")
    await page.get_by_test_id("code-input").fill("")
    await page.get_by_test_id("code-input").focus()
    await page.keyboard.type(f"{here['ean']}\n{there['ean']}\n")
    lines = page.get_by_test_id("cart-line")
    await expect(lines).to_have_count(2)
    await expect(lines.nth(0).get_by_test_id("line-stock")).to_have_text("Täällä 2 · Warehouse 3")
    await expect(lines.nth(0).get_by_test_id("ship-from")).to_have_count(1)
    await expect(lines.nth(1).get_by_test_id("line-stock")).to_have_text("Täällä 0 · Warehouse 3")
    await expect(page.get_by_test_id("aisle-delivery")).to_be_hidden()

    # Stock received at the warehouse reaches the open till without a reload.
    async with db.uow() as uow:
        await apply_moves(uow, SYSTEM, [Move(int(str(there["id"])), shop.warehouse, 1,
                                             "receipt")])
        await uow.commit()
    await expect(lines.nth(1).get_by_test_id("line-stock")).to_have_text(
        "Täällä 0 · Warehouse 4")

    # Ship the second line from the warehouse to the customer's home.
    await lines.nth(1).get_by_test_id("ship-from").select_option(str(shop.warehouse))
    await expect(lines.nth(1).get_by_test_id("line-to-come")).to_have_text(
        "Tulossa: Warehouse")
    panel = page.get_by_test_id("aisle-delivery")
    await expect(panel).to_be_visible()
    await expect(page.get_by_test_id("aisle-home")).to_be_checked()
    address = f"aisle-{uuid.uuid4().hex[:8]}@example.com"
    await page.get_by_test_id("aisle-email").fill(address)
    await page.get_by_test_id("aisle-name").fill("Aila Asiakas")
    await page.get_by_test_id("aisle-street").fill("Hämeenkatu 1")
    await page.get_by_test_id("aisle-postcode").fill("331")
    await page.get_by_test_id("aisle-city").fill("Tampere")
    await page.get_by_test_id("pay-card").click()
    # A bad postcode is refused next to the field; nothing was sold.
    await expect(page.get_by_test_id("error-aisle")).to_have_text(
        "Suomalaisessa postinumerossa on viisi numeroa.")
    await expect(page.get_by_test_id("aisle-postcode")).to_have_attribute("aria-invalid", "true")
    await page.get_by_test_id("aisle-postcode").fill("33100")
    await page.get_by_test_id("pay-card").click()

    receipt = page.get_by_test_id("receipt")
    await expect(receipt).to_be_visible()
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text(f"44,00{EUR}")
    await expect(receipt.get_by_test_id("to-come-line")).to_have_count(1)
    await expect(receipt.get_by_test_id("to-come-line")).to_contain_text(str(there["name"]))
    await expect(receipt.get_by_test_id("to-come-delivery")).to_contain_text("Hämeenkatu 1")
    order_id = int(await till.get_attribute("data-last-order") or 0)
    async with db.reader() as s:
        order = await s.get(Order, order_id)
        assert order is not None and order.status == "paid"
        assert order.delivery_method == "home" and order.email == address
        placed = [(ln.location_id, ln.taken_at_sale) for ln in (await s.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id)
            .order_by(OrderLine.line_no))).all()]
    assert placed == [(shop.store2, True), (shop.warehouse, False)]
    number = f"{order_id:06d}"
    await sent(db, number, "order_confirmation")

    # The warehouse's fulfilment queue has it: packed and shipped there.
    staff = await staff_page(contexts, browser, server, shop, "manager", "/backoffice/orders")
    await staff.goto(f"{server.base_url}/backoffice/orders?location={shop.warehouse}"
                     "&status=open")
    await staff.get_by_test_id(f"order-open-{number}").click()
    await staff.get_by_test_id("step-packed").click()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Pakattu")
    await staff.get_by_test_id("ship-carrier").fill("Posti")
    await staff.get_by_test_id("ship-tracking_number").fill("JJFI64009876543")
    await staff.get_by_test_id("step-shipped").click()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Lähetetty")
    [shipped] = await sent(db, number, "order_shipped")
    assert shipped.to_addr == address
    message = eml(server, settings, shipped)
    assert message["To"] == address


async def test_offline_the_till_says_aisle_lines_need_the_network(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 2})
    await open_drawer(db, shop.store2)
    context_pages = await open_page(contexts, browser)
    page = context_pages
    await log_in(page, server.base_url, shop, "cashier2")
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    await page.keyboard.type(f"{v['ean']}\n")
    line = page.get_by_test_id("cart-line")
    await line.get_by_test_id("ship-from").select_option(str(shop.warehouse))
    await page.get_by_test_id("aisle-email").fill("offline@example.com")
    await page.context.set_offline(True)
    await expect(page.get_by_test_id("aisle-offline")).to_be_visible()
    await page.get_by_test_id("pay-card").click()
    await expect(page.get_by_test_id("error-payment")).to_have_text(
        "Muualta toimitettavat rivit tarvitsevat verkkoyhteyden. Poista ne myynnistä "
        "tai odota yhteyttä.")
    async with db.reader() as s:
        assert await s.scalar(select(OrderLine.id).where(
            OrderLine.variant_id == v["id"])) is None
    await page.context.set_offline(False)
