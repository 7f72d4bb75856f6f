"""Operations: the health check, the OpenAPI document and the self-hosted API docs."""

from __future__ import annotations

import re

import httpx
from alembic.script import ScriptDirectory

from saumaton.db.migrate import alembic_config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    [head] = script.get_heads()
    return str(head)


async def test_healthz_reports_the_database_and_its_schema(
    client: httpx.AsyncClient, backend: str
) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["version"]
    assert body["database"] == {"status": "ok", "dialect": backend,
                                "revision": head_revision()}


async def test_openapi_document_lists_the_api(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "Saumaton API"
    paths = doc["paths"]
    expected = {
        "/api/v1/products": {"get", "post"},
        "/api/v1/products/{product_id}": {"get"},
        "/api/v1/variants": {"get"},
        "/api/v1/variants/{variant_id}": {"get"},
        "/api/v1/variants/{variant_id}/price": {"get", "put"},
        "/api/v1/variants/{variant_id}/availability": {"get"},
        "/api/v1/campaigns": {"get", "post"},
        "/api/v1/locations": {"get"},
        "/api/v1/channels": {"get"},
        "/api/v1/orders": {"get", "post"},
        "/api/v1/orders/{order_id}": {"get"},
        "/api/v1/customers": {"post"},
        "/api/v1/customers/lookup": {"get"},
        "/api/v1/customers/{customer_id}": {"get"},
        "/api/v1/stock/receipts": {"post"},
        "/api/v1/stock/adjustments": {"post"},
        "/api/v1/stock/counts": {"post"},
        "/api/v1/stock/transfers": {"get", "post"},
        "/api/v1/stock/movements": {"get"},
        "/api/v1/events": {"get"},
        "/healthz": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    # the idempotency header of order creation is documented
    params = paths["/api/v1/orders"]["post"]["parameters"]
    assert any(p["name"].lower() == "idempotency-key" and p["in"] == "header" for p in params)
    # ids are bounded so that no id can overflow a database column
    [pid] = paths["/api/v1/products/{product_id}"]["get"]["parameters"]
    assert pid["schema"]["maximum"] == 2**31 - 1
    assert "/api/docs" not in paths


async def test_api_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "/static/vendor/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui.css" in html
    assert "/api/v1/openapi.json" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["'](https?:)?//""", html)
    assert external == [], "the docs page must load nothing from another host"
    assert "cdn" not in html.lower()
    # the validator badge would make the browser call validator.swagger.io
    assert "/static/js/swagger-init.js" in html  # no inline script (CSP)
    init = await client.get("/static/js/swagger-init.js")
    assert init.status_code == 200 and "validatorUrl: null" in init.text
    for asset, kind in (("/static/vendor/swagger-ui-bundle.js", "javascript"),
                        ("/static/vendor/swagger-ui.css", "css")):
        a = await client.get(asset)
        assert a.status_code == 200, asset
        assert kind in a.headers["content-type"]
        assert len(a.content) > 10_000
