"""The cash drawer in a real headless Chromium against a real server (both databases),
on a phone-sized screen: open the till with a float, the day's sales, a cash out,
close with a count, and the Z report page's figures must equal the sums of that
day's sales in the database; the report is listed and reprints identically."""

from __future__ import annotations

import os
import re
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.orders.discounts import DiscountIn
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment
from saumaton.tills.drawer import close_session, open_session_at
from saumaton.tills.models import CashMovement, DrawerSession
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, VoidIn, sell
from saumaton.web.i18n import money, rate
from tests.browser import WAIT_MS, assert_fits, fill_staff_login
from tests.support import Server, Shop, make_variants

PHONE = {"width": 375, "height": 812}



async def open_page(contexts: list[BrowserContext], browser: Browser,
                    **options: object) -> Page:
    options.setdefault("locale", "fi-FI")
    options.setdefault("viewport", PHONE)
    context = await browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(WAIT_MS)
    contexts.append(context)
    return await context.new_page()


async def log_in(page: Page, base_url: str, shop: Shop, who: str) -> None:
    await page.goto(f"{base_url}/staff/login?next=%2Fpos%2F")
    await fill_staff_login(page, shop, who)
    await expect(page).not_to_have_url(re.compile(r"/staff/login"))


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """Saved with the test; also copied to $SAUMATON_SCREENSHOTS when set."""
    target = os.environ.get("SAUMATON_SCREENSHOTS")
    for folder in [tmp_path, *([Path(target)] if target else [])]:
        await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def eur(cents: int) -> str:
    return money(cents, "fi")


def key() -> str:
    return uuid.uuid4().hex


async def days_sales(db: Database, shop: Shop, session_id: int) -> None:
    """The day's sales at store 1, recorded by the till's own `sell`."""
    cashier = Actor(label="staff:cashier1", name="Cashier1",
                    grants=(RoleGrant("cashier", shop.store1),))
    std = await make_variants(db, [1999, 4590], stock={shop.store1: 3})
    [food] = await make_variants(db, [1234], vat_class="food", stock={shop.store1: 10})
    a, b, f = (int(str(v["id"])) for v in (*std, food))

    def cash(tendered: int | None = None, amount: int | None = None) -> TillPaymentIn:
        return TillPaymentIn(method="cash", tendered_cents=tendered, amount_cents=amount)

    def card(amount: int | None = None) -> TillPaymentIn:
        return TillPaymentIn(method="card", amount_cents=amount, terminal_confirmed=True)

    for cmd in [
        TillSaleIn(key=key(), session_id=session_id, payments=[cash(5000)],
                   lines=[TillLineIn(variant_id=a, quantity=1)]),
        TillSaleIn(key=key(), session_id=session_id, payments=[card()],
                   lines=[TillLineIn(variant_id=f, quantity=3)]),
        TillSaleIn(key=key(), session_id=session_id, payments=[card(2000), cash(10000)],
                   lines=[TillLineIn(variant_id=b, quantity=1),
                          TillLineIn(variant_id=f, quantity=1)]),
        TillSaleIn(key=key(), session_id=session_id, payments=[cash()],
                   lines=[TillLineIn(variant_id=b, quantity=1, discount=DiscountIn(
                       percent_bp=1500, reason="Kanta-asiakas"))],
                   voids=[VoidIn(variant_id=a, quantity=1, amount_cents=1999,
                                 reason="Väärä sävy")]),
        TillSaleIn(key=key(), session_id=session_id, payments=[card()], offline=True,
                   sold_at=utcnow() - timedelta(minutes=3), client_ref="K1-000042",
                   lines=[TillLineIn(variant_id=a, quantity=3, unit_price_cents=1999)]),
    ]:
        await sell(db, cashier, shop.store1, cmd)


