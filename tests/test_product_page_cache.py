"""The product page answers from per-process caches (the product, VAT rates, the web
channel, the campaign book) and reads only the stock live, on both databases: a price
change, a campaign created or ended, a product edit and a new picture show on the next
view (their outbox events drop the cached values); a campaign starts and ends on time
with the book kept; a guest's product page costs one database round trip."""

from __future__ import annotations

import re
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from saumaton.analytics.buffer import AnalyticsBuffer
from saumaton.catalogue.cached import product_by_slug, variant_infos, vat_rates
from saumaton.catalogue.editing import ProductEdit, update_product
from saumaton.catalogue.schemas import ImageIn
from saumaton.catalogue.services import add_images
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.locations.reference import channel_id
from saumaton.orders.services import business_day
from saumaton.pricing.book import book_prices, campaign_book
from saumaton.pricing.changes import set_price_now
from saumaton.pricing.services import CampaignIn, create_campaign, end_campaign, resolve_prices
from saumaton.web.app import create_app
from tests.support import Shop, eventually, make_variants, text_of


async def page(client: httpx.AsyncClient, slug: str) -> str:
    r = await client.get(f"/shop/p/{slug}", headers={"Accept-Language": "fi"})
    assert r.status_code == 200, r.text[:300]
    return r.text


async def test_a_price_change_and_a_campaign_show_on_the_next_view(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    v = (await make_variants(db, [2000], stock={shop.warehouse: 5}))[0]
    slug, vid = str(v["product_slug"]), int(str(v["id"]))
    assert text_of(await page(client, slug), "price") == "20,00 €"
    assert text_of(await page(client, slug), "price") == "20,00 €"  # now from the cache

    async with db.uow() as uow:
        await set_price_now(uow, SYSTEM, vid, 2500)
        await uow.commit()
    assert text_of(await page(client, slug), "price") == "25,00 €"

    async with db.uow() as uow:
        campaign = await create_campaign(uow, SYSTEM, CampaignIn(
            name="Kevät", kind="percent", value=2000,
            starts_at=utcnow() - timedelta(minutes=1), variant_ids=[vid]))
        await uow.commit()
    shown = await page(client, slug)
    assert text_of(shown, "price") == "20,00 €"
    assert text_of(shown, "campaign") == "Kevät"

    async with db.uow() as uow:
        await end_campaign(uow, SYSTEM, campaign)
        await uow.commit()
    shown = await page(client, slug)
    assert text_of(shown, "price") == "25,00 €"
    assert 'data-testid="campaign"' not in shown


async def test_a_product_edit_and_a_new_picture_show_on_the_next_view(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    v = (await make_variants(db, [1500], stock={shop.warehouse: 5}))[0]
    slug, pid = str(v["product_slug"]), int(str(v["product_id"]))
    assert "Uusi nimi" not in await page(client, slug)

    async with db.uow() as uow:
        await update_product(uow, SYSTEM, pid, ProductEdit(name="Uusi nimi", brand="Merkki"))
        await uow.commit()
    shown = await page(client, slug)
    assert text_of(shown, "product-name") == "Uusi nimi"
    assert text_of(shown, "brand") == "Merkki"
    assert 'data-testid="gallery-image"' not in shown

    async with db.uow() as uow:  # the demo data's way of adding pictures
        await add_images(uow, SYSTEM, [ImageIn(product_id=pid, url="/media/x/new.png",
                                               alt="Uusi kuva")])
        await uow.commit()
    assert 'alt="Uusi kuva"' in await page(client, slug)


async def test_the_cached_product_is_dropped_by_its_events_only(db: Database) -> None:
    v = (await make_variants(db, [990]))[0]
    slug = str(v["product_slug"])
    async with db.reader() as s:
        first = await product_by_slug(db, s, slug)
        assert await product_by_slug(db, s, slug) is first  # kept
    async with db.uow() as uow:
        uow.emit("stock.changed", {"variant_id": int(str(v["id"]))})
        await uow.commit()
    async with db.reader() as s:
        assert await product_by_slug(db, s, slug) is first  # stock is not the product's
    async with db.uow() as uow:
        await set_price_now(uow, SYSTEM, int(str(v["id"])), 1090)
        await uow.commit()
    async with db.reader() as s:
        again = await product_by_slug(db, s, slug)
    assert again is not first
    assert again.variants[0].price_cents == 1090


async def test_a_campaign_starts_and_ends_on_time_with_the_book_kept(
        db: Database, shop: Shop) -> None:
    """The book keeps campaigns still to come and checks each one's window at the time
    asked: the same prices as the database gives at each moment, without a new read."""
    v = (await make_variants(db, [4000]))[0]
    vid, slug = int(str(v["id"])), str(v["product_slug"])
    now = utcnow()
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Ilta", kind="fixed", value=500, starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=2), product_ids=[int(str(v["product_id"]))]))
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Jäsenet", kind="percent", value=5000, min_tier="silver",
            starts_at=now - timedelta(hours=1), variant_ids=[vid], channel_codes=["web"]))
        await uow.commit()
    async with db.reader() as s:
        book = await campaign_book(db, s)
        product = await product_by_slug(db, s, slug)
        web = await channel_id(db, s, "web")
        for hours, tier, expected in ((0, None, 4000), (1.5, None, 3500), (3, None, 4000),
                                      (0, "silver", 2000), (1.5, "gold", 2000),
                                      (1.5, "member", 3500)):
            at = now + timedelta(hours=hours)
            infos = variant_infos(product, [vid], await vat_rates(db, s, business_day(at)),
                                  business_day(at))
            got = await book_prices(db, s, infos, web, at, tier)
            assert got == await resolve_prices(s, infos, web, at, tier), (hours, tier)
            assert got[vid].price_cents == expected, (hours, tier)
        # Not in the channel the silver price is limited to: everyone's price.
        pos = await channel_id(db, s, "pos-1")
        infos = variant_infos(product, [vid], await vat_rates(db, s, business_day(now)),
                              business_day(now))
        assert (await book_prices(db, s, infos, pos, now, "silver"))[vid].price_cents == 4000
        assert await campaign_book(db, s) is book  # one read for all of it


