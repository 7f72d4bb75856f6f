"""First-party analytics: events, the buffer, the funnel report and the cookie choice."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright, expect
from sqlalchemy import event, select
from starlette.requests import Request

from saumaton.analytics.buffer import AnalyticsBuffer
from saumaton.analytics.funnel import funnel
from saumaton.analytics.models import AnalyticsEvent
from saumaton.analytics.privacy import prune_events
from saumaton.config import Settings
from saumaton.core.errors import ValidationFailed
from saumaton.db.uow import Database
from saumaton.web.analytics import track, track_visit
from saumaton.web.app import create_app
from tests.support import Server, Shop, make_variants

HTML = {"Accept": "text/html,application/xhtml+xml"}
VID = "v" * 32


# --- fixtures and helpers -----------------------------------------------------------------

@pytest.fixture(scope="module")
async def app(settings: Settings, shop: Shop) -> AsyncIterator[FastAPI]:
    """An app of our own, so that tests can flush its analytics buffer."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def fresh_client(app: FastAPI) -> httpx.AsyncClient:
    """A new cookie jar: a first-time visitor."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def events_at(app: FastAPI, path: str, kind: str = "visit") -> list[AnalyticsEvent]:
    await app.state.analytics.flush()
    db: Database = app.state.db
    async with db.reader() as s:
        return list((await s.scalars(
            select(AnalyticsEvent).where(AnalyticsEvent.path == path,
                                         AnalyticsEvent.kind == kind)
            .order_by(AnalyticsEvent.id))).all())


async def csrf(c: httpx.AsyncClient) -> str:
    page = (await c.get("/staff/login")).text  # any form page gives the session's token
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def session_data(c: httpx.AsyncClient) -> str:
    """The JSON inside the signed session cookie."""
    data = (c.cookies.get("saumaton_session") or "").split(".")[0]
    return base64.b64decode(data + "=" * (-len(data) % 4)).decode()


async def product_path(db: Database) -> str:
    [variant] = await make_variants(db, [1990])
    return f"/shop/p/{variant['product_slug']}"


def fake_request(buffer: object, *, cookies: str = "", session: dict[str, Any] | None = None,
                 path: str = "/shop/x", shopper_id: int | None = None) -> Request:
    """`shopper_id`: the signed-in customer as ShopperMiddleware resolved it."""
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": path, "query_string": b"", "root_path": "",
        "scheme": "http", "server": ("test", 80), "headers": [(b"cookie", cookies.encode())],
        "app": SimpleNamespace(state=SimpleNamespace(analytics=buffer)),
    }
    if session is not None:
        scope["session"] = session
    if shopper_id is not None:
        scope["state"] = {"shopper_id": shopper_id}
    return Request(scope)


def queue_only() -> AnalyticsBuffer:
    """A buffer that is never flushed: what track() queues, without a database."""
    return AnalyticsBuffer(cast(Database, None))


def rows(n: int, path: str, **extra: Any) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"kind": "product_view", "path": path, "variant_id": i, **extra}


# --- events and consent -------------------------------------------------------------------

async def test_without_consent_a_visit_is_an_anonymous_arrival(
        app: FastAPI, db: Database) -> None:
    path = await product_path(db)
    async with fresh_client(app) as c:
        await csrf(c)  # a session exists, as it does once the cookie banner is shown
        assert (await c.get(path, headers=HTML)).status_code == 200  # typed in: arrival
        inside = {**HTML, "Referer": "http://test/shop/"}
        assert (await c.get(path, headers=inside)).status_code == 200  # a click in the shop
        await c.get(path)  # not a page load (Accept */*): never a visit
        from_search = {**HTML, "Referer": "https://search.example/?q=shop"}
        assert (await c.get(path, headers=from_search)).status_code == 200  # arrives again
        assert "saumaton_vid" not in c.cookies
        # Nothing about the visit is kept in the (strictly necessary) session cookie.
        assert "csrf" in session_data(c) and "analytics" not in session_data(c)
    visits = await events_at(app, path)
    assert [(v.kind, v.visitor_id, v.channel) for v in visits] == [("visit", None, "web")] * 2


async def test_failed_pages_and_fragments_are_not_visits(app: FastAPI) -> None:
    path = f"/shop/p/no-such-{uuid.uuid4().hex[:8]}"
    async with fresh_client(app) as c:
        assert (await c.get(path, headers=HTML)).status_code == 404
        await c.get(path, headers={**HTML, "HX-Request": "true"})
    assert await events_at(app, path) == []


async def test_after_allowing_analytics_visits_carry_the_visitor_id(
        app: FastAPI, db: Database) -> None:
    path = await product_path(db)
    async with fresh_client(app) as c:
        page = await c.get(path, headers=HTML)  # arrives: one anonymous visit
        token = await csrf(c)
        r = await c.post("/shop/consent", data={
            "csrf_token": token, "choice": "analytics", "next": path})
        assert r.status_code == 303 and r.headers["location"] == path
        assert c.cookies["saumaton_consent"] == "analytics"
        vid = c.cookies["saumaton_vid"]
        assert len(vid) >= 16
        set_cookies = r.headers.get_list("set-cookie")
        vid_cookie = next(h for h in set_cookies if h.startswith("saumaton_vid="))
        assert "HttpOnly" in vid_cookie and "samesite=lax" in vid_cookie.lower()
        assert f"Max-Age={395 * 24 * 3600}" in vid_cookie
        # The arrival was counted already: not again in this browser session, even
        # when arriving from elsewhere.
        from_search = {**HTML, "Referer": "https://search.example/"}
        assert (await c.get(path, headers=from_search)).status_code == 200
        # Choosing again keeps the same id.
        await c.post("/shop/consent", data={"csrf_token": token, "choice": "analytics"})
        assert c.cookies["saumaton_vid"] == vid
        # The next browser session (the session cookie is gone) is a visit with the id,
        # even on a page reached by a link inside the shop.
        c.cookies.delete("saumaton_session")
        inside = {**HTML, "Referer": "http://test/shop/"}
        assert (await c.get(path, headers=inside)).status_code == 200
        assert (await c.get(path, headers=HTML)).status_code == 200  # same session: no
    assert page.status_code == 200
    visits = await events_at(app, path)
    assert [v.visitor_id for v in visits] == [None, vid]


async def test_only_necessary_deletes_the_id_and_unlinks_past_events(
        app: FastAPI, db: Database) -> None:
    path = await product_path(db)
    async with fresh_client(app) as c:
        token = await csrf(c)
        await c.post("/shop/consent", data={"csrf_token": token, "choice": "analytics"})
        vid = c.cookies["saumaton_vid"]
        c.cookies.delete("saumaton_session")  # a later browser session
        await c.get(path, headers=HTML)
        [before] = await events_at(app, path)
        assert before.visitor_id == vid
        token = await csrf(c)
        assert "analytics_visit" in session_data(c)
        r = await c.post("/shop/consent", data={"csrf_token": token, "choice": "necessary"},
                         headers={"HX-Request": "true"})
        assert r.status_code == 200
        assert 'data-testid="consent-settings"' in r.text
        assert 'data-testid="consent-saved"' in r.text
        assert 'data-testid="consent-banner"' not in r.text
        assert c.cookies["saumaton_consent"] == "necessary"
        assert "saumaton_vid" not in c.cookies
        assert "analytics_visit" not in session_data(c)
    [after] = await events_at(app, path)
    assert after.visitor_id is None


async def test_bad_choice_or_missing_csrf_changes_nothing(app: FastAPI) -> None:
    async with fresh_client(app) as c:
        token = await csrf(c)
        r = await c.post("/shop/consent", data={"csrf_token": token, "choice": "everything"},
                         headers={"HX-Request": "true"})
        assert r.status_code == 422
        assert 'data-testid="consent-error"' in r.text
        assert 'aria-describedby="consent-error"' in r.text
        assert 'data-testid="consent-banner"' in r.text  # still asking
        r = await c.post("/shop/consent", data={"choice": "analytics"})
        assert r.status_code == 403
        r = await c.post("/shop/consent", data={"csrf_token": token, "choice": ""})
        assert r.status_code == 422
        assert "saumaton_consent" not in c.cookies and "saumaton_vid" not in c.cookies


async def test_next_must_be_a_local_path(app: FastAPI) -> None:
    async with fresh_client(app) as c:
        token = await csrf(c)
        r = await c.post("/shop/consent", data={
            "csrf_token": token, "choice": "necessary", "next": "//evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/shop/"


def test_track_uses_the_visitor_id_only_with_consent() -> None:
    buffer = queue_only()
    track(fake_request(buffer, cookies=f"saumaton_vid={VID}", session={}, shopper_id=42),
          "product_view", variant_id=5)
    track(fake_request(buffer, cookies=f"saumaton_consent=necessary; saumaton_vid={VID}"),
          "add_to_cart", variant_id=5, data={"quantity": 2})
    track(fake_request(buffer, cookies=f"saumaton_consent=analytics; saumaton_vid={VID}"),
          "order_placed", order_id=9)
    track(fake_request(buffer, cookies="saumaton_consent=analytics; saumaton_vid=bad id"),
          "checkout_started")
    queued = [row for _, row in buffer._rows]
    assert [r["visitor_id"] for r in queued] == [None, None, VID, None]
    assert [r["customer_id"] for r in queued] == [42, None, None, None]
    assert queued[1]["data"] == {"quantity": 2} and queued[2]["order_id"] == 9
    assert queued[0]["path"] == "/shop/x"


def test_track_never_raises() -> None:
    buffer = queue_only()
    track(fake_request(buffer), "no_such_kind")
    track(fake_request(buffer), "visit", colour="red")  # unknown field
    track(fake_request(buffer), "visit", data={"x": "y" * 5000})  # too big
    track(fake_request(buffer), "visit", variant_id="not a number")
    assert len(buffer) == 0
    track(fake_request(None), "visit")  # an app without the buffer
    track(fake_request(object()), "visit")  # a broken buffer
    session: dict[str, Any] = {}
    consented = f"saumaton_consent=analytics; saumaton_vid={VID}"
    assert track_visit(fake_request(buffer, cookies=consented, session=session)) is True
    assert track_visit(fake_request(buffer, cookies=consented, session=session)) is False
    assert len(buffer) == 1


@pytest.mark.parametrize("url", [
    "sqlite+aiosqlite:////nonexistent-saumaton-dir/analytics.db",
    "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
])
async def test_a_broken_database_never_raises_and_keeps_events_for_a_while(url: str) -> None:
    db = Database(url)
    try:
        buffer = AnalyticsBuffer(db)
        track(fake_request(buffer), "checkout_started")
        assert len(buffer) == 1
        assert await buffer.flush() == 0  # no exception
        assert len(buffer) == 1  # kept for the next try
        for _ in range(10):
            await buffer.flush()
        assert len(buffer) == 0 and buffer.dropped == 1  # given up after a few tries
    finally:
        await db.dispose()


# --- the buffer ---------------------------------------------------------------------------

@pytest.fixture
def inserts(db: Database) -> Iterator[list[str]]:
    """Statements that insert analytics events, as the database receives them."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ANALYTICS_EVENTS"):
            seen.append(statement)

    engine = db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    # PostgreSQL: the buffer sends its one raw statement past SQLAlchemy.
    once = db.fetch_once

    async def fetch_once(sql: str, *args: Any) -> list[Any]:
        record(None, None, sql, args, None, False)
        return await once(sql, *args)

    db.fetch_once = fetch_once  # type: ignore[method-assign]
    yield seen
    del db.fetch_once
    event.remove(engine, "before_cursor_execute", record)


