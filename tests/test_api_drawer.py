"""A store sale made through POST /api/v1/orders goes into an open drawer session, so it
reaches the store's Z report like a sale made on the till page (both databases)."""

from __future__ import annotations

import httpx

from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.tills.drawer import close_session
from saumaton.tills.zreport import z_report
from tests.support import Shop, make_variants, open_drawer
from tests.test_drawer import new_store
from tests.test_drawer import open_drawer as open_till


def sale(channel: str, ean: str, **extra: object) -> dict[str, object]:
    return {"channel": channel, "lines": [{"ean": ean, "quantity": 2}],
            "payments": [{"method": "card", "terminal_confirmed": True}], **extra}


async def test_api_store_sale_needs_an_open_drawer_and_lands_in_its_z_report(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    store = await new_store(db)
    [v] = await make_variants(db, [1250], stock={store.id: 10})
    ean = str(v["ean"])
    owner = shop.auth("owner")

    # No drawer open at the store: refused, nothing sold, no stock moved.
    r = await client.post("/api/v1/orders", headers=owner, json=sale(store.channel, ean))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "drawer_closed"
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    assert [x["on_hand"] for x in avail["locations"] if x["location_id"] == store.id] == [10]

    # The till is opened: the sale goes into its session and its X/Z report.
    till = await open_till(db, store)
    r = await client.post("/api/v1/orders", headers=owner, json=sale(store.channel, ean))
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["drawer_session_id"] == till.id
    got = await client.get(f"/api/v1/orders/{order['id']}", headers=owner)
    assert got.json()["drawer_session_id"] == till.id
    async with db.reader() as s:
        x = await z_report(s, till.id)
    assert x.sales_count == 1 and x.net_sales_cents == 2500

    # A session named by the caller must be open at that store.
    other = await open_drawer(db, shop.store1)
    r = await client.post("/api/v1/orders", headers=owner,
                          json=sale(store.channel, ean, drawer_session_id=other))
    assert r.status_code == 409 and r.json()["code"] == "drawer_closed", r.text
    r = await client.post("/api/v1/orders", headers=owner,
                          json=sale(store.channel, ean, drawer_session_id=till.id))
    assert r.status_code == 201 and r.json()["drawer_session_id"] == till.id

    # A web order has no drawer.
    r = await client.post("/api/v1/orders", headers=owner,
                          json=sale("web", ean, drawer_session_id=till.id))
    assert r.status_code == 422 and r.json()["code"] == "not_a_store_sale", r.text

    # Closed: the Z report holds both API sales; the next API sale is refused again.
    async with db.uow() as uow:
        z = await close_session(uow, SYSTEM, till.id, 15000)
        await uow.commit()
    assert z.sales_count == 2 and z.net_sales_cents == 5000
    r = await client.post("/api/v1/orders", headers=owner, json=sale(store.channel, ean))
    assert r.status_code == 409 and r.json()["code"] == "drawer_closed"
