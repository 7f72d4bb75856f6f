"""The shop's preference fields (shade, skin type, …): defining them (rules, errors,
permission, audit), what a preference may be set to, what the cards show (a choice as a
<select>, a removed field's value read-only), and the back office's page (both
databases)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers import fields
from saumaton.customers.card import QuickCustomerIn, customer_card, quick_create
from saumaton.customers.models import CustomerPreference, PreferenceField
from saumaton.customers.notes import set_preference
from saumaton.customers.services import CustomerOut
from saumaton.db.uow import Database
from tests.support import Shop, text_of
from tests.support import staff_login as login

HX = {"HX-Request": "true"}
MANAGER = Actor(label="staff:test manager", name="Maija Manageri",
                grants=(RoleGrant("manager", None),))
CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))


def new_key() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def new_customer(db: Database) -> CustomerOut:
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040{digits}", first_name="Pia", last_name=f"Pref{uuid.uuid4().hex[:6]}"))
        await uow.commit()
    return out


async def new_field(db: Database, kind: str = "text", options: list[str] | None = None,
                    position: int | None = None, label: str = "Test field") -> str:
    key = new_key()
    async with db.uow() as uow:
        await fields.create_field(uow, MANAGER, key, label, kind, options, position)
        await uow.commit()
    return key


async def deactivate(db: Database, *keys: str) -> None:
    """Tests share the database: a field a test made must not stay on everyone's card."""
    async with db.uow() as uow:
        for key in keys:
            await fields.update_field(uow, MANAGER, key, active=False)
        await uow.commit()


async def field_audit(db: Database, key: str) -> list[AuditEntry]:
    async with db.reader() as s:
        rows = (await s.scalars(select(AuditEntry).where(
            AuditEntry.subject_type == "preference_field")
            .order_by(AuditEntry.id))).all()
    return [r for r in rows if r.data.get("key") == key]


# --- the service -----------------------------------------------------------------------------

async def test_the_seeded_fields(db: Database, shop: Shop) -> None:
    async with db.reader() as s:
        shade = await fields.get_field(s, "shade")
        skin = await fields.get_field(s, "skin_type")
        active = [f.key for f in await fields.list_fields(s)]
    assert shade is not None and (shade.label, shade.kind, shade.options) == ("Shade", "text", ())
    assert skin is not None and (skin.label, skin.kind) == ("Skin type", "choice")
    assert skin.options == ("normal", "dry", "oily", "combination", "sensitive")
    assert active.index("shade") < active.index("skin_type")


async def test_create_and_update_a_field(db: Database, shop: Shop) -> None:
    key = new_key()
    async with db.uow() as uow:
        out = await fields.create_field(uow, MANAGER, f"  {key} ", "  Hair   colour ", "choice",
                                        fields.parse_options("blond, brown\nblack\n\n brown "))
        await uow.commit()
    assert (out.key, out.label, out.options, out.active) == (
        key, "Hair colour", ("blond", "brown", "black"), True)
    first_position = out.position
    async with db.reader() as s:
        assert out.position > max(f.position for f in await fields.list_fields(s)
                                  if f.key != key)  # without a position it goes last
    async with db.uow() as uow:
        out = await fields.update_field(uow, MANAGER, key, label="Hair", options=["red", "blond"],
                                        position=5)
        same = await fields.update_field(uow, MANAGER, key, label="Hair")  # no change
        await uow.commit()
    assert (out.label, out.options, out.position) == ("Hair", ("red", "blond"), 5)
    assert same == out
    entries = await field_audit(db, key)
    assert [e.action for e in entries] == ["preference_field.create", "preference_field.update"]
    assert entries[0].actor == MANAGER.label
    assert entries[1].data["before"] == {"label": "Hair colour",
                                         "options": ["blond", "brown", "black"],
                                         "position": first_position}
    assert entries[1].data["after"] == {"label": "Hair", "options": ["red", "blond"],
                                        "position": 5}
    async with db.reader() as s:
        active = [f.key for f in await fields.list_fields(s)]
    assert active.index(key) < active.index("shade")  # position 5 is before shade's 10
    await deactivate(db, key)
    async with db.reader() as s:
        assert key not in [f.key for f in await fields.list_fields(s)]
        assert key in [f.key for f in await fields.list_fields(s, include_inactive=True)]


