"""The API is strict and says what it does (issue 14): JSON types are not converted
(F4), blank names are refused (F5), malformed bodies answer 400 and wrong values 422
(F6), OPTIONS and a wrong method name every method of the path (F6), an Idempotency-Key
replay checks the caller first (F3), every list pages with a cursor, and the OpenAPI
document describes errors, auth and unique operationIds."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from saumaton.db.uow import Database
from saumaton.web.route_access import ApiPermission, Public
from tests.support import Shop, make_variants


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


@pytest.mark.parametrize("bad", [False, True, "100", 1.5, None])
async def test_a_price_is_only_a_json_integer(client: httpx.AsyncClient, db: Database,
                                              shop: Shop, bad: Any) -> None:
    [v] = await make_variants(db, [1234])
    r = await client.put(f"/api/v1/variants/{v['id']}/price", headers=shop.auth(),
                         json={"price_cents": bad})
    assert_problem(r, 422, "validation_error")
    assert (await client.get(f"/api/v1/variants/{v['id']}")).json()["price_cents"] == 1234


async def test_an_order_takes_no_true_for_a_variant_nor_text_for_a_quantity(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [500], stock={shop.warehouse: 5})
    for line in ({"variant_id": True}, {"variant_id": v["id"], "quantity": "5"},
                 {"variant_id": v["id"], "quantity": True}):
        r = await client.post("/api/v1/orders", headers=shop.auth(),
                              json={"channel": "web", "lines": [line]})
        body = assert_problem(r, 422, "validation_error")
        assert body["field"].startswith("lines.0."), body
    ok = await client.post("/api/v1/orders", headers=shop.auth(),
                           json={"channel": "web", "lines": [{"variant_id": v["id"],
                                                              "quantity": 5}]})
    assert ok.status_code == 201, ok.text


async def test_a_campaign_takes_no_true_in_its_variants(client: httpx.AsyncClient,
                                                       shop: Shop) -> None:
    r = await client.post("/api/v1/campaigns", headers=shop.auth(), json={
        "name": "x", "kind": "percent", "value": 1000, "starts_at": "2030-01-01T00:00:00Z",
        "variant_ids": [True]})
    body = assert_problem(r, 422, "validation_error")
    assert body["field"] == "variant_ids.0"


@pytest.mark.parametrize("blank", ["   ", "\u00a0\u00a0", "\u2003", "\u200b", "\u3000 "])
async def test_a_customer_of_blank_names_and_no_contact_is_refused(
        client: httpx.AsyncClient, shop: Shop, blank: str) -> None:
    r = await client.post("/api/v1/customers", headers=shop.auth(),
                          json={"first_name": blank, "last_name": blank})
    assert_problem(r, 422, "customer_empty")
    r = await client.post("/api/v1/customers", headers=shop.auth(),
                          json={"first_name": blank, "email": blank})
    assert 400 <= r.status_code < 500, r.text
    r = await client.post("/api/v1/customers", headers=shop.auth(),
                          json={"first_name": f"{blank}Aino{blank}", "last_name": blank})
    assert r.status_code == 201, r.text
    assert (r.json()["first_name"], r.json()["last_name"]) == ("Aino", "")


@pytest.mark.parametrize("field", ["name"])
async def test_a_product_of_a_blank_name_is_refused(client: httpx.AsyncClient, shop: Shop,
                                                    field: str) -> None:
    r = await client.post("/api/v1/products", headers=shop.auth(), json={
        "slug": f"p-{uuid.uuid4().hex[:8]}", field: "\u00a0\u2003",
        "variants": [{"sku": uuid.uuid4().hex[:10], "price_cents": 100}]})
    assert assert_problem(r, 422, "validation_error")["field"] == field


async def test_a_huge_attribute_value_is_refused(client: httpx.AsyncClient, shop: Shop
                                                 ) -> None:
    r = await client.post("/api/v1/products", headers=shop.auth(), json={
        "slug": f"p-{uuid.uuid4().hex[:8]}", "name": "Huulipuna",
        "variants": [{"sku": uuid.uuid4().hex[:10], "price_cents": 100,
                      "attributes": {"shade": "x" * 1_000_000}}]})
    assert assert_problem(r, 422, "validation_error")["field"] == \
        "variants.0.attributes.shade"


async def test_malformed_json_is_400_and_wrong_values_422(client: httpx.AsyncClient,
                                                         shop: Shop) -> None:
    h = {**shop.auth(), "Content-Type": "application/json"}
    for raw in (b'{"name": ', b"{'a': 1}", b'{"first_name": "\xff\xfe"}', b"\xff"):
        r = await client.post("/api/v1/customers", headers=h, content=raw)
        assert_problem(r, 400, "malformed_json")
    r = await client.post("/api/v1/customers", headers=h, content=b'{"first_name": 5}')
    assert_problem(r, 422, "validation_error")


async def test_options_and_a_wrong_method_name_every_method_of_the_path(
        client: httpx.AsyncClient, shop: Shop) -> None:
    for path, methods in (("/api/v1/products", "GET, OPTIONS, POST"),
                          ("/api/v1/products/1", "GET, OPTIONS, PATCH"),
                          ("/api/v1/variants/1/price", "GET, OPTIONS, PUT"),
                          ("/api/v1/orders", "GET, OPTIONS, POST")):
        r = await client.options(path)
        assert r.status_code == 204 and r.headers["allow"] == methods, (path, r.headers)
        r = await client.delete(path, headers=shop.auth())
        assert_problem(r, 405, "method_not_allowed")
        assert r.headers["allow"] == methods
    assert (await client.options("/api/v1/nothing-here")).status_code == 404


async def test_a_replayed_key_does_not_hand_another_stores_order_over(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [700], stock={shop.store1: 5})
    key = str(uuid.uuid4())
    body = {"channel": "pos-1", "lines": [{"variant_id": v["id"]}],
            "payments": [{"method": "cash"}]}
    first = await client.post("/api/v1/orders", json=body,
                              headers={**shop.auth("owner"), "Idempotency-Key": key})
    assert first.status_code == 201, first.text
    direct = await client.get(f"/api/v1/orders/{first.json()['id']}",
                              headers=shop.auth("cashier2"))
    assert_problem(direct, 403, "forbidden")
    replay = await client.post("/api/v1/orders", json=body,
                               headers={**shop.auth("cashier2"), "Idempotency-Key": key})
    body403 = assert_problem(replay, 403, "forbidden")
    # The order's id as a number of its own (id 3 is not the "3" of "403").
    assert not re.search(rf"\b{first.json()['id']}\b", json.dumps(
        {k: v for k, v in replay.json().items() if k != "status"})), body403
    # store 1's cashier may: the replay is the same order, sold once
    mine = await client.post("/api/v1/orders", json=body,
                             headers={**shop.auth("cashier1"), "Idempotency-Key": key})
    assert mine.status_code == 200 and mine.json()["id"] == first.json()["id"]


async def test_a_replayed_stock_key_checks_the_location_first(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [700])
    key = str(uuid.uuid4())
    body = {"variant_id": v["id"], "location_id": shop.store1, "quantity": 3}
    first = await client.post("/api/v1/stock/receipts", json=body,
                              headers={**shop.auth("owner"), "Idempotency-Key": key})
    assert first.status_code == 201, first.text
    other = await client.post("/api/v1/stock/receipts", json=body,
                              headers={**shop.auth("manager1"), "Idempotency-Key": key})
    assert other.status_code == 200  # store 1's manager may receive there
    body2 = {**body, "location_id": shop.store2}
    key2 = str(uuid.uuid4())
    assert (await client.post("/api/v1/stock/receipts", json=body2, headers={
        **shop.auth("owner"), "Idempotency-Key": key2})).status_code == 201
    assert_problem(await client.post("/api/v1/stock/receipts", json=body2, headers={
        **shop.auth("manager1"), "Idempotency-Key": key2}), 403, "forbidden")


async def test_lists_page_with_a_cursor(client: httpx.AsyncClient, db: Database,
                                        shop: Shop) -> None:
    [v] = await make_variants(db, [100], stock={shop.warehouse: 10})
    made = []
    for _ in range(5):
        r = await client.post("/api/v1/orders", headers=shop.auth(),
                              json={"channel": "web", "lines": [{"variant_id": v["id"]}]})
        made.append(r.json()["id"])
    seen: list[int] = []
    cursor = None
    while len(seen) < 5:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/orders", headers=shop.auth(), params=params)).json()
        assert set(page) == {"items", "next_cursor"} and len(page["items"]) <= 2
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        assert cursor
    assert seen[:5] == sorted(made, reverse=True)
    assert_problem(await client.get("/api/v1/orders", headers=shop.auth(),
                                    params={"cursor": "bm9wZQ"}), 422, "invalid_cursor")
    for path in ("/api/v1/products", "/api/v1/campaigns", "/api/v1/price-changes",
                 "/api/v1/stock/transfers", "/api/v1/stock/movements", "/api/v1/locations",
                 "/api/v1/channels", f"/api/v1/variants/{v['id']}/price-history"):
        page = (await client.get(path, headers=shop.auth(), params={"limit": 1})).json()
        assert {"items", "next_cursor"} <= set(page), path
        if page["next_cursor"]:
            nxt = await client.get(path, headers=shop.auth(),
                                   params={"limit": 1, "cursor": page["next_cursor"]})
            assert nxt.status_code == 200 and nxt.json()["items"] != page["items"], path


def test_every_api_route_declares_who_may_call_it() -> None:
    from saumaton.web.app import create_app
    app = create_app()
    missing = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not (ctx.path or "").startswith(("/api",
                                                                               "/healthz")):
            continue
        calls = [d.call for d in route.dependant.dependencies]
        if not any(isinstance(c, ApiPermission | Public) for c in calls):
            missing.append(ctx.path)
    assert not missing, f"API routes without api_requires/public: {missing}"


def test_the_openapi_document_describes_errors_and_auth() -> None:
    from saumaton.web.app import create_app
    doc = create_app().openapi()
    assert set(doc["components"]["schemas"]["Problem"]["properties"]) >= {
        "type", "title", "status", "code", "detail", "field", "errors"}
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": pytest.approx(
            doc["components"]["securitySchemes"]["bearerAuth"]["description"])}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    problem = {"application/problem+json": {"schema": {
        "$ref": "#/components/schemas/Problem"}}}
    create = doc["paths"]["/api/v1/orders"]["post"]
    assert create["operationId"] == "create_order"
    assert create["security"] == [{"bearerAuth": []}]
    for code in ("400", "401", "403", "409", "422"):
        assert create["responses"][code]["content"] == problem, code
    product = doc["paths"]["/api/v1/products/{product_id}"]["get"]
    assert "security" not in product and product["responses"]["404"]["content"] == problem
    for ops in doc["paths"].values():
        for op in ops.values():
            for code, resp in op["responses"].items():
                if code.startswith("4"):
                    assert resp["content"] == problem, (op["operationId"], code)
