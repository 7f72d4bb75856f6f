"""The till's JSON endpoints (catalogue snapshot, sales, voids) and the till page, through
the in-process app on both databases."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from saumaton.db.uow import Database
from saumaton.orders.models import SaleVoid
from saumaton.tills.drawer import open_session_at
from saumaton.tills.models import DrawerSession, Register
from tests.support import Shop, make_variants
from tests.support import staff_login as login


async def open_drawer(db: Database, location_id: int) -> int:
    """The store's open drawer session (opened with a 100 € float if there is none)."""
    async with db.uow() as uow:
        s = uow.session
        found = await open_session_at(s, location_id)
        if found is not None:
            return found.id
        register = await s.scalar(select(Register).where(
            Register.location_id == location_id, Register.active.is_(True))
            .order_by(Register.id).limit(1))
        if register is None:
            register = Register(location_id=location_id, name="Kassa 1")
            s.add(register)
            await s.flush()
        ds = DrawerSession(register_id=register.id, location_id=location_id,
                           float_cents=10_000, opened_by="test")
        s.add(ds)
        await s.flush()
        session_id = int(ds.id)
        await uow.commit()
    return session_id


def config_of(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="till-config">(.*?)</script>', page, re.S)
    assert m, "no till config on the page"
    data: dict[str, Any] = json.loads(m[1])
    return data




async def till(c: httpx.AsyncClient, shop: Shop, db: Database, who: str = "cashier1",
               store: str = "store-1") -> dict[str, Any]:
    await login(c, shop, who)
    await open_drawer(db, shop.store1 if store == "store-1" else shop.store2)
    r = await c.get(f"/pos/{store}")
    assert r.status_code == 200, r.text
    return config_of(r.text)


def sale(cfg: dict[str, Any], lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
                            "lines": lines, "payments": [{"method": "cash"}]}
    body.update(extra)
    return body


def headers(cfg: dict[str, Any]) -> dict[str, str]:
    return {"X-CSRF-Token": cfg["csrfToken"], "Content-Type": "application/json"}


async def test_the_till_page_needs_an_open_drawer_and_carries_its_settings(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    await login(web, shop, "owner")
    # Earlier tests may have left store 2's till open: close it (as its Z would).
    async with db.uow() as uow:
        await uow.session.execute(update(DrawerSession).where(
            DrawerSession.location_id == shop.store2, DrawerSession.status == "open",
            DrawerSession.register_id.in_(select(Register.id).where(
                Register.location_id == shop.store2, Register.active.is_(True))))
            .values(status="closed"))
        await uow.commit()
    async with db.reader() as s:
        assert await open_session_at(s, shop.store2) is None
    r = await web.get("/pos/store-2")
    assert r.status_code == 303 and r.headers["location"] == "/pos/store-2/drawer"
    session_id = await open_drawer(db, shop.store1)
    r = await web.get("/pos/store-1")
    assert r.status_code == 200
    cfg = config_of(r.text)
    assert cfg["sessionId"] == session_id and cfg["registerName"] == "Kassa 1"
    assert cfg["code"] == "store-1" and cfg["storeName"] == "Store Helsinki"
    assert cfg["maxDiscountPct"] == 100  # the owner may give any discount
    assert cfg["offlineCard"] == "to_confirm"
    assert cfg["seller"] == {"name": "Saumaton Demo Oy", "id": "2077474-0",
                             "address": "Esimerkkikatu 1, 00100 Helsinki"}
    assert cfg["strings"]["unknown_code"] == "Koodilla {code} ei löydy tuotetta."
    assert cfg["strings"]["over_limit"].startswith("Enintään {pct} %")
    assert 'id="sync-status"' in r.text and "/static/pos/till.js" in r.text
    assert "/static/css/pos.css" in r.text

    async with httpx.AsyncClient(transport=web._transport, base_url="http://test") as cashier:
        cfg = await till(cashier, shop, db)
        assert cfg["maxDiscountPct"] == 20 and cfg["staffName"] == "Cashier1"


async def test_catalogue_snapshot_prices_campaigns_and_etag(
    web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    a, b = await make_variants(db, [1999, 350], stock={shop.store1: 10})
    ends = datetime.now(UTC) + timedelta(days=3)
    r = await client.post("/api/v1/campaigns", headers=shop.auth("owner"), json={
        "name": "Syysale -20 %", "kind": "percent", "value": 2000,
        "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "ends_at": ends.isoformat(), "variant_ids": [b["id"]], "channel_codes": []})
    assert r.status_code == 201, r.text
    await till(web, shop, db)
    r = await web.get("/pos/store-1/api/catalogue")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    body = r.json()
    assert body["channel"] == "pos-1" and body["generated_at"]
    by_id = {v["id"]: v for v in body["variants"]}
    va, vb = by_id[a["id"]], by_id[b["id"]]
    assert va["ean"] == a["ean"] and va["sku"] == a["sku"] and va["brand"] == "Test"
    assert va["unit_price_cents"] == 1999 and va["campaign_discount_cents"] == 0
    assert va["campaign_id"] is None and va["vat_rate_bp"] == 2550
    assert a["sku"].lower() in va["search"] and "test" in va["search"]
    assert vb["unit_price_cents"] == 350 and vb["campaign_discount_cents"] == 70
    assert vb["campaign_name"] == "Syysale -20 %"
    assert abs(datetime.fromisoformat(vb["campaign_ends_at"]) - ends) < timedelta(seconds=1)
    again = await web.get("/pos/store-1/api/catalogue",
                          headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]


async def test_catalogue_needs_a_login_and_the_store(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    r = await web.get("/pos/store-1/api/catalogue")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    await login(web, shop, "cashier1")
    r = await web.get("/pos/store-2/api/catalogue")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await web.get("/pos/no-such-store/api/catalogue")
    assert r.status_code == 404 and r.json()["code"] == "location_not_found"


async def test_sale_is_recorded_once_and_replayed(
    web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1998], stock={shop.store1: 5})
    cfg = await till(web, shop, db)
    body = sale(cfg, [{"variant_id": v["id"], "quantity": 2, "unit_price_cents": 1998,
                       "campaign_discount_cents": 0, "campaign_id": None}],
                payments=[{"method": "cash", "tendered_cents": 5000}],
                expected_total_cents=3996,
                voids=[{"variant_id": v["id"], "quantity": 1, "amount_cents": 1998}])
    r = await web.post("/pos/store-1/api/sales", content=json.dumps(body), headers=headers(cfg))
    assert r.status_code == 201, r.text
    order = r.json()["order"]
    assert r.json()["receipt_url"] == f"/pos/store-1/receipt/{order['id']}"
    assert order["total_cents"] == 3996 and order["drawer_session_id"] == cfg["sessionId"]
    [cash] = order["payments"]
    assert cash["rounding_cents"] == -1 and cash["change_cents"] == 1005
    again = await web.post("/pos/store-1/api/sales", content=json.dumps(body),
                           headers=headers(cfg))
    assert again.status_code == 200 and again.json()["order"]["id"] == order["id"]
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    assert next(x for x in avail["locations"] if x["code"] == "store-1")["on_hand"] == 3
    async with db.reader() as s:
        voids = (await s.scalars(select(SaleVoid).where(SaleVoid.order_id == order["id"]))).all()
    assert [(x.variant_id, x.quantity, x.amount_cents) for x in voids] == [(v["id"], 1, 1998)]
    # the receipt as the till loads it (htmx): the panel, not a whole page
    receipt = await web.get(r.json()["receipt_url"], headers={"HX-Request": "true"})
    assert receipt.status_code == 200 and "<html" not in receipt.text
    assert 'data-testid="receipt-total"' in receipt.text


async def test_sale_errors_are_json_with_code_and_field(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5})
    cfg = await till(web, shop, db)
    url = "/pos/store-1/api/sales"
    line = {"variant_id": v["id"], "quantity": 1, "unit_price_cents": 1000,
            "campaign_discount_cents": 0, "campaign_id": None}
    good = sale(cfg, [line])

    r = await web.post(url, content=json.dumps(good), headers={"Content-Type": "application/json"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = await web.post(url, content=b"{not json", headers=headers(cfg))
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await web.post(url, content=json.dumps({**good, "lines": [{**line, "quantity": 0}]}),
                       headers=headers(cfg))
    assert r.status_code == 422 and r.json()["field"] == "lines.0.quantity"
    r = await web.post(url, content=json.dumps({**good, "key": "short"}), headers=headers(cfg))
    assert r.status_code == 422 and r.json()["field"] == "key"
    unknown = sale(cfg, [{**line, "variant_id": 2_000_000_000}])
    r = await web.post(url, content=json.dumps(unknown), headers=headers(cfg))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "unknown_variant" and r.json()["field"] == "lines.0"
    r = await web.post(url, content=json.dumps(sale(cfg, [line], payments=[
        {"method": "cash", "tendered_cents": 500}])), headers=headers(cfg))
    assert r.status_code == 422 and r.json()["code"] == "insufficient_cash"
    assert r.json()["field"] == "payments.0.tendered_cents"
    # a cashier's discount is limited (20 %); the server says which field
    over = sale(cfg, [{**line, "discount": {"percent_bp": 2500, "reason": "Asiakas"}}])
    r = await web.post(url, content=json.dumps(over), headers=headers(cfg))
    assert r.status_code == 403 and r.json()["code"] == "discount_over_limit"
    assert r.json()["field"] == "lines.0.discount"
    # the till's total differs from the core's: 409 with the new figures
    stale = sale(cfg, [line], expected_total_cents=900)
    r = await web.post(url, content=json.dumps(stale), headers=headers(cfg))
    assert r.status_code == 409 and r.json()["code"] == "price_changed"
    assert r.json()["quote"]["total_cents"] == 1000
    # another store's till
    r = await web.post("/pos/store-2/api/sales", content=json.dumps(good), headers=headers(cfg))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await web.post("/pos/nowhere/api/sales", content=json.dumps(good), headers=headers(cfg))
    assert r.status_code == 404
    # nothing of the refused attempts was sold: the good one still sells (201)
    r = await web.post(url, content=json.dumps(good), headers=headers(cfg))
    assert r.status_code == 201, r.text


async def test_voids_of_a_cancelled_sale(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1250], stock={shop.store1: 5})
    cfg = await till(web, shop, db)
    body = {"key": uuid.uuid4().hex, "session_id": cfg["sessionId"], "voids": [
        {"variant_id": v["id"], "quantity": 2, "amount_cents": 2500, "reason": ""}]}
    r = await web.post("/pos/store-1/api/voids", content=json.dumps(body), headers=headers(cfg))
    assert r.status_code == 200 and r.json() == {"recorded": 1}
    r = await web.post("/pos/store-1/api/voids", content=json.dumps(body), headers=headers(cfg))
    assert r.status_code == 200 and r.json() == {"recorded": 0}
    r = await web.post("/pos/store-1/api/voids", content=json.dumps({**body, "voids": []}),
                       headers=headers(cfg))
    assert r.status_code == 422 and r.json()["field"] == "voids"
    r = await web.post("/pos/store-1/api/voids", content=json.dumps(body))
    assert r.status_code == 403
    async with db.reader() as s:
        rows = (await s.scalars(select(SaleVoid).where(SaleVoid.variant_id == v["id"]))).all()
    assert [(x.quantity, x.amount_cents, x.order_id) for x in rows] == [(2, 2500, None)]
