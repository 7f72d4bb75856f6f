"""Reserve to try in the channel journeys and the funnel (both databases), on a database
of their own so that every figure is known. Reservations are made and sold through the
real services (tryon.services, the till's sale); earlier web and store purchases are
written at chosen moments. A reservation to try made on the web and bought at the till is
a journey that began on the web and ended in the store (kind web_to_store); a released
or lapsed reservation makes no purchase; a plain till sale stays a store purchase. The
back-office page (fi, en, CSV) and the API show the same figures."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.csvio.files import format_euros
from saumaton.customers.segments import parse_rules, preview
from saumaton.db.uow import Database
from saumaton.orders.models import Order
from saumaton.reports.funnel_report import funnel_report
from saumaton.reports.journey_tables import CustomerJourney, JourneyRefresh
from saumaton.reports.journeys import JourneyReport, journey_report, refresh_journeys
from saumaton.reports.period import Period
from saumaton.tryon import services as tryon
from saumaton.web.app import create_app
from tests.builders import a_till_sale, a_try_reservation, a_try_sold_at_the_till
from tests.report_orders import add_order, channel_ids, new_customer
from tests.support import (
    Shop,
    make_variants,
    own_shop,
    staff_actor,
    staff_login,
)

OWNER = Actor(label="staff:o", name="Olli Owner", grants=(RoleGrant("owner", None),))
TZ = "Europe/Helsinki"
PRICE = 2490  # the tried product, VAT incl.


@dataclass
class World:
    db: Database
    shop: Shop
    ch: dict[str, int]
    variant: int
    base: datetime
    cust: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def world(backend: str, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[World]:
    async with own_shop(backend, tmp_path_factory.mktemp("journeys-try")) as (db, shop):
        [v] = await make_variants(db, [PRICE], stock={shop.store1: 20})
        w = World(db, shop, await channel_ids(db), int(str(v["id"])), utcnow())
        await build(w)
        yield w


async def build(w: World) -> None:
    db, shop, v, ch = w.db, w.shop, w.variant, w.ch
    for name in "RGNLPWST":
        w.cust[name] = await new_customer(db, name)
    c = w.cust
    cashier = await staff_actor(db, shop, "cashier1")
    # R: signed in on the product page, reserves, buys it at the till.
    await a_try_sold_at_the_till(db, shop, v, customer_id=c["R"])
    # G: reserves as a guest (name and phone); the cashier attaches her at the till: the
    # sale's customer counts, whoever made the reservation.
    g = await a_try_reservation(db, shop, v)
    await a_till_sale(db, shop, [v], customer_id=c["G"], try_ids=[g.id])
    # N: reserves and never comes (expired by the sweep below): no purchase at all.
    await a_try_reservation(db, shop, v, customer_id=c["N"])
    # L: reserves, the cashier releases it; later she buys the product at the till
    # without the reservation: a plain store purchase.
    held = await a_try_reservation(db, shop, v, customer_id=c["L"])
    async with db.uow() as uow:
        await tryon.release(uow, cashier, held.id, location_id=shop.store1)
        await uow.commit()
    await a_till_sale(db, shop, [v], customer_id=c["L"])
    # P: a plain till sale.
    await a_till_sale(db, shop, [v], customer_id=c["P"])
    # W: a web order ten days ago, then a reservation bought at the till.
    await add_order(db, channel_id=ch["web"], customer_id=c["W"], at=w.base - timedelta(
        days=10), lines=[(v, 5000)], status="shipped")
    await a_try_sold_at_the_till(db, shop, v, customer_id=c["W"])
    # S: a store purchase twenty days ago, then a reservation bought at the till.
    await add_order(db, channel_id=ch["pos-1"], customer_id=c["S"], at=w.base - timedelta(
        days=20), lines=[(v, 1000)])
    await a_try_sold_at_the_till(db, shop, v, customer_id=c["S"])
    # T: a reservation bought at the till five days ago, then a web order two days ago.
    _, sale = await a_try_sold_at_the_till(db, shop, v, customer_id=c["T"])
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == sale.id).values(
            created_at=w.base - timedelta(days=5)))
        await uow.commit()
    await add_order(db, channel_id=ch["web"], customer_id=c["T"], at=w.base - timedelta(
        days=2), lines=[(v, 5000)], status="shipped")
    # Nobody's: a guest's reservation bought at the till without a customer attached.
    await a_try_sold_at_the_till(db, shop, v, customer_id=None)
    # The no-show sweep after N's hold ended (hers is the only one still active).
    async with db.uow() as uow:
        lapsed = await tryon.expire_due(uow, Settings(), now=w.base + timedelta(days=3))
        await uow.commit()
    assert [r.customer_id for r in lapsed] == [c["N"]]
    # One still waiting at the store.
    await a_try_reservation(db, shop, v)


async def refresh(w: World, *, full: bool = False) -> int:
    async with w.db.uow() as uow:
        n = await refresh_journeys(uow, full=full)
        await uow.commit()
    return n


async def report(w: World) -> JourneyReport:
    async with w.db.reader() as s:
        return await journey_report(s, OWNER)


async def stored(w: World) -> dict[str, tuple[str, int, int, int]]:
    """Each customer's row: first kind, kinds mask, later kinds mask, purchases."""
    names = {cid: name for name, cid in w.cust.items()}
    async with w.db.reader() as s:
        rows = (await s.scalars(select(CustomerJourney))).all()
    return {names[r.customer_id]: (r.first_kind, r.kinds_mask, r.later_kinds_mask, r.orders)
            for r in rows if r.customer_id in names}


