"""The till's offline mode in a real headless Chromium against a real server (both
databases): the service worker keeps the till page, its scripts and the catalogue;
sales made offline wait in IndexedDB (static/pos/queue.js) and reach the server exactly
once when the network is back, even when the sync is interrupted or two tabs sync.

What "offline" means here. Playwright's `context.set_offline(True)` makes the pages
offline (`navigator.onLine` is false, their requests fail). Whether it also covers the
requests the service worker makes itself has varied: microsoft/playwright#2311 reports
that it did not (routing them needs the experimental
PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS); with Playwright 1.65 and Debian's
Chromium 156 it does (checked: with set_offline alone, not one byte of the offline
reload reached the server). So as not to depend on that, the browser talks to the
server through `Network`, a TCP relay in this test, and going offline does both:
it unplugs the relay (open connections cut, new ones refused) AND sets the context
offline. Nothing from the browser, worker included, can reach the server meanwhile,
and a reload that works offline must come from the worker's cache.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Route,
    expect,
)
from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.orders.models import Order, SaleVoid
from saumaton.tills.models import DrawerSession, Register
from saumaton.tills.sales import order_key
from saumaton.web.pos import offline
from tests.browser import WAIT_MS, fill_staff_login
from tests.support import Server, Shop, make_variants

SYNC_MS = 60_000  # 20 sales, one retry after the interruption, a busy test machine
STORE = "store-1"



# --- the network the test can unplug ------------------------------------------------------

class Network:
    """A TCP relay 127.0.0.1:<port> -> the server. `unplug()` cuts every open connection
    and refuses new ones (a dropped network); `plug()` lets traffic through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.unplug()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def unplug(self) -> None:
        self.up = False
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def plug(self) -> None:
        self.up = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if not self.up:
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._open.discard(dst)
            dst.transport.abort()


@pytest.fixture
async def network(server: Server) -> AsyncIterator[Network]:
    net = Network(server.port)
    await net.start()
    yield net
    await net.stop()


async def go_offline(context: BrowserContext, net: Network) -> None:
    net.unplug()
    await context.set_offline(True)


async def go_online(context: BrowserContext, net: Network) -> None:
    net.plug()
    await context.set_offline(False)


# --- browser ------------------------------------------------------------------------------

async def new_context(contexts: list[BrowserContext], browser: Browser) -> BrowserContext:
    context = await browser.new_context(locale="fi-FI", service_workers="allow")
    context.set_default_timeout(WAIT_MS)
    contexts.append(context)
    return context


# --- the store ----------------------------------------------------------------------------

async def open_drawer(db: Database, location_id: int) -> int:
    """The store's open drawer session (opened here, with the ORM, when none is)."""
    async with db.uow() as uow:
        s = uow.session
        register = await s.scalar(select(Register).where(
            Register.location_id == location_id, Register.active.is_(True))
            .order_by(Register.id).limit(1))
        if register is None:
            register = Register(location_id=location_id, name="Kassa 1", active=True)
            s.add(register)
            await s.flush()
        session = await s.scalar(select(DrawerSession).where(
            DrawerSession.register_id == register.id, DrawerSession.status == "open"))
        if session is None:
            session = DrawerSession(register_id=register.id, location_id=location_id,
                                    status="open", float_cents=10_000, opened_by="test")
            s.add(session)
            await s.flush()
        session_id = int(session.id)
        await uow.commit()
    return session_id


async def on_hand(db: Database, variant_id: int, location_id: int) -> int:
    async with db.reader() as s:
        level = await s.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id))
        return int(level or 0)


async def last_order_id(db: Database) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.max(Order.id))) or 0)


async def orders_since(db: Database, location_id: int, after_id: int) -> list[Order]:
    async with db.reader() as s:
        return list((await s.scalars(select(Order).where(
            Order.location_id == location_id, Order.id > after_id)
            .order_by(Order.id))).all())


# --- the till -----------------------------------------------------------------------------

async def log_in_at_till(page: Page, base_url: str, shop: Shop) -> None:
    await page.goto(f"{base_url}/pos/{STORE}")
    await expect(page).to_have_url(re.compile(r"/staff/login\?next="))
    await fill_staff_login(page, shop, "cashier1")
    await expect(page).to_have_url(f"{base_url}/pos/{STORE}")


