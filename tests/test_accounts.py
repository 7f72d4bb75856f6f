"""Shopper accounts: registration, sign-in, verification, password reset, addresses,
consents and the order history across channels; the services, the /account pages
(in-process) and a browser run against a real server (both databases)."""

from __future__ import annotations

import asyncio
import ctypes
import html
import os
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from argon2 import PasswordHasher
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import select, update

from saumaton.checkout.cart import add_to_cart, find_cart
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from saumaton.customers import accounts, addresses, consents
from saumaton.customers.models import (
    AccountToken,
    CustomerAccount,
    CustomerConsent,
    CustomerIdentity,
)
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from tests.support import Server, Shop, make_variants

PASSWORD = "vihreä kettu hyppää"
T = TypeVar("T")


def new_email() -> str:
    return f"Asiakas.{uuid.uuid4().hex[:10]}@Example.FI"


async def register(db: Database, settings: Settings, email: str, *,
                   password: str = PASSWORD, marketing: bool = False, first: str = "Maija",
                   last: str = "Meikäläinen", lang: str = "fi") -> int:
    async with db.uow() as uow:
        cid = await accounts.register(uow, email=email, password=password, first_name=first,
                                      last_name=last, marketing_email=marketing, lang=lang,
                                      base_url="https://kauppa.example", settings=settings)
        await uow.commit()
    return cid


async def last_mail(db: Database, to: str, kind: str) -> OutgoingMail | None:
    async with db.reader() as s:
        return await s.scalar(select(OutgoingMail).where(
            OutgoingMail.to_addr == to.lower(), OutgoingMail.kind == kind)
            .order_by(OutgoingMail.id.desc()).limit(1))


async def mail_count(db: Database, to: str) -> int:
    async with db.reader() as s:
        return len((await s.scalars(select(OutgoingMail.id)
                                    .where(OutgoingMail.to_addr == to.lower()))).all())


async def link_in_mail(db: Database, to: str, kind: str, path: str) -> str:
    mail = await last_mail(db, to, kind)
    assert mail is not None, f"no {kind} mail to {to}"
    host = "" if path.startswith("http") else r"https?://[^/\s]+"
    m = re.search(rf"{host}{re.escape(path)}(\S+)", mail.body_text)
    assert m, mail.body_text
    return m[1]


async def verify(db: Database, email: str) -> None:
    token = await link_in_mail(db, email, "verify_email", "/account/verify/")
    async with db.uow() as uow:
        await accounts.verify_email(uow, token)
        await uow.commit()


async def store_sale(db: Database, shop: Shop, customer_id: int | None,
                     channel: str = "pos-1") -> OrderOut:
    [v] = await make_variants(db, [1290], stock={shop.store1: 5, shop.store2: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel=channel, customer_id=customer_id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=2)],
        payments=[PaymentIn(method="cash", tendered_cents=5000)]))
    return order


async def sign_in(db: Database, email: str, password: str = PASSWORD) -> int:
    async with db.reader() as s:
        return await accounts.authenticate_customer(s, email, password)


# --- registration and sign-in -------------------------------------------------------------

async def test_register_creates_customer_account_consent_and_verification_mail(
    db: Database, settings: Settings
) -> None:
    email = new_email()
    cid = await register(db, settings, email, marketing=True)
    normal = email.lower()
    async with db.reader() as s:
        account = await s.get(CustomerAccount, cid)
        assert account is not None and account.email == normal
        assert account.email_verified_at is None
        assert PASSWORD not in account.password_hash
        assert PasswordHasher().verify(account.password_hash, PASSWORD)
        assert await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "email", CustomerIdentity.value == normal)) == cid
        consent = (await s.scalars(select(CustomerConsent)
                                   .where(CustomerConsent.customer_id == cid))).all()
        assert [(c.kind, c.granted, c.channel) for c in consent] == [
            ("marketing_email", True, "web")]
        tokens = (await s.scalars(select(AccountToken)
                                  .where(AccountToken.customer_id == cid))).all()
    [token_row] = tokens
    assert token_row.purpose == "verify"
    lifetime = token_row.expires_at - token_row.created_at
    assert timedelta(hours=47) < lifetime <= timedelta(hours=48)
    token = await link_in_mail(db, email, "verify_email", "https://kauppa.example/account/verify/")
    assert len(token) >= 40 and token_row.token_hash != token  # only the hash is kept
    mail = await last_mail(db, email, "verify_email")
    assert mail is not None and mail.subject.startswith("Vahvista sähköpostiosoitteesi")
    assert "Hei Maija," in mail.body_text and mail.body_html

    assert await sign_in(db, email.upper()) == cid  # e-mail however typed


