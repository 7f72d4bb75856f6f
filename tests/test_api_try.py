"""Reservations to try through /api/v1 on both databases: reserve (a name and a phone,
or a customer of the register), every field error at once, the last unit and the
limit as 409, a retried request (Idempotency-Key) never holding a second unit, read by
code, list by store and status in cursor pages scoped to the caller's stores, release
(once), and another store's staff refused."""

from __future__ import annotations

import random
import uuid

import httpx
from sqlalchemy import select

from saumaton.core.actor import SYSTEM
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.inventory.services import availability
from saumaton.mail.models import OutgoingMail
from tests.api_pages import all_pages
from tests.support import Shop, make_variants

API = "/api/v1/try-reservations"


def _phone() -> str:
    return f"040{random.randrange(10**6, 10**7)}"


async def _held(db: Database, variant_id: int, location_id: int) -> int:
    async with db.reader() as s:
        loc = (await availability(s, [variant_id]))[variant_id].at(location_id)
    assert loc is not None
    return loc.reserved


async def test_reserve_read_list_and_release(client: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 2})
    vid = int(str(v["id"]))
    cashier = shop.auth("cashier1")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"variant_id": vid, "location_id": shop.store1, "name": "Anna Api",
            "phone": _phone(), "email": f"api-{uuid.uuid4().hex[:8]}@example.com",
            "language": "en"}
    r = await client.post(API, json=body, headers={**cashier, **key})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["status"] == "active" and made["code"].startswith("KT")
    assert made["sku"] == v["sku"] and made["location_id"] == shop.store1
    assert r.headers["Location"] == f"{API}/{made['code']}"
    assert await _held(db, vid, shop.store1) == 1
    async with db.reader() as s:  # her code by e-mail, in her language
        mail = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == f"try:{made['code']}"))).one()
    assert mail.to_addr == body["email"] and mail.subject.startswith("Reserved for you")

    # A retry with the same key returns the same reservation and holds nothing more.
    again = await client.post(API, json=body, headers={**cashier, **key})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == made["id"]
    assert await _held(db, vid, shop.store1) == 1
    other = await client.post(API, json={**body, "location_id": shop.store2},
                              headers={**shop.auth("owner"), **key})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")

    # Read by code (any case); another store's cashier does not see it.
    r = await client.get(f"{API}/{made['code'].lower()}", headers=cashier)
    assert r.status_code == 200 and r.json()["name"] == "Anna Api"
    r = await client.get(f"{API}/{made['code']}", headers=shop.auth("cashier2"))
    assert (r.status_code, r.json()["code"]) == (404, "try_not_found")
    r = await client.get(f"{API}/KTNOSUCH", headers=cashier)
    assert r.status_code == 404

    # Release: once; the unit is back on the shelf.
    r = await client.post(f"{API}/{made['code']}/release", headers=shop.auth("cashier2"))
    assert r.status_code == 404
    r = await client.post(f"{API}/{made['code']}/release", headers=cashier)
    assert r.status_code == 200 and r.json()["status"] == "released"
    assert r.json()["closed_at"] is not None
    assert await _held(db, vid, shop.store1) == 0
    r = await client.post(f"{API}/{made['code']}/release", headers=cashier)
    assert (r.status_code, r.json()["code"]) == (409, "try_closed")

    # Listed by store and status, newest first, in pages; scoped to the caller's stores.
    for _ in range(2):
        r = await client.post(API, json={**body, "phone": _phone(), "email": ""},
                              headers=cashier)
        assert r.status_code == 201
    every, pages = await all_pages(client, API, cashier, limit=1,
                                   params={"location_id": shop.store1, "status": "active"})
    ids = [x["id"] for x in every]
    assert pages >= 2 and ids == sorted(ids, reverse=True)
    assert {x["status"] for x in every} == {"active"} and made["id"] not in ids
    released, _ = await all_pages(client, API, cashier, limit=50,
                                  params={"location_id": shop.store1, "status": "released"})
    assert made["id"] in [x["id"] for x in released]
    r = await client.get(API, headers=shop.auth("cashier2"),
                         params={"location_id": shop.store1})
    assert r.status_code == 403
    theirs, _ = await all_pages(client, API, shop.auth("cashier2"), limit=200)
    assert all(x["location_id"] == shop.store2 for x in theirs)
    assert not {made["id"], *ids} & {x["id"] for x in theirs}


async def test_bad_input_the_last_unit_and_the_limit(client: httpx.AsyncClient,
                                                     db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.store1: 1, shop.store2: 5})
    vid = int(str(v["id"]))
    cashier = shop.auth("cashier1")
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.store1,
                                     "name": "", "phone": "12", "email": "x@"},
                          headers=cashier)
    assert r.status_code == 422
    assert {(e["field"], e["code"]) for e in r.json()["errors"]} == {
        ("name", "name_required"), ("phone", "invalid_phone"), ("email", "invalid_email")}
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.store1,
                                     "name": "X", "phone": _phone(), "extra": 1},
                          headers=cashier)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.warehouse,
                                     "name": "X", "phone": _phone()},
                          headers=shop.auth("owner"))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_store")
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.store2,
                                     "name": "X", "phone": _phone()}, headers=cashier)
    assert r.status_code == 403  # not her store
    assert await _held(db, vid, shop.store1) == 0

    # A customer of the register: her name from the register; the last unit held.
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name="Reija",
                                                          last_name="Rekisteri"))
        await uow.commit()
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.store1,
                                     "customer_id": c.id}, headers=cashier)
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["customer_id"]) == ("Reija Rekisteri", c.id)
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.store1,
                                     "name": "Toinen", "phone": _phone()}, headers=cashier)
    assert (r.status_code, r.json()["code"]) == (409, "try_unavailable")
    assert await _held(db, vid, shop.store1) == 1

    # The limit per shopper (3 by default), counted by her phone number.
    phone = _phone()
    for _ in range(3):
        r = await client.post(API, json={"variant_id": vid, "location_id": shop.store2,
                                         "name": "Moni", "phone": phone},
                              headers=shop.auth("cashier2"))
        assert r.status_code == 201, r.text
    r = await client.post(API, json={"variant_id": vid, "location_id": shop.store2,
                                     "name": "Moni", "phone": phone},
                          headers=shop.auth("cashier2"))
    assert (r.status_code, r.json()["code"]) == (409, "try_limit")
    assert await _held(db, vid, shop.store2) == 3
