"""Channel journeys (both databases), on a database of their own so that every figure is
known: a hand-built set of customers (store then web, web only, store only, two stores,
web then store with a return, a cancelled and a pending order, a gift-card-only order,
service desk then API, an anonymous sale) checked cell by cell; an incremental refresh
after more orders equals a full one; the figures are the owner's and finance's only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Forbidden
from saumaton.db.uow import Database
from saumaton.reports.journey_tables import CustomerChannel, CustomerJourney
from saumaton.reports.journeys import JourneyReport, journey_report, refresh_journeys
from tests.report_orders import add_order, add_return, channel_ids, new_customer
from tests.support import Shop, make_variants, own_shop

OWNER = Actor(label="staff:o", name="Olli Owner", grants=(RoleGrant("owner", None),))
FINANCE = Actor(label="staff:f", name="Fiia Finance", grants=(RoleGrant("finance", None),))


@dataclass
class World:
    db: Database
    shop: Shop
    ch: dict[str, int]
    cust: dict[str, int]
    variant: int
    gift: int
    base: datetime


@pytest.fixture(scope="module")
async def world(backend: str, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[World]:
    async with own_shop(backend, tmp_path_factory.mktemp("journeys")) as (db, shop):
        [v] = await make_variants(db, [1000])
        [g] = await make_variants(db, [5000], gift_card=True)
        w = World(db, shop, await channel_ids(db), {}, int(str(v["id"])),
                  int(str(g["id"])), utcnow() - timedelta(days=100))
        await build_customers(w)
        yield w


def day(w: World, n: float) -> datetime:
    return w.base + timedelta(days=n)


async def build_customers(w: World) -> None:
    ch, v, g = w.ch, w.variant, w.gift
    for name in "ABCDEFGH":
        w.cust[name] = await new_customer(w.db, name)
    c = w.cust

    async def order(who: str | None, channel: str, at: float, lines: list[tuple[int, int]],
                    **kw: Any) -> tuple[int, list[int]]:
        return await add_order(w.db, channel_id=ch[channel],
                               customer_id=c[who] if who else None, at=day(w, at),
                               lines=lines, **kw)
    # A: store first, then the webshop twice.
    a_first, [a_line] = await order("A", "pos-1", 0, [(v, 10000)])
    await order("A", "web", 10, [(v, 5000)], status="shipped")
    await order("A", "web", 40, [(v, 3000)], status="paid")
    # B: web only; the delivery fee is revenue.
    await order("B", "web", 0, [(v, 4000)], status="shipped", delivery_fee_cents=500)
    await order("B", "web", 20, [(v, 2000)], status="collected")
    # C: one store purchase; the gift card bought with it is not revenue.
    await order("C", "pos-1", 0, [(v, 2500), (g, 5000)])
    # D: two stores (one kind, two channels).
    await order("D", "pos-1", 0, [(v, 3000)])
    await order("D", "pos-2", 5.5, [(v, 1000)])
    # E: web first, then an offline sale in store 2 (the till's clock counts), partly
    # returned.
    await order("E", "web", 0, [(v, 6000)], status="shipped")
    oid, [line] = await order("E", "pos-2", 3.2, [(v, 2000)], sold_at=day(w, 3.2),
                              status="partly_returned")
    # created_at a day later (synced then): the sale still counts on day 3.2
    await _move_created(w, oid, day(w, 4.5))
    await add_return(w.db, order_id=oid, line_id=line, variant_id=v, refund_cents=1000,
                     at=day(w, 6))
    # F: one store purchase; a cancelled and a pending web order do not count.
    await order("F", "pos-1", 0, [(v, 1500)])
    await order("F", "web", 1, [(v, 9900)], status="cancelled")
    await order("F", "web", 2, [(v, 9900)], status="pending")
    # G: a gift card alone is not a purchase; the store purchase after it is the first.
    await order("G", "web", 0, [(g, 5000)], status="shipped")
    await order("G", "pos-1", 2, [(v, 800)])
    # H: service desk, then the API the next day.
    await order("H", "service", 0, [(v, 2000)], status="shipped")
    await order("H", "api", 1, [(v, 1000)], status="shipped")
    # Nobody's: an anonymous till sale, and a requested (not completed) return of A's.
    await order(None, "pos-1", 0, [(v, 7777)])
    await add_return(w.db, order_id=a_first, line_id=a_line, variant_id=v, refund_cents=10000,
                     at=day(w, 50), status="requested")


async def _move_created(w: World, order_id: int, at: datetime) -> None:
    from saumaton.orders.models import Order
    async with w.db.uow() as uow:
        o = await uow.session.get(Order, order_id)
        assert o is not None
        o.created_at = at
        await uow.commit()


async def refresh(w: World, *, full: bool = False, now: datetime | None = None) -> int:
    async with w.db.uow() as uow:
        n = await refresh_journeys(uow, full=full, now=now)
        await uow.commit()
    return n


async def report(w: World, actor: Actor = OWNER) -> JourneyReport:
    async with w.db.reader() as s:
        return await journey_report(s, actor)


async def tables(w: World) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with w.db.reader() as s:
        j = [tuple(getattr(r, c) for c in (
            "customer_id", "first_at", "first_channel_id", "first_location_id", "first_kind",
            "second_at", "second_days", "orders", "revenue_cents", "kinds_mask",
            "later_kinds_mask", "channels"))
            for r in (await s.scalars(select(CustomerJourney)
                                      .order_by(CustomerJourney.customer_id))).all()]
        c = [tuple(getattr(r, k) for k in (
            "customer_id", "channel_id", "first_channel_id", "first_at", "orders",
            "revenue_cents", "later"))
            for r in (await s.scalars(select(CustomerChannel).order_by(
                CustomerChannel.customer_id, CustomerChannel.channel_id))).all()]
    return j, c


async def test_journey_figures_exactly(world: World) -> None:
    w = world
    before = await report(w)
    assert before.as_of is None and before.customers == 0
    now = utcnow()
    assert await refresh(w, now=now) == 8
    r = await report(w)
    ch = w.ch
    assert r.as_of == now
    assert (r.customers, r.revenue_cents) == (8, 43300)
    rows = {row.channel.code: row for row in r.rows}
    assert set(rows) == {"pos-1", "web", "service"}
    pos1, web, service = rows["pos-1"], rows["web"], rows["service"]
    # pos-1 first: A, C, D, F, G; later A on the web, D in store 2.
    assert (pos1.customers, pos1.one_time, pos1.repeat, pos1.revenue_cents) == (5, 3, 2, 26800)
    assert pos1.later == {ch["web"]: 1, ch["pos-2"]: 1}
    assert pos1.repeat_rate == pytest.approx(0.4)
    assert pos1.median_days == 7.5  # A 10 days, D 5 days (5.5 elapsed: whole days)
    assert (web.customers, web.repeat, web.revenue_cents) == (2, 2, 13500)
    assert web.later == {ch["web"]: 1, ch["pos-2"]: 1}
    assert web.median_days == 11.5  # B 20, E 3 (the sale's sold_at, not its sync)
    assert (service.customers, service.later, service.median_days) == (
        1, {ch["api"]: 1}, 1.0)
    kinds = {k.kind: k for k in r.kind_rows}
    assert kinds["pos"].later == {"webshop": 1, "pos": 1}
    assert kinds["webshop"].later == {"webshop": 1, "pos": 1}
    assert kinds["service_desk"].later == {"api": 1}
    assert (kinds["pos"].customers, kinds["pos"].median_days) == (5, 7.5)
    # Omnichannel: A, E, H by kind; A, D, E, H by channel.
    assert (r.omni_kinds.customers, r.omni_kinds.revenue_cents) == (3, 28000)
    assert r.omni_kinds.customer_share == pytest.approx(3 / 8)
    assert r.omni_kinds.revenue_share == pytest.approx(28000 / 43300)
    assert (r.omni_channels.customers, r.omni_channels.revenue_cents) == (4, 32000)
    assert (r.single_kind_ltv_cents, r.multi_kind_ltv_cents) == (3060, 9333)
    journeys = {j.key: (j.customers, j.orders, j.revenue_cents, j.ltv_cents)
                for j in r.journeys}
    assert journeys == {
        "pos-only": (4, 5, 8800, 2200),
        "pos+webshop": (1, 3, 18000, 18000),
        "webshop-only": (1, 2, 6500, 6500),
        "webshop+pos": (1, 2, 7000, 7000),
        "service_desk+api": (1, 2, 3000, 3000),
    }
    assert [j.key for j in r.journeys][:2] == ["pos-only", "pos+webshop"]
    # The first store is kept (the till's location).
    async with w.db.reader() as s:
        first = await s.get(CustomerJourney, w.cust["D"])
    assert first is not None and first.first_location_id is None  # no location on the row
    assert first.first_channel_id == ch["pos-1"] and first.second_days == 5


async def test_incremental_refresh_equals_full(world: World) -> None:
    w = world
    await refresh(w, full=True, now=utcnow())
    ch, v, c = w.ch, w.variant, w.cust
    now = utcnow()
    # C comes back on the web; B's first order is partly returned; a new customer buys.
    await add_order(w.db, channel_id=ch["web"], customer_id=c["C"], at=now,
                    lines=[(v, 4200)], status="paid")
    async with w.db.reader() as s:
        from saumaton.orders.models import Order, OrderLine
        b_order, b_line = (await s.execute(
            select(Order.id, OrderLine.id).join(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.customer_id == c["B"]).order_by(Order.created_at).limit(1))).one()
    await add_return(w.db, order_id=b_order, line_id=b_line, variant_id=v,
                     refund_cents=1500, at=now)
    newcomer = await new_customer(w.db, "I")
    await add_order(w.db, channel_id=ch["api"], customer_id=newcomer, at=now,
                    lines=[(v, 999)])
    assert await refresh(w, now=utcnow()) == 3  # C, B, the newcomer: nobody else
    incremental = await tables(w)
    r = await report(w)
    rows = {row.channel.code: row for row in r.rows}
    assert rows["pos-1"].later == {ch["web"]: 2, ch["pos-2"]: 1}
    assert rows["api"].customers == 1
    assert r.revenue_cents == 43300 + 4200 - 1500 + 999
    assert await refresh(w, full=True, now=utcnow()) == 9
    assert await tables(w) == incremental
    # Changes within the overlap before the watermark are looked at again; once the
    # watermark has moved past them, nobody is recomputed.
    assert await refresh(w, now=utcnow() + timedelta(hours=1)) == 3
    assert await refresh(w, now=utcnow() + timedelta(hours=2)) == 0
    assert await tables(w) == incremental
    after = await report(w)  # the kept sums, not recomputed
    assert (after.revenue_cents, after.customers) == (r.revenue_cents, 9)
    assert after.as_of is not None and r.as_of is not None and after.as_of > r.as_of


async def test_only_chain_wide_roles(world: World) -> None:
    async with world.db.reader() as s:
        await journey_report(s, FINANCE)
        for who in (Actor(label="staff:m", name="M", grants=(RoleGrant("manager",
                                                                          world.shop.store1),)),
                    Actor(label="staff:c", name="C", grants=(RoleGrant("cashier", None),))):
            with pytest.raises(Forbidden):
                await journey_report(s, who)



async def test_a_merge_recomputes_both_customers_from_their_orders(world: World) -> None:
    """A merge moves the orders, never the journey rows: the next refresh recomputes both
    customers, so the merged-away customer's journey is gone and the kept one holds every
    purchase (and an undo puts them back)."""
    from saumaton.customers.duplicates import merge_customers, undo_merge

    w, ch, v = world, world.ch, world.variant
    await refresh(w, full=True, now=utcnow())
    kept, gone = await new_customer(w.db, "Kept"), await new_customer(w.db, "Gone")
    await add_order(w.db, channel_id=ch["pos-1"], customer_id=kept,
                    at=utcnow() - timedelta(minutes=2), lines=[(v, 1200)])
    await add_order(w.db, channel_id=ch["web"], customer_id=gone,
                    at=utcnow() - timedelta(minutes=1), lines=[(v, 800)], status="shipped")
    await refresh(w, now=utcnow())

    async def journey(customer_id: int) -> tuple[int, int, str] | None:
        async with w.db.reader() as s:
            j = await s.get(CustomerJourney, customer_id)
            return None if j is None else (j.orders, j.revenue_cents, j.first_kind)

    assert await journey(kept) == (1, 1200, "pos")
    assert await journey(gone) == (1, 800, "webshop")
    async with w.db.uow() as uow:
        merged = await merge_customers(uow, OWNER, kept, gone)
        await uow.commit()
    assert await journey(gone) == (1, 800, "webshop")  # untouched by the merge itself
    assert await refresh(w, now=utcnow()) >= 2
    assert await journey(kept) == (2, 2000, "pos")
    assert await journey(gone) is None
    async with w.db.uow() as uow:
        await undo_merge(uow, OWNER, merged.merge_id)
        await uow.commit()
    await refresh(w, now=utcnow())
    assert await journey(kept) == (1, 1200, "pos")
    assert await journey(gone) == (1, 800, "webshop")