async def test_open_sell_cash_out_close_and_reprint_the_z_report(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, tmp_path: Path, backend: str,
) -> None:
    base = f"{server.base_url}/pos/store-1"
    # Earlier tests sold at store 1 and left its till open: close it as last night.
    async with db.uow() as uow:
        left_open = await open_session_at(uow.session, shop.store1)
        if left_open is not None:
            await close_session(uow, SYSTEM, left_open.id, 0, "closed by the test setup")
            await uow.commit()
    [scanned] = await make_variants(db, [2903], stock={shop.store1: 5})
    page = await open_page(contexts, browser)
    await log_in(page, server.base_url, shop, "cashier1")

    # Open the till with a float of 150,00 €; a bad amount first.
    await page.goto(f"{base}/drawer")
    await expect(page.get_by_test_id("drawer-open")).to_be_visible()
    await assert_fits(page)
    float_input = page.get_by_test_id("float")
    await float_input.fill("sataviisikymmentä")
    await page.get_by_test_id("open-till").click()
    await expect(page.get_by_test_id("error-float")).to_have_text(
        "Syötä summa, esim. 150,00.")
    await expect(page.get_by_test_id("float")).to_have_attribute("aria-invalid", "true")
    async with db.reader() as s:
        assert await open_session_at(s, shop.store1) is None
    await page.get_by_test_id("float").fill("150,00")
    await page.get_by_test_id("open-till").click()
    await expect(page).to_have_url(base)
    async with db.reader() as s:
        drawer = await open_session_at(s, shop.store1)
    assert drawer is not None and drawer.float_cents == 15000

    # The first sale through the till: scan, 50 € in cash, 29,03 € rounded to 29,05 €.
    await expect(page.locator("#till[data-ready='1']")).to_have_count(1)
    await expect(page.get_by_test_id("code-input")).to_be_focused()
    await page.keyboard.type(f"{scanned['ean']}\n")
    await expect(page.get_by_test_id("cart-line")).to_have_count(1)
    await page.get_by_test_id("tendered").fill("50")
    await page.get_by_test_id("pay-cash").click()
    receipt = page.get_by_test_id("receipt")
    await expect(receipt.get_by_test_id("cash-paid")).to_have_text(eur(2905))
    # The rest of the day's sales, recorded as the till records them.
    await days_sales(db, shop, drawer.id)

    # The drawer page: the X report so far; a cash out needs a reason.
    await page.goto(f"{base}/drawer")
    await expect(page.get_by_test_id("z-title")).to_have_text(
        "X-raportti (välitulos, kassa auki)")
    await expect(page.get_by_test_id("z-sales-count")).to_have_text("6")
    await assert_fits(page)
    await page.get_by_test_id("out-amount").fill("20,00")
    await page.get_by_test_id("cash-out").click()
    await expect(page.get_by_test_id("error-out-reason")).to_have_text("Kerro syy.")
    await expect(page.get_by_test_id("out-amount")).to_have_value("20,00")
    await page.get_by_test_id("out-reason").fill("Postimerkit")
    await page.get_by_test_id("cash-out").click()
    await expect(page.get_by_test_id("cash-saved")).to_have_text("Kassasta otto kirjattu.")
    await expect(page.get_by_test_id("z-cash-out")).to_have_text(eur(2000))
    await expect(page.get_by_test_id("z-movement")).to_have_count(1)
    await screenshot(page, tmp_path, f"drawer-{backend}")

    # Close: the count helper adds up notes and coins.
    await page.get_by_test_id("close-link").click()
    await expect(page).to_have_url(f"{base}/drawer/close")
    # Nothing is waiting on this device (the header's sync status says so), so the
    # warning about sales that have not reached the server stays hidden.
    await expect(page.get_by_test_id("sync-status")).to_have_attribute("data-pending", "0")
    await expect(page.get_by_test_id("unsynced-warning")).to_be_hidden()
    await assert_fits(page)
    expected_text = await page.get_by_test_id("close-expected").inner_text()
    await page.get_by_test_id("count-helper").locator("summary").click()
    await page.get_by_test_id("count-5000").fill("2")
    await page.get_by_test_id("count-20").fill("3")
    await expect(page.get_by_test_id("counted")).to_have_value("100,60")
    await screenshot(page, tmp_path, f"drawer-close-{backend}")
    await page.get_by_test_id("counted").fill("-5")
    await page.get_by_test_id("close-till").click()
    await expect(page.get_by_test_id("error-counted")).to_have_text(
        "Syötä laskettu käteinen summana, esim. 215,40.")
    async with db.reader() as s:
        assert await open_session_at(s, shop.store1) is not None
    # Count 3,00 € short of what should be there.
    async with db.reader() as s:
        ds = await s.get(DrawerSession, drawer.id)
        assert ds is not None
        orders = (await s.scalars(select(Order).where(
            Order.drawer_session_id == drawer.id, Order.status == "completed"))).all()
        ids = [o.id for o in orders]
        lines = (await s.scalars(select(OrderLine).where(OrderLine.order_id.in_(ids)))).all()
        payments = (await s.scalars(select(Payment).where(Payment.order_id.in_(ids)))).all()
        movements = (await s.scalars(select(CashMovement).where(
            CashMovement.session_id == drawer.id))).all()
    cash_p = [p for p in payments if p.method == "cash"]
    collected = sum(p.amount_cents + p.rounding_cents for p in cash_p)
    expected = (15000 + collected + sum(m.amount_cents for m in movements if m.kind == "in")
                - sum(m.amount_cents for m in movements if m.kind == "out"))
    assert expected_text == eur(expected)
    # 50 € short is more than the 10 € the till lets through without a second count.
    short = expected - 5000
    await page.get_by_test_id("counted").fill(f"{short // 100},{short % 100:02d}")
    await page.get_by_test_id("close-till").click()
    await expect(page.get_by_test_id("error-counted")).to_have_text(
        "Laskettu käteinen poikkeaa odotetusta 50,00 €. Laske uudelleen; jos summa on "
        "oikein, rastita ruutu ja sulje kassa.")
    await expect(page.get_by_test_id("confirm-difference")).to_be_visible()
    async with db.reader() as s:
        assert await open_session_at(s, shop.store1) is not None
    counted = expected - 300
    await page.get_by_test_id("counted").fill(f"{counted // 100},{counted % 100:02d}")
    await page.get_by_test_id("note").fill("Kolikot laskettu kahdesti")
    await page.get_by_test_id("close-till").click()
    await expect(page).to_have_url(re.compile(rf"{re.escape(base)}/reports/\d+\?closed=1$"))
    z_number = int(page.url.rsplit("/", 1)[1].split("?")[0])
    await expect(page.get_by_test_id("closed-banner")).to_be_visible()
    await assert_fits(page)

    # Every figure on the page equals the sums of the day's rows.
    report = page.get_by_test_id("zreport")
    await expect(report.get_by_test_id("z-title")).to_have_text(f"Z-raportti nro {z_number}")
    await expect(report.get_by_test_id("z-sales-count")).to_have_text(str(len(orders)))
    await expect(report.get_by_test_id("z-net")).to_have_text(
        eur(sum(o.total_cents for o in orders)))
    await expect(report.get_by_test_id("z-gross")).to_have_text(
        eur(sum(o.subtotal_cents for o in orders)))
    await expect(report.get_by_test_id("z-manual-discounts")).to_have_text(
        "−" + eur(sum(ln.manual_discount_cents for ln in lines)))
    await expect(report.get_by_test_id("z-cash-amount")).to_have_text(
        eur(sum(p.amount_cents for p in cash_p)))
    rounding = sum(p.rounding_cents for p in cash_p)
    await expect(report.get_by_test_id("z-cash-rounding")).to_have_text(
        ("+" if rounding > 0 else "") + eur(rounding))
    await expect(report.get_by_test_id("z-cash-collected")).to_have_text(eur(collected))
    await expect(report.get_by_test_id("z-card")).to_have_text(eur(sum(
        p.amount_cents for p in payments if p.method == "card" and p.status == "captured")))
    await expect(report.get_by_test_id("z-card-to-confirm")).to_have_text(eur(sum(
        p.amount_cents for p in payments if p.method == "card" and p.status == "to_confirm")))
    await expect(report.get_by_test_id("z-payments-total")).to_have_text(
        eur(sum(p.amount_cents for p in payments)))
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ln in lines:
        by_rate[ln.vat_rate_bp][0] += ln.total_cents
        by_rate[ln.vat_rate_bp][1] += ln.vat_cents
    assert set(by_rate) == {2550, 1350}
    await expect(report.get_by_test_id("z-vat-row")).to_have_count(len(by_rate))
    for r, (gross, vat) in by_rate.items():
        row = report.locator(f"[data-testid=z-vat-row][data-rate='{r}']")
        await expect(row).to_contain_text(f"{rate(r, 'fi')} %")
        await expect(row.get_by_test_id("z-vat-net")).to_have_text(eur(gross - vat))
        await expect(row.get_by_test_id("z-vat-vat")).to_have_text(eur(vat))
        await expect(row.get_by_test_id("z-vat-gross")).to_have_text(eur(gross))
    await expect(report.get_by_test_id("z-void-count")).to_have_text("1")
    await expect(report.get_by_test_id("z-float")).to_have_text(eur(15000))
    await expect(report.get_by_test_id("z-cash-out")).to_have_text(eur(2000))
    await expect(report.get_by_test_id("z-expected")).to_have_text(eur(expected))
    await expect(report.get_by_test_id("z-counted")).to_have_text(eur(counted))
    await expect(report.get_by_test_id("z-difference")).to_have_text(eur(-300))
    await expect(report.get_by_test_id("z-offline")).to_have_text("1")
    await expect(report.get_by_test_id("z-flag-card_unconfirmed")).to_have_text("1")
    await expect(report.get_by_test_id("z-note")).to_contain_text("Kolikot laskettu kahdesti")
    printed = await report.inner_text()
    await screenshot(page, tmp_path, f"zreport-{backend}")

    # Printed on 80 mm paper: the report alone, 80 mm wide.
    await page.emulate_media(media="print")
    await expect(page.locator("header.top")).to_be_hidden()
    await expect(page.get_by_test_id("print")).to_be_hidden()
    width = await report.evaluate("el => el.getBoundingClientRect().width")
    await screenshot(page, tmp_path, f"zreport-print-{backend}")
    assert abs(width - 80 / 25.4 * 96) < 1, width
    await page.emulate_media(media="screen")

    # The till is closed: the till sends the cashier to open it again.
    async with db.reader() as s:
        assert await open_session_at(s, shop.store1) is None
    await page.goto(f"{base}/drawer")
    await expect(page.get_by_test_id("drawer-open")).to_be_visible()

    # The list of Z reports, newest first, and the reprint.
    await page.goto(f"{base}/reports")
    item = page.locator(f"[data-testid=z-list-item][data-z='{z_number}']")
    await expect(item.get_by_test_id("z-list-net")).to_have_text(
        eur(sum(o.total_cents for o in orders)))
    await expect(page.get_by_test_id("z-list-item").first).to_have_attribute(
        "data-z", str(z_number))
    await assert_fits(page)
    await item.get_by_role("link").click()
    await expect(page).to_have_url(f"{base}/reports/{z_number}")
    await expect(page.get_by_test_id("closed-banner")).to_have_count(0)
    assert await page.get_by_test_id("zreport").inner_text() == printed

    # In English, and an unknown report number.
    await page.goto(f"{base}/reports/{z_number}?lang=en")
    await expect(page.get_by_test_id("z-title")).to_have_text(f"Z report no. {z_number}")
    await expect(page.get_by_test_id("z-expected")).to_have_text(money(expected, "en"))
    response = await page.goto(f"{base}/reports/{z_number + 100}")
    assert response is not None and response.status == 404
    await expect(page.get_by_text("There is no such Z report.")).to_be_visible()
