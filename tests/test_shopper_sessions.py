"""Shopper sessions are server-side (docs/security.md): the cookie holds only a token, so
signing out, a password change or reset and an erasure end a session at once, a copy of
the cookie included, in this process and (through the outbox event) in another one; a
cookie from before (a bare customer id) is refused. Both databases."""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from datetime import timedelta

import httpx
from itsdangerous import TimestampSigner
from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers import accounts
from saumaton.customers import sessions as customer_sessions
from saumaton.customers.gdpr import erase_customer
from saumaton.customers.models import CustomerAddress, CustomerSession
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.web.shopper import CACHE_TTL
from tests.support import Server, Shop, csrf_of, eventually, staff_login
from tests.test_accounts import PASSWORD, link_in_mail, new_email, register
from tests.test_staff_admin import client_of

COOKIE = "saumaton_session"


async def sign_in(c: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    page = (await c.get("/account/login")).text
    r = await c.post("/account/login", data={"csrf_token": csrf_of(page), "email": email,
                                             "password": password})
    assert r.status_code == 303, r.text
    assert await signed_in(c)


async def signed_in(c: httpx.AsyncClient) -> bool:
    """The account page answers (True) or sends to the sign-in page (False)."""
    r = await c.get("/account/")
    if r.status_code == 200:
        return True
    assert r.status_code == 303 and r.headers["location"].startswith("/account/login"), \
        (r.status_code, r.text)
    return False


async def copy_refused(thief: httpx.AsyncClient, copied: dict[str, str]) -> bool:
    """The copied cookie, exactly as copied (a refused read clears the jar's copy)."""
    thief.cookies.clear()
    thief.cookies.update(copied)
    return not await signed_in(thief)


async def live_sessions(db: Database, customer_id: int) -> int:
    async with db.reader() as s:
        return len((await s.scalars(select(CustomerSession.id).where(
            CustomerSession.customer_id == customer_id,
            CustomerSession.revoked_at.is_(None)))).all())


async def test_the_cookie_holds_a_token_and_a_copy_dies_with_sign_out(
    web: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    async with client_of(web) as her, client_of(web) as thief:
        await sign_in(her, email)
        session = TimestampSigner(settings.resolved_secret_key()).unsign(
            her.cookies[COOKIE])
        data = json.loads(b64decode(session))
        assert "customer_id" not in data and cid not in data.values()
        assert isinstance(data["shopper"], str) and len(data["shopper"]) >= 40
        assert await live_sessions(db, cid) == 1

        copied = dict(her.cookies)
        thief.cookies.update(copied)
        assert await signed_in(thief)  # the copy works while she is signed in (and is cached)
        page = (await her.get("/account/addresses")).text
        r = await her.post("/account/logout", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303
        assert not await signed_in(her)
        assert await live_sessions(db, cid) == 0

        # the very next requests through the copy are refused: the page and a write
        assert await copy_refused(thief, copied)
        thief.cookies.clear()
        thief.cookies.update(copied)
        r = await thief.post("/account/addresses", data={
            "csrf_token": csrf_of(page), "name": "Varas", "street": "Kuja 1",
            "postcode": "00100", "city": "Helsinki", "country": "FI"})
        assert r.status_code == 303 and r.headers["location"].startswith("/account/login")
        async with db.reader() as s:
            assert (await s.scalars(select(CustomerAddress.id).where(
                CustomerAddress.customer_id == cid))).all() == []


async def test_a_password_change_signs_out_the_other_browsers(
    web: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    async with client_of(web) as here, client_of(web) as there, client_of(web) as thief:
        await sign_in(here, email)
        await sign_in(there, email)
        copied = dict(there.cookies)
        thief.cookies.update(copied)
        assert await signed_in(thief)
        page = (await here.get("/account/password")).text
        r = await here.post("/account/password", data={
            "csrf_token": csrf_of(page), "current_password": PASSWORD,
            "password": "uusi salasana on pitkä"})
        assert r.status_code == 303 and r.headers["location"] == "/account/password?saved=1"
        assert await signed_in(here)  # the browser that changed it stays signed in
        assert not await signed_in(there)
        assert await copy_refused(thief, copied)
        assert await live_sessions(db, cid) == 1


async def test_a_password_reset_signs_out_every_browser(
    web: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    async with client_of(web) as her:
        await sign_in(her, email)
        async with db.uow() as uow:
            await accounts.request_password_reset(uow, email, lang="fi",
                                                  base_url="https://kauppa.example",
                                                  settings=settings)
            await uow.commit()
        token = await link_in_mail(db, email, "password_reset", "/account/reset/")
        async with db.uow() as uow:
            assert await accounts.reset_password(uow, token, "aivan uusi salasana") == cid
            await uow.commit()
        assert not await signed_in(her)
        await sign_in(her, email, "aivan uusi salasana")  # the new password works


async def test_an_erased_customer_is_signed_out_and_the_sessions_are_deleted(
    web: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    email = new_email()
    cid = await register(db, settings, email)
    async with client_of(web) as her:
        await sign_in(her, email)
        async with db.uow() as uow:
            report = await erase_customer(uow, SYSTEM, cid, "asked to be forgotten")
            await uow.commit()
        assert report.deleted["customer_sessions"] == 1
        assert not await signed_in(her)
        async with db.reader() as s:
            assert (await s.scalars(select(CustomerSession.id).where(
                CustomerSession.customer_id == cid))).all() == []
            topics = (await s.scalars(select(OutboxEvent.payload).where(
                OutboxEvent.topic == customer_sessions.REVOKED_TOPIC)
                .order_by(OutboxEvent.id.desc()).limit(5))).all()
        assert {"customer_id": cid} in topics


async def test_a_staff_sign_in_or_out_on_the_browser_ends_its_shopper_session(
    web: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop
) -> None:
    """Staff sign-in and sign-out replace the whole cookie: the shopper session it held
    ends server-side too, so no copy of the cookie keeps it."""
    email = new_email()
    cid = await register(db, settings, email)
    async with client_of(web) as c, client_of(web) as thief:
        await sign_in(c, email)
        before_staff = dict(c.cookies)
        await staff_login(c, shop, "cashier1")
        assert await copy_refused(thief, before_staff)
        await sign_in(c, email)  # the shopper beside the cashier
        with_both = dict(c.cookies)
        page = (await c.get("/account/addresses")).text
        r = await c.post("/staff/logout", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303
        assert await copy_refused(thief, with_both)
        assert await live_sessions(db, cid) == 0


async def test_an_old_style_cookie_with_a_bare_customer_id_is_refused(
    web: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    cid = await register(db, settings, new_email())
    payload = b64encode(json.dumps({"customer_id": cid, "csrf": "x" * 32}).encode())
    forged = TimestampSigner(settings.resolved_secret_key()).sign(payload).decode()
    web.cookies.set(COOKIE, forged, domain="test.local")  # where the app sets it
    r = await web.get("/account/")
    assert r.status_code == 303 and r.headers["location"].startswith("/account/login")
    # the response rewrites the cookie without the old key
    data = json.loads(b64decode(
        TimestampSigner(settings.resolved_secret_key()).unsign(web.cookies[COOKIE])))
    assert "customer_id" not in data and "shopper" not in data
    r = await web.get("/shop/cart")
    assert r.status_code == 200


async def test_an_expired_or_unknown_session_names_nobody(
    db: Database, settings: Settings
) -> None:
    cid = await register(db, settings, new_email())
    async with db.uow() as uow:
        old = await customer_sessions.sign_in(uow, cid)
        await uow.commit()
    async with db.reader() as s:
        assert await customer_sessions.session_customer(s, old) == cid
        assert await customer_sessions.session_customer(s, old + "x") is None
        assert await customer_sessions.session_customer(s, "") is None
        assert await customer_sessions.session_customer(s, "a" * 5000) is None
    async with db.uow() as uow:
        await uow.session.execute(update(CustomerSession).where(
            CustomerSession.token_hash == customer_sessions.token_hash(old))
            .values(expires_at=utcnow() - timedelta(seconds=1)))
        await uow.commit()
    async with db.reader() as s:
        assert await customer_sessions.session_customer(s, old) is None
    async with db.uow() as uow:  # the next sign-in prunes the ended session
        new = await customer_sessions.sign_in(uow, cid)
        await uow.commit()
    async with db.reader() as s:
        hashes = (await s.scalars(select(CustomerSession.token_hash).where(
            CustomerSession.customer_id == cid))).all()
    assert hashes == [customer_sessions.token_hash(new)]


async def test_another_process_drops_its_cached_session_on_the_event(
    server: Server, db: Database, settings: Settings
) -> None:
    """The server (another process) cached the session; a revocation made here reaches
    it through the outbox event well before its cache entry would run out."""
    email = new_email()
    cid = await register(db, settings, email)
    async with httpx.AsyncClient(base_url=server.base_url) as her:
        await sign_in(her, email)
        copied = dict(her.cookies)
        assert await signed_in(her)  # cached there now
        async with db.uow() as uow:
            await customer_sessions.revoke_all(uow, cid)
            await uow.commit()

        async def refused() -> bool:
            return await copy_refused(her, copied)

        await eventually(refused, within=CACHE_TTL / 2,
                         what="the server refuses the revoked session")