# Runs in the page: the outbox of the till (the same module instance till.js uses) and
# the status panel in #sync-status (created when the page does not have one yet).
START_QUEUE = """async () => {
  const config = JSON.parse(document.getElementById("till-config").textContent);
  const queue = await import("/static/pos/queue.js");
  const { mountStatus } = await import("/static/pos/status.js");
  await queue.init({ code: config.code, csrfToken: config.csrfToken,
                     registerName: config.registerName, sessionId: config.sessionId });
  let el = document.getElementById("sync-status");
  if (!el) {
    el = document.createElement("div");
    el.id = "sync-status";
    document.body.prepend(el);
  }
  if (!el.dataset.state) mountStatus(el);
  window.__queue = queue;
  return { sessionId: config.sessionId, registerName: config.registerName };
}"""

SUBMIT = """async (sale) => {
  try { return await window.__queue.submitSale(sale); }
  catch (err) { return { status: "error", error: err }; }
}"""


@dataclass
class Till:
    page: Page
    session_id: int
    register_name: str
    keys: list[str] = field(default_factory=list)

    @property
    def status(self) -> Any:
        return self.page.locator("#sync-status")


async def open_till(page: Page) -> Till:
    """The till page once till.js has its catalogue and has mounted the status; then
    the same queue module in `window.__queue` for the test."""
    await expect(page.get_by_test_id("till")).to_have_attribute("data-ready", "1")
    await expect(page.locator("#sync-status")).to_have_attribute("data-state", re.compile(r"\w"))
    info = await page.evaluate(START_QUEUE)
    till = Till(page, int(info["sessionId"]), str(info["registerName"]))
    await expect(till.status).to_have_attribute("data-state", re.compile(r"\w"))
    return till


async def make_offline_ready(page: Page) -> None:
    """Wait until the service worker that till.js registers controls the page and has
    saved the till page, its scripts and the catalogue."""
    await expect(page.locator("html")).to_have_attribute("data-offline-ready", "true")
    await page.wait_for_function("navigator.serviceWorker.controller !== null")
    cached = await page.evaluate("""async () => {
      const names = (await caches.keys()).filter((n) => n.startsWith("saumaton-pos-"));
      const urls = [];
      for (const n of names) {
        for (const r of await (await caches.open(n)).keys()) urls.push(new URL(r.url).pathname);
      }
      return urls;
    }""")
    for path in (f"/pos/{STORE}", f"/pos/{STORE}/api/catalogue", "/static/pos/queue.js",
                 "/static/pos/status.js"):
        assert path in cached, f"{path} is not cached: {sorted(cached)}"


def cash_sale(till: Till, key: str, variant: dict[str, object], quantity: int
              ) -> dict[str, object]:
    price = int(str(variant["price_cents"]))
    return {
        "key": key, "session_id": till.session_id,
        "lines": [{"variant_id": variant["id"], "quantity": quantity,
                   "unit_price_cents": price, "campaign_discount_cents": 0}],
        "payments": [{"method": "cash", "tendered_cents": price * quantity + 1000}],
        "expected_total_cents": price * quantity,
    }


async def sell(till: Till, key: str, variant: dict[str, object], quantity: int
               ) -> dict[str, Any]:
    result: dict[str, Any] = await till.page.evaluate(
        SUBMIT, cash_sale(till, key, variant, quantity))
    till.keys.append(key)
    return result


async def sell_at_till(page: Page, ean: str, quantity: int) -> str:
    """Scan `quantity` times (EAN + Enter, as a USB scanner types), take 100 € in cash,
    pay; returns the receipt number shown, then starts the next sale."""
    code = page.get_by_test_id("code-input")
    for _ in range(quantity):
        await code.fill(ean)
        await code.press("Enter")
    await expect(page.get_by_test_id("cart-line")).to_have_count(1)
    await expect(page.get_by_test_id("line-qty")).to_have_value(str(quantity))
    await page.get_by_test_id("tendered").fill("100")
    await page.get_by_test_id("pay-cash").click()
    receipt = page.get_by_test_id("receipt-view")
    await expect(receipt.get_by_test_id("offline-receipt")).to_be_visible()
    number = await receipt.get_by_test_id("receipt-number").inner_text()
    await receipt.get_by_test_id("new-sale").click()
    await expect(page.get_by_test_id("cart-empty")).to_be_visible()
    return number


def sale_key(prefix: str, i: int) -> str:
    return f"{prefix}-{i:04d}-offline-test"


# --- 1. twenty sales offline -------------------------------------------------------------

