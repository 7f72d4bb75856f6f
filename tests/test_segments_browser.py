"""Customer segments in a real headless Chromium against a real server (both
databases): the owner builds a segment in the back office and sees its live count and
preview follow the rules as she edits them, a bad tag explained in place, then saves it
and finds it in the list with its counts."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select

from saumaton.customers.models import Segment
from saumaton.db.uow import Database
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop
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
