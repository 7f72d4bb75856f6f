"""The customer timeline live, in a real headless Chromium against a real server (both
databases). The issue's test: the note written in the service desk is visible in the POS
customer card without a reload — and so is a note written at another till, a sale, and
an NPS answer."""

from __future__ import annotations

import random
import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.notes import add_note
from saumaton.db.uow import Database
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from saumaton.service.nps import answer_survey, send_survey
from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, make_variants

PHONE = {"width": 375, "height": 740}
AGENT = Actor(label="staff:test agent", name="Sari Service",
              grants=(RoleGrant("service", None),))



async def staff_log_in(page: Page, base_url: str, shop: Shop, who: str) -> None:
    await page.goto(f"{base_url}/staff/login?next=%2Fpos%2Fstore-1%2Fcustomers")
    await fill_staff_login(page, shop, who)
    await expect(page.get_by_test_id("cashier")).to_be_visible()


async def test_a_note_from_the_service_desk_appears_in_the_till_card_without_reload(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    phone = f"+35840{random.randrange(10**7):07d}"
    async with db.uow() as uow:
        c = await quick_create(uow, AGENT, QuickCustomerIn(
            phone=phone, first_name="Liisa", last_name=f"Live{uuid.uuid4().hex[:4]}",
            email=f"live.{uuid.uuid4().hex[:8]}@example.fi", marketing_email=True))
        await uow.commit()

    cashier = await open_page(contexts, browser, viewport=PHONE)
    await staff_log_in(cashier, server.base_url, shop, "cashier1")
    await cashier.goto(f"{server.base_url}/pos/store-1/customers/{c.id}")
    card = cashier.get_by_test_id("customer-card")
    tl = card.get_by_test_id("timeline")
    await expect(tl).to_have_attribute("data-live", "ready")
    await expect(tl.get_by_test_id("timeline-event")).to_have_count(2)  # the consents
    # nothing reloads the page from here on: a marker on the window would be lost
    await cashier.evaluate("window.__sameDocument = true")

    # the service desk (another channel) writes a note
    async with db.uow() as uow:
        await add_note(uow, AGENT, c.id, "Suosii sävyä 2N, herkkä iho.", "service")
        await uow.commit()
    first = tl.get_by_test_id("timeline-event").first
    await expect(first).to_have_attribute("data-kind", "note")
    await expect(first.get_by_test_id("timeline-text")).to_have_text(
        "Suosii sävyä 2N, herkkä iho.")
    await expect(first).to_contain_text("asiakaspalvelu")

    # another cashier, in another browser, writes a note on the same card
    other = await open_page(contexts, browser)
    await staff_log_in(other, server.base_url, shop, "service")
    await other.goto(f"{server.base_url}/pos/store-1/customers/{c.id}")
    await other.get_by_label("Uusi muistiinpano").fill("Toivoo näytteitä.")
    await other.get_by_test_id("note-save").click()
    await expect(other.get_by_test_id("customer-saved")).to_be_visible()
    await expect(first.get_by_test_id("timeline-text")).to_have_text("Toivoo näytteitä.")

    # a purchase and an NPS answer land there too
    [v] = await make_variants(db, [2490], stock={shop.store1: 3})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=c.id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"live-{uuid.uuid4().hex}")
    sale = tl.locator('[data-testid="timeline-event"][data-kind="order"]')
    await expect(sale.get_by_test_id("timeline-number")).to_have_text(order.number)
    await expect(sale.get_by_test_id("timeline-amount")).to_have_text("24,90\xa0€")
    async with db.uow() as uow:
        token = await send_survey(uow, settings, order.id)
        await uow.commit()
    assert token
    async with db.uow() as uow:
        await answer_survey(uow, token, 9, "Kiitos!")
        await uow.commit()
    await expect(tl.get_by_test_id("timeline-event").first).to_have_attribute(
        "data-kind", "nps")
    await expect(tl.get_by_test_id("timeline-event").first).to_contain_text("9 / 10")
    assert await cashier.evaluate("window.__sameDocument") is True
    scroll_width = await cashier.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"]
