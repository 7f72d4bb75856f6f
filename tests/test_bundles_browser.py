"""A bundle campaign ("3 for 2") prices the same cart identically at the till — online
(the till's own total must equal the core's, or the sale is refused as price_changed)
and offline (priced by pricing.js from the cached catalogue, recorded as charged, no
price_mismatch) — and in the webshop's cart, in a real Chromium on both databases."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from playwright.async_api import Browser, BrowserContext, Page, expect

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.pricing.services import CampaignIn, create_campaign
from tests.support import Shop, make_variants
from tests.test_till_offline import (
    SYNC_MS,
    Network,
    go_offline,
    go_online,
    last_order_id,
    log_in_at_till,
    make_offline_ready,
    network,
    new_context,
    open_drawer,
    open_till,
    orders_since,
)

__all__ = ["network"]  # the relay fixture of test_till_offline, used by name

PRICES = [1000, 500, 800]  # 3 for 2: the 5,00 € one is free -> 18,00 €


def nbsp(text: str) -> str:
    return text.replace("\xa0", " ").replace("\u202f", " ")


async def scan_cart(page: Page, eans: list[str]) -> None:
    code = page.get_by_test_id("code-input")
    for ean in eans:
        await code.fill(ean)
        await code.press("Enter")
    await expect(page.get_by_test_id("cart-line")).to_have_count(len(eans))


async def pay_cash(page: Page) -> Page:
    await page.get_by_test_id("tendered").fill("100")
    await page.get_by_test_id("pay-cash").click()
    return page


async def test_a_bundle_prices_the_same_at_the_till_online_offline_and_in_the_webshop(
    browser: Browser, contexts: list[BrowserContext], network: Network, db: Database,
    shop: Shop,
) -> None:
    variants = await make_variants(db, PRICES, stock={shop.store1: 20, shop.warehouse: 20})
    name = f"3 for 2 {uuid.uuid4().hex[:4]}"
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name=name, kind="x_for_y", buy_quantity=3, pay_quantity=2,
            starts_at=utcnow() - timedelta(hours=1),
            product_ids=[int(str(variants[0]["product_id"]))]))
        await uow.commit()
    eans = [str(v["ean"]) for v in variants]
    await open_drawer(db, shop.store1)
    first_id = await last_order_id(db)

    context = await new_context(contexts, browser)
    page = await context.new_page()
    await log_in_at_till(page, network.base_url, shop)
    await make_offline_ready(page)
    till = await open_till(page)

    # Online: the till's total is the core's (else the sale would be refused).
    await scan_cart(page, eans)
    await expect(page.get_by_test_id("total")).to_have_text(re.compile(r"18,00"))
    await expect(page.get_by_test_id("line-campaign").first).to_contain_text(name)
    till_total = nbsp(await page.get_by_test_id("total").inner_text())
    await pay_cash(page)
    receipt = page.get_by_test_id("receipt-view")
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text(re.compile(r"18,00"))
    await expect(receipt.get_by_test_id("receipt-campaign").first).to_contain_text(name)
    await receipt.get_by_test_id("new-sale").click()
    await expect(page.get_by_test_id("cart-empty")).to_be_visible()

    # Offline: pricing.js applies the bundle from the cached catalogue.
    await go_offline(context, network)
    await expect(till.status).to_have_attribute("data-state", "offline")
    await scan_cart(page, eans)
    await expect(page.get_by_test_id("total")).to_have_text(re.compile(r"18,00"))
    await pay_cash(page)
    await expect(receipt.get_by_test_id("offline-receipt")).to_be_visible()
    await expect(receipt).to_contain_text(f"{name}:")
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text(re.compile(r"18,00"))
    await receipt.get_by_test_id("new-sale").click()
    await go_online(context, network)
    await expect(till.status).to_have_attribute("data-state", "synced", timeout=SYNC_MS)
    orders = await orders_since(db, shop.store1, first_id)
    assert [(o.offline, o.total_cents) for o in orders] == [(False, 1800), (True, 1800)]
    assert all("price_mismatch" not in o.flags.split() for o in orders)

    # The webshop: the same three in the cart cost the same.
    shop_page = await (await new_context(contexts, browser)).new_page()
    for v in variants:
        await shop_page.goto(f"{network.base_url}/shop/p/{v['product_slug']}?variant={v['id']}")
        await shop_page.get_by_test_id("add-to-cart").click()
        await expect(shop_page.get_by_test_id("cart-added")).to_be_visible()
    await shop_page.goto(f"{network.base_url}/shop/cart")
    await expect(shop_page.get_by_test_id("order-total")).to_have_text(re.compile(r"18,00"))
    bundle_line = shop_page.get_by_test_id(f"line-bundle-{variants[0]['id']}")
    await expect(bundle_line).to_be_visible()
    assert nbsp(await shop_page.get_by_test_id("order-total").inner_text()) == till_total
