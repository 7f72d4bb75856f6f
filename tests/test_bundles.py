"""Bundle campaigns ("3 for 2", buy X get Y, a set price): the rules of
`pricing.bundles` on hand-made carts and random ones, the selection (member-only,
channel-limited, ended), and every channel that prices a cart: the till (online and an
offline sale as charged), the API order book, the webshop cart page and checkout, a
receipt naming the campaign, and a return of a bundled unit refunding what was paid."""

from __future__ import annotations

import random
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx

from saumaton.catalogue.services import load_variant_infos
from saumaton.checkout.services import place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.money import percent_of, vat_included
from saumaton.db.uow import Database
from saumaton.locations.services import channel_by_code
from saumaton.orders.services import business_day, get_order
from saumaton.pricing.bundle_book import book_bundles_pg, bundle_book
from saumaton.pricing.bundles import (
    Bundle,
    CartLine,
    apply_bundles,
    load_bundles,
    load_bundles_pg,
    spread,
)
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.returns import services as returns
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import Shop, make_variants, open_drawer, staff_actor
from tests.test_checkout import cmd

# --- the rules, without a database ---------------------------------------------------------


def three_for_two(cid: int = 1, **kw: Any) -> Bundle:
    return Bundle(campaign_id=cid, name=kw.pop("name", "3 for 2"), kind="x_for_y", value=0,
                  buy_quantity=3, pay_quantity=2, **kw)


def line(vid: int, unit: int, qty: int = 1, off: int = 0, pid: int = 100,
         cat: int | None = None, eligible: bool = True) -> CartLine:
    return CartLine(variant_id=vid, product_id=pid, category_id=cat, quantity=qty,
                    unit_cents=unit, unit_discount_cents=off, eligible=eligible)


def test_three_for_two_with_mixed_prices_makes_the_cheapest_free() -> None:
    b = three_for_two(product_ids=frozenset({100}))
    lines = [line(1, 1000), line(2, 500), line(3, 800)]
    out = apply_bundles(lines, [b])
    assert all(x is not None and x.campaign_id == 1 and x.campaign_name == "3 for 2"
               for x in out)
    # the 5.00 unit is free; 5.00 is spread over 10.00 : 5.00 : 8.00 of list value
    assert [x.bundle_cents for x in out if x] == spread(500, [1000, 500, 800]) == [217, 109, 174]
    assert sum(x.discount_cents for x in out if x) == 500
    # six units: two sets, the 3rd and the 6th dearest free; a 7th unit pays in full
    six = [line(1, 900, 2), line(2, 100, 2), line(3, 500, 2), line(4, 50, 1)]
    out = apply_bundles(six, [b])
    # sorted: 900 900 500 | 500 100 100 | 50 -> free 500 and 100
    assert sum(x.bundle_cents for x in out if x) == 600
    assert out[3] is None  # the 0.50 unit is left over


def test_buy_two_get_one_half_price() -> None:
    b = Bundle(campaign_id=7, name="Buy 2 get 1 -50 %", kind="buy_x_get_y", value=5000,
               buy_quantity=2, get_quantity=1, variant_ids=frozenset({1, 2}))
    out = apply_bundles([line(1, 1999, 3), line(2, 999, 1)], [b])
    # one set of three: 19.99, 19.99, 19.99; half of the cheapest (19.99) = 10.00 (rounded)
    assert out[1] is None and out[0] is not None
    assert out[0].bundle_cents == percent_of(1999, 5000) == 1000
    assert out[0].discount_cents == 1000


def test_set_price_and_a_set_worth_less_is_not_formed() -> None:
    b = Bundle(campaign_id=3, name="3 for 20 €", kind="set_price", value=2000,
               buy_quantity=3, category_ids=frozenset({9}))
    lines = [line(1, 900, cat=9), line(2, 800, cat=9), line(3, 700, cat=9), line(4, 600, cat=8)]
    out = apply_bundles(lines, [b])
    assert sum(x.bundle_cents for x in out if x) == 2400 - 2000
    assert out[3] is None  # another category
    cheap = apply_bundles([line(1, 600, 3, cat=9)], [b])
    assert cheap == [None]  # 18.00 for three is less than the set price


