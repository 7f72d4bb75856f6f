"""/api/v1 segments (both databases): preview a rule set, save, read, change, delete,
export as CSV (consenting members; the full list on request) and to webhooks; bad input
gets problem+json with every error and changes nothing; only the owner may."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from saumaton.customers.models import Segment
from saumaton.db.uow import Database
from tests.support import Shop
from tests.test_segments import new_customer, new_tag


async def test_segments_through_the_api(client: httpx.AsyncClient, db: Database,
                                        shop: Shop) -> None:
    tag = new_tag()
    yes = await new_customer(db, tag, consent=True, first="Aino")
    no = await new_customer(db, tag, first="Bea")
    owner = shop.auth("owner")
    rules = {"tags": [tag]}
    r = await client.post("/api/v1/segments/preview", headers=owner,
                          json={"rules": rules, "limit": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["count"], r.json()["marketing_count"]) == (2, 1)
    assert [m["customer_id"] for m in r.json()["preview"]] == [yes]

    r = await client.post("/api/v1/segments", headers=owner,
                          json={"name": f"API {tag}", "rules": rules})
    assert r.status_code == 201, r.text
    seg = r.json()
    assert (seg["count"], seg["marketing_count"], seg["campaign_ids"]) == (2, 1, [])
    assert seg["rules"]["tags"] == [tag] and seg["rules"]["consent"] == "any"
    sid = seg["id"]
    assert (await client.get(f"/api/v1/segments/{sid}", headers=owner)).json()["count"] == 2
    assert sid in [s["id"] for s in (await client.get("/api/v1/segments",
                                                      headers=owner)).json()]

    r = await client.get(f"/api/v1/segments/{sid}/export.csv", headers=owner)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeffcustomer_id;") and len(text.splitlines()) == 2
    full = (await client.get(f"/api/v1/segments/{sid}/export.csv", headers=owner,
                             params={"full": "true"})).text
    assert {line.split(";")[0] for line in full.splitlines()[1:]} == {str(yes), str(no)}
    r = await client.post(f"/api/v1/segments/{sid}/webhook", headers=owner)
    assert r.status_code == 202 and r.json()["members"] == 1 and r.json()["parts"] == 1

    r = await client.put(f"/api/v1/segments/{sid}", headers=owner, json={
        "name": f"API {tag}", "rules": {**rules, "consent": "granted"}})
    assert r.status_code == 200 and r.json()["count"] == 1

    # Bad input: every error at once, problem+json, nothing saved.
    async with db.reader() as s:
        before = await s.scalar(select(func.count()).select_from(Segment))
    r = await client.post("/api/v1/segments", headers=owner, json={
        "name": "", "rules": {"tiers": ["platinum"], "last_purchase": {"op": "before"},
                              "tags": ["!!"]}})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(r.json().get("errors", [])) >= 4, r.text
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Segment)) == before
    r = await client.post("/api/v1/segments", headers=owner,
                          json={"name": f"api {tag}".upper(), "rules": rules})
    assert r.status_code == 409 and r.json()["code"] == "duplicate_segment"
    assert (await client.get("/api/v1/segments/999999", headers=owner)).status_code == 404

    # Only the owner: a manager, a cashier and nobody are refused.
    for who in ("manager", "cashier1"):
        r = await client.get("/api/v1/segments", headers=shop.auth(who))
        assert r.status_code == 403, who
        r = await client.post("/api/v1/segments/preview", headers=shop.auth(who), json={})
        assert r.status_code == 403, who
    assert (await client.get("/api/v1/segments")).status_code == 401

    assert (await client.delete(f"/api/v1/segments/{sid}", headers=owner)).status_code == 204
    assert (await client.get(f"/api/v1/segments/{sid}", headers=owner)).status_code == 404
