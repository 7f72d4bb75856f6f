"""/api/v1/staff and /api/v1/audit (both databases): the owner invites a person, changes
their roles per location, disables and enables them, sends a reset link and creates and
revokes their API tokens — each a change the back office's staff page makes, audited the
same way; a manager may only list; strict input; cursor pages."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from tests.support import Shop
from tests.test_staff_admin import new_person


def _email() -> str:
    return f"api-{uuid.uuid4().hex[:10]}@test.example"


async def test_owner_invites_changes_roles_disables_and_the_audit_log_tells(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    owner = shop.auth("owner")
    email = _email()
    r = await client.post("/api/v1/staff", headers=owner, json={
        "email": email, "name": "  Api  Person ",
        "grants": [{"role": "cashier", "location": "store-1"}], "lang": "en"})
    assert r.status_code == 201, r.text
    person = r.json()
    assert r.headers["Location"] == f"/api/v1/staff/{person['id']}"
    assert person["name"] == "Api Person" and person["state"] == "invited"
    assert [(g["role"], g["location"]) for g in person["grants"]] == [("cashier", "store-1")]
    async with db.reader() as s:
        mails = (await s.scalars(select(OutgoingMail).where(OutgoingMail.to_addr == email))).all()
    assert [m.kind for m in mails] == ["staff_invite"]

    # The same e-mail again: 409 staff_exists.
    r = await client.post("/api/v1/staff", headers=owner, json={
        "email": email.upper(), "name": "Twin", "grants": [{"role": "cashier"}]})
    assert r.status_code == 409 and r.json()["code"] == "staff_exists", r.text

    sid = person["id"]
    r = await client.post(f"/api/v1/staff/{sid}/grants", headers=owner,
                          json={"role": "manager", "location": "store-2"})
    assert r.status_code == 201, r.text
    grants = {(g["role"], g["location"]): g["id"] for g in r.json()["grants"]}
    assert set(grants) == {("cashier", "store-1"), ("manager", "store-2")}
    r = await client.post(f"/api/v1/staff/{sid}/grants", headers=owner,
                          json={"role": "manager", "location": "store-2"})
    assert r.status_code == 409 and r.json()["code"] == "grant_exists"
    r = await client.delete(f"/api/v1/staff/{sid}/grants/{grants[('cashier', 'store-1')]}",
                            headers=owner)
    assert r.status_code == 200, r.text
    assert [(g["role"], g["location"]) for g in r.json()["grants"]] == [("manager", "store-2")]

    r = await client.post(f"/api/v1/staff/{sid}/disable", headers=owner)
    assert r.status_code == 200 and r.json()["state"] == "disabled", r.text
    assert r.json()["disabled_by"].startswith("staff:")
    r = await client.post(f"/api/v1/staff/{sid}/password-reset", headers=owner)
    assert r.status_code == 409 and r.json()["code"] == "staff_disabled"
    r = await client.post(f"/api/v1/staff/{sid}/enable", headers=owner)
    assert r.status_code == 200 and r.json()["state"] == "invited"
    r = await client.post(f"/api/v1/staff/{sid}/password-reset", headers=owner,
                          json={"lang": "fi"})
    assert r.status_code == 202, r.text

    # The audit log, filtered to this person, newest first, in pages of two.
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, str | int] = {"subject_type": "staff", "subject_id": sid,
                                        "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/api/v1/audit", headers=owner, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [e["action"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["staff.invite", "staff.enable", "staff.disable", "staff.roles",
                    "staff.roles", "staff.invite"]
    r = await client.get("/api/v1/audit", headers=owner,
                         params={"action": "staff.", "subject_id": sid,
                                 "subject_type": "staff", "limit": 1})
    assert [e["action"] for e in r.json()["items"]] == ["staff.invite"]
    assert r.json()["items"][0]["data"] == {"email": email, "resent": True}
    r = await client.get("/api/v1/audit", headers=owner, params={"cursor": "bm9wZQ"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    r = await client.get("/api/v1/audit", headers=owner,
                         params={"from": "2026-05-02", "to": "2026-05-01"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_period"
    # finance reads the log; a manager does not.
    assert (await client.get("/api/v1/audit", headers=shop.auth("finance"))).status_code == 200
    r = await client.get("/api/v1/audit", headers=shop.auth("manager"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def test_tokens_are_shown_once_work_and_stop_when_revoked(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    owner = shop.auth("owner")
    sid, _, _ = await new_person(db, [("cashier", shop.store1)])
    r = await client.post(f"/api/v1/staff/{sid}/tokens", headers=owner,
                          json={"name": "label printer"})
    assert r.status_code == 201, r.text
    assert r.headers["Cache-Control"] == "no-store"
    new = r.json()
    bearer = {"Authorization": f"Bearer {new['token']}"}
    assert (await client.get(f"/api/v1/variants/{1}/availability",
                             headers=bearer)).status_code in (200, 404)
    r = await client.get(f"/api/v1/staff/{sid}/tokens", headers=owner, params={"limit": 1})
    page = r.json()
    assert [t["name"] for t in page["items"]] == ["label printer"]
    assert "token" not in page["items"][0] and page["next_cursor"] is not None
    r = await client.get(f"/api/v1/staff/{sid}/tokens", headers=owner,
                         params={"cursor": page["next_cursor"]})
    assert [t["name"] for t in r.json()["items"]] == ["test token"]
    assert r.json()["next_cursor"] is None

    r = await client.delete(f"/api/v1/staff/{sid}/tokens/{new['id']}", headers=owner)
    assert r.status_code == 204, r.text
    r = await client.get("/api/v1/orders?limit=1", headers=bearer)
    assert r.status_code == 401, r.text
    r = await client.delete(f"/api/v1/staff/{sid + 1_000_000}/tokens/{new['id']}",
                            headers=owner)
    assert r.status_code == 404 and r.json()["code"] == "token_not_found"


async def test_who_may_do_what_and_strict_input(client: httpx.AsyncClient, db: Database,
                                                shop: Shop) -> None:
    owner = shop.auth("owner")
    sid, _, _ = await new_person(db, [("cashier", shop.store2)])
    # A manager lists and reads, and changes nothing.
    manager = shop.auth("manager1")
    assert (await client.get(f"/api/v1/staff/{sid}", headers=manager)).status_code == 200
    for method, url, body in [
        ("POST", "/api/v1/staff", {"email": _email(), "name": "X",
                                   "grants": [{"role": "cashier"}]}),
        ("POST", f"/api/v1/staff/{sid}/grants", {"role": "owner"}),
        ("POST", f"/api/v1/staff/{sid}/disable", None),
        ("POST", f"/api/v1/staff/{sid}/tokens", {"name": "x"}),
    ]:
        r = await client.request(method, url, headers=manager, json=body)
        assert r.status_code == 403, (url, r.text)
    r = await client.get("/api/v1/staff", headers=shop.auth("cashier1"))
    assert r.status_code == 403
    assert (await client.get("/api/v1/staff")).status_code == 401

    # Blank names (no-break and em spaces too), unknown fields, wrong types: 422.
    for body in [
        {"email": _email(), "name": "\u00a0\u2003 ", "grants": [{"role": "cashier"}]},
        {"email": _email(), "name": "A", "grants": []},
        {"email": _email(), "name": "A", "grants": [{"role": "king"}]},
        {"email": _email(), "name": "A", "grants": [{"role": "cashier"}], "admin": True},
        {"email": _email(), "name": "A" * 201, "grants": [{"role": "cashier"}]},
    ]:
        r = await client.post("/api/v1/staff", headers=owner, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.post("/api/v1/staff", headers=owner, json={
        "email": "not-an-address", "name": "A",
        "grants": [{"role": "cashier", "location": "nowhere"}]})
    assert r.status_code == 422 and r.json()["code"] == "location_not_found"
    r = await client.post("/api/v1/staff", headers=owner, json={
        "email": "not-an-address", "name": "A", "grants": [{"role": "cashier"}]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_email"
    assert r.json()["errors"] == [{"code": "invalid_email", "field": "email",
                                   "detail": "enter a valid e-mail address"}]
    r = await client.post(f"/api/v1/staff/{sid}/tokens", headers=owner, json={"name": " "})
    assert r.status_code == 422
    me = await client.get("/api/v1/staff", headers=owner, params={"limit": 200})
    owner_id = next(p["id"] for p in me.json()["items"] if p["email"] == "owner@test.example")
    r = await client.post(f"/api/v1/staff/{owner_id}/disable", headers=owner)
    assert r.status_code == 403 and r.json()["code"] == "disable_self"
    assert (await client.get("/api/v1/staff/99999999", headers=owner)).status_code == 404


async def test_the_staff_list_pages_by_name(client: httpx.AsyncClient, db: Database,
                                            shop: Shop) -> None:
    owner = shop.auth("owner")
    ids = [(await new_person(db, [("service", None)], name=f"Åke {i:02d}"))[0]
           for i in range(3)]
    got: list[tuple[str, int]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/api/v1/staff", headers=owner, params=params)
        assert r.status_code == 200, r.text
        got += [(p["name"], p["id"]) for p in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(got) == len(set(got))
    assert set(ids) <= {i for _, i in got}
    # In the database's order (its collation), so only the three's own order is certain.
    assert [i for _, i in got if i in ids] == ids