async def test_wrong_credentials_are_one_uniform_error(db: Database, settings: Settings) -> None:
    email = new_email()
    await register(db, settings, email)
    for who, password in ((email, "väärä salasana"), (new_email(), PASSWORD),
                          ("not an e-mail", PASSWORD)):
        with pytest.raises(NotAuthenticated) as err:
            await sign_in(db, who, password)
        assert (err.value.code, err.value.field) == ("invalid_credentials", "password")


@pytest.mark.parametrize(("email", "password", "code", "field"), [
    ("not-an-email", PASSWORD, "invalid_email", "email"),
    (None, "lyhyt", "password_too_short", "password"),
    (None, "Salasana123", "password_too_common", "password"),
    (None, "aaaaaaaaaaaaaa", "password_too_common", "password"),
    (None, "x" * 1001, "password_too_long", "password"),
])
async def test_registration_is_validated(db: Database, settings: Settings, email: str | None,
                                         password: str, code: str, field: str) -> None:
    address = email or new_email()
    with pytest.raises(ValidationFailed) as err:
        await register(db, settings, address, password=password)
    assert (err.value.code, err.value.field) == (code, field)
    async with db.reader() as s:
        assert await s.scalar(select(CustomerIdentity.id).where(
            CustomerIdentity.value == address.lower())) is None  # nothing was created


async def test_an_email_can_have_one_account(db: Database, settings: Settings) -> None:
    email = new_email()
    await register(db, settings, email)
    with pytest.raises(Conflict) as err:
        await register(db, settings, email.lower(), first="Toinen")
    assert (err.value.code, err.value.field) == ("email_taken", "email")


async def test_concurrent_registrations_of_one_email_make_one_account(
    db: Database, settings: Settings
) -> None:
    email = new_email()
    results = await asyncio.gather(*(register(db, settings, email) for _ in range(3)),
                                   return_exceptions=True)
    ok = [r for r in results if isinstance(r, int)]
    assert len(ok) == 1
    assert all(isinstance(r, Conflict) and r.code == "email_taken"
               for r in results if not isinstance(r, int))


# --- the till's customer, verification and history ---------------------------------------

async def test_account_attaches_to_the_store_customer_and_history_waits_for_verification(
    db: Database, settings: Settings, shop: Shop
) -> None:
    email = new_email()
    digits = f"{random.randrange(10**7):07d}"  # the register is shared by every test
    async with db.uow() as uow:
        till = await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Kassalla", last_name="Kirjattu", email=email,
            phone=f"040 {digits}"))
        await uow.commit()
    sale = await store_sale(db, shop, till.id)
    someone_else = await store_sale(db, shop, None)

    cid = await register(db, settings, email, first="Joku", last="Muu")
    assert cid == till.id  # one customer, one register
    async with db.reader() as s:
        profile = await accounts.account_profile(s, cid)
        history = await accounts.order_history(s, cid)
        with pytest.raises(NotFound):
            await accounts.customer_order(s, cid, sale.number)
    assert (profile.first_name, profile.last_name) == ("Kassalla", "Kirjattu")
    assert profile.phone is None  # the store's records stay hidden until verified
    assert not profile.email_verified
    assert (history.verified, history.entries) == (False, [])

    await verify(db, email)
    async with db.reader() as s:
        profile = await accounts.account_profile(s, cid)
        history = await accounts.order_history(s, cid)
        entry = await accounts.customer_order(s, cid, sale.number)
        with pytest.raises(NotFound):
            await accounts.customer_order(s, cid, someone_else.number)
    assert profile.email_verified and profile.phone == f"+35840{digits}"
    assert [e.order.number for e in history.entries] == [sale.number]
    [row] = history.entries
    assert (row.web, row.place) == (False, "Store Helsinki")
    assert row.order.total_cents == 2580 and entry.order.lines[0].quantity == 2


