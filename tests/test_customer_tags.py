"""Tags on customers: normalising, adding and removing (events, audit, permission,
nothing changes on bad input), the counts, the forms on the till card, the service desk
card and the back office page, and the back office's customer list by tag (both
databases)."""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.errors import Forbidden, NotFound, ValidationFailed
from saumaton.customers.card import QuickCustomerIn, customer_card, quick_create
from saumaton.customers.gdpr import export_customer
from saumaton.customers.models import CustomerTag
from saumaton.customers.notes import set_preference
from saumaton.customers.services import CustomerOut
from saumaton.customers.tags import (
    add_tag,
    all_tags,
    normalise_tag,
    remove_tag,
    tagged_customer_ids,
    tags_of,
)
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.service import chat
from tests.support import Shop, text_of
from tests.support import staff_login as login

HX = {"HX-Request": "true"}
CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
FINANCE = Actor(label="staff:test finance", name="Fiia", grants=(RoleGrant("finance", None),))


def word(n: int = 8) -> str:
    """A random tag word (letters only, so it is also a valid search)."""
    return "".join("bcdfghjklmnpqrstvwxz"[b % 20] for b in uuid.uuid4().bytes[:n])


async def new_customer(db: Database, first: str = "Tiina") -> CustomerOut:
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040{digits}", first_name=first, last_name=f"Tag{word(6)}",
            email=f"tag.{uuid.uuid4().hex[:10]}@example.fi"))
        await uow.commit()
    return out


async def tag_audit(db: Database, customer_id: int) -> list[tuple[str, str]]:
    async with db.reader() as s:
        rows = (await s.scalars(select(AuditEntry).where(
            AuditEntry.subject_type == "customer", AuditEntry.subject_id == customer_id,
            AuditEntry.action.like("customer.tag%")).order_by(AuditEntry.id))).all()
    return [(r.action, str(r.data.get("tag"))) for r in rows]


async def updated_events(db: Database, customer_id: int) -> list[dict[str, object]]:
    async with db.reader() as s:
        rows = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "customer.updated").order_by(OutboxEvent.id))).all()
    return [p for p in rows if isinstance(p, dict) and p.get("customer_id") == customer_id
            and "tag" in p]


# --- the service -----------------------------------------------------------------------------

def test_tags_are_normalised() -> None:
    assert normalise_tag("  VIP  ") == "vip"
    assert normalise_tag(" Herkkä   IHO ") == "herkkä iho"
    assert normalise_tag("ÅÄÖ-kampanja_2026") == "åäö-kampanja_2026"
    assert normalise_tag("x" * 50) == "x" * 50
    for bad in ("", "   ", "x" * 51, "vip!", "a/b", "<b>", "a.b", "tag\x00", "50%", "#vip"):
        with pytest.raises(ValidationFailed) as e:
            normalise_tag(bad)
        assert (e.value.code, e.value.field, e.value.status) == ("invalid_tag", "tag", 422), bad