async def test_bad_fields_are_refused_and_nothing_is_written(db: Database, shop: Shop) -> None:
    taken = await new_field(db)
    bad: list[tuple[dict[str, object], str, str]] = [
        ({"key": "Shade2"}, "invalid_field_key", "key"),
        ({"key": "1abc"}, "invalid_field_key", "key"),
        ({"key": "hair-colour"}, "invalid_field_key", "key"),
        ({"key": ""}, "invalid_field_key", "key"),
        ({"key": "a" * 51}, "invalid_field_key", "key"),
        ({"label": "   "}, "label_required", "label"),
        ({"label": "x" * 101}, "label_too_long", "label"),
        ({"kind": "number"}, "invalid_field_kind", "kind"),
        ({"kind": "choice", "options": []}, "options_required", "options"),
        ({"kind": "choice", "options": [" ", ""]}, "options_required", "options"),
        ({"kind": "choice", "options": ["x" * 201]}, "option_too_long", "options"),
        ({"kind": "choice", "options": [str(i) for i in range(51)]}, "too_many_options",
         "options"),
        ({"position": -1}, "invalid_position", "position"),
        ({"position": 100_001}, "invalid_position", "position"),
    ]
    for change, code, field in bad:
        args: dict[str, object] = {"key": new_key(), "label": "Label", "kind": "text",
                                   "options": None, "position": None, **change}
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await fields.create_field(uow, MANAGER, **args)  # type: ignore[arg-type]
            await uow.commit()
        assert (e.value.code, e.value.field) == (code, field), change
        async with db.reader() as s:
            assert await s.get(PreferenceField, str(args["key"])) is None
    async with db.uow() as uow:
        with pytest.raises(Conflict) as c:
            await fields.create_field(uow, MANAGER, taken, "Again", "text")
    assert (c.value.code, c.value.field, c.value.status) == ("duplicate_field", "key", 409)
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as e:
            await fields.update_field(uow, MANAGER, taken, label="ok", position=-5)
        await uow.commit()
    assert e.value.code == "invalid_position"
    async with db.reader() as s:
        f = await fields.get_field(s, taken)
    assert f is not None and f.label == "Test field"  # the valid label was not saved either
    async with db.uow() as uow:
        with pytest.raises(NotFound) as nf:
            await fields.update_field(uow, MANAGER, "no_such_field_" + new_key(), label="x")
    assert nf.value.code == "field_not_found"
    assert [e.action for e in await field_audit(db, taken)] == ["preference_field.create"]
    await deactivate(db, taken)


async def test_only_managers_configure_fields(db: Database, shop: Shop) -> None:
    key = new_key()
    store_manager = Actor(label="staff:store manager", name="Sami",
                          grants=(RoleGrant("manager", shop.store1),))
    for actor in (CASHIER, store_manager):  # a manager of one store is not enough
        async with db.uow() as uow:
            with pytest.raises(Forbidden):
                await fields.create_field(uow, actor, key, "Nope", "text")
            with pytest.raises(Forbidden):
                await fields.update_field(uow, actor, "shade", label="Nope")
    async with db.reader() as s:
        assert await fields.get_field(s, key) is None
        shade = await fields.get_field(s, "shade")
    assert shade is not None and shade.label == "Shade"


async def test_preferences_only_for_active_fields_and_valid_choices(db: Database,
                                                                    shop: Shop) -> None:
    c = await new_customer(db)
    choice = await new_field(db, "choice", ["matte", "dewy"])
    text = await new_field(db)
    async with db.uow() as uow:
        assert await set_preference(uow, CASHIER, c.id, choice, "matte")
        assert await set_preference(uow, CASHIER, c.id, text, " likes  blue ")
        assert await set_preference(uow, CASHIER, c.id, "skin_type", "oily")
        await uow.commit()
    bad = [(choice, "glossy", "invalid_choice"), (choice, "Matte", "invalid_choice"),
           ("no_such_" + new_key(), "x", "unknown_preference"),
           ("bad key", "x", "unknown_preference"), ("x\x00y", "x", "unknown_preference"),
           (text, "x" * 201, "preference_too_long")]
    for key, value, code in bad:
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await set_preference(uow, CASHIER, c.id, key, value)
        assert e.value.code == code and e.value.field == key[:60], key
    # a removed field takes no new values, and its old one stays
    await deactivate(db, text)
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as e:
            await set_preference(uow, CASHIER, c.id, text, "other")
    assert e.value.code == "unknown_preference"
    # options changed: the value kept, saving it unchanged is fine, a new one must be valid
    async with db.uow() as uow:
        await fields.update_field(uow, MANAGER, choice, options=["satin"])
        await uow.commit()
    async with db.uow() as uow:
        assert not await set_preference(uow, CASHIER, c.id, choice, "matte")
        with pytest.raises(ValidationFailed):
            await set_preference(uow, CASHIER, c.id, choice, "dewy")
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
    assert card.preferences == {choice: "matte", "skin_type": "oily", text: "likes blue"}
    async with db.uow() as uow:
        assert await set_preference(uow, CASHIER, c.id, choice, "")  # empty clears it
        await uow.commit()
    async with db.reader() as s:
        assert await s.get(CustomerPreference, (c.id, choice)) is None
    await deactivate(db, choice)


