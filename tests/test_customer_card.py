"""The customer card at the till: finding a customer by phone, e-mail, card or name; the
card's figures across channels; preferences and notes; quick create with consents; the
/pos/{code}/customers pages and who may use them (both databases)."""

from __future__ import annotations

import random
import re
import uuid

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers.card import (
    QuickCustomerIn,
    customer_card,
    find_customers,
    quick_create,
    quick_create_defaults,
)
from saumaton.customers.models import (
    Customer,
    CustomerConsent,
    CustomerNote,
    CustomerPreference,
)
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.services import CustomerIn, CustomerOut, create_customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from tests.support import Shop, csrf_of, make_variants, pay_web_order, text_of
from tests.support import staff_login as login

HX = {"HX-Request": "true"}
CASHIER = Actor(label="staff:test cashier", staff_id=None, name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
FINANCE = Actor(label="staff:test finance", name="Fiia", grants=(RoleGrant("finance", None),))


def new_phone() -> tuple[str, str]:
    """A fresh Finnish mobile number: (as typed at the till, E.164)."""
    digits = f"{random.randrange(10**7):07d}"
    return f"040 {digits[:3]} {digits[3:]}", f"+35840{digits}"


def letters(n: int = 8) -> str:
    """A random tag that can be part of a name (no digits)."""
    return "".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def new_email() -> str:
    return f"card.{uuid.uuid4().hex[:10]}@example.fi"


async def new_customer(db: Database, first: str = "Anna", last: str = "Virtanen", *,
                       email: bool = True) -> CustomerOut:
    typed, _ = new_phone()
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=typed, first_name=first, last_name=last,
            email=new_email() if email else ""))
        await uow.commit()
    return out


async def web_order(db: Database, settings: Settings, shop: Shop, c: CustomerOut, price: int,
                    *, pay: bool = True, delivery: str = "home") -> OrderOut:
    """A webshop order by the customer's e-mail, paid through the Paytrail result."""
    [v] = await make_variants(db, [price], stock={shop.warehouse: 5, shop.store1: 5})
    assert c.email
    cmd = CheckoutIn(email=c.email, phone=c.phone or "", first_name=c.first_name,
                     last_name=c.last_name or "X", delivery=delivery,  # type: ignore[arg-type]
                     pickup_location_id=shop.store1 if delivery == "pickup" else None,
                     address=AddressIn(name="Anna", street="Katu 1", postcode="00100",
                                       city="Helsinki") if delivery == "home" else None,
                     lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)])
    order, _ = await place_web_order(db, settings, cmd, customer_id=None,
                                     key=f"w-{uuid.uuid4().hex}")
    assert order.customer_id == c.id
    if pay:
        await pay_web_order(db, settings, order)
    return order


async def store_order(db: Database, shop: Shop, customer_id: int, price: int) -> OrderOut:
    [v] = await make_variants(db, [price], stock={shop.store1: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=2)],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"s-{uuid.uuid4().hex}")
    return order


# --- finding ----------------------------------------------------------------------------------

async def test_find_by_phone_email_card_and_name(db: Database, shop: Shop) -> None:
    last = f"Zyx{uuid.uuid4().hex[:6]}"
    anna = await new_customer(db, "Anna", last)
    assert anna.phone and anna.email and anna.card and len(anna.card) == 12
    async with db.reader() as s:
        local = "0" + anna.phone[4:]  # '040…'
        spaced = f"{local[:3]} {local[3:6]} {local[6:]}"
        for typed in (anna.phone, local, spaced, f"00358{anna.phone[4:]}"):
            found = await find_customers(s, CASHIER, typed)
            assert [(m.id, m.matched_by) for m in found] == [(anna.id, "phone")], typed
        found = await find_customers(s, CASHIER, "  " + anna.email.upper() + " ")
        assert [(m.id, m.matched_by) for m in found] == [(anna.id, "email")]
        card = f"{anna.card[:4]} {anna.card[4:8]} {anna.card[8:]}"
        found = await find_customers(s, CASHIER, card)
        assert [(m.id, m.matched_by) for m in found] == [(anna.id, "card")]
        assert found[0].name == f"Anna {last}"
        # nobody: an empty list, not an error
        other, _ = new_phone()
        assert await find_customers(s, CASHIER, other) == []


