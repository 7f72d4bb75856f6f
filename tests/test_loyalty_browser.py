"""Loyalty in a real headless Chromium against a real server (both databases).

The issue's scenario at the till: a shopper with an account shows their loyalty card
(the account page's number); the purchase earns points. At the next purchase the
cashier attaches them again, the card shows the balance, "Pisteet" pays part of the
sale with the points and cash pays the rest. The balance on the shopper's account page
is the ledger's."""

from __future__ import annotations

import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers import accounts
from saumaton.customers.card import account_card
from saumaton.customers.models import CustomerAccount
from saumaton.db.uow import Database
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.ledger import balance
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.orders.models import Order
from saumaton.payments.models import Payment
from saumaton.tills.drawer import open_session
from tests.browser import WAIT_MS, fill_staff_login
from tests.support import Server, Shop, make_variants

EUR = "\xa0€"
PASSWORD = "vihreä kettu hyppää"



async def open_page(contexts: list[BrowserContext], browser: Browser) -> Page:
    context = await browser.new_context(locale="fi-FI", viewport={"width": 375, "height": 740})
    context.set_default_timeout(WAIT_MS)
    contexts.append(context)
    return await context.new_page()


async def staff_log_in(page: Page, base_url: str, shop: Shop, who: str) -> None:
    await page.goto(f"{base_url}/pos/")
    await fill_staff_login(page, shop, who)
    await expect(page.get_by_test_id("cashier")).to_be_visible()


async def shopper_with_card(db: Database, settings: Settings) -> tuple[int, str, str]:
    """A registered, confirmed shopper and their loyalty card number."""
    email = f"loyal.{uuid.uuid4().hex[:8]}@example.fi"
    async with db.uow() as uow:
        customer_id = await accounts.register(
            uow, email=email, password=PASSWORD, first_name="Liisa", last_name="Pisteinen",
            marketing_email=False, lang="fi", base_url="https://kauppa.example",
            settings=settings)
        await uow.session.execute(update(CustomerAccount).where(
            CustomerAccount.customer_id == customer_id).values(email_verified_at=utcnow()))
        await uow.commit()
    card = await account_card(db, customer_id)
    assert card is not None
    return customer_id, email, card


async def own_store(db: Database) -> str:
    """A store of this test's own with its drawer open (the shared stores' drawers are
    other tests')."""
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        store = Location(code=f"ly-{tag}", name=f"Store {tag}", kind="store",
                         sells_in_person=True, ships_web_orders=False, pickup_point=False,
                         web_priority=100)
        uow.session.add(store)
        await uow.session.flush()
        uow.session.add(Channel(code=f"pos-{tag}", kind="pos", name=f"POS {tag}",
                                location_id=store.id))
        await uow.session.flush()
        uow.emit("settings.changed", {"keys": ["locations"]})  # processes' copies
        await open_session(uow, SYSTEM, store.id, 10000, f"open-{tag}")
        await uow.commit()
    return store.code


async def attach(page: Page, card: str) -> None:
    await page.get_by_test_id("customer-q").fill(card)
    await page.get_by_test_id("customer-q").press("Enter")
    panel = page.get_by_test_id("customer-panel")
    await expect(panel.get_by_test_id("customer-card-number")).to_have_text(card)


async def last_order(page: Page, db: Database) -> tuple[Order, list[Payment]]:
    order_id = int(await page.locator("#till").get_attribute("data-last-order") or 0)
    async with db.reader() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        payments = list((await s.scalars(select(Payment).where(Payment.order_id == order_id)
                                         .order_by(Payment.id))).all())
    return order, payments


