"""Returns in a real headless Chromium against a real server (both databases):

- a web order paid through the Paytrail simulator is returned at the Tampere store's
  till (found by scanning its number into the till's code field), refunded through
  the simulator by the refund job; the stock is up at that store, the shopper's order
  page shows the refund, the points earned are taken back;
- a shopper starts a postal return from her account (phone size) and the back office
  receives the parcel.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.checkout.services import (
    AddressIn,
    CheckoutIn,
    place_web_order,
)
from saumaton.config import TEST_MERCHANT, Settings
from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.loyalty.ledger import balance
from saumaton.orders.lifecycle import OrderStatus, transition_row
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn
from saumaton.payments.models import Refund
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.payments.paytrail_refunds import send_due_refunds
from saumaton.returns.models import Return
from tests.browser import PHONE, assert_fits, browser, contexts, fill_staff_login, open_page
from tests.support import Server, Shop, csrf_of, eventually, make_variants, pay_web_order
from tests.test_accounts import PASSWORD, register, verify
from tests.test_checkout_browser import (
    ORDER_URL,
    add_to_cart_and_check_out,
    fill_home_delivery,
    new_item,
    number_of,
    submit_checkout,
)
from tests.test_pickup_browser import screenshot
from tests.test_returns import on_hand
from tests.test_till_api import open_drawer

__all__ = ["browser", "contexts"]


@dataclass(frozen=True)
class ShopperOrder:
    """A verified shopper and her paid web order."""

    email: str
    customer_id: int
    order_id: int
    variant_id: int

    @property
    def number(self) -> str:
        return f"{self.order_id:06d}"

    async def sign_in(self, c: httpx.AsyncClient) -> None:
        page = (await c.get("/account/login")).text
        r = await c.post("/account/login", data={"csrf_token": csrf_of(page),
                                                 "email": self.email, "password": PASSWORD})
        assert r.status_code == 303, r.text


async def paid_account_order(db: Database, shop: Shop, settings: Settings | None = None,
                             price: int = 2490) -> ShopperOrder:
    """A registered, verified shopper's home-delivery order, paid (Paytrail's result
    recorded without the simulator: for returns that need no refund through it)."""
    settings = settings or Settings()
    email = f"palauttaja.{uuid.uuid4().hex[:8]}@example.fi"
    cid = await register(db, settings, email)
    await verify(db, email)
    [v] = await make_variants(db, [price], stock={shop.warehouse: 5})
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email=email, phone="", first_name="Maija", last_name="Meikäläinen", delivery="home",
        address=AddressIn(name="Maija M", street="Hämeenkatu 1", postcode="33100",
                          city="Tampere"),
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=2)]),
        customer_id=cid, key=f"ret-{uuid.uuid4().hex}")
    await pay_web_order(db, settings, order)
    return ShopperOrder(email, cid, order.id, int(str(v["id"])))


async def shipped(db: Database, order_id: int) -> None:
    """The order went out to the shopper (a partial return of an order still being
    fulfilled keeps its status: these tests return goods she has received)."""
    async with db.uow() as uow:
        await transition_row(uow, order_id, OrderStatus.PAID, OrderStatus.SHIPPED,
                             actor=SYSTEM)
        await uow.commit()


async def staff_log_in(page: Page, base_url: str, shop: Shop, who: str, next_path: str) -> None:
    await page.goto(f"{base_url}/staff/login?next={next_path}")
    await fill_staff_login(page, shop, who)
    await expect(page).to_have_url(re.compile(re.escape(base_url + next_path.split("?")[0])))


async def shopper_log_in(page: Page, base_url: str, who: ShopperOrder) -> None:
    await page.goto(f"{base_url}/account/login")
    await page.locator("#email").fill(who.email)
    await page.locator("#password").fill(PASSWORD)
    await page.get_by_test_id("login-form").get_by_role("button").click()
    await expect(page).to_have_url(f"{base_url}/account/")


async def test_shopper_starts_a_post_return_and_the_back_office_receives_it(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    shopper = await paid_account_order(db, shop)
    await shipped(db, shopper.order_id)
    page = await open_page(contexts, browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await shopper_log_in(page, server.base_url, shopper)
    await page.goto(f"{server.base_url}/account/orders/{shopper.number}")
    await page.get_by_test_id("return-items").click()
    await expect(page.get_by_test_id("return-form")).to_be_visible()
    await assert_fits(page)
    # Sent without choosing: both errors next to their fields, in Finnish.
    await page.get_by_test_id("start-return").click()
    await expect(page.get_by_test_id("error-lines")).to_have_text(
        "Valitse ainakin yksi palautettava tuote.")
    await expect(page.get_by_test_id("error-reason")).to_have_text("Valitse palautuksen syy.")
    await page.get_by_test_id("qty-1").fill("1")
    await page.get_by_test_id("reason").select_option(label="Väärä sävy tai koko")
    await page.get_by_test_id("start-return").click()
    await expect(page.get_by_test_id("return-started")).to_be_visible()
    code = (await page.get_by_test_id("return-code").inner_text()).strip()
    await expect(page.locator(".return-qr svg")).to_be_visible()
    await expect(page.get_by_test_id("return-instructions")).to_contain_text(code)
    await screenshot(page, "account-return-phone")
    await assert_fits(page)
    # The order page shows the return waiting for its parcel.
    await page.goto(f"{server.base_url}/account/orders/{shopper.number}")
    waiting = page.get_by_test_id(f"order-return-{code}")
    await expect(waiting).to_have_attribute("data-status", "requested")

    # The warehouse scans the code on the parcel and receives it.
    staff = await open_page(contexts, browser)
    await staff_log_in(staff, server.base_url, shop, "manager", "/backoffice/returns")
    await expect(staff.get_by_test_id(f"open-return-{code}")).to_be_visible()
    await staff.get_by_test_id("receive-q").fill(code.lower())
    await staff.get_by_test_id("receive-find").click()
    await expect(staff.get_by_test_id("return-code")).to_have_text(code)
    stock = await on_hand(db, shopper.variant_id, shop.warehouse)
    await staff.get_by_test_id("receive-location").select_option(str(shop.warehouse))
    await staff.get_by_test_id("complete-return").click()
    await expect(staff.get_by_test_id("return-done")).to_be_visible()
    await expect(staff.get_by_test_id("credit-receipt")).to_be_visible()
    await expect(staff.get_by_test_id("refund-paytrail")).to_have_attribute("data-status", "due")
    assert await on_hand(db, shopper.variant_id, shop.warehouse) == stock + 1
    async with db.reader() as s:
        ret = await s.scalar(select(Return).where(Return.code == code))
        refund = await s.scalar(select(Refund).where(Refund.order_id == shopper.order_id))
        order = await s.get(Order, shopper.order_id)
    assert ret is not None and ret.status == "completed"
    assert refund is not None and refund.method == "paytrail"
    assert order is not None and order.status == "partly_returned"

    # Her order page now shows the refund on its way to her Paytrail payment.
    await page.goto(f"{server.base_url}/account/orders/{shopper.number}")
    done = page.get_by_test_id(f"order-return-{code}")
    await expect(done).to_have_attribute("data-status", "completed")
    await expect(done.get_by_test_id("refund-paytrail")).to_contain_text(
        "Hyvitetty verkkomaksuun (Paytrail)")


async def refund_status(db: Database, order_id: int) -> list[tuple[str, str, int]]:
    async with db.reader() as s:
        rows = (await s.execute(select(Refund.method, Refund.status, Refund.amount_cents)
                                .where(Refund.order_id == order_id)
                                .order_by(Refund.id))).all()
    return [(str(m), str(st), int(a)) for m, st, a in rows]


async def test_web_order_returned_at_the_other_store_is_refunded_through_paytrail(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    # A member buys two of a shade online and pays through the Paytrail simulator.
    email = f"savy.{uuid.uuid4().hex[:8]}@example.fi"
    cid = await register(db, settings, email)
    shopper = await open_page(contexts, browser, viewport=PHONE, is_mobile=True,
                              has_touch=True)
    await shopper.goto(f"{server.base_url}/account/login")
    await shopper.locator("#email").fill(email)
    await shopper.locator("#password").fill(PASSWORD)
    await shopper.get_by_test_id("login-submit").click()
    await expect(shopper).to_have_url(f"{server.base_url}/account/")
    item = await new_item(db, server.base_url, 2490, {shop.warehouse: 5})
    await add_to_cart_and_check_out(shopper, server.base_url, item, quantity=2)
    await fill_home_delivery(shopper)
    await submit_checkout(shopper)
    await shopper.get_by_label("OP").check()
    await shopper.locator("#success").click()
    await expect(shopper).to_have_url(ORDER_URL)
    order_url, number = shopper.url, number_of(shopper.url)
    order_id = int(number)
    async with db.reader() as s:
        earned = await balance(s, cid)
    assert earned == 49  # 2 × 24,90 (the delivery fee earns nothing)
    await shipped(db, order_id)

    # At the Tampere store the cashier scans the order number from her e-mail.
    await open_drawer(db, shop.store2)
    stock = await on_hand(db, item.id, shop.store2)
    till = await open_page(contexts, browser)
    await staff_log_in(till, server.base_url, shop, "cashier2", "/pos/store-2")
    await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
    await till.get_by_test_id("code-input").fill(number)
    await till.get_by_test_id("code-input").press("Enter")
    offer = till.get_by_test_id("return-offer")
    await expect(offer).to_have_text(f"Avaa tilaus {number} palautusta varten")
    await offer.click()
    await expect(till).to_have_url(f"{server.base_url}/pos/store-2/returns/orders/{order_id}")
    await expect(till.get_by_test_id("order-where")).to_have_text("Webshop")
    await expect(till.get_by_test_id("returnable-1")).to_have_text("2")
    await expect(till.get_by_test_id("window")).to_contain_text("Palautusaika on auki")
    await expect(till.get_by_test_id("refund-original")).to_be_checked()
    await till.get_by_test_id("qty-1").fill("1")
    await till.get_by_test_id("condition-1").select_option("shelf")
    await till.get_by_test_id("reason").select_option(label="Väärä sävy tai koko")
    await till.get_by_test_id("confirm-return").click()
    await expect(till.get_by_test_id("return-done")).to_have_text(
        "Palautus tehty. Hyvitys: 24,90\xa0€.")
    await expect(till.get_by_test_id("paytrail-note")).to_be_visible()
    receipt = till.get_by_test_id("credit-receipt")
    await expect(receipt.get_by_test_id("credit-total")).to_have_text("-24,90\xa0€")
    await expect(receipt.get_by_test_id("credit-vat-row")).to_contain_text("-24,90\xa0€")
    await expect(receipt.get_by_test_id("credit-refund-paytrail")).to_contain_text(
        "Hyvitetty verkkomaksuun (Paytrail) (tulossa)")
    assert await on_hand(db, item.id, shop.store2) == stock + 1  # back where it came in
    # One refund to her Paytrail payment: due, or already taken by Paytrail (the return
    # sends due refunds in the background once it has answered, and the server's refund
    # job every 30 s; on a fast machine they are done before this line).
    assert await refund_status(db, order_id) in ([("paytrail", "due", 2490)],
                                                 [("paytrail", "ok", 2490)])
    async with db.reader() as s:
        assert await balance(s, cid) == earned - 24  # the points for 24,90 taken back

    # The refund job asks Paytrail (the server's simulator), which takes it; a refund
    # already sent (or being sent by the server) is not sent again.
    client = PaytrailClient(PaytrailConfig(*TEST_MERCHANT, f"{server.base_url}/paytrail-sim"))
    try:
        sender = Settings(database_url=settings.database_url, public_url=server.base_url)
        assert await send_due_refunds(db, client, sender) in (0, 1)
    finally:
        await client.aclose()

    async def refunded() -> bool:
        return await refund_status(db, order_id) == [("paytrail", "ok", 2490)]

    await eventually(refunded, within=30, what="the refund taken by Paytrail")

    # Her order page shows the return and the refund to her Paytrail payment.
    await shopper.goto(order_url)
    await expect(shopper.get_by_test_id("order-state")).to_have_text("Osittain palautettu")
    shown = shopper.get_by_test_id("order-returns")
    await expect(shown.get_by_test_id("refund-paytrail")).to_have_attribute("data-status", "ok")
    await expect(shown.get_by_test_id("refund-paytrail")).to_contain_text(
        "Hyvitetty verkkomaksuun (Paytrail): 24,90\xa0€")
    await expect(shown.get_by_test_id("points-reversed")).to_contain_text("24")
    await assert_fits(shopper)
    async with db.reader() as s:
        o = await s.get(Order, order_id)
    assert o is not None and (o.status, o.refunded_cents) == ("partly_returned", 2490)


async def test_exchange_at_the_till_for_a_dearer_shade(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    from tests.test_returns import till_sale

    order_id, [old] = await till_sale(db, shop, [2490])
    [new] = await make_variants(db, [3290], stock={shop.store1: 3})
    new_id = int(str(new["id"]))
    await open_drawer(db, shop.store1)
    old_stock = await on_hand(db, old, shop.store1)
    new_stock = await on_hand(db, new_id, shop.store1)
    till = await open_page(contexts, browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await staff_log_in(till, server.base_url, shop, "cashier1", "/pos/store-1/returns")
    await till.get_by_test_id("return-q").fill(f"{order_id:06d}")
    await till.get_by_test_id("return-find").click()
    await expect(till.get_by_test_id("return-form")).to_be_visible()
    await assert_fits(till)
    await till.get_by_test_id("qty-1").fill("1")
    await till.get_by_test_id("reason").select_option(label="Väärä sävy tai koko")
    # The scanner types the new shade's code and Enter into the exchange box.
    await till.get_by_test_id("exchange-codes").fill("2000000000000")
    await till.get_by_test_id("confirm-return").click()
    await expect(till.get_by_test_id("error-exchange-codes")).to_have_text(
        "Koodilla 2000000000000 ei löydy tuotetta.")
    await till.get_by_test_id("exchange-codes").fill(str(new["ean"]))
    await till.get_by_test_id("confirm-return").click()
    preview = till.get_by_test_id("exchange-preview")
    await expect(preview.get_by_test_id("exchange-new-total")).to_have_text("32,90\xa0€")
    await expect(preview.get_by_test_id("exchange-credit")).to_have_text("24,90\xa0€")
    await expect(preview.get_by_test_id("exchange-difference")).to_have_text(
        "Asiakas maksaa 8,00\xa0€.")
    await screenshot(till, "exchange-preview-phone")
    assert await on_hand(db, old, shop.store1) == old_stock  # a preview changes nothing
    async with db.reader() as s:
        assert await s.scalar(select(Return.id).where(Return.order_id == order_id)) is None
    await till.get_by_test_id("exchange-pay-cash").check()
    await till.get_by_test_id("confirm-return").click()
    await expect(till.get_by_test_id("exchange-note")).to_be_visible()
    await screenshot(till, "credit-receipt-phone")
    await expect(till.get_by_test_id("credit-refund-exchange")).to_contain_text(
        "Uusien tuotteiden maksuksi (vaihto)")
    assert await on_hand(db, old, shop.store1) == old_stock + 1
    assert await on_hand(db, new_id, shop.store1) == new_stock - 1
    async with db.reader() as s:
        ret = await s.scalar(select(Return).where(Return.order_id == order_id))
        assert ret is not None and ret.exchange_order_id is not None
        sale = await s.get(Order, ret.exchange_order_id)
    assert sale is not None and (sale.total_cents, sale.paid_cents) == (3290, 3290)
    # The new sale's receipt shows the exchange credit and the cash paid.
    await till.get_by_test_id("exchange-receipt").click()
    await expect(till.get_by_test_id("receipt-total")).to_have_text("32,90\xa0€")
    await expect(till.get_by_test_id("exchange-paid")).to_have_text("24,90\xa0€")
    await expect(till.get_by_test_id("cash-paid")).to_have_text("8,00\xa0€")


async def test_offline_till_offers_the_return_but_says_it_needs_the_network(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    await open_drawer(db, shop.store1)
    till = await open_page(contexts, browser)
    await staff_log_in(till, server.base_url, shop, "cashier1", "/pos/store-1")
    await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
    await till.context.set_offline(True)
    await till.get_by_test_id("code-input").fill("000104")
    await till.get_by_test_id("code-input").press("Enter")
    await expect(till.get_by_test_id("error-code")).to_have_text(
        "Koodilla 000104 ei löydy tuotetta.")
    await expect(till.get_by_test_id("return-offer")).to_have_text(
        "Avaa tilaus 000104 palautusta varten")
    await expect(till.locator("#return-offer small")).to_have_text(
        "Palautukset tarvitsevat verkkoyhteyden: kassa myy sillä välin normaalisti.")
    # A product code still sells offline; the offer goes away.
    [v] = await make_variants(db, [990], stock={shop.store1: 2})
    await till.context.set_offline(False)
    await till.reload()
    await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
    await till.context.set_offline(True)
    await till.get_by_test_id("code-input").fill(str(v["ean"]))
    await till.get_by_test_id("code-input").press("Enter")
    await expect(till.get_by_test_id("cart").locator("li")).to_have_count(1)
    await expect(till.locator("#return-offer")).to_be_hidden()
    await till.context.set_offline(False)