async def test_find_by_name_prefix_at_most_ten(db: Database, shop: Shop) -> None:
    tag = letters()
    last = f"Ålander{tag}"
    people = [await new_customer(db, f"Eeva{chr(97 + i)}", last, email=False)
              for i in range(12)]
    other = await new_customer(db, f"Äijä{tag}", "Mäkinen", email=False)
    async with db.reader() as s:
        found = await find_customers(s, CASHIER, f"ålander{tag}")
        assert len(found) == 10
        assert {m.id for m in found} <= {p.id for p in people}
        assert all(m.matched_by == "name" for m in found)
        # first and last name, either order, as typed
        found = await find_customers(s, CASHIER, "eevad ÅLAN")
        assert [m.id for m in found] == [people[3].id]
        found = await find_customers(s, CASHIER, f"Ålander{tag} Eeval")
        assert [m.id for m in found] == [people[11].id]
        found = await find_customers(s, CASHIER, f"äijä{tag}")
        assert [m.id for m in found] == [other.id]


async def test_name_matches_come_in_name_order_last_names_first(
        db: Database, shop: Shop) -> None:
    tag = letters()
    liisa = await new_customer(db, "Liisa", f"Zq{tag}", email=False)
    first_named = await new_customer(db, f"Zq{tag}", "Aalto", email=False)
    aino = await new_customer(db, "Aino", f"Zq{tag}", email=False)
    second = await new_customer(db, f"Zq{tag}", "Bäck", email=False)
    async with db.reader() as s:
        found = await find_customers(s, CASHIER, f"zq{tag}")
    # Last-name matches by first name, then first-name matches by last name.
    assert [m.id for m in found] == [aino.id, liisa.id, first_named.id, second.id]


@pytest.mark.parametrize("typed", ["", "   ", "a", "abc1", "12", "040", "+358 12", "x@",
                                   "anna@", "1" * 400])
async def test_a_search_that_can_be_nothing_is_refused(db: Database, shop: Shop,
                                                       typed: str) -> None:
    async with db.reader() as s:
        with pytest.raises(ValidationFailed) as e:
            await find_customers(s, CASHIER, typed)
    assert e.value.code == "invalid_customer_query" and e.value.field == "q"


def test_the_create_form_is_prefilled_with_what_was_typed() -> None:
    assert quick_create_defaults("040 123 4567") == {"phone": "040 123 4567"}
    assert quick_create_defaults("Anna@Example.fi") == {"email": "Anna@Example.fi"}
    assert quick_create_defaults("Anna Virtanen") == {"first_name": "Anna",
                                                      "last_name": "Virtanen"}
    assert quick_create_defaults("912345678903") == {}


# --- the card ---------------------------------------------------------------------------------