async def test_buffer_writes_a_batch_in_one_insert(db: Database, inserts: list[str]) -> None:
    path = f"/test/{uuid.uuid4().hex}"
    buffer = AnalyticsBuffer(db)
    for row in rows(120, path, visitor_id=VID):
        buffer.add(row)
    assert await buffer.flush() == 120
    assert len(inserts) == 1
    async with db.reader() as s:
        stored = (await s.scalars(select(AnalyticsEvent.variant_id)
                                  .where(AnalyticsEvent.path == path))).all()
    assert sorted(v for v in stored if v is not None) == list(range(120))


async def test_buffer_splits_into_batches_and_drops_the_oldest_beyond_capacity(
        db: Database, inserts: list[str]) -> None:
    path = f"/test/{uuid.uuid4().hex}"
    buffer = AnalyticsBuffer(db, capacity=1100, batch=500)
    for row in rows(1200, path):
        buffer.add(row)
    assert buffer.dropped == 100 and len(buffer) == 1100
    assert await buffer.flush() == 1100
    assert len(inserts) == 3  # 500 + 500 + 100
    async with db.reader() as s:
        stored = (await s.scalars(select(AnalyticsEvent.variant_id)
                                  .where(AnalyticsEvent.path == path))).all()
    assert min(v for v in stored if v is not None) == 100  # the first 100 were dropped