def test_a_unit_campaign_that_gives_more_wins() -> None:
    b = three_for_two(variant_ids=frozenset({1}))
    # 40 % off each (3 × 4.00 = 12.00) beats one free (10.00): no set
    assert apply_bundles([line(1, 1000, 3, off=400)], [b]) == [None]
    # 20 % off each (6.00) is less than one free (10.00): the set replaces it; the 4th
    # unit keeps its 20 %
    [x] = apply_bundles([line(1, 1000, 4, off=200)], [b])
    assert x is not None and (x.discount_cents, x.bundle_cents) == (1000 + 200, 1000)


def test_several_bundles_each_unit_in_one_set_the_bigger_saving_first() -> None:
    small = three_for_two(1, name="small", variant_ids=frozenset({1, 2}))
    big = Bundle(campaign_id=2, name="big", kind="set_price", value=1000, buy_quantity=3,
                 variant_ids=frozenset({1}))
    lines = [line(1, 1000, 3), line(2, 300, 3)]
    out = apply_bundles(lines, [small, big])
    # big: 30.00 for 10.00 saves 20.00 on line 1; then small on the three 3.00 units
    assert out[0] is not None and (out[0].campaign_id, out[0].bundle_cents) == (2, 2000)
    assert out[1] is not None and (out[1].campaign_id, out[1].bundle_cents) == (1, 300)
    # a tie in savings goes to the lower campaign id
    twin = three_for_two(5, name="twin", variant_ids=frozenset({1}))
    first = three_for_two(4, name="first", variant_ids=frozenset({1}))
    [x] = apply_bundles([line(1, 1000, 3)], [twin, first])
    assert x is not None and x.campaign_name == "first"


def test_gift_cards_never_qualify() -> None:
    b = three_for_two(product_ids=frozenset({100}))
    assert apply_bundles([line(1, 5000, 3, eligible=False)], [b]) == [None]


