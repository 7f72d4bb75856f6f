"""The till in a real headless Chromium against a real server (both databases):
scanner-speed selling, discounts within the cashier's limit, voids, park and recall,
split tender."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.db.uow import Database
from saumaton.orders.models import Order, OrderLine, SaleVoid
from saumaton.payments.models import Payment
from tests.browser import PHONE, assert_fits, open_page
from tests.support import Server, Shop, make_variants, new_ean
from tests.test_browser import log_in, screenshot
from tests.test_till_api import open_drawer

EUR = "\xa0€"


async def open_till(page: Page, server: Server, shop: Shop, who: str = "cashier1") -> None:
    await log_in(page, server.base_url, shop, who)
    await expect(page).to_have_url(f"{server.base_url}/pos/store-1")
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    await expect(page.get_by_test_id("code-input")).to_be_focused()


async def order_of(page: Page, db: Database) -> tuple[Order, list[OrderLine], list[Payment]]:
    order_id = int(await page.locator("#till").get_attribute("data-last-order") or 0)
    async with db.reader() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        lines = list((await s.scalars(select(OrderLine).where(OrderLine.order_id == order_id)
                                      .order_by(OrderLine.line_no))).all())
        payments = list((await s.scalars(select(Payment).where(Payment.order_id == order_id)
                                         .order_by(Payment.id))).all())
    return order, lines, payments


async def test_scanner_speed_cash_sale(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop, tmp_path: Path, backend: str,
) -> None:
    a, b = await make_variants(db, [1999, 452], stock={shop.store1: 10})
    session_id = await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)

    # The scanner types each EAN and Enter, as fast as the keyboard goes.
    await page.keyboard.type(f"{a['ean']}\n{b['ean']}\n{b['ean']}\n")
    lines = page.get_by_test_id("cart-line")
    await expect(lines).to_have_count(2)
    await expect(lines.nth(1).get_by_test_id("line-qty")).to_have_value("2")
    await expect(lines.nth(1).get_by_test_id("line-total")).to_have_text(f"9,04{EUR}")
    await expect(page.get_by_test_id("total")).to_have_text(f"29,03{EUR}")
    await expect(page.get_by_test_id("cash-due")).to_have_text(f"29,05{EUR}")
    await expect(page.get_by_test_id("cash-rounding")).to_contain_text(f"+0,02{EUR}")
    await expect(page.get_by_test_id("code-input")).to_be_focused()

    # An unknown code leaves the sale as it is and says so at the field.
    await page.keyboard.type("4006381333931\n")
    await expect(page.get_by_test_id("error-code")).to_have_text(
        "Koodilla 4006381333931 ei löydy tuotetta.")
    await expect(lines).to_have_count(2)

    await page.get_by_test_id("tendered").fill("50")
    await expect(page.get_by_test_id("change")).to_have_text(f"20,95{EUR}")
    await screenshot(page, tmp_path, f"till-sale-{backend}")
    await page.get_by_test_id("pay-cash").click()

    receipt = page.get_by_test_id("receipt")
    await expect(receipt).to_be_visible()
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text(f"29,03{EUR}")
    await expect(receipt.get_by_test_id("rounding")).to_have_text(f"+0,02{EUR}")
    await expect(receipt.get_by_test_id("cash-paid")).to_have_text(f"29,05{EUR}")
    await expect(receipt.get_by_test_id("change")).to_have_text(f"20,95{EUR}")
    await expect(receipt.get_by_test_id("vat-row")).to_have_count(1)
    order, order_lines, payments = await order_of(page, db)
    assert order.drawer_session_id == session_id and order.total_cents == 2903
    assert [(ln.variant_id, ln.quantity, ln.total_cents) for ln in order_lines] == [
        (a["id"], 1, 1999), (b["id"], 2, 904)]
    assert [(p.method, p.amount_cents, p.rounding_cents, p.tendered_cents, p.change_cents)
            for p in payments] == [("cash", 2903, 2, 5000, 2095)]

    # New sale: an empty cart, ready for the next scan.
    await page.get_by_test_id("new-sale").click()
    await expect(page.get_by_test_id("cart-empty")).to_be_visible()
    await expect(lines).to_have_count(0)
    await expect(page.get_by_test_id("code-input")).to_be_focused()
    await page.keyboard.type(f"{a['sku'].lower()}\n")  # a SKU in any case
    await expect(lines).to_have_count(1)


async def test_line_discount_within_the_cashier_limit(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop, backend: str,
) -> None:
    [v] = await make_variants(db, [2000], stock={shop.store1: 10})
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    await page.keyboard.type(f"{v['ean']}\n")
    line = page.get_by_test_id("cart-line")
    await expect(line).to_have_count(1)

    await line.get_by_test_id("line-discount-button").click()
    amount = page.get_by_test_id("discount-amount")
    await expect(amount).to_be_focused()
    await expect(page.get_by_test_id("discount-limit")).to_have_text("Voit antaa enintään 20 %.")
    await amount.fill("25")
    await page.get_by_test_id("discount-reason").select_option("Kanta-asiakas")
    await page.get_by_test_id("discount-apply").click()
    error = page.get_by_test_id("error-discount-amount")
    await expect(error).to_have_text("Enintään 20 % alennus. Pyydä esihenkilöä.")
    await expect(page.get_by_test_id("discount-amount")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_test_id("total")).to_have_text(f"20,00{EUR}")  # unchanged

    # No reason: refused next to the reason.
    await page.get_by_test_id("discount-amount").fill("10")
    await page.get_by_test_id("discount-reason").select_option("")
    await page.get_by_test_id("discount-apply").click()
    await expect(page.get_by_test_id("error-discount-reason")).to_have_text(
        "Kerro alennuksen syy.")
    await page.get_by_test_id("discount-reason").select_option("Kanta-asiakas")
    await page.get_by_test_id("discount-apply").click()
    await expect(line.get_by_test_id("line-manual")).to_have_text(f"−2,00{EUR} · Kanta-asiakas")
    await expect(page.get_by_test_id("total")).to_have_text(f"18,00{EUR}")
    await expect(page.get_by_test_id("code-input")).to_be_focused()

    await page.get_by_test_id("pay-card").click()
    receipt = page.get_by_test_id("receipt")
    await expect(receipt.get_by_test_id("card-paid")).to_have_text(f"18,00{EUR}")
    _, [ol], [payment] = await order_of(page, db)
    assert (ol.manual_discount_cents, ol.discount_reason, ol.total_cents) == (
        200, "Kanta-asiakas", 1800)
    assert payment.method == "card" and payment.rounding_cents == 0


async def test_voids_park_recall_and_search(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop, tmp_path: Path, backend: str,
) -> None:
    a, b, c = await make_variants(db, [1000, 500, 250], stock={shop.store1: 10})
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser, viewport=PHONE, is_mobile=True,
                           has_touch=True)
    await open_till(page, server, shop)
    lines = page.get_by_test_id("cart-line")

    # Voids: − on a line of 2 and ✕ on another are kept with the sale.
    await page.keyboard.type(f"{a['ean']}\n{a['ean']}\n{b['ean']}\n")
    await expect(lines).to_have_count(2)
    await lines.nth(0).get_by_test_id("dec").click()
    await expect(lines.nth(0).get_by_test_id("line-qty")).to_have_value("1")
    await lines.nth(1).get_by_test_id("remove").click()
    await expect(lines).to_have_count(1)
    await expect(page.get_by_test_id("code-input")).to_be_focused()
    await assert_fits(page)

    # Park it; sell something else meanwhile; recall it.
    await page.get_by_test_id("park").click()
    await expect(page.get_by_test_id("cart-empty")).to_be_visible()
    await expect(page.get_by_test_id("parked-count")).to_have_text("1")
    # search as you type: a few letters of the name, arrow down, Enter
    await page.get_by_test_id("code-input").fill(str(c["sku"]))
    await expect(page.get_by_test_id("suggestion")).to_have_count(1)
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(lines).to_have_count(1)
    await expect(lines.first).to_have_attribute("data-variant-id", str(c["id"]))
    await page.get_by_test_id("parked-button").click()
    await expect(page.get_by_test_id("parked-sale")).to_have_count(1)
    await page.get_by_test_id("recall").click()
    await expect(lines).to_have_count(1)
    await expect(lines.first).to_have_attribute("data-variant-id", str(a["id"]))
    await expect(page.get_by_test_id("parked-count")).to_have_text("1")  # c waits now

    # The sale survives a reload of the page.
    await page.reload()
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    await expect(lines).to_have_count(1)
    await expect(page.get_by_test_id("total")).to_have_text(f"10,00{EUR}")
    await screenshot(page, tmp_path, f"till-phone-{backend}")
    await page.get_by_test_id("pay-cash").click()
    await expect(page.get_by_test_id("receipt")).to_be_visible()
    order, _, _ = await order_of(page, db)
    async with db.reader() as s:
        voids = (await s.scalars(select(SaleVoid).where(SaleVoid.order_id == order.id)
                                 .order_by(SaleVoid.id))).all()
    assert [(x.variant_id, x.quantity, x.amount_cents) for x in voids] == [
        (a["id"], 1, 1000), (b["id"], 1, 500)]

    # Clearing a sale voids what was in it (posted as the cancelled sale's voids).
    await page.get_by_test_id("new-sale").click()
    await page.get_by_test_id("parked-button").click()
    await page.get_by_test_id("recall").click()
    await expect(lines).to_have_count(1)
    async with page.expect_response(lambda r: r.url.endswith("/api/voids")) as answer:
        await page.get_by_test_id("clear-sale").click()
    assert (await answer.value).status == 200
    await expect(page.get_by_test_id("cart-empty")).to_be_visible()
    await expect(page.get_by_test_id("parked-count")).to_have_text("0")
    async with db.reader() as s:
        cancelled = (await s.scalars(select(SaleVoid).where(SaleVoid.variant_id == c["id"]))).all()
    assert [(x.quantity, x.amount_cents, x.order_id) for x in cancelled] == [(1, 250, None)]


async def test_split_tender(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop, backend: str,
) -> None:
    [v] = await make_variants(db, [4993], stock={shop.store1: 10})
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    await page.keyboard.type(f"{v['ean']}\n")
    await expect(page.get_by_test_id("total")).to_have_text(f"49,93{EUR}")
    await expect(page.get_by_test_id("cash-due")).to_have_text(f"49,95{EUR}")
    await page.get_by_test_id("card-amount").fill("20")
    await expect(page.get_by_test_id("cash-due")).to_have_text(f"29,95{EUR}")
    await expect(page.get_by_test_id("pay-cash")).to_have_text(
        "Kortti hyväksytty, loput käteisellä")
    await page.get_by_test_id("tendered").fill("30")
    await expect(page.get_by_test_id("change")).to_have_text(f"0,05{EUR}")
    await page.get_by_test_id("card-amount").fill("60")
    await expect(page.get_by_test_id("error-card-amount")).to_have_text(
        "Korttiosuus on suurempi kuin loppusumma.")
    await page.get_by_test_id("card-amount").fill("20,00")
    await page.get_by_test_id("pay-cash").click()
    receipt = page.get_by_test_id("receipt")
    await expect(receipt.get_by_test_id("card-paid")).to_have_text(f"20,00{EUR}")
    await expect(receipt.get_by_test_id("cash-paid")).to_have_text(f"29,95{EUR}")
    await expect(receipt.get_by_test_id("change")).to_have_text(f"0,05{EUR}")
    _, _, payments = await order_of(page, db)
    assert [(p.method, p.amount_cents, p.rounding_cents, p.tendered_cents, p.change_cents)
            for p in payments] == [("card", 2000, 0, None, 0), ("cash", 2993, 2, 3000, 5)]


async def test_customer_found_by_phone_is_attached_to_the_sale(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop, backend: str,
) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 10})
    await open_drawer(db, shop.store1)
    phone = f"+35840{random.randrange(10**7):07d}"
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        r = await api.post("/api/v1/customers", headers=shop.auth("owner"), json={
            "first_name": "Aino", "last_name": "Asiakas", "phone": phone})
        assert r.status_code == 201, r.text
        customer_id = r.json()["id"]
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    await page.keyboard.type(f"{v['ean']}\n")
    await expect(page.get_by_test_id("cart-line")).to_have_count(1)
    # a phone number typed (or a loyalty card scanned) opens the customer panel
    await page.keyboard.type(f"{phone}\n")
    panel = page.get_by_test_id("customer-panel")
    await expect(panel).to_be_visible()
    await panel.get_by_test_id("attach-customer").click()
    await expect(panel).to_be_hidden()
    await expect(page.get_by_test_id("sale-customer")).to_contain_text("Aino")
    await expect(page.get_by_test_id("code-input")).to_be_focused()
    await page.get_by_test_id("pay-card").click()
    await expect(page.get_by_test_id("receipt")).to_be_visible()
    order, _, _ = await order_of(page, db)
    assert order.customer_id == customer_id


async def test_offline_sale_gets_an_offline_receipt_and_syncs_once(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop, backend: str,
) -> None:
    [v] = await make_variants(db, [1998], stock={shop.store1: 10})
    session_id = await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    await page.context.set_offline(True)
    await page.keyboard.type(f"{v['ean']}\n")
    await expect(page.get_by_test_id("cash-due")).to_have_text(f"20,00{EUR}")
    await page.get_by_test_id("tendered").fill("20")
    await page.get_by_test_id("pay-cash").click()
    receipt = page.get_by_test_id("receipt")
    await expect(receipt.get_by_test_id("offline-receipt")).to_have_text(
        "Ei yhteyttä — odottaa siirtoa")
    await expect(receipt.get_by_test_id("business-id")).to_have_text("2077474-0")
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text(f"19,98{EUR}")
    await expect(receipt.get_by_test_id("rounding")).to_have_text(f"+0,02{EUR}")
    await expect(receipt.get_by_test_id("cash-paid")).to_have_text(f"20,00{EUR}")
    await expect(receipt.get_by_test_id("change")).to_have_text(f"0,00{EUR}")
    await expect(receipt.get_by_test_id("vat-row")).to_have_text(
        f"25,5 %15,92{EUR}4,06{EUR}19,98{EUR}")
    client_ref = (await receipt.get_by_test_id("receipt-number").text_content() or "").strip()
    assert client_ref

    async with page.expect_response(
            lambda r: r.url.endswith("/api/sales") and r.status in (200, 201)):
        await page.context.set_offline(False)
    async with db.reader() as s:
        orders = (await s.scalars(select(Order).where(
            Order.client_ref == client_ref, Order.drawer_session_id == session_id,
            Order.id.in_(select(OrderLine.order_id).where(OrderLine.variant_id == v["id"]))))
        ).all()
    assert [(o.offline, o.total_cents) for o in orders] == [(True, 1998)]


async def test_quantity_box_refuses_bad_numbers_and_keeps_the_line(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop,
) -> None:
    [v] = await make_variants(db, [250], stock={shop.store1: 10})
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    await page.keyboard.type(f"{v['ean']}\n")
    line = page.get_by_test_id("cart-line")
    qty = line.get_by_test_id("line-qty")
    error = line.get_by_test_id("qty-error")
    await expect(qty).to_have_value("1")

    for typed, message in [
        ("kaksi", "Anna määrä kokonaislukuna 1–10\xa0000 (0 poistaa rivin)."),
        ("-3", "Anna määrä kokonaislukuna 1–10\xa0000 (0 poistaa rivin)."),
        ("1,5", "Anna määrä kokonaislukuna 1–10\xa0000 (0 poistaa rivin)."),
        ("99999999999", "Yhtä tuotetta voi olla myynnissä enintään 10\xa0000 kpl."),
    ]:
        await qty.fill(typed)
        await qty.press("Enter")
        await expect(error).to_have_text(message)
        await expect(line).to_have_count(1)  # the line stays, with its quantity
        await expect(qty).to_have_value("1")
        await expect(qty).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_test_id("total")).to_have_text(f"2,50{EUR}")

    await qty.fill("3")
    await qty.press("Enter")
    await expect(error).to_have_count(0)
    await expect(qty).to_have_value("3")
    await expect(qty).not_to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_test_id("total")).to_have_text(f"7,50{EUR}")
    await page.get_by_test_id("pay-card").click()
    await expect(page.get_by_test_id("receipt")).to_be_visible()
    _, [ol], _ = await order_of(page, db)
    assert ol.quantity == 3


async def test_sync_status_speaks_the_pages_language_on_every_till_page(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop,
) -> None:
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    status = page.get_by_test_id("sync-status-text")
    finnish = "Yhteys toimii, kaikki myynnit siirretty"
    await expect(status).to_have_text(finnish)
    for path in ("pickups", "drawer", "drawer/close", "reports"):
        await page.goto(f"{server.base_url}/pos/store-1/{path}")
        await expect(status).to_have_text(finnish)
        await expect(page.get_by_test_id("sync-details-toggle")).to_be_hidden()

    await page.goto(f"{server.base_url}/pos/store-1/drawer?lang=en")
    await expect(status).to_have_text("Online, everything synced")


async def test_a_product_created_while_the_till_is_open_scans_without_a_reload(
    browser: Browser, contexts: list[BrowserContext], server: Server,
    db: Database, shop: Shop,
) -> None:
    await open_drawer(db, shop.store1)
    page = await open_page(contexts, browser)
    await open_till(page, server, shop)
    till = page.locator("#till")
    await expect(till).to_have_attribute("data-live", "1")  # following the events
    size = int(await till.get_attribute("data-catalogue-size") or -1)
    assert size >= 0

    ean = new_ean()
    tag = random.randrange(10**8)
    async with httpx.AsyncClient(base_url=server.base_url, headers=shop.auth()) as api:
        r = await api.post("/api/v1/products", json={
            "slug": f"uutuus-{tag}", "name": f"Uutuus {tag}", "brand": "Test",
            "vat_class": "standard", "variants": [
                {"sku": f"NEW-{tag}", "ean": ean, "name": "50 ml", "price_cents": 1490}]})
        assert r.status_code == 201, r.text
    # The open page takes a fresh snapshot on the event: no reload.
    await expect(till).to_have_attribute("data-catalogue-size", str(size + 1))
    await page.keyboard.type(f"{ean}\n")
    line = page.get_by_test_id("cart-line")
    await expect(line).to_have_count(1)
    await expect(line).to_contain_text(f"Uutuus {tag}")
    await expect(page.get_by_test_id("total")).to_have_text(f"14,90{EUR}")
    await expect(page.get_by_test_id("error-code")).to_be_hidden()
