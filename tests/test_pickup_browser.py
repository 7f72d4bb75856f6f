"""Click & collect handover in a real headless Chromium against a real server (both
databases): an order placed and paid in the webshop is found at the store's till by the
pickup code from its confirmation e-mail, the ID is checked and the order handed over."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.checkout.services import CheckoutIn, place_web_order, record_payment_status
from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel, StockMovement
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn
from saumaton.payments.models import PaytrailPayment
from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, make_variants

PHONE = {"width": 375, "height": 812}



async def staff_login(page: Page, base_url: str, shop: Shop, who: str, next_path: str) -> None:
    await page.goto(f"{base_url}/staff/login?next={next_path}")
    await fill_staff_login(page, shop, who)
    await expect(page).to_have_url(f"{base_url}{next_path}")


async def screenshot(page: Page, name: str) -> None:
    """Saved to $SAUMATON_SCREENSHOTS when set (to look at the pages)."""
    target = os.environ.get("SAUMATON_SCREENSHOTS")
    if target:
        await page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def server_settings(database_url: str, session_tmp: Path, backend: str) -> Settings:
    """The running server's settings: the same database and secret key (its var dir)."""
    return Settings(database_url=database_url, var_dir=session_tmp / f"server-{backend}")


async def level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        row = (await s.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id))).one()
    return int(row[0]), int(row[1])


async def test_click_and_collect_handover_at_the_till(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, database_url: str, session_tmp: Path, backend: str) -> None:
    settings = server_settings(database_url, session_tmp, backend)
    [v] = await make_variants(db, [2490], stock={shop.store1: 3, shop.warehouse: 5})
    vid = int(str(v["id"]))
    tag = uuid.uuid4().hex[:8]
    last = f"Noutaja{tag}"

    # The shopper orders in the webshop for pickup at store 1 and pays.
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email=f"nouto-{tag}@example.fi", phone="040 765 4321", first_name="Paula",
        last_name=last, delivery="pickup", pickup_location_id=shop.store1,
        lines=[LineIn(variant_id=vid, quantity=2)]), customer_id=None, key=f"br-{tag}")
    async with db.uow() as uow:
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=f"st-{tag}",
                                        transaction_id=f"tx-{tag}",
                                        amount_cents=order.total_cents, status="new"))
        await uow.commit()
    out = await record_payment_status(db, settings, f"st-{tag}", f"tx-{tag}", "ok",
                                      order.total_cents)
    assert out.order_status == "paid"
    assert await level(db, vid, shop.store1) == (3, 2)

    # The confirmation e-mail carries the pickup code (text, and a QR image in HTML).
    async with db.reader() as s:
        mail = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.kind == "order_confirmation",
            OutgoingMail.reference == order.number))).one()
    m = re.search(r"Noutokoodi: (NT\d{10})", mail.body_text)
    assert m, mail.body_text
    code = m[1]
    assert code.startswith(f"NT{order.number}")
    assert f'data-pickup-code="{code}"' in mail.body_html
    # the QR travels as an inline part (cid:), not a data: URL mail programs block
    assert f'src="cid:qr-{code}@' in mail.body_html and "data:image" not in mail.body_html

    # At the till: the cashier opens click & collect and scans the code (keys + Enter).
    cashier = await open_page(contexts, browser)
    await staff_login(cashier, server.base_url, shop, "cashier1", "/pos/store-1/pickups")
    await expect(cashier.get_by_test_id(f"pickup-{order.number}")).to_be_visible()
    search = cashier.get_by_test_id("pickup-q")
    await expect(search).to_be_focused()
    await search.press_sequentially(code)
    await search.press("Enter")
    await expect(cashier).to_have_url(f"{server.base_url}/pos/store-1/pickups/{order.id}")
    await expect(cashier.get_by_test_id("customer-name")).to_have_text(f"Paula {last}")
    await expect(cashier.get_by_test_id("order-number")).to_have_text(order.number)
    await expect(cashier.get_by_test_id("pickup-code")).to_have_text(code)
    await expect(cashier.get_by_test_id("handover-line")).to_have_count(1)
    await expect(cashier.get_by_test_id("handover-line")).to_contain_text("2 ×")
    await expect(cashier.get_by_test_id("paid")).to_have_text("49,80\xa0€")

    await screenshot(cashier, "pickup-order")

    # "Hand over" without ticking the ID box: refused, the message by the box.
    await cashier.get_by_test_id("hand-over").click()
    await expect(cashier.get_by_test_id("id-checked-error")).to_be_visible()
    await expect(cashier.get_by_test_id("id-checked")).to_have_attribute("aria-invalid", "true")
    assert await level(db, vid, shop.store1) == (3, 2)

    await cashier.get_by_test_id("id-checked").check()
    await cashier.get_by_test_id("hand-over").click()
    await expect(cashier.get_by_test_id("handed-over")).to_be_visible()
    await expect(cashier.get_by_test_id("order-state")).to_have_text("Noudettu")
    # Who handed it over: the cashier's name, not the account label.
    info = cashier.get_by_test_id("collected-info")
    await expect(info).to_contain_text("Cashier1")
    await expect(info).not_to_contain_text("staff:")
    await expect(cashier.get_by_test_id("receipt-link")).to_be_visible()

    async with db.reader() as s:
        row = (await s.execute(select(Order.status, Order.collected_at, Order.collected_by)
                               .where(Order.id == order.id))).one()
        sales = (await s.scalars(select(StockMovement.quantity).where(
            StockMovement.reference == order.number, StockMovement.kind == "sale"))).all()
    assert row[0] == "collected" and row[1] is not None and "cashier1" in row[2]
    assert list(sales) == [-2]
    assert await level(db, vid, shop.store1) == (1, 0)
    assert await level(db, vid, shop.warehouse) == (5, 0)

    # The printable receipt of the collected order.
    await cashier.get_by_test_id("receipt-link").click()
    await expect(cashier.get_by_test_id("receipt-number")).to_have_text(order.number)
    await expect(cashier.get_by_test_id("print-receipt")).to_be_visible()
    await screenshot(cashier, "pickup-receipt")
    await cashier.emulate_media(media="print")
    await screenshot(cashier, "pickup-receipt-print")
    assert not await cashier.get_by_test_id("print-receipt").is_visible()
    assert not await cashier.get_by_test_id("receipt-email-form").is_visible()
    await cashier.emulate_media(media="screen")

    # The list no longer shows it; finding it again says nothing is waiting.
    await cashier.goto(f"{server.base_url}/pos/store-1/pickups")
    await expect(cashier.get_by_test_id("pickup-q")).to_be_visible()
    await expect(cashier.get_by_test_id(f"pickup-{order.number}")).to_have_count(0)
    await cashier.get_by_test_id("pickup-q").fill(code)
    await cashier.get_by_test_id("pickup-find").click()
    await expect(cashier.get_by_test_id("pickup-q-error")).to_be_visible()


