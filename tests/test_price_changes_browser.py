"""A scheduled price change takes effect at the set time in both channels (real Chromium
against a real server, both databases): the owner schedules a new price a few seconds
ahead in the back office's form (Helsinki time); at that time the server's job applies
it, the open till (which shows a campaign limited to some channels as limited)
reloads its catalogue on the "price.changed" event and sells at the new
price, and the webshop's product page shows it after a reload."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, Response, expect
from sqlalchemy import select

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.pricing.models import PriceChange
from saumaton.pricing.services import CampaignIn, create_campaign
from tests.browser import assert_fits, fill_staff_login
from tests.support import Server, Shop, eventually, make_variants
from tests.test_loyalty_browser import EUR, open_page, own_store, staff_log_in

TZ = ZoneInfo("Europe/Helsinki")
AHEAD = timedelta(seconds=8)  # time to fill and send the form on a busy machine


@pytest.fixture(scope="module")
def price_server(database_url: str, shop: Shop, session_tmp: Path,
                 backend: str) -> Iterator[Server]:
    """A real uvicorn whose price job runs every 0.2 s (the default is 30 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAUMATON_PRICE_JOB_INTERVAL_SECONDS", "0.2")
        srv = Server(database_url, session_tmp / f"server-prices-{backend}")
    yield srv
    srv.stop()


async def applied_change(db: Database, variant_id: int) -> PriceChange:
    """The variant's scheduled change once applied (a bounded poll of the database)."""
    async def applied() -> PriceChange | None:
        async with db.reader() as s:
            return (await s.scalars(select(PriceChange).where(
                PriceChange.variant_id == variant_id, PriceChange.status == "applied")
                .order_by(PriceChange.id.desc()).limit(1))).one_or_none()
    found = await eventually(applied, within=40, what="the scheduled change applied")
    assert found is not None
    return found


async def test_scheduled_price_change_reaches_the_till_and_the_webshop_at_its_time(
        browser: Browser, contexts: list[BrowserContext], price_server: Server,
        db: Database, shop: Shop) -> None:
    base = price_server.base_url
    store = await own_store(db)
    [v] = await make_variants(db, [2500], stock={shop.warehouse: 5})
    vid = int(str(v["id"]))
    # Another product on a campaign only at this store's till: shown as limited there.
    [offer] = await make_variants(db, [1000])
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Vain täällä", kind="percent", value=1000, starts_at=utcnow(),
            variant_ids=[int(str(offer["id"]))],
            channel_codes=["pos-" + store.removeprefix("ly-")]))
        await uow.commit()

    # An open till: the product sells at 25,00; the sale is cleared again.
    till = await open_page(contexts, browser)
    await staff_log_in(till, base, shop, "manager")
    await till.goto(f"{base}/pos/{store}")
    await expect(till.get_by_test_id("code-input")).to_be_focused()
    await expect(till.locator("#till[data-live='1']")).to_have_count(1)
    await till.keyboard.type(f"{offer['ean']}\n")
    await expect(till.get_by_test_id("line-campaign")).to_have_text(
        f"−1,00{EUR} · Vain täällä · ei kaikissa kanavissa")
    await till.keyboard.type(f"{v['ean']}\n")
    await expect(till.get_by_test_id("total")).to_have_text(f"34,00{EUR}")
    await till.get_by_test_id("clear-sale").click()
    await expect(till.get_by_test_id("cart-empty")).to_be_visible()
    snapshots: list[Response] = []
    arrived = asyncio.Event()

    def seen(r: Response) -> None:
        if "/api/catalogue" in r.url:
            snapshots.append(r)
            arrived.set()

    till.on("response", seen)

    shopper = await open_page(contexts, browser)
    await shopper.goto(f"{base}/shop/p/{v['product_slug']}")
    await expect(shopper.get_by_test_id("price")).to_have_text(f"25,00{EUR}")

    # The owner schedules 19,90 a few seconds ahead, in the shop's time zone.
    office = await open_page(contexts, browser)
    await office.goto(f"{base}/staff/login?next=" + quote(f"/backoffice/prices?variant_id={vid}"))
    await fill_staff_login(office, shop, "owner")
    await expect(office.get_by_test_id(f"pick-{v['sku']}")).to_be_checked()
    await assert_fits(office)  # a phone's width
    at = (utcnow() + AHEAD).astimezone(TZ).replace(microsecond=0)
    await office.get_by_test_id("price-new").fill("19,90")
    await office.get_by_test_id("when-later").check()
    await office.get_by_test_id("when-date").fill(at.date().isoformat())
    await office.get_by_test_id("when-time").fill(at.strftime("%H:%M:%S"))
    await office.get_by_test_id("price-save").click()
    await expect(office.get_by_test_id("notice")).to_have_text("Hinnanmuutos on ajastettu.")
    await expect(office.get_by_test_id("scheduled-changes")).to_contain_text(str(v["sku"]))

    # Not before its time: the job applies it then.
    change = await applied_change(db, vid)
    assert change.applied_at is not None and change.applied_at >= at
    assert (change.old_price_cents, change.price_cents) == (2500, 1990)

    # The till reloads its catalogue on the event: a snapshot with the new price arrives.
    async def has_new_price(r: Response) -> bool:
        if r.status != 200:
            return False
        data: dict[str, Any] = await r.json()
        return any(x["id"] == vid and x["unit_price_cents"] == 1990 for x in data["variants"])

    checked, reloaded = 0, False
    async with asyncio.timeout(30):
        while not reloaded:
            arrived.clear()
            for r in snapshots[checked:]:
                checked += 1
                reloaded = reloaded or await has_new_price(r)
            if not reloaded:
                await arrived.wait()
    await till.get_by_test_id("code-input").focus()
    await till.keyboard.type(f"{v['ean']}\n")
    await expect(till.get_by_test_id("total")).to_have_text(f"19,90{EUR}")

    await shopper.reload()
    await expect(shopper.get_by_test_id("price")).to_have_text(f"19,90{EUR}")

    # The history shows who scheduled it, old → new.
    await office.goto(f"{base}/backoffice/prices/variants/{vid}")
    history = office.get_by_test_id(f"history-{change.id}")
    await expect(history).to_contain_text("25,00")
    await expect(history).to_contain_text("19,90")
    await assert_fits(office)
    for path in ("/backoffice/campaigns/new", "/backoffice/campaigns",
                 "/backoffice/price-parity"):
        await office.goto(base + path)
        await expect(office.locator("h1")).to_be_visible()
        await assert_fits(office)
