"""Stock through the API: receipts, adjustments, counts, transfers and the ledger."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from saumaton.db.uow import Database
from saumaton.inventory.services import verify_ledger
from saumaton.staff.services import create_api_token, create_staff
from tests.support import Shop, make_variants

PROBLEM = "application/problem+json"


async def post(client: httpx.AsyncClient, shop: Shop, path: str, who: str = "manager",
               **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/stock/{path}", json=body, headers=shop.auth(who))


async def ledger(client: httpx.AsyncClient, shop: Shop, variant_id: int, who: str = "manager",
                 **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/stock/movements", headers=shop.auth(who),
                         params={"variant_id": variant_id, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


SHOP_LOCATIONS = {"store-1", "store-2", "warehouse"}


async def levels(client: httpx.AsyncClient, variant_id: int) -> dict[int, tuple[int, int]]:
    """On hand and reserved at the test shop's three locations (other tests add stores
    of their own to the shared database)."""
    a = (await client.get(f"/api/v1/variants/{variant_id}/availability")).json()
    return {x["location_id"]: (x["on_hand"], x["reserved"]) for x in a["locations"]
            if x["code"] in SHOP_LOCATIONS}


async def assert_ledger_ok(db: Database) -> None:
    async with db.reader() as s:
        assert await verify_ledger(s) == []


async def scoped_token(db: Database, role: str, location_id: int | None) -> dict[str, str]:
    async with db.uow() as uow:
        staff = await create_staff(uow, f"{role}-{uuid.uuid4().hex[:8]}@test.example",
                                   f"Scoped {role}", "long-enough-pw", [(role, location_id)])
        token = await create_api_token(uow, staff.id, "scoped")
        await uow.commit()
    return {"Authorization": f"Bearer {token}"}


async def test_receipt_adjustment_count_transfer_write_the_ledger(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000])
    vid = v["id"]
    r = await post(client, shop, "receipts", variant_id=vid, location_id=shop.warehouse,
                   quantity=20, reference="PO-1", reason="supplier delivery")
    assert r.status_code == 201, r.text
    assert r.json() == {"variant_id": vid, "location_id": shop.warehouse, "on_hand": 20,
                        "reserved": 0, "available": 20, "needs_count": False}
    r = await post(client, shop, "adjustments", variant_id=vid, location_id=shop.warehouse,
                   quantity=-2, reason="broken in transit")
    assert r.status_code == 201 and r.json()["on_hand"] == 18
    r = await post(client, shop, "transfers", variant_id=vid, from_location_id=shop.warehouse,
                   to_location_id=shop.store1, quantity=5, reference="TR-7")
    assert r.status_code == 201, r.text
    by_loc = {x["location_id"]: x["on_hand"] for x in r.json()}
    assert by_loc == {shop.warehouse: 13, shop.store1: 5}
    r = await post(client, shop, "counts", variant_id=vid, location_id=shop.store1, counted=4,
                   reference="CNT-1")
    assert r.status_code == 201 and r.json()["on_hand"] == 4
    r = await post(client, shop, "counts", variant_id=vid, location_id=shop.store1, counted=4)
    assert r.status_code == 201 and r.json()["on_hand"] == 4  # a count that agrees

    rows = await ledger(client, shop, vid)
    got = [(m["kind"], m["location_id"], m["quantity"], m["balance_after"]) for m in rows]
    assert got == [  # newest first
        ("count", shop.store1, 0, 4),
        ("count", shop.store1, -1, 4),
        ("transfer", shop.store1, 5, 5),
        ("transfer", shop.warehouse, -5, 13),
        ("adjustment", shop.warehouse, -2, 18),
        ("receipt", shop.warehouse, 20, 20),
    ] or got == [
        ("count", shop.store1, 0, 4),
        ("count", shop.store1, -1, 4),
        ("transfer", shop.warehouse, -5, 13),
        ("transfer", shop.store1, 5, 5),
        ("adjustment", shop.warehouse, -2, 18),
        ("receipt", shop.warehouse, 20, 20),
    ]
    receipt = rows[-1]
    assert receipt["reference"] == "PO-1" and receipt["reason"] == "supplier delivery"
    assert receipt["actor"].endswith("manager@test.example")
    assert rows[-2]["reason"] == "broken in transit"
    assert {m["reference"] for m in rows if m["kind"] == "transfer"} == {"TR-7"}
    assert rows[1]["reason"] == "counted 4"
    assert all(m["order_id"] is None for m in rows)
    # filters and paging
    store_rows = await ledger(client, shop, vid, location_id=shop.store1)
    assert {m["location_id"] for m in store_rows} == {shop.store1} and len(store_rows) == 3
    page1 = await ledger(client, shop, vid, limit=2)
    page2 = await ledger(client, shop, vid, limit=10, before_id=page1[-1]["id"])
    assert [m["id"] for m in page1 + page2] == [m["id"] for m in rows]
    assert await levels(client, vid) == {shop.store1: (4, 0), shop.store2: (0, 0),
                                         shop.warehouse: (13, 0)}
    await assert_ledger_ok(db)


async def test_a_sale_appears_in_the_ledger_with_its_order(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 3})
    order = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": 2}],
        "payments": [{"method": "cash"}]})
    assert order.status_code == 201
    [sale, receipt] = await ledger(client, shop, v["id"], who="cashier1",
                                   location_id=shop.store1)
    assert (sale["kind"], sale["quantity"], sale["balance_after"]) == ("sale", -2, 1)
    assert sale["order_id"] == order.json()["id"]
    assert sale["reference"] == order.json()["number"]
    assert sale["actor"].endswith("cashier1@test.example")
    assert receipt["kind"] == "receipt"
    await assert_ledger_ok(db)


async def test_adjustment_needs_a_reason_and_a_quantity(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 3})
    base = {"variant_id": v["id"], "location_id": shop.store1}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**base, "quantity": 1}, "validation_error", "reason"),
        ({**base, "quantity": 1, "reason": ""}, "validation_error", "reason"),
        ({**base, "quantity": 1, "reason": "   "}, "reason_required", "reason"),
        ({**base, "quantity": 0, "reason": "x"}, "invalid_quantity", "quantity"),
        ({**base, "quantity": 2_000_000, "reason": "x"}, "validation_error", "quantity"),
        ({**base, "quantity": "lots", "reason": "x"}, "validation_error", "quantity"),
    ]
    for body, code, field in cases:
        r = await post(client, shop, "adjustments", **body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert (r.json()["code"], r.json()["field"]) == (code, field), body
    assert await levels(client, v["id"]) == {shop.store1: (3, 0), shop.store2: (0, 0),
                                             shop.warehouse: (0, 0)}
    assert len(await ledger(client, shop, v["id"])) == 1


async def test_other_refusals_change_nothing(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 3})
    vid = v["id"]
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("receipts", {"variant_id": vid, "location_id": shop.store1, "quantity": 0}, 422,
         "validation_error"),
        ("receipts", {"variant_id": vid, "location_id": shop.store1, "quantity": -5}, 422,
         "validation_error"),
        ("receipts", {"variant_id": 2147483000, "location_id": shop.store1, "quantity": 1},
         404, "variant_not_found"),
        ("receipts", {"variant_id": vid, "location_id": 2147483000, "quantity": 1}, 404,
         "location_not_found"),
        ("counts", {"variant_id": vid, "location_id": shop.store1, "counted": -1}, 422,
         "validation_error"),
        ("transfers", {"variant_id": vid, "from_location_id": shop.store1,
                       "to_location_id": shop.store1, "quantity": 1}, 422, "same_location"),
        ("transfers", {"variant_id": vid, "from_location_id": shop.store1,
                       "to_location_id": shop.store2, "quantity": 0}, 422, "validation_error"),
    ]
    for path, body, status, code in cases:
        r = await post(client, shop, path, **body)
        assert r.status_code == status, (path, body, r.text)
        assert r.json()["code"] == code, (path, body)
    assert len(await ledger(client, shop, vid)) == 1
    await assert_ledger_ok(db)


async def test_transfer_beyond_available_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 4, shop.store1: 1})
    vid = v["id"]
    before_levels, before_rows = await levels(client, vid), await ledger(client, shop, vid)
    for src, dst, qty in ((shop.warehouse, shop.store2, 5), (shop.store1, shop.warehouse, 2),
                          (shop.store2, shop.store1, 1)):
        r = await post(client, shop, "transfers", variant_id=vid, from_location_id=src,
                       to_location_id=dst, quantity=qty)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "out_of_stock"
    assert await levels(client, vid) == before_levels
    assert await ledger(client, shop, vid) == before_rows
    # exactly what is there can move
    r = await post(client, shop, "transfers", variant_id=vid, from_location_id=shop.warehouse,
                   to_location_id=shop.store2, quantity=4)
    assert r.status_code == 201
    assert (await levels(client, vid))[shop.warehouse] == (0, 0)
    await assert_ledger_ok(db)


async def test_negative_level_is_flagged_and_a_count_clears_it(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store2: 1})
    r = await post(client, shop, "adjustments", variant_id=v["id"], location_id=shop.store2,
                   quantity=-3, reason="shrinkage")
    assert r.status_code == 201
    assert (r.json()["on_hand"], r.json()["needs_count"]) == (-2, True)
    r = await post(client, shop, "receipts", variant_id=v["id"], location_id=shop.store2,
                   quantity=5)
    assert (r.json()["on_hand"], r.json()["needs_count"]) == (3, True)  # still to be counted
    r = await post(client, shop, "counts", variant_id=v["id"], location_id=shop.store2,
                   counted=2)
    assert (r.json()["on_hand"], r.json()["needs_count"]) == (2, False)
    await assert_ledger_ok(db)


async def test_stock_writes_are_scoped_by_role_and_location(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5, shop.store2: 5})
    vid = v["id"]
    adj2 = {"variant_id": vid, "location_id": shop.store2, "quantity": -1, "reason": "lost"}
    for who in ("cashier1", "cashier2", "service", "finance"):
        r = await post(client, shop, "adjustments", who=who, **adj2)
        assert r.status_code == 403, who
        assert r.json()["code"] == "forbidden"
    r = await client.post("/api/v1/stock/adjustments", json=adj2)
    assert r.status_code == 401
    # a manager of store 1 manages store 1 only
    m1 = await scoped_token(db, "manager", shop.store1)
    r = await client.post("/api/v1/stock/adjustments", headers=m1, json=adj2)
    assert r.status_code == 403
    r = await client.post("/api/v1/stock/adjustments", headers=m1,
                          json={**adj2, "location_id": shop.store1})
    assert r.status_code == 201
    r = await client.post("/api/v1/stock/transfers", headers=m1, json={
        "variant_id": vid, "from_location_id": shop.store1, "to_location_id": shop.store2,
        "quantity": 1})
    assert r.status_code == 403  # the receiving store is not theirs
    assert await levels(client, vid) == {shop.store1: (4, 0), shop.store2: (5, 0),
                                         shop.warehouse: (0, 0)}
    r = await post(client, shop, "adjustments", who="owner", **adj2)
    assert r.status_code == 201 and r.json()["on_hand"] == 4
    await assert_ledger_ok(db)


async def test_ledger_reads_are_scoped(client: httpx.AsyncClient, db: Database,
                                       shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 1, shop.store2: 1})
    url = "/api/v1/stock/movements"
    assert (await client.get(url, params={"variant_id": v["id"]})).status_code == 401
    own = await client.get(url, headers=shop.auth("cashier1"),
                           params={"variant_id": v["id"], "location_id": shop.store1})
    assert own.status_code == 200
    assert [m["location_id"] for m in own.json()["items"]] == [shop.store1]
    other = await client.get(url, headers=shop.auth("cashier1"),
                             params={"variant_id": v["id"], "location_id": shop.store2})
    assert other.status_code == 403
    # a store's staff cannot read every location's ledger by leaving the filter out
    everywhere = await client.get(url, headers=shop.auth("cashier1"),
                                  params={"variant_id": v["id"]})
    assert everywhere.status_code == 403
    for who in ("finance", "manager", "owner"):
        r = await client.get(url, headers=shop.auth(who), params={"variant_id": v["id"]})
        assert r.status_code == 200 and len(r.json()) == 2, who


async def test_stock_writes_with_an_idempotency_key_happen_once(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 10})
    key = f"receipt-{uuid.uuid4()}"
    h = {**shop.auth("manager"), "Idempotency-Key": key}
    body = {"variant_id": v["id"], "location_id": shop.warehouse, "quantity": 5,
            "reference": "PO-1"}
    first = await client.post("/api/v1/stock/receipts", headers=h, json=body)
    again = await client.post("/api/v1/stock/receipts", headers=h, json=body)
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert first.json() == again.json() and first.json()["on_hand"] == 15
    moves = await client.get(f"/api/v1/stock/movements?variant_id={v['id']}",
                             headers=shop.auth("manager"))
    assert [m["kind"] for m in moves.json()["items"]].count("receipt") == 2  # opening stock + once
    other = await client.post("/api/v1/stock/receipts", headers=h,
                              json={**body, "quantity": 6})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    # the same key in another kind of write is a different request scope
    t = await client.post("/api/v1/stock/transfers", headers=h, json={
        "variant_id": v["id"], "from_location_id": shop.warehouse,
        "to_location_id": shop.store1, "quantity": 2})
    t2 = await client.post("/api/v1/stock/transfers", headers=h, json={
        "variant_id": v["id"], "from_location_id": shop.warehouse,
        "to_location_id": shop.store1, "quantity": 2})
    assert t.status_code == 201 and t2.status_code == 200 and t.json() == t2.json()
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    wh = next(x for x in avail["locations"] if x["location_id"] == shop.warehouse)
    assert wh["on_hand"] == 13
    # a refused write stores nothing: the same key can be used again after fixing it
    bad_key = {**shop.auth("manager"), "Idempotency-Key": f"adj-{uuid.uuid4()}"}
    bad = await client.post("/api/v1/stock/transfers", headers=bad_key, json={
        "variant_id": v["id"], "from_location_id": shop.warehouse,
        "to_location_id": shop.store1, "quantity": 999})
    assert bad.status_code == 409 and bad.json()["code"] == "out_of_stock"
    ok = await client.post("/api/v1/stock/transfers", headers=bad_key, json={
        "variant_id": v["id"], "from_location_id": shop.warehouse,
        "to_location_id": shop.store1, "quantity": 1})
    assert ok.status_code == 201
    async with db.reader() as s:
        assert await verify_ledger(s) == []
