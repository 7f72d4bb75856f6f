"""A no-show is released on time, in a real headless Chromium against a real server (both
databases): a shopper reserves the store's last unit to try on the product page; while
held, nobody else can reserve it, the till refuses to sell it to another customer
(naming the reservation) and the store's till lists it as waiting. Her hold is
moved to end a few seconds ahead (the clock is not waited for a day); at that time the
server's background job releases it — not before — the unit is on offer again on the
product page, she gets the friendly note by e-mail, and the store's list shows the
reservation as not collected."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.inventory.models import StockReservation
from saumaton.tryon.models import TryReservation
from tests.browser import open_page
from tests.support import Server, Shop, eventually, make_variants
from tests.test_fulfilment_browser import eml, sent
from tests.test_till_api import open_drawer
from tests.test_till_browser import open_till
from tests.test_try_browser import level

AHEAD = timedelta(seconds=3)  # the hold's new end: time to look at the lists first
ON_TIME = timedelta(seconds=10)  # the job runs every 0.2 s; a busy machine may lag


@pytest.fixture(scope="module")
def try_server(database_url: str, shop: Shop, session_tmp: Path,
               backend: str) -> Iterator[Server]:
    """A real uvicorn whose reserve-to-try expiry runs every 0.2 s (the default is 30 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAUMATON_TRY_EXPIRY_INTERVAL_SECONDS", "0.2")
        srv = Server(database_url, session_tmp / f"server-try-expiry-{backend}")
    yield srv
    srv.stop()


async def _row(db: Database, code: str) -> TryReservation:
    async with db.reader() as s:
        return (await s.scalars(select(TryReservation).where(
            TryReservation.code == code))).one()


async def test_a_no_show_is_released_on_time(
        browser: Browser, contexts: list[BrowserContext], try_server: Server, db: Database,
        shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 1})
    vid = int(str(v["id"]))
    base = try_server.base_url
    product_url = f"{base}/shop/p/{v['product_slug']}"
    address = f"noshow-{uuid.uuid4().hex[:8]}@example.com"

    # She reserves the last unit at the Helsinki store, with her e-mail address.
    shopper = await open_page(contexts, browser)
    await shopper.goto(product_url)
    await shopper.get_by_test_id("reserve-to-try").click()
    await shopper.get_by_test_id("try-store-store-1").check()
    await shopper.get_by_test_id("try-name").fill("Nelli Noutamaton")
    await shopper.get_by_test_id("try-email").fill(address)
    await shopper.get_by_test_id("try-submit").click()
    code = (await shopper.get_by_test_id("try-code").text_content() or "").strip()
    assert code.startswith("KT")
    assert await level(db, vid, shop.store1) == (1, 1)
    # Held: nobody else is offered it.
    other = await open_page(contexts, browser)
    await other.goto(product_url)
    await expect(other.get_by_test_id("add-to-cart")).to_be_visible()
    await expect(other.get_by_test_id("reserve-to-try")).to_have_count(0)

    # The store's list has it waiting.
    await open_drawer(db, shop.store1)
    till = await open_page(contexts, browser)
    await open_till(till, try_server, shop)
    # Another customer at the till cannot have the held unit: the till says why.
    await till.keyboard.type(f"{v['ean']}\n")
    await expect(till.get_by_test_id("cart-line")).to_have_count(1)
    await till.get_by_test_id("tendered").fill("30")
    await till.get_by_test_id("pay-cash").click()
    await expect(till.get_by_test_id("error-payment")).to_contain_text(
        f"varattu kokeiltavaksi ({code})")
    assert await level(db, vid, shop.store1) == (1, 1)  # nothing sold
    await till.get_by_test_id("clear-sale").click()
    await expect(till.get_by_test_id("cart-empty")).to_be_visible()
    await till.get_by_test_id("tries-link").click()
    await expect(till.get_by_test_id(f"try-{code}")).to_contain_text("Nelli Noutamaton")
    await expect(till.get_by_test_id(f"try-closed-{code}")).to_have_count(0)

    # Her hold ends a few seconds from now (instead of at closing time tomorrow).
    ends = (utcnow() + AHEAD).replace(microsecond=0)
    r = await _row(db, code)
    async with db.uow() as uow:
        await uow.session.execute(update(TryReservation).where(
            TryReservation.id == r.id).values(expires_at=ends))
        await uow.session.execute(update(StockReservation).where(
            StockReservation.id == r.stock_reservation_id).values(expires_at=ends))
        await uow.commit()

    async def closed() -> TryReservation | None:
        row = await _row(db, code)
        return row if row.status != "active" else None
    done = await eventually(closed, within=40, what="the no-show released")
    assert done.status == "expired" and done.closed_by == "system:try expiry"
    assert done.closed_at is not None
    assert ends <= done.closed_at <= ends + ON_TIME, (ends, done.closed_at)
    assert await level(db, vid, shop.store1) == (1, 0)  # back on the shelf, nothing sold

    # The unit is on offer again: on the product page, to reserve or to buy.
    await other.reload()
    await expect(other.get_by_test_id("reserve-to-try")).to_be_visible()
    # The store's list shows what became of it.
    await till.reload()
    await expect(till.get_by_test_id(f"try-{code}")).to_have_count(0)
    await expect(till.get_by_test_id(f"try-status-{code}")).to_have_text(
        "Ei noudettu: palautettu hyllyyn")
    # She gets the friendly note.
    [note] = await sent(db, f"try:{code}", "try_released")
    assert note.to_addr == address and note.status == "sent"
    assert note.subject.startswith("Kokeiluvarauksesi on päättynyt")
    assert code in note.body_text and "Store Helsinki" in note.body_text
    assert eml(try_server, settings, note)["To"] == address  # written by the server
