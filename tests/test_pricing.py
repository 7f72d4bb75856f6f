"""One price, campaigns in every channel, VAT classes: resolve_prices() and the API."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from saumaton.catalogue.models import Category, Product
from saumaton.catalogue.services import VariantInfo, load_variant_infos, vat_rates_on
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.money import vat_included
from saumaton.db.uow import Database
from saumaton.locations.models import Channel
from saumaton.pricing.services import (
    CampaignIn,
    PriceQuote,
    create_campaign,
    end_campaign,
    resolve_prices,
)
from tests.support import Shop, make_variants

PROBLEM = "application/problem+json"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=utcnow().tzinfo)


async def campaign(db: Database, **kw: Any) -> int:
    data: dict[str, Any] = {"name": f"camp-{uuid.uuid4().hex[:6]}",
                            "starts_at": T0 - timedelta(days=1), **kw}
    async with db.uow() as uow:
        cid = await create_campaign(uow, SYSTEM, CampaignIn(**data))
        await uow.commit()
    return cid


async def channel_ids(db: Database) -> dict[str, int]:
    async with db.reader() as s:
        return {code: cid for code, cid in (await s.execute(select(Channel.code, Channel.id)))}


async def infos(db: Database, *variants: dict[str, Any]) -> list[VariantInfo]:
    async with db.reader() as s:
        return await load_variant_infos(s, T0.date(), ids=[int(v["id"]) for v in variants])


async def quote(db: Database, variant: dict[str, Any], channel: str | None = "web",
                at: datetime = T0) -> PriceQuote:
    chan = (await channel_ids(db))[channel] if channel else None
    async with db.reader() as s:
        vi = await load_variant_infos(s, at.date(), ids=[int(variant["id"])])
        return (await resolve_prices(s, vi, chan, at))[int(variant["id"])]


async def new_category(db: Database, *product_ids: int) -> int:
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        cat = Category(slug=f"cat-{tag}", name=f"Category {tag}")
        uow.session.add(cat)
        await uow.session.flush()
        await uow.session.execute(
            update(Product).where(Product.id.in_(product_ids)).values(category_id=cat.id))
        await uow.commit()
        return cat.id


async def test_percent_campaign_in_basis_points(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1999])
    await campaign(db, kind="percent", value=2000, variant_ids=[v["id"]])
    q = await quote(db, v)
    assert q.list_cents == 1999
    assert q.discount_cents == 400  # 19.99 × 20 % = 3.998 -> 4.00
    assert q.price_cents == 1599
    assert q.limited_to is None and q.campaign_name and q.campaign_name.startswith("camp-")


async def test_fixed_campaign_on_product_and_never_below_zero(db: Database, shop: Shop) -> None:
    v1, v2 = await make_variants(db, [1999, 300])
    await campaign(db, kind="fixed", value=500, product_ids=[v1["product_id"]])
    assert (await quote(db, v1)).price_cents == 1499
    q2 = await quote(db, v2)  # 5 € off a 3 € item: free, not negative
    assert (q2.discount_cents, q2.price_cents) == (300, 0)


async def test_category_campaign_applies_to_its_products_only(db: Database, shop: Shop) -> None:
    [inside] = await make_variants(db, [1000])
    [outside] = await make_variants(db, [1000])
    cat = await new_category(db, int(inside["product_id"]))
    cid = await campaign(db, kind="percent", value=1000, category_ids=[cat])
    q = await quote(db, inside)
    assert (q.price_cents, q.campaign_id) == (900, cid)
    q = await quote(db, outside)
    assert (q.price_cents, q.campaign_id) == (1000, None)


async def test_time_window_is_start_inclusive_end_exclusive(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000])
    start, end = T0, T0 + timedelta(hours=2)
    await campaign(db, kind="fixed", value=100, variant_ids=[v["id"]], starts_at=start,
                   ends_at=end)
    assert (await quote(db, v, at=start - timedelta(seconds=1))).price_cents == 1000
    assert (await quote(db, v, at=start)).price_cents == 900
    assert (await quote(db, v, at=end - timedelta(seconds=1))).price_cents == 900
    assert (await quote(db, v, at=end)).price_cents == 1000
    assert (await quote(db, v, at=end + timedelta(days=1))).price_cents == 1000


async def test_ended_campaign_no_longer_applies(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000])
    cid = await campaign(db, kind="fixed", value=100, variant_ids=[v["id"]])
    assert (await quote(db, v)).price_cents == 900
    async with db.uow() as uow:
        await end_campaign(uow, SYSTEM, cid)
        await uow.commit()
    q = await quote(db, v)
    assert (q.price_cents, q.campaign_id) == (1000, None)


async def test_best_single_discount_wins_and_campaigns_do_not_stack(
    db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [2000])
    await campaign(db, kind="percent", value=1000, variant_ids=[v["id"]])  # 200 off
    best = await campaign(db, kind="fixed", value=300, product_ids=[v["product_id"]])
    await campaign(db, kind="fixed", value=250, variant_ids=[v["id"]])
    q = await quote(db, v)
    assert (q.discount_cents, q.campaign_id) == (300, best)  # not 750
    # equal discounts: the older campaign is the one reported, every time
    [w] = await make_variants(db, [2000])
    first = await campaign(db, kind="fixed", value=200, variant_ids=[w["id"]])
    await campaign(db, kind="percent", value=1000, variant_ids=[w["id"]])
    assert (await quote(db, w)).campaign_id == first


async def test_several_variants_resolve_in_one_call(db: Database, shop: Shop) -> None:
    a, b, c = await make_variants(db, [1000, 2000, 3000])
    await campaign(db, kind="percent", value=5000, variant_ids=[b["id"]])
    web = (await channel_ids(db))["web"]
    async with db.reader() as s:
        quotes = await resolve_prices(s, await infos(db, a, b, c), web, T0)
    assert {vid: q.price_cents for vid, q in quotes.items()} == {
        a["id"]: 1000, b["id"]: 1000, c["id"]: 3000}
    async with db.reader() as s:
        assert await resolve_prices(s, [], web, T0) == {}


async def test_channel_limited_campaign_applies_only_in_its_channels(
    client: httpx.AsyncClient, db: Database
) -> None:
    [v] = await make_variants(db, [1000])
    cid = await campaign(db, kind="fixed", value=150, variant_ids=[v["id"]],
                         channel_codes=["web", "service"], starts_at=utcnow() - timedelta(hours=1))
    for channel in ("web", "service"):
        q = await quote(db, v, channel, at=utcnow())
        assert (q.price_cents, q.campaign_id, q.limited_to) == (850, cid, ("service", "web"))
    for channel in ("pos-1", "pos-2", "api", None):
        q = await quote(db, v, channel, at=utcnow())
        assert (q.price_cents, q.campaign_id) == (1000, None), channel
    web = (await client.get(f"/api/v1/variants/{v['id']}/price?channel=web")).json()
    assert web["price_cents"] == 850 and web["limited_to"] == ["service", "web"]
    assert web["campaign_id"] == cid
    pos = (await client.get(f"/api/v1/variants/{v['id']}/price?channel=pos-1")).json()
    assert pos["price_cents"] == 1000 and pos["limited_to"] is None


async def test_pos_and_web_orders_get_the_same_campaign_price(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 5, shop.warehouse: 5})
    cid = await campaign(db, kind="percent", value=1500, variant_ids=[v["id"]],
                         starts_at=utcnow() - timedelta(minutes=5))
    pos = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"ean": v["ean"], "quantity": 2}],
        "payments": [{"method": "card", "terminal_confirmed": True}]})
    web = await client.post("/api/v1/orders", headers=shop.auth("owner"), json={
        "channel": "web", "lines": [{"variant_id": v["id"], "quantity": 2}]})
    assert pos.status_code == 201, pos.text
    assert web.status_code == 201, web.text
    keys = ("unit_price_cents", "discount_cents", "total_cents", "vat_cents", "campaign_id")
    pl, wl = pos.json()["lines"][0], web.json()["lines"][0]
    assert {k: pl[k] for k in keys} == {k: wl[k] for k in keys}
    assert pl["campaign_id"] == cid
    assert pl["discount_cents"] == 2 * 374  # 24.90 × 15 % = 3.735 -> 3.74 per unit
    assert pl["total_cents"] == 2 * (2490 - 374)
    assert pos.json()["total_cents"] == web.json()["total_cents"]
    for channel in ("web", "pos-1"):
        q = (await client.get(f"/api/v1/variants/{v['id']}/price?channel={channel}")).json()
        assert q["price_cents"] == 2490 - 374


async def test_web_only_campaign_reaches_web_orders_not_the_till(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5, shop.warehouse: 5})
    await campaign(db, kind="fixed", value=100, variant_ids=[v["id"]], channel_codes=["web"],
                   starts_at=utcnow() - timedelta(minutes=5))
    web = await client.post("/api/v1/orders", headers=shop.auth("owner"), json={
        "channel": "web", "lines": [{"variant_id": v["id"]}]})
    pos = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"]}],
        "payments": [{"method": "cash"}]})
    assert web.json()["total_cents"] == 900
    assert pos.json()["total_cents"] == 1000 and pos.json()["lines"][0]["campaign_id"] is None


def campaign_json(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Spring", "kind": "percent", "value": 2000,
                            "starts_at": "2026-03-01T00:00:00+02:00",
                            "ends_at": "2026-03-31T00:00:00+03:00", "variant_ids": [1]}
    body.update(over)
    return body


async def test_campaign_api_creates_and_validates(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000])
    ok = await client.post("/api/v1/campaigns", headers=shop.auth("manager"),
                           json=campaign_json(variant_ids=[v["id"]], channel_codes=["web"]))
    assert ok.status_code == 201, ok.text
    assert isinstance(ok.json()["id"], int)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        (campaign_json(value=10001), "validation_error", None),
        (campaign_json(value=0), "validation_error", "value"),
        (campaign_json(kind="bundle"), "validation_error", "kind"),
        (campaign_json(ends_at="2026-02-01T00:00:00Z"), "validation_error", None),
        (campaign_json(ends_at="2026-03-01T00:00:00+02:00"), "validation_error", None),
        (campaign_json(variant_ids=[]), "validation_error", None),
        (campaign_json(starts_at="2026-03-01T00:00:00"), "validation_error", None),
        (campaign_json(ends_at="2026-04-01T00:00:00"), "validation_error", None),
        (campaign_json(starts_at="0001-01-01T00:00:00+05:00"), "validation_error", None),
        (campaign_json(variant_ids=[2147483000]), "unknown_variant", "variant_ids"),
        (campaign_json(variant_ids=[], product_ids=[2147483000]), "unknown_product",
         "product_ids"),
        (campaign_json(variant_ids=[v["id"]], channel_codes=["web", "tiktok"]),
         "unknown_channel", "channel_codes"),
        (campaign_json(variant_ids=[v["id"]], stacking=True), "validation_error", "stacking"),
    ]
    for body, code, field in cases:
        r = await client.post("/api/v1/campaigns", headers=shop.auth("owner"), json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        problem = r.json()
        assert problem["code"] == code and problem["status"] == 422, (body, problem)
        assert problem["detail"]
        if field:
            assert problem["field"] == field, (body, problem)
    r = await client.post("/api/v1/campaigns", headers=shop.auth("cashier1"),
                          json=campaign_json(variant_ids=[v["id"]]))
    assert r.status_code == 403
    r = await client.post("/api/v1/campaigns", json=campaign_json(variant_ids=[v["id"]]))
    assert r.status_code == 401
    # only the first, valid campaign exists (and it is limited to web)
    q = await quote(db, v, "web", at=datetime.fromisoformat("2026-03-15T12:00:00+02:00"))
    assert q.price_cents == 800 and q.campaign_id == ok.json()["id"]
    assert q.limited_to == ("web",)


async def test_vat_rates_are_dated(db: Database, shop: Shop) -> None:
    async with db.reader() as s:
        before = await vat_rates_on(s, date(2024, 8, 31))
        autumn_2024 = await vat_rates_on(s, date(2024, 9, 1))
        in_2025 = await vat_rates_on(s, date(2025, 6, 1))
        in_2026 = await vat_rates_on(s, date(2026, 1, 1))
    assert before["standard"] == 2400 and autumn_2024["standard"] == 2550
    assert (before["food"], in_2025["food"], in_2026["food"]) == (1400, 1400, 1350)
    assert (before["books_medicines"], in_2025["books_medicines"],
            in_2026["books_medicines"]) == (1000, 1400, 1350)
    assert in_2026["newspapers"] == 1000 and in_2026["zero"] == 0
    [v] = await make_variants(db, [1000], vat_class="books_medicines")
    async with db.reader() as s:
        [old] = await load_variant_infos(s, date(2024, 12, 31), ids=[int(v["id"])])
        [new] = await load_variant_infos(s, date(2026, 1, 1), ids=[int(v["id"])])
    assert (old.vat_rate_bp, new.vat_rate_bp) == (1000, 1350)


async def test_order_lines_carry_the_rate_of_their_vat_class(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    expected = {"standard": 2550, "food": 1350, "books_medicines": 1350, "newspapers": 1000,
                "zero": 0}
    lines, by_variant = [], {}
    for vat_class, rate in expected.items():
        [v] = await make_variants(db, [1234], stock={shop.store1: 3}, vat_class=vat_class)
        lines.append({"variant_id": v["id"], "quantity": 3})
        by_variant[v["id"]] = rate
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": lines, "payments": [{"method": "cash"}]})
    assert r.status_code == 201, r.text
    order = r.json()
    for line in order["lines"]:
        rate = by_variant[line["variant_id"]]
        assert line["vat_rate_bp"] == rate
        assert line["total_cents"] == 3702
        assert line["vat_cents"] == vat_included(3702, rate)
    # 37.02 at 13.5 %: 37.02 × 13.5 / 113.5 = 4.4033 -> 4.40; at 10 %: 3.3655 -> 3.37
    assert {ln["vat_rate_bp"]: ln["vat_cents"] for ln in order["lines"]} == {
        2550: 752, 1350: 440, 1000: 337, 0: 0}
    breakdown = order["vat_breakdown"]
    assert [row["rate_bp"] for row in breakdown] == [2550, 1350, 1000, 0]
    for row in breakdown:
        assert row["net_cents"] + row["vat_cents"] == row["gross_cents"]
    food_books = next(row for row in breakdown if row["rate_bp"] == 1350)
    assert (food_books["gross_cents"], food_books["vat_cents"]) == (2 * 3702, 2 * 440)
    assert sum(row["gross_cents"] for row in breakdown) == order["total_cents"] == 5 * 3702
    assert sum(row["vat_cents"] for row in breakdown) == order["vat_cents"]


async def test_campaign_discount_is_taken_before_vat(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 2}, vat_class="food")
    await campaign(db, kind="fixed", value=135, variant_ids=[v["id"]],
                   starts_at=utcnow() - timedelta(minutes=5))
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": 2}],
        "payments": [{"method": "cash", "tendered_cents": 2000}]})
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["subtotal_cents"], order["discount_cents"], order["total_cents"]) == (
        2000, 270, 1730)
    assert order["vat_cents"] == vat_included(1730, 1350) == 206
    [pay] = order["payments"]
    # 17.30 ends in 0: no cash rounding
    assert (pay["rounding_cents"], pay["change_cents"]) == (0, 270)


async def test_hot_path_lookups_agree_with_the_reference_functions(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    """On PostgreSQL orders use prepared-statement twins of load_variant_infos and
    resolve_prices; they must return exactly what the reference functions return,
    and an order must carry exactly those prices, in every channel."""
    from saumaton.catalogue.services import load_variant_infos_pg
    from saumaton.pricing.services import resolve_prices_pg

    variants = await make_variants(db, [1990, 2990, 500, 4990, 1000],
                                   stock={shop.store1: 50, shop.warehouse: 50})
    ids = [int(v["id"]) for v in variants]
    product_id = int(variants[0]["product_id"])
    others = await make_variants(db, [3000], stock={shop.warehouse: 5})
    category = await new_category(db, product_id)
    now = utcnow()
    await campaign(db, kind="percent", value=1500, variant_ids=[ids[0]], starts_at=now
                   - timedelta(hours=1))
    await campaign(db, kind="fixed", value=700, product_ids=[product_id],
                   starts_at=now - timedelta(hours=1))
    await campaign(db, kind="percent", value=3000, category_ids=[category],
                   channel_codes=["web"], starts_at=now - timedelta(hours=1))
    await campaign(db, kind="fixed", value=100, variant_ids=[ids[3]],
                   starts_at=now + timedelta(days=1))  # not started
    await campaign(db, kind="fixed", value=900, variant_ids=[ids[4]],
                   starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    all_ids = [*ids, int(others[0]["id"])]
    chans = await channel_ids(db)
    for code in ("web", "pos-1", "service"):
        async with db.reader() as s:
            ref_infos = await load_variant_infos(s, now.date(), ids=all_ids)
            reference = await resolve_prices(s, ref_infos, chans[code], now)
        async with db.uow() as uow:
            if db.is_postgres:
                hot_infos = await load_variant_infos_pg(uow, now.date(), ids=all_ids)
                hot = await resolve_prices_pg(uow, hot_infos, chans[code], now)
            else:
                hot_infos = await load_variant_infos(uow.session, now.date(), ids=all_ids)
                hot = await resolve_prices(uow.session, hot_infos, chans[code], now)
        assert sorted(hot_infos, key=lambda i: i.id) == sorted(ref_infos, key=lambda i: i.id)
        assert hot == reference, code
        # the web-only category campaign shows up only on the web
        assert (reference[ids[1]].limited_to == ("web",)) == (code == "web")
        who = "cashier1" if code == "pos-1" else "owner"
        body: dict[str, Any] = {"channel": code,
                                "lines": [{"variant_id": i} for i in all_ids]}
        if code == "pos-1":
            body["payments"] = [{"method": "card", "terminal_confirmed": True}]
        r = await client.post("/api/v1/orders", headers=shop.auth(who), json=body)
        assert r.status_code == 201, r.text
        for line in r.json()["lines"]:
            q = reference[line["variant_id"]]
            assert (line["unit_price_cents"], line["discount_cents"], line["campaign_id"]) == (
                q.list_cents, q.discount_cents, q.campaign_id), (code, line)
