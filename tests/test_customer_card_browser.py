"""The customer card in a real headless Chromium against a real server (both databases).

The issue's scenario: a customer orders in the webshop; later, at the till, the cashier
types the customer's phone number in another format and the card shows that web order
and the purchase count; a note and a shade added in the browser are there after a
reload. And the account page's QR code finds the customer at the till.
"""

from __future__ import annotations

import os
import random
import re
import uuid

import segno
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.customers import accounts
from saumaton.customers.models import CustomerIdentity, CustomerNote, CustomerPreference
from saumaton.db.uow import Database
from saumaton.locations.models import Channel, Location
from saumaton.mail.models import OutgoingMail
from saumaton.orders.schemas import LineIn, OrderOut
from saumaton.tills.drawer import open_session
from tests.browser import assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants, pay_web_order

PHONE = {"width": 375, "height": 740}



async def staff_log_in(page: Page, base_url: str, shop: Shop, who: str) -> None:
    await page.goto(f"{base_url}/pos/")
    await expect(page).to_have_url(f"{base_url}/staff/login?next=%2Fpos%2F")
    await fill_staff_login(page, shop, who)
    await expect(page.get_by_test_id("cashier")).to_be_visible()


def new_mobile() -> str:
    """'+35840…' with seven random digits."""
    return f"+35840{random.randrange(10**7):07d}"


async def paid_web_order(db: Database, settings: Settings, shop: Shop, email: str,
                         phone: str) -> OrderOut:
    """A guest's home-delivery order in the webshop, paid through the Paytrail result."""
    [v] = await make_variants(db, [3490], stock={shop.warehouse: 5})
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email=email, phone=phone, first_name="Anna", last_name="Virtanen", delivery="home",
        address=AddressIn(name="Anna Virtanen", street="Mannerheimintie 1", postcode="00100",
                          city="Helsinki"),
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)]),
        customer_id=None, key=f"web-{uuid.uuid4().hex}")
    await pay_web_order(db, settings, order)
    return order


def euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}\xa0€"


async def test_card_found_by_phone_shows_the_web_order_and_keeps_notes(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    phone = new_mobile()  # the webshop got '+358401234567'
    typed = f"0{phone[4:6]} {phone[6:9]} {phone[9:]}"  # the cashier types '040 123 4567'
    email = f"anna.{uuid.uuid4().hex[:8]}@example.fi"
    order = await paid_web_order(db, settings, shop, email, phone)

    cashier = await open_page(contexts, browser, viewport=PHONE)
    await staff_log_in(cashier, server.base_url, shop, "cashier1")
    await cashier.goto(f"{server.base_url}/pos/store-1/customers")
    search = cashier.get_by_test_id("customer-search")
    await search.fill(typed)
    await search.press("Enter")

    card = cashier.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("customer-name")).to_have_text("Anna Virtanen")
    await expect(card.get_by_test_id("customer-phone")).to_have_text(phone)
    await expect(card.get_by_test_id("purchase-count")).to_have_text("1")
    await expect(card.get_by_test_id("lifetime-value")).to_have_text(euros(order.total_cents))
    purchase = card.get_by_test_id("purchase")
    await expect(purchase).to_have_count(1)
    await expect(purchase.get_by_test_id("purchase-number")).to_have_text(order.number)
    await expect(purchase.get_by_test_id("purchase-total")).to_have_text(
        euros(order.total_cents))
    await expect(purchase.get_by_test_id("purchase-where")).to_have_text("verkkokauppa")
    attach = card.get_by_test_id("attach-customer")
    await expect(attach).to_have_text("Liitä myyntiin")
    await expect(attach).to_have_attribute("data-customer-name", "Anna Virtanen")
    await assert_fits(cashier)
    if os.environ.get("SAUMATON_SCREENSHOTS"):
        await cashier.screenshot(path=os.environ["SAUMATON_SCREENSHOTS"] + "/card.png",
                                 full_page=True)

    # a note and a shade, typed in the card
    await card.get_by_label("Uusi muistiinpano").fill("Suosii sävyä 2N, herkkä iho.")
    await card.get_by_test_id("note-save").click()
    await expect(cashier.get_by_test_id("customer-saved")).to_have_text(
        "Muistiinpano tallennettu.")
    await expect(cashier.get_by_test_id("note-body")).to_have_text(
        "Suosii sävyä 2N, herkkä iho.")
    await expect(cashier.get_by_test_id("note-author")).to_have_text("Cashier1")
    card = cashier.get_by_test_id("customer-card")
    await card.get_by_label("Sävy").fill("2N")
    await card.get_by_test_id("pref-save").click()
    await expect(cashier.get_by_test_id("customer-saved")).to_have_text("Tiedot tallennettu.")
    await expect(cashier.get_by_test_id("preference-shade")).to_have_text("2N")
    # an empty note is refused next to the field
    await cashier.get_by_test_id("note-save").click()
    await expect(cashier.get_by_test_id("note-error")).to_have_text(
        "Kirjoita ensin muistiinpano.")
    await expect(cashier.get_by_test_id("note-input")).to_have_attribute("aria-invalid", "true")

    # reload: the search is in the address, and what was saved is on the card
    await expect(cashier).to_have_url(re.compile(r"/pos/store-1/customers/find\?q="))
    await cashier.reload()
    card = cashier.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("note-body")).to_have_text("Suosii sävyä 2N, herkkä iho.")
    await expect(card.get_by_test_id("preference-shade")).to_have_text("2N")
    await expect(card.get_by_test_id("purchase-number")).to_have_text(order.number)

    async with db.reader() as s:
        cid = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "phone", CustomerIdentity.value == phone))
        assert cid == order.customer_id
        notes = (await s.scalars(select(CustomerNote).where(
            CustomerNote.customer_id == cid))).all()
        assert [(n.body, n.channel) for n in notes] == [("Suosii sävyä 2N, herkkä iho.", "pos")]
        shade = await s.get(CustomerPreference, (cid, "shade"))
        assert shade is not None and shade.value == "2N"


