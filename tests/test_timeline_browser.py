"""The customer timeline live, in a real headless Chromium against a real server (both
databases). The issue's test: the note written in the service desk is visible in the POS
customer card without a reload — and so is a note written at another till, a sale, and
an NPS answer. And the issue's story: the cashier sees what was asked in yesterday's
chat and reads the whole chat in the card; the webshop's changes (a new chat and its
messages, a consent, a web order cancelled and its money refunded) arrive live."""

from __future__ import annotations

import random
import uuid

import httpx
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.consents import set_consent
from saumaton.customers.notes import add_note
from saumaton.db.uow import Database
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.paytrail.client import PaytrailClient
from saumaton.payments.services import PaymentIn
from saumaton.service.chat import new_visitor_token, post_visitor_message
from saumaton.service.nps import answer_survey, send_survey
from saumaton.staff.services import actor_for_token
from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_timeline import (
    QUESTION,
    cancel_unpaid,
    chat,
    paid_too_late,
    pay_at_paytrail,
    paytrail_simulator,
    refund,
    web_order,
)

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


async def visitor_writes(db: Database, token: str, body: str, customer_id: int) -> None:
    """A signed-in shopper writes in the webshop's chat."""
    async with db.uow() as uow:
        await post_visitor_message(uow, token, body, None, page="/shop/p/silk-foundation",
                                   customer_id=customer_id)
        await uow.commit()


async def web_order_lives(tl: Locator, db: Database, shop: Shop, settings: Settings,
                          paytrail: tuple[PaytrailClient, httpx.AsyncClient],
                          customer_id: int) -> None:
    """A web order on the open timeline: placed, cancelled unpaid, paid too late, the
    money paid back — each step shows without a reload."""
    order = await web_order(db, shop, settings, customer_id)
    placed = tl.locator('[data-testid="timeline-event"][data-kind="order"]').filter(
        has_text=order.number)
    await expect(placed.get_by_test_id("timeline-status")).to_have_text("odottaa maksua")
    attempt = await pay_at_paytrail(db, settings, paytrail, order)
    await cancel_unpaid(db, order)
    await expect(placed.get_by_test_id("timeline-status")).to_have_text("peruttu")
    await paid_too_late(db, settings, order, attempt)
    money = tl.locator('[data-testid="timeline-event"][data-kind="refund"]').filter(
        has_text=order.number)
    await expect(money).to_contain_text("maksetaan takaisin")
    await refund(db, settings, paytrail)
    await expect(money).to_contain_text("maksettu takaisin")

async def test_the_cashier_reads_yesterdays_chat_and_the_webshop_changes_arrive_live(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    async with db.uow() as uow:
        c = await quick_create(uow, AGENT, QuickCustomerIn(
            phone=f"+35840{random.randrange(10**7):07d}", first_name="Anna",
            last_name=f"Chat{uuid.uuid4().hex[:4]}", marketing_email=False))
        await uow.commit()
    async with db.reader() as s:
        agent = await actor_for_token(s, shop.tokens["service"])
    yesterday = await chat(db, c.id, [("visitor", QUESTION),
                                      ("agent", "Sopii hyvin: 2N on hajusteeton.")],
                           staff_id=agent.staff_id)

    # the next day at the till: what was asked, and the whole chat, in the card
    cashier = await open_page(contexts, browser, viewport=PHONE)
    await staff_log_in(cashier, server.base_url, shop, "cashier1")
    await cashier.goto(f"{server.base_url}/pos/store-1/customers/{c.id}")
    tl = cashier.get_by_test_id("customer-card").get_by_test_id("timeline")
    await expect(tl).to_have_attribute("data-live", "ready")
    chats = tl.locator('[data-testid="timeline-event"][data-kind="chat_started"]')
    await expect(chats).to_have_count(1)
    await expect(chats.get_by_test_id("timeline-text")).to_contain_text(
        "Sopiiko Silk-meikkivoiteen sävy 2N herkälle iholle?")
    await expect(chats.get_by_test_id("timeline-count")).to_have_text("2 viestiä")
    await chats.get_by_text("Näytä viestit").click()
    old_chat = tl.locator(f"#tl-chat-{yesterday}")
    await expect(old_chat.get_by_test_id("timeline-message-body")).to_have_text(
        [" ".join(QUESTION.split()), "Sopii hyvin: 2N on hajusteeton."],
        use_inner_text=True)
    await expect(old_chat.get_by_test_id("timeline-message").nth(1)).to_contain_text(
        agent.name)
    await cashier.evaluate("window.__sameDocument = true")

    # today the customer writes in the webshop's chat: a new chat, live; the one
    # opened stays open through the reload
    token = new_visitor_token()
    await visitor_writes(db, token, "Onko sävyä 2N Helsingin myymälässä?", c.id)
    await expect(chats).to_have_count(2)
    today = chats.first
    await expect(today.get_by_test_id("timeline-count")).to_have_text("1 viesti")
    await expect(old_chat).to_have_attribute("open", "")
    await expect(old_chat.get_by_test_id("timeline-message")).to_have_count(2)
    await today.get_by_text("Näytä viestit").click()
    await expect(today.get_by_test_id("timeline-message")).to_have_count(1)
    await visitor_writes(db, token, "Tulen hakemaan klo 17.", c.id)
    await expect(today.get_by_test_id("timeline-count")).to_have_text("2 viestiä")
    await expect(today.get_by_test_id("timeline-message-body").last).to_have_text(
        "Tulen hakemaan klo 17.")

    # a consent given in the webshop's account page
    async with db.uow() as uow:
        assert await set_consent(uow, c.id, "marketing_sms", True, "web")
        await uow.commit()
    first = tl.get_by_test_id("timeline-event").first
    await expect(first).to_have_attribute("data-kind", "consent")
    await expect(first).to_contain_text("Salli markkinoinnin tekstiviestillä")

    # a web order: placed, cancelled unpaid, paid too late, the money paid back
    async with paytrail_simulator() as paytrail:
        await web_order_lives(tl, db, shop, settings, paytrail, c.id)
    assert await cashier.evaluate("window.__sameDocument") is True

