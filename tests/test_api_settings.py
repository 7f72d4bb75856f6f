"""/api/v1/settings (both databases): the owner reads every business setting with its
default and limits, changes some (money in cents, a store's return window) — audited,
applied at once like the back office's settings page — and puts one back to its
default; every bad value is refused at once and nothing changes; strict types; only the
owner."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.db.uow import Database
from tests.support import Shop
from tests.test_settings import live_of, restore  # noqa: F401  (a fixture)

# Every setting back to its default afterwards: the database is the session's.
pytestmark = pytest.mark.usefixtures("restore")


def _values(body: dict[str, object]) -> dict[str, object]:
    rows = body["settings"]
    assert isinstance(rows, list)
    return {r["key"]: r["value"] for r in rows}


async def test_owner_reads_changes_and_resets_settings(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    owner = shop.auth("owner")
    r = await client.get("/api/v1/settings", headers=owner)
    assert r.status_code == 200, r.text
    before = r.json()
    fee = next(s for s in before["settings"] if s["key"] == "home_delivery_fee_cents")
    assert fee["kind"] == "money" and fee["minimum"] == 0 and fee["maximum"] == 100_000
    assert {st["location"] for st in before["stores"]} >= {"store-1", "store-2"}

    r = await client.patch("/api/v1/settings", headers=owner, json={
        "home_delivery_fee_cents": 745, "business_name": " Api\u00a0 Shop ",
        "store_return_days": [{"location": "store-2", "return_days": 45}]})
    assert r.status_code == 200, r.text
    after = r.json()
    values = _values(after)
    assert values["home_delivery_fee_cents"] == 745 and values["business_name"] == "Api Shop"
    assert [st["return_days"] for st in after["stores"] if st["location"] == "store-2"] == [45]
    fee = next(s for s in after["settings"] if s["key"] == "home_delivery_fee_cents")
    assert fee["overridden"] and fee["updated_by"].startswith("staff:")
    # The shop uses it at once (what the checkout reads).
    assert live_of(client).current.home_delivery_fee_cents == 745
    async with db.reader() as s:
        audit = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "settings.change").order_by(AuditEntry.id.desc())
            .limit(3))).all()
    assert {(a.data["key"], a.data["new"]) for a in audit} == {
        ("home_delivery_fee_cents", 745), ("business_name", "Api Shop"), ("return_days", 45)}

    # Every problem at once, nothing changed.
    r = await client.patch("/api/v1/settings", headers=owner, json={
        "home_delivery_fee_cents": 500, "business_id": "1234567-2",
        "loyalty_silver_from_cents": 50_000, "loyalty_gold_from_cents": 10_000})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "invalid_settings"
    assert problem["errors"] == [
        {"code": "invalid_business_id", "field": "business_id", "limit": None},
        {"code": "gold_below_silver", "field": "loyalty_gold_from_cents", "limit": 50_000}]
    got = _values((await client.get("/api/v1/settings", headers=owner)).json())
    assert got["home_delivery_fee_cents"] == 745

    r = await client.delete("/api/v1/settings/home_delivery_fee_cents", headers=owner)
    assert r.status_code == 204
    got = _values((await client.get("/api/v1/settings", headers=owner)).json())
    assert got["home_delivery_fee_cents"] == fee["default"]
    r = await client.delete("/api/v1/settings/no_such_setting", headers=owner)
    assert r.status_code == 404 and r.json()["code"] == "setting_not_found"


async def test_strict_types_and_only_the_owner(client: httpx.AsyncClient, shop: Shop,
                                               ) -> None:
    owner = shop.auth("owner")
    for body in [
        {"home_delivery_fee_cents": False},
        {"home_delivery_fee_cents": "500"},
        {"home_delivery_fee_cents": 5.5},
        {"home_delivery_fee_cents": 100_001},
        {"pickup_hold_days": None},
        {"business_name": "\u2003"},
        {"business_name": "x" * 201},
        {"no_such_setting": 1},
        {"store_return_days": [{"location": "store-1", "return_days": 0}]},
    ]:
        r = await client.patch("/api/v1/settings", headers=owner, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.patch("/api/v1/settings", headers=owner, json={
        "store_return_days": [{"location": "nowhere", "return_days": 30}]})
    assert r.status_code == 422 and r.json()["code"] == "location_not_found"
    # An unchanged value is no change.
    r = await client.patch("/api/v1/settings", headers=owner, json={})
    assert r.status_code == 200
    for who in ("manager", "finance", "cashier1"):
        r = await client.get("/api/v1/settings", headers=shop.auth(who))
        assert r.status_code == 403, who
        r = await client.patch("/api/v1/settings", headers=shop.auth(who),
                               json={"pickup_hold_days": 5})
        assert r.status_code == 403, who
    assert (await client.get("/api/v1/settings")).status_code == 401
