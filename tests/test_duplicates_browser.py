"""Duplicate customers in a real headless Chromium against a real server (both databases).

The issue's scenario: "Anna Virtanen" exists twice - made at the till with her phone, and
again by a web order with her e-mail and the same phone on the order. A manager opens
the duplicates page, sees the pair with the reason, merges with one click plus the
confirmation, and the kept customer's card at the till shows both histories and a
loyalty balance that adds up (each earned points for their purchase); then the merge is
undone and each customer has their own history and points again.
"""

from __future__ import annotations

import os
import random
import re
import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.models import Customer, CustomerMerge
from saumaton.db.uow import Database
from saumaton.loyalty.ledger import balance
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from tests.browser import assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants, pay_web_order

PHONE = {"width": 375, "height": 740}
CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))



async def staff_log_in(page: Page, base_url: str, shop: Shop, who: str) -> None:
    await page.goto(f"{base_url}/backoffice/customers/duplicates")
    await expect(page).to_have_url(re.compile(r"/staff/login\?next="))
    await fill_staff_login(page, shop, who)
    await expect(page.get_by_test_id("staff-name")).to_be_visible()


async def screenshot(page: Page, name: str) -> None:
    if os.environ.get("SAUMATON_SCREENSHOTS"):
        await page.screenshot(path=f"{os.environ['SAUMATON_SCREENSHOTS']}/{name}.png",
                              full_page=True)


def euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}\xa0€"


async def paid_web_order(db: Database, settings: Settings, shop: Shop, email: str,
                         phone: str) -> OrderOut:
    [v] = await make_variants(db, [3490], stock={shop.warehouse: 5})
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email=email, phone=phone, first_name="Anna", last_name="Virtanen", delivery="home",
        address=AddressIn(name="Anna Virtanen", street="Mannerheimintie 1", postcode="00100",
                          city="Helsinki"),
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)]),
        customer_id=None, key=f"web-{uuid.uuid4().hex}")
    await pay_web_order(db, settings, order)
    return order


async def till_sale(db: Database, shop: Shop, customer_id: int) -> OrderOut:
    [v] = await make_variants(db, [1250], stock={shop.store1: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"s-{uuid.uuid4().hex}")
    return order


async def points(db: Database, customer_id: int) -> int:
    async with db.reader() as s:
        return await balance(s, customer_id)


async def test_manager_merges_anna_twice_and_undoes_it(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    digits = f"{random.randrange(10**7):07d}"
    phone = f"+35840{digits}"
    # made at the till: phone typed the Finnish way, first and last name
    async with db.uow() as uow:
        at_till = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040 {digits[:3]} {digits[3:]}", first_name="Anna", last_name="Virtanen"))
        await uow.commit()
    store = await till_sale(db, shop, at_till.id)
    # and from the web: her e-mail, the same phone on the order
    web = await paid_web_order(db, settings, shop, f"anna.{uuid.uuid4().hex[:8]}@example.fi",
                               phone)
    web_id = web.customer_id
    assert web_id is not None and web_id != at_till.id
    # both purchases earned points, each on its own record
    till_points, web_points = await points(db, at_till.id), await points(db, web_id)
    assert till_points > 0 and web_points > 0
    a, b = sorted((at_till.id, web_id))
    base = server.base_url

    manager = await open_page(contexts, browser, viewport=PHONE)
    await staff_log_in(manager, base, shop, "manager")
    await expect(manager.get_by_role("heading", name="Kaksoisasiakkaat")).to_be_visible()
    # The register has many other pairs: look Anna up by the phone she gave.
    await manager.get_by_test_id("dup-q").fill(f"040 {digits[:3]} {digits[3:]}")
    await manager.get_by_test_id("dup-q").press("Enter")
    candidate = manager.get_by_test_id(f"candidate-{a}-{b}")
    await expect(candidate.get_by_test_id("reason").first).to_have_text(
        f"Sama puhelinnumero {phone}")
    await expect(candidate.get_by_test_id(f"orders-{at_till.id}")).to_have_text("1")
    await expect(candidate.get_by_test_id(f"orders-{web_id}")).to_have_text("1")
    # equal purchases, no account: the older record (made at the till) is kept
    await expect(candidate.get_by_test_id(f"keep-{at_till.id}")).to_be_checked()
    await assert_fits(manager)
    await screenshot(manager, "duplicates")

    await candidate.get_by_test_id(f"merge-{a}-{b}").click()
    await expect(manager.get_by_role("heading", name="Yhdistä asiakkaat")).to_be_visible()
    moves = manager.get_by_test_id("moves")
    await expect(moves).to_contain_text("Tilaukset (kaikki kanavat, maksuineen)")
    await assert_fits(manager)
    await screenshot(manager, "merge-confirm")
    await manager.get_by_test_id("merge-confirm").click()
    await expect(manager.get_by_test_id("merged")).to_have_text(
        f"Anna Virtanen yhdistettiin asiakkaaseen #{at_till.id}.")
    await expect(manager).to_have_url(re.compile(r"/backoffice/customers/merges/\d+$"))
    result_url = manager.url
    await expect(manager.get_by_test_id("undo")).to_be_visible()
    await assert_fits(manager)
    await screenshot(manager, "merge-result")

    # the kept customer's card at the till: both histories
    await manager.goto(f"{base}/pos/store-1/customers/{at_till.id}")
    card = manager.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("purchase-count")).to_have_text("2")
    await expect(card.get_by_test_id("lifetime-value")).to_have_text(
        euros(store.total_cents + web.total_cents))
    numbers = card.get_by_test_id("purchase-number")
    await expect(numbers).to_have_text([web.number, store.number])
    await expect(card.get_by_test_id("customer-phone")).to_have_text(phone)
    # one loyalty balance: both records' points
    await expect(card.get_by_test_id("loyalty-points")).to_have_text(
        str(till_points + web_points))
    await assert_fits(manager)
    async with db.reader() as s:
        merged = await s.get(Customer, web_id)
        assert merged is not None and merged.merged_into_id == at_till.id
    assert await points(db, at_till.id) == till_points + web_points
    assert await points(db, web_id) == 0

    # undo: each has their own history again
    await manager.goto(result_url)
    await manager.get_by_test_id("undo").click()
    await expect(manager.get_by_test_id("undone")).to_be_visible()
    await expect(manager.get_by_test_id("undo")).to_have_count(0)
    await manager.goto(f"{base}/pos/store-1/customers/{at_till.id}")
    card = manager.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("purchase-count")).to_have_text("1")
    await expect(card.get_by_test_id("purchase-number")).to_have_text([store.number])
    await expect(card.get_by_test_id("loyalty-points")).to_have_text(str(till_points))
    await manager.goto(f"{base}/pos/store-1/customers/{web_id}")
    card = manager.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("customer-name")).to_have_text("Anna Virtanen")
    await expect(card.get_by_test_id("purchase-number")).to_have_text([web.number])
    await expect(card.get_by_test_id("loyalty-points")).to_have_text(str(web_points))
    assert (await points(db, at_till.id), await points(db, web_id)) == (till_points, web_points)
    async with db.reader() as s:
        row = await s.scalar(select(CustomerMerge).where(CustomerMerge.merged_id == web_id))
        assert row is not None and row.undone_at is not None
        merged = await s.get(Customer, web_id)
        assert merged is not None and merged.merged_into_id is None
    # the pair is a candidate again
    await manager.goto(f"{base}/backoffice/customers/duplicates?q=%2B35840{digits}")
    await expect(manager.get_by_test_id(f"candidate-{a}-{b}")).to_be_visible()
