"""The catalogue in a real Chromium (both databases): a product the owner creates in the
back office (its EAN scanned into the form) is sold at a till that was already open,
without a reload, and bought in the webshop; taken off sale, it leaves the open till
and the webshop at once; the form fits a phone."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.inventory.services import Move, apply_moves
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, new_ean
from tests.test_browser import screenshot
from tests.test_checkout_browser import ORDER_URL, Item, home_delivery_checkout
from tests.test_till_api import open_drawer
from tests.test_till_browser import EUR, open_till


async def test_a_product_created_in_the_back_office_sells_at_an_open_till_and_online(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop, tmp_path: Path, backend: str,
) -> None:
    base = server.base_url
    # The till is open first, following the catalogue events.
    await open_drawer(db, shop.store1)
    till_page = await open_page(contexts, browser)
    await open_till(till_page, server, shop)
    till = till_page.locator("#till")
    await expect(till).to_have_attribute("data-live", "1")
    size = int(await till.get_attribute("data-catalogue-size") or -1)
    assert size >= 0

    # The owner, on a phone, creates the product in the back office.
    owner = await open_page(contexts, browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await owner.goto(f"{base}/backoffice/products/new")
    await fill_staff_login(owner, shop, "owner")
    await expect(owner.get_by_test_id("product-form")).to_be_visible()
    tag = uuid.uuid4().hex[:8]
    ean = new_ean()
    await owner.get_by_label("Nimi (suomeksi)", exact=True).fill(f"Huulipuna {tag}")
    await owner.get_by_label("Nimi (englanniksi)", exact=True).fill(f"Lipstick {tag}")
    await owner.get_by_test_id("field-brand").fill("Kaunis Iho")
    await owner.get_by_test_id("field-sku").fill(f"LIP-{tag}")
    # A scanner types the code and Enter: the focus moves on, nothing is sent yet.
    await owner.get_by_label("EAN/GTIN-viivakoodi").focus()
    await owner.keyboard.type(f"{ean}\n")
    await expect(owner.get_by_label("Variantin nimi (suomeksi), esim. sävy")).to_be_focused()
    await expect(owner).to_have_url(f"{base}/backoffice/products/new")
    await owner.keyboard.type("Puolukka")
    await owner.get_by_test_id("field-shade").fill("101")
    await owner.get_by_label("Hinta (€, sis. ALV)").fill("abc")
    await owner.get_by_test_id("save-product").click()
    # A bad price: the error next to the field, what was typed kept, nothing saved.
    await expect(owner.get_by_test_id("error-price")).to_be_visible()
    await expect(owner.get_by_label("EAN/GTIN-viivakoodi")).to_have_value(ean)
    async with db.reader() as s:
        assert await s.scalar(select(Variant.id).where(Variant.ean == ean)) is None
    await owner.get_by_label("Hinta (€, sis. ALV)").fill("14,90")
    await assert_fits(owner)
    await screenshot(owner, tmp_path, f"catalogue-new-product-{backend}")
    await owner.get_by_test_id("save-product").click()
    await expect(owner.get_by_test_id("notice")).to_be_visible()
    await assert_fits(owner)
    await screenshot(owner, tmp_path, f"catalogue-product-{backend}")

    async with db.reader() as s:
        variant = await s.scalar(select(Variant).where(Variant.ean == ean))
        assert variant is not None and variant.price_cents == 1490
        product = await s.get(Product, variant.product_id)
        assert product is not None
    async with db.uow() as uow:  # stock arrives in the store and the web warehouse
        await apply_moves(uow, SYSTEM, [Move(variant.id, shop.store1, 5, "receipt"),
                                        Move(variant.id, shop.warehouse, 5, "receipt")])
        await uow.commit()

    # The open till took a fresh snapshot on the event: scan it and take cash.
    await expect(till).to_have_attribute("data-catalogue-size", str(size + 1))
    codes = int(await till.get_attribute("data-catalogue-codes") or -1)
    await till_page.get_by_test_id("code-input").focus()
    await till_page.keyboard.type(f"{ean}\n")
    line = till_page.get_by_test_id("cart-line")
    await expect(line).to_have_count(1)
    # A further barcode added in the back office scans too (the till reloads on it).
    await owner.goto(f"{base}/backoffice/products/{product.id}/variants/{variant.id}")
    further = new_ean()
    await owner.get_by_test_id("bc-field-code").fill(further)
    await owner.get_by_test_id("add-barcode").click()
    await expect(owner.get_by_test_id("barcode-list")).to_contain_text(further)
    await expect(till).to_have_attribute("data-catalogue-codes", str(codes + 1))
    await till_page.get_by_test_id("code-input").focus()
    await till_page.keyboard.type(f"{further}\n")
    await expect(line.get_by_test_id("line-qty")).to_have_value("2")
    await expect(line).to_contain_text(f"Huulipuna {tag}")
    await expect(till_page.get_by_test_id("total")).to_have_text(f"29,80{EUR}")
    await till_page.get_by_test_id("tendered").fill("30")
    await till_page.get_by_test_id("pay-cash").click()
    receipt = till_page.get_by_test_id("receipt")
    await expect(receipt).to_be_visible()
    await expect(receipt.get_by_test_id("receipt-total")).to_have_text(f"29,80{EUR}")
    after_sale = await till.get_attribute("data-catalogue-size")
    assert after_sale == str(size + 1)

    # The webshop sells it too (in English its English name).
    shopper = await open_page(contexts, browser)
    await shopper.goto(f"{base}/shop/p/{product.slug}?lang=en")
    await expect(shopper.get_by_test_id("product-name")).to_have_text(f"Lipstick {tag}")
    await shopper.goto(f"{base}/shop/p/{product.slug}?lang=fi")
    await expect(shopper.get_by_test_id("product-name")).to_have_text(f"Huulipuna {tag}")
    item = Item(variant.id, variant.sku, f"{base}/shop/p/{product.slug}?variant={variant.id}")
    await home_delivery_checkout(shopper, base, item, f"anna.{tag}@example.fi")
    await expect(shopper.locator("#amount")).to_contain_text("20,80")  # + 5,90 delivery
    await shopper.get_by_label("OP").check()
    await shopper.locator("#success").click()
    await expect(shopper).to_have_url(ORDER_URL)
    await expect(shopper.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")

    # Off sale in the back office: the open till drops it on the event, the webshop too.
    await owner.goto(f"{base}/backoffice/products/{product.id}")
    await owner.get_by_test_id("field-active").uncheck()
    await owner.get_by_test_id("save-product").click()
    await expect(owner.get_by_test_id("off-sale")).to_be_visible()
    await expect(till).to_have_attribute("data-catalogue-size", str(size))
    response = await shopper.goto(f"{base}/shop/p/{product.slug}")
    assert response is not None and response.status == 404
