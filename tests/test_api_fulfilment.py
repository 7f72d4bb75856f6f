"""Fulfilment lists through /api/v1 on both databases: a store's queue of orders to
prepare (filters, search, cursor pages, scoped to the caller's stores), its pick list,
and one order's next steps and history as the order pages show them."""

from __future__ import annotations

import httpx

from saumaton.config import Settings
from saumaton.db.uow import Database
from tests.api_pages import all_pages
from tests.support import Shop, make_variants
from tests.test_fulfilment import paid_web_order

QUEUE = "/api/v1/fulfilment/orders"


async def test_store_queue_is_filtered_searched_and_paged(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    [a, b] = await make_variants(db, [1000, 1200], stock={shop.store2: 20,
                                                          shop.warehouse: 20})
    va, vb = int(str(a["id"])), int(str(b["id"]))
    pickups = [(await paid_web_order(db, settings, [(va, 1), (vb, 1)], store=shop.store2,
                                     last_name="Jono"))[0] for _ in range(3)]
    home, _ = await paid_web_order(db, settings, [(vb, 2)])

    every, pages = await all_pages(client, QUEUE, shop.auth("cashier2"), limit=2,
                                   params={"status": "open", "location_id": shop.store2})
    ids = [o["id"] for o in every]
    assert ids == sorted(ids, reverse=True) and pages >= 2
    assert [p.id for p in pickups][::-1] == [i for i in ids if i in {p.id for p in pickups}]
    assert home.id not in ids  # ships from the warehouse
    row = next(o for o in every if o["id"] == pickups[0].id)
    assert row["status"] == "paid" and row["delivery_method"] == "pickup"
    assert row["items"] == 2 and row["number"] == pickups[0].number
    assert row["location_name"] == "Store Tampere"

    r = await client.get(QUEUE, headers=shop.auth("cashier2"),
                         params={"q": pickups[1].phone})
    assert [o["id"] for o in r.json()["items"]] == [pickups[1].id]
    r = await client.get(QUEUE, headers=shop.auth("manager"),
                         params={"delivery_method": "home", "q": home.number})
    assert [o["id"] for o in r.json()["items"]] == [home.id]
    r = await client.get(QUEUE, headers=shop.auth("manager"),
                         params={"status": "packed", "q": home.number})
    assert r.json()["items"] == []
    # Another store's cashier sees none of them, and may not ask for that store.
    r = await client.get(QUEUE, headers=shop.auth("cashier1"),
                         params={"q": pickups[1].number})
    assert r.json()["items"] == []
    r = await client.get(QUEUE, headers=shop.auth("cashier1"),
                         params={"location_id": shop.store2})
    assert r.status_code == 403
    for bad in ({"status": "lost"}, {"delivery_method": "drone"},
                {"date_from": "2026-13-01"}, {"q": "x" * 201}, {"limit": 0}):
        r = await client.get(QUEUE, headers=shop.auth("manager"), params=bad)
        assert r.status_code == 422 and r.json()["field"] == next(iter(bad)), bad

    r = await client.get("/api/v1/fulfilment/pick-list", headers=shop.auth("cashier2"),
                         params={"location_id": shop.store2})
    assert r.status_code == 200, r.text
    lines = {ln["variant_id"]: ln for ln in r.json()["lines"]}
    assert lines[va]["quantity"] == 3 and lines[vb]["quantity"] == 3
    assert set(lines[va]["orders"]) == {p.number for p in pickups}
    r = await client.get("/api/v1/fulfilment/pick-list", headers=shop.auth("cashier1"),
                         params={"location_id": shop.store2})
    assert r.status_code == 403
    r = await client.get("/api/v1/fulfilment/pick-list", headers=shop.auth("cashier2"))
    assert r.status_code == 422 and r.json()["field"] == "location_id"


async def test_an_orders_next_steps_and_history(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1500], stock={shop.warehouse: 5, shop.store1: 5})
    home, _ = await paid_web_order(db, settings, [(int(str(v["id"])), 1)])
    url = f"/api/v1/orders/{home.id}/fulfilment"
    r = await client.get(url, headers=shop.auth("manager"))
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["status"] == "paid" and st["delivery_method"] == "home"
    assert st["locations"] == [shop.warehouse]
    assert st["actions"] == ["picking", "packed", "shipped"] and st["may_cancel"] is True
    assert st["history"][0]["step"] == "ordered"
    # Finance reads every order but fulfils none.
    r = await client.get(url, headers=shop.auth("finance"))
    assert r.status_code == 200 and r.json()["actions"] == []
    assert r.json()["may_cancel"] is False
    # A store's cashier may not read the warehouse's order.
    r = await client.get(url, headers=shop.auth("cashier1"))
    assert r.status_code == 403

    r = await client.post(f"/api/v1/orders/{home.id}/packed", headers=shop.auth("manager"))
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/orders/{home.id}/shipped", headers=shop.auth("manager"),
                          json={"carrier": "Posti", "tracking_number": "JJFI640099"})
    assert r.status_code == 200, r.text
    st = (await client.get(url, headers=shop.auth("manager"))).json()
    assert st["status"] == "shipped" and st["actions"] == [] and st["may_cancel"] is False
    steps = [(h["step"], h["who"]) for h in st["history"]]
    assert steps[0] == ("ordered", "")
    assert ("packed", "Manager") in steps and ("shipped", "Manager") in steps
    ats = [h["at"] for h in st["history"]]
    assert ats == sorted(ats)

    store_sale = await client.get("/api/v1/orders/999999999/fulfilment",
                                  headers=shop.auth("manager"))
    assert store_sale.status_code == 404 and store_sale.json()["code"] == "order_not_found"


def test_queue_statuses_are_the_order_statuses() -> None:
    from typing import get_args

    from saumaton.api.fulfilment import QueueStatus
    from saumaton.orders.lifecycle import OrderStatus
    assert set(get_args(QueueStatus)) == {"open", *(s.value for s in OrderStatus)}