async def test_a_reservation_bought_at_the_till_is_a_web_to_store_journey(
        world: World) -> None:
    w = world
    await refresh(w, full=True)
    # Kind bits: pos 1, webshop 2, web_to_store 32. N (no-show) bought nothing.
    assert await stored(w) == {
        "R": ("web_to_store", 32, 0, 1), "G": ("web_to_store", 32, 0, 1),
        "L": ("pos", 1, 0, 1), "P": ("pos", 1, 0, 1),
        "W": ("webshop", 34, 32, 2), "S": ("pos", 33, 32, 2),
        "T": ("web_to_store", 34, 2, 2)}
    r = await report(w)
    assert (r.customers, r.revenue_cents) == (7, 4 * PRICE + 3 * PRICE + 5000 + 1000 + 5000)
    kinds = {k.kind: k for k in r.kind_rows}
    assert list(kinds) == ["pos", "webshop", "web_to_store"]
    assert (kinds["pos"].customers, kinds["pos"].later, kinds["pos"].repeat) == (
        3, {"web_to_store": 1}, 1)
    assert (kinds["webshop"].customers, kinds["webshop"].later) == (1, {"web_to_store": 1})
    w2s = kinds["web_to_store"]
    assert (w2s.customers, w2s.later, w2s.one_time, w2s.repeat) == (3, {"webshop": 1}, 2, 1)
    assert w2s.revenue_cents == 3 * PRICE + 5000
    assert (kinds["pos"].median_days, kinds["webshop"].median_days, w2s.median_days) == (
        20, 10, 3)
    journeys = {j.key: (j.customers, j.orders, j.revenue_cents, j.several_kinds)
                for j in r.journeys}
    assert journeys == {
        "pos-only": (2, 2, 2 * PRICE, False),
        "pos+web_to_store": (1, 2, 1000 + PRICE, True),
        "webshop+web_to_store": (1, 2, 5000 + PRICE, True),
        "web_to_store-only": (2, 2, 2 * PRICE, True),
        "web_to_store+webshop": (1, 2, PRICE + 5000, True),
    }
    assert [j.key for j in r.journeys] == ["pos-only", "pos+web_to_store",
                                           "webshop+web_to_store", "web_to_store-only",
                                           "web_to_store+webshop"]
    # Omnichannel by kind: everyone with a reservation bought at the till (the web and the
    # store); by channel only W and T bought in two channels (the till and the webshop).
    assert (r.omni_kinds.customers, r.omni_kinds.revenue_cents) == (
        5, 5 * PRICE + 5000 + 1000 + 5000)
    assert (r.omni_channels.customers, r.omni_channels.revenue_cents) == (
        2, 2 * PRICE + 10000)
    assert r.single_kind_ltv_cents == PRICE
    assert r.multi_kind_ltv_cents == (5 * PRICE + 11000) // 5
    # The matrix is per channel: the till's customers (R, G, T as well) in its row.
    rows = {row.channel.code: row for row in r.rows}
    assert (rows["pos-1"].customers, rows["pos-1"].later) == (
        6, {w.ch["pos-1"]: 1, w.ch["web"]: 1})
    assert (rows["web"].customers, rows["web"].later) == (1, {w.ch["pos-1"]: 1})