async def test_the_background_task_flushes_a_full_batch_at_once(db: Database) -> None:
    path = f"/test/{uuid.uuid4().hex}"
    buffer = AnalyticsBuffer(db, batch=50, interval=3600)  # only a full batch wakes it
    buffer.start()
    try:
        for row in rows(50, path):
            buffer.add(row)
        async with asyncio.timeout(10):
            await buffer.wait_written(50)
    finally:
        await buffer.stop()
    assert len(buffer) == 0


async def test_stop_writes_what_is_left(db: Database) -> None:
    path = f"/test/{uuid.uuid4().hex}"
    buffer = AnalyticsBuffer(db, interval=3600)
    buffer.start()
    for row in rows(3, path):
        buffer.add(row)
    await buffer.stop()
    async with db.reader() as s:
        stored = (await s.scalars(select(AnalyticsEvent.id)
                                  .where(AnalyticsEvent.path == path))).all()
    assert len(stored) == 3


async def test_prune_deletes_only_old_events(db: Database) -> None:
    path = f"/test/{uuid.uuid4().hex}"
    old = datetime(1999, 1, 1, tzinfo=UTC)
    buffer = AnalyticsBuffer(db)
    buffer.add({"kind": "visit", "path": path, "at": old})
    buffer.add({"kind": "visit", "path": path})
    await buffer.flush()
    assert await prune_events(db, datetime(1999, 6, 1, tzinfo=UTC)) >= 1
    async with db.reader() as s:
        left = (await s.scalars(select(AnalyticsEvent.at)
                                .where(AnalyticsEvent.path == path))).all()
    assert len(left) == 1 and left[0] > old