async def test_twenty_offline_sales_sync_exactly_once(
    browser: Browser, contexts: list[BrowserContext], network: Network, db: Database,
    shop: Shop, backend: str, tmp_path: Path,
) -> None:
    [stocked] = await make_variants(db, [1290], stock={shop.store1: 100})
    [empty] = await make_variants(db, [450])  # nothing on hand at the store
    stocked_before = await on_hand(db, int(str(stocked["id"])), shop.store1)
    session_id = await open_drawer(db, shop.store1)
    first_id = await last_order_id(db)

    context = await new_context(contexts, browser)
    page = await context.new_page()
    await log_in_at_till(page, network.base_url, shop)
    await make_offline_ready(page)
    till = await open_till(page)
    assert till.session_id == session_id
    await expect(till.status).to_have_attribute("data-state", "synced")
    await expect(till.status.get_by_test_id("sync-status-text")).to_have_text(
        "Yhteys toimii, kaikki myynnit siirretty")

    # The network drops: 20 sales, each kept on the device with a receipt number.
    await go_offline(context, network)
    await expect(till.status).to_have_attribute("data-state", "offline")
    refs: list[str] = []
    sold = 0
    for i in range(20):
        variant, quantity = (empty, 1) if i == 7 else (stocked, 1 + i % 3)
        refs.append(await sell_at_till(page, str(variant["ean"]), quantity))
        sold += quantity if variant is stocked else 0
    assert len(set(refs)) == 20 and all(re.fullmatch(r"K1-\d{6}", r) for r in refs), refs
    await expect(till.status).to_have_attribute("data-pending", "20")
    waiting = await page.evaluate("window.__queue.entries()")
    assert [e["clientRef"] for e in waiting] == refs  # kept in the order they were made
    keys = [str(e["key"]) for e in waiting]
    negative_key = keys[7]
    await expect(till.status.get_by_test_id("sync-status-text")).to_have_text(
        "Ei yhteyttä — 20 myyntiä odottaa siirtoa")
    assert await orders_since(db, shop.store1, first_id) == []  # really nothing got out

    # The list of waiting sales shows their receipt numbers.
    await till.status.get_by_test_id("sync-details-toggle").click()
    await expect(till.status.get_by_test_id("sync-entry")).to_have_count(20)
    await expect(till.status.get_by_test_id("sync-entry").first).to_contain_text(refs[0])
    await page.screenshot(path=str(tmp_path / f"till-offline-{backend}.png"))

    # Reload while offline: the service worker serves the till; the sales still wait.
    await page.reload()
    await expect(page).to_have_url(f"{network.base_url}/pos/{STORE}")
    till = await open_till(page)
    await expect(till.status).to_have_attribute("data-pending", "20")
    await expect(till.status.get_by_test_id("sync-status-text")).to_have_text(
        "Ei yhteyttä — 20 myyntiä odottaa siirtoa")

    # Back online, and the first sync request is cut off after the server recorded it.
    interrupted: list[tuple[str, int]] = []

    async def cut_once(route: Route, request: Request) -> None:
        if interrupted or request.method != "POST":
            await route.continue_()
            return
        response = await route.fetch()  # the server records the sale…
        interrupted.append((json.loads(request.post_data or "{}")["key"], response.status))
        await route.abort("connectionreset")  # …and the till never hears back

    await context.route(re.compile(r"/api/sales$"), cut_once)
    await go_online(context, network)
    await expect(till.status).to_have_attribute("data-state", "synced", timeout=SYNC_MS)
    await expect(till.status.get_by_test_id("sync-status-text")).to_have_text(
        "Yhteys toimii, kaikki myynnit siirretty")
    assert interrupted == [(keys[0], 201)]

    # Exactly 20 new orders at the store: one per sale, the offline ones as made.
    orders = await orders_since(db, shop.store1, first_id)
    location = shop.store1
    assert [o.idempotency_key for o in orders] == [order_key(location, k) for k in keys]
    assert all(o.offline for o in orders)
    assert [o.client_ref for o in orders] == refs  # synced in the order they were made
    assert {o.drawer_session_id for o in orders} == {session_id}
    assert all(o.sold_at is not None for o in orders)
    by_key = {o.idempotency_key: o for o in orders}
    negative = by_key[order_key(location, negative_key)]
    assert "negative_stock" in negative.flags.split()
    assert [o for o in orders if "negative_stock" in o.flags.split()] == [negative]
    # Stock moved by exactly what was sold, below zero included.
    assert await on_hand(db, int(str(stocked["id"])), shop.store1) == stocked_before - sold
    assert await on_hand(db, int(str(empty["id"])), shop.store1) == -1

    # Nothing left on the device.
    assert await page.evaluate("window.__queue.entries()") == []


