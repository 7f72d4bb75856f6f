"""Catalogue through the API: products and variants, EAN checks, duplicates, search,
lookups by code, and the one price that every channel charges."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from stdnum import ean as stdnum_ean

from saumaton.db.uow import Database
from tests.support import Shop, make_variants, new_ean

PROBLEM = "application/problem+json"


def product_body(tag: str | None = None, *, variants: int = 2, **over: Any) -> dict[str, Any]:
    tag = tag or uuid.uuid4().hex[:10]
    body: dict[str, Any] = {
        "slug": f"cat-{tag}", "name": f"Silk Serum {tag}", "brand": f"Brand{tag}",
        "description": "A serum.",
        "variants": [{"sku": f"CAT-{tag}-{i}", "ean": new_ean(), "name": f"{30 * (i + 1)} ml",
                      "attributes": {"size": f"{30 * (i + 1)} ml"}, "price_cents": 1990 + i}
                     for i in range(variants)],
    }
    body.update(over)
    return body


def bad_check_digit(ean: str) -> str:
    return ean[:-1] + str((int(ean[-1]) + 1) % 10)


async def search(client: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/products", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_create_product_with_variants_and_read_it_back(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    body = product_body()
    body["variants"][1]["ean"] = None  # a variant without a barcode is fine
    r = await client.post("/api/v1/products", json=body, headers=shop.auth("manager"))
    assert r.status_code == 201, r.text
    product = r.json()
    assert product["slug"] == body["slug"] and product["vat_class"] == "standard"
    assert product["active"] is True
    assert [v["sku"] for v in product["variants"]] == [v["sku"] for v in body["variants"]]
    v0, v1 = product["variants"]
    assert v0["ean"] == body["variants"][0]["ean"] and v1["ean"] is None
    assert v0["attributes"] == {"size": "30 ml"} and v0["price_cents"] == 1990
    assert v0["product_id"] == product["id"]

    got = await client.get(f"/api/v1/products/{product['id']}")
    assert got.status_code == 200 and got.json() == product
    variant = await client.get(f"/api/v1/variants/{v1['id']}")
    assert variant.status_code == 200 and variant.json() == v1
    by_ean = await client.get("/api/v1/variants", params={"code": v0["ean"]})
    assert by_ean.status_code == 200 and by_ean.json()["id"] == v0["id"]
    by_sku = await client.get("/api/v1/variants", params={"code": f"  {v1['sku']} "})
    assert by_sku.status_code == 200 and by_sku.json()["id"] == v1["id"]


async def test_unknown_ids_and_codes_are_404(client: httpx.AsyncClient) -> None:
    for url, code in (("/api/v1/products/2147483000", "product_not_found"),
                      ("/api/v1/variants/2147483000", "variant_not_found"),
                      ("/api/v1/variants?code=NO-SUCH-CODE-x1", "unknown_code")):
        r = await client.get(url)
        assert r.status_code == 404, (url, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == code


async def test_ean_with_a_wrong_check_digit_is_refused_and_nothing_is_created(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    body = product_body()
    body["variants"][1]["ean"] = bad_check_digit(body["variants"][1]["ean"])
    r = await client.post("/api/v1/products", json=body, headers=shop.auth("owner"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["code"] == "invalid_ean" and problem["field"] == "variants.1.ean"
    assert problem["status"] == 422 and body["variants"][1]["ean"] in problem["detail"]
    assert (await search(client, body["name"]))["total"] == 0
    # UPC-A (12) and GTIN-14 with right check digits are accepted; letters are not
    body = product_body(variants=3)
    upc_body = new_ean()[1:12]
    gtin_body = "1" + new_ean()[:12]
    body["variants"][0]["ean"] = upc_body + stdnum_ean.calc_check_digit(upc_body)
    body["variants"][1]["ean"] = gtin_body + stdnum_ean.calc_check_digit(gtin_body)
    r = await client.post("/api/v1/products", json=body, headers=shop.auth("owner"))
    assert r.status_code == 201, r.text
    assert [len(v["ean"]) for v in r.json()["variants"]] == [12, 14, 13]
    body = product_body()
    body["variants"][0]["ean"] = "ABCDEFGHIJKLM"
    r = await client.post("/api/v1/products", json=body, headers=shop.auth("owner"))
    assert r.status_code == 422 and r.json()["code"] == "invalid_ean"


async def test_duplicates_conflict_with_stable_codes(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    first = product_body()
    r = await client.post("/api/v1/products", json=first, headers=shop.auth("owner"))
    assert r.status_code == 201, r.text

    same_slug = product_body(slug=first["slug"])
    r = await client.post("/api/v1/products", json=same_slug, headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_slug"
    assert r.json()["field"] == "slug"

    same_sku = product_body()
    same_sku["variants"][1]["sku"] = first["variants"][0]["sku"]
    r = await client.post("/api/v1/products", json=same_sku, headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_sku"
    assert r.json()["field"] == "variants.1.sku"

    same_ean = product_body()
    same_ean["variants"][0]["ean"] = first["variants"][1]["ean"]
    r = await client.post("/api/v1/products", json=same_ean, headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_ean"
    assert r.json()["field"] == "variants.0.ean"

    # an EAN typed with spaces is the same barcode
    ean = first["variants"][0]["ean"]
    spaced = product_body()
    spaced["variants"][0]["ean"] = f"{ean[:1]} {ean[1:7]} {ean[7:]}"
    r = await client.post("/api/v1/products", json=spaced, headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_ean"

    within = product_body()
    within["variants"][1]["sku"] = within["variants"][0]["sku"]
    r = await client.post("/api/v1/products", json=within, headers=shop.auth("owner"))
    assert r.status_code == 422 and r.json()["code"] == "duplicate_sku"

    # none of the refused products exists
    for body in (same_slug, same_sku, same_ean, spaced, within):
        assert (await search(client, body["name"]))["total"] == 0


async def test_unknown_vat_class_and_category_are_refused(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    r = await client.post("/api/v1/products", json=product_body(vat_class="luxury"),
                          headers=shop.auth("owner"))
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("unknown_vat_class", "vat_class")
    r = await client.post("/api/v1/products", json=product_body(category_slug="no-such-cat"),
                          headers=shop.auth("owner"))
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("unknown_category", "category_slug")


async def test_search_by_name_brand_sku_and_ean(client: httpx.AsyncClient, shop: Shop) -> None:
    tag = uuid.uuid4().hex[:10]
    body = product_body(tag)
    r = await client.post("/api/v1/products", json=body, headers=shop.auth("owner"))
    assert r.status_code == 201
    pid = r.json()["id"]
    for q in (f"serum {tag}".upper(), f"brand{tag}", f"cat-{tag}-1".lower(),
              body["variants"][0]["ean"], tag):
        page = await search(client, q)
        assert [p["id"] for p in page["items"]] == [pid], q
        assert page["total"] == 1
        assert len(page["items"][0]["variants"]) == 2
    # an EAN matches exactly, not as a fragment
    assert (await search(client, body["variants"][0]["ean"][:-1]))["total"] == 0
    # % and _ are literal characters, not wildcards
    assert (await search(client, f"{tag[:4]}%{tag[5:]}"))["total"] == 0
    assert (await search(client, f"{tag[:4]}_{tag[5:]}"))["total"] == 0


async def test_list_paginates_in_name_order(client: httpx.AsyncClient, shop: Shop) -> None:
    brand = f"pg{uuid.uuid4().hex[:10]}"
    names = [f"{brand} {letter}" for letter in "edcba"]
    for name in names:
        r = await client.post("/api/v1/products", json=product_body(name=name, brand=brand),
                              headers=shop.auth("owner"))
        assert r.status_code == 201, r.text
    first = await search(client, brand, limit=2)
    second = await search(client, brand, limit=2, cursor=first["next_cursor"])
    third = await search(client, brand, limit=2, cursor=second["next_cursor"])
    assert first["total"] == second["total"] == third["total"] == 5
    assert third["next_cursor"] is None
    seen = [p["name"] for page in (first, second, third) for p in page["items"]]
    assert seen == sorted(names)
    # the older offset still works
    assert (await search(client, brand, limit=2, offset=2))["items"] == second["items"]
    assert (await search(client, brand, limit=2, offset=6))["items"] == []
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}):
        r = await client.get("/api/v1/products", params=bad)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await client.get("/api/v1/products", params={"cursor": "x"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"


async def test_a_scanned_ean_wins_over_an_equal_sku(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [a] = await make_variants(db, [1000])
    clash = product_body()
    clash["variants"][0]["sku"] = str(a["ean"])  # someone used a barcode as a SKU
    r = await client.post("/api/v1/products", json=clash, headers=shop.auth("owner"))
    assert r.status_code == 201, r.text
    found = await client.get("/api/v1/variants", params={"code": a["ean"]})
    assert found.status_code == 200 and found.json()["id"] == a["id"]


async def test_writes_need_a_catalogue_role(client: httpx.AsyncClient, shop: Shop) -> None:
    body = product_body()
    r = await client.post("/api/v1/products", json=body)
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    for who in ("cashier1", "service", "finance"):
        r = await client.post("/api/v1/products", json=body, headers=shop.auth(who))
        assert r.status_code == 403, who
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "forbidden"
    assert (await search(client, body["name"]))["total"] == 0


async def test_set_price_changes_it_in_every_channel(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1990])
    vid = v["id"]
    r = await client.put(f"/api/v1/variants/{vid}/price", json={"price_cents": 2490},
                         headers=shop.auth("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["price_cents"] == 2490
    quotes = {}
    for channel in ("web", "pos-1", "pos-2", "service", "api"):
        q = await client.get(f"/api/v1/variants/{vid}/price", params={"channel": channel})
        assert q.status_code == 200, q.text
        quotes[channel] = q.json()
        assert quotes[channel]["channel"] == channel
    assert {(q["list_cents"], q["price_cents"], q["discount_cents"])
            for q in quotes.values()} == {(2490, 2490, 0)}
    assert quotes["web"]["vat_rate_bp"] == 2550
    assert (await client.get(f"/api/v1/variants/{vid}")).json()["price_cents"] == 2490
    # a sale in the store charges the new price too
    order = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": vid}], "payments": [{"method": "cash"}]})
    assert order.status_code == 201, order.text
    assert order.json()["lines"][0]["unit_price_cents"] == 2490


async def test_set_price_refusals(client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1990])
    url = f"/api/v1/variants/{v['id']}/price"
    r = await client.put(url, json={"price_cents": 1}, headers=shop.auth("cashier1"))
    assert r.status_code == 403
    r = await client.put(url, json={"price_cents": -1}, headers=shop.auth("owner"))
    assert r.status_code == 422 and r.json()["field"] == "price_cents"
    r = await client.put(url, json={"price_cents": 10, "currency": "EUR"},
                         headers=shop.auth("owner"))
    assert r.status_code == 422
    r = await client.put("/api/v1/variants/2147483000/price", json={"price_cents": 10},
                         headers=shop.auth("owner"))
    assert r.status_code == 404 and r.json()["code"] == "variant_not_found"
    r = await client.get(f"/api/v1/variants/{v['id']}/price", params={"channel": "nope"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_channel"
    assert (await client.get(f"/api/v1/variants/{v['id']}")).json()["price_cents"] == 1990
