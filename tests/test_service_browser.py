"""The service desk in a real headless Chromium against a real server (both databases).

The issue's scenario with a shopper page and an agent page in two browser contexts: the
visitor opens the chat and asks whether a foundation shade suits them; the agent sees it
live, the visitor gives their e-mail, the agent is warned that it is a customer's address
but not verified and links the customer (then the card shows), answers (with a canned
answer), the visitor sees the answer without reloading, reloads and the history is still
there; the agent adds the note "prefers shade 2N, sensitive skin" and it is on the
customer's card. And the offline form when no agent is online, the agent's answer to it
going by e-mail, and the staff board in the desk.
"""

from __future__ import annotations

import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.core.actor import SYSTEM
from saumaton.customers.card import customer_card
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.service import canned
from saumaton.service.models import Conversation
from tests.browser import assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop

PHONE = {"width": 375, "height": 740}
DESK = {"width": 1280, "height": 900}



async def agent_desk(page: Page, base_url: str, shop: Shop, who: str = "service") -> None:
    """Log in and open /service; returns when the page is live and the agent online."""
    await page.goto(f"{base_url}/service")
    await expect(page).to_have_url(f"{base_url}/staff/login?next=%2Fservice")
    await fill_staff_login(page, shop, who)
    desk = page.get_by_test_id("service-desk")
    await expect(desk).to_have_attribute("data-live", "1")
    await expect(desk).to_have_attribute("data-present", "1")


async def test_offline_form_when_no_agent_is_online(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    visitor = await open_page(contexts, browser, viewport=PHONE)
    await visitor.goto(f"{server.base_url}/shop/")
    await visitor.get_by_role("button", name="Kysy meiltä").click()
    form = visitor.get_by_test_id("chat-offline-form")
    await expect(form).to_be_visible()
    await expect(visitor.get_by_test_id("chat-input")).to_be_hidden()
    await assert_fits(visitor)

    # Nothing filled in: the error is next to the name, and the name has the focus.
    await visitor.get_by_test_id("chat-off-send").click()
    name = visitor.get_by_label("Nimi")
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(name).to_have_attribute("aria-describedby", "chat-off-name-error")
    await expect(visitor.locator("#chat-off-name-error")).to_have_text("Kerro nimesi.")
    await expect(name).to_be_focused()

    email = f"liisa.{uuid.uuid4().hex[:8]}@example.fi"
    await name.fill("Liisa Laine")
    await visitor.get_by_test_id("chat-off-email").fill(email)
    await visitor.get_by_label("Viesti", exact=True).fill("Onko Silk-meikkivoidetta sävyssä 3W?")
    await visitor.get_by_test_id("chat-off-send").click()
    await expect(visitor.get_by_test_id("chat-offline-sent")).to_be_visible()

    async with db.reader() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.email == email))
        assert conv is not None and conv.offline_message and conv.name == "Liisa Laine"
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.reference == f"conversation:{conv.id}"))
    assert mail is not None and "Onko Silk-meikkivoidetta sävyssä 3W?" in mail.body_text

    # It waits in the agents' queue, marked as left offline.
    agent = await open_page(contexts, browser, viewport=PHONE)  # the desk works on a phone
    await agent_desk(agent, server.base_url, shop)
    item = agent.locator(f'[data-testid="conversation"][data-conversation-id="{conv.id}"]')
    await expect(item.get_by_test_id("offline-tag")).to_be_visible()
    await expect(item.get_by_test_id("conversation-label")).to_have_text("Liisa Laine")
    await assert_fits(agent)
    await item.get_by_role("link").click()
    await expect(agent.get_by_test_id("message-body")).to_have_text(
        ["Onko Silk-meikkivoidetta sävyssä 3W?"])
    await expect(agent.get_by_test_id("visitor-email")).to_have_text(email)
    await assert_fits(agent)

    # The answer goes by e-mail too (the visitor's widget never shows this chat again).
    await expect(agent.get_by_test_id("reply-by-email")).to_contain_text(email)
    await agent.get_by_test_id("reply-input").fill("On, tilaamme sitä ensi viikolla.")
    await agent.get_by_test_id("reply-send").click()
    mailed = agent.locator('[data-testid="message"][data-sender="agent"]')
    await expect(mailed.get_by_test_id("message-body")).to_have_text(
        "On, tilaamme sitä ensi viikolla.")
    await expect(mailed.get_by_test_id("message-mail")).to_have_text(
        f"Lähetetty sähköpostilla ({email})")
    async with db.reader() as s:
        answer = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.kind == "service_reply", OutgoingMail.to_addr == email))
    assert answer is not None and "On, tilaamme sitä ensi viikolla." in answer.body_text
    assert answer.body_text.startswith("Hei Liisa,")
    await assert_fits(agent)

    # The staff board is one click away in the desk's header.
    await agent.get_by_test_id("board-link").click()
    await expect(agent).to_have_url(f"{server.base_url}/service/board")
    await expect(agent.get_by_test_id("board")).to_be_visible()
    await expect(agent.get_by_role("heading", level=1)).to_have_text("Henkilökunnan taulu")
    await assert_fits(agent)
    # The agent leaves: the next visitor gets the offline form again.
    await agent.goto("about:blank")
    visitor2 = await open_page(contexts, browser, viewport=PHONE)
    await visitor2.goto(f"{server.base_url}/shop/")
    await visitor2.get_by_role("button", name="Kysy meiltä").click()
    await expect(visitor2.get_by_test_id("chat-offline-form")).to_be_visible()


