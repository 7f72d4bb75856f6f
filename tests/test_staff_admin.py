"""Staff and security: server-side sessions (logout, disable, across processes), the
invitation and reset links, roles, the last owner, API tokens, the audit log viewer and
what is audited (logins, staff changes, manual discounts, refunds). Both databases."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.audit.models import AuditEntry
from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.payments.refunds import record_refund
from saumaton.staff import admin
from saumaton.staff.models import ApiToken, Staff, StaffLinkToken, StaffSession
from saumaton.staff.services import actor_for, create_api_token, create_staff
from saumaton.staff.sessions import token_hash
from tests.support import (
    Server,
    Shop,
    csrf_of,
    eventually,
    fresh_database,
    make_variants,
    staff_login,
)
from tests.test_till_api import headers, sale, till

PASSWORD = "pw-staff-secret-1"


async def new_person(db: Database, roles: list[tuple[str, int | None]],
                     name: str = "") -> tuple[int, str, str]:
    """A new staff member: (id, e-mail, API token)."""
    email = f"p-{uuid.uuid4().hex[:10]}@test.example"
    async with db.uow() as uow:
        staff = await create_staff(uow, email, name or f"Person {email[2:8]}", PASSWORD,
                                   roles)
        token = await create_api_token(uow, staff.id, "test token")
        await uow.commit()
    return staff.id, email, token


async def login(c: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    page = (await c.get("/staff/login")).text
    r = await c.post("/staff/login", data={"email": email, "password": password,
                                           "csrf_token": csrf_of(page)})
    assert r.status_code == 303, r.text
    return csrf_of((await c.get("/staff/login")).text)


def client_of(web: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=web._transport, base_url="http://test")


async def signed_in(c: httpx.AsyncClient) -> bool:
    r = await c.get("/staff/")
    if r.status_code == 200:
        return True
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login"), r.text
    return False


async def owner_post(c: httpx.AsyncClient, path: str, data: dict[str, str] | None = None
                     ) -> httpx.Response:
    page = (await c.get("/backoffice/staff")).text
    return await c.post(path, data={"csrf_token": csrf_of(page), **(data or {})})


async def audit_rows(db: Database, action: str, subject_type: str,
                     subject_id: int) -> list[AuditEntry]:
    async with db.reader() as s:
        return list((await s.scalars(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.subject_type == subject_type,
            AuditEntry.subject_id == subject_id).order_by(AuditEntry.id))).all())


async def last_mail(db: Database, to: str) -> OutgoingMail:
    async with db.reader() as s:
        mail = await s.scalar(select(OutgoingMail).where(OutgoingMail.to_addr == to)
                              .order_by(OutgoingMail.id.desc()).limit(1))
    assert mail is not None, f"no mail to {to}"
    return mail


def link_of(mail: OutgoingMail) -> str:
    m = re.search(r"https?://\S+/staff/set-password\?token=([\w-]+)", mail.body_text)
    assert m, mail.body_text
    return m[1]


async def test_logout_revokes_the_session_so_a_copied_cookie_stops_working(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, email, _ = await new_person(db, [("cashier", shop.store1)])
    await login(web, email)
    async with client_of(web) as copy:
        copy.cookies.update(web.cookies)
        assert await signed_in(copy)
        # the cookie holds only a session token, not the staff id
        assert "staff_id" not in str(web.cookies.get("saumaton_session"))
        r = await web.post("/staff/logout", data={"csrf_token": csrf_of(
            (await web.get("/staff/login")).text)})
        assert r.status_code == 303
        assert not await signed_in(copy)  # the copy's session was revoked server-side
    async with db.reader() as s:
        rows = (await s.scalars(select(StaffSession).where(
            StaffSession.staff_id == staff_id))).all()
    assert len(rows) == 1 and rows[0].revoked_at is not None
    actions = [e.action for e in await audit_rows(db, "staff.login", "staff", staff_id)]
    actions += [e.action for e in await audit_rows(db, "staff.logout", "staff", staff_id)]
    assert actions == ["staff.login", "staff.logout"]


async def test_logins_are_audited_also_when_refused(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, email, _ = await new_person(db, [("cashier", shop.store1)])
    page = (await web.get("/staff/login")).text
    r = await web.post("/staff/login", data={"email": email, "password": "wrong-password",
                                             "csrf_token": csrf_of(page)})
    assert r.status_code == 401
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@test.example"
    await web.post("/staff/login", data={"email": unknown, "password": "x" * 12,
                                         "csrf_token": csrf_of(page)})
    [failed] = await audit_rows(db, "staff.login_failed", "staff", staff_id)
    assert failed.data == {"email": email}
    async with db.reader() as s:
        anon = await s.scalar(select(AuditEntry).where(
            AuditEntry.action == "staff.login_failed", AuditEntry.subject_id == 0)
            .order_by(AuditEntry.id.desc()).limit(1))
    assert anon is not None and anon.data == {"email": unknown}
    await login(web, email)
    assert len(await audit_rows(db, "staff.login", "staff", staff_id)) == 1


async def test_disabling_refuses_her_open_session_and_token_at_once(
    client: httpx.AsyncClient, web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, email, token = await new_person(db, [("cashier", shop.store1)])
    bearer = {"Authorization": f"Bearer {token}"}
    async with client_of(web) as her:
        await login(her, email)
        # both are used (and cached by this process) before the change
        assert await signed_in(her)
        assert (await her.get("/api/v1/orders?limit=1", headers=bearer)).status_code == 200
        await staff_login(web, shop, "owner")
        r = await owner_post(web, f"/backoffice/staff/{staff_id}/disable")
        assert r.status_code == 303 and r.headers["location"].endswith("done=disabled")
        # the very next request is refused, in this process, without waiting
        assert not await signed_in(her)
        r = await her.get("/api/v1/orders?limit=1", headers=bearer)
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        # she cannot sign in again
        page = (await her.get("/staff/login")).text
        r = await her.post("/staff/login", data={"email": email, "password": PASSWORD,
                                                 "csrf_token": csrf_of(page)})
        assert r.status_code == 401
    page = (await web.get(f"/backoffice/staff/{staff_id}")).text
    assert 'data-testid="person-state">Poistettu käytöstä<' in page \
        or 'data-testid="person-state">Disabled<' in page
    [entry] = await audit_rows(db, "staff.disable", "staff", staff_id)
    assert entry.actor.startswith("staff:") and entry.data["email"] == email
    async with db.reader() as s:
        assert all(t.revoked_at is not None for t in (await s.scalars(
            select(ApiToken).where(ApiToken.staff_id == staff_id))).all())
    # enabling lets her sign in again (revoked sessions and tokens stay revoked)
    r = await owner_post(web, f"/backoffice/staff/{staff_id}/enable")
    assert r.status_code == 303
    async with client_of(web) as her:
        await login(her, email)
        assert await signed_in(her)
    assert (await web.get("/api/v1/orders?limit=1", headers=bearer)).status_code == 401
    assert len(await audit_rows(db, "staff.enable", "staff", staff_id)) == 1


async def test_disabling_in_one_process_refuses_the_session_in_another_at_once(
    web: httpx.AsyncClient, db: Database, shop: Shop, server: Server
) -> None:
    """The in-process app disables; the uvicorn server (another process with its own
    cache, 30 s backstop) refuses her session and token within moments (the event)."""
    staff_id, email, token = await new_person(db, [("cashier", shop.store1)])
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url) as her:
        await login(her, email)
        assert await signed_in(her)
        assert (await her.get("/api/v1/orders?limit=1", headers=bearer)).status_code == 200
        assert await signed_in(her)  # cached by the server now
        await staff_login(web, shop, "owner")
        started = time.monotonic()
        assert (await owner_post(web, f"/backoffice/staff/{staff_id}/disable")
                ).status_code == 303
        gone = {"session": False, "token": False}

        async def refused() -> bool:
            gone["session"] = gone["session"] or not await signed_in(her)
            gone["token"] = gone["token"] or (await her.get(
                "/api/v1/orders?limit=1", headers=bearer)).status_code == 401
            return all(gone.values())
        await eventually(refused, within=10, what="the other process refuses her")
        assert time.monotonic() - started < 10  # well before the cache's 30 s


async def test_invitation_mail_sets_the_password_then_login(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    await staff_login(web, shop, "owner")
    email = f"new-{uuid.uuid4().hex[:8]}@test.example"
    page = (await web.get("/backoffice/staff/invite?lang=en")).text
    # every error at once, next to its field; nothing created
    r = await web.post("/backoffice/staff/invite", data={
        "csrf_token": csrf_of(page), "name": "", "email": "not-an-address",
        "role": "pope", "location": ""})
    assert r.status_code == 422
    for field in ("name", "email", "role"):
        assert f'data-testid="error-{field}"' in r.text
    assert 'aria-invalid="true" aria-describedby="email-error"' in r.text
    r = await web.post("/backoffice/staff/invite", data={
        "csrf_token": csrf_of(page), "name": "Tiina Tampere", "email": email,
        "role": "cashier", "location": str(shop.store2)})
    assert r.status_code == 303, r.text
    staff_id = int(r.headers["location"].split("/")[-1].split("?")[0])
    person = (await web.get(r.headers["location"])).text
    assert "Tiina Tampere" in person and "Store Tampere" in person
    assert 'data-testid="person-state">Invited<' in person
    # the same e-mail again: refused
    r = await web.post("/backoffice/staff/invite", data={
        "csrf_token": csrf_of(page), "name": "Again", "email": email.upper(),
        "role": "cashier", "location": ""})
    assert r.status_code == 422 and 'data-testid="error-email"' in r.text
    mail = await last_mail(db, email)
    assert mail.kind == "staff_invite" and "7 days" in mail.body_text
    first = link_of(mail)
    # sent again: a new link, the first one stops working
    assert (await owner_post(web, f"/backoffice/staff/{staff_id}/reset")).status_code == 303
    mail = await last_mail(db, email)
    assert mail.kind == "staff_invite"
    token = link_of(mail)
    assert token != first
    assert (await web.get(f"/staff/set-password?token={first}")).status_code == 410
    entries = await audit_rows(db, "staff.invite", "staff", staff_id)
    assert entries[0].data["roles"] == ["cashier@store-2"]
    assert entries[1].data == {"email": email, "resent": True}
    async with client_of(web) as new:
        # no usable password before the link
        page = (await new.get("/staff/login")).text
        r = await new.post("/staff/login", data={"email": email, "password": "",
                                                 "csrf_token": csrf_of(page)})
        assert r.status_code in (401, 422)
        form = await new.get(f"/staff/set-password?token={token}&lang=en")
        assert form.status_code == 200 and email in form.text
        r = await new.post("/staff/set-password", data={
            "csrf_token": csrf_of(form.text), "token": token, "password": "short",
            "confirm": "different"})
        assert r.status_code == 422
        assert 'data-testid="error-password"' in r.text
        assert 'data-testid="error-confirm"' in r.text
        r = await new.post("/staff/set-password", data={
            "csrf_token": csrf_of(form.text), "token": token, "password": "tiinan-salasana",
            "confirm": "tiinan-salasana"})
        assert r.status_code == 303 and r.headers["location"] == "/staff/"
        assert await signed_in(new)
        # the link works once
        used = await new.get(f"/staff/set-password?token={token}&lang=en")
        assert used.status_code == 410 and "used already" in used.text
    async with client_of(web) as again:
        await login(again, email, "tiinan-salasana")
        assert "Till: Store Tampere" in (await again.get("/staff/?lang=en")).text


async def test_expired_and_unknown_links_answer_clearly(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, email, token = await new_person(db, [("cashier", shop.store1)])
    await staff_login(web, shop, "owner")
    r = await owner_post(web, f"/backoffice/staff/{staff_id}/reset")
    assert r.status_code == 303
    mail = await last_mail(db, email)
    assert mail.kind == "staff_reset"
    link = link_of(mail)
    async with db.uow() as uow:
        await uow.session.execute(update(StaffLinkToken).where(
            StaffLinkToken.token_hash == token_hash(link)).values(
            expires_at=utcnow() - timedelta(minutes=1)))
        await uow.commit()
    r = await web.get(f"/staff/set-password?token={link}&lang=en")
    assert r.status_code == 410 and "has expired" in r.text
    assert 'data-testid="set-password-form"' not in r.text
    r = await web.get("/staff/set-password?token=nonsense&lang=en")
    assert r.status_code == 404 and "not valid" in r.text
    # the old password still works; the token still works
    async with client_of(web) as her:
        await login(her, email)
    assert (await web.get("/api/v1/orders?limit=1",
                          headers={"Authorization": f"Bearer {token}"})).status_code == 200
    [entry] = await audit_rows(db, "staff.password_reset", "staff", staff_id)
    assert entry.data["by"] == "owner"


async def test_forgot_password_resets_and_signs_out_everywhere(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, email, token = await new_person(db, [("cashier", shop.store1)])
    login_page = (await web.get("/staff/login")).text
    assert 'href="/staff/forgot-password"' in login_page
    async with client_of(web) as old:
        await login(old, email)
        page = (await web.get("/staff/forgot-password?lang=en")).text
        r = await web.post("/staff/forgot-password", data={"csrf_token": csrf_of(page),
                                                           "email": email.upper()})
        assert r.status_code == 200 and 'data-testid="reset-sent"' in r.text
        # an unknown address answers the same, and sends nothing
        r = await web.post("/staff/forgot-password", data={
            "csrf_token": csrf_of(page), "email": f"x{uuid.uuid4().hex[:6]}@test.example"})
        assert r.status_code == 200 and 'data-testid="reset-sent"' in r.text
        link = link_of(await last_mail(db, email))
        form = (await web.get(f"/staff/set-password?token={link}")).text
        r = await web.post("/staff/set-password", data={
            "csrf_token": csrf_of(form), "token": link, "password": "uusi-salasana-1",
            "confirm": "uusi-salasana-1"})
        assert r.status_code == 303
        assert not await signed_in(old)  # her other session ended
    r = await web.get("/api/v1/orders?limit=1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    [entry] = await audit_rows(db, "staff.password_set", "staff", staff_id)
    assert entry.data == {"purpose": "reset"}


async def test_roles_change_at_once_and_are_audited(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, email, _ = await new_person(db, [("cashier", shop.store1)])
    async with client_of(web) as her:
        await login(her, email)
        assert (await her.get("/backoffice/staff")).status_code == 403
        await staff_login(web, shop, "owner")
        r = await owner_post(web, f"/backoffice/staff/{staff_id}/roles",
                             {"role": "manager", "location": str(shop.store2)})
        assert r.status_code == 303
        assert (await her.get("/backoffice/staff")).status_code == 200  # no waiting
        r = await owner_post(web, f"/backoffice/staff/{staff_id}/roles",
                             {"role": "manager", "location": str(shop.store2)})
        assert r.status_code == 409 and 'data-testid="error-role"' in r.text
        async with db.reader() as s:
            actor = await actor_for(s, staff_id)
        assert actor is not None and actor.can("staff.read", shop.store2)
        page = (await web.get(f"/backoffice/staff/{staff_id}")).text
        grant = re.search(r'data-testid="remove-grant-(\d+)"[^>]*aria-label="[^"]*Tampere',
                          page)
        assert grant, page
        r = await owner_post(web, f"/backoffice/staff/{staff_id}/roles",
                             {"remove": grant[1]})
        assert r.status_code == 303
        assert (await her.get("/backoffice/staff")).status_code == 403
    entries = await audit_rows(db, "staff.roles", "staff", staff_id)
    assert [e.data for e in entries] == [{"added": "manager@store-2"},
                                         {"removed": "manager@store-2"}]


async def test_only_the_owner_changes_staff_managers_list(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, _, _ = await new_person(db, [("cashier", shop.store1)], name="Listed Person")
    await staff_login(web, shop, "manager")
    page = await web.get("/backoffice/staff")
    assert page.status_code == 200 and "Listed Person" in page.text
    assert 'data-testid="invite-link"' not in page.text
    person = await web.get(f"/backoffice/staff/{staff_id}")
    assert person.status_code == 200 and 'data-testid="disable"' not in person.text
    r = await web.post(f"/backoffice/staff/{staff_id}/disable",
                       data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 403 and "<html" in r.text
    assert (await web.get("/backoffice/audit")).status_code == 403
    assert (await web.get("/backoffice/staff/999999999")).status_code == 404


async def test_the_last_owner_is_protected(tmp_path: Path, backend: str) -> None:
    from tests.support import drop_pg_database
    url = await fresh_database(backend, tmp_path)
    db = Database(url)
    try:
        async with db.uow() as uow:
            boss = await create_staff(uow, "boss@test.example", "Boss", PASSWORD,
                                      [("owner", None)])
            other = await create_staff(uow, "other@test.example", "Other", PASSWORD,
                                       [("manager", None)])
            await uow.commit()
        async with db.reader() as s:
            me = await actor_for(s, boss.id)
            assert me is not None
            grants = (await admin.get_member(s, me, boss.id)).grants
        async with db.uow() as uow:
            with pytest.raises(Conflict) as exc:
                await admin.remove_grant(uow, me, boss.id, grants[0].id)
        assert exc.value.code == "last_owner"
        # a second owner: now the first may step down
        async with db.uow() as uow:
            await admin.add_grant(uow, me, other.id, "owner", None)
            await uow.commit()
        async with db.uow() as uow:
            await admin.remove_grant(uow, me, boss.id, grants[0].id)
            await uow.commit()
        async with db.reader() as s:
            other_owner = await actor_for(s, other.id)
        assert other_owner is not None
        async with db.uow() as uow:  # and the one owner left cannot be disabled
            with pytest.raises(Conflict):
                await admin.disable(uow, Actor(label="system", system=True), other.id)
    finally:
        await db.dispose()
        if backend == "postgresql":
            await drop_pg_database(url)


async def test_api_tokens_created_once_listed_and_revoked(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, _, _ = await new_person(db, [("cashier", shop.store1)])
    await staff_login(web, shop, "owner")
    r = await owner_post(web, f"/backoffice/staff/{staff_id}/tokens", {"token_name": " "})
    assert r.status_code == 422 and 'data-testid="error-token_name"' in r.text
    r = await owner_post(web, f"/backoffice/staff/{staff_id}/tokens",
                         {"token_name": "accounting export"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-token" readonly value="(sau_[\w-]+)"', r.text)
    assert token, r.text
    bearer = {"Authorization": f"Bearer {token[1]}"}
    assert (await web.get("/api/v1/orders?limit=1", headers=bearer)).status_code == 200
    page = (await web.get(f"/backoffice/staff/{staff_id}")).text
    assert token[1] not in page and token[1][:10] in page  # listed by its prefix only
    async with db.reader() as s:
        row = await s.scalar(select(ApiToken).where(
            ApiToken.token_hash == token_hash(token[1])))
    assert row is not None
    r = await owner_post(web, f"/backoffice/staff/{staff_id}/tokens/{row.id}/revoke")
    assert r.status_code == 303
    assert (await web.get("/api/v1/orders?limit=1", headers=bearer)).status_code == 401
    assert len(await audit_rows(db, "token.create", "api_token", row.id)) == 1
    assert len(await audit_rows(db, "token.revoke", "api_token", row.id)) == 1


async def test_audit_viewer_filters_and_reads_the_data(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    staff_id, _, _ = await new_person(db, [("finance", None)], name="Auditor Anna")
    subject = int(uuid.uuid4().int % 1_000_000_000)
    async with db.reader() as s:
        anna = await actor_for(s, staff_id)
    assert anna is not None
    async with db.uow() as uow:
        await record(uow, anna, "price.change", "variant", subject,
                     {"price_cents": {"old": 1290, "new": 990}, "reason": "kampanja"})
        await record(uow, anna, "stock.write_off", "variant", subject, {"quantity": 2})
        await record(uow, anna, "price.change", "variant", subject + 1,
                     {"price_cents": {"old": 500, "new": 450}})
        await uow.commit()
    await staff_login(web, shop, "finance")
    r = await web.get(f"/backoffice/audit?person={staff_id}&lang=fi")
    assert r.status_code == 200
    assert r.text.count('data-testid="audit-row"') == 3
    assert "Auditor Anna" in r.text
    assert "price 12,90\xa0€ → 9,90\xa0€" in r.text or "price 12,90 € → 9,90 €" in r.text
    r = await web.get(f"/backoffice/audit?person={staff_id}&action=price.change"
                      f"&subject_type=variant&subject_id={subject}")
    rows = re.findall(r'data-testid="audit-action">([^<]+)<', r.text)
    assert rows == ["price.change"]
    today = utcnow().date()
    r = await web.get(f"/backoffice/audit?person={staff_id}"
                      f"&from={today + timedelta(days=2)}&to={today + timedelta(days=3)}")
    assert 'data-testid="audit-empty"' in r.text
    r = await web.get(f"/backoffice/audit?person={staff_id}"
                      f"&from={today - timedelta(days=1)}&to={today + timedelta(days=1)}")
    assert r.text.count('data-testid="audit-row"') == 3
    # newest first
    ids = [int(i) for i in re.findall(r'data-testid="audit-row" data-id="(\d+)"', r.text)]
    assert ids == sorted(ids, reverse=True)
    # bad filters: every error at once, next to its field
    r = await web.get("/backoffice/audit?subject_id=abc&from=2026-13-01&to=x")
    assert r.status_code == 422
    for field in ("subject_id", "from", "to"):
        assert f'data-testid="error-{field}"' in r.text
    # pagination: the second page of everything differs from the first
    first = re.findall(r'data-id="(\d+)"', (await web.get("/backoffice/audit")).text)
    page2 = await web.get("/backoffice/audit?page=2")
    assert page2.status_code == 200
    second = re.findall(r'data-id="(\d+)"', page2.text)
    assert not set(first) & set(second)
    # a cashier may not read the audit log
    async with client_of(web) as cashier:
        await staff_login(cashier, shop, "cashier1")
        r = await cashier.get("/backoffice/audit")
        assert r.status_code == 403 and "<html" in r.text


async def test_manual_discounts_and_refunds_are_audited(
    web: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [2000], stock={shop.store1: 5})
    cfg = await till(web, shop, db, who="owner")
    line = {"variant_id": v["id"], "quantity": 1, "unit_price_cents": 2000,
            "campaign_discount_cents": 0, "campaign_id": None}
    r = await web.post("/pos/store-1/api/sales", content=json.dumps(sale(cfg, [
        {**line, "discount": {"cents": 300, "reason": "Naarmu"}}])), headers=headers(cfg))
    assert r.status_code == 201, r.text
    order_id = r.json()["order"]["id"]
    [entry] = await audit_rows(db, "discount.manual", "order", order_id)
    assert entry.data["discount_cents"] == 300
    assert entry.data["lines"] == [{"sku": v["sku"], "discount_cents": 300,
                                    "reason": "Naarmu"}]
    # a sale without a manual discount writes no audit row
    r = await web.post("/pos/store-1/api/sales", content=json.dumps(sale(cfg, [line])),
                       headers=headers(cfg))
    assert r.status_code == 201
    assert await audit_rows(db, "discount.manual", "order", r.json()["order"]["id"]) == []
    async with db.reader() as s:
        owner = await actor_for(s, int(await s.scalar(select(Staff.id).where(
            Staff.email == shop.logins["owner"][0])) or 0))
    assert owner is not None
    async with db.uow() as uow:
        refund = await record_refund(uow, owner, order_id, "cash", 500)
        await uow.commit()
    [entry] = await audit_rows(db, "refund.create", "order", order_id)
    assert entry.data["refund_id"] == refund.id and entry.data["amount_cents"] == 500
