"""A gift card in a real headless Chromium against a real server (both databases): sold
at the Helsinki till (code and QR on the receipt), spent partly in the webshop (it pays
the whole order: no Paytrail step) and the rest at the Tampere till, whose offline
moment refuses gift cards clearly and keeps selling the rest."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select, update

from saumaton.db.uow import Database
from saumaton.giftcards import ledger
from saumaton.orders.models import Order
from saumaton.tills.models import DrawerSession, Register
from tests.browser import open_page
from tests.support import Server, Shop, make_variants
from tests.test_browser import log_in
from tests.test_checkout_browser import (
    ORDER_URL,
    Item,
    add_to_cart_and_check_out,
    fill_contact,
    fill_home_delivery,
    number_of,
    order_of,
)
from tests.test_till_api import open_drawer

EUR = "\xa0€"


async def open_till(page: Page, server: Server, shop: Shop, who: str, store: str) -> None:
    await log_in(page, server.base_url, shop, who)
    await expect(page).to_have_url(f"{server.base_url}/pos/{store}")
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    await expect(page.get_by_test_id("code-input")).to_be_focused()


async def test_gift_card_sold_at_a_till_is_spent_online_and_at_the_other_store(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    [gc] = await make_variants(db, [5000], gift_card=True)
    [cream] = await make_variants(db, [3000], stock={shop.warehouse: 5})
    [lip] = await make_variants(db, [2000], stock={shop.store2: 5})
    await open_drawer(db, shop.store1)

    # Helsinki: the cashier scans the gift card and takes 50 € in cash.
    till = await open_page(contexts, browser)
    await open_till(till, server, shop, "cashier1", "store-1")
    await till.keyboard.type(f"{gc['ean']}\n")
    await expect(till.get_by_test_id("total")).to_have_text(f"50,00{EUR}")
    await till.get_by_test_id("pay-cash").click()
    receipt = till.get_by_test_id("receipt")
    await expect(receipt.get_by_test_id("gift-card-code")).to_be_visible()
    await expect(receipt.locator(".gift-card svg")).to_have_count(1)  # the QR
    printed = await receipt.get_by_test_id("gift-card-code").inner_text()
    code = printed.replace(" ", "")
    assert ledger.clean_code(code) == code

    # The webshop: the card pays the whole order (30,00 + 5,90 delivery).
    shopper = await open_page(contexts, browser)
    item = Item(int(str(cream["id"])), str(cream["sku"]),
                f"{server.base_url}/shop/p/{cream['product_slug']}?variant={cream['id']}")
    await add_to_cart_and_check_out(shopper, server.base_url, item)
    await fill_contact(shopper, "lahja@example.fi")
    await fill_home_delivery(shopper)
    await shopper.get_by_test_id("gift-card-code").fill("1234")
    await shopper.get_by_test_id("pay").click()
    await expect(shopper.get_by_test_id("error-gift-card")).to_have_text(
        "Lahjakortin koodissa on 16 numeroa. Tarkista koodi.")
    await shopper.get_by_test_id("gift-card-code").fill(printed)
    await shopper.get_by_test_id("pay").click()
    await expect(shopper).to_have_url(ORDER_URL)  # no Paytrail step
    await expect(shopper.get_by_test_id("order-status")).to_have_attribute("data-status",
                                                                          "paid")
    order = await order_of(db, number_of(shopper.url))
    assert (order.status, order.paid_cents, order.total_cents) == ("paid", 3590, 3590)
    await shopper.goto(f"{server.base_url}/shop/gift-card?code={code}")
    await expect(shopper.get_by_test_id("balance")).to_have_text(f"14,10{EUR}")

    # Tampere: the card pays what is left, the rest in cash.
    try:
        await open_drawer(db, shop.store2)
        other = await open_page(contexts, browser)
        await open_till(other, server, shop, "cashier2", "store-2")
        # Offline the till says gift cards need the network and keeps selling the rest.
        await other.context.set_offline(True)
        await other.keyboard.type(f"{gc['ean']}\n")
        await expect(other.get_by_test_id("error-code")).to_have_text(
            "Lahjakortin voi myydä vain verkkoyhteyden ollessa päällä: sen koodi tulee "
            "palvelimelta.")
        await other.keyboard.type(f"{lip['ean']}\n")
        await expect(other.get_by_test_id("gift-info")).to_have_text(
            "Lahjakortit tarvitsevat verkkoyhteyden. Ota maksu muulla tavalla – kaiken muun "
            "voi myydä normaalisti.")
        await expect(other.get_by_test_id("gift-code")).to_be_disabled()
        await expect(other.get_by_test_id("cart-line")).to_have_count(1)
        await other.context.set_offline(False)
        await expect(other.get_by_test_id("gift-code")).to_be_enabled()
        await other.get_by_test_id("code-input").focus()
        await expect(other.get_by_test_id("total")).to_have_text(f"20,00{EUR}")
        await other.keyboard.type(f"{printed}\n")  # the card's QR, scanned
        await expect(other.get_by_test_id("gift-info")).to_contain_text(f"14,10{EUR}")
        await expect(other.get_by_test_id("cash-due")).to_have_text(f"5,90{EUR}")
        await other.get_by_test_id("pay-cash").click()
        receipt = other.get_by_test_id("receipt")
        await expect(receipt.get_by_test_id("gift-card-paid")).to_have_text(f"14,10{EUR}")
        await expect(receipt.get_by_test_id("cash-paid")).to_have_text(f"5,90{EUR}")
        assert code not in await receipt.inner_text()
    finally:  # other till tests expect the Tampere till closed
        async with db.uow() as uow:
            till_sessions = select(DrawerSession.id).join(
                Register, Register.id == DrawerSession.register_id).where(
                Register.active, DrawerSession.location_id == shop.store2,
                DrawerSession.status == "open")
            await uow.session.execute(update(DrawerSession).where(
                DrawerSession.id.in_(till_sessions)).values(status="closed"))
            await uow.commit()
    async with db.reader() as s:
        card = await ledger.card_by_code(s, code)
        spends = [(e.kind, e.amount_cents) for e in await ledger.entries(s, card.id)]
        assert await s.get(Order, order.id) is not None
    assert card.balance_cents == 0
    assert spends == [("spend", -1410), ("spend", -3590), ("issue", 5000)]
