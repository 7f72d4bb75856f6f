"""Staff correct a customer's contact details and marketing consents: the name, e-mails
and phones (normalised, one another customer has refused, the webshop login kept), a
loyalty card for one who has none, consents appended with the channel; permissions,
merged and erased customers, events and audit; the forms on the till card, the back
office page and the service desk card (both databases)."""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers.card import (
    QuickCustomerIn,
    customer_card,
    find_customers,
    quick_create,
)
from saumaton.customers.consents import consent_history
from saumaton.customers.contact import (
    add_identity,
    consent_details,
    identities_of,
    issue_card,
    remove_identity,
    set_consents,
    update_name,
)
from saumaton.customers.duplicates import merge_customers
from saumaton.customers.gdpr import erase_customer
from saumaton.customers.models import Customer, CustomerAccount, CustomerIdentity
from saumaton.customers.services import CustomerIn, CustomerOut, create_customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.service import chat
from tests.support import Shop, text_of
from tests.support import staff_login as login

HX = {"HX-Request": "true"}
CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
FINANCE = Actor(label="staff:test finance", name="Fiia", grants=(RoleGrant("finance", None),))
MANAGER = Actor(label="staff:test manager", name="Maija", grants=(RoleGrant("manager", None),))


def digits(n: int = 7) -> str:
    return f"{uuid.uuid4().int % 10**n:0{n}d}"


def new_email() -> str:
    return f"contact.{uuid.uuid4().hex[:12]}@example.fi"


async def new_customer(db: Database, first: str = "Ulla", *, card: bool = True) -> CustomerOut:
    async with db.uow() as uow:
        if card:
            out = await quick_create(uow, CASHIER, QuickCustomerIn(
                phone=f"040{digits()}", first_name=first, last_name="Yhteys",
                email=new_email()))
        else:
            out = await create_customer(uow, CASHIER, CustomerIn(
                first_name=first, last_name="Yhteys", email=new_email()))
        await uow.commit()
    return out


async def audit(db: Database, customer_id: int) -> list[tuple[str, dict[str, object]]]:
    async with db.reader() as s:
        rows = (await s.scalars(select(AuditEntry).where(
            AuditEntry.subject_type == "customer", AuditEntry.subject_id == customer_id)
            .order_by(AuditEntry.id))).all()
    return [(r.action, dict(r.data)) for r in rows]


async def contact_events(db: Database, customer_id: int) -> list[str]:
    async with db.reader() as s:
        rows = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "customer.updated").order_by(OutboxEvent.id))).all()
    return [str(p.get("contact") or p.get("consent")) for p in rows
            if isinstance(p, dict) and p.get("customer_id") == customer_id
            and ("contact" in p or "consent" in p)]


async def values_of(db: Database, customer_id: int) -> list[tuple[str, str]]:
    async with db.reader() as s:
        return [(i.kind, i.value) for i in await identities_of(s, customer_id)]


# --- the service -----------------------------------------------------------------------------

async def test_name_is_corrected_and_audited_without_the_name(db: Database,
                                                              shop: Shop) -> None:
    c = await new_customer(db)
    async with db.uow() as uow:
        assert await update_name(uow, CASHIER, c.id, "  Ulla-Maija ", " Yhteys  Toinen ")
        assert not await update_name(uow, CASHIER, c.id, "Ulla-Maija", "Yhteys Toinen")
        await uow.commit()
    async with db.reader() as s:
        customer = await s.get(Customer, c.id)
    assert customer and (customer.first_name, customer.last_name) == ("Ulla-Maija",
                                                                      "Yhteys Toinen")
    entries = [e for e in await audit(db, c.id) if e[0] == "customer.name_change"]
    assert entries == [("customer.name_change", {"fields": ["first_name", "last_name"]})]
    assert "name" in await contact_events(db, c.id)
    for first, last, code, fld in (("", " ", "name_required", "first_name"),
                                   ("x" * 101, "", "too_long", "first_name"),
                                   ("Ok", "y" * 101, "too_long", "last_name")):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await update_name(uow, CASHIER, c.id, first, last)
        assert (e.value.code, e.value.field) == (code, fld)
    async with db.reader() as s:
        assert (await customer_card(s, CASHIER, c.id)).name == "Ulla-Maija Yhteys Toinen"


