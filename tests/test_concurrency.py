"""The acceptance test for overselling: many buyers at once, through a real server.

200 web orders race for 50 units at the warehouse (the only location that ships
web orders in the test shop) while 40 POS sales ring up the same variant in
store 1. Exactly 50 web orders may win; every POS sale must go through.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel, StockMovement
from saumaton.inventory.services import verify_ledger
from saumaton.orders.models import Order, OrderLine
from tests.support import Server, Shop, make_variants

WEB_ATTEMPTS = 200
POS_SALES = 40
ONLINE_STOCK = 50
STORE_STOCK = 10


def _client(server: Server) -> httpx.AsyncClient:
    # One connection per request, all open at once. No keep-alive: after a burst that
    # outlasts the server's keep-alive timeout, reusing a pooled connection can race
    # the server closing it (a spurious ReadError that has nothing to do with orders).
    return httpx.AsyncClient(
        base_url=server.base_url, timeout=httpx.Timeout(90.0),
        limits=httpx.Limits(max_connections=300, max_keepalive_connections=0),
    )


def _vid(v: dict[str, object]) -> int:
    value = v["id"]
    assert isinstance(value, int)
    return value


async def _level(db: Database, variant_id: int, location_id: int) -> StockLevel:
    async with db.reader() as s:
        lv = await s.get(StockLevel, (variant_id, location_id))
    assert lv is not None
    return lv


async def test_web_and_pos_buyers_racing_for_the_last_units_never_oversell(
    server: Server, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1290],
                              stock={shop.warehouse: ONLINE_STOCK, shop.store1: STORE_STOCK})
    vid = _vid(v)
    web_body = {"channel": "web", "lines": [{"variant_id": vid, "quantity": 1}]}
    pos_body = {"channel": "pos-1", "lines": [{"variant_id": vid, "quantity": 1}],
                "payments": [{"method": "cash", "tendered_cents": 2000}]}
    async with _client(server) as http:
        async def attempt(kind: str, who: str, body: dict[str, Any]) -> tuple[str, int, Any]:
            r = await http.post("/api/v1/orders", json=body, headers=shop.auth(who))
            return kind, r.status_code, r.json()

        tasks = [asyncio.create_task(attempt("web", "owner", web_body))
                 for _ in range(WEB_ATTEMPTS)]
        tasks += [asyncio.create_task(attempt("pos", "cashier1", pos_body))
                  for _ in range(POS_SALES)]
        async with asyncio.timeout(120):
            results = await asyncio.gather(*tasks)

        web = [(status, body) for kind, status, body in results if kind == "web"]
        pos = [(status, body) for kind, status, body in results if kind == "pos"]
        web_status = Counter(status for status, _ in web)
        assert web_status == {201: ONLINE_STOCK, 409: WEB_ATTEMPTS - ONLINE_STOCK}, web_status
        for status, body in web:
            if status == 409:
                assert body["code"] == "out_of_stock", body
            else:
                assert body["lines"][0]["location_id"] == shop.warehouse
        assert [s for s, _ in pos] == [201] * POS_SALES, [b for s, b in pos if s != 201][:3]
        assert all(b["status"] == "completed" and b["paid_cents"] == 1290 for _, b in pos)
        web_ids = {b["id"] for s, b in web if s == 201}
        pos_ids = {b["id"] for _, b in pos}
        assert len(web_ids) == ONLINE_STOCK and len(pos_ids) == POS_SALES

        avail = (await http.get(f"/api/v1/variants/{vid}/availability")).json()
        assert avail["online"] == 0
        by_loc = {x["location_id"]: x for x in avail["locations"]}
        assert by_loc[shop.warehouse]["on_hand"] == 0
        assert by_loc[shop.store1]["on_hand"] == STORE_STOCK - POS_SALES
        assert by_loc[shop.store1]["needs_count"] is True

    wh = await _level(db, vid, shop.warehouse)
    assert (wh.on_hand, wh.reserved, wh.needs_count) == (0, 0, False)
    store = await _level(db, vid, shop.store1)
    assert store.on_hand == STORE_STOCK - POS_SALES and store.needs_count is True
    async with db.reader() as s:
        sales = (await s.execute(
            select(StockMovement.location_id, StockMovement.order_id, StockMovement.quantity)
            .where(StockMovement.variant_id == vid, StockMovement.kind == "sale")
        )).all()
        # a refused web order leaves no order behind
        orders_for_variant = set((await s.scalars(
            select(OrderLine.order_id).where(OrderLine.variant_id == vid))).all())
        assert await verify_ledger(s) == []
    wh_sales = [r for r in sales if r.location_id == shop.warehouse]
    assert len(wh_sales) == ONLINE_STOCK
    assert {r.order_id for r in wh_sales} == web_ids
    assert all(r.quantity == -1 for r in wh_sales)
    store_sales = [r for r in sales if r.location_id == shop.store1]
    assert {r.order_id for r in store_sales} == pos_ids and len(store_sales) == POS_SALES
    assert orders_for_variant == web_ids | pos_ids


async def test_concurrent_retries_with_one_idempotency_key_create_one_order(
    server: Server, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 5})
    vid = _vid(v)
    key = f"race-{uuid.uuid4()}"
    body = {"channel": "web", "lines": [{"variant_id": vid, "quantity": 2}]}
    headers = {**shop.auth("owner"), "Idempotency-Key": key}
    async with _client(server) as http:
        async def attempt() -> httpx.Response:
            return await http.post("/api/v1/orders", json=body, headers=headers)

        tasks = [asyncio.create_task(attempt()) for _ in range(20)]
        async with asyncio.timeout(60):
            responses = await asyncio.gather(*tasks)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 19}, [r.text for r in responses if r.status_code >= 300]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert all(r.headers.get("idempotent-replayed") == "true"
               for r in responses if r.status_code == 200)
    async with db.reader() as s:
        n = await s.scalar(select(func.count()).select_from(Order)
                           .where(Order.idempotency_key == key))
        moved = await s.scalar(select(func.sum(StockMovement.quantity))
                               .where(StockMovement.variant_id == vid,
                                      StockMovement.kind == "sale"))
    assert n == 1
    assert moved == -2  # sold once, not twenty times
    assert (await _level(db, vid, shop.warehouse)).on_hand == 3
