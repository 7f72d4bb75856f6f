"""Orders through the API: prices and VAT frozen, cash rounding, idempotency, stock."""

from __future__ import annotations

import uuid

import httpx

from saumaton.db.uow import Database
from saumaton.inventory.services import verify_ledger
from tests.support import Shop, make_variants


async def test_pos_cash_sale_rounds_cash_and_freezes_vat(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1999], stock={shop.store1: 5})
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"ean": v["ean"], "quantity": 2}],
        "payments": [{"method": "cash", "tendered_cents": 5000}],
    })
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "completed"
    assert order["total_cents"] == 3998
    [line] = order["lines"]
    assert line["unit_price_cents"] == 1999 and line["vat_rate_bp"] == 2550
    assert line["vat_cents"] == 812  # 39.98 * 25.5 / 125.5 = 8.123
    [pay] = order["payments"]
    assert pay["amount_cents"] == 3998
    assert pay["rounding_cents"] == 2  # 39.98 -> 40.00
    assert pay["change_cents"] == 1000
    assert order["vat_breakdown"] == [
        {"rate_bp": 2550, "gross_cents": 3998, "net_cents": 3186, "vat_cents": 812}]
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    store = next(x for x in avail["locations"] if x["location_id"] == shop.store1)
    assert store["on_hand"] == 3


async def test_card_payment_is_exact_and_needs_terminal_confirmation(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1999], stock={shop.store1: 5})
    body = {"channel": "pos-1", "lines": [{"variant_id": v["id"]}],
            "payments": [{"method": "card"}]}
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json=body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "card_not_confirmed"
    body["payments"] = [{"method": "card", "terminal_confirmed": True}]
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json=body)
    assert r.status_code == 201
    assert r.json()["payments"][0]["rounding_cents"] == 0
    assert r.json()["paid_cents"] == 1999


async def test_pos_sale_of_item_in_hand_goes_negative_and_is_flagged(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [500], stock={shop.store1: 1})
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": 3}],
        "payments": [{"method": "cash"}]})
    assert r.status_code == 201, r.text
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    store = next(x for x in avail["locations"] if x["location_id"] == shop.store1)
    assert store["on_hand"] == -2
    assert store["needs_count"] is True
    # a count fixes the level and clears the flag
    r = await client.post("/api/v1/stock/counts", headers=shop.auth("manager"), json={
        "variant_id": v["id"], "location_id": shop.store1, "counted": 4})
    assert r.status_code == 201, r.text
    assert r.json()["on_hand"] == 4 and r.json()["needs_count"] is False
    async with db.reader() as s:
        assert await verify_ledger(s) == []


async def test_web_order_never_oversells(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 2, shop.store1: 10})
    ok = await client.post("/api/v1/orders", headers=shop.auth("owner"), json={
        "channel": "web", "lines": [{"variant_id": v["id"], "quantity": 2}]})
    assert ok.status_code == 201, ok.text
    assert ok.json()["lines"][0]["location_id"] == shop.warehouse
    assert ok.json()["status"] == "pending"
    r = await client.post("/api/v1/orders", headers=shop.auth("owner"), json={
        "channel": "web", "lines": [{"variant_id": v["id"], "quantity": 1}]})
    assert r.status_code == 409
    assert r.json()["code"] == "out_of_stock"
    # nothing changed by the refused order
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    assert avail["online"] == 0
    wh = next(x for x in avail["locations"] if x["location_id"] == shop.warehouse)
    assert wh["on_hand"] == 0


async def test_idempotency_key_returns_the_same_order(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 5})
    key = str(uuid.uuid4())
    body = {"channel": "web", "lines": [{"variant_id": v["id"]}]}
    h = {**shop.auth("owner"), "Idempotency-Key": key}
    first = await client.post("/api/v1/orders", headers=h, json=body)
    again = await client.post("/api/v1/orders", headers=h, json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    assert avail["online"] == 4  # sold once, not twice
    other = await client.post("/api/v1/orders", headers=h, json={**body, "lines": [
        {"variant_id": v["id"], "quantity": 2}]})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


async def test_writes_need_authentication_and_scope(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store2: 5})
    body = {"channel": "pos-2", "lines": [{"variant_id": v["id"]}],
            "payments": [{"method": "cash"}]}
    r = await client.post("/api/v1/orders", json=body)
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = await client.post("/api/v1/orders", json=body,
                          headers={"Authorization": "Bearer sau_wrong"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    # a cashier of store 1 cannot sell at store 2
    r = await client.post("/api/v1/orders", json=body, headers=shop.auth("cashier1"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await client.post("/api/v1/orders", json=body, headers=shop.auth("cashier2"))
    assert r.status_code == 201


async def test_store_staff_list_only_their_stores_orders(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [700], stock={shop.store1: 5, shop.store2: 5})
    sold = {}
    for who, channel in (("cashier1", "pos-1"), ("cashier2", "pos-2")):
        r = await client.post("/api/v1/orders", headers=shop.auth(who), json={
            "channel": channel, "lines": [{"variant_id": v["id"]}],
            "payments": [{"method": "cash"}]})
        assert r.status_code == 201, r.text
        sold[who] = r.json()["id"]
    mine = await client.get("/api/v1/orders?limit=200", headers=shop.auth("cashier1"))
    assert mine.status_code == 200
    ids = {o["id"] for o in mine.json()["items"]}
    assert sold["cashier1"] in ids and sold["cashier2"] not in ids
    assert {o["location_id"] for o in mine.json()["items"]} == {shop.store1}
    other = await client.get(f"/api/v1/orders?location_id={shop.store2}",
                             headers=shop.auth("cashier1"))
    assert other.status_code == 403
    everything = await client.get("/api/v1/orders?limit=200", headers=shop.auth("owner"))
    assert {sold["cashier1"], sold["cashier2"]} <= {o["id"] for o in everything.json()["items"]}
    # one order read back equals what the list returned
    one = await client.get(f"/api/v1/orders/{sold['cashier1']}", headers=shop.auth("cashier1"))
    assert one.json() == next(o for o in mine.json()["items"] if o["id"] == sold["cashier1"])