async def test_history_pages_newest_first_across_channels(
    db: Database, settings: Settings, shop: Shop
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    await verify(db, email)
    made = [await store_sale(db, shop, cid, channel)
            for channel in ("pos-1", "pos-2", "pos-2", "pos-1")]
    async with db.reader() as s:
        first = await accounts.order_history(s, cid, limit=3)
        rest = await accounts.order_history(s, cid, limit=3, before_id=first.next_before_id)
    numbers = [e.order.number for e in first.entries + rest.entries]
    assert numbers == [o.number for o in reversed(made)]
    assert first.next_before_id is not None and rest.next_before_id is None
    assert [e.place for e in first.entries] == ["Store Helsinki", "Store Tampere",
                                                "Store Tampere"]


async def test_verification_links_work_once_and_expire(db: Database, settings: Settings) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    token = await link_in_mail(db, email, "verify_email", "/account/verify/")
    async with db.uow() as uow:
        assert await accounts.verify_email(uow, token) == cid
        await uow.commit()
    for bad in (token, "made-up", ""):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as err:
                await accounts.verify_email(uow, bad)
        assert err.value.code == "invalid_link"

    other = new_email()
    other_id = await register(db, settings, other)
    token = await link_in_mail(db, other, "verify_email", "/account/verify/")
    async with db.uow() as uow:
        await uow.session.execute(update(AccountToken).where(
            AccountToken.customer_id == other_id).values(expires_at=utcnow()))
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed):
            await accounts.verify_email(uow, token)
    async with db.uow() as uow:  # a new link is not sent twice within a minute ...
        assert not await accounts.resend_verification(
            uow, other_id, lang="en", base_url="https://k", settings=settings)
        await uow.session.execute(update(AccountToken).where(
            AccountToken.customer_id == other_id)
            .values(created_at=utcnow() - timedelta(minutes=5)))
        # ... but after that it is
        assert await accounts.resend_verification(
            uow, other_id, lang="en", base_url="https://k", settings=settings)
        await uow.commit()
    mail = await last_mail(db, other, "verify_email")
    assert mail is not None and mail.subject.startswith("Confirm your e-mail")


# --- passwords ----------------------------------------------------------------------------

async def request_reset(db: Database, settings: Settings, email: str) -> None:
    async with db.uow() as uow:
        await accounts.request_password_reset(uow, email, lang="fi",
                                              base_url="https://kauppa.example",
                                              settings=settings)
        await uow.commit()


async def reset(db: Database, token: str, password: str) -> int:
    async with db.uow() as uow:
        cid = await accounts.reset_password(uow, token, password)
        await uow.commit()
    return cid


async def test_password_reset_by_a_one_time_link(db: Database, settings: Settings) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    unknown = new_email()
    await request_reset(db, settings, unknown)  # no account: no mail, no error
    assert await mail_count(db, unknown) == 0

    await request_reset(db, settings, email)
    await request_reset(db, settings, email)  # a second request at once sends nothing more
    async with db.reader() as s:
        resets = (await s.scalars(select(AccountToken).where(
            AccountToken.customer_id == cid, AccountToken.purpose == "reset"))).all()
    assert len(resets) == 1
    assert timedelta(minutes=59) < resets[0].expires_at - resets[0].created_at \
        <= timedelta(hours=1)
    token = await link_in_mail(db, email, "password_reset", "/account/reset/")

    with pytest.raises(ValidationFailed) as err:
        await reset(db, token, "short")
    assert err.value.code == "password_too_short"
    new = "uusi pitkä salasana"
    assert await reset(db, token, new) == cid  # the link survived the weak attempt
    assert await sign_in(db, email, new) == cid
    with pytest.raises(NotAuthenticated):
        await sign_in(db, email, PASSWORD)
    with pytest.raises(ValidationFailed) as err:
        await reset(db, token, "vielä uudempi salasana")
    assert err.value.code == "invalid_link"
    async with db.reader() as s:  # following the link proved the address
        assert (await accounts.account_profile(s, cid)).email_verified


async def test_change_password_needs_the_current_one(db: Database, settings: Settings) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as err:
            await accounts.change_password(uow, cid, "arvaus arvaus", "uusi salasana tässä")
    assert (err.value.code, err.value.field) == ("wrong_password", "current_password")
    async with db.uow() as uow:
        await accounts.change_password(uow, cid, PASSWORD, "uusi salasana tässä")
        await uow.commit()
    assert await sign_in(db, email, "uusi salasana tässä") == cid


