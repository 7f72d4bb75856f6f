"""Who may do what: API tokens, public and staff-only reads, roles scoped to locations."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, update

from saumaton.db.uow import Database
from saumaton.staff.models import ApiToken, Staff
from saumaton.staff.services import (
    create_api_token,
    create_staff,
    revoke_api_token,
    revoke_api_token_value,
)
from tests.support import Shop, make_variants

PROBLEM = "application/problem+json"


async def new_staff(db: Database, roles: list[tuple[str, int | None]]) -> tuple[int, str]:
    async with db.uow() as uow:
        staff = await create_staff(uow, f"auth-{uuid.uuid4().hex[:8]}@test.example", "Temp",
                                   "long-enough-pw", roles)
        token = await create_api_token(uow, staff.id, "temp")
        await uow.commit()
    return staff.id, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(r: httpx.Response, code: str) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["code"] == code


async def test_revoked_token_is_refused(client: httpx.AsyncClient, db: Database,
                                        shop: Shop) -> None:
    staff_id, token = await new_staff(db, [("owner", None)])
    async with db.uow() as uow:
        token_id = await uow.session.scalar(select(ApiToken.id).where(
            ApiToken.staff_id == staff_id))
        assert token_id is not None
        await revoke_api_token(uow, token_id)
        await uow.commit()
    r = await client.get("/api/v1/orders", headers=bearer(token))
    assert_401(r, "invalid_token")
    r = await client.post("/api/v1/customers", headers=bearer(token),
                          json={"first_name": "Nobody"})
    assert_401(r, "invalid_token")
    # the token is stored only as a hash: its text is not in the table
    async with db.reader() as s:
        row = (await s.scalars(select(ApiToken).where(ApiToken.id == token_id))).one()
    assert token not in (row.token_hash, row.prefix) and token.startswith(row.prefix)
    assert row.revoked_at is not None


async def test_token_revoked_by_its_value(client: httpx.AsyncClient, db: Database,
                                          shop: Shop) -> None:
    _, token = await new_staff(db, [("owner", None)])
    async with db.uow() as uow:
        assert await revoke_api_token_value(uow, token) is True
        assert await revoke_api_token_value(uow, "sau_not-a-token") is False
        await uow.commit()
    assert_401(await client.get("/api/v1/orders", headers=bearer(token)), "invalid_token")


async def test_disabled_staff_token_is_refused(client: httpx.AsyncClient,
                                               db: Database) -> None:
    staff_id, token = await new_staff(db, [("manager", None)])
    async with db.uow() as uow:
        await uow.session.execute(update(Staff).where(Staff.id == staff_id).values(active=False))
        await uow.commit()
    assert_401(await client.get("/api/v1/orders", headers=bearer(token)), "invalid_token")


async def test_malformed_credentials(client: httpx.AsyncClient, shop: Shop) -> None:
    for header in ("Basic b3duZXI6cHc=", "Bearer", "Bearer   ", "Token abc",
                   f"Bearer {shop.tokens['owner']}x", "Bearer sau_" + "A" * 43):
        r = await client.get("/api/v1/orders", headers={"Authorization": header})
        assert_401(r, "invalid_token")
    assert_401(await client.get("/api/v1/orders"), "not_authenticated")


async def test_staff_reads_need_auth_catalogue_reads_are_public(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 2})
    order = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"]}],
        "payments": [{"method": "cash"}]})
    customer = await client.post("/api/v1/customers", headers=shop.auth("cashier1"),
                                 json={"first_name": "Public?", "issue_card": True})
    oid, cid = order.json()["id"], customer.json()["id"]
    private = ["/api/v1/orders", f"/api/v1/orders/{oid}", f"/api/v1/customers/{cid}",
               f"/api/v1/customers/lookup?q={customer.json()['card']}",
               f"/api/v1/stock/movements?variant_id={v['id']}"]
    for url in private:
        assert_401(await client.get(url), "not_authenticated")
        assert (await client.get(url, headers=shop.auth("owner"))).status_code == 200, url
    public = ["/api/v1/products", f"/api/v1/products/{v['product_id']}",
              f"/api/v1/products?q={v['sku']}", f"/api/v1/variants/{v['id']}",
              f"/api/v1/variants?code={v['ean']}", f"/api/v1/variants/{v['id']}/price",
              f"/api/v1/variants/{v['id']}/price?channel=pos-1",
              f"/api/v1/variants/{v['id']}/availability", "/api/v1/locations",
              "/api/v1/channels"]
    for url in public:
        r = await client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["content-type"].startswith("application/json")
    # public reads do not look at credentials at all
    r = await client.get("/api/v1/products", headers=bearer("sau_nope"))
    assert r.status_code == 200


async def test_owner_can_do_everything(client: httpx.AsyncClient, db: Database,
                                       shop: Shop) -> None:
    owner = shop.auth("owner")
    tag = uuid.uuid4().hex[:8]
    product = await client.post("/api/v1/products", headers=owner, json={
        "slug": f"own-{tag}", "name": f"Owner {tag}", "variants": [
            {"sku": f"OWN-{tag}", "price_cents": 1000}]})
    assert product.status_code == 201, product.text
    vid = product.json()["variants"][0]["id"]
    calls: list[tuple[str, str, dict[str, Any], int]] = [
        ("PUT", f"/api/v1/variants/{vid}/price", {"price_cents": 1200}, 200),
        ("POST", "/api/v1/campaigns", {"name": "o", "kind": "fixed", "value": 100,
                                       "starts_at": "2026-01-01T00:00:00Z",
                                       "ends_at": "2026-01-02T00:00:00Z",
                                       "variant_ids": [vid]}, 201),
        ("POST", "/api/v1/stock/receipts", {"variant_id": vid, "location_id": shop.store2,
                                            "quantity": 5}, 201),
        ("POST", "/api/v1/stock/adjustments", {"variant_id": vid, "location_id": shop.store2,
                                               "quantity": -1, "reason": "sample"}, 201),
        ("POST", "/api/v1/stock/transfers", {"variant_id": vid, "from_location_id": shop.store2,
                                             "to_location_id": shop.store1, "quantity": 1},
         201),
        ("POST", "/api/v1/stock/counts", {"variant_id": vid, "location_id": shop.store1,
                                          "counted": 1}, 201),
        ("POST", "/api/v1/customers", {"first_name": "Owner's friend"}, 201),
        ("POST", "/api/v1/orders", {"channel": "pos-2", "lines": [{"variant_id": vid}],
                                    "payments": [{"method": "cash"}]}, 201),
        ("POST", "/api/v1/orders", {"channel": "pos-1", "lines": [{"variant_id": vid}],
                                    "payments": [{"method": "cash"}]}, 201),
        ("GET", f"/api/v1/stock/movements?variant_id={vid}", {}, 200),
        ("GET", "/api/v1/orders?channel=pos-2", {}, 200),
    ]
    for method, url, body, status in calls:
        r = await client.request(method, url, headers=owner, json=body or None)
        assert r.status_code == status, (method, url, r.text)


async def test_roles_are_scoped_to_locations(client: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 5, shop.store2: 5})
    sale = {"lines": [{"variant_id": v["id"]}], "payments": [{"method": "cash"}]}
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"),
                          json={"channel": "pos-2", **sale})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    # a POS channel sells only at its own store, whoever asks
    r = await client.post("/api/v1/orders", headers=shop.auth("owner"),
                          json={"channel": "pos-1", "location_id": shop.store2, **sale})
    assert r.status_code == 422 and r.json()["code"] == "wrong_location"
    r2 = await client.post("/api/v1/orders", headers=shop.auth("cashier2"),
                           json={"channel": "pos-2", **sale})
    assert r2.status_code == 201
    oid = r2.json()["id"]
    # a cashier reads their own store's orders only
    assert (await client.get(f"/api/v1/orders/{oid}",
                             headers=shop.auth("cashier2"))).status_code == 200
    r = await client.get(f"/api/v1/orders/{oid}", headers=shop.auth("cashier1"))
    assert r.status_code == 403
    r = await client.get("/api/v1/orders", params={"location_id": shop.store2},
                         headers=shop.auth("cashier1"))
    assert r.status_code == 403
    # finance reads everything, sells nothing
    assert (await client.get(f"/api/v1/orders/{oid}",
                             headers=shop.auth("finance"))).status_code == 200
    r = await client.post("/api/v1/orders", headers=shop.auth("finance"),
                          json={"channel": "pos-1", **sale})
    assert r.status_code == 403
    # a web order needs a role that holds everywhere
    web = {"channel": "web", "lines": [{"variant_id": v["id"]}]}
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json=web)
    assert r.status_code == 403
    # a manager of one store: stock there, but not the chain-wide price or catalogue
    _, token = await new_staff(db, [("manager", shop.store1)])
    m1 = bearer(token)
    r = await client.post("/api/v1/stock/receipts", headers=m1, json={
        "variant_id": v["id"], "location_id": shop.store1, "quantity": 1})
    assert r.status_code == 201
    r = await client.post("/api/v1/stock/receipts", headers=m1, json={
        "variant_id": v["id"], "location_id": shop.store2, "quantity": 1})
    assert r.status_code == 403
    r = await client.put(f"/api/v1/variants/{v['id']}/price", headers=m1,
                         json={"price_cents": 1})
    assert r.status_code == 403
    r = await client.post("/api/v1/campaigns", headers=m1, json={
        "name": "mine", "kind": "percent", "value": 9000,
        "starts_at": "2026-01-01T00:00:00Z", "variant_ids": [v["id"]]})
    assert r.status_code == 403
    r = await client.post("/api/v1/products", headers=m1, json={
        "slug": f"m1-{uuid.uuid4().hex[:8]}", "name": "x",
        "variants": [{"sku": f"M1-{uuid.uuid4().hex[:8]}", "price_cents": 1}]})
    assert r.status_code == 403
    assert (await client.get(f"/api/v1/variants/{v['id']}")).json()["price_cents"] == 1000
    # roles add up: cashier in both stores sells in both
    _, token = await new_staff(db, [("cashier", shop.store1), ("cashier", shop.store2)])
    for channel in ("pos-1", "pos-2"):
        r = await client.post("/api/v1/orders", headers=bearer(token),
                              json={"channel": channel, **sale})
        assert r.status_code == 201, channel
