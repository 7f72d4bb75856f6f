"""One customer register: identities normalised, found however they are typed."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest
from stdnum import luhn

from saumaton.core.errors import ValidationFailed
from saumaton.customers.identities import normalise_card, normalise_email, normalise_phone
from saumaton.customers.services import new_card_number
from saumaton.db.uow import Database
from tests.support import Shop, make_variants

PROBLEM = "application/problem+json"
_rng = random.Random()


def mobile() -> tuple[str, str]:
    """A random Finnish mobile number: (as typed nationally, E.164)."""
    digits = f"{_rng.randrange(10**7):07d}"
    return f"040 {digits[:3]} {digits[3:]}", f"+35840{digits}"


def email() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"Maija.Meikalainen.{tag.upper()}@Example.FI", f"maija.meikalainen.{tag}@example.fi"


async def create(client: httpx.AsyncClient, shop: Shop, who: str = "cashier1",
                 **body: Any) -> httpx.Response:
    return await client.post("/api/v1/customers", json=body, headers=shop.auth(who))


async def lookup(client: httpx.AsyncClient, shop: Shop, q: str, who: str = "cashier1",
                 **params: Any) -> httpx.Response:
    return await client.get("/api/v1/customers/lookup", params={"q": q, **params},
                            headers=shop.auth(who))


def test_identities_are_normalised() -> None:
    assert normalise_phone("040 123 4567") == "+358401234567"
    assert normalise_phone("+358 40 123 4567") == "+358401234567"
    assert normalise_phone("00358 40 1234567") == "+358401234567"
    assert normalise_phone("(09) 1234 567") == "+35891234567"
    assert normalise_email("  Anna.Aalto@Example.COM ") == "anna.aalto@example.com"
    assert normalise_card("9123 4567 8901") == "912345678901"
    for bad, fn, code in (("040", normalise_phone, "invalid_phone"),
                          ("not a phone", normalise_phone, "invalid_phone"),
                          ("anna@", normalise_email, "invalid_email"),
                          ("anna example.com", normalise_email, "invalid_email"),
                          ("12345", normalise_card, "invalid_card"),
                          ("12345A789", normalise_card, "invalid_card"),
                          ("²²²²²²", normalise_card, "invalid_card")):
        with pytest.raises(ValidationFailed) as err:
            fn(bad)
        assert err.value.code == code, bad


def test_issued_card_numbers_have_twelve_digits_and_a_luhn_check_digit() -> None:
    cards = {new_card_number() for _ in range(500)}
    assert len(cards) == 500
    for card in cards:
        assert len(card) == 12 and card.isdigit() and luhn.is_valid(card)
        # one mistyped digit is caught
        wrong = card[:5] + str((int(card[5]) + 1) % 10) + card[6:]
        assert not luhn.is_valid(wrong)


async def test_create_normalises_and_lookup_finds_however_typed(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    typed_email, norm_email = email()
    typed_phone, e164 = mobile()
    r = await create(client, shop, first_name=" Maija ", last_name="Meikäläinen",
                     email=typed_email, phone=typed_phone, issue_card=True)
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["first_name"], c["last_name"]) == ("Maija", "Meikäläinen")
    assert c["email"] == norm_email and c["phone"] == e164
    assert len(c["card"]) == 12 and luhn.is_valid(c["card"])
    card = c["card"]
    national = "0" + e164[4:]
    for q in (norm_email.upper(), f"  {typed_email} ", typed_phone, national, e164,
              f"+358 {e164[4:6]} {e164[6:]}", "00" + e164[1:], card,
              f"{card[:4]} {card[4:8]} {card[8:]}"):
        found = await lookup(client, shop, q)
        assert found.status_code == 200, (q, found.text)
        assert found.json() == c, q
    # an explicit kind is honoured
    assert (await lookup(client, shop, national, kind="phone")).json()["id"] == c["id"]
    assert (await lookup(client, shop, card, kind="card")).json()["id"] == c["id"]
    r = await lookup(client, shop, card, kind="phone")
    assert r.status_code in (404, 422)
    got = await client.get(f"/api/v1/customers/{c['id']}", headers=shop.auth("service"))
    assert got.status_code == 200 and got.json() == c


async def test_a_given_card_number_is_kept(client: httpx.AsyncClient, shop: Shop) -> None:
    card = f"{_rng.randrange(10**11, 10**12)}"
    r = await create(client, shop, first_name="Kortti", card=f"{card[:6]} {card[6:]}",
                     issue_card=True)
    assert r.status_code == 201, r.text
    assert r.json()["card"] == card


async def test_lookup_of_unknown_identity_is_404(client: httpx.AsyncClient, shop: Shop) -> None:
    _, e164 = mobile()
    for q in (email()[1], e164, "999999999999"):
        r = await lookup(client, shop, q)
        assert r.status_code == 404, q
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "customer_not_found"
    r = await client.get("/api/v1/customers/999999999", headers=shop.auth("owner"))
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"


async def test_duplicate_identity_conflicts(client: httpx.AsyncClient, shop: Shop) -> None:
    typed_email, norm_email = email()
    typed_phone, e164 = mobile()
    first = await create(client, shop, email=norm_email, phone=e164)
    assert first.status_code == 201
    cid = first.json()["id"]
    # the same e-mail in another case, the same phone in another format
    other_email = email()[1]
    for body, field in (({"email": typed_email}, "email"),
                        ({"email": other_email, "phone": typed_phone}, "phone")):
        r = await create(client, shop, **body)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["code"] == "customer_exists" and problem["field"] == field
        assert problem["customer_id"] == cid
    # the refused customer's new e-mail was not stored either
    assert (await lookup(client, shop, other_email)).status_code == 404
    card = (await create(client, shop, issue_card=True)).json()["card"]
    r = await create(client, shop, first_name="Copy", card=card)
    assert r.status_code == 409 and r.json()["field"] == "card"


async def test_invalid_identities_are_422_with_field(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for body, code, field in (
        ({"email": "not-an-email"}, "invalid_email", "email"),
        ({"email": "a@b"}, "invalid_email", "email"),
        ({"phone": "12"}, "invalid_phone", "phone"),
        ({"phone": "040 123"}, "invalid_phone", "phone"),
        ({"card": "12ab"}, "invalid_card", "card"),
        ({"card": "١٢٣٤٥٦٧"}, "invalid_card", "card"),  # Arabic-Indic digits
        ({}, "customer_empty", None),
        ({"first_name": "A", "vip": True}, "validation_error", "vip"),
        ({"first_name": "x" * 101}, "validation_error", "first_name"),
    ):
        r = await create(client, shop, **body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        problem = r.json()
        assert problem["code"] == code, (body, problem)
        assert problem.get("field") == field, (body, problem)
    r = await lookup(client, shop, "nobody@")
    assert r.status_code == 422 and r.json()["code"] == "invalid_email"
    r = await lookup(client, shop, "x", kind="passport")
    assert r.status_code == 422


async def test_roles_finance_reads_but_does_not_create(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    typed_email, norm_email = email()
    r = await create(client, shop, who="finance", email=typed_email)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert (await lookup(client, shop, norm_email)).status_code == 404  # not created
    for who in ("cashier2", "service", "manager"):
        r = await create(client, shop, who=who, email=email()[0])
        assert r.status_code == 201, who
    r = await create(client, shop, who="owner", email=typed_email)
    assert r.status_code == 201
    cid = r.json()["id"]
    assert (await lookup(client, shop, norm_email, who="finance")).json()["id"] == cid
    r = await client.get(f"/api/v1/customers/{cid}", headers=shop.auth("finance"))
    assert r.status_code == 200
    # no token: nothing about customers
    assert (await client.post("/api/v1/customers", json={"email": email()[0]})).status_code == 401
    assert (await client.get(f"/api/v1/customers/{cid}")).status_code == 401
    r = await client.get("/api/v1/customers/lookup", params={"q": norm_email})
    assert r.status_code == 401


async def test_orders_carry_the_customer(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 5, shop.warehouse: 5})
    cid = (await create(client, shop, email=email()[0], issue_card=True)).json()["id"]
    pos = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "customer_id": cid, "lines": [{"variant_id": v["id"]}],
        "payments": [{"method": "cash"}]})
    web = await client.post("/api/v1/orders", headers=shop.auth("owner"), json={
        "channel": "web", "customer_id": cid, "lines": [{"variant_id": v["id"]}]})
    assert pos.status_code == 201 and web.status_code == 201, (pos.text, web.text)
    assert pos.json()["customer_id"] == web.json()["customer_id"] == cid
    history = await client.get("/api/v1/orders", params={"customer_id": cid},
                               headers=shop.auth("owner"))
    assert history.status_code == 200
    assert [o["id"] for o in history.json()["items"]] == [web.json()["id"], pos.json()["id"]]
    assert {o["channel"] for o in history.json()["items"]} == {"web", "pos-1"}

    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "customer_id": 999_999_999, "lines": [{"variant_id": v["id"]}],
        "payments": [{"method": "cash"}]})
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("unknown_customer", "customer_id")
    avail = (await client.get(f"/api/v1/variants/{v['id']}/availability")).json()
    store = next(x for x in avail["locations"] if x["location_id"] == shop.store1)
    assert store["on_hand"] == 4  # the refused sale took nothing
