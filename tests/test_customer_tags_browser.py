"""Tags and preference fields in a real headless Chromium against a real server (both
databases): at the till a cashier tags a customer and picks their skin type from the
shop's choice field; a manager then finds the customer in the back office's list by that
tag and sees both on the customer's page."""

from __future__ import annotations

import os
import uuid

from playwright.async_api import Browser, BrowserContext, expect

from saumaton.core.actor import Actor, RoleGrant
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.models import CustomerPreference
from saumaton.customers.tags import tags_of
from saumaton.db.uow import Database
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))


async def test_tag_and_choice_at_the_till_show_in_the_back_office(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    phone = f"+35840{uuid.uuid4().int % 10**7:07d}"
    tag = "vip " + "".join("bcdfghjklmnpqrstvwxz"[b % 20] for b in uuid.uuid4().bytes[:6])
    async with db.uow() as uow:
        customer = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=phone, first_name="Ronja", last_name="Rinne"))
        await uow.commit()

    till = await open_page(contexts, browser, viewport=PHONE)
    await till.goto(f"{server.base_url}/pos/store-1/customers")
    await fill_staff_login(till, shop, "cashier1")
    search = till.get_by_test_id("customer-search")
    await search.fill(phone)
    await search.press("Enter")
    card = till.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("customer-name")).to_have_text("Ronja Rinne")

    # the skin type is a choice: picked from the list, in Finnish
    await card.get_by_label("Ihotyyppi").select_option(label="kuiva")
    await card.get_by_test_id("pref-save").click()
    await expect(till.get_by_test_id("customer-saved")).to_have_text("Tiedot tallennettu.")
    await expect(till.get_by_test_id("preference-skin_type")).to_have_text("kuiva")

    # a tag, typed in capitals: stored and shown in lower case
    card = till.get_by_test_id("customer-card")
    await card.get_by_label("Lisää tunniste").fill(tag.upper())
    await card.get_by_test_id("tag-save").click()
    await expect(till.get_by_test_id("customer-saved")).to_have_text("Tunniste lisätty.")
    await expect(till.get_by_test_id("tag-text")).to_have_text(tag)
    # a bad one is refused next to the field, the chip stays
    await till.get_by_label("Lisää tunniste").fill("vip!")
    await till.get_by_test_id("tag-save").click()
    await expect(till.get_by_test_id("tag-error")).to_contain_text("Tunniste on 1–50 merkkiä")
    await expect(till.get_by_label("Lisää tunniste")).to_have_attribute("aria-invalid", "true")
    await expect(till.get_by_test_id("tag-text")).to_have_text(tag)
    await assert_fits(till)
    if os.environ.get("SAUMATON_SCREENSHOTS"):
        await card.screenshot(path=os.environ["SAUMATON_SCREENSHOTS"] + "/card-tags.png")

    async with db.reader() as s:
        assert await tags_of(s, customer.id) == [tag]
        pref = await s.get(CustomerPreference, (customer.id, "skin_type"))
    assert pref is not None and pref.value == "dry"

    # the back office: the tag is a filter link, the customer's page shows both
    office = await open_page(contexts, browser)
    await office.goto(f"{server.base_url}/backoffice/customers")
    await fill_staff_login(office, shop, "manager")
    await office.locator(f'[data-testid="tag-filter"][data-tag="{tag}"]').click()
    row = office.locator(f'[data-testid="customer-row"][data-customer-id="{customer.id}"]')
    await expect(row).to_have_count(1)
    await row.get_by_test_id("customer-link").click()
    await expect(office.get_by_test_id("customer-name")).to_have_text("Ronja Rinne")
    await expect(office.get_by_test_id("tag-text")).to_have_text(tag)
    await expect(office.get_by_test_id("preference-skin_type")).to_have_text("kuiva")
    await expect(office.get_by_label("Ihotyyppi")).to_have_value("dry")
    if os.environ.get("SAUMATON_SCREENSHOTS"):
        await office.screenshot(path=os.environ["SAUMATON_SCREENSHOTS"] + "/bo-customer.png",
                                full_page=True)