async def test_account_qr_code_finds_the_customer_at_the_till(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    email = f"qr.{uuid.uuid4().hex[:8]}@example.fi"
    password = "vihreä kettu hyppää"
    async with db.uow() as uow:
        customer_id = await accounts.register(
            uow, email=email, password=password, first_name="Kaarina", last_name="Koodi",
            marketing_email=False, lang="fi", base_url="https://kauppa.example",
            settings=settings)
        await uow.commit()

    shopper = await open_page(contexts, browser, viewport=PHONE)

    async def sign_in() -> None:
        await shopper.goto(f"{server.base_url}/account/login")
        await shopper.get_by_label("Sähköposti").fill(email)
        await shopper.get_by_label("Salasana").fill(password)
        await shopper.get_by_test_id("login-submit").click()
        await expect(shopper.get_by_test_id("profile-name")).to_have_text("Kaarina Koodi")

    # not confirmed yet: no card code (the address may be someone else's)
    await sign_in()
    await expect(shopper.get_by_test_id("card-qr-pending")).to_be_visible()
    await expect(shopper.get_by_test_id("card-qr")).to_have_count(0)

    async with db.reader() as s:
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.to_addr == email, OutgoingMail.kind == "verify_email"))
    assert mail is not None
    m = re.search(r"/account/verify/(\S+)", mail.body_text)
    assert m
    await shopper.goto(f"{server.base_url}/account/verify/{m[1]}")
    await shopper.goto(f"{server.base_url}/account/")

    qr = shopper.get_by_test_id("card-qr")
    await expect(qr.locator("svg")).to_be_visible()
    await expect(shopper.get_by_text("Näytä kassalla")).to_be_visible()
    value = await qr.get_attribute("data-value")
    assert value and re.fullmatch(r"\d{12}", value)
    await expect(shopper.get_by_test_id("card-number")).to_contain_text(value)
    # the picture is the QR code of that number
    drawn = await qr.locator("svg path.qrline").get_attribute("d")
    expected = re.search(r'class="qrline"[^>]* d="([^"]+)"', segno.make(
        value, micro=False, error="m").svg_inline(scale=5, border=4))
    assert expected and drawn == expected[1]
    await assert_fits(shopper)
    if os.environ.get("SAUMATON_SCREENSHOTS"):
        await shopper.get_by_test_id("loyalty-card").screenshot(
            path=os.environ["SAUMATON_SCREENSHOTS"] + "/account-qr.png")
    # issued once: the same code on the next visit
    await shopper.reload()
    await expect(shopper.get_by_test_id("card-qr")).to_have_attribute("data-value", value)
    async with db.reader() as s:
        cards = (await s.scalars(select(CustomerIdentity.value).where(
            CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "card"))).all()
    assert list(cards) == [value]

    # the till's scanner types the code and Enter
    cashier = await open_page(contexts, browser)
    await staff_log_in(cashier, server.base_url, shop, "cashier1")
    await cashier.goto(f"{server.base_url}/pos/store-1/customers")
    search = cashier.get_by_test_id("customer-search")
    await search.press_sequentially(value)
    await search.press("Enter")
    card = cashier.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("customer-name")).to_have_text("Kaarina Koodi")
    await expect(card.get_by_test_id("customer-card-number")).to_have_text(value)
    await expect(card.get_by_test_id("purchase-count")).to_have_text("0")
    await expect(card).to_have_attribute("data-customer-id", str(customer_id))


async def test_till_customer_panel_finds_the_card_and_attaches_it(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    """The till loads the same card into its customer panel. A store of its own, its
    drawer open, so the shared stores' drawers are left alone."""
    phone = new_mobile()
    email = f"till.{uuid.uuid4().hex[:8]}@example.fi"
    order = await paid_web_order(db, settings, shop, email, phone)
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        store = Location(code=f"cc-{tag}", name=f"Store {tag}", kind="store",
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
    cashier = await open_page(contexts, browser)
    await staff_log_in(cashier, server.base_url, shop, "manager")
    await cashier.goto(f"{server.base_url}/pos/{store.code}")
    await cashier.get_by_test_id("customer-q").fill(f"0{phone[4:6]} {phone[6:9]} {phone[9:]}")
    await cashier.get_by_test_id("customer-q").press("Enter")
    panel = cashier.get_by_test_id("customer-panel")
    card = panel.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("purchase-number")).to_have_text(order.number)
    await expect(card.get_by_test_id("purchase-count")).to_have_text("1")
    # the card's forms work inside the till's panel
    await card.get_by_label("Uusi muistiinpano").fill("Kysyi uutta seerumia.")
    await card.get_by_test_id("note-save").click()
    await expect(panel.get_by_test_id("note-body")).to_have_text("Kysyi uutta seerumia.")
    await panel.get_by_test_id("attach-customer").click()
    await expect(cashier.get_by_test_id("sale-customer")).to_contain_text("Anna Virtanen")
    await expect(panel).to_be_hidden()