class _Counting:
    """An asyncpg connection's protocol that counts its round trips (as
    bench/checkout_steps.py counts them)."""

    CALLS = frozenset({"query", "prepare", "bind_execute", "bind_execute_many", "bind",
                       "execute", "close_statement", "copy_in", "copy_out"})

    def __init__(self, inner: Any, counts: dict[str, int]) -> None:
        self._inner = inner
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self.CALLS:
            return attr

        def counted(*a: Any, **kw: Any) -> Any:
            self._counts["round trips"] += 1
            return attr(*a, **kw)
        return counted


@pytest.fixture
async def counted_app(database_url: str, shop: Shop
                      ) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, int]]]:
    """An app of its own (no background jobs, analytics kept in memory) whose database
    round trips (PostgreSQL, on the wire protocol) or statements (SQLite) are counted."""
    settings = Settings(database_url=database_url, var_dir=tempfile.mkdtemp(),
                        secret_key="test-secret-key-0123456789", run_jobs=False)
    app = create_app(settings)
    counts: dict[str, int] = defaultdict(int)
    async with app.router.lifespan_context(app):
        db: Database = app.state.db
        engine = db.write_engine.sync_engine
        if db.is_postgres:
            def on_connect(dbapi_connection: Any, _record: Any) -> None:
                conn = dbapi_connection.driver_connection
                conn._protocol = _Counting(conn._protocol, counts)
            event.listen(engine, "connect", on_connect)
            await db.write_engine.dispose()  # every connection from now on is counted
        else:
            def on_statement(*_: Any) -> None:
                counts["round trips"] += 1
            event.listen(db.read_engine.sync_engine, "before_cursor_execute", on_statement)
        real = app.state.analytics
        app.state.analytics = AnalyticsBuffer(db)  # not started: nothing written meanwhile
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://test") as c:
                yield c, counts
        finally:
            app.state.analytics = real


async def test_a_guests_product_page_costs_one_round_trip(
        counted_app: tuple[httpx.AsyncClient, dict[str, int]], db: Database,
        shop: Shop) -> None:
    """Budget: the stock levels, read live; everything else comes from the caches."""
    c, counts = counted_app
    v = (await make_variants(db, [1200, 1300], stock={shop.warehouse: 7}))[0]
    slug = str(v["product_slug"])

    async def view() -> int:
        counts.clear()
        shown = await page(c, slug)
        assert text_of(shown, "availability-online") == "7"
        return counts["round trips"]
    # The first views fill the caches (and the product's own events, which reach this
    # app through its event hub a moment after they were committed, may empty them).
    await eventually(lambda: _is(view(), 1), within=10,
                     what="a product page view of one round trip")
    assert await view() == 1
    assert await view() == 1


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_the_chat_widget_is_in_the_pages_language_with_the_pages_own_token(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    """The widget is rendered once per language and kept: each page still gets it in
    its own language with its own session's CSRF token."""
    slug = str((await make_variants(db, [700]))[0]["product_slug"])
    transport = client._transport
    seen = []
    for lang in ("fi", "en", "fi"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as browser:
            text = (await browser.get(f"/shop/p/{slug}?lang={lang}")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', text)
        widget = re.search(r'id="chat-widget"[^>]*data-csrf="([^"]+)"', text)
        assert token and widget
        assert widget.group(1) == token.group(1)
        assert ("Kysy meiltä" in text) == (lang == "fi")
        assert ("Ask us" in text) == (lang == "en")
        seen.append(token.group(1))
    assert len(set(seen)) == 3  # three sessions, three tokens