async def test_card_counts_purchases_in_every_channel(db: Database, shop: Shop,
                                                      settings: Settings) -> None:
    c = await new_customer(db)
    web = await web_order(db, settings, shop, c, 4000)  # home delivery: + fee
    store = await store_order(db, shop, c.id, 1250)
    pickup = await web_order(db, settings, shop, c, 2500, delivery="pickup")
    pending = await web_order(db, settings, shop, c, 9900, pay=False)
    cancelled = await web_order(db, settings, shop, c, 7700, pay=False)
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == cancelled.id)
                                  .values(status="cancelled"))
        await uow.commit()
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
        assert card.name == "Anna Virtanen" and card.phone == c.phone and card.card == c.card
        assert card.purchase_count == 3
        assert card.lifetime_value_cents == web.total_cents + store.total_cents \
            + pickup.total_cents
        assert web.total_cents > 4000 and store.total_cents == 2500
        assert card.last_purchase_at is not None
        numbers = [p.number for p in card.recent]
        assert numbers == [pickup.number, store.number, web.number]  # newest first
        assert pending.number not in numbers and cancelled.number not in numbers
        by_number = {p.number: p for p in card.recent}
        assert by_number[web.number].web and by_number[web.number].place == ""
        assert not by_number[store.number].web
        assert by_number[store.number].place == "Store Helsinki"
        assert by_number[store.number].items == [f"2 × {store.lines[0].name}"]
        assert by_number[store.number].total_cents == 2500
        assert [(p.number, p.store) for p in card.open_pickups] == [
            (pickup.number, "Store Helsinki")]
        assert card.consents == {"marketing_email": False, "marketing_sms": False}
        # the finance role reads the card; nobody without a customer role does
        assert (await customer_card(s, FINANCE, c.id)).purchase_count == 3
        with pytest.raises(Forbidden):
            await customer_card(s, Actor(label="nobody"), c.id)
        with pytest.raises(NotFound):
            await customer_card(s, CASHIER, 2**61)
    # handed over: no longer waiting
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == pickup.id)
                                  .values(status="collected"))
        await uow.commit()
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
    assert card.open_pickups == [] and card.purchase_count == 3


async def outbox_for(db: Database, customer_id: int) -> list[str]:
    async with db.reader() as s:
        rows = (await s.execute(select(OutboxEvent.topic, OutboxEvent.payload)
                                .order_by(OutboxEvent.id))).all()
    return [t for t, p in rows if isinstance(p, dict) and p.get("customer_id") == customer_id]


async def test_preferences_and_notes(db: Database, shop: Shop) -> None:
    c = await new_customer(db)
    before = (await outbox_for(db, c.id)).count("customer.updated")  # its consents
    async with db.uow() as uow:
        assert await set_preference(uow, CASHIER, c.id, "shade", " 2N  Neutral ")
        assert await set_preference(uow, CASHIER, c.id, "skin_type", "sensitive")
        await add_note(uow, CASHIER, c.id, "Prefers fragrance-free.", "pos")
        await uow.commit()
    async with db.uow() as uow:
        assert not await set_preference(uow, CASHIER, c.id, "shade", "2N Neutral")  # same
        assert await set_preference(uow, CASHIER, c.id, "shade", "3W")
        assert await set_preference(uow, CASHIER, c.id, "skin_type", "")  # removes it
        await add_note(uow, CASHIER, c.id, "  Asked about the new serum.\r\nCall back.  ",
                       "service")
        await uow.commit()
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
        row = await s.get(CustomerPreference, (c.id, "shade"))
    assert card.preferences == {"shade": "3W"}
    assert row is not None and row.updated_by == "Kaisa Kassa"
    assert [n.body for n in card.notes] == ["Asked about the new serum.\nCall back.",
                                            "Prefers fragrance-free."]
    assert [(n.author, n.channel) for n in card.notes] == [("Kaisa Kassa", "service"),
                                                          ("Kaisa Kassa", "pos")]
    # Each change that stuck (not the repeated value) tells the open cards.
    assert (await outbox_for(db, c.id)).count("customer.updated") == before + 6

    bad = [("Shade", "x", "unknown_preference"), ("shade-1", "x", "unknown_preference"),
           ("a" * 51, "x", "unknown_preference"), ("shade", "x" * 201, "preference_too_long"),
           ("skin_type", "kuiva", "invalid_choice")]
    for key, value, code in bad:
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await set_preference(uow, CASHIER, c.id, key, value)
        assert e.value.code == code
    for body, code in (("", "note_empty"), ("   ", "note_empty"), ("x" * 2001, "note_too_long")):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as e:
                await add_note(uow, CASHIER, c.id, body, "pos")
        assert e.value.code == code and e.value.field == "body"
    async with db.uow() as uow:
        await add_note(uow, CASHIER, c.id, "x" * 2000, "pos")  # the longest allowed
        with pytest.raises(ValidationFailed):
            await add_note(uow, CASHIER, c.id, "ok", "fax")
        with pytest.raises(Forbidden):
            await add_note(uow, FINANCE, c.id, "not allowed", "pos")
        with pytest.raises(Forbidden):
            await set_preference(uow, FINANCE, c.id, "shade", "1C")
        with pytest.raises(NotFound):
            await add_note(uow, CASHIER, 2**61, "nobody", "pos")
    async with db.reader() as s:
        assert len((await s.scalars(select(CustomerNote.id)
                                    .where(CustomerNote.customer_id == c.id))).all()) == 2


