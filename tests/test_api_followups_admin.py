"""After-purchase follow-up sequences through /api/v1/followups (both databases): owner
only (`followups.write` everywhere), by product category: the list, one category's
sequence, and PUT creating (201) or replacing (200) it whole, keeping the steps whose
ids come back; strict input and the service's checks as 4xx with a code, a message and
each problem on its field."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import Actor, RoleGrant
from saumaton.db.uow import Database
from saumaton.followups.sequences import SequenceIn, StepIn, create_sequence
from tests.builders import a_category
from tests.support import Shop

URL = "/api/v1/followups/sequences"


def a_step(**over: Any) -> dict[str, Any]:
    return {"kind": "how_to_use", "delay_days": 3, "subject_fi": "Näin käytät: {product}",
            "body_fi": "Hei {first_name},\n\nkokeile näin.", "subject_en": "How to use {product}",
            "body_en": "Hi {first_name},\n\ntry this.", **over}


async def test_only_the_owner(client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    _, slug = await a_category(db)
    assert (await client.get(URL)).status_code == 401
    for who in ("manager", "cashier1"):
        r = await client.get(URL, headers=shop.auth(who))
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
        r = await client.put(f"{URL}/{slug}", headers=shop.auth(who),
                             json={"steps": [a_step()]})
        assert r.status_code == 403, r.text
    assert (await client.get(URL, headers=shop.auth("owner"))).status_code == 200


async def test_put_creates_then_replaces_the_categorys_sequence(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    cat, slug = await a_category(db, "Seerumit")
    owner = shop.auth("owner")
    r = await client.get(f"{URL}/{slug}", headers=owner)
    assert r.status_code == 404 and r.json()["code"] == "sequence_not_found", r.text
    r = await client.put(f"{URL}/{slug}", headers=owner, json={
        "refill_days": 60, "steps": [a_step(), a_step(kind="refill", delay_days=0)]})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["category"], made["category_id"], made["enabled"]) == (slug, cat, True)
    assert made["name"].startswith("Seerumit ")  # the category's name by default
    assert (made["refill_days"], made["refill_lead_days"]) == (60, 5)
    assert [(s["position"], s["kind"], s["delay_days"]) for s in made["steps"]] == [
        (0, "how_to_use", 3), (1, "refill", 0)]
    assert (await client.get(f"{URL}/{slug}", headers=owner)).json() == made
    listed = (await client.get(URL, headers=owner)).json()
    assert [s for s in listed if s["id"] == made["id"]] == [made]

    kept = made["steps"][0]["id"]
    r = await client.put(f"{URL}/{slug}", headers=owner, json={
        "name": "Seerumit", "enabled": False, "refill_days": None, "refill_lead_days": 0,
        "steps": [a_step(id=kept, subject_fi="Uusi: {product}", delay_days=5)]})
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["id"] == made["id"] and again["name"] == "Seerumit"
    assert (again["enabled"], again["refill_days"], again["refill_lead_days"]) == (
        False, None, 0)
    assert [(s["id"], s["subject_fi"], s["delay_days"]) for s in again["steps"]] == [
        (kept, "Uusi: {product}", 5)]  # the refill step left out: removed
    async with db.reader() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "followup_sequence",
            AuditEntry.subject_id == made["id"]).order_by(AuditEntry.id))).all()
    assert list(actions) == ["followup_sequence.create", "followup_sequence.update"]


async def test_strict_input_and_every_problem_on_its_field(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    _, slug = await a_category(db)
    owner = shop.auth("owner")
    url = f"{URL}/{slug}"

    async def refused(body: Any, status: int = 422) -> dict[str, Any]:
        r = await client.put(url, headers=owner, json=body)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = dict(r.json())
        assert problem["code"] and problem["detail"]
        return problem

    p = await refused({"steps": [a_step(subject_fi="Hei {etunimi}", body_en="a { b")],
                       "refill_lead_days": 10})
    assert (p["code"], p["field"]) == ("template_unknown_placeholder", "steps.0.subject_fi")
    assert p["detail"].startswith("Unknown placeholder: {etunimi}. Use {first_name}")
    assert [(e["field"], e["code"]) for e in p["errors"]] == [
        ("steps.0.subject_fi", "template_unknown_placeholder"),
        ("steps.0.body_en", "template_stray_brace")]
    p = await refused({"steps": [a_step(kind="refill"), a_step(kind="refill")]})
    assert (p["code"], p["field"]) == ("one_refill_step", "steps")
    for body, field in (
            ({"steps": [a_step()], "refill_lead_days": 61}, "refill_lead_days"),
            ({"steps": [a_step()], "refill_lead_days": -1}, "refill_lead_days"),
            ({"steps": [a_step()], "refill_lead_days": "5"}, "refill_lead_days"),  # strict
            ({"steps": [a_step()], "refill_days": 3}, "refill_days"),
            ({"steps": []}, "steps"),
            ({"steps": [a_step(kind="poem")]}, "steps.0.kind"),
            ({"steps": [a_step(delay_days=366)]}, "steps.0.delay_days"),
            ({"steps": [a_step(subject_fi="x" * 201)]}, "steps.0.subject_fi"),
            ({"steps": [a_step()], "colour": "red"}, "colour"),
            ({"steps": [a_step()], "name": "   "}, "name")):
        p = await refused(body)
        assert (p["code"], p["field"]) == ("validation_error", field), p
    p = await refused({"steps": [a_step(id=2_000_000_000)]})
    assert (p["code"], p["field"]) == ("unknown_step", "steps.0.id")
    r = await client.put(f"{URL}/no-such-category", headers=owner, json={"steps": [a_step()]})
    assert r.status_code == 404 and r.json()["code"] == "category_not_found"
    r = await client.get(url, headers=owner)
    assert r.status_code == 404 and r.json()["code"] == "sequence_not_found"  # none saved


async def test_a_category_with_two_sequences_is_refused(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    """The back office allows several sequences on one category; which one is meant
    cannot be told from the category, so the API says so (409) and names them."""
    cat, slug = await a_category(db)
    ids = []
    for name in ("Yksi", "Kaksi"):
        async with db.uow() as uow:
            out = await create_sequence(uow, _owner(shop), SequenceIn(
                name=name, category_id=cat, enabled=True, refill_days=None,
                steps=[StepIn(kind="text", delay_days=1, subject_fi="Hei", body_fi="Hei",
                              subject_en="Hi", body_en="Hi")]))
            await uow.commit()
        ids.append(out.id)
    for r in (await client.get(f"{URL}/{slug}", headers=shop.auth("owner")),
              await client.put(f"{URL}/{slug}", headers=shop.auth("owner"),
                               json={"steps": [a_step()]})):
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["sequence_ids"]) == ("several_sequences", ids)


def _owner(shop: Shop) -> Actor:
    return Actor(label="staff:test owner", name="Olli", grants=(RoleGrant("owner", None),))