async def test_chat_between_a_shopper_and_an_agent(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    tag = uuid.uuid4().hex[:8]
    email = f"anna.{tag}@example.fi"
    async with db.uow() as uow:
        anna = await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Anna", last_name="Virtanen", email=email))
        answer = await canned.create_canned(
            uow, SYSTEM, f"Sävyneuvonta {tag}",
            "Sävy 2N on neutraali ja sopii herkälle iholle.")
        await uow.commit()

    agent = await open_page(contexts, browser, viewport=DESK)
    await agent_desk(agent, server.base_url, shop)

    visitor = await open_page(contexts, browser, viewport=PHONE)
    await visitor.goto(f"{server.base_url}/shop/")
    await visitor.get_by_role("button", name="Kysy meiltä").click()
    question = f"Sopiiko meikkivoiteen sävy 2N minulle? ({tag})"
    box = visitor.get_by_label("Viestisi")
    await expect(box).to_be_focused()
    await box.fill(question)
    await box.press("Enter")
    log = visitor.get_by_test_id("chat-log")
    await expect(log).to_have_attribute("aria-live", "polite")
    mine = log.locator('[data-testid="chat-message"][data-sender="visitor"]')
    await expect(mine.get_by_test_id("chat-message-body")).to_have_text(question)
    await assert_fits(visitor)

    # The agent sees the question arrive in the queue without reloading.
    item = agent.get_by_test_id("conversation").filter(has_text=question)
    await expect(item.get_by_test_id("unassigned-tag")).to_be_visible()
    # Open it by its link's address: the list is swapped again by the next live event
    # (the message after the conversation), and a click that lands on the old list as
    # it is replaced goes nowhere.
    href = await item.get_by_role("link").get_attribute("href")
    assert href
    await agent.goto(server.base_url + href if href.startswith("/") else href)
    await expect(agent.get_by_test_id("message-body")).to_have_text([question])
    await expect(agent.get_by_test_id("not-linked")).to_be_visible()
    await expect(agent.get_by_test_id("service-desk")).to_have_attribute("data-live", "1")

    # The visitor tells their e-mail. It is Anna's address, but anyone could type it:
    # the agent is warned, and sees her card only after linking her.
    await visitor.get_by_test_id("chat-email").fill(email.upper())
    await visitor.get_by_test_id("chat-email-send").click()
    await expect(visitor.get_by_test_id("chat-status")).to_have_text(
        "Kiitos! Nyt tunnistamme sinut.")
    await expect(visitor.get_by_test_id("chat-identify")).to_be_hidden()
    warning = agent.get_by_test_id("email-unverified")
    await expect(warning).to_contain_text("Sähköposti annettu, ei varmistettu")
    await expect(warning).to_contain_text("Anna Virtanen")
    await expect(agent.get_by_test_id("conversation-title")).to_have_text(email)
    card = agent.get_by_test_id("customer-card")
    await expect(card).to_have_count(0)
    await expect(agent.get_by_test_id("timeline")).to_have_count(0)
    await warning.get_by_role("button", name="Liitä tähän asiakkaaseen").click()
    await expect(card.get_by_test_id("customer-name")).to_have_text("Anna Virtanen")
    await expect(agent.get_by_test_id("service-desk")).to_have_attribute("data-live", "1")
    await expect(card.get_by_test_id("customer-email")).to_have_text(email)
    await expect(agent.get_by_test_id("conversation-title")).to_have_text("Anna Virtanen")
    # Beside the card, the customer's timeline shows this chat.
    await expect(agent.get_by_test_id("timeline")).to_be_visible()

    # The agent answers with a canned answer, a word added.
    await agent.get_by_test_id("canned-select").select_option(label=answer.title)
    reply = agent.get_by_test_id("reply-input")
    await expect(reply).to_have_value(answer.body)
    await expect(reply).to_be_focused()
    await reply.press("End")
    await reply.type(" Tervetuloa kokeilemaan!")
    full = answer.body + " Tervetuloa kokeilemaan!"
    await agent.get_by_test_id("reply-send").click()
    await expect(agent.get_by_test_id("message-body")).to_have_text([question, full])
    await expect(agent.get_by_test_id("reply-input")).to_have_value("")

    # The visitor sees the answer live, then reloads: the history is still there.
    theirs = log.locator('[data-testid="chat-message"][data-sender="agent"]')
    await expect(theirs.get_by_test_id("chat-message-body")).to_have_text(full)
    await expect(theirs).to_contain_text("Service")
    await visitor.reload()
    await expect(visitor.get_by_test_id("chat-panel")).to_be_visible()
    await expect(visitor.get_by_test_id("chat-message-body")).to_have_text([question, full])
    await expect(visitor.get_by_test_id("chat-identify")).to_be_hidden()

    # A follow-up question after the reload reaches the agent live too.
    await visitor.get_by_label("Viestisi").fill("Kiitos, tulen huomenna!")
    await visitor.get_by_test_id("chat-submit").click()
    await expect(agent.get_by_test_id("message-body")).to_have_text(
        [question, full, "Kiitos, tulen huomenna!"])

    # The note goes on the customer's card.
    await agent.get_by_test_id("note-input").fill("prefers shade 2N, sensitive skin")
    await agent.get_by_test_id("note-save").click()
    await expect(agent.get_by_test_id("note-saved")).to_be_visible()
    await expect(card.get_by_test_id("note-body")).to_have_text(
        ["prefers shade 2N, sensitive skin"])
    async with db.reader() as s:
        seen = await customer_card(s, SYSTEM, anna.id)
    assert [(n.body, n.channel, n.author) for n in seen.notes] == [
        ("prefers shade 2N, sensitive skin", "service", "Service")]

    # Closing ends the chat for the visitor.
    await agent.get_by_test_id("close-conversation").click()
    await expect(agent.get_by_test_id("conversation-status")).to_have_attribute(
        "data-status", "closed")
    await expect(visitor.get_by_test_id("chat-status")).to_have_text(
        "Keskustelu on päättynyt. Kirjoita uusi viesti aloittaaksesi uuden.")