async def test_pickup_pages_fit_a_phone(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, database_url: str, session_tmp: Path, backend: str) -> None:
    """Several matches list them; the handover page works on a 375 px screen."""
    settings = server_settings(database_url, session_tmp, backend)
    [v] = await make_variants(db, [990], stock={shop.store1: 5})
    vid = int(str(v["id"]))
    last = f"Monta{uuid.uuid4().hex[:8]}"
    numbers = []
    for i in range(2):
        order, _ = await place_web_order(db, settings, CheckoutIn(
            email=f"monta-{i}-{last}@example.fi", phone="040 111 2233", first_name="Mia",
            last_name=last, delivery="pickup", pickup_location_id=shop.store1,
            lines=[LineIn(variant_id=vid, quantity=1)]), customer_id=None,
            key=f"m-{last}-{i}")
        numbers.append(order.number)
    page = await open_page(contexts, browser, viewport=PHONE)
    await staff_login(page, server.base_url, shop, "cashier1", "/pos/store-1/pickups")
    await page.get_by_test_id("pickup-q").fill(last)
    await page.get_by_test_id("pickup-find").click()
    await expect(page.get_by_test_id("pickup-results")).to_be_visible()
    for n in numbers:  # not paid yet: listed as awaiting payment
        await expect(page.get_by_test_id(f"pickup-status-{n}")).to_have_text("Odottaa maksua")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.get_by_test_id(f"pickup-open-{numbers[0]}").click()
    await expect(page.get_by_test_id("customer-name")).to_have_text(f"Mia {last}")
    await expect(page.get_by_test_id("hand-over")).to_have_count(0)  # not paid: no button
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