# --- quick create -----------------------------------------------------------------------------

async def test_quick_create_records_consents_and_refuses_duplicates(db: Database,
                                                                    shop: Shop) -> None:
    typed, e164 = new_phone()
    email = new_email()
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=typed, first_name="  Liisa ", email=email.upper(), marketing_email=True))
        await uow.commit()
    assert (out.phone, out.email, out.first_name, out.last_name) == (e164, email, "Liisa", "")
    assert out.card and out.card.isdigit()
    async with db.reader() as s:
        rows = (await s.execute(select(CustomerConsent.kind, CustomerConsent.granted,
                                       CustomerConsent.channel)
                                .where(CustomerConsent.customer_id == out.id)
                                .order_by(CustomerConsent.kind))).all()
    assert [tuple(r) for r in rows] == [("marketing_email", True, "pos"),
                                        ("marketing_sms", False, "pos")]
    # the same phone in another format, or the same e-mail: 409 on that field
    for data, field in ((QuickCustomerIn(phone=e164, first_name="Toinen"), "phone"),
                        (QuickCustomerIn(phone=new_phone()[0], first_name="Toinen",
                                         email=email), "email")):
        async with db.uow() as uow:
            with pytest.raises(Conflict) as e:
                await quick_create(uow, CASHIER, data)
        assert e.value.code == "customer_exists" and e.value.field == field
        assert e.value.extra["customer_id"] == out.id
    for data, field, code in (
            (QuickCustomerIn(first_name="Anna"), "phone", "required"),
            (QuickCustomerIn(phone="123", first_name="Anna"), "phone", "invalid_phone"),
            (QuickCustomerIn(phone=new_phone()[0]), "first_name", "required"),
            (QuickCustomerIn(phone=new_phone()[0], first_name="A" * 101), "first_name",
             "too_long"),
            (QuickCustomerIn(phone=new_phone()[0], first_name="A", email="nope"), "email",
             "invalid_email")):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as v:
                await quick_create(uow, CASHIER, data)
        assert (v.value.field, v.value.code) == (field, code)
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await quick_create(uow, FINANCE, QuickCustomerIn(phone=new_phone()[0],
                                                             first_name="Fiia"))


# --- the pages --------------------------------------------------------------------------------



