"""Member prices at the till in a real headless Chromium against a real server (both
databases): the line shows everyone's price until the cashier attaches a member, then
the member price at once (from the till's own catalogue snapshot, no round trip and no
"prices have changed" detour); detaching takes it back; the sale is charged the member
price. The webshop shows the same member the same price."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.config import Settings
from saumaton.db.uow import Database
from tests.support import Server, Shop, make_variants
from tests.test_loyalty_browser import (
    EUR,
    PASSWORD,
    attach,
    last_order,
    open_page,
    own_store,
    shopper_with_card,
    staff_log_in,
)
from tests.test_member_prices import member_campaign


async def test_attaching_a_member_shows_the_member_price_at_once(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    customer_id, email, card = await shopper_with_card(db, settings)
    store = await own_store(db)
    [v] = await make_variants(db, [3000])
    await member_campaign(db, int(str(v["id"])), 550, "member", name="Jäsenpäivät")
    till = await open_page(contexts, browser)
    await staff_log_in(till, server.base_url, shop, "manager")
    await till.goto(f"{server.base_url}/pos/{store}")
    await expect(till.get_by_test_id("code-input")).to_be_focused()

    await till.keyboard.type(f"{v['ean']}\n")
    await expect(till.get_by_test_id("total")).to_have_text(f"30,00{EUR}")
    await expect(till.get_by_test_id("line-campaign")).to_have_count(0)

    await attach(till, card)
    await till.get_by_test_id("customer-panel").get_by_test_id("attach-customer").click()
    await expect(till.get_by_test_id("total")).to_have_text(f"24,50{EUR}")
    await expect(till.get_by_test_id("line-campaign")).to_have_text(
        f"−5,50{EUR} · Jäsenpäivät · jäsenhinta")

    # Detached: everyone's price again; attached again: the member's.
    await till.get_by_test_id("remove-customer").click()
    await expect(till.get_by_test_id("total")).to_have_text(f"30,00{EUR}")
    await attach(till, card)
    await till.get_by_test_id("customer-panel").get_by_test_id("attach-customer").click()
    await expect(till.get_by_test_id("total")).to_have_text(f"24,50{EUR}")

    await till.get_by_test_id("pay-card").click()
    await expect(till.get_by_test_id("receipt")).to_be_visible()
    await expect(till.get_by_test_id("price-changed")).to_be_hidden()
    order, payments = await last_order(till, db)
    assert order.customer_id == customer_id and order.total_cents == 2450
    assert [(p.method, p.amount_cents) for p in payments] == [("card", 2450)]

    # The same member in the webshop: the same price on the product page.
    shopper = await open_page(contexts, browser)
    await shopper.goto(f"{server.base_url}/account/login")
    form = shopper.get_by_test_id("login-form")
    await form.get_by_label("Sähköposti").fill(email)
    await form.get_by_label("Salasana").fill(PASSWORD)
    await shopper.get_by_test_id("login-submit").click()
    await expect(shopper.get_by_test_id("profile-name")).to_be_visible()
    await shopper.goto(f"{server.base_url}/shop/p/{v['product_slug']}")
    await expect(shopper.get_by_test_id("price")).to_have_text(f"24,50{EUR}")
    await expect(shopper.get_by_test_id("member-price")).to_have_text("Jäsenhinta")