# --- the funnel ---------------------------------------------------------------------------

async def record_funnel(db: Database, start: datetime) -> None:
    """4 visits (3 consenting visitors a, b, c + one anonymous), 3 product views (a, a, b),
    2 adds to cart (a + anonymous), 1 checkout, 1 payment, 1 order (all a)."""
    events = [("visit", "a"), ("visit", "b"), ("visit", "c"), ("visit", None),
              ("product_view", "a"), ("product_view", "a"), ("product_view", "b"),
              ("add_to_cart", "a"), ("add_to_cart", None), ("checkout_started", "a"),
              ("payment_started", "a"), ("order_placed", "a")]
    buffer = AnalyticsBuffer(db)
    for i, (kind, who) in enumerate(events):
        buffer.add({"kind": kind, "at": start + timedelta(minutes=i),
                    "visitor_id": who and (who * 20), "path": "/shop/"})
    buffer.add({"kind": "visit", "at": start - timedelta(seconds=1), "path": "/shop/"})
    buffer.add({"kind": "visit", "at": start + timedelta(days=1), "path": "/shop/"})
    assert await buffer.flush() == len(events) + 2


async def test_funnel_counts_events_visitors_and_conversion(db: Database) -> None:
    start = datetime(2001, 3, 1, 12, tzinfo=UTC)
    await record_funnel(db, start)
    async with db.reader() as s:
        report = await funnel(s, start, start + timedelta(days=1))
        empty = await funnel(s, datetime(2001, 1, 1), datetime(2001, 2, 1))  # naive: UTC
        with pytest.raises(ValidationFailed):
            await funnel(s, start, start)
    counts = {step.kind: (step.events, step.visitors) for step in report.steps}
    assert [step.kind for step in report.steps] == [
        "visit", "product_view", "add_to_cart", "checkout_started", "payment_started",
        "order_placed"]
    assert counts == {"visit": (4, 3), "product_view": (3, 2), "add_to_cart": (2, 1),
                      "checkout_started": (1, 1), "payment_started": (1, 1),
                      "order_placed": (1, 1)}
    assert report.conversion == 0.25
    assert empty.conversion is None and all(step.events == 0 for step in empty.steps)