async def test_add_and_remove_tags(db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    t = f"vip {word()}"
    async with db.uow() as uow:
        assert await add_tag(uow, CASHIER, c.id, f"  {t.upper()} ") == t
        assert await add_tag(uow, CASHIER, c.id, t) == t  # again: nothing new
        await add_tag(uow, CASHIER, c.id, "ääkköset")
        await uow.commit()
    async with db.reader() as s:
        assert await tags_of(s, c.id) == sorted([t, "ääkköset"])
        card = await customer_card(s, CASHIER, c.id)
    assert card.tags == sorted([t, "ääkköset"])
    assert await tag_audit(db, c.id) == [("customer.tag_add", t),
                                         ("customer.tag_add", "ääkköset")]
    assert [e["tag"] for e in await updated_events(db, c.id)] == [t, "ääkköset"]
    async with db.uow() as uow:
        assert await remove_tag(uow, CASHIER, c.id, t.title())
        assert not await remove_tag(uow, CASHIER, c.id, t)  # gone already
        await uow.commit()
    async with db.reader() as s:
        assert await tags_of(s, c.id) == ["ääkköset"]
    assert (await tag_audit(db, c.id))[-1] == ("customer.tag_remove", t)
    assert len(await updated_events(db, c.id)) == 3


async def test_bad_tags_and_who_may_tag_change_nothing(db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    async with db.uow() as uow:
        await add_tag(uow, CASHIER, c.id, "pysyy")
        await uow.commit()
    for bad in ("", "x" * 51, "ei!"):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await add_tag(uow, CASHIER, c.id, bad)
            await uow.commit()
        assert e.value.code == "invalid_tag"
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await add_tag(uow, FINANCE, c.id, "finance")
        with pytest.raises(Forbidden):
            await remove_tag(uow, FINANCE, c.id, "pysyy")
        with pytest.raises(NotFound):
            await add_tag(uow, CASHIER, 2**61, "nobody")
    async with db.reader() as s:
        rows = (await s.scalars(select(CustomerTag.tag)
                                .where(CustomerTag.customer_id == c.id))).all()
    assert list(rows) == ["pysyy"]
    assert await tag_audit(db, c.id) == [("customer.tag_add", "pysyy")]


async def test_counts_and_the_customers_with_a_tag(db: Database, shop: Shop) -> None:
    t = word()
    a, b, other = (await new_customer(db, "Aino"), await new_customer(db, "Bea"),
                   await new_customer(db, "Cilla"))
    async with db.uow() as uow:
        for c in (a, b):
            await add_tag(uow, CASHIER, c.id, t)
        await add_tag(uow, CASHIER, other.id, t + "x")
        await uow.commit()
    async with db.reader() as s:
        counts = {x.tag: x.customers for x in await all_tags(s, CASHIER)}
        ids = await tagged_customer_ids(s, CASHIER, f" {t.upper()}")
        with pytest.raises(ValidationFailed):
            await tagged_customer_ids(s, CASHIER, "ei!")
    assert counts[t] == 2 and counts[t + "x"] == 1
    assert sorted(ids) == sorted([a.id, b.id])


async def test_the_gdpr_export_holds_tags_and_preferences(db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    async with db.uow() as uow:
        await add_tag(uow, CASHIER, c.id, "kanta-asiakas")
        await set_preference(uow, CASHIER, c.id, "skin_type", "dry")
        await uow.commit()
    async with db.reader() as s:
        data = await export_customer(s, Actor(label="system", system=True), c.id)
    assert [t["tag"] for t in data["tags"]] == ["kanta-asiakas"]
    assert [(p["key"], p["value"]) for p in data["preferences"]] == [("skin_type", "dry")]


# --- the pages -------------------------------------------------------------------------------

def chips(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'data-testid="tag" data-tag="([^"]*)"', page)]


async def test_tags_on_the_till_card(web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    t = word()
    csrf = await login(web, shop, "cashier1")
    h = {**HX, "X-CSRF-Token": csrf}
    url = f"/pos/store-1/customers/{c.id}/tags"
    r = await web.post(url, data={"tag": f" Kesä {t.upper()} "}, headers=h)
    assert r.status_code == 200 and text_of(r.text, "customer-saved") == "Tunniste lisätty."
    assert chips(r.text) == [f"kesä {t}"]
    assert 'aria-label="Poista tunniste kesä' in r.text
    # refused next to the field, what was typed kept, nothing added
    r = await web.post(url, data={"tag": "kesä!"}, headers=h)
    assert r.status_code == 422
    assert text_of(r.text, "tag-error").startswith("Tunniste on 1–50 merkkiä")
    assert 'aria-describedby="tag-' in r.text and 'value="kesä!"' in r.text
    assert chips(r.text) == [f"kesä {t}"]
    r = await web.post(url + "/remove", data={"tag": f"kesä {t}"}, headers=h)
    assert r.status_code == 200 and text_of(r.text, "customer-saved") == "Tunniste poistettu."
    assert chips(r.text) == [] and 'data-testid="no-tags"' in r.text
    # without htmx: back to the card; without CSRF: refused
    r = await web.post(url, data={"tag": t, "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/pos/store-1/customers/{c.id}"
    assert (await web.post(url, data={"tag": "x"}, headers=HX)).status_code == 403
    # the add field's suggestions: the tags in use
    r = await web.get("/backoffice/customers/tags/options", headers=HX)
    assert r.status_code == 200 and f'<option value="{t}">' in r.text
    async with db.reader() as s:
        assert await tags_of(s, c.id) == [t]


async def test_finance_sees_tags_but_cannot_change_them(web: httpx.AsyncClient, db: Database,
                                                         shop: Shop) -> None:
    c = await new_customer(db)
    async with db.uow() as uow:
        await add_tag(uow, CASHIER, c.id, "näkyy")
        await uow.commit()
    csrf = await login(web, shop, "finance")
    r = await web.get(f"/pos/store-1/customers/{c.id}", headers=HX)
    assert r.status_code == 200 and chips(r.text) == ["näkyy"]
    assert 'data-testid="tag-form"' not in r.text and 'data-testid="tag-remove"' not in r.text
    h = {**HX, "X-CSRF-Token": csrf}
    r = await web.post(f"/pos/store-1/customers/{c.id}/tags/remove", data={"tag": "näkyy"},
                       headers=h)
    assert r.status_code == 403
    r = await web.post(f"/backoffice/customers/{c.id}/tags", data={"tag": "uusi",
                                                                   "csrf_token": csrf})
    assert r.status_code == 403
    async with db.reader() as s:
        assert await tags_of(s, c.id) == ["näkyy"]


async def test_tags_and_preferences_on_the_service_desk_card(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    c = await new_customer(db, "Sanna")
    async with db.uow() as uow:
        msg = await chat.post_visitor_message(uow, chat.new_visitor_token(), "Hei!",
                                              uuid.uuid4().hex, customer_id=c.id)
        await uow.commit()
    conv = msg.conversation_id
    csrf = await login(web, shop, "service")
    h = {**HX, "X-CSRF-Token": csrf}
    r = await web.get(f"/service/c/{conv}")
    assert r.status_code == 200 and 'data-testid="tag-form"' in r.text
    assert re.search(r'<select[^>]*name="skin_type"', r.text)
    r = await web.post(f"/service/c/{conv}/tags", data={"tag": "Chat-Asiakas"}, headers=h)
    assert r.status_code == 200 and chips(r.text) == ["chat-asiakas"]
    assert 'id="svc-customer"' in r.text
    r = await web.post(f"/service/c/{conv}/tags", data={"tag": "??"}, headers=h)
    assert r.status_code == 422 and text_of(r.text, "tag-error")
    r = await web.post(f"/service/c/{conv}/preferences",
                       data={"shade": "1C", "skin_type": "rasvainen"}, headers=h)
    assert r.status_code == 422
    assert text_of(r.text, "pref-error-skin_type") == "Valitse jokin vaihtoehdoista."
    r = await web.post(f"/service/c/{conv}/preferences",
                       data={"shade": "1C", "skin_type": "oily"}, headers=h)
    assert r.status_code == 200 and text_of(r.text, "preference-skin_type") == "rasvainen"
    r = await web.post(f"/service/c/{conv}/tags/remove", data={"tag": "chat-asiakas"},
                       headers=h)
    assert r.status_code == 200 and chips(r.text) == []
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
    assert card.preferences == {"shade": "1C", "skin_type": "oily"} and card.tags == []


async def test_back_office_customer_page_and_list_by_tag(web: httpx.AsyncClient, db: Database,
                                                         shop: Shop) -> None:
    t = word()
    a, b = await new_customer(db, "Aada"), await new_customer(db, "Bertta")
    csrf = await login(web, shop, "manager")
    for c in (a, b):
        r = await web.post(f"/backoffice/customers/{c.id}/tags",
                           data={"tag": t.upper(), "csrf_token": csrf})
        assert r.status_code == 303
        assert r.headers["location"] == f"/backoffice/customers/{c.id}?saved=tag"
    r = await web.get(f"/backoffice/customers/{a.id}?saved=tag")
    assert r.status_code == 200 and chips(r.text) == [t]
    assert text_of(r.text, "customer-saved") == "Tunniste lisätty."
    r = await web.post(f"/backoffice/customers/{a.id}/tags",
                       data={"tag": "x" * 51, "csrf_token": csrf})
    assert r.status_code == 422 and text_of(r.text, "tag-error")
    assert 'aria-invalid="true"' in r.text
    r = await web.post(f"/backoffice/customers/{a.id}/preferences",
                       data={"shade": "4N", "skin_type": "nope", "csrf_token": csrf})
    assert r.status_code == 422 and text_of(r.text, "pref-error-skin_type")
    r = await web.post(f"/backoffice/customers/{a.id}/preferences",
                       data={"shade": "4N", "skin_type": "normal", "csrf_token": csrf})
    assert r.status_code == 303
    r = await web.get(f"/backoffice/customers/{a.id}")
    assert text_of(r.text, "preference-shade") == "4N"
    assert text_of(r.text, "preference-skin_type") == "normaali"
    assert f'data-testid="timeline" data-customer-id="{a.id}"' in r.text  # still there

    # the list: the tag with its count as a filter link; filtered, links to both
    r = await web.get("/backoffice/customers")
    assert r.status_code == 200
    link = re.search(rf'<a href="(/backoffice/customers\?tag={t})"[^>]*data-tag="{t}">'
                     rf'.*?data-testid="tag-count">(\d+)<', r.text, re.S)
    assert link and link[2] == "2"
    r = await web.get(link[1])
    assert r.status_code == 200
    rows = re.findall(r'data-testid="customer-row" data-customer-id="(\d+)"', r.text)
    assert sorted(map(int, rows)) == sorted([a.id, b.id])
    assert f'href="/backoffice/customers/{a.id}"' in r.text
    assert re.search(rf'data-tag="{t}" aria-current="true"|aria-current="true"\s+'
                     rf'data-testid="tag-filter" data-tag="{t}"', r.text)
    # narrowed by a search: only Aada
    r = await web.get("/backoffice/customers", params={"tag": t, "q": a.last_name})
    rows = re.findall(r'data-testid="customer-row" data-customer-id="(\d+)"', r.text)
    assert rows == [str(a.id)]
    # a search alone, as at the till
    assert b.email
    r = await web.get("/backoffice/customers", params={"q": b.email})
    rows = re.findall(r'data-testid="customer-row" data-customer-id="(\d+)"', r.text)
    assert rows == [str(b.id)]
    # nonsense is a 422 with the message next to the field
    r = await web.get("/backoffice/customers", params={"q": "a1"})
    assert r.status_code == 422 and text_of(r.text, "error-q")
    r = await web.get("/backoffice/customers", params={"tag": "ei!"})
    assert r.status_code == 422 and text_of(r.text, "error-tag")
    # removing from the page
    r = await web.post(f"/backoffice/customers/{b.id}/tags/remove",
                       data={"tag": t, "csrf_token": csrf})
    assert r.status_code == 303
    r = await web.get("/backoffice/customers", params={"tag": t})
    rows = re.findall(r'data-testid="customer-row" data-customer-id="(\d+)"', r.text)
    assert rows == [str(a.id)]