async def test_segments_count_it_a_store_purchase(world: World) -> None:
    w = world
    await refresh(w, full=True)
    c = w.cust

    async def who(**rules: Any) -> set[str]:
        names = {cid: name for name, cid in c.items()}
        async with w.db.reader() as s:
            return {names[m.id] for m in await preview(s, parse_rules(rules), limit=100)
                    if m.id in names}

    assert await who(first_channel="pos") == {"L", "P", "S", "R", "G", "T"}
    assert await who(first_channel="webshop") == {"W"}
    assert await who(first_channel="pos", then_channel="webshop") == {"T"}
    assert await who(then_channel="pos") == {"S", "W"}
    assert await who(bought_in=["webshop"]) == {"W", "T"}
    assert await who(bought_in=["pos"]) == {"L", "P", "S", "R", "G", "T", "W"}


def _today() -> Period:
    today = utcnow().astimezone(ZoneInfo(TZ)).date()
    return Period(today - timedelta(days=1), today + timedelta(days=1))


async def test_the_funnel_counts_each_reservation_by_its_outcome(world: World) -> None:
    async with world.db.reader() as s:
        r = await funnel_report(s, OWNER, _today(), TZ)
    # Made today: R's, G's, W's, S's, T's and the guest's bought at the till; L's
    # released; N's not collected; one still waiting.
    assert r.web_to_store == {"sold": 6, "released": 1, "expired": 1, "active": 1}


# --- the page and the API ------------------------------------------------------------


