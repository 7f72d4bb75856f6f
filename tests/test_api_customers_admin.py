"""/api/v1 customers, the back office's part (both databases): the register a page at a
time and by tag, a search, the card, name and preference changes, e-mails and phones,
the loyalty card, consents, tags, notes, and merging two customers with its undo — each
through the customers services, audited as the pages are; strict input; who may."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.db.uow import Database
from tests.support import Shop
from tests.test_duplicates import new_email, new_phone, plain_customer
from tests.test_preference_fields import new_field


async def test_the_register_pages_by_id_and_by_tag_and_searches(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    tag = f"api {uuid.uuid4().hex[:8]}"
    people = [await plain_customer(db, "Reija", f"Rekisteri{i}", email=new_email())
              for i in range(3)]
    owner = shop.auth("owner")
    for p in people:
        r = await client.post(f"/api/v1/customers/{p.id}/tags", headers=owner,
                              json={"tag": tag.upper()})
        assert r.status_code == 201 and r.json() == [tag], r.text
    got: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"tag": tag, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/api/v1/customers", headers=shop.auth("cashier1"),
                             params=params)
        assert r.status_code == 200, r.text
        got += [c["id"] for c in r.json()["items"]]
        assert all(c["tags"] == [tag] and c["matched_by"] == "tag"
                   for c in r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert got == [p.id for p in people]
    # The whole register by id: a page after the first of ours starts with the second.
    first = (await client.get("/api/v1/customers", headers=owner, params={"limit": 1})).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    r = await client.get("/api/v1/customers", headers=owner,
                         params={"q": people[1].email or "", "limit": 5})
    assert [c["id"] for c in r.json()["items"]] == [people[1].id]
    assert r.json()["items"][0]["matched_by"] == "email"
    tags = (await client.get("/api/v1/customer-tags", headers=owner,
                             params={"limit": 200})).json()
    assert {"tag": tag, "customers": 3} in tags["items"]
    for params in ({"q": " "}, {"q": "a", "tag": "b"}, {"tag": "!!"}, {"limit": 0},
                   {"cursor": "zz"}):
        r = await client.get("/api/v1/customers", headers=owner, params=params)
        assert r.status_code == 422, (params, r.text)
    assert (await client.get("/api/v1/customers")).status_code == 401


async def test_card_changes_consents_tags_and_notes(client: httpx.AsyncClient,
                                                    db: Database, shop: Shop) -> None:
    c = await plain_customer(db, "Kaisa", "Kortti", email=new_email())
    key = await new_field(db)
    cashier = shop.auth("cashier1")
    r = await client.patch(f"/api/v1/customers/{c.id}", headers=cashier, json={
        "first_name": " Kaisa\u00a0 Maria ", "preferences": {key: "2N"}})
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["first_name"] == "Kaisa Maria" and card["last_name"] == "Kortti"
    assert card["preferences"] == {key: "2N"}
    # Blank on both sides is refused and changes nothing.
    r = await client.patch(f"/api/v1/customers/{c.id}", headers=cashier,
                           json={"first_name": "\u2003", "last_name": " "})
    assert r.status_code == 422 and r.json()["code"] == "name_required", r.text
    r = await client.patch(f"/api/v1/customers/{c.id}", headers=cashier,
                           json={"preferences": {"no-such-field": "x"}})
    assert r.status_code == 422
    for body in ({"first_name": None}, {"nick": "x"}, {"first_name": 5},
                 {"last_name": "x" * 101}):
        r = await client.patch(f"/api/v1/customers/{c.id}", headers=cashier, json=body)
        assert r.status_code == 422, (body, r.text)

    typed, e164 = new_phone()
    r = await client.post(f"/api/v1/customers/{c.id}/identities", headers=cashier,
                          json={"kind": "phone", "value": typed})
    assert r.status_code == 201, r.text
    phone = [i for i in r.json()["identities"] if i["kind"] == "phone"]
    assert [i["value"] for i in phone] == [e164]
    other = await plain_customer(db, "Toinen", "Asiakas", email=new_email())
    r = await client.post(f"/api/v1/customers/{other.id}/identities", headers=cashier,
                          json={"kind": "phone", "value": typed})
    assert r.status_code == 409 and r.json()["code"] == "identity_taken", r.text
    r = await client.delete(f"/api/v1/customers/{c.id}/identities/{phone[0]['id']}",
                            headers=cashier)
    assert r.status_code == 200
    assert not [i for i in r.json()["identities"] if i["kind"] == "phone"]
    r = await client.post(f"/api/v1/customers/{c.id}/loyalty-card", headers=cashier)
    assert r.status_code == 201 and r.json()["points"] == 0, r.text
    r = await client.post(f"/api/v1/customers/{c.id}/loyalty-card", headers=cashier)
    assert r.status_code == 409 and r.json()["code"] == "card_exists"

    r = await client.put(f"/api/v1/customers/{c.id}/consents", headers=cashier,
                         json={"marketing_email": True, "marketing_sms": False})
    assert r.status_code == 200, r.text
    assert {x["kind"]: x["granted"] for x in r.json()["consents"]} == {
        "marketing_email": True, "marketing_sms": False}
    r = await client.put(f"/api/v1/customers/{c.id}/consents", headers=cashier,
                         json={"marketing_email": "yes", "marketing_sms": 0})
    assert r.status_code == 422

    r = await client.post(f"/api/v1/customers/{c.id}/tags", headers=cashier,
                          json={"tag": "  Herkkä   Iho "})
    assert r.json() == ["herkkä iho"]
    r = await client.delete(f"/api/v1/customers/{c.id}/tags/HERKKÄ IHO", headers=cashier)
    assert r.status_code == 200 and r.json() == []
    r = await client.post(f"/api/v1/customers/{c.id}/tags", headers=cashier,
                          json={"tag": "<script>"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_tag"

    for text in ("first", "second", "third"):
        r = await client.post(f"/api/v1/customers/{c.id}/notes", headers=cashier,
                              json={"body": text})
        assert r.status_code == 201 and r.json()["author"] == "Cashier1", r.text
    page = (await client.get(f"/api/v1/customers/{c.id}/notes", headers=cashier,
                             params={"limit": 2})).json()
    rest = (await client.get(f"/api/v1/customers/{c.id}/notes", headers=cashier,
                             params={"cursor": page["next_cursor"]})).json()
    assert [n["body"] for n in page["items"] + rest["items"]] == ["third", "second", "first"]
    r = await client.post(f"/api/v1/customers/{c.id}/notes", headers=cashier,
                          json={"body": "   "})
    assert r.status_code == 422
    async with db.reader() as s:
        actions = set((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "customer", AuditEntry.subject_id == c.id))).all())
    assert {"customer.tag_add", "customer.tag_remove"} <= actions

    # finance reads and changes nothing; unknown customers are 404.
    assert (await client.get(f"/api/v1/customers/{c.id}/card",
                             headers=shop.auth("finance"))).status_code == 200
    r = await client.post(f"/api/v1/customers/{c.id}/notes", headers=shop.auth("finance"),
                          json={"body": "x"})
    assert r.status_code == 403
    r = await client.get("/api/v1/customers/999999999/card", headers=cashier)
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"


async def test_merge_and_undo(client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    kept = await plain_customer(db, "Maija", "Yhdiste", email=new_email())
    merged = await plain_customer(db, "Maija", "Yhdiste", email=new_email())
    manager = shop.auth("manager")
    r = await client.get("/api/v1/customer-merges/preview", headers=manager,
                         params={"kept_id": kept.id, "merged_id": merged.id})
    assert r.status_code == 200 and r.json()["blocked"] is None, r.text
    r = await client.post("/api/v1/customer-merges", headers=manager,
                          json={"kept_id": kept.id, "merged_id": merged.id})
    assert r.status_code == 201, r.text
    m = r.json()
    assert r.headers["Location"] == f"/api/v1/customer-merges/{m['id']}"
    assert (m["kept_id"], m["merged_id"], m["can_undo"]) == (kept.id, merged.id, True)
    card = (await client.get(f"/api/v1/customers/{kept.id}/card", headers=manager)).json()
    assert {merged.email, kept.email} <= {i["value"] for i in card["identities"]}
    r = await client.post(f"/api/v1/customer-merges/{m['id']}/undo", headers=manager)
    assert r.status_code == 200 and r.json()["undone_at"] is not None, r.text
    r = await client.post(f"/api/v1/customer-merges/{m['id']}/undo", headers=manager)
    assert r.status_code == 409, r.text
    r = await client.post("/api/v1/customer-merges", headers=manager,
                          json={"kept_id": kept.id, "merged_id": kept.id})
    assert r.status_code in (409, 422), r.text
    r = await client.post("/api/v1/customer-merges", headers=manager,
                          json={"kept_id": str(kept.id), "merged_id": merged.id})
    assert r.status_code == 422
    # Merging is for a manager of every store.
    for who in ("manager1", "cashier1"):
        r = await client.post("/api/v1/customer-merges", headers=shop.auth(who),
                              json={"kept_id": kept.id, "merged_id": merged.id})
        assert r.status_code == 403, who
        r = await client.get("/api/v1/customer-duplicates", headers=shop.auth(who))
        assert r.status_code == 403, who
    r = await client.get("/api/v1/customer-duplicates", headers=manager,
                         params={"limit": 5})
    assert r.status_code == 200 and len(r.json()["items"]) <= 5


async def test_preference_fields(client: httpx.AsyncClient, shop: Shop) -> None:
    key = f"api_{uuid.uuid4().hex[:8]}"
    manager = shop.auth("manager")
    r = await client.post("/api/v1/customer-fields", headers=manager, json={
        "key": key, "label": "  Skin\u00a0 type ", "kind": "choice",
        "options": ["dry", "oily"]})
    assert r.status_code == 201, r.text
    assert r.json() | {"position": 0} == {"key": key, "label": "Skin type", "kind": "choice",
                                          "options": ["dry", "oily"], "position": 0,
                                          "active": True}
    r = await client.post("/api/v1/customer-fields", headers=manager,
                          json={"key": key, "label": "Again"})
    assert r.status_code == 409 and r.json()["code"] == "duplicate_field"
    r = await client.patch(f"/api/v1/customer-fields/{key}", headers=manager,
                           json={"options": ["dry", "oily", "mixed"], "active": False})
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    listed = (await client.get("/api/v1/customer-fields", headers=shop.auth("cashier1"),
                               params={"include_inactive": "true", "limit": 200})).json()
    [mine] = [f for f in listed["items"] if f["key"] == key]
    assert mine["options"] == ["dry", "oily", "mixed"]
    active = (await client.get("/api/v1/customer-fields", headers=manager,
                               params={"limit": 200})).json()
    assert key not in {f["key"] for f in active["items"]}
    for body in ({"key": f"{key}x", "label": "\u2003"}, {"key": f"{key}y", "label": "X",
                                                         "kind": "colour"},
                 {"key": f"{key}z", "label": "X", "position": "1"}):
        r = await client.post("/api/v1/customer-fields", headers=manager, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.patch("/api/v1/customer-fields/no_such_field", headers=manager,
                           json={"label": "X"})
    assert r.status_code == 404 and r.json()["code"] == "field_not_found"
    for who in ("manager1", "cashier1"):
        r = await client.post("/api/v1/customer-fields", headers=shop.auth(who),
                              json={"key": f"{key}w", "label": "X"})
        assert r.status_code == 403, who