# --- addresses and consents ---------------------------------------------------------------

def address(**changes: str) -> addresses.AddressIn:
    values = {"name": "Maija Meikäläinen", "street": "Kauppakatu 1", "postcode": "00100",
              "city": "Helsinki", "country": "FI", "phone": ""} | changes
    return addresses.AddressIn(**values)


async def test_address_book(db: Database, settings: Settings) -> None:
    cid = await register(db, settings, new_email())
    other = await register(db, settings, new_email())
    for bad, code, field in ((address(postcode="1234"), "invalid_postcode", "postcode"),
                             (address(postcode="00 10A"), "invalid_postcode", "postcode"),
                             (address(street="  "), "required", "street"),
                             (address(country="XX"), "invalid_country", "country"),
                             (address(phone="12"), "invalid_phone", "phone")):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as err:
                await addresses.add_address(uow, cid, bad)
        assert (err.value.code, err.value.field) == (code, field)
    async with db.uow() as uow:
        home = await addresses.add_address(uow, cid, address(phone="040 765 4321"))
        cabin = await addresses.add_address(uow, cid, address(
            street="Mökkitie 9", postcode="S-113 56", city="Stockholm", country="se"))
        await uow.commit()
    assert home.is_default and not cabin.is_default  # the first is the default
    assert home.phone == "+358407654321" and cabin.country == "SE"
    async with db.uow() as uow:
        await addresses.set_default_address(uow, cid, cabin.id)
        with pytest.raises(NotFound):  # not theirs
            await addresses.delete_address(uow, other, home.id)
        await uow.commit()
    async with db.reader() as s:
        assert (await accounts.account_profile(s, cid)).default_address == \
            addresses.AddressOut(**{**cabin.__dict__, "is_default": True})
    async with db.uow() as uow:
        await addresses.delete_address(uow, cid, cabin.id)
        await uow.commit()
    async with db.reader() as s:
        book = await addresses.list_addresses(s, cid)
    assert [(a.id, a.is_default) for a in book] == [(home.id, True)]


async def test_consents_are_an_append_only_history(db: Database, settings: Settings) -> None:
    cid = await register(db, settings, new_email(), marketing=False)
    async with db.uow() as uow:
        assert await consents.set_consent(uow, cid, "marketing_email", True, "web")
        assert not await consents.set_consent(uow, cid, "marketing_email", True, "web")
        assert await consents.set_consent(uow, cid, "marketing_sms", True, "web")
        assert await consents.set_consent(uow, cid, "marketing_email", False, "web")
        with pytest.raises(ValidationFailed):
            await consents.set_consent(uow, cid, "telepathy", True, "web")
        await uow.commit()
    async with db.reader() as s:
        current = await consents.current_consents(s, cid)
        history = await consents.consent_history(s, cid)
    assert current == {"marketing_email": False, "marketing_sms": True}
    assert [(h.kind, h.granted) for h in history] == [
        ("marketing_email", False), ("marketing_sms", True), ("marketing_email", True),
        ("marketing_email", False)]  # newest first; the last is the registration's


# --- pages (in-process) -------------------------------------------------------------------