@pytest.fixture(scope="module")
async def app_client(world: World, settings: Settings, shop: Shop
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the shared shop's database (its staff and tokens), reporting from this
    module's database."""
    app = create_app(settings.model_copy(update={"reports_database_url": world.db.url}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            yield client


def _csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


async def test_page_and_api_show_the_web_to_store_journey(
        world: World, app_client: httpx.AsyncClient, shop: Shop) -> None:
    await refresh(world, full=True)
    r = await report(world)
    c = app_client
    c.cookies.clear()
    await staff_login(c, shop, "owner")
    en = await c.get("/backoffice/reports/customers?lang=en")
    assert en.status_code == 200
    assert "Reserved online, bought in a store only" in en.text
    assert "Later: Reserved online, bought in a store" in en.text
    fi = await c.get("/backoffice/reports/customers?lang=fi")
    assert "Vain Varattu verkossa, ostettu myymälästä" in fi.text
    assert "Myöhemmin: Varattu verkossa, ostettu myymälästä" in fi.text
    kinds = _csv((await c.get(
        "/backoffice/reports/customers?format=csv&table=kinds&lang=en")).content)
    assert kinds[0] == ["first_kind", "customers", "later_webshop", "later_webshop_pct",
                        "later_web_to_store", "later_web_to_store_pct", "one_time"]
    assert kinds[1:] == [["Store", "3", "0", "0,0", "1", "33,3", "2"],
                         ["Webshop", "1", "0", "0,0", "1", "100,0", "0"],
                         ["Reserved online, bought in a store", "3", "1", "33,3", "0",
                          "0,0", "2"]]
    ltv = _csv((await c.get(
        "/backoffice/reports/customers?format=csv&table=ltv&lang=en")).content)
    by_key = {row[1]: row for row in ltv[1:]}
    assert by_key["web_to_store-only"] == [
        "Reserved online, bought in a store only", "web_to_store-only", "2", "2",
        format_euros(2 * PRICE), format_euros(PRICE)]
    assert by_key["single"][2:4] == ["2", "2"]  # L and P: the plain till sales
    assert by_key["omnichannel"][2] == str(r.omni_kinds.customers) == "5"
    body = (await c.get("/api/v1/reports/customers/journeys",
                        headers=shop.auth("finance"))).json()
    assert [(k["kind"], k["customers"], k["later"]) for k in body["first_kinds"]] == [
        ("pos", 3, {"web_to_store": 1}), ("webshop", 1, {"web_to_store": 1}),
        ("web_to_store", 3, {"webshop": 1})]
    assert [(j["key"], j["customers"], j["several_kinds"]) for j in body["journeys"]] == [
        (j.key, j.customers, j.several_kinds) for j in r.journeys]
    assert body["omni_kinds"]["customers"] == 5
    period = _today()
    funnel = (await c.get("/api/v1/reports/customers/funnel", headers=shop.auth("owner"),
                          params={"from": period.first.isoformat(),
                                  "to": period.last.isoformat()})).json()
    assert funnel["web_to_store"] == {"sold": 6, "released": 1, "expired": 1, "active": 1}


async def test_figures_kept_before_the_kind_existed_still_read(world: World) -> None:
    """The page reads the figures summed at the last refresh: those summed before the
    web_to_store kind (no first kind in the groups and days) read as their first
    channel's kind until the next refresh."""
    w = world
    await refresh(w, full=True)
    async with w.db.uow() as uow:
        state = await uow.session.get(JourneyRefresh, 1)
        assert state is not None
        old = {"matrix": state.figures["matrix"],
               "groups": [g[:8] for g in state.figures["groups"]],
               "days": [d[:3] for d in state.figures["days"]]}
        state.figures = old
        await uow.commit()
    r = await report(w)
    assert [(k.kind, k.customers) for k in r.kind_rows] == [("pos", 6), ("webshop", 1)]
    assert r.customers == 7
    await refresh(w, full=True)
    assert [(k.kind, k.customers) for k in (await report(w)).kind_rows] == [
        ("pos", 3), ("webshop", 1), ("web_to_store", 3)]


# --- last: it adds a customer --------------------------------------------------------


async def test_a_new_reservation_sale_is_picked_up_by_the_incremental_refresh(
        world: World) -> None:
    w = world
    await refresh(w, full=True)
    newcomer = await new_customer(w.db, "Uusi")
    await a_try_sold_at_the_till(w.db, w.shop, w.variant, customer_id=newcomer)
    assert await refresh(w) >= 1
    async with w.db.reader() as s:
        row = await s.get(CustomerJourney, newcomer)
        incremental = [(j.customer_id, j.first_kind, j.kinds_mask, j.later_kinds_mask,
                        j.orders, j.revenue_cents) for j in (await s.scalars(
                            select(CustomerJourney).order_by(CustomerJourney.customer_id))
                        ).all()]
    assert row is not None and (row.first_kind, row.kinds_mask, row.revenue_cents) == (
        "web_to_store", 32, PRICE)
    figures = {j.key: j.customers for j in (await report(w)).journeys}
    assert figures["web_to_store-only"] == 3
    await refresh(w, full=True)
    async with w.db.reader() as s:
        full = [(j.customer_id, j.first_kind, j.kinds_mask, j.later_kinds_mask, j.orders,
                 j.revenue_cents) for j in (await s.scalars(
                     select(CustomerJourney).order_by(CustomerJourney.customer_id))).all()]
    assert full == incremental
