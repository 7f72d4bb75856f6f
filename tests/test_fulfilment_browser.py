"""Fulfilment of web orders in a real headless Chromium against a real server (both
databases): a click & collect order paid through the Paytrail simulator is picked,
made ready (e-mail with the pickup code) and handed over at the till; an uncollected
pickup is reminded once and then cancelled (stock back on sale, Paytrail refund due,
points reversed, e-mail); a home delivery is packed and shipped with a tracking number
from the back office. The shopper's order page follows every step."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email.message import Message
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.fulfilment.pickups import uncollected_pickups
from saumaton.loyalty.ledger import balance
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.payments.models import Refund
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, eventually
from tests.test_accounts import PASSWORD, new_email, register
from tests.test_checkout_browser import (
    ORDER_URL,
    Item,
    add_to_cart_and_check_out,
    fill_contact,
    home_delivery_checkout,
    new_item,
    number_of,
    stock_at,
    submit_checkout,
    text_of,
)


async def staff_page(contexts: list[BrowserContext], browser: Browser, server: Server,
                     shop: Shop, who: str, path: str, **options: object) -> Page:
    page = await open_page(contexts, browser, **options)
    await page.goto(f"{server.base_url}/staff/login?next={path}")
    await fill_staff_login(page, shop, who)
    await expect(page).to_have_url(f"{server.base_url}{path}")
    return page


async def pickup_checkout(page: Page, base_url: str, item: Item, store: int, *,
                          mail: str = "", quantity: int = 1) -> None:
    """Cart -> checkout with click & collect at `store` -> paid in the simulator."""
    await add_to_cart_and_check_out(page, base_url, item, quantity)
    if mail:
        await fill_contact(page, mail, phone="040 765 4321")
    else:  # signed in: the account fills the contact details, not the phone
        await page.locator("#phone").fill("040 765 4321")
    await page.locator("#delivery-pickup").check()
    await page.locator(f"#store-{store}").check()
    await pay(page)


async def pay(page: Page) -> None:
    await submit_checkout(page)
    await page.get_by_label("OP").check()
    await page.locator("#success").click()
    await expect(page).to_have_url(ORDER_URL)
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")


async def sent(db: Database, number: str, kind: str) -> list[OutgoingMail]:
    """The e-mails of `kind` about the order once the sender has handled them (a query
    every 50 ms, so the poll does not starve the sender on a busy machine; bounded)."""
    async def handled() -> list[OutgoingMail]:
        async with db.reader() as s:
            rows = list((await s.scalars(select(OutgoingMail).where(
                OutgoingMail.kind == kind, OutgoingMail.reference == number)
                .order_by(OutgoingMail.id))).all())
        return rows if rows and all(r.status != "queued" for r in rows) else []
    return await eventually(handled, within=30, what=f"the {kind} e-mail of {number} sent")


def eml(server: Server, settings: Settings, mail: OutgoingMail) -> Message:
    """The .eml the sender wrote: by the server, or by the test session's app (whose
    mail folder the other database's run shares: the same id may be there twice, so
    the recipient tells them apart)."""
    dirs = [Path(server.log.name).parent / "mail", settings.mail_dir()]
    messages = [email.message_from_bytes(f.read_bytes())
                for d in dirs for f in d.glob(f"*-{mail.id}-{mail.kind}.eml")]
    [found] = [m for m in messages if m["To"] == mail.to_addr]
    return found


async def refunds(db: Database, order_id: int) -> list[Refund]:
    async with db.reader() as s:
        return list((await s.scalars(select(Refund).where(Refund.order_id == order_id)
                                     .order_by(Refund.id))).all())


async def status_of(db: Database, order_id: int) -> str:
    async with db.reader() as s:
        return str(await s.scalar(select(Order.status).where(Order.id == order_id)))


# --- 1. click & collect: picked, ready, handed over -----------------------------------------

async def test_click_and_collect_is_picked_made_ready_and_handed_over(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    item = await new_item(db, server.base_url, 2490, {shop.store1: 3})
    shopper = await open_page(contexts, browser, viewport=PHONE, is_mobile=True,
                              has_touch=True)
    address = new_email().lower()
    await pickup_checkout(shopper, server.base_url, item, shop.store1, mail=address,
                          quantity=2)
    order_url = shopper.url
    number = number_of(order_url)
    await expect(shopper.get_by_test_id("order-state")).to_have_text("Maksettu")

    # The store's "Web orders" list, from the till's header.
    staff = await staff_page(contexts, browser, server, shop, "cashier1",
                             "/pos/store-1/pickups")
    await staff.get_by_test_id("orders-link").click()
    await expect(staff).to_have_url(f"{server.base_url}/pos/store-1/orders")
    await expect(staff.get_by_test_id(f"order-status-{number}")).to_have_text(
        "Maksettu, valmisteltava")
    await staff.get_by_test_id("orders-q").fill(address)
    await staff.get_by_test_id("orders-find").click()
    await expect(staff.get_by_test_id("orders-count")).to_have_text("1 tilausta")
    await staff.get_by_test_id(f"order-open-{number}").click()
    await expect(staff.get_by_test_id("order-customer")).to_contain_text(address)
    await expect(staff.get_by_test_id("step-packed")).to_have_count(0)  # a pickup

    await staff.get_by_test_id("step-picking").click()
    await expect(staff.get_by_test_id("order-done")).to_be_visible()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Keräilyssä")
    await expect(staff.get_by_test_id("step-picking")).to_have_count(0)
    order_page = staff.url

    # The pick list still has the order (being picked), its product and quantity.
    await staff.goto(f"{server.base_url}/pos/store-1/orders")
    await staff.get_by_test_id("picklist-link").click()
    row = staff.get_by_test_id(f"pick-{item.sku}")
    await expect(row).to_contain_text(number)
    await expect(staff.get_by_test_id(f"pick-qty-{item.sku}")).to_have_text("2")
    print_button = staff.get_by_role("button", name="Tulosta")
    await expect(print_button).to_be_visible()
    await staff.emulate_media(media="print")
    await expect(print_button).to_be_hidden()
    await expect(staff.locator("header")).to_be_hidden()
    await expect(row).to_be_visible()
    await staff.emulate_media(media="screen")

    await staff.goto(order_page)
    await staff.get_by_test_id("step-ready").click()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Valmis noudettavaksi")
    history = staff.get_by_test_id("order-history")
    await expect(history).to_contain_text("Keräily aloitettu · Cashier1")
    await expect(history).to_contain_text("Valmis noudettavaksi · Cashier1")
    await expect(history).not_to_contain_text("staff:")

    # The shopper's e-mail: ready at the store, with the pickup code and its QR inline.
    [ready] = await sent(db, number, "pickup_ready")
    assert ready.to_addr == address
    message = eml(server, settings, ready)
    body = text_of(message)
    code = re.search(r"Noutokoodi: (NT\d+)", body)
    assert code and code[1].startswith(f"NT{number}"), body
    assert "Store Helsinki" in body
    [image] = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert str(image["Content-ID"]).strip("<>").startswith(f"qr-{code[1]}")

    await shopper.reload()
    await expect(shopper.get_by_test_id("order-state")).to_have_text("Valmis noudettavaksi")
    await expect(shopper.get_by_test_id("ready-note")).to_contain_text("Store Helsinki")
    await expect(shopper.get_by_test_id("pickup-code")).to_have_text(code[1])
    await assert_fits(shopper)

    # The handover at the till, found by the code from the e-mail.
    await staff.get_by_test_id("pickups-link").click()
    await staff.get_by_test_id("pickup-q").fill(code[1])
    await staff.get_by_test_id("pickup-q").press("Enter")
    await expect(staff.get_by_test_id("order-number")).to_have_text(number)
    await staff.get_by_test_id("id-checked").check()
    await staff.get_by_test_id("hand-over").click()
    await expect(staff.get_by_test_id("handed-over")).to_be_visible()

    await shopper.reload()
    await expect(shopper.get_by_test_id("order-state")).to_have_text("Noudettu")
    await expect(shopper.get_by_test_id("pickup-code")).to_have_count(0)
    assert await stock_at(db, item.id, shop.store1) == (1, 0)


# --- 2. an uncollected pickup ------------------------------------------------------------------

async def test_uncollected_pickup_is_reminded_then_cancelled_and_refunded(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    address = new_email()
    cid = await register(db, settings, address)
    item = await new_item(db, server.base_url, 3000, {shop.store1: 2})
    shopper = await open_page(contexts, browser)
    await shopper.goto(f"{server.base_url}/account/login")
    await shopper.get_by_label("Sähköposti").fill(address)
    await shopper.get_by_label("Salasana").fill(PASSWORD)
    await shopper.get_by_test_id("login-submit").click()
    await expect(shopper).to_have_url(f"{server.base_url}/account/")
    await pickup_checkout(shopper, server.base_url, item, shop.store1)
    order_url = shopper.url
    number = number_of(order_url)
    order_id = int(number)
    async with db.reader() as s:
        assert await balance(s, cid) == 30  # a member earns on the paid goods
    assert await stock_at(db, item.id, shop.store1) == (2, 1)

    # The cashier works on a phone: the list is one block per order, the page fits.
    staff = await staff_page(contexts, browser, server, shop, "cashier1",
                             f"/pos/store-1/orders?q={number}", viewport=PHONE,
                             is_mobile=True, has_touch=True)
    status = staff.get_by_test_id(f"order-status-{number}")
    await expect(status).to_have_text("Maksettu, valmisteltava")
    box = await status.bounding_box()
    assert box and box["width"] > PHONE["width"] / 2, box  # not a squeezed column
    await assert_fits(staff)
    await staff.get_by_test_id(f"order-open-{number}").click()
    await assert_fits(staff)
    await staff.get_by_test_id("step-ready").click()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Valmis noudettavaksi")
    await expect(staff.get_by_test_id("order-payments")).to_contain_text(
        "Paytrail · 30,00\xa0€ · maksettu")
    await shopper.goto(item.url)
    await expect(shopper.get_by_test_id("availability-store-1")).to_have_text("1")

    # The job, with its clock moved: inside the reminder window (twice: one reminder) ...
    hold = timedelta(days=settings.pickup_hold_days)
    remind_at = utcnow() + hold - timedelta(days=settings.pickup_reminder_days_before) \
        + timedelta(hours=1)
    await uncollected_pickups(db, settings, now=remind_at)
    await uncollected_pickups(db, settings, now=remind_at)
    [reminder] = await sent(db, number, "pickup_reminder")
    assert "Noutokoodi: NT" + number in text_of(eml(server, settings, reminder))
    assert await status_of(db, order_id) == "ready"
    await staff.reload()
    await expect(staff.get_by_test_id("order-history")).to_contain_text("Muistutus lähetetty")

    # ... and past the hold: cancelled once, however often the job runs.
    expired_at = utcnow() + hold + timedelta(hours=1)
    await uncollected_pickups(db, settings, now=expired_at)
    await uncollected_pickups(db, settings, now=expired_at)
    assert await status_of(db, order_id) == "cancelled"
    [refund] = await refunds(db, order_id)
    # Recorded due; the server's refund job may already have sent it to the simulator.
    assert (refund.method, refund.amount_cents) == ("paytrail", 3000)
    assert refund.status in ("due", "pending", "ok")
    async with db.reader() as s:
        assert await balance(s, cid) == 0  # the points earned are taken back
    assert await stock_at(db, item.id, shop.store1) == (2, 0)
    await shopper.goto(item.url)
    await expect(shopper.get_by_test_id("availability-store-1")).to_have_text("2")
    [cancelled] = await sent(db, number, "order_cancelled")
    body = text_of(eml(server, settings, cancelled))
    assert "ei noudettu ajoissa" in body and "30,00" in body, body
    assert [m.id for m in await sent(db, number, "pickup_reminder")] == [reminder.id]

    await shopper.goto(order_url)
    await expect(shopper.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "cancelled")
    await expect(shopper.get_by_test_id("order-state")).to_have_text("Peruttu")
    await expect(shopper.get_by_test_id("refunds")).to_contain_text("30,00\xa0€")
    await expect(shopper.get_by_test_id("pickup-code")).to_have_count(0)
    await staff.reload()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Peruttu")
    await expect(staff.get_by_test_id("order-refunds")).to_contain_text(re.compile(
        "Paytrail · 30,00\xa0€ · (odottaa lähetystä|lähetetty, odottaa vahvistusta"
        "|hyvitetty)"))
    await expect(staff.get_by_test_id("order-steps")).to_have_count(0)


# --- 3. home delivery: packed and shipped --------------------------------------------------------

async def test_home_delivery_is_packed_and_shipped_with_a_tracking_number(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    item = await new_item(db, server.base_url, 4100, {shop.warehouse: 2})
    shopper = await open_page(contexts, browser)
    address = new_email().lower()
    await home_delivery_checkout(shopper, server.base_url, item, address)
    await shopper.get_by_label("OP").check()
    await shopper.locator("#success").click()
    await expect(shopper).to_have_url(ORDER_URL)
    order_url = shopper.url
    number = number_of(order_url)

    staff = await staff_page(contexts, browser, server, shop, "manager", "/backoffice/orders")
    await staff.get_by_test_id("orders-q").fill(number)
    await staff.get_by_test_id("orders-delivery").select_option("home")
    await staff.get_by_test_id("orders-find").click()
    await expect(staff.get_by_test_id("orders-count")).to_have_text("1 tilausta")
    await staff.get_by_test_id(f"order-open-{number}").click()
    await expect(staff.get_by_test_id("step-ready")).to_have_count(0)  # not a pickup
    await staff.get_by_test_id("step-packed").click()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Pakattu")

    # No tracking number: said next to the field, in Finnish; nothing changes.
    await staff.get_by_test_id("ship-carrier").fill("Posti")
    await staff.get_by_test_id("step-shipped").click()
    error = staff.get_by_test_id("error-tracking_number")
    await expect(error).to_have_text("Anna paketin seurantakoodi.")
    await expect(staff.get_by_test_id("ship-tracking_number")).to_have_attribute(
        "aria-invalid", "true")
    await expect(staff.get_by_test_id("ship-carrier")).to_have_value("Posti")
    await expect(staff.get_by_test_id("error-carrier")).to_have_count(0)
    assert await status_of(db, int(number)) == "packed"

    await staff.get_by_test_id("ship-tracking_number").fill("JJFI64001234567")
    await staff.get_by_test_id("step-shipped").click()
    await expect(staff.get_by_test_id("order-status")).to_have_text("Lähetetty")
    await expect(staff.get_by_test_id("order-tracking")).to_contain_text("JJFI64001234567")

    [shipped] = await sent(db, number, "order_shipped")
    assert shipped.to_addr == address
    body = text_of(eml(server, settings, shipped))
    assert "Seurantakoodi: JJFI64001234567" in body and "Posti" in body, body

    await shopper.goto(order_url)
    await expect(shopper.get_by_test_id("order-state")).to_have_text("Lähetetty")
    await expect(shopper.get_by_test_id("tracking")).to_contain_text("JJFI64001234567")
    await expect(shopper.get_by_test_id("tracking")).to_contain_text("Posti")