async def test_find_page_answers_card_list_or_create_form(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    csrf = await login(web, shop, "cashier1")
    c = await new_customer(db, "Pirjo", f"Qvist{letters()}")
    order = await web_order(db, settings, shop, c, 3000)
    assert c.phone
    local = "0" + c.phone[4:]
    r = await web.get("/pos/store-1/customers/find", params={"q": local}, headers=HX)
    assert r.status_code == 200
    assert "<html" not in r.text and 'data-testid="customer-card"' in r.text
    assert text_of(r.text, "purchase-count") == "1"
    assert text_of(r.text, "purchase-number") == order.number
    assert text_of(r.text, "purchase-where") == "verkkokauppa"
    assert re.search(rf'data-action="attach-customer" data-customer-id="{c.id}"\s+'
                     rf'data-customer-name="Pirjo Qvist', r.text)
    # the same without htmx: the whole page, with the search form
    r = await web.get("/pos/store-1/customers/find", params={"q": local})
    assert r.status_code == 200 and "<html" in r.text and 'data-testid="customer-search"' in r.text
    # several: a list to pick from
    twin = await new_customer(db, "Pirjo", c.last_name)
    r = await web.get("/pos/store-1/customers/find", params={"q": f"pirjo {c.last_name[:9]}"},
                      headers=HX)
    assert r.status_code == 200 and r.text.count('data-testid="customer-match"') == 2
    assert f'hx-get="/pos/store-1/customers/{twin.id}"' in r.text
    # none: the create form, prefilled
    typed, _ = new_phone()
    r = await web.get("/pos/store-1/customers/find", params={"q": typed}, headers=HX)
    assert r.status_code == 200 and 'data-testid="customer-not-found"' in r.text
    assert re.search(rf'name="phone" type="tel" value="{typed}"', r.text)
    # nonsense: a message for the search field
    r = await web.get("/pos/store-1/customers/find", params={"q": "abc1"}, headers=HX)
    assert r.status_code == 422
    assert 'id="customer-q-error"' in r.text and "nimestä" in text_of(r.text,
                                                                    "customer-query-error")
    # the card on its own page
    r = await web.get(f"/pos/store-1/customers/{c.id}")
    assert r.status_code == 200 and "<html" in r.text
    assert text_of(r.text, "customer-name") == f"Pirjo {c.last_name}"
    r = await web.get("/pos/store-1/customers/999999999", headers=HX)
    assert r.status_code == 404
    assert csrf


async def test_create_note_and_preference_pages(web: httpx.AsyncClient, db: Database,
                                                shop: Shop) -> None:
    csrf = await login(web, shop, "cashier1")
    h = {**HX, "X-CSRF-Token": csrf}
    typed, e164 = new_phone()
    form = {"phone": typed, "first_name": "Sanni", "last_name": "Salo",
            "marketing_sms": "yes"}
    r = await web.post("/pos/store-1/customers", data=form, headers=h)
    assert r.status_code == 200, r.text
    assert text_of(r.text, "customer-phone") == e164
    assert text_of(r.text, "customer-saved") == "Asiakas luotu."
    cid = int(re.findall(r'data-customer-id="(\d+)"', r.text)[0])
    async with db.reader() as s:
        assert (await s.get(Customer, cid)) is not None
        granted = (await s.execute(select(CustomerConsent.kind, CustomerConsent.channel)
                                   .where(CustomerConsent.customer_id == cid,
                                          CustomerConsent.granted.is_(True)))).all()
    assert [tuple(g) for g in granted] == [("marketing_sms", "pos")]
    # again: 409 next to the phone field, with a link to the customer; nothing made
    r = await web.post("/pos/store-1/customers", data={**form, "first_name": "Toinen"},
                       headers=h)
    assert r.status_code == 409
    assert 'aria-describedby="cc-phone-error"' in r.text
    assert "puhelinnumerolla" in text_of(r.text, "create-error-phone")
    assert f'href="/pos/store-1/customers/{cid}"' in r.text
    assert 'value="Toinen"' in r.text and "checked" in r.text
    # no CSRF token: refused
    r = await web.post("/pos/store-1/customers", data=form, headers=HX)
    assert r.status_code == 403

    r = await web.post(f"/pos/store-1/customers/{cid}/notes", data={"body": "Likes 2N."},
                       headers=h)
    assert r.status_code == 200 and text_of(r.text, "note-body") == "Likes 2N."
    assert text_of(r.text, "note-author") == "Cashier1"
    r = await web.post(f"/pos/store-1/customers/{cid}/notes", data={"body": " "}, headers=h)
    assert r.status_code == 422 and 'aria-describedby="note-' in r.text
    assert text_of(r.text, "note-error") == "Kirjoita ensin muistiinpano."
    r = await web.post(f"/pos/store-1/customers/{cid}/preferences",
                       data={"shade": "2N", "skin_type": "dry"}, headers=h)
    assert r.status_code == 200 and text_of(r.text, "preference-shade") == "2N"
    assert text_of(r.text, "preference-skin_type") == "kuiva"  # the option, in Finnish
    r = await web.post(f"/pos/store-1/customers/{cid}/preferences",
                       data={"shade": "x" * 201, "skin_type": ""}, headers=h)
    assert r.status_code == 422 and text_of(r.text, "pref-error-shade")
    # without htmx: back to the card page
    r = await web.post(f"/pos/store-1/customers/{cid}/notes",
                       data={"body": "Second.", "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/pos/store-1/customers/{cid}"
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, cid)
    assert card.preferences == {"shade": "2N", "skin_type": "dry"}  # the 422 changed nothing
    assert [n.body for n in card.notes] == ["Second.", "Likes 2N."]


async def test_who_may_read_and_write(web: httpx.AsyncClient, db: Database,
                                      shop: Shop) -> None:
    c = await new_customer(db)
    # finance reads the card at any store, without the forms, and may not write
    csrf = await login(web, shop, "finance")
    r = await web.get(f"/pos/store-1/customers/{c.id}", headers=HX)
    assert r.status_code == 200 and 'data-testid="customer-card"' in r.text
    assert 'data-testid="note-form"' not in r.text
    h = {**HX, "X-CSRF-Token": csrf}
    r = await web.post(f"/pos/store-1/customers/{c.id}/notes", data={"body": "x"}, headers=h)
    assert r.status_code == 403
    r = await web.post("/pos/store-1/customers", data={"phone": new_phone()[0],
                                                       "first_name": "F"}, headers=h)
    assert r.status_code == 403
    # a Tampere cashier has no role in Helsinki
    async with httpx.AsyncClient(transport=web._transport, base_url="http://test") as other:
        await login_elsewhere(other, shop)
        assert c.phone
        for url in (f"/pos/store-1/customers/{c.id}", f"/pos/store-1/customers/find?q={c.email}",
                    "/pos/store-1/customers"):
            assert (await other.get(url, headers=HX)).status_code == 403, url
        assert (await other.get(f"/pos/store-2/customers/{c.id}", headers=HX)).status_code == 200
    async with db.reader() as s:
        assert (await s.scalars(select(CustomerNote.id)
                                .where(CustomerNote.customer_id == c.id))).all() == []


async def login_elsewhere(c: httpx.AsyncClient, shop: Shop) -> None:
    page = (await c.get("/staff/login")).text
    email, password = shop.logins["cashier2"]
    r = await c.post("/staff/login", data={"email": email, "password": password,
                                           "csrf_token": csrf_of(page)})
    assert r.status_code == 303


async def test_create_customer_shares_the_register(db: Database, shop: Shop) -> None:
    """A customer made elsewhere (the API) is found at the till the same way."""
    typed, e164 = new_phone()
    async with db.uow() as uow:
        out = await create_customer(uow, SYSTEM, CustomerIn(first_name="Api", phone=e164))
        await uow.commit()
    async with db.reader() as s:
        assert [m.id for m in await find_customers(s, CASHIER, typed)] == [out.id]


async def test_back_office_notes(db: Database, shop: Shop, web: httpx.AsyncClient) -> None:
    c = await new_customer(db)
    csrf = await login(web, shop, "manager")
    url = f"/backoffice/customers/{c.id}"
    r = await web.post(f"{url}/notes", data={"csrf_token": csrf, "body": "  "})
    assert r.status_code == 422 and text_of(r.text, "note-error")
    assert 'aria-invalid="true"' in r.text
    r = await web.post(f"{url}/notes", data={"csrf_token": csrf,
                                             "body": "Soitti: toimitus myöhässä."})
    assert r.status_code == 303 and r.headers["location"] == f"{url}?saved=note"
    page = (await web.get(r.headers["location"])).text
    assert text_of(page, "customer-saved") == "Muistiinpano tallennettu."
    assert text_of(page, "note-body") == "Soitti: toimitus myöhässä."
    async with db.reader() as s:
        card = await customer_card(s, CASHIER, c.id)
    assert [(n.body, n.channel) for n in card.notes] == [
        ("Soitti: toimitus myöhässä.", "backoffice")]