@pytest.fixture
async def web(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own (own cookies) on the shared in-process app."""
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test",
                                 headers={"Accept-Language": "fi"}) as c:
        yield c


def csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no CSRF token in page"
    return html.unescape(m[1])


def text_of(page: str, testid: str) -> str:
    m = re.search(rf'<(\w+)[^>]*\sdata-testid="{re.escape(testid)}"[^>]*>(.*?)</\1>', page, re.S)
    assert m, f"no data-testid={testid!r} in page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m[2])).replace("\xa0", " ").split())


async def post_form(c: httpx.AsyncClient, form_url: str, action: str,
                    data: dict[str, str]) -> httpx.Response:
    page = (await c.get(form_url)).text
    return await c.post(action, data={"csrf_token": csrf(page), **data})


async def register_page(c: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    return await post_form(c, "/account/register", "/account/register", {
        "first_name": "Maija", "last_name": "Meikäläinen", "email": email,
        "password": PASSWORD, **extra})


async def test_pages_need_a_signed_in_shopper(web: httpx.AsyncClient) -> None:
    for path in ("/account/", "/account/addresses", "/account/consents", "/account/password",
                 "/account/orders/000001"):
        r = await web.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/account/login?next=%2Faccount%2F")


async def test_register_page_shows_errors_next_to_fields_and_changes_nothing(
    web: httpx.AsyncClient, db: Database
) -> None:
    r = await web.post("/account/register", data={"email": new_email()})  # no CSRF token
    assert r.status_code == 403
    email = new_email()
    r = await register_page(web, email, password="lyhyt", first_name="")
    assert r.status_code == 422
    assert text_of(r.text, "error-first_name") == "Täytä tämä kenttä."
    assert 'aria-describedby="first_name-error"' in r.text
    r = await register_page(web, email, password="lyhyt")
    assert r.status_code == 422
    assert text_of(r.text, "error-password") == "Käytä vähintään 10 merkkiä."
    assert re.search(r'id="password"[^>]*aria-invalid="true"', r.text)
    assert f'value="{email}"' in r.text and "lyhyt" not in r.text  # typed e-mail stays
    r = await register_page(web, "ei-sähköposti")
    assert r.status_code == 422 and text_of(r.text, "error-email") == \
        "Tarkista sähköpostiosoite."
    assert await mail_count(db, email) == 0
    assert (await web.get("/account/")).status_code == 303  # still not signed in


async def test_an_over_long_name_is_refused_next_to_the_field_not_cut(
    web: httpx.AsyncClient, db: Database
) -> None:
    email = new_email()
    page = (await web.get("/account/register")).text
    assert not re.search(r'id="first_name"[^>]*maxlength', page)  # no silent cut in the form
    r = await register_page(web, email, first_name="A" * 5000, last_name="B" * 101,
                            password="lyhyt")
    assert r.status_code == 422
    assert text_of(r.text, "error-first_name") == "Käytä enintään 100 merkkiä."
    assert text_of(r.text, "error-last_name") == "Käytä enintään 100 merkkiä."
    assert text_of(r.text, "error-password") == "Käytä vähintään 10 merkkiä."  # all at once
    assert 'aria-describedby="first_name-error"' in r.text
    assert await mail_count(db, email) == 0
    r = await post_form(web, "/account/register?lang=en", "/account/register", {
        "first_name": "A" * 101, "last_name": "B", "email": email, "password": PASSWORD})
    assert r.status_code == 422
    assert text_of(r.text, "error-first_name") == "Use at most 100 characters."


async def test_after_confirming_the_email_the_card_and_the_tier_agree(
    web: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    email = new_email()
    form = (await web.get("/account/register")).text
    assert "Voin perua suostumukseni milloin tahansa." in form  # the consent, not an order
    r = await register_page(web, email)
    assert r.status_code == 303
    mail = await last_mail(db, email, "verify_email")
    assert mail is not None
    assert "Tervetuloa asiakkaaksemme!" in mail.body_text
    assert "asiakkaaksi:" not in mail.body_text
    page = (await web.get("/account/")).text
    assert text_of(page, "loyalty-tier") == "Ei jäsen (ei kanta-asiakaskorttia)"
    assert 'data-testid="card-number"' not in page  # no card before the e-mail is confirmed
    token = await link_in_mail(db, email, "verify_email", "/account/verify/")
    assert (await web.get(f"/account/verify/{token}")).status_code == 200

    page = (await web.get("/account/")).text  # the first visit issues the card
    assert re.fullmatch(r"Kortin numero \d+", text_of(page, "card-number"))
    assert text_of(page, "loyalty-tier") == "Jäsen"
    assert len(re.findall(r"<h2[^>]*>Kanta-asiakaspisteet</h2>", page)) == 0
    assert page.count(">Kanta-asiakaspisteet<") == 1
    assert page.count('id="loyalty-title"') == 1
    assert "perua tilauksen" not in (await web.get("/account/consents")).text


async def test_register_signs_in_and_overview_asks_for_verification(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    email = new_email()
    r = await register_page(web, email, marketing_email="yes")
    assert r.status_code == 303 and r.headers["location"] == "/account/"
    assert "saumaton_cart=" in r.headers["set-cookie"]
    page = (await web.get("/account/")).text
    assert text_of(page, "profile-email") == email.lower()
    assert text_of(page, "verified-state") == "Vahvistamatta"
    assert "Vahvista sähköpostiosoitteesi" in text_of(page, "history-notice")
    r = await web.get("/account/register")  # signed in: straight to the account
    assert r.status_code == 303 and r.headers["location"] == "/account/"
    r = await post_form(web, "/account/", "/account/logout", {})
    assert r.status_code == 303
    r = await register_page(web, email.lower())
    assert r.status_code == 409
    assert "on jo tili" in text_of(r.text, "error-email")

    r = await post_form(web, "/account/login", "/account/login",
                        {"email": email, "password": PASSWORD})
    assert r.status_code == 303
    page = (await web.get("/account/consents")).text
    assert re.search(r'id="marketing_email"[^>]*checked', page)
    assert not re.search(r'id="marketing_sms"[^>]*checked', page)


async def test_login_merges_the_browser_cart_and_logout_forgets_it(
    web: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    [v] = await make_variants(db, [990], stock={shop.warehouse: 10})
    async with db.uow() as uow:
        change = await add_to_cart(uow, None, None, int(str(v["id"])), 2)
        await uow.commit()
    web.cookies.set("saumaton_cart", change.token, domain="test.local")

    page = (await web.get("/account/login?next=/shop/cart")).text
    r = await web.post("/account/login", data={"csrf_token": csrf(page), "email": email,
                                               "password": "väärin väärin"})
    assert r.status_code == 401
    assert text_of(r.text, "error-password") == "Väärä sähköposti tai salasana."
    r = await web.post("/account/login", data={"csrf_token": csrf(page), "email": email,
                                               "password": PASSWORD, "next": "/shop/cart"})
    assert r.status_code == 303 and r.headers["location"] == "/shop/cart"
    token = web.cookies["saumaton_cart"]
    async with db.reader() as s:
        cart = await find_cart(s, token, cid)
        assert cart is not None and cart.customer_id == cid
        assert await find_cart(s, token, None) is None  # not for a signed-out browser
        last = (await s.get(CustomerAccount, cid))
        assert last is not None and last.last_login_at is not None

    page = (await web.get("/account/")).text
    assert (await web.post("/account/logout")).status_code == 403  # needs the CSRF token
    r = await web.post("/account/logout", data={"csrf_token": csrf(page)})
    assert r.status_code == 303 and "saumaton_cart" not in web.cookies
    assert (await web.get("/account/")).status_code == 303


async def test_open_redirects_are_refused(web: httpx.AsyncClient, db: Database,
                                          settings: Settings) -> None:
    email = new_email()
    await register(db, settings, email)
    page = (await web.get("/account/login")).text
    r = await web.post("/account/login", data={"csrf_token": csrf(page), "email": email,
                                               "password": PASSWORD,
                                               "next": "//evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/account/"


async def test_own_orders_only(web: httpx.AsyncClient, db: Database, settings: Settings,
                               shop: Shop) -> None:
    email = new_email()
    r = await register_page(web, email)
    assert r.status_code == 303
    async with db.reader() as s:
        cid = await s.scalar(select(CustomerAccount.customer_id)
                             .where(CustomerAccount.email == email.lower()))
    assert cid is not None
    mine = await store_sale(db, shop, cid, "pos-2")
    theirs = await store_sale(db, shop, None)
    assert (await web.get(f"/account/orders/{mine.number}")).status_code == 404  # unverified
    token = await link_in_mail(db, email, "verify_email", "/account/verify/")
    r = await web.get(f"/account/verify/{token}")
    assert r.status_code == 200 and r.headers["referrer-policy"] == "no-referrer"
    assert "Sähköpostiosoite vahvistettu" in r.text
    assert (await web.get(f"/account/verify/{token}")).status_code == 400  # used

    page = (await web.get("/account/")).text
    assert text_of(page, "verified-state") == "Vahvistettu"
    assert text_of(page, "order-number") == mine.number
    assert text_of(page, "order-channel") == "Store Tampere"
    assert text_of(page, "order-total") == "25,80 €"
    r = await web.get(f"/account/orders/{mine.number}")
    assert r.status_code == 200 and text_of(r.text, "order-total") == "25,80 €"
    for number in (theirs.number, "999999999", "abc"):
        r = await web.get(f"/account/orders/{number}")
        assert r.status_code == 404, number


async def test_password_reset_pages(web: httpx.AsyncClient, db: Database,
                                    settings: Settings) -> None:
    email = new_email()
    await register(db, settings, email)
    answers = []
    for who in (email, new_email()):
        r = await post_form(web, "/account/reset", "/account/reset", {"email": who})
        assert r.status_code == 200
        answers.append(r.text.replace(who, "").replace(who.lower(), ""))
    assert answers[0] == answers[1]  # the same answer whether or not there is an account
    r = await post_form(web, "/account/reset", "/account/reset", {"email": "ei osoite"})
    assert r.status_code == 422 and text_of(r.text, "error-email")

    token = await link_in_mail(db, email, "password_reset", "/account/reset/")
    r = await web.get("/account/reset/not-a-token")
    assert r.status_code == 400 and 'data-testid="link-invalid"' in r.text
    form_url = f"/account/reset/{token}"
    r = await post_form(web, form_url, form_url, {"password": "short"})
    assert r.status_code == 422 and text_of(r.text, "error-password")
    r = await post_form(web, form_url, form_url, {"password": "aivan uusi salasana"})
    assert r.status_code == 303 and r.headers["location"] == "/account/login?done=reset"
    page = (await web.get("/account/login?done=reset")).text
    assert "Salasanasi on vaihdettu" in text_of(page, "notice")
    assert (await web.get(form_url)).status_code == 400  # used up
    r = await web.post("/account/login", data={"csrf_token": csrf(page), "email": email,
                                               "password": "aivan uusi salasana"})
    assert r.status_code == 303


async def test_address_and_consent_pages(web: httpx.AsyncClient, db: Database) -> None:
    email = new_email()
    await register_page(web, email)
    r = await post_form(web, "/account/addresses", "/account/addresses", {
        "name": "Maija", "street": "Kuja 1", "postcode": "123", "city": "Espoo",
        "country": "FI"})
    assert r.status_code == 422
    assert text_of(r.text, "error-postcode") == \
        "Tarkista postinumero: suomalaisessa postinumerossa on viisi numeroa."
    assert re.search(r'id="postcode"[^>]*aria-invalid="true"', r.text)
    assert 'value="Kuja 1"' in r.text and 'data-testid="no-addresses"' in r.text
    r = await post_form(web, "/account/addresses", "/account/addresses", {
        "name": "Maija", "street": "Kuja 1", "postcode": "02100", "city": "Espoo",
        "country": "FI"})
    assert r.status_code == 303
    page = (await web.get("/account/addresses")).text
    assert 'data-default="yes"' in page and "Kuja 1" in page
    address_id = re.search(r'data-testid="address" data-id="(\d+)"', page)
    assert address_id
    r = await post_form(web, f"/account/addresses/{address_id[1]}",
                        f"/account/addresses/{address_id[1]}", {
                            "name": "Maija", "street": "Kuja 2", "postcode": "02100",
                            "city": "Espoo", "country": "FI"})
    assert r.status_code == 303
    assert "Kuja 2" in text_of((await web.get("/account/")).text, "default-address")
    assert (await web.get("/account/addresses/999999999")).status_code == 404

    r = await post_form(web, "/account/consents", "/account/consents",
                        {"marketing_sms": "yes"})
    assert r.status_code == 303
    page = (await web.get("/account/consents")).text
    assert re.search(r'id="marketing_sms"[^>]*checked', page)
    assert len(re.findall('data-testid="consent-row"', page)) == 2  # registration + sms


# --- in a real browser --------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
WAIT_MS = 10_000
IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80


class FolderWatch:
    """Wake when a file is written into some folders (Linux inotify): waiting for a
    mail needs no polling."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self._fd >= 0, os.strerror(ctypes.get_errno())
        self.folders = list(folders)
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder),
                                              IN_CLOSE_WRITE | IN_MOVED_TO)
            assert wd >= 0, os.strerror(ctypes.get_errno())
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass
        self._changed.set()

    async def wait_for(self, find: Callable[[], T | None], seconds: float = 15.0) -> T:
        async with asyncio.timeout(seconds):
            while True:
                self._changed.clear()
                found = find()  # after clear(): a write from now on wakes us
                if found is not None:
                    return found
                await self._changed.wait()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self._fd)
        os.close(self._fd)