# --- 2. two tabs --------------------------------------------------------------------------

async def test_two_tabs_coming_online_together_sync_each_sale_once(
    browser: Browser, contexts: list[BrowserContext], network: Network, db: Database,
    shop: Shop, backend: str,
) -> None:
    [variant] = await make_variants(db, [990], stock={shop.store1: 50})
    before = await on_hand(db, int(str(variant["id"])), shop.store1)
    await open_drawer(db, shop.store1)
    first_id = await last_order_id(db)

    context = await new_context(contexts, browser)
    first = await context.new_page()
    await log_in_at_till(first, network.base_url, shop)
    await make_offline_ready(first)
    second = await context.new_page()
    await second.goto(f"{network.base_url}/pos/{STORE}")
    tabs = [await open_till(first), await open_till(second)]

    await go_offline(context, network)
    prefix = f"tabs{backend[:2]}{first_id}"
    for n, till in enumerate(tabs):
        for i in range(5):
            result = await sell(till, sale_key(f"{prefix}{n}", i), variant, 1)
            assert result["status"] == "queued", result
    for till in tabs:  # one outbox per device: each tab sees all ten
        await expect(till.status).to_have_attribute("data-pending", "10")

    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url)
               if r.method == "POST" and r.url.endswith("/api/sales") else None)
    await go_online(context, network)
    for till in tabs:
        await expect(till.status).to_have_attribute("data-state", "synced", timeout=SYNC_MS)

    orders = await orders_since(db, shop.store1, first_id)
    keys = [order_key(shop.store1, k) for till in tabs for k in till.keys]
    assert sorted(o.idempotency_key or "" for o in orders) == sorted(keys)
    assert len(orders) == 10 and all(o.offline for o in orders)
    assert await on_hand(db, int(str(variant["id"])), shop.store1) == before - 10
    assert len(requests) >= 10


# --- 3. a sale the server refuses --------------------------------------------------------

async def test_a_refused_sale_needs_attention_and_the_rest_sync(
    browser: Browser, contexts: list[BrowserContext], network: Network, db: Database,
    shop: Shop, backend: str,
) -> None:
    [variant] = await make_variants(db, [1500], stock={shop.store1: 10})
    await open_drawer(db, shop.store1)
    first_id = await last_order_id(db)
    context = await new_context(contexts, browser)
    page = await context.new_page()
    await log_in_at_till(page, network.base_url, shop)
    till = await open_till(page)

    await go_offline(context, network)
    prefix = f"bad{backend[:2]}{first_id}"
    bad = cash_sale(till, sale_key(prefix, 0), variant, 1)
    bad["session_id"] = 2_000_000_000  # no such drawer session: refused on sync
    refused = await page.evaluate(SUBMIT, bad)
    assert refused["status"] == "queued"
    good = await sell(till, sale_key(prefix, 1), variant, 2)
    assert good["status"] == "queued"
    # The voided lines of a cancelled sale wait the same way.
    void_key = sale_key(prefix, 2)
    voided = await page.evaluate("""(v) => window.__queue.submitVoids(v)""", {
        "key": void_key, "voids": [{"variant_id": variant["id"], "quantity": 1,
                                    "amount_cents": 1500, "reason": "asiakas perui"}]})
    assert voided["status"] == "queued"
    await expect(till.status).to_have_attribute("data-pending", "3")

    await go_online(context, network)
    await expect(till.status).to_have_attribute("data-state", "attention", timeout=SYNC_MS)
    await expect(till.status).to_have_attribute("data-pending", "0", timeout=SYNC_MS)
    await expect(till.status.get_by_test_id("sync-status-text")).to_have_text(
        "1 myynti vaatii huomiota")
    await till.status.get_by_test_id("sync-details-toggle").click()
    problem = till.status.locator("[data-testid=sync-entry][data-state=attention]")
    await expect(problem).to_have_count(1)
    await expect(problem).to_contain_text(refused["clientRef"])
    await expect(problem).to_contain_text("drawer session")

    orders = await orders_since(db, shop.store1, first_id)
    assert [o.idempotency_key for o in orders] == [order_key(shop.store1, sale_key(prefix, 1))]
    async with db.reader() as s:
        voids = (await s.scalars(select(SaleVoid).where(
            SaleVoid.idempotency_key == f"till:{shop.store1}:{void_key}:v0"))).all()
    assert [(v.quantity, v.amount_cents, v.reason) for v in voids] == [
        (1, 1500, "asiakas perui")]
    # Kept on the device for a person to look at, never dropped.
    left = await page.evaluate("window.__queue.entries()")
    assert [(e["clientRef"], e["state"]) for e in left] == [(refused["clientRef"], "attention")]


