"""Sales reports on a known month (tests/known_month.py): every figure to the cent, per
channel and combined, VAT per rate, margin, both views, the summary equal to the live
figures, managers' scope, the detail pages' figures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.money import vat_included
from saumaton.locations.models import Channel
from saumaton.orders.lifecycle import OrderStatus, transition_row
from saumaton.orders.models import OrderLine
from saumaton.reports import jobs
from saumaton.reports.models import SalesDailyDay
from saumaton.reports.period import Grain, Period
from saumaton.reports.sales import Figures, Key, Scope, View, sales_report, scope_of
from saumaton.reports.sales_detail import returns_by_reason, staff_sales, top_items
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.known_month import MONTH, TZ, KnownMonth, known_month_database, local
from tests.support import open_drawer, staff_actor

STD, FOOD = 2550, 1350


@pytest.fixture(scope="module")
async def km(backend: str, tmp_path_factory: pytest.TempPathFactory,
             settings: Settings) -> AsyncIterator[KnownMonth]:
    async with known_month_database(backend, tmp_path_factory.mktemp("known-month"),
                                    settings) as month:
        yield month


@dataclass
class Line:
    gross: int
    rate: int
    units: int
    cost: int | None  # per unit


def expect(goods: list[Line], *, delivery: tuple[int, int] = (0, 0),
           returned: list[Line] | None = None, orders: int = 0,
           gift_cards: int = 0) -> Figures:
    """The figures these lines must give, computed from the definitions."""
    f = Figures()
    for ln in goods:
        vat = vat_included(ln.gross, ln.rate)
        f.goods_cents += ln.gross
        f.goods_vat_cents += vat
        f.units_sold += ln.units
        if ln.cost is not None:
            f.costed_net_cents += ln.gross - vat
            f.cost_cents += ln.cost * ln.units
    f.delivery_cents, f.delivery_vat_cents = delivery
    for ln in returned or []:
        vat = vat_included(ln.gross, ln.rate)
        f.returns_cents += ln.gross
        f.returns_vat_cents += vat
        f.units_returned += ln.units
        if ln.cost is not None:
            f.costed_net_cents -= ln.gross - vat
            f.cost_cents -= ln.cost * ln.units
    f.orders = orders
    if gift_cards:
        f.gift_cards_cents, f.gift_cards_units = gift_cards, 1
    return f


async def _channels(km: KnownMonth) -> dict[str, int]:
    async with km.db.reader() as s:
        return {c.code: c.id for c in (await s.scalars(select(Channel))).all()}


async def test_known_month_every_figure_per_channel_and_combined(km: KnownMonth) -> None:
    ch = await _channels(km)
    fee = (km.delivery_fee_cents, km.delivery_vat_cents)
    assert km.delivery_fee_cents > 0
    a_return = [Line(1000, STD, 1, 400)]
    want = {
        Key(ch["web"], None): expect(
            [Line(2000, STD, 2, 400), Line(500, FOOD, 1, 200)], delivery=fee,
            returned=a_return, orders=2),
        Key(ch["pos-1"], km.shop.store1): expect(
            [Line(1000, STD, 1, 400), Line(1800, STD, 1, None), Line(2000, STD, 1, None),
             Line(500, FOOD, 1, 200)], orders=3, gift_cards=5000),
        Key(ch["pos-2"], km.shop.store2): expect([Line(1000, FOOD, 2, 200)], orders=1),
        Key(ch["api"], None): expect([Line(1000, STD, 1, 400)], orders=1),
    }
    async with km.db.reader() as s:
        report = await sales_report(s, MONTH, tz=TZ, source="live")
    got = {r.key: r.figures for r in report.rows}
    assert got == want
    # Hand-checked totals: goods 98,00 + delivery, 10,00 back, 7 orders.
    t = report.total
    assert (t.goods_cents, t.returns_cents, t.orders, t.units_sold, t.units_returned) == (
        9800, 1000, 7, 10, 1)
    assert t.net_cents == 9800 + km.delivery_fee_cents - 1000
    assert t.gift_cards_cents == 5000  # not a sale
    # The sum of the channels is the total, and the total is the orders minus the returns.
    for attr in ("goods_cents", "goods_vat_cents", "delivery_cents", "returns_cents",
                 "returns_vat_cents", "costed_net_cents", "cost_cents", "orders"):
        assert sum(getattr(f, attr) for f in got.values()) == getattr(t, attr), attr
    async with km.db.reader() as s:
        line_sum = sum((await s.scalars(select(OrderLine.total_cents).where(
            OrderLine.order_id.in_([km.orders[n] for n in (
                "web_home", "web_pickup", "store1_discount", "store2_offline", "api",
                "gift_card_spent", "points")])))).all())
    assert t.goods_cents == line_sum
    # Margin: A 4 × (net − 4,00) and B 4 units, returns taken off; C has no cost.
    a_net = (2000 - vat_included(2000, STD)) + 2 * (1000 - vat_included(1000, STD))
    b_net = 2 * (500 - vat_included(500, FOOD)) + (1000 - vat_included(1000, FOOD))
    back = 1000 - vat_included(1000, STD)
    assert t.costed_net_cents == a_net + b_net - back
    assert t.cost_cents == 4 * 400 + 4 * 200 - 400
    assert t.margin_cents == t.costed_net_cents - t.cost_cents
    c_net = (1800 - vat_included(1800, STD)) + (2000 - vat_included(2000, STD))
    assert t.goods_net_excl_vat_cents == a_net + b_net - back + c_net
    assert t.unknown_cost_bp == round(c_net * 10_000 / t.goods_net_excl_vat_cents)
    assert t.average_basket_cents == round(t.sales_cents / 7)


async def test_known_month_vat_per_rate(km: KnownMonth) -> None:
    async with km.db.reader() as s:
        report = await sales_report(s, MONTH, tz=TZ, source="live", compare=False)
    rates = {v.rate_bp: v for v in report.vat}
    std_sales = [2000, 1000, 1800, 2000, 1000]
    food_sales = [500, 500, 1000]
    assert km.delivery_vat_rate_bp == STD
    std = rates[STD]
    assert std.sales_cents == sum(std_sales) + km.delivery_fee_cents
    assert std.sales_vat_cents == (sum(vat_included(g, STD) for g in std_sales)
                                   + km.delivery_vat_cents)
    assert (std.returns_cents, std.returns_vat_cents) == (1000, vat_included(1000, STD))
    food = rates[FOOD]
    assert (food.sales_cents, food.sales_vat_cents) == (
        2000, sum(vat_included(g, FOOD) for g in food_sales))
    assert (food.returns_cents, food.returns_vat_cents) == (0, 0)
    assert set(rates) == {STD, FOOD}  # the gift card (0 %) is not a sale
    assert sum(v.net_cents for v in report.vat) == report.total.net_cents
    assert sum(v.net_vat_cents for v in report.vat) == report.total.net_vat_cents


async def test_known_month_fulfilled_view_credits_the_pickup_store(km: KnownMonth) -> None:
    ch = await _channels(km)
    shop = km.shop
    async with km.db.reader() as s:
        report = await sales_report(s, MONTH, tz=TZ, view=View.FULFILLED, source="live",
                                    compare=False)
    got = {r.key: (r.figures.sales_cents, r.figures.returns_cents, r.figures.orders)
           for r in report.rows}
    assert got == {
        Key(ch["web"], shop.warehouse): (2000 + km.delivery_fee_cents, 0, 1),
        Key(ch["api"], shop.warehouse): (1000, 0, 1),
        Key(ch["web"], shop.store2): (500, 0, 1),  # click & collect: the pickup store's
        Key(ch["pos-2"], shop.store2): (1000, 0, 1),
        Key(ch["pos-1"], shop.store1): (5300, 0, 3),
        Key(ch["web"], shop.store1): (0, 1000, 0),  # the web order came back here
    }
    async with km.db.reader() as s:
        sold = await sales_report(s, MONTH, tz=TZ, source="live", compare=False)
    assert report.total == sold.total  # the same euros, attributed differently


async def test_known_month_summary_equals_live_and_comparisons(km: KnownMonth) -> None:
    days = [*MONTH.each_day(), *MONTH.previous().each_day(), *MONTH.year_earlier().each_day()]
    assert await jobs.refresh_days(km.db, days, TZ) == len(days)
    async with km.db.reader() as s:
        stored = await sales_report(s, MONTH, tz=TZ, grain=Grain.WEEK)
        live = await sales_report(s, MONTH, tz=TZ, grain=Grain.WEEK, source="live")
    assert stored.live_days == 0 and live.live_days > 0
    assert stored.rows == live.rows and stored.total == live.total
    assert stored.vat == live.vat and stored.buckets == live.buckets
    assert stored.previous == live.previous and stored.year_earlier == live.year_earlier
    assert stored.previous is not None and stored.year_earlier is not None
    assert (stored.previous.sales_cents, stored.previous.orders) == (50000, 1)
    assert (stored.year_earlier.sales_cents, stored.year_earlier.orders) == (2000, 1)
    # Weekly buckets hold the whole month's net sales.
    assert sum(sum(b.values()) for _, b in stored.buckets) == stored.total.net_cents
    for by in ("product", "category"):
        async with km.db.reader() as s:
            items = await top_items(s, MONTH, tz=TZ, by=by)
            live_items = await top_items(s, MONTH, tz=TZ, by=by, source="live")
        assert items == live_items and items
    # A rebuilt day is rebuilt, not added to.
    assert await jobs.refresh_days(km.db, MONTH.each_day(), TZ) == MONTH.days
    async with km.db.reader() as s:
        again = await sales_report(s, MONTH, tz=TZ, compare=False)
    assert again.total == live.total


async def test_known_month_manager_sees_only_their_store(km: KnownMonth) -> None:
    ch = await _channels(km)
    manager1 = await staff_actor(km.db, km.shop, "manager1")
    scope = scope_of(manager1)
    assert scope == Scope(frozenset({km.shop.store1}))
    assert scope_of(await staff_actor(km.db, km.shop, "finance")) == Scope(None)
    async with km.db.reader() as s:
        sold = await sales_report(s, MONTH, tz=TZ, scope=scope, source="live", compare=False)
        done = await sales_report(s, MONTH, tz=TZ, scope=scope, view=View.FULFILLED,
                                  source="live", compare=False)
    assert [r.key for r in sold.rows] == [Key(ch["pos-1"], km.shop.store1)]
    assert sold.total.sales_cents == 5300
    assert {r.key for r in done.rows} == {Key(ch["pos-1"], km.shop.store1),
                                          Key(ch["web"], km.shop.store1)}
    assert done.total.net_cents == 5300 - 1000


async def test_known_month_products_staff_and_return_reasons(km: KnownMonth) -> None:
    async with km.db.reader() as s:
        products = await top_items(s, MONTH, tz=TZ)
        staff = await staff_sales(s, MONTH, tz=TZ)
        reasons = await returns_by_reason(s, MONTH, tz=TZ)
        categories = await top_items(s, MONTH, tz=TZ, by="category")
    by_id = {p.key: p for p in products}
    a = by_id[km.a]
    assert (a.units_sold, a.sales_cents, a.returns_cents, a.net_cents) == (4, 4000, 1000, 3000)
    assert by_id[km.c].sales_cents == 3800 and by_id[km.b].units_sold == 4
    assert km.g not in by_id  # gift cards are not products sold
    assert [p.key for p in products] == [km.c, km.a, km.b]  # by net sales
    assert sum(c.net_cents for c in categories) == 9800 - 1000
    per = {(f.location_id, f.staff.split(" ")[-1]): (f.orders, f.sales_cents) for f in staff}
    assert per == {(km.shop.store1, "cashier1@test.example"): (3, 5300),
                   (km.shop.store2, "cashier2@test.example"): (1, 1000)}
    assert [(r.reason, r.channel, r.returned_at, r.units, r.refund_cents) for r in reasons] == [
        ("wrong shade", "Webshop", "Store Helsinki", 1, 1000)]


async def test_period_without_sales_is_zero(km: KnownMonth) -> None:
    async with km.db.reader() as s:
        report = await sales_report(s, Period.month(2026, 8), tz=TZ, compare=False,
                                    source="live")
    assert report.rows == [] and report.total == Figures()
    assert report.total.average_basket_cents is None and report.total.margin_bp is None



# Last in the module: it changes the known month.
async def test_late_changes_to_a_summarised_day_are_read_live(km: KnownMonth) -> None:
    """An offline sale synced weeks later and a paid order cancelled make their days
    stale in the summary: the report reads those days live until the job rebuilds them."""
    assert await jobs.refresh_days(km.db, MONTH.each_day(), TZ) == MONTH.days
    async with km.db.reader() as s:
        before = await sales_report(s, MONTH, tz=TZ, compare=False)
    assert before.live_days == 0
    cashier2 = await staff_actor(km.db, km.shop, "cashier2")
    drawer = await open_drawer(km.db, km.shop.store2)
    await sell(km.db, cashier2, km.shop.store2, TillSaleIn(
        key=uuid.uuid4().hex, session_id=drawer, offline=True, client_ref="K2-000099",
        sold_at=local(date(2026, 10, 25)), payments=[TillPaymentIn(method="cash")],
        lines=[TillLineIn(variant_id=km.b, quantity=2, unit_price_cents=500)]))
    async with km.db.uow() as uow:
        await transition_row(uow, km.orders["web_pickup"], "paid", OrderStatus.CANCELLED,
                             actor=SYSTEM)
        await uow.commit()
    async with km.db.reader() as s:
        after = await sales_report(s, MONTH, tz=TZ, compare=False)
        live = await sales_report(s, MONTH, tz=TZ, compare=False, source="live")
    assert after.live_days >= 2
    assert after.total.goods_cents == before.total.goods_cents + 1000 - 500
    assert after.total == live.total and after.rows == live.rows
    stale = await jobs.stale_days(km.db, TZ, limit=10_000)
    assert [d.day for d in stale if MONTH.first <= d <= MONTH.last] == [4, 5, 6, 24, 25, 26]
    await jobs.refresh_days(km.db, MONTH.each_day(), TZ)
    async with km.db.reader() as s:
        rebuilt = await sales_report(s, MONTH, tz=TZ, compare=False)
    assert rebuilt.live_days == 0 and rebuilt.total == live.total


async def test_job_run_rebuilds_recent_days_and_runs_the_run_steps(
        km: KnownMonth, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[object] = []

    async def step(uow: jobs.UnitOfWork) -> None:
        # An app of another test in this process runs the same job on its own database
        # now and then: count only this database's runs.
        if uow.db is km.db:
            ran.append(uow)

    monkeypatch.setattr(jobs, "RUN_STEPS", (step,))
    assert await jobs.run_once(km.db, TZ) >= jobs.RECENT_DAYS + 1
    assert len(ran) == 1
    async with km.db.reader() as s:
        today_built = await s.get(SalesDailyDay, datetime.now(ZoneInfo(TZ)).date())
    assert today_built is not None