def find_mail(folders: list[Path], to: str) -> Callable[[], EmailMessage | None]:
    def find() -> EmailMessage | None:
        for folder in folders:
            for path in folder.glob("*.eml"):
                msg = message_from_bytes(path.read_bytes(), policy=policy.default)
                if isinstance(msg, EmailMessage) and msg["To"] == to:
                    return msg
        return None
    return find


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Page]:
    context: BrowserContext = await browser.new_context(
        locale="fi-FI", viewport={"width": 375, "height": 740})
    context.set_default_timeout(WAIT_MS)
    yield await context.new_page()
    await context.close()


async def fits(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page is {width}px wide on a 375px screen"


async def test_browser_register_verify_sign_in_and_see_store_purchases(
    phone: Page, server: Server, db: Database, shop: Shop, settings: Settings,
    session_tmp: Path, backend: str, tmp_path: Path,
) -> None:
    expect.set_options(timeout=WAIT_MS)
    base = server.base_url
    email = new_email().lower()
    # The server's mail folder (and the in-process app's: every app process sends).
    watch = FolderWatch([session_tmp / f"server-{backend}" / "mail", settings.mail_dir()])
    try:
        await phone.goto(f"{base}/account/register")
        await phone.get_by_label("Etunimi").fill("Maija")
        await phone.get_by_label("Sukunimi").fill("Meikäläinen")
        await phone.get_by_label("Sähköposti", exact=True).fill(email)
        await phone.get_by_label("Salasana", exact=True).fill("lyhyt")
        await fits(phone)
        await phone.get_by_test_id("register-submit").click()
        error = phone.get_by_test_id("error-password")
        await expect(error).to_have_text("Käytä vähintään 10 merkkiä.")
        await expect(phone.get_by_label("Salasana", exact=True)).to_have_attribute(
            "aria-invalid", "true")
        await phone.get_by_label("Salasana", exact=True).fill(PASSWORD)
        await phone.get_by_label("Salasana", exact=True).press("Enter")  # keyboard only
        await expect(phone).to_have_url(f"{base}/account/")
        await expect(phone.get_by_test_id("verified-state")).to_have_text("Vahvistamatta")
        await expect(phone.get_by_test_id("history-notice")).to_be_visible()

        # Meanwhile the customer buys something in the store, the cashier finding them.
        async with db.reader() as s:
            cid = await s.scalar(select(CustomerAccount.customer_id)
                                 .where(CustomerAccount.email == email))
        assert cid is not None
        sale = await store_sale(db, shop, cid)

        mail = await watch.wait_for(find_mail(watch.folders, email))
        assert mail["Subject"].startswith("Vahvista sähköpostiosoitteesi")
        body = mail.get_body(("plain",))
        assert body is not None
        link = re.search(rf"{re.escape(base)}/account/verify/\S+", body.get_content())
        assert link, body.get_content()

        await phone.goto(link[0])
        await expect(phone.get_by_test_id("verified")).to_be_visible()
        await phone.get_by_test_id("sign-out").click()
        await expect(phone).to_have_url(f"{base}/shop/")

        await phone.goto(f"{base}/account/login?next=/account/")
        await phone.get_by_label("Sähköposti").fill(email)
        await phone.get_by_label("Salasana").fill(PASSWORD)
        await phone.get_by_test_id("login-submit").click()
        await expect(phone).to_have_url(f"{base}/account/")
        await expect(phone.get_by_test_id("verified-state")).to_have_text("Vahvistettu")
        row = phone.get_by_test_id("order-row")
        await expect(row).to_have_count(1)
        await expect(row.get_by_test_id("order-number")).to_have_text(sale.number)
        await expect(row.get_by_test_id("order-channel")).to_have_text("Store Helsinki")
        await expect(row.get_by_test_id("order-total")).to_have_text("25,80\xa0€")
        await fits(phone)
        await phone.screenshot(path=str(tmp_path / f"account-{backend}.png"), full_page=True)
        await row.get_by_role("link").click()
        await expect(phone.get_by_test_id("order-line")).to_have_count(1)
        await fits(phone)
    finally:
        watch.close()


def test_errors_the_pages_show_have_finnish_messages() -> None:
    from saumaton.web import i18n
    from saumaton.web.account.common import MESSAGES

    fi = i18n.translations("fi")
    untranslated = [m for m in MESSAGES.values() if fi.gettext(m) == m]
    assert untranslated == []
