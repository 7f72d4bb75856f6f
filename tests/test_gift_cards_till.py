"""Gift cards at the till through its JSON endpoints on both databases: a card sold at
the till prints its code on the receipt, is spent partly at the other store, then looked
up and taken as payment at the till; a spent or unknown card gets a clear 409 / 404.

(The store-2 till page stays closed: other till tests rely on it.)"""

from __future__ import annotations

import json
import re

import httpx

from saumaton.db.uow import Database
from saumaton.giftcards import ledger
from tests.support import Shop, make_variants
from tests.test_till_api import headers, sale, till


async def test_card_sold_at_one_store_is_spent_at_the_other(
    web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [gc] = await make_variants(db, [5000], gift_card=True)
    [lip] = await make_variants(db, [3000], stock={shop.store1: 5, shop.store2: 5})
    cfg = await till(web, shop, db)
    snapshot = (await web.get("/pos/store-1/api/catalogue")).json()["variants"]
    flags = {v["id"]: v.get("gift_card", False) for v in snapshot}
    assert flags[gc["id"]] is True and flags[lip["id"]] is False  # sold online only
    r = await web.post("/pos/store-1/api/sales", headers=headers(cfg), content=json.dumps(
        sale(cfg, [{"variant_id": gc["id"]}],
             payments=[{"method": "card", "terminal_confirmed": True}])))
    assert r.status_code == 201, r.text
    receipt = await web.get(r.json()["receipt_url"], headers={"HX-Request": "true"})
    m = re.search(r'data-testid="gift-card-code">([\d ]+)<', receipt.text)
    assert m, receipt.text
    code = m[1].replace(" ", "")
    assert ledger.clean_code(code) == code and "<svg" in receipt.text

    # spent partly at the other store (its sale through the API), then at this till
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier2"), json={
        "channel": "pos-2", "lines": [{"variant_id": lip["id"]}],
        "payments": [{"method": "gift_card", "code": m[1], "amount_cents": 2000},
                     {"method": "cash"}]})
    assert r.status_code == 201, r.text
    r = await web.get(f"/pos/store-1/api/gift-cards/{m[1]}")
    assert r.status_code == 200, r.text
    assert (r.json()["usable_cents"], r.json()["status"]) == (3000, "active")
    body = sale(cfg, [{"variant_id": lip["id"]}], payments=[
        {"method": "gift_card", "code": code, "amount_cents": 2500}, {"method": "cash"}])
    r = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                       content=json.dumps(body))
    assert r.status_code == 201, r.text
    pay = r.json()["order"]["payments"][0]
    assert pay["method"] == "gift_card" and pay["reference"] == "•••• " + code[-4:]
    receipt = await web.get(r.json()["receipt_url"], headers={"HX-Request": "true"})
    assert 'data-testid="gift-card-paid"' in receipt.text and code not in receipt.text
    r = await web.get(f"/pos/store-1/api/gift-cards/{code}")
    assert r.json()["balance_cents"] == 500

    body = sale(cfg, [{"variant_id": lip["id"]}], payments=[
        {"method": "gift_card", "code": code, "amount_cents": 600}, {"method": "cash"}])
    r = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                       content=json.dumps(body))
    assert r.status_code == 409
    assert (r.json()["code"], r.json()["field"]) == ("insufficient_gift_card_balance",
                                                     "payments.0.amount_cents")
    assert r.json()["balance_cents"] == 500
    r = await web.get(f"/pos/store-1/api/gift-cards/{ledger.new_code()}")
    assert r.status_code == 404 and r.json()["code"] == "gift_card_not_found"