def test_random_carts_allocate_exactly_and_never_cost_more() -> None:
    rng = random.Random(12)
    kinds = ["x_for_y", "buy_x_get_y", "set_price"]
    for _ in range(300):
        lines = [line(i + 1, rng.choice([0, 1, 99, rng.randint(1, 9000)]), rng.randint(1, 7),
                      pid=100 + rng.randint(0, 2), cat=rng.choice([None, 9]))
                 for i in range(rng.randint(1, 6))]
        lines = [CartLine(ln.variant_id, ln.product_id, ln.category_id, ln.quantity,
                          ln.unit_cents, rng.choice([0, 0, ln.unit_cents // 4]))
                 for ln in lines]
        bundles = []
        for cid in range(1, rng.randint(1, 4)):
            kind = rng.choice(kinds)
            buy = rng.randint(2, 4)
            bundles.append(Bundle(
                campaign_id=cid, name=f"b{cid}", kind=kind,
                value=(rng.randint(1, 10000) if kind != "set_price" else rng.randint(1, 20000)),
                buy_quantity=buy, pay_quantity=buy - 1 if kind == "x_for_y" else None,
                get_quantity=rng.randint(1, 2) if kind == "buy_x_get_y" else None,
                product_ids=frozenset(rng.sample([100, 101, 102], rng.randint(1, 2))),
                category_ids=frozenset({9}) if rng.random() < 0.3 else frozenset()))
        out = apply_bundles(lines, bundles)
        for ln, x in zip(lines, out, strict=True):
            without = ln.unit_discount_cents * ln.quantity
            if x is None:
                continue
            assert 0 <= x.bundle_cents <= x.discount_cents <= ln.unit_cents * ln.quantity
            assert x.campaign_id in {b.campaign_id for b in bundles}
            assert x.discount_cents >= 0 and without >= 0
        total_with = sum(x.discount_cents if x else ln.unit_discount_cents * ln.quantity
                         for ln, x in zip(lines, out, strict=True))
        assert total_with >= sum(ln.unit_discount_cents * ln.quantity for ln in lines)
        assert apply_bundles(lines, list(reversed(bundles))) == out  # order-independent


# --- the selection and the channels, on both databases --------------------------------------


async def bundle(db: Database, **kw: Any) -> int:
    data: dict[str, Any] = {"name": f"3 for 2 {uuid.uuid4().hex[:6]}", "kind": "x_for_y",
                            "buy_quantity": 3, "pay_quantity": 2,
                            "starts_at": utcnow() - timedelta(hours=1), **kw}
    async with db.uow() as uow:
        cid = await create_campaign(uow, SYSTEM, CampaignIn(**data))
        await uow.commit()
    return cid


async def test_member_channel_and_time_limits(db: Database, shop: Shop) -> None:
    vs = await make_variants(db, [1000, 1200])
    pid = int(str(vs[0]["product_id"]))
    members = await bundle(db, product_ids=[pid], min_tier="silver")
    in_store = await bundle(db, product_ids=[pid], channel_codes=["pos-1"])
    ended = await bundle(db, product_ids=[pid], starts_at=utcnow() - timedelta(days=2),
                         ends_at=utcnow() - timedelta(days=1))
    future = await bundle(db, product_ids=[pid], starts_at=utcnow() + timedelta(days=1))
    everyone = await bundle(db, product_ids=[pid], kind="set_price", value=2000,
                            buy_quantity=2)
    now = utcnow()
    async with db.reader() as s:
        infos = await load_variant_infos(s, business_day(now), ids=[int(str(v["id"]))
                                                                      for v in vs])
        web = (await channel_by_code(s, "web")).id
        pos = (await channel_by_code(s, "pos-1")).id

        async def ids(channel: int, tier: str | None) -> set[int]:
            return {b.campaign_id for b in await load_bundles(s, infos, channel, now, tier)}

        assert await ids(web, None) == {everyone}
        assert await ids(web, "member") == {everyone}
        assert await ids(web, "gold") == {everyone, members}
        assert await ids(pos, None) == {everyone, in_store}
        [limited] = [b for b in await load_bundles(s, infos, pos, now) if b.campaign_id == in_store]
        assert limited.limited_to == ("pos-1",)
        # the till's snapshot gets every tier's (it filters by the attached customer)
        every = {b.campaign_id for b in await load_bundles(s, None, pos, now, any_tier=True)}
        assert {everyone, in_store, members} <= every and not {ended, future} & every
    if db.is_postgres:  # the sale's prepared statement picks exactly the same bundles
        async with db.uow() as uow:
            for channel, tier in ((web, None), (web, "gold"), (pos, None), (pos, "silver")):
                assert await load_bundles_pg(uow, infos, channel, now, tier) == \
                    await load_bundles(uow.session, infos, channel, now, tier)
                # The process's bundle book (placing a web order) picks the same ones,
                # at any moment: before the future one starts and after it has.
                for at in (now, now + timedelta(days=2)):
                    assert await book_bundles_pg(db, uow.session, uow, infos, channel, at,
                                                 tier) == \
                        await load_bundles_pg(uow, infos, channel, at, tier), (at, tier)


async def test_the_bundle_book_is_dropped_by_a_campaign_change(db: Database,
                                                               shop: Shop) -> None:
    vs = await make_variants(db, [1000, 1200])
    pid = int(str(vs[0]["product_id"]))
    now = utcnow()
    async with db.reader() as s:
        infos = await load_variant_infos(s, business_day(now), ids=[int(str(v["id"]))
                                                                      for v in vs])
        web = (await channel_by_code(s, "web")).id
        book = await bundle_book(db, s)
        assert not book.applying(infos, web, now)
        assert await bundle_book(db, s) is book  # kept: no second read
    cid = await bundle(db, product_ids=[pid])  # its campaign.changed drops the book
    async with db.reader() as s:
        assert await bundle_book(db, s) is not book
        [found] = (await bundle_book(db, s)).applying(infos, web, utcnow())
        assert found.campaign_id == cid and found.product_ids == frozenset({pid})


async def test_till_sale_online_and_offline(db: Database, shop: Shop) -> None:
    a, b, c = await make_variants(db, [1000, 500, 800], stock={shop.store1: 20})
    cid = await bundle(db, product_ids=[int(str(a["product_id"]))])
    cashier = await staff_actor(db, shop, "cashier1")
    sid = await open_drawer(db, shop.store1)
    lines = [TillLineIn(variant_id=int(str(v["id"]))) for v in (a, b, c)]
    order, _ = await sell(db, cashier, shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, lines=lines, expected_total_cents=1800,
        payments=[TillPaymentIn(method="cash")]))
    assert order.total_cents == 1800 and order.discount_cents == 500
    assert [ln.discount_cents for ln in order.lines] == spread(500, [1000, 500, 800])
    assert all(ln.campaign_id == cid and ln.campaign_name for ln in order.lines)
    assert [ln.vat_cents for ln in order.lines] == [vat_included(ln.total_cents, 2550)
                                                    for ln in order.lines]
    stored = await _stored(db, order.id)
    assert [ln.campaign_name for ln in stored.lines] == [ln.campaign_name for ln in order.lines]
    # Offline the till's own figures are recorded (here: what the core would charge too)
    offline, _ = await sell(db, cashier, shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, offline=True, sold_at=utcnow(),
        lines=[TillLineIn(variant_id=ln.variant_id, unit_price_cents=ln.unit_price_cents,
                          campaign_discount_cents=0, campaign_id=cid,
                          campaign_total_cents=ln.discount_cents) for ln in order.lines],
        payments=[TillPaymentIn(method="cash")]))
    assert offline.total_cents == 1800 and "price_mismatch" not in offline.flags
    assert all(ln.campaign_id == cid for ln in offline.lines)
    # ... and a till that gave no bundle discount is recorded as charged, flagged
    other, _ = await sell(db, cashier, shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, offline=True, sold_at=utcnow(),
        lines=[TillLineIn(variant_id=ln.variant_id, unit_price_cents=ln.unit_price_cents)
               for ln in order.lines], payments=[TillPaymentIn(method="cash")]))
    assert other.total_cents == 2300 and "price_mismatch" in other.flags
    # A bundled unit comes back: what was paid for it, not its list price
    line1 = order.lines[0]
    out, _ = await returns.take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store1, reason="wrong shade", refund_method="cash",
        drawer_session_id=sid, lines=[ReturnLineIn(line_no=1, quantity=1)]),
        idempotency_key=None)
    assert out.refund_cents == line1.total_cents < line1.unit_price_cents