async def test_points_earned_at_the_till_pay_part_of_the_next_sale(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    customer_id, email, card = await shopper_with_card(db, settings)
    store = await own_store(db)
    a, b = await make_variants(db, [6000, 1234])
    till = await open_page(contexts, browser)
    await staff_log_in(till, server.base_url, shop, "manager")
    await till.goto(f"{server.base_url}/pos/{store}")
    await expect(till.get_by_test_id("code-input")).to_be_focused()

    # First visit: a new member, no points yet; the purchase earns 60.
    await till.keyboard.type(f"{a['ean']}\n")
    await expect(till.get_by_test_id("total")).to_have_text(f"60,00{EUR}")
    await attach(till, card)
    panel = till.get_by_test_id("customer-panel")
    await expect(panel.get_by_test_id("loyalty-points")).to_have_text("0")
    await expect(panel.get_by_test_id("loyalty-tier")).to_have_text("Jäsen")
    await panel.get_by_test_id("attach-customer").click()
    await expect(till.get_by_test_id("sale-customer")).to_contain_text("Liisa Pisteinen")
    await expect(till.get_by_test_id("pay-points")).to_have_count(0)  # nothing to spend
    await till.get_by_test_id("pay-card").click()
    await expect(till.get_by_test_id("receipt")).to_be_visible()
    first, _ = await last_order(till, db)
    assert first.customer_id == customer_id and first.total_cents == 6000
    async with db.reader() as s:
        assert await balance(s, customer_id) == 60

    # Next visit: 60 points (0,60 €) pay part of 12,34 €; cash pays the rest.
    await till.get_by_test_id("new-sale").click()
    await till.keyboard.type(f"{b['ean']}\n")
    await expect(till.get_by_test_id("total")).to_have_text(f"12,34{EUR}")
    await attach(till, card)
    await expect(panel.get_by_test_id("loyalty-points")).to_have_text("60")
    await expect(panel.get_by_test_id("loyalty-spend")).to_have_text(f"60,00{EUR}")
    await panel.get_by_test_id("attach-customer").click()
    points = till.get_by_test_id("pay-points")
    await expect(till.get_by_test_id("points-balance")).to_contain_text("60")
    await expect(points).to_have_text("Pisteet")
    await points.click()
    await expect(till.get_by_test_id("points-used")).to_contain_text(f"0,60{EUR}")
    await expect(till.get_by_test_id("cash-due")).to_have_text(f"11,75{EUR}")
    await till.get_by_test_id("tendered").fill("20")
    await expect(till.get_by_test_id("change")).to_have_text(f"8,25{EUR}")
    await till.get_by_test_id("pay-cash").click()
    await expect(till.get_by_test_id("receipt")).to_be_visible()
    second, payments = await last_order(till, db)
    assert second.customer_id == customer_id and second.total_cents == 1234
    assert [(p.method, p.amount_cents, p.rounding_cents, p.change_cents) for p in payments] == [
        ("points", 60, 0, 0), ("cash", 1174, 1, 825)]
    async with db.reader() as s:
        entries = [(e.kind, e.points) for e in (await s.scalars(
            select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id)
            .order_by(LoyaltyEntry.id))).all()]
        assert entries == [("earn", 60), ("redeem", -60), ("earn", 11)]
        left = await balance(s, customer_id)
    assert left == 11

    # The till's customer card shows the new balance.
    await till.get_by_test_id("new-sale").click()
    await attach(till, card)
    await expect(panel.get_by_test_id("loyalty-points")).to_have_text(str(left))

    # The shopper's account page shows the same balance.
    shopper = await open_page(contexts, browser)
    await shopper.goto(f"{server.base_url}/account/login")
    form = shopper.get_by_test_id("login-form")  # (the page's chat has an e-mail too)
    await form.get_by_label("Sähköposti").fill(email)
    await form.get_by_label("Salasana").fill(PASSWORD)
    await shopper.get_by_test_id("login-submit").click()
    await expect(shopper.get_by_test_id("profile-name")).to_have_text("Liisa Pisteinen")
    mine = shopper.get_by_test_id("account-loyalty")
    await expect(mine.get_by_test_id("loyalty-points")).to_have_text(str(left))
    await expect(mine.get_by_test_id("loyalty-tier")).to_have_text("Jäsen")