async def test_funnel_api_needs_a_reporting_role(
        app: FastAPI, db: Database, shop: Shop) -> None:
    start = datetime(2002, 3, 1, 12, tzinfo=UTC)
    await record_funnel(db, start)
    query = {"since": start.isoformat(), "until": (start + timedelta(days=1)).isoformat()}
    async with fresh_client(app) as c:
        r = await c.get("/api/v1/analytics/funnel", params=query, headers=shop.auth("finance"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["conversion"] == 0.25
        assert body["steps"][0] == {"kind": "visit", "events": 4, "visitors": 3}
        r = await c.get("/api/v1/analytics/funnel", params=query,
                        headers=shop.auth("cashier1"))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (await c.get("/api/v1/analytics/funnel", params=query)).status_code == 401
        r = await c.get("/api/v1/analytics/funnel", params={"since": "yesterday"},
                        headers=shop.auth())
        assert r.status_code == 422
        r = await c.get("/api/v1/analytics/funnel", headers=shop.auth(), params={
            "since": query["until"], "until": query["since"]})
        assert r.status_code == 422 and r.json()["code"] == "invalid_period"
        r = await c.get("/api/v1/analytics/funnel", headers=shop.auth())  # last 30 days
        assert r.status_code == 200 and len(r.json()["steps"]) == 6


# --- the banner in a real browser ---------------------------------------------------------

@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        await b.close()


async def test_consent_banner_is_keyboard_usable_on_a_phone(
        browser: Browser, server: Server, db: Database) -> None:
    path = await product_path(db)
    context = await browser.new_context(viewport={"width": 375, "height": 740},
                                        locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        await page.goto(server.base_url + path)
        banner = page.get_by_test_id("consent-banner")
        await expect(banner).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"page is {width}px wide"
        allow = page.get_by_test_id("consent-allow")
        for _ in range(100):  # Tab through the page until the button has the focus
            await page.keyboard.press("Tab")
            if await allow.evaluate("el => el === document.activeElement"):
                break
        else:
            raise AssertionError("Tab never reached “Allow analytics”")
        await page.keyboard.press("Enter")
        await expect(banner).to_have_count(0)
        await expect(page.get_by_test_id("consent-settings")).to_be_visible()
        cookies = {c["name"]: c for c in await context.cookies()}
        assert cookies["saumaton_consent"]["value"] == "analytics"
        assert cookies["saumaton_vid"]["httpOnly"] is True
        # A later page remembers the choice: no banner, only the settings link.
        await page.reload()
        await expect(page.get_by_test_id("consent-settings")).to_be_visible()
        assert await page.get_by_test_id("consent-banner").count() == 0
    finally:
        await context.close()