async def _stored(db: Database, order_id: int) -> Any:
    async with db.reader() as s:
        return await get_order(s, order_id)


async def test_api_order_and_receipt_name_the_campaign(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    vs = await make_variants(db, [1990, 1990, 990], stock={shop.store1: 10})
    name = f"Kolme kahden hinnalla {uuid.uuid4().hex[:4]}"
    cid = await bundle(db, name=name, variant_ids=[int(str(v["id"])) for v in vs])
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": 2} for v in vs],
        "payments": [{"method": "card", "terminal_confirmed": True}]})
    assert r.status_code == 201, r.text
    order = r.json()
    # units 19.90 ×4, 9.90 ×2: sets (19.90 19.90 19.90) (19.90 9.90 9.90): 19.90 + 9.90 free
    assert order["discount_cents"] == 1990 + 990
    assert order["total_cents"] == 2 * (1990 + 1990 + 990) - 2980
    assert sum(ln["discount_cents"] for ln in order["lines"]) == 2980
    assert all(ln["campaign_id"] == cid and ln["campaign_name"] == name
               for ln in order["lines"])
    assert sum(v["gross_cents"] for v in order["vat_breakdown"]) == order["total_cents"]


async def test_webshop_cart_page_and_checkout(db: Database, shop: Shop, settings: Settings,
                                             web: httpx.AsyncClient) -> None:
    vs = await make_variants(db, [2000, 1500], stock={shop.warehouse: 10})
    name = f"Buy 2 get 1 {uuid.uuid4().hex[:4]}"
    await bundle(db, name=name, kind="buy_x_get_y", buy_quantity=2, get_quantity=1,
                 value=10000, product_ids=[int(str(vs[0]["product_id"]))])
    page = (await web.get("/shop/cart")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    for v, qty in ((vs[0], 2), (vs[1], 1)):
        r = await web.post("/shop/cart/add", data={"csrf_token": token.group(1),
                                                  "variant_id": str(v["id"]),
                                                  "quantity": str(qty)})
        assert r.status_code == 303
    page = (await web.get("/shop/cart")).text
    assert name in page
    assert 'data-testid="line-bundle-' in page
    # 20.00 + 20.00 + 15.00, the 15.00 free: 40,00 €
    assert "40,00" in page.replace("\xa0", " ")
    order, _ = await place_web_order(db, settings, cmd(int(str(vs[0]["id"])), 2).model_copy(
        update={"lines": [*cmd(int(str(vs[0]["id"])), 2).lines,
                          *cmd(int(str(vs[1]["id"])), 1).lines]}),
        customer_id=None, key=uuid.uuid4().hex)
    assert order.discount_cents == 1500
    assert sum(ln.total_cents for ln in order.lines) == 4000
