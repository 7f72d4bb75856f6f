"""Every error is application/problem+json with a status, a stable code and a detail;
no input produces a 500 (bad JSON, huge numbers, NUL bytes, unknown fields, fuzz)."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saumaton.db.uow import Database
from saumaton.inventory.services import verify_ledger
from tests.support import Shop, make_variants, new_ean

PROBLEM = "application/problem+json"
HUGE = 99999999999999999999


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.request.method, r.request.url, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = dict(r.json())
    assert body["status"] == status
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["type"] == f"/problems/{body['code']}"
    if code is not None:
        assert body["code"] == code, body
    return body


async def test_malformed_json_is_400_and_a_wrong_shape_422(client: httpx.AsyncClient,
                                                           shop: Shop) -> None:
    # docs/api.md: a body that is not JSON (or not UTF-8) is 400 malformed_json; JSON
    # with wrong values, or no body where one is needed, is 422 validation_error
    for url in ("/api/v1/orders", "/api/v1/customers", "/api/v1/products",
                "/api/v1/stock/receipts", "/api/v1/campaigns"):
        for raw in (b"{", b"{'channel': 'web'}", b"\xff\xfe", b"[1, 2,]"):
            r = await client.post(url, content=raw, headers={
                **shop.auth("owner"), "Content-Type": "application/json"})
            assert_problem(r, 400, "malformed_json")
        r = await client.post(url, content=b"", headers={
            **shop.auth("owner"), "Content-Type": "application/json"})
        assert_problem(r, 422, "validation_error")
        # valid JSON of the wrong shape
        for body in ([], "text", 42, None, {"lines": "all"}):
            r = await client.post(url, json=body, headers=shop.auth("owner"))
            assert_problem(r, 422, "validation_error")


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient, shop: Shop) -> None:
    assert_problem(await client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_problem(await client.post("/api/v1/orders/1/refund", json={},
                                     headers=shop.auth("owner")), 404, "not_found")
    assert_problem(await client.delete("/api/v1/products"), 405, "method_not_allowed")
    r = await client.patch("/api/v1/variants/1/price", json={"price_cents": 1},
                           headers=shop.auth("owner"))
    assert_problem(r, 405, "method_not_allowed")
    assert "PUT" in r.headers["allow"]


async def test_huge_and_out_of_range_ids_are_422(client: httpx.AsyncClient, db: Database,
                                                 shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 3, shop.warehouse: 3})
    owner = shop.auth("owner")
    for url in (f"/api/v1/products/{HUGE}", f"/api/v1/variants/{HUGE}",
                f"/api/v1/variants/{HUGE}/price", f"/api/v1/variants/{HUGE}/availability",
                f"/api/v1/orders/{HUGE}", f"/api/v1/customers/{HUGE}",
                f"/api/v1/variants/{2**31}", f"/api/v1/products/{2**40}",
                f"/api/v1/stock/movements?variant_id={2**31}",
                f"/api/v1/orders?before_id={HUGE}", "/api/v1/products/-1",
                "/api/v1/products/0", "/api/v1/products/1.5", "/api/v1/variants/abc"):
        assert_problem(await client.get(url, headers=owner), 422, "validation_error")
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/orders", {"channel": "web", "lines": [{"variant_id": HUGE}]}),
        ("/api/v1/orders", {"channel": "web", "lines": [{"variant_id": 2**31}]}),
        ("/api/v1/orders", {"channel": "web", "location_id": 2**31,
                            "lines": [{"variant_id": v["id"]}]}),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": v["id"]}],
                            "payments": [{"method": "cash", "tendered_cents": 2**40}]}),
        ("/api/v1/orders", {"channel": "web", "customer_id": HUGE,
                            "lines": [{"variant_id": v["id"]}]}),
        ("/api/v1/orders", {"channel": "web", "location_id": HUGE,
                            "lines": [{"variant_id": v["id"]}]}),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": v["id"]}],
                            "payments": [{"method": "cash", "tendered_cents": HUGE}]}),
        ("/api/v1/stock/receipts", {"variant_id": HUGE, "location_id": shop.store1,
                                    "quantity": 1}),
        ("/api/v1/stock/receipts", {"variant_id": 2**31, "location_id": shop.store1,
                                    "quantity": 1}),
        ("/api/v1/stock/receipts", {"variant_id": v["id"], "location_id": shop.store1,
                                    "quantity": HUGE}),
        ("/api/v1/stock/transfers", {"variant_id": v["id"], "from_location_id": shop.store1,
                                     "to_location_id": 2**33, "quantity": 1}),
        ("/api/v1/products", {"slug": f"h-{uuid.uuid4().hex[:8]}", "name": "h",
                              "variants": [{"sku": f"H-{uuid.uuid4().hex}", "price_cents":
                                            HUGE}]}),
        ("/api/v1/campaigns", {"name": "h", "kind": "fixed", "value": HUGE,
                               "starts_at": "2026-01-01T00:00:00Z", "variant_ids": [v["id"]]}),
        ("/api/v1/campaigns", {"name": "h", "kind": "fixed", "value": 10,
                               "starts_at": "2026-01-01T00:00:00Z", "variant_ids": [HUGE]}),
        ("/api/v1/campaigns", {"name": "h", "kind": "fixed", "value": 10,
                               "starts_at": "2026-01-01T00:00:00Z", "product_ids": [2**31]}),
    ]
    for url, body in bodies:
        r = await client.post(url, json=body, headers=owner)
        assert 400 <= r.status_code < 500, (url, body, r.text)
        assert_problem(r, 422)
    r = await client.put(f"/api/v1/variants/{v['id']}/price", json={"price_cents": HUGE},
                         headers=owner)
    assert_problem(r, 422, "validation_error")
    assert (await client.get(f"/api/v1/variants/{v['id']}")).json()["price_cents"] == 1000


async def test_nul_bytes_are_refused_not_crashed_on(client: httpx.AsyncClient, db: Database,
                                                    shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 3})
    owner = shop.auth("owner")
    tag = uuid.uuid4().hex[:8]

    def product(**over: Any) -> dict[str, Any]:
        variant = {"sku": f"NUL-{tag}", "price_cents": 100, **over.pop("variant", {})}
        return {"slug": f"nul-{tag}", "name": "Nul", "variants": [variant], **over}

    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/products", product(name="Bad\u0000Name")),
        ("/api/v1/products", product(variant={"sku": "SKU\u0000"})),
        ("/api/v1/products", product(brand="\u0000")),
        ("/api/v1/products", product(vat_class="standard\u0000")),
        ("/api/v1/products", product(category_slug="c\u0000")),
        ("/api/v1/products", product(variant={"attributes": {"shade\u0000": "01"}})),
        ("/api/v1/products", product(variant={"attributes": {"shade": "0\u00001"}})),
        ("/api/v1/products", product(variant={"ean": "\u00006409876000017"})),
        ("/api/v1/customers", {"first_name": "Nul\u0000"}),
        ("/api/v1/customers", {"email": "a\u0000@example.com"}),
        ("/api/v1/customers", {"phone": "040\u00001234567"}),
        ("/api/v1/customers", {"card": "123456\u00007"}),
        ("/api/v1/stock/adjustments", {"variant_id": v["id"], "location_id": shop.store1,
                                       "quantity": 1, "reason": "found\u0000"}),
        ("/api/v1/stock/receipts", {"variant_id": v["id"], "location_id": shop.store1,
                                    "quantity": 1, "reference": "\u0000"}),
        ("/api/v1/campaigns", {"name": "\u0000", "kind": "fixed", "value": 1,
                               "starts_at": "2026-01-01T00:00:00Z", "variant_ids": [v["id"]]}),
        ("/api/v1/campaigns", {"name": "c", "kind": "fixed", "value": 1,
                               "starts_at": "2026-01-01T00:00:00Z", "variant_ids": [v["id"]],
                               "channel_codes": ["web\u0000"]}),
        ("/api/v1/orders", {"channel": "web\u0000", "lines": [{"variant_id": v["id"]}]}),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"ean": "640987\u00006000017"}]}),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": v["id"]}],
                            "payments": [{"method": "cash", "reference": "r\u0000"}]}),
    ]
    for url, body in bodies:
        r = await client.post(url, json=body, headers=owner)
        assert 400 <= r.status_code < 500, (url, body, r.text)
        assert_problem(r, r.status_code)
    for url in ("/api/v1/products?q=%00", "/api/v1/products?q=a%00b",
                "/api/v1/products?category=%00", "/api/v1/variants?code=%00",
                f"/api/v1/variants/{v['id']}/price?channel=web%00",
                "/api/v1/customers/lookup?q=%00", "/api/v1/customers/lookup?q=040%001234567"):
        r = await client.get(url, headers=owner)
        assert 400 <= r.status_code < 500, (url, r.text)
        assert_problem(r, r.status_code)
    # a filter no order matches: 422 (PostgreSQL refuses NUL) or no orders, never a 500
    r = await client.get("/api/v1/orders?channel=web%00", headers=owner)
    if r.status_code == 200:
        assert r.json()["items"] == []
    else:
        assert_problem(r, 422, "invalid_value")
    # nothing was sold or stored by any of them
    [line] = (await client.get(f"/api/v1/stock/movements?variant_id={v['id']}",
                               headers=owner)).json()["items"]
    assert line["kind"] == "receipt"
    r = await client.get("/api/v1/products", params={"q": f"nul-{tag}"})
    assert r.json()["total"] == 0


async def test_negative_quantities_and_unknown_fields_are_422(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 3})
    owner = shop.auth("owner")
    vid = v["id"]
    bodies: list[tuple[str, dict[str, Any], str]] = [
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid, "quantity": -1}]},
         "lines.0.quantity"),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid, "quantity": 0}]},
         "lines.0.quantity"),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid}],
                            "payments": [{"method": "cash", "amount_cents": -100}]},
         "payments.0.amount_cents"),
        ("/api/v1/stock/receipts", {"variant_id": vid, "location_id": shop.store1,
                                    "quantity": -3}, "quantity"),
        ("/api/v1/stock/transfers", {"variant_id": vid, "from_location_id": shop.store1,
                                     "to_location_id": shop.store2, "quantity": -1},
         "quantity"),
        ("/api/v1/stock/counts", {"variant_id": vid, "location_id": shop.store1,
                                  "counted": -2}, "counted"),
        ("/api/v1/products", {"slug": "neg", "name": "n", "variants": [
            {"sku": "NEG-1", "price_cents": -1}]}, "variants.0.price_cents"),
        # unknown fields
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid}],
                            "discount_cents": 500}, "discount_cents"),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid,
                                                           "price_cents": 1}]},
         "lines.0.price_cents"),
        ("/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid}],
                            "payments": [{"method": "cash", "bonus": 1}]},
         "payments.0.bonus"),
        ("/api/v1/customers", {"first_name": "X", "is_admin": True}, "is_admin"),
        ("/api/v1/stock/receipts", {"variant_id": vid, "location_id": shop.store1,
                                    "quantity": 1, "balance_after": 99}, "balance_after"),
        ("/api/v1/products", {"slug": "x", "name": "x", "price": 1, "variants": [
            {"sku": "X", "price_cents": 1}]}, "price"),
    ]
    for url, body, field in bodies:
        r = await client.post(url, json=body, headers=owner)
        problem = assert_problem(r, 422, "validation_error")
        assert problem["field"] == field, (url, body, problem)
        assert problem["errors"] and problem["detail"].startswith(field)
    r = await client.put(f"/api/v1/variants/{vid}/price", headers=owner,
                         json={"price_cents": 100, "channel": "web"})
    assert_problem(r, 422, "validation_error")
    [receipt] = (await client.get(f"/api/v1/stock/movements?variant_id={vid}",
                                  headers=owner)).json()["items"]
    assert receipt["kind"] == "receipt"


# --- fuzz: random JSON bodies never produce a 5xx ---------------------------------

_NASTY_TEXT = st.sampled_from(["", " ", "\u0000", "a\u0000b", "'; DROP TABLE orders; --",
                               "ä" * 300, "😀", "\ud7ff", "%", "_", "\\", "web", "pos-1",
                               "cash", "card", "standard", "food", "2026-01-01T00:00:00Z",
                               "2026-01-01T00:00:00", "0001-01-01T00:00:00+05:00",
                               "6409876000017", "640987600001", "040 123 4567",
                               "a@b.fi", "NaN"])
_NASTY_INT = st.one_of(st.integers(min_value=-3, max_value=5),
                       st.sampled_from([2**31 - 1, 2**31, 2**53, 2**62, 2**63, 2**64, -2**63,
                                        HUGE, 10**30]),
                       st.integers())
_SCALAR = st.one_of(st.none(), st.booleans(), _NASTY_INT,
                    st.floats(allow_nan=False, allow_infinity=False), _NASTY_TEXT, st.text())
_JSON = st.recursive(_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
_VALUE = st.one_of(_SCALAR, _JSON)


def _shaped(template: dict[str, Any], nested: dict[str, dict[str, Any]]) -> Any:
    """Bodies that look like the real thing with some values replaced by nasty ones."""
    def one(tmpl: dict[str, Any]) -> Any:
        keys = [*tmpl, "extra"]
        return st.dictionaries(st.sampled_from(keys), _VALUE, max_size=2).map(
            lambda changes: {**tmpl, **changes})

    parts = {key: st.lists(one(sub), min_size=1, max_size=3) for key, sub in nested.items()}
    return st.fixed_dictionaries(parts).flatmap(
        lambda subs: one({**template, **subs}))


_TAG = uuid.uuid4().hex[:8]
_PHONE = f"040 {random.randrange(10**7):07d}"
_ORDER = _shaped({"channel": "pos-1", "location_id": 1, "customer_id": None},
                 {"lines": {"variant_id": 1, "quantity": 1},
                  "payments": {"method": "cash", "tendered_cents": 5000}})
_CUSTOMER = _shaped({"first_name": "A", "email": f"fuzz-{_TAG}@example.fi", "phone": _PHONE,
                     "issue_card": True}, {})
_PRODUCT = _shaped({"slug": f"fuzz-{_TAG}", "name": "Fuzz", "vat_class": "standard"},
                   {"variants": {"sku": f"FUZZ-{_TAG}", "ean": new_ean(), "price_cents": 100,
                                 "attributes": {}}})
_RECEIPT = _shaped({"variant_id": 1, "location_id": 1, "quantity": 1, "reason": ""}, {})
_TARGETS = st.sampled_from([("/api/v1/orders", _ORDER), ("/api/v1/customers", _CUSTOMER),
                            ("/api/v1/products", _PRODUCT),
                            ("/api/v1/stock/receipts", _RECEIPT)])


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, Any]:
    url, shaped = draw(_TARGETS)
    body = draw(st.one_of(shaped, shaped, _JSON))
    return url, body


@settings(max_examples=240, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(req=_requests())
async def test_fuzzed_bodies_never_give_a_server_error(
    client: httpx.AsyncClient, shop: Shop, req: tuple[str, Any]
) -> None:
    url, body = req
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    r = await client.post(url, content=raw, headers={
        **shop.auth("owner"), "Content-Type": "application/json"})
    assert r.status_code < 500, (url, body, r.text)
    if r.status_code >= 400:
        assert_problem(r, r.status_code)


async def test_ledger_is_intact_after_the_fuzzing(db: Database, shop: Shop) -> None:
    async with db.reader() as s:
        assert await verify_ledger(s) == []


async def test_event_stream_parameters_are_bounded(client: httpx.AsyncClient) -> None:
    for query in ("variant_id=0", "variant_id=99999999999999", "variant_id=abc",
                  "&".join(f"variant_id={i}" for i in range(1, 202))):
        r = await client.get(f"/api/v1/events?{query}")
        assert r.status_code == 422, (query, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/api/v1/events", headers={"Last-Event-ID": "-1"})
    assert r.status_code == 422
