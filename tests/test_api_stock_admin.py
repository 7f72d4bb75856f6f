"""Stock lists through /api/v1 on both databases: levels per location with the back
office's filters (search, low, negative, needs a count, in transit), limited to the
locations the caller may read, a page at a time; and the stock counts list."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from tests.api_pages import all_pages
from tests.support import Shop, make_variants

LEVELS = "/api/v1/stock/levels"


def level_key(row: dict[str, object]) -> tuple[object, object]:
    return row["variant_id"], row["location_id"]


async def test_levels_are_filtered_scoped_and_paged(client: httpx.AsyncClient,
                                                    shop: Shop, db: Database) -> None:
    a, b, c = await make_variants(db, [100, 200, 300], stock={
        shop.store1: 10, shop.store2: 2, shop.warehouse: 50})
    tag = str(a["product_slug"]).removeprefix("p-")
    owner = shop.auth("owner")
    # b at store 1 goes below zero; c at store 2 needs a count; 5 of a are on their way
    # from the warehouse to store 2.
    r = await client.post("/api/v1/stock/adjustments", headers=owner, json={
        "variant_id": b["id"], "location_id": shop.store1, "quantity": -12,
        "reason": "broken"})
    assert r.status_code == 201, r.text
    async with db.uow() as uow:
        await uow.session.execute(update(StockLevel).where(
            StockLevel.variant_id == c["id"], StockLevel.location_id == shop.store2)
            .values(needs_count=True))
        await uow.commit()
    r = await client.post("/api/v1/stock/transfers", headers=owner, json={
        "from_location_id": shop.warehouse, "to_location_id": shop.store2,
        "lines": [{"variant_id": a["id"], "quantity": 5}]})
    assert r.status_code == 201, r.text

    rows, pages = await walk(client, shop.auth("finance"), {"q": tag}, limit=2)
    assert len(rows) == 9 and pages == 5
    assert sorted(level_key(r) for r in rows) == [level_key(r) for r in rows]
    got = {level_key(r): r for r in rows}
    assert got[(a["id"], shop.store2)]["in_transit"] == 5
    assert got[(a["id"], shop.warehouse)]["on_hand"] == 45
    assert got[(b["id"], shop.store1)]["on_hand"] == -2
    assert got[(c["id"], shop.store2)]["needs_count"] is True
    assert got[(a["id"], shop.store1)]["location_name"] == "Store Helsinki"

    async def keys(**params: object) -> set[tuple[object, object]]:
        found, _ = await walk(client, shop.auth("finance"), {"q": tag, **params}, limit=50)
        return {level_key(r) for r in found}
    assert await keys(state="negative") == {(b["id"], shop.store1)}
    # (going below zero flags a level for a count too)
    assert await keys(state="needs_count") == {(c["id"], shop.store2), (b["id"], shop.store1)}
    assert await keys(state="in_transit") == {(a["id"], shop.store2)}
    # low: 3 or fewer available, not negative
    assert await keys(state="low") == {(a["id"], shop.store2), (b["id"], shop.store2),
                                       (c["id"], shop.store2)}
    assert await keys(location_id=shop.warehouse) == {
        (v["id"], shop.warehouse) for v in (a, b, c)}
    assert await keys(variant_id=b["id"]) == {(b["id"], loc) for loc in
                                              (shop.store1, shop.store2, shop.warehouse)}
    assert await keys(q=str(a["ean"])) == {(a["id"], loc) for loc in
                                           (shop.store1, shop.store2, shop.warehouse)}

    # A store's cashier sees her store only, and is refused another's.
    mine, _ = await walk(client, shop.auth("cashier1"), {"q": tag}, limit=50)
    assert {r["location_id"] for r in mine} == {shop.store1} and len(mine) == 3
    r = await client.get(LEVELS, headers=shop.auth("cashier1"),
                         params={"location_id": shop.store2})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def walk(client: httpx.AsyncClient, headers: dict[str, str],
               params: dict[str, object], *, limit: int
               ) -> tuple[list[dict[str, object]], int]:
    """Every level row, following the cursor; no (variant, location) twice."""
    items: list[dict[str, object]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await client.get(LEVELS, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    pairs = [level_key(i) for i in items]
    assert len(pairs) == len(set(pairs))
    return items, pages


async def test_level_refusals(client: httpx.AsyncClient, shop: Shop) -> None:
    r = await client.get(LEVELS, headers=shop.auth("finance"), params={"state": "empty"})
    assert r.status_code == 422 and r.json()["field"] == "state"
    r = await client.get(LEVELS, headers=shop.auth("finance"), params={"limit": 201})
    assert r.status_code == 422 and r.json()["field"] == "limit"
    r = await client.get(LEVELS, headers=shop.auth("finance"), params={"q": "x" * 101})
    assert r.status_code == 422 and r.json()["field"] == "q"
    r = await client.get(LEVELS, headers=shop.auth("finance"), params={"cursor": "e30"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    r = await client.get(LEVELS)
    assert r.status_code == 401


async def test_counts_are_listed_per_location(client: httpx.AsyncClient, shop: Shop,
                                             db: Database) -> None:
    a = (await make_variants(db, [100], stock={shop.store1: 4}))[0]
    opened = []
    for loc, scope in ((shop.store1, "shelf A1"), (shop.store2, "shelf B1"),
                       (shop.store1, "shelf A2"), (shop.store1, "shelf A3")):
        r = await client.post("/api/v1/stock/counts", headers=shop.auth("manager"),
                              json={"location_id": loc, "scope": scope})
        assert r.status_code == 201, r.text
        opened.append(r.json()["id"])
    r = await client.post(f"/api/v1/stock/counts/{opened[0]}/lines",
                          headers=shop.auth("cashier1"),
                          json={"variant_id": a["id"], "counted": 3})
    assert r.status_code in (200, 201), r.text
    r = await client.post(f"/api/v1/stock/counts/{opened[3]}/cancel",
                          headers=shop.auth("cashier1"))
    assert r.status_code == 200, r.text

    url = "/api/v1/stock/counts"
    every, pages = await all_pages(client, url, shop.auth("manager"), limit=2,
                                   params={"status": "open"})
    ids = [c["id"] for c in every]
    assert ids == sorted(ids, reverse=True) and pages >= 2
    assert {opened[0], opened[1], opened[2]} <= set(ids) and opened[3] not in ids
    first = next(c for c in every if c["id"] == opened[0])
    assert first["lines_counted"] == 1 and first["scope"] == "shelf A1"
    assert first["location_name"] == "Store Helsinki" and first["status"] == "open"

    mine, _ = await all_pages(client, url, shop.auth("cashier1"), limit=50)
    assert {c["location_id"] for c in mine} == {shop.store1}
    assert {opened[0], opened[2], opened[3]} <= {c["id"] for c in mine}
    cancelled, _ = await all_pages(client, url, shop.auth("cashier1"), limit=50,
                                   params={"status": "cancelled"})
    assert opened[3] in {c["id"] for c in cancelled}
    assert {c["status"] for c in cancelled} == {"cancelled"}
    r = await client.get(url, headers=shop.auth("cashier1"),
                         params={"location_id": shop.store2})
    assert r.status_code == 403
    # Finance reads stock but does not count it (the back office's count pages refuse
    # them too).
    r = await client.get(url, headers=shop.auth("finance"))
    assert r.status_code == 403
    r = await client.get(url, headers=shop.auth("manager"), params={"status": "done"})
    assert r.status_code == 422 and r.json()["field"] == "status"