async def test_the_card_shows_active_fields_in_order_and_removed_values_read_only(
        db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    first = await new_field(db, position=1, label="First")
    gone = await new_field(db, "choice", ["a", "b"], label="Gone")
    async with db.uow() as uow:
        await set_preference(uow, CASHIER, c.id, gone, "b")
        await set_preference(uow, CASHIER, c.id, "shade", "2N")
        await uow.commit()
    await deactivate(db, gone)
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
    editable = [p.key for p in card.fields if p.editable]
    assert editable[0] == first  # position 1: before the seeded ones
    assert editable.index("shade") < editable.index("skin_type") and gone not in editable
    [kept] = [p for p in card.fields if p.key == gone]
    assert (kept.editable, kept.label, kept.value) == (False, "Gone", "b")
    assert [p.value for p in card.fields if p.key == "shade"] == ["2N"]
    await deactivate(db, first)


# --- the pages -------------------------------------------------------------------------------

async def test_fields_page_adds_and_changes_fields(web: httpx.AsyncClient, db: Database,
                                                   shop: Shop) -> None:
    csrf = await login(web, shop, "manager")
    r = await web.get("/backoffice/customers/fields")
    assert r.status_code == 200 and 'data-testid="field-skin_type"' in r.text
    assert 'data-testid="nav-fields"' in r.text
    key = new_key()
    form = {"csrf_token": csrf, "key": key, "label": "Lempituoksu", "kind": "choice",
            "options": "", "position": ""}
    # a choice with no options: 422, the message next to the field, what was typed kept
    r = await web.post("/backoffice/customers/fields", data=form)
    assert r.status_code == 422
    assert text_of(r.text, "new-field-error-options") == \
        "Valintakentällä on oltava vähintään yksi vaihtoehto."
    assert 'aria-describedby="new-field-options-error"' in r.text
    assert f'value="{key}"' in r.text and 'value="Lempituoksu"' in r.text
    r = await web.post("/backoffice/customers/fields", data={**form, "key": "Bad Key",
                                                              "options": "a"})
    assert r.status_code == 422 and "pieniä kirjaimia" in text_of(r.text, "new-field-error-key")
    r = await web.post("/backoffice/customers/fields", data={**form, "options": "a",
                                                              "position": "first"})
    assert r.status_code == 422 and text_of(r.text, "new-field-error-position")
    async with db.reader() as s:
        assert await fields.get_field(s, key) is None
    # good: one option per line or separated by commas
    r = await web.post("/backoffice/customers/fields",
                       data={**form, "options": "ruusu, vanilja\nsitrus"})
    assert r.status_code == 303
    assert r.headers["location"] == "/backoffice/customers/fields?saved=added"
    async with db.reader() as s:
        f = await fields.get_field(s, key)
    assert f is not None and f.options == ("ruusu", "vanilja", "sitrus") and f.active
    r = await web.post("/backoffice/customers/fields", data={**form, "options": "a"})
    assert r.status_code == 409 and "avaimella" in text_of(r.text, "new-field-error-key")
    # change: an empty label is refused next to it, in that field's form
    upd = {"csrf_token": csrf, "label": " ", "options": "ruusu", "position": "7",
           "active": "yes"}
    r = await web.post(f"/backoffice/customers/fields/{key}", data=upd)
    assert r.status_code == 422
    assert text_of(r.text, f"field-{key}-error-label") == "Anna kentälle nimi."
    r = await web.post(f"/backoffice/customers/fields/{key}",
                       data={**upd, "label": "Tuoksu", "active": ""})  # unticked: removed
    assert r.status_code == 303
    async with db.reader() as s:
        f = await fields.get_field(s, key)
    assert f is not None and (f.label, f.options, f.position, f.active) == (
        "Tuoksu", ("ruusu",), 7, False)
    r = await web.get("/backoffice/customers/fields?saved=saved")
    assert text_of(r.text, "fields-saved") == "Kenttä tallennettu."
    assert re.search(rf'data-testid="field-{key}" data-active="no"', r.text)
    r = await web.post("/backoffice/customers/fields/no_such_field", data=upd)
    assert r.status_code == 404
    # no CSRF token: refused
    r = await web.post("/backoffice/customers/fields", data={**form, "csrf_token": ""})
    assert r.status_code == 403


async def test_cashier_cannot_configure_fields(web: httpx.AsyncClient, db: Database,
                                               shop: Shop) -> None:
    csrf = await login(web, shop, "cashier1")
    r = await web.get("/backoffice/customers/fields")
    assert r.status_code == 403
    key = new_key()
    r = await web.post("/backoffice/customers/fields", data={
        "csrf_token": csrf, "key": key, "label": "X", "kind": "text"})
    assert r.status_code == 403
    r = await web.post("/backoffice/customers/fields/shade", data={
        "csrf_token": csrf, "label": "Hacked", "position": "1", "active": "yes"})
    assert r.status_code == 403
    r = await web.get("/backoffice/customers")
    assert r.status_code == 200 and 'data-testid="nav-fields"' not in r.text
    async with db.reader() as s:
        shade = await fields.get_field(s, "shade")
        assert await fields.get_field(s, key) is None
    assert shade is not None and shade.label == "Shade"


async def test_till_card_form_with_a_choice_and_a_removed_field(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    gone = await new_field(db, label="Vanha kenttä")
    async with db.uow() as uow:
        await set_preference(uow, CASHIER, c.id, gone, "muistiin jäi")
        await uow.commit()
    await deactivate(db, gone)
    csrf = await login(web, shop, "cashier1")
    h = {**HX, "X-CSRF-Token": csrf}
    r = await web.get(f"/pos/store-1/customers/{c.id}", headers=HX)
    assert r.status_code == 200
    # the choice as a <select> with the options in Finnish; the removed field read-only
    m = re.search(r'<select[^>]*name="skin_type"[^>]*>(.*?)</select>', r.text, re.S)
    assert m and re.findall(r'<option value="([^"]*)"', m[1]) == [
        "", "normal", "dry", "oily", "combination", "sensitive"]
    assert ">herkkä</option>" in m[1]
    assert text_of(r.text, f"preference-{gone}") == "muistiin jäi"
    assert f'name="{gone}"' not in r.text
    # a bad choice: 422 next to it, and the valid shade of the same form is not saved
    r = await web.post(f"/pos/store-1/customers/{c.id}/preferences",
                       data={"shade": "3W", "skin_type": "kuiva"}, headers=h)
    assert r.status_code == 422
    assert text_of(r.text, "pref-error-skin_type") == "Valitse jokin vaihtoehdoista."
    assert 'aria-describedby="pref-' in r.text
    async with db.reader() as s:
        assert (await customer_card(s, CASHIER, c.id)).preferences == {gone: "muistiin jäi"}
    # a removed field posted anyway is ignored, not saved
    r = await web.post(f"/pos/store-1/customers/{c.id}/preferences",
                       data={"shade": "3W", "skin_type": "dry", gone: "uusi"}, headers=h)
    assert r.status_code == 200 and text_of(r.text, "customer-saved") == "Tiedot tallennettu."
    assert text_of(r.text, "preference-skin_type") == "kuiva"
    assert re.search(r'<option value="dry" selected>', r.text)
    async with db.reader() as s:
        assert (await customer_card(s, CASHIER, c.id)).preferences == {
            gone: "muistiin jäi", "shade": "3W", "skin_type": "dry"}
    # the back office page shows the same
    r = await web.get(f"/backoffice/customers/{c.id}")
    assert r.status_code == 200 and text_of(r.text, "preference-skin_type") == "kuiva"
    assert text_of(r.text, f"preference-{gone}") == "muistiin jäi"
