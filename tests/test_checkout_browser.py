"""The web checkout in a real headless Chromium against a real server (both databases):
product page -> cart -> checkout -> the Paytrail simulator -> back to the shop, and
what the store's click & collect list and the product page show afterwards.
"""

from __future__ import annotations

import asyncio
import email
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import func, select
from starlette.routing import Mount

from saumaton.checkout.services import cancel_unpaid_orders
from saumaton.config import SIMULATOR_PATH, Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import verify_ledger
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.payments.models import Payment, PaytrailPayment
from saumaton.payments.paytrail.simulator import SimulatorState
from saumaton.web.app import create_app
from tests.browser import open_page
from tests.support import Server, Shop, make_variants

PHONE = {"width": 375, "height": 812}
NOT_VERIFIED = "Maksun tulosta ei voitu varmentaa. Mitään ei muutettu."



# --- browser --------------------------------------------------------------------------

# --- shopper's steps ------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    id: int
    sku: str
    url: str  # the product page with this variant chosen


async def new_item(db: Database, base_url: str, price: int, stock: dict[int, int]) -> Item:
    [v] = await make_variants(db, [price], stock=stock)
    return Item(int(str(v["id"])), str(v["sku"]),
                f"{base_url}/shop/p/{v['product_slug']}?variant={v['id']}")


async def add_to_cart_and_check_out(page: Page, base_url: str, item: Item,
                                    quantity: int = 1) -> None:
    """Product page -> "Add to cart" (htmx) -> the cart -> the checkout form."""
    await page.goto(item.url)
    if quantity != 1:
        await page.get_by_test_id("quantity").fill(str(quantity))
    await page.get_by_test_id("add-to-cart").click()
    added = page.get_by_test_id("cart-added")
    await expect(added).to_be_visible()
    await added.get_by_role("link", name="Siirry ostoskoriin").click()
    await expect(page).to_have_url(f"{base_url}/shop/cart")
    line = page.get_by_test_id("cart-lines").get_by_test_id(f"cart-line-{item.id}")
    await expect(line).to_be_visible()
    await expect(page.get_by_test_id(f"qty-{item.id}")).to_have_value(str(quantity))
    await page.get_by_test_id("to-checkout").click()
    await expect(page).to_have_url(f"{base_url}/shop/checkout")
    await expect(page.get_by_test_id("checkout-form")).to_be_visible()


async def fill_contact(page: Page, mail: str, phone: str = "") -> None:
    await page.locator("#email").fill(mail)
    await page.locator("#first_name").fill("Anna")
    await page.locator("#last_name").fill("Asiakas")
    await page.locator("#phone").fill(phone)


async def fill_home_delivery(page: Page) -> None:
    await page.locator("#delivery-home").check()
    await page.locator("#address_name").fill("Anna Asiakas")
    await page.locator("#street").fill("Mannerheimintie 1 A 2")
    await page.locator("#postcode").fill("00100")
    await page.locator("#city").fill("Helsinki")


async def submit_checkout(page: Page) -> str:
    """Press "Continue to payment"; returns the simulator's payment page URL."""
    await page.get_by_test_id("pay").click()
    await expect(page).to_have_url(re.compile(r"/paytrail-sim/pay/[0-9a-f-]{36}$"))
    return page.url


async def home_delivery_checkout(page: Page, base_url: str, item: Item, mail: str,
                                 quantity: int = 1) -> str:
    await add_to_cart_and_check_out(page, base_url, item, quantity)
    await fill_contact(page, mail)
    await fill_home_delivery(page)
    return await submit_checkout(page)


ORDER_URL = re.compile(r"/shop/orders/(\d+)\?t=[\w-]+$")


def number_of(url: str) -> str:
    m = ORDER_URL.search(url)
    assert m, f"not an order status page: {url}"
    return m.group(1)


async def order_of(db: Database, number: str) -> Order:
    async with db.reader() as s:
        order = await s.get(Order, int(number))
        assert order is not None
        return order


async def payments_of(db: Database, order_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(Payment)
                                  .where(Payment.order_id == order_id)) or 0)