async def test_phone_and_email_are_added_normalised(db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    number = digits()
    email = new_email()
    async with db.uow() as uow:
        assert await add_identity(uow, CASHIER, c.id, "phone",
                                  f"050 {number[:3]} {number[3:]}") == f"+35850{number}"
        assert await add_identity(uow, CASHIER, c.id, "email",
                                  "  " + email.upper()) == email
        # the same again: no change, no second row
        assert await add_identity(uow, CASHIER, c.id, "phone", f"+358 50{number}") \
            == f"+35850{number}"
        await uow.commit()
    have = await values_of(db, c.id)
    assert ("phone", f"+35850{number}") in have and ("email", email) in have
    assert [k for k, _ in have] == ["email", "email", "phone", "phone", "card"]
    async with db.reader() as s:
        found = await find_customers(s, CASHIER, f"050{number}")
    assert [m.id for m in found] == [c.id]
    adds = [d for a, d in await audit(db, c.id) if a == "customer.identity_add"]
    assert adds == [{"kind": "phone"}, {"kind": "email"}]
    assert all(number not in str(d) and email not in str(d)
               for _, d in await audit(db, c.id))
    assert (await contact_events(db, c.id))[-2:] == ["phone", "email"]
    for kind, bad, code in (("phone", "123", "invalid_phone"),
                            ("email", "ei-osoite", "invalid_email"),
                            ("phone", "  ", "required"),
                            ("card", "123456789", "invalid_identity_kind")):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await add_identity(uow, CASHIER, c.id, kind, bad)
        assert e.value.code == code, bad
    assert await values_of(db, c.id) == have


async def test_a_value_another_customer_has_is_refused(db: Database, shop: Shop) -> None:
    a, b = await new_customer(db, "Aili"), await new_customer(db, "Bea")
    assert a.phone and b.email
    national = "0" + a.phone.removeprefix("+358")
    for kind, value, owner in (("phone", f"{national[:3]} {national[3:]}", a.id),
                               ("email", b.email.upper(), b.id)):
        async with db.uow() as uow:
            with pytest.raises(Conflict) as e:
                await add_identity(uow, CASHIER, b.id if owner == a.id else a.id, kind, value)
        assert (e.value.code, e.value.status, e.value.field) == ("identity_taken", 409, kind)
        assert e.value.extra == {"customer_id": owner}
    assert ("phone", a.phone) not in await values_of(db, b.id)


async def test_removing_keeps_login_email_cards_and_the_last_way_to_find(
        db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    async with db.uow() as uow:
        extra = await add_identity(uow, CASHIER, c.id, "email", new_email())
        await uow.commit()
    async with db.reader() as s:
        idents = {i.value: i for i in await identities_of(s, c.id)}
    assert c.email and c.card and c.phone
    async with db.uow() as uow:
        uow.session.add(CustomerAccount(customer_id=c.id, email=c.email, password_hash="x"))
        await uow.commit()
    async with db.reader() as s:
        login_row = next(i for i in await identities_of(s, c.id) if i.value == c.email)
    assert login_row.login
    for value, code in ((c.email, "account_email"), (c.card, "card_kept")):
        async with db.uow() as uow:
            with pytest.raises(Conflict) as e:
                await remove_identity(uow, CASHIER, c.id, idents[value].id)
        assert (e.value.code, e.value.status) == (code, 409)
    async with db.uow() as uow:
        assert await remove_identity(uow, CASHIER, c.id, idents[extra].id) == "email"
        assert await remove_identity(uow, CASHIER, c.id, idents[c.phone].id) == "phone"
        await uow.commit()
    assert await values_of(db, c.id) == [("email", c.email), ("card", c.card)]
    removes = [d for a, d in await audit(db, c.id) if a == "customer.identity_remove"]
    assert removes == [{"kind": "email"}, {"kind": "phone"}]
    # another customer's identity, or none: not found
    other = await new_customer(db)
    async with db.reader() as s:
        theirs = (await identities_of(s, other.id))[0].id
    async with db.uow() as uow:
        with pytest.raises(NotFound) as nf:
            await remove_identity(uow, CASHIER, c.id, theirs)
    assert nf.value.code == "identity_not_found"
    # a nameless customer keeps their only e-mail
    async with db.uow() as uow:
        bare = await create_customer(uow, CASHIER, CustomerIn(email=new_email()))
        await uow.commit()
    async with db.reader() as s:
        only = (await identities_of(s, bare.id))[0].id
    async with db.uow() as uow:
        with pytest.raises(Conflict) as e:
            await remove_identity(uow, CASHIER, bare.id, only)
    assert e.value.code == "last_identity"


async def test_a_card_is_issued_once(db: Database, shop: Shop) -> None:
    c = await new_customer(db, card=False)
    async with db.reader() as s:
        assert (await customer_card(s, CASHIER, c.id)).card is None
    async with db.uow() as uow:
        number = await issue_card(uow, CASHIER, c.id)
        await uow.commit()
    assert len(number) == 12 and number.isdigit()
    async with db.reader() as s:
        assert (await customer_card(s, CASHIER, c.id)).card == number
        assert [m.id for m in await find_customers(s, CASHIER, number)] == [c.id]
    async with db.uow() as uow:
        with pytest.raises(Conflict) as e:
            await issue_card(uow, CASHIER, c.id)
    assert e.value.code == "card_exists"
    assert [a for a, _ in await audit(db, c.id)].count("customer.card_issue") == 1
    assert "card" in await contact_events(db, c.id)


async def test_consents_are_appended_with_the_channel(db: Database, shop: Shop) -> None:
    c = await new_customer(db)  # the till recorded two refusals
    async with db.uow() as uow:
        assert await set_consents(uow, CASHIER, c.id, {"marketing_email": True,
                                                       "marketing_sms": False},
                                  "service") == ["marketing_email"]
        await uow.commit()
    async with db.uow() as uow:
        assert await set_consents(uow, MANAGER, c.id, {"marketing_email": False,
                                                       "marketing_sms": True},
                                  "backoffice") == ["marketing_email", "marketing_sms"]
        assert await set_consents(uow, MANAGER, c.id, {"marketing_sms": True},
                                  "backoffice") == []
        await uow.commit()
    async with db.reader() as s:
        history = await consent_history(s, c.id)
        shown = {x.kind: x for x in await consent_details(s, c.id)}
    assert [(h.kind, h.granted, h.channel) for h in history] == [
        ("marketing_sms", True, "backoffice"), ("marketing_email", False, "backoffice"),
        ("marketing_email", True, "service"), ("marketing_sms", False, "pos"),
        ("marketing_email", False, "pos")]
    assert (shown["marketing_sms"].granted, shown["marketing_sms"].channel) == (True,
                                                                               "backoffice")
    assert shown["marketing_sms"].at is not None
    consents = [d for a, d in await audit(db, c.id) if a == "customer.consent"]
    assert consents == [
        {"kind": "marketing_email", "granted": True, "channel": "service"},
        {"kind": "marketing_email", "granted": False, "channel": "backoffice"},
        {"kind": "marketing_sms", "granted": True, "channel": "backoffice"}]
    for granted, channel, code in (({"marketing_email": True}, "web", "invalid_channel"),
                                   ({"newsletter": True}, "pos", "invalid_consent")):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await set_consents(uow, CASHIER, c.id, granted, channel)
        assert e.value.code == code
    async with db.reader() as s:
        assert len(await consent_history(s, c.id)) == 5


async def test_permissions_merged_and_erased_customers(db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    calls = (lambda uow: update_name(uow, FINANCE, c.id, "Ei", "Saa"),
             lambda uow: add_identity(uow, FINANCE, c.id, "phone", "0401234567"),
             lambda uow: remove_identity(uow, FINANCE, c.id, 1),
             lambda uow: issue_card(uow, FINANCE, c.id),
             lambda uow: set_consents(uow, FINANCE, c.id, {"marketing_sms": True}, "pos"))
    for call in calls:
        async with db.uow() as uow:
            with pytest.raises(Forbidden):
                await call(uow)
    async with db.uow() as uow:
        with pytest.raises(NotFound):
            await update_name(uow, CASHIER, 2**61, "Ei", "Ketään")
    assert not [a for a, _ in await audit(db, c.id) if a != "customer.consent"]
    # a merged customer's old id changes the kept customer
    kept, merged = await new_customer(db, "Kaija"), await new_customer(db, "Kaija")
    async with db.uow() as uow:
        await merge_customers(uow, MANAGER, kept.id, merged.id)
        await uow.commit()
    phone = f"+35845{digits()}"
    async with db.uow() as uow:
        await add_identity(uow, CASHIER, merged.id, "phone", phone)
        await update_name(uow, CASHIER, merged.id, "Kaija", "Kept")
        await uow.commit()
    assert ("phone", phone) in await values_of(db, kept.id)
    async with db.reader() as s:
        k = await s.get(Customer, kept.id)
        m = await s.get(Customer, merged.id)
    assert k and m and k.last_name == "Kept" and m.last_name != "Kept"
    # an erased one cannot be changed
    gone = await new_customer(db, "Poistuva")
    async with db.uow() as uow:
        await erase_customer(uow, SYSTEM, gone.id, "asked")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Conflict) as e:
            await add_identity(uow, CASHIER, gone.id, "email", new_email())
    assert e.value.code == "customer_erased"
    async with db.reader() as s:
        assert [k for k, in (await s.execute(select(CustomerIdentity.kind).where(
            CustomerIdentity.customer_id == gone.id))).all() if k == "email"] == []


# --- the pages -------------------------------------------------------------------------------

def identity_rows(page: str) -> list[tuple[str, str]]:
    return [(k, html.unescape(v)) for k, v in re.findall(
        r'data-testid="identity" data-kind="(\w+)" data-identity-id="(\d+)"', page)]


async def test_contact_forms_on_the_till_card(web: httpx.AsyncClient, db: Database,
                                              shop: Shop) -> None:
    c, other = await new_customer(db, "Tilli"), await new_customer(db, "Toinen")
    assert other.phone
    csrf = await login(web, shop, "cashier1")
    h = {**HX, "X-CSRF-Token": csrf}
    base = f"/pos/store-1/customers/{c.id}/contact"
    r = await web.get(f"/pos/store-1/customers/{c.id}", headers=HX)
    assert 'data-testid="contact-edit"' in r.text and "Muokkaa yhteystietoja" in r.text
    assert 'data-testid="contact-card-issue"' not in r.text  # has a card
    number = digits()
    r = await web.post(f"{base}/phone", data={"value": f"040 {number[:3]} {number[3:]}"},
                       headers=h)
    assert r.status_code == 200
    assert text_of(r.text, "contact-saved") == "Puhelinnumero lisätty."
    assert f"+35840{number}" in r.text and "<details" in r.text and " open>" in r.text
    # bad and taken numbers: next to the field, what was typed kept, nothing added
    r = await web.post(f"{base}/phone", data={"value": "12"}, headers=h)
    assert r.status_code == 422 and text_of(r.text, "contact-phone-error") == \
        "Tarkista puhelinnumero."
    assert 'value="12"' in r.text and 'aria-invalid="true"' in r.text
    r = await web.post(f"{base}/phone", data={"value": other.phone}, headers=h)
    assert r.status_code == 409
    assert text_of(r.text, "contact-phone-error") == "Tämä numero on jo toisella asiakkaalla."
    assert 'data-testid="duplicates-link"' not in r.text  # a cashier does not merge
    r = await web.post(f"{base}/name", data={"first_name": "", "last_name": ""}, headers=h)
    assert r.status_code == 422 and text_of(r.text, "contact-first-name-error")
    r = await web.post(f"{base}/name", data={"first_name": "Tiltu", "last_name": "Uusi"},
                       headers=h)
    assert r.status_code == 200 and text_of(r.text, "customer-name") == "Tiltu Uusi"
    assert text_of(r.text, "contact-saved") == "Nimi tallennettu."
    # consents: ticked e-mail, since when and where
    r = await web.post(f"{base}/consents", data={"marketing_email": "yes"}, headers=h)
    assert r.status_code == 200
    assert text_of(r.text, "consents-saved") == "Markkinointiluvat tallennettu."
    assert re.search(r'data-testid="consent-marketing_email" data-granted="yes"', r.text)
    assert "alkaen" in r.text and "kassa" in r.text
    # remove the added phone; the card cannot be removed (no button)
    async with db.reader() as s:
        added = next(i for i in await identities_of(s, c.id) if i.value == f"+35840{number}")
    r = await web.post(f"{base}/remove", data={"identity_id": str(added.id)}, headers=h)
    assert r.status_code == 200 and f"+35840{number}" not in r.text
    assert text_of(r.text, "contact-saved") == "Poistettu."
    assert r.text.count('data-testid="identity-remove"') == 2  # the e-mail and phone
    r = await web.post(f"{base}/remove", data={"identity_id": "abc"}, headers=h)
    assert r.status_code == 422 and text_of(r.text, "contact-identity-error")
    # without htmx: back to the card; without CSRF: refused; no such action: 404
    r = await web.post(f"{base}/consents", data={"marketing_email": "yes",
                                                 "marketing_sms": "yes", "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/pos/store-1/customers/{c.id}"
    r = await web.post(f"{base}/card", data={"csrf_token": csrf})
    assert r.status_code == 409 and text_of(r.text, "contact-card-error") == \
        "Asiakkaalla on jo kanta-asiakaskortti."
    assert (await web.post(f"{base}/phone", data={"value": "0401"}, headers=HX)
            ).status_code == 403
    assert (await web.post(f"{base}/nope", data={}, headers=h)).status_code == 404
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
    assert card.consents == {"marketing_email": True, "marketing_sms": True}
    assert other.phone not in [i.value for i in card.identities]


async def test_card_issued_on_the_till_card_and_finance_cannot(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    c = await new_customer(db, card=False)
    csrf = await login(web, shop, "cashier1")
    h = {**HX, "X-CSRF-Token": csrf}
    r = await web.get(f"/pos/store-1/customers/{c.id}", headers=HX)
    assert "Anna kanta-asiakaskortti" in r.text
    r = await web.post(f"/pos/store-1/customers/{c.id}/contact/card", headers=h)
    assert r.status_code == 200 and text_of(r.text, "contact-saved") == \
        "Kanta-asiakaskortti annettu."
    assert re.fullmatch(r"\d{12}", text_of(r.text, "customer-card-number"))
    r = await web.post(f"/pos/store-1/customers/{c.id}/contact/card", headers=h)
    assert r.status_code == 409 and text_of(r.text, "contact-card-error")

    web.cookies.clear()
    csrf = await login(web, shop, "finance")
    r = await web.get(f"/pos/store-1/customers/{c.id}", headers=HX)
    assert r.status_code == 200 and 'data-testid="contact-edit"' not in r.text
    assert 'data-testid="consents-form"' not in r.text
    assert 'data-testid="consent-marketing_email"' in r.text
    r = await web.post(f"/pos/store-1/customers/{c.id}/contact/phone",
                       data={"value": "0401234567"}, headers={**HX, "X-CSRF-Token": csrf})
    assert r.status_code == 403
    r = await web.post(f"/backoffice/customers/{c.id}/contact/name",
                       data={"first_name": "X", "last_name": "", "csrf_token": csrf})
    assert r.status_code == 403
    async with db.reader() as s:
        assert (await customer_card(s, CASHIER, c.id)).first_name == "Ulla"


async def test_contact_forms_in_the_back_office(web: httpx.AsyncClient, db: Database,
                                                shop: Shop) -> None:
    c, other = await new_customer(db, "Bo"), await new_customer(db, "Muu")
    assert other.email
    csrf = await login(web, shop, "manager")
    base = f"/backoffice/customers/{c.id}/contact"
    email = new_email()
    r = await web.post(f"{base}/email", data={"value": email.upper(), "csrf_token": csrf})
    assert r.status_code == 303
    assert r.headers["location"] == f"/backoffice/customers/{c.id}?saved=contact_email"
    r = await web.get(r.headers["location"])
    assert text_of(r.text, "contact-saved") == "Sähköpostiosoite lisätty."
    assert email in r.text
    # taken: 409 next to the field with a link to the duplicates for a manager
    r = await web.post(f"{base}/email", data={"value": other.email, "csrf_token": csrf})
    assert r.status_code == 409
    assert text_of(r.text, "contact-email-error").startswith(
        "Tämä sähköpostiosoite on jo toisella asiakkaalla.")
    link = re.search(r'href="(/backoffice/customers/duplicates\?q=[^"]+)"', r.text)
    assert link
    r2 = await web.get(html.unescape(link[1]))
    assert r2.status_code == 200 and f'value="{other.email}"' in r2.text
    r = await web.post(f"{base}/consents", data={"marketing_sms": "yes", "csrf_token": csrf})
    assert r.status_code == 303
    r = await web.get(r.headers["location"])
    assert text_of(r.text, "consents-saved") == "Markkinointiluvat tallennettu."
    assert re.search(r'data-testid="consent-marketing_sms" data-granted="yes"', r.text)
    assert "alkaen" in text_of(r.text, "consent-marketing_sms")
    assert "taustatoimisto" in text_of(r.text, "consent-marketing_sms")
    r = await web.post(f"{base}/name", data={"first_name": "x" * 101, "last_name": "",
                                             "csrf_token": csrf})
    assert r.status_code == 422 and text_of(r.text, "contact-first-name-error")
    async with db.reader() as s:
        history = await consent_history(s, c.id)
        card = await customer_card(s, CASHIER, c.id)
    assert (history[0].kind, history[0].channel) == ("marketing_sms", "backoffice")
    assert card.first_name == "Bo" and email in [i.value for i in card.identities]


async def test_contact_forms_on_the_service_desk_card(web: httpx.AsyncClient, db: Database,
                                                      shop: Shop) -> None:
    c = await new_customer(db, "Palvelu")
    async with db.uow() as uow:
        msg = await chat.post_visitor_message(uow, chat.new_visitor_token(), "Hei!",
                                              uuid.uuid4().hex, customer_id=c.id)
        await uow.commit()
    conv = msg.conversation_id
    csrf = await login(web, shop, "service")
    h = {**HX, "X-CSRF-Token": csrf}
    r = await web.get(f"/service/c/{conv}")
    assert 'data-testid="contact-edit"' in r.text and 'data-testid="consents-form"' in r.text
    number = digits()
    r = await web.post(f"/service/c/{conv}/contact/phone", data={"value": f"045{number}"},
                       headers=h)
    assert r.status_code == 200 and 'id="svc-customer"' in r.text
    assert f"+35845{number}" in r.text
    r = await web.post(f"/service/c/{conv}/contact/phone", data={"value": "045"}, headers=h)
    assert r.status_code == 422 and text_of(r.text, "contact-phone-error")
    # a plain form post: the desk page with the error, or back to the conversation
    r = await web.post(f"/service/c/{conv}/contact/email",
                       data={"value": "ei osoite", "csrf_token": csrf})
    assert r.status_code == 422
    assert text_of(r.text, "contact-email-error") == "Tarkista sähköpostiosoite."
    r = await web.post(f"/service/c/{conv}/contact/name",
                       data={"first_name": "Palvelu", "last_name": "Uusi", "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/service/c/{conv}"
    r = await web.post(f"/service/c/{conv}/contact/consents",
                       data={"marketing_email": "yes", "marketing_sms": "yes"}, headers=h)
    assert r.status_code == 200 and text_of(r.text, "consents-saved")
    async with db.reader() as s:
        history = await consent_history(s, c.id)
    assert {(x.kind, x.channel) for x in history[:2]} == {("marketing_email", "service"),
                                                          ("marketing_sms", "service")}
