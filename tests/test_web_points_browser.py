"""Points earned at the till, spent in the webshop (real Chromium, real server, both
databases): a till sale with the customer attached earns points; the shopper signs in
on the webshop, uses part of them at checkout, pays the rest through the Paytrail
simulator, and the account page shows the right balance."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.loyalty.ledger import balance
from saumaton.payments.models import Payment, PaytrailPayment
from tests.support import Server, Shop
from tests.test_accounts import PASSWORD, new_email, register
from tests.test_checkout_browser import (
    ORDER_URL,
    add_to_cart_and_check_out,
    fill_home_delivery,
    new_item,
    number_of,
    open_page,
    order_of,
    submit_checkout,
)
from tests.test_loyalty import _till_sale


async def test_points_from_the_till_pay_part_of_a_web_order(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    # At the store: a 1 200,00 € purchase with the customer attached earns 1200 points.
    await _till_sale(db, shop, cid, 120000)
    async with db.reader() as s:
        assert await balance(s, cid) == 1200

    page = await open_page(contexts, browser)
    await page.goto(f"{server.base_url}/account/login")
    await page.get_by_label("Sähköposti").fill(email)
    await page.get_by_label("Salasana").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(f"{server.base_url}/account/")
    await expect(page.get_by_test_id("loyalty-points")).to_have_text("1200")

    item = await new_item(db, server.base_url, 1990, {shop.warehouse: 5})
    await add_to_cart_and_check_out(page, server.base_url, item)
    await expect(page.locator("#email")).to_have_value(email.lower())
    await fill_home_delivery(page)
    points = page.get_by_test_id("points")
    await expect(points.get_by_test_id("points-balance")).to_contain_text(
        "Sinulla on 1200 pistettä, arvo 12,00\xa0€")
    # 19,90 + 5,90 delivery = 25,80; 1000 points pay 10,00 of it (the summary follows).
    await page.get_by_label("Käytettävät pisteet").fill("1000")
    await page.get_by_label("Käytettävät pisteet").press("Tab")
    summary = page.get_by_test_id("summary")
    await expect(summary.get_by_test_id("order-total")).to_have_text("25,80\xa0€")
    await expect(summary.get_by_test_id("points-paid")).to_have_text("−10,00\xa0€")
    await expect(summary.get_by_test_id("to-pay")).to_have_text("15,80\xa0€")

    await submit_checkout(page)
    await expect(page.locator("#amount")).to_have_text("15,80 €")  # Paytrail: the rest
    await page.get_by_label("OP").check()
    await page.locator("#success").click()
    await expect(page).to_have_url(ORDER_URL)
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")
    await expect(page.get_by_test_id("points-paid")).to_have_text("−10,00\xa0€")
    await expect(page.get_by_test_id("to-pay")).to_have_text("15,80\xa0€")

    order = await order_of(db, number_of(page.url))
    assert (order.status, order.paid_cents, order.total_cents) == ("paid", 2580, 2580)
    async with db.reader() as s:
        paid = (await s.execute(select(Payment.method, Payment.amount_cents)
                                .where(Payment.order_id == order.id)
                                .order_by(Payment.id))).all()
        assert [(str(m), int(a)) for m, a in paid] == [("points", 1000), ("paytrail", 1580)]
        assert await s.scalar(select(PaytrailPayment.amount_cents)
                              .where(PaytrailPayment.order_id == order.id)) == 1580
        # 200 left + 9 earned on the goods paid with money (19,90 - 10,00)
        assert await balance(s, cid) == 209

    await page.goto(f"{server.base_url}/account/")
    await expect(page.get_by_test_id("loyalty-points")).to_have_text("209")
    await expect(page.get_by_test_id("loyalty-points-value")).to_have_text("(2,09\xa0€)")