# --- 4. online: straight through; a lost answer is replayed, not sold twice -----------------

async def test_online_sales_go_straight_through_and_a_lost_answer_is_not_a_second_sale(
    browser: Browser, contexts: list[BrowserContext], network: Network, db: Database,
    shop: Shop, backend: str,
) -> None:
    [variant] = await make_variants(db, [2000], stock={shop.store1: 10})
    before = await on_hand(db, int(str(variant["id"])), shop.store1)
    await open_drawer(db, shop.store1)
    first_id = await last_order_id(db)
    context = await new_context(contexts, browser)
    page = await context.new_page()
    await log_in_at_till(page, network.base_url, shop)
    till = await open_till(page)
    prefix = f"onl{backend[:2]}{first_id}"

    # Online: the server records it at once; nothing is kept on the device.
    done = await sell(till, sale_key(prefix, 0), variant, 1)
    assert done["status"] == "synced" and done["response"]["order"]["id"] > first_id
    # Refused (4xx): handed back to the till to fix, nothing kept.
    bad = cash_sale(till, sale_key(prefix, 1), variant, 1)
    bad["session_id"] = 2_000_000_000
    refused = await page.evaluate(SUBMIT, bad)
    assert refused["status"] == "error" and refused["error"]["status"] == 422
    assert await page.evaluate("window.__queue.entries()") == []

    # The server records the sale but the answer is lost: the till keeps it (same key)…
    lost: list[int] = []

    async def lose_answer(route: Route) -> None:
        if lost:
            await route.continue_()
            return
        lost.append((await route.fetch()).status)
        await route.abort("connectionreset")

    await context.route(re.compile(r"/api/sales$"), lose_answer)
    kept = await sell(till, sale_key(prefix, 2), variant, 3)
    assert lost == [201]
    assert kept["status"] == "queued" and re.fullmatch(r"K1-\d{6}", kept["clientRef"])
    # …and its sync gets the first sale back: one order, as recorded online.
    await expect(till.status).to_have_attribute("data-state", "synced", timeout=SYNC_MS)
    orders = await orders_since(db, shop.store1, first_id)
    assert [o.idempotency_key for o in orders] == [
        order_key(shop.store1, sale_key(prefix, 0)), order_key(shop.store1, sale_key(prefix, 2))]
    assert [o.offline for o in orders] == [False, False]
    assert await on_hand(db, int(str(variant["id"])), shop.store1) == before - 4
    assert await page.evaluate("window.__queue.entries()") == []


# --- 5. the worker as served ------------------------------------------------------------------

async def test_the_service_worker_is_served_with_its_cache_version(
    client: httpx.AsyncClient, tmp_path: Path,
) -> None:
    r = await client.get("/pos/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/javascript"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["service-worker-allowed"] == "/pos/"
    m = re.search(r'const VERSION = "([0-9a-f]{16})";', r.text)
    assert m and m.group(1) == offline.cache_version()
    listed = re.search(r"const PRECACHE = (\[.*?\]);", r.text)
    assert listed
    precache = json.loads(listed.group(1))
    assert {"/static/pos/queue.js", "/static/pos/status.js", "/static/pos/till.js",
            "/static/vendor/htmx.min.js", "/static/css/pos.css"} <= set(precache)
    assert "/static/pos/sw.js" not in precache
    assert "__PRECACHE__" not in r.text and "__CACHE_VERSION__" not in r.text

    # A deploy that changes any cached file gets a new version (and so a new cache).
    (tmp_path / "pos").mkdir()
    (tmp_path / "css").mkdir()
    (tmp_path / "pos" / "sw.js").write_text("// worker")
    (tmp_path / "pos" / "till.js").write_text("// v1")
    (tmp_path / "css" / "pos.css").write_text("body {}")
    first = offline.cache_version(tmp_path)
    assert offline.cache_version(tmp_path) == first
    (tmp_path / "pos" / "till.js").write_text("// v2")
    assert offline.cache_version(tmp_path) != first
