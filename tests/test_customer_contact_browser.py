"""Contact details in a real headless Chromium against a real server (both databases): at
the till a cashier opens a customer's card, adds the phone number the customer tells
("040 123 4567"), ticks the e-mail marketing consent, and then finds the customer by
that number."""

from __future__ import annotations

import os
import uuid

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.core.actor import Actor, RoleGrant
from saumaton.customers.consents import consent_history
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))


async def test_phone_and_consent_added_at_the_till_find_the_customer(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    email = f"veera.{uuid.uuid4().hex[:10]}@example.fi"
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    typed = f"040 {digits[:3]} {digits[3:]}"
    async with db.uow() as uow:
        customer = await create_customer(uow, CASHIER, CustomerIn(
            first_name="Veera", last_name="Verkko", email=email, issue_card=True))
        await uow.commit()

    till = await open_page(contexts, browser, viewport=PHONE)
    await till.goto(f"{server.base_url}/pos/store-1/customers")
    await fill_staff_login(till, shop, "cashier1")
    search = till.get_by_test_id("customer-search")
    await search.fill(email)
    await search.press("Enter")
    card = till.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("customer-name")).to_have_text("Veera Verkko")
    await expect(card.get_by_test_id("customer-phone")).to_have_count(0)

    # the disclosure opens; the number is typed as the customer says it
    await card.get_by_text("Muokkaa yhteystietoja").click()
    await card.get_by_label("Lisää puhelinnumero").fill(typed)
    await card.get_by_test_id("contact-phone-save").click()
    await expect(till.get_by_test_id("contact-saved")).to_have_text("Puhelinnumero lisätty.")
    card = till.get_by_test_id("customer-card")
    phones = card.locator('[data-testid="identity"][data-kind="phone"]')
    await expect(phones.get_by_test_id("identity-value")).to_have_text(f"+35840{digits}")
    await expect(card.get_by_test_id("customer-phone")).to_have_text(f"+35840{digits}")

    # the e-mail marketing consent, ticked and saved: since when and where
    await card.get_by_test_id("consent-box-marketing_email").check()
    await card.get_by_test_id("consents-save").click()
    await expect(till.get_by_test_id("consents-saved")).to_have_text(
        "Markkinointiluvat tallennettu.")
    given = till.get_by_test_id("consent-marketing_email")
    await expect(given).to_have_attribute("data-granted", "yes")
    await expect(given.get_by_test_id("consent-since")).to_contain_text("kassa")
    await expect(till.get_by_test_id("consent-marketing_sms")).to_have_attribute(
        "data-granted", "no")
    await assert_fits(till)
    if os.environ.get("SAUMATON_SCREENSHOTS"):
        await till.get_by_test_id("customer-card").screenshot(
            path=os.environ["SAUMATON_SCREENSHOTS"] + "/card-contact.png")

    # a number that cannot be one is refused next to the field
    await till.get_by_text("Muokkaa yhteystietoja").click()
    await till.get_by_label("Lisää puhelinnumero").fill("12")
    await till.get_by_test_id("contact-phone-save").click()
    await expect(till.get_by_test_id("contact-phone-error")).to_have_text(
        "Tarkista puhelinnumero.")

    # found by that number, as typed
    search = till.get_by_test_id("customer-search")
    await search.fill(typed)
    await search.press("Enter")
    card = till.get_by_test_id("customer-card")
    await expect(card).to_have_attribute("data-customer-id", str(customer.id))
    await expect(card.get_by_test_id("customer-name")).to_have_text("Veera Verkko")

    async with db.reader() as s:
        history = await consent_history(s, customer.id)
    assert [(h.kind, h.granted, h.channel) for h in history] == [
        ("marketing_sms", False, "pos"), ("marketing_email", True, "pos")]