async def provider_of(db: Database, order_id: int) -> str:
    async with db.reader() as s:
        return str(await s.scalar(select(PaytrailPayment.provider)
                                  .where(PaytrailPayment.order_id == order_id)))


async def stock_at(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    """(on_hand, reserved)."""
    async with db.reader() as s:
        level = (await s.scalars(select(StockLevel).where(
            StockLevel.variant_id == variant_id,
            StockLevel.location_id == location_id))).one()
        return level.on_hand, level.reserved


async def sent_mail(db: Database, number: str) -> OutgoingMail:
    """The order confirmation once the sender has handled it (each round is a query)."""
    async with asyncio.timeout(10):
        while True:
            async with db.reader() as s:
                row = await s.scalar(select(OutgoingMail).where(
                    OutgoingMail.kind == "order_confirmation",
                    OutgoingMail.reference == number))
            if row is not None and row.status != "queued":
                return row


def text_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


# --- 1. guest purchase --------------------------------------------------------------------

async def test_guest_pays_on_a_phone_and_gets_a_confirmation(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    item = await new_item(db, server.base_url, 1990, {shop.warehouse: 5})
    page = await open_page(contexts, browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await add_to_cart_and_check_out(page, server.base_url, item, quantity=2)
    # The review: 2 x 19,90 + 5,90 home delivery (under the free delivery limit).
    await fill_contact(page, "anna.asiakas@example.fi")
    await fill_home_delivery(page)
    summary = page.get_by_test_id("summary")
    await expect(summary.get_by_test_id("delivery-fee")).to_have_text("5,90\xa0€")
    await expect(summary.get_by_test_id("order-total")).to_have_text("45,70\xa0€")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"checkout is {width}px wide on a 375px screen"

    await submit_checkout(page)
    await expect(page.locator("#amount")).to_have_text("45,70 €")
    await page.get_by_label("OP").check()
    await page.locator("#success").click()

    await expect(page).to_have_url(ORDER_URL)
    status = page.get_by_test_id("order-status")
    await expect(status).to_have_attribute("data-status", "paid")
    await expect(page.get_by_test_id("thanks")).to_have_text("Kiitos tilauksestasi!")
    number = number_of(page.url)
    await expect(page.get_by_test_id("order-number")).to_have_text(number)
    await expect(page.get_by_test_id("address")).to_contain_text("Mannerheimintie 1 A 2")

    order = await order_of(db, number)
    assert (order.status, order.paid_cents, order.total_cents) == ("paid", 4570, 4570)
    assert await payments_of(db, order.id) == 1
    assert await provider_of(db, order.id) == "osuuspankki"  # the bank chosen
    assert await stock_at(db, item.id, shop.warehouse) == (3, 0)  # out of stock, not held
    async with db.reader() as s:
        assert await verify_ledger(s) == []

    # The confirmation went out as an .eml in the server's var/mail.
    mail = await sent_mail(db, number)
    assert mail.status == "sent" and mail.to_addr == "anna.asiakas@example.fi"
    # Any app process on this database may have sent it: the server, or the test
    # session's in-process app (whose var dir is the settings fixture's).
    mail_dirs = [Path(server.log.name).parent / "mail", settings.mail_dir()]
    [eml] = [f for d in mail_dirs for f in d.glob(f"*-{mail.id}-order_confirmation.eml")]
    message = email.message_from_bytes(eml.read_bytes())
    assert message["To"] == "anna.asiakas@example.fi"
    assert number in text_of(message)

    # The cart is done.
    await page.goto(f"{server.base_url}/shop/cart")
    await expect(page.get_by_test_id("cart-empty")).to_be_visible()


# --- 2. click & collect ---------------------------------------------------------------------

async def test_click_and_collect_is_ready_at_the_store(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    item = await new_item(db, server.base_url, 2490, {shop.store1: 3, shop.warehouse: 5})
    page = await open_page(contexts, browser)
    await add_to_cart_and_check_out(page, server.base_url, item, quantity=2)
    await fill_contact(page, "pekka.poimija@example.fi")
    await page.locator("#delivery-pickup").check()
    await page.locator(f"#store-{shop.store1}").check()
    # No phone: refused next to the field, and the choices are kept.
    await page.get_by_test_id("pay").click()
    error = page.get_by_test_id("error-phone")
    await expect(error).to_have_text(
        "Anna puhelinnumerosi: tarvitsemme sen noutoa varten, jotta myymälä tavoittaa sinut "
        "tilaukseen liittyen.")
    await expect(page.locator("label[for=phone]")).to_have_text(
        "Puhelin (pakollinen, jos noudat myymälästä)")
    await expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#phone")).to_have_attribute(
        "aria-describedby", re.compile(r"\bphone-error\b"))
    await expect(page.locator("#delivery-pickup")).to_be_checked()
    await expect(page.locator(f"#store-{shop.store1}")).to_be_checked()
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Order)
                              .where(Order.email == "pekka.poimija@example.fi")) == 0

    await page.locator("#phone").fill("040 123 4567")
    await submit_checkout(page)
    reference = page.get_by_text(re.compile(r"^Reference \d+$"))
    number = (await reference.inner_text()).split()[-1]  # the simulator shows our number

    # While the shopper is at the bank, the store sees the order awaiting payment.
    cashier = await open_page(contexts, browser)
    pickups_url = f"{server.base_url}/pos/store-1/pickups"
    await cashier.goto(pickups_url)
    await expect(cashier).to_have_url(re.compile(r"/staff/login\?next="))
    login, password = shop.logins["cashier1"]
    await cashier.get_by_label("Sähköposti").fill(login)
    await cashier.get_by_label("Salasana").fill(password)
    await cashier.get_by_role("button", name="Kirjaudu").click()
    await expect(cashier).to_have_url(pickups_url)
    await expect(cashier.get_by_test_id(f"pickup-{number}")).to_have_class(
        re.compile(r"\bawaiting\b"))
    await expect(cashier.get_by_test_id(f"pickup-status-{number}")).to_have_text(
        "Odottaa maksua")

    await page.locator("#success").click()
    await expect(page).to_have_url(ORDER_URL)
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")
    await expect(page.get_by_test_id("pickup-store")).to_contain_text("Store Helsinki")
    assert number_of(page.url) == number

    await cashier.reload()
    card = cashier.get_by_test_id(f"pickup-{number}")
    await expect(card).to_have_class(re.compile(r"\bready\b"))
    await expect(cashier.get_by_test_id(f"pickup-status-{number}")).to_have_text(
        "Valmis noudettavaksi")
    await expect(card).to_contain_text("2 × ")
    await expect(card).to_contain_text(item.sku)
    await expect(card).to_contain_text("+358401234567")

    # The confirmation shows the pickup code as a picture that travels with the mail
    # (multipart/related, cid:), not as a data: URL that mail programs block.
    mail = await sent_mail(db, number)
    mail_dirs = [Path(server.log.name).parent / "mail", settings.mail_dir()]
    [eml] = [f for d in mail_dirs for f in d.glob(f"*-{mail.id}-order_confirmation.eml")]
    message = email.message_from_bytes(eml.read_bytes())
    [image] = [p for p in message.walk() if p.get_content_type() == "image/png"]
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    html_text = html.get_payload(decode=True)
    assert isinstance(html_text, bytes)
    cid = str(image["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in html_text.decode() and "data:image" not in html_text.decode()
    assert cid.startswith(f"qr-NT{number}")

    # The two units are held at store-1: not on sale there any more, still on hand.
    order = await order_of(db, number)
    assert (order.status, order.location_id) == ("paid", shop.store1)
    assert await stock_at(db, item.id, shop.store1) == (3, 2)
    await page.goto(item.url)
    await expect(page.get_by_test_id("availability-store-1")).to_have_text("1")
    await expect(page.get_by_test_id("availability-online")).to_have_text("5")


# --- 3. cancelled payment -----------------------------------------------------------------

async def test_cancelled_payment_releases_the_stock_after_expiry(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, settings: Settings,
) -> None:
    item = await new_item(db, server.base_url, 990, {shop.warehouse: 3})
    page = await open_page(contexts, browser)
    await home_delivery_checkout(page, server.base_url, item, "ville.peruja@example.fi")
    await page.locator("#cancel").click()

    await expect(page).to_have_url(ORDER_URL)
    order_url = page.url
    number = number_of(order_url)
    await expect(page.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "pending")
    await expect(page.get_by_test_id("flash")).to_have_text(
        "Maksu peruttiin. Tilauksesi säilyy hetken: voit yrittää uudelleen.")
    await expect(page.get_by_test_id("pay-again")).to_be_visible()
    # The unit stays reserved for the order while it can still be paid.
    await page.goto(item.url)
    await expect(page.get_by_test_id("availability-online")).to_have_text("2")
    assert await stock_at(db, item.id, shop.warehouse) == (3, 1)

    # The time to pay runs out (the expiry job, run as it would be after the TTL).
    async with db.uow() as uow:
        later = utcnow() + timedelta(seconds=settings.reservation_ttl_seconds + 1)
        while await cancel_unpaid_orders(uow, now=later):  # in batches: others' too
            pass
        await uow.commit()

    await page.goto(order_url)
    await expect(page.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "cancelled")
    await expect(page.get_by_test_id("pay-again")).to_have_count(0)
    await page.goto(item.url)
    await expect(page.get_by_test_id("availability-online")).to_have_text("3")
    order = await order_of(db, number)
    assert (order.status, order.paid_cents) == ("cancelled", 0)
    assert await payments_of(db, order.id) == 0
    assert await stock_at(db, item.id, shop.warehouse) == (3, 0)


# --- 4. tampered redirect --------------------------------------------------------------------

async def test_tampered_payment_result_is_rejected(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    item = await new_item(db, server.base_url, 1200, {shop.warehouse: 2})
    page = await open_page(contexts, browser)
    pay_url = await home_delivery_checkout(page, server.base_url, item, "teppo@example.fi")
    await page.goto(pay_url + "?callbacks=0")  # no server callback: only the redirect

    # Make the payment but hold the simulator's signed 303 back to the shop instead of
    # following it (a route sees only the first request of a redirect chain).
    held: list[str] = []

    async def hold(route: Route) -> None:
        answer = await route.fetch(max_redirects=0)
        held.append(answer.headers["location"])
        await route.fulfill(status=200, content_type="text/html", body="<p>held</p>")

    await page.route("**/paytrail-sim/pay/*/success*", hold)
    await page.locator("#success").click()
    await expect(page.get_by_text("held")).to_be_visible()
    await page.unroute("**/paytrail-sim/pay/*/success*")
    [genuine] = held
    parts = urlsplit(genuine)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"{server.base_url}/shop/checkout/return/success")
    params = dict(parse_qsl(parts.query))
    number = params["checkout-reference"]
    assert params["checkout-status"] == "ok"

    def forged(**changes: str) -> str:
        query = urlencode({**params, **{k.replace("_", "-"): v for k, v in changes.items()}})
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{query}"

    for url in (forged(checkout_amount="1"), forged(checkout_status="pending")):
        response = await page.goto(url)
        assert response is not None and response.status == 400
        await expect(page.get_by_test_id("error-message")).to_have_text(NOT_VERIFIED)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        callback = "/shop/checkout/callback/success?" + urlsplit(
            forged(checkout_amount="1")).query
        assert (await http.get(callback)).status_code == 400

    order = await order_of(db, number)
    assert (order.status, order.paid_cents) == ("pending", 0)
    assert await payments_of(db, order.id) == 0

    # The untouched redirect is accepted: it was the tampering that was refused.
    await page.goto(genuine)
    await expect(page).to_have_url(ORDER_URL)
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")
    assert (await order_of(db, number)).status == "paid"


# --- 5. repeated callbacks ------------------------------------------------------------------

@dataclass
class LiveApp:
    base_url: str
    simulator: SimulatorState


@pytest.fixture
async def live_app(database_url: str, shop: Shop, tmp_path: Path) -> AsyncIterator[LiveApp]:
    """The app served by uvicorn in this process, so the test can see when the
    simulator's background callbacks have been delivered."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until the app has started
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(Settings(database_url=database_url, var_dir=tmp_path / "var",
                              secret_key="test-secret-key-0123456789", public_url=base_url))
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == SIMULATOR_PATH]
    simulator: SimulatorState = mount.app.state.simulator  # type: ignore[attr-defined]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=5))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
            assert (await http.get("/healthz")).status_code == 200
        yield LiveApp(base_url, simulator)
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def test_callback_delivered_three_times_records_one_payment(
    live_app: LiveApp, browser: Browser, contexts: list[BrowserContext], db: Database,
    shop: Shop,
) -> None:  # live_app first: it stops after the browser contexts are closed
    base_url = live_app.base_url
    item = await new_item(db, base_url, 1500, {shop.warehouse: 2})
    page = await open_page(contexts, browser)
    pay_url = await home_delivery_checkout(page, base_url, item, "kolme@example.fi")
    await page.goto(pay_url + "?callbacks=3")
    await page.get_by_label("Visa").check()
    await page.locator("#success").click()
    await expect(page).to_have_url(ORDER_URL)
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")
    number = number_of(page.url)

    # Wait for the simulator's callback task itself, then count what it delivered.
    await asyncio.wait_for(asyncio.gather(*live_app.simulator.tasks), timeout=10)
    assert live_app.simulator.callback_log == [
        (f"{base_url}/shop/checkout/callback/success", 200)] * 3

    order = await order_of(db, number)
    assert (order.status, order.paid_cents) == ("paid", 1500 + 590)
    assert await payments_of(db, order.id) == 1
    assert await provider_of(db, order.id) == "creditcard"
    assert await stock_at(db, item.id, shop.warehouse) == (1, 0)
    async with db.reader() as s:
        assert await verify_ledger(s) == []


# --- 6. the form's errors -----------------------------------------------------------------

async def test_every_error_shows_at_once_next_to_its_field_in_the_pages_language(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    item = await new_item(db, server.base_url, 1590, {shop.warehouse: 3, shop.store1: 3})
    page = await open_page(contexts, browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await add_to_cart_and_check_out(page, server.base_url, item)
    await page.get_by_role("button", name="Vain välttämättömät").click()
    for field in ("address_name", "street", "postcode", "city"):  # home delivery's: required
        await expect(page.locator(f"label[for={field}]")).not_to_contain_text("vapaaehtoinen")
    await page.locator("#first_name").fill("A" * 5000)
    await page.locator("#delivery-home").check()
    await page.get_by_test_id("pay").click()
    expected = {"email": "Anna sähköpostiosoitteesi.", "first_name": "Käytä enintään 100 merkkiä.",
                "last_name": "Anna sukunimesi.", "address_name": "Anna vastaanottajan nimi.",
                "street": "Anna katuosoite.", "postcode": "Anna postinumero.",
                "city": "Anna postitoimipaikka."}
    for field, text in expected.items():
        await expect(page.get_by_test_id(f"error-{field}")).to_have_text(text)
        await expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#first_name")).to_have_value("A" * 5000)  # not cut short
    await expect(page.get_by_text("String should")).to_have_count(0)

    # In English on a desktop: English labels and errors; click & collect says what it needs.
    await page.goto(f"{server.base_url}/shop/checkout?lang=en")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await expect(page.locator("label[for=phone]")).to_have_text(
        "Phone (required for click & collect)")
    await expect(page.locator("label[for=street]")).to_have_text("Street address")
    await expect(page.get_by_text("vapaaehtoinen")).to_have_count(0)
    await fill_contact(page, "english@example.fi")
    await page.locator("#delivery-pickup").check()
    await expect(page.locator("#street")).to_be_hidden()  # no address for click & collect
    await page.get_by_test_id("pay").click()
    await expect(page.get_by_test_id("error-phone")).to_have_text(
        "Enter your phone number: click & collect needs it, so the store can reach you "
        "about the order.")
    await expect(page.get_by_test_id("error-delivery")).to_have_text(
        "Choose the store where you collect the order.")
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Order)
                              .where(Order.email == "english@example.fi")) == 0
