"""Staff and security in a real headless Chromium against a real server (both
databases): a cashier signed in at the till is disabled by the owner in the back office
(another browser); her next sale is refused and her next page is the login page. And
the owner invites a person, who sets a password from the e-mailed link and signs in."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_staff_admin import PASSWORD, new_person
from tests.test_till_api import open_drawer


async def test_a_disabled_cashiers_open_session_is_refused_on_its_next_request(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 5})
    await open_drawer(db, shop.store1)
    staff_id, email, _ = await new_person(db, [("cashier", shop.store1)],
                                          name="Leaving Laura")
    base = server.base_url

    # The cashier signs in at the till and sells once.
    till = await open_page(contexts, browser)
    await till.goto(f"{base}/pos/")
    await till.get_by_label("Sähköposti").fill(email)
    await till.get_by_label("Salasana").fill(PASSWORD)
    await till.get_by_role("button", name="Kirjaudu").click()
    await expect(till).to_have_url(f"{base}/pos/store-1")
    await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
    await till.get_by_test_id("code-input").fill(str(v["ean"]))
    await till.get_by_test_id("code-input").press("Enter")
    await expect(till.get_by_test_id("total")).to_have_text("15,00\xa0€")
    await till.get_by_test_id("pay-cash").click()
    await expect(till.get_by_test_id("receipt")).to_be_visible()

    # The owner disables her in the back office, in another browser.
    owner = await open_page(contexts, browser)
    await owner.goto(f"{base}/staff/login?next=/backoffice/staff")
    await fill_staff_login(owner, shop, "owner")
    await expect(owner).to_have_url(f"{base}/backoffice/staff")
    await owner.get_by_test_id(f"staff-link-{staff_id}").click()
    await expect(owner.get_by_test_id("person-name")).to_have_text("Leaving Laura")
    await owner.get_by_test_id("disable").click()
    await expect(owner.get_by_test_id("notice")).to_be_visible()
    await expect(owner.get_by_test_id("person-state")).to_have_text("Poistettu käytöstä")

    # Her next sale is refused (not queued as offline) ...
    async with db.reader() as s:
        sold_before = await s.scalar(select(func.count()).select_from(Order).where(
            Order.created_by.startswith(f"staff:{staff_id} ")))
    assert sold_before == 1
    await till.get_by_test_id("new-sale").click()
    await till.get_by_test_id("code-input").fill(str(v["ean"]))
    await till.get_by_test_id("code-input").press("Enter")
    await expect(till.get_by_test_id("total")).to_have_text("15,00\xa0€")
    await till.get_by_test_id("pay-cash").click()
    await expect(till.get_by_test_id("error-general")).to_be_visible()
    async with db.reader() as s:
        sold_after = await s.scalar(select(func.count()).select_from(Order).where(
            Order.created_by.startswith(f"staff:{staff_id} ")))
    assert sold_after == 1
    # ... and her next page is the login page.
    await till.goto(f"{base}/pos/store-1")
    await expect(till).to_have_url(re.compile(r"/staff/login\?next="))


async def test_invited_person_sets_a_password_from_the_mail_and_signs_in(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    base = server.base_url
    email = f"invite-{uuid.uuid4().hex[:8]}@test.example"
    owner = await open_page(contexts, browser, locale="en-GB")
    await owner.goto(f"{base}/staff/login?next=/backoffice/staff&lang=en")
    await owner.get_by_label("E-mail").fill(shop.logins["owner"][0])
    await owner.get_by_label("Password").fill(shop.logins["owner"][1])
    await owner.get_by_role("button", name="Log in").click()
    await owner.get_by_test_id("invite-link").click()
    await owner.get_by_label("Name").fill("Tiina Tampere")
    await owner.get_by_label("E-mail").fill(email)
    await owner.get_by_label("Role").select_option("cashier")
    await owner.get_by_label("Where").select_option(label="Store Tampere")
    await owner.get_by_test_id("invite-submit").click()
    await expect(owner.get_by_test_id("notice")).to_have_text(
        "The invitation was sent by e-mail.")
    await expect(owner.get_by_test_id("person-state")).to_have_text("Invited")

    async with db.reader() as s:
        mail = await s.scalar(select(OutgoingMail).where(OutgoingMail.to_addr == email))
    assert mail is not None
    m = re.search(r"/staff/set-password\?token=([\w-]+)", mail.body_text)
    assert m
    new = await open_page(contexts, browser, locale="en-GB")
    await new.goto(f"{base}/staff/set-password?token={m[1]}")
    await new.get_by_test_id("new-password").fill("tiinan-oma-salasana")
    await new.get_by_test_id("confirm-password").fill("tiinan-oma-salasana")
    await new.get_by_test_id("set-password").click()
    await expect(new).to_have_url(f"{base}/staff/")
    await expect(new.get_by_text("Till: Store Tampere")).to_be_visible()


async def test_staff_and_audit_pages_fit_a_phone(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    staff_id, _, _ = await new_person(db, [("cashier", shop.store1), ("service", None)],
                                      name="Phone Person")
    base = server.base_url
    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{base}/staff/login?next=/backoffice/staff")
    await fill_staff_login(page, shop, "owner")
    await expect(page.get_by_test_id("staff-table")).to_be_visible()
    await assert_fits(page)
    await page.goto(f"{base}/backoffice/staff/{staff_id}")
    await expect(page.get_by_test_id("person-name")).to_have_text("Phone Person")
    await assert_fits(page)
    # keyboard: the token form is reachable and submits with Enter
    await page.get_by_test_id("token-name").focus()
    await page.keyboard.type("kassaintegraatio")
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("new-token")).to_be_visible()
    await assert_fits(page)
    await page.goto(f"{base}/backoffice/audit?action=token.create")
    await expect(page.get_by_test_id("audit-row").first).to_contain_text("kassaintegraatio")
    await assert_fits(page)
