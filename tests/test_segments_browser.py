"""Customer segments in a real headless Chromium against a real server (both
databases): the owner builds a segment in the back office and sees its live count and
preview follow the rules as she edits them, a bad tag explained in place, then saves it
and finds it in the list with its counts; at the till, attaching a member of a segment
with a segment price shows that price at once and the sale is charged it."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers.models import Segment
from saumaton.customers.segments import create_segment, parse_rules
from saumaton.customers.tags import add_tag
from saumaton.db.uow import Database
from saumaton.pricing.services import CampaignIn, create_campaign, end_campaign
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_loyalty_browser import (
    EUR,
    attach,
    last_order,
    own_store,
    shopper_with_card,
    staff_log_in,
)
from tests.test_segments import new_customer, new_tag


async def test_owner_builds_a_segment_with_a_live_count(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop) -> None:
    tag = new_tag()
    yes = await new_customer(db, tag, consent=True, first="Aino")
    await new_customer(db, tag, first="Bea")

    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/backoffice/segments/new")
    await fill_staff_login(page, shop, "owner")
    count = page.get_by_test_id("segment-live-count")
    await page.get_by_test_id("segment-tags").fill(tag)
    await expect(count).to_have_attribute("data-count", "2")
    await expect(page.get_by_test_id("segment-live-marketing")).to_have_attribute(
        "data-count", "1")
    await expect(page.get_by_test_id(f"preview-{yes}")).to_contain_text("Aino")
    # Only those who consented: the count follows at once.
    await page.get_by_test_id("segment-consent").select_option("granted")
    await expect(count).to_have_attribute("data-count", "1")
    # A tag that cannot be one: explained in place, no count.
    await page.get_by_test_id("segment-tags").fill(f"{tag}, !!")
    await expect(page.get_by_test_id("live-error-tags")).to_be_visible()
    await expect(count).to_have_attribute("data-count", "")
    await page.get_by_test_id("segment-tags").fill(tag)
    await expect(count).to_have_attribute("data-count", "1")
    await assert_fits(page)

    # Saving without a name: the message next to the field, nothing saved.
    await page.get_by_test_id("segment-save").click()
    await expect(page.get_by_test_id("error-name")).to_be_visible()
    await expect(page.get_by_test_id("segment-name-input")).to_have_attribute(
        "aria-invalid", "true")
    await page.get_by_test_id("segment-name-input").fill(f"Uutiskirje {tag}")
    await page.get_by_test_id("segment-save").click()
    await expect(page.get_by_test_id("segment-saved")).to_be_visible()
    await expect(count).to_have_attribute("data-count", "1")
    async with db.reader() as s:
        seg = await s.scalar(select(Segment).where(Segment.name == f"Uutiskirje {tag}"))
    assert seg is not None and seg.rules["consent"] == "granted"
    assert seg.rules["tags"] == [tag]

    await page.goto(f"{server.base_url}/backoffice/segments")
    row = page.get_by_test_id(f"segment-{seg.id}")
    await expect(row.get_by_test_id("segment-count")).to_have_text("1")
    await expect(row.get_by_test_id("segment-marketing-count")).to_have_text("1")


async def test_attaching_a_segment_member_shows_the_segment_price_at_the_till(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    customer_id, _email, card = await shopper_with_card(db, settings)
    tag = new_tag()
    async with db.uow() as uow:
        await add_tag(uow, SYSTEM, customer_id, tag)
        seg = await create_segment(uow, SYSTEM, f"Kassa {tag}", parse_rules({"tags": [tag]}))
        await uow.commit()
    store = await own_store(db)
    [v] = await make_variants(db, [3000])
    async with db.uow() as uow:
        campaign = await create_campaign(uow, SYSTEM, CampaignIn(
            name="Segmenttipäivät", kind="fixed", value=700, segment_id=seg.id,
            starts_at=utcnow() - timedelta(hours=1), variant_ids=[int(str(v["id"]))]))
        await uow.commit()
    try:
        till = await open_page(contexts, browser)
        await staff_log_in(till, server.base_url, shop, "manager")
        await till.goto(f"{server.base_url}/pos/{store}")
        await expect(till.get_by_test_id("code-input")).to_be_focused()
        await till.keyboard.type(f"{v['ean']}\n")
        await expect(till.get_by_test_id("total")).to_have_text(f"30,00{EUR}")
        await attach(till, card)
        await till.get_by_test_id("customer-panel").get_by_test_id("attach-customer").click()
        await expect(till.get_by_test_id("total")).to_have_text(f"23,00{EUR}")
        await till.get_by_test_id("pay-card").click()
        await expect(till.get_by_test_id("receipt")).to_be_visible()
        await expect(till.get_by_test_id("price-changed")).to_be_hidden()
        order, _payments = await last_order(till, db)
        assert order.customer_id == customer_id and order.total_cents == 2300
    finally:
        async with db.uow() as uow:
            await end_campaign(uow, SYSTEM, campaign)
            await uow.commit()
