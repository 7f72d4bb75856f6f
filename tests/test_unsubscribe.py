"""Marketing mail and its one-click unsubscribe (both databases): queued only with
consent, the List-Unsubscribe headers (RFC 8058) on the wire, the signed link, a POST
that withdraws at once (no cookies, no CSRF token) and a GET that never does, and the
sender that does not send when the consent was withdrawn after queueing."""

from __future__ import annotations

import random
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.consents import consent_history, current_consents, set_consent
from saumaton.customers.services import CustomerOut
from saumaton.customers.timeline import timeline
from saumaton.db.uow import Database
from saumaton.mail.marketing import (
    BadUnsubscribeLink,
    queue_marketing_mail,
    read_token,
    unsubscribe_url,
)
from saumaton.mail.models import OutgoingMail
from saumaton.mail.sender import Claimed, build_message, send_due
from saumaton.mail.wire import message_bytes
from tests.support import Shop, eventually

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def customer(db: Database, *, consent: bool) -> CustomerOut:
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040 {random.randrange(10**7):07d}", first_name="Ulla",
            last_name="Uutiskirje", email=f"uk.{uuid.uuid4().hex[:10]}@example.fi",
            marketing_email=consent))
        await uow.commit()
    return out


async def queue_offer(db: Database, settings: Settings, c: CustomerOut,
                      html: str = "<p>Tarjous</p>") -> int | None:
    async with db.uow() as uow:
        mail_id = await queue_marketing_mail(
            uow, settings, customer_id=c.id, kind="test_offer", to=str(c.email),
            subject="Tarjous", text="Hei, tarjous!\n", html=html,
            reference=f"offer:{c.id}")
        await uow.commit()
    return mail_id


async def mail_row(db: Database, mail_id: int) -> OutgoingMail:
    async with db.reader() as s:
        row = await s.get(OutgoingMail, mail_id)
    assert row is not None
    return row


async def consent_now(db: Database, customer_id: int) -> bool:
    async with db.reader() as s:
        return (await current_consents(s, customer_id))["marketing_email"]


def path_of(url: str) -> str:
    return urlsplit(url).path


def claimed(row: OutgoingMail) -> Claimed:
    return Claimed(row.id, row.kind, row.to_addr, row.subject, row.body_text,
                   row.body_html, 1, row.reply_to, row.customer_id, row.list_unsubscribe)


async def test_token_round_trip_and_tampering(settings: Settings, web: httpx.AsyncClient,
                                              db: Database) -> None:
    url = unsubscribe_url(settings, 4321)
    assert url.startswith(settings.resolved_public_url() + "/unsubscribe/")
    token = url.rsplit("/", 1)[1]
    assert read_token(settings, token) == (4321, "marketing_email")
    assert unsubscribe_url(settings, 4321) == url  # stable: every mail the same link

    other_key = URLSafeSerializer("another-shop's-key-0123456789",
                                  salt="saumaton.mail.unsubscribe").dumps([4321,
                                                                           "marketing_email"])
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    payload, _, sig = token.partition(".")
    other_customer = URLSafeSerializer("x").dumps([4322, "marketing_email"]).split(".")[0]
    for bad in (flipped, other_key, f"{other_customer}.{sig}", payload, "x" * 250, "e30"):
        with pytest.raises(BadUnsubscribeLink) as exc:
            read_token(settings, bad)
        assert (exc.value.status, exc.value.code) == (400, "invalid_unsubscribe_link")
        for method in ("GET", "POST"):
            r = await web.request(method, f"/unsubscribe/{bad}",
                                  data=ONE_CLICK if method == "POST" else None,
                                  headers={"Accept-Language": "en"})
            assert r.status_code == 400, (method, bad, r.text[:300])
            assert 'data-code="invalid_unsubscribe_link"' in r.text
            assert "This unsubscribe link is not valid" in r.text
    r = await web.get(f"/unsubscribe/{flipped}", headers={"Accept-Language": "fi"})
    assert r.status_code == 400 and "Tämä tilauksen peruutuslinkki ei kelpaa" in r.text


async def test_queued_only_with_consent(db: Database, settings: Settings) -> None:
    never = await customer(db, consent=False)
    withdrawn = await customer(db, consent=True)
    async with db.uow() as uow:
        await set_consent(uow, withdrawn.id, "marketing_email", False, "account")
        await uow.commit()
    yes = await customer(db, consent=True)
    assert await queue_offer(db, settings, never) is None
    assert await queue_offer(db, settings, withdrawn) is None
    async with db.reader() as s:
        assert (await s.scalars(select(OutgoingMail.id).where(OutgoingMail.reference.in_(
            [f"offer:{never.id}", f"offer:{withdrawn.id}"])))).all() == []
    mail_id = await queue_offer(db, settings, yes)
    assert mail_id is not None
    row = await mail_row(db, mail_id)
    url = unsubscribe_url(settings, yes.id)
    assert (row.customer_id, row.list_unsubscribe, row.status) == (yes.id, url, "queued")
    # the visible link: appended to a body that lacked it, text and HTML
    assert url in row.body_text and row.body_text.startswith("Hei, tarjous!")
    assert f'href="{url}"' in row.body_html and "Peru tilaus" in row.body_html


async def test_headers_on_the_wire(db: Database, settings: Settings) -> None:
    c = await customer(db, consent=True)
    mail_id = await queue_offer(db, settings, c)
    assert mail_id is not None
    row = await mail_row(db, mail_id)
    url = unsubscribe_url(settings, c.id)
    data = message_bytes(claimed(row), mail_from="Kauppa <k@example.fi>",
                         message_id="<m1@example.fi>", now=utcnow())
    assert data is not None
    assert all(len(line) <= 998 for line in data.split(b"\n"))
    msg = message_from_bytes(data, policy=policy.default)
    assert msg["List-Unsubscribe"] == f"<{url}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # the email package's way (a mail with pictures) carries them the same
    built = build_message(claimed(row), settings, utcnow())
    assert built["List-Unsubscribe"] == f"<{url}>"
    assert built["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # a transactional mail has none
    plain = message_bytes(Claimed(1, "x", "a@example.fi", "s", "t", "", 1),
                          mail_from="k@example.fi", message_id="<m2@example.fi>",
                          now=utcnow())
    assert plain is not None and b"List-Unsubscribe" not in plain


async def test_one_click_post_withdraws_once(db: Database, settings: Settings,
                                             web: httpx.AsyncClient) -> None:
    c = await customer(db, consent=True)
    url = unsubscribe_url(settings, c.id)
    # the page (GET) unsubscribes nobody: link scanners fetch every link
    r = await web.get(path_of(url), headers={"Accept-Language": "en"})
    assert r.status_code == 200 and 'data-testid="unsubscribe-form"' in r.text
    assert 'name="List-Unsubscribe" value="One-Click"' in r.text
    assert r.headers["cache-control"] == "no-store"
    r = await web.get(path_of(url), headers={"Accept-Language": "fi"})
    assert r.status_code == 200 and "Peru tilaus" in r.text
    assert await consent_now(db, c.id) is True

    # what a mail provider posts: no cookies, no CSRF token
    web.cookies.clear()
    r = await web.post(path_of(url), data=ONE_CLICK)
    assert r.status_code == 200, r.text[:300]
    assert 'data-testid="unsubscribe-done"' in r.text
    assert await consent_now(db, c.id) is False
    async with db.reader() as s:
        history = await consent_history(s, c.id)
        audits = (await s.scalars(select(AuditEntry).where(
            AuditEntry.subject_type == "customer", AuditEntry.subject_id == c.id,
            AuditEntry.action == "customer.consent"))).all()
        events = await timeline(s, SYSTEM, c.id)
    assert (history[0].kind, history[0].granted, history[0].channel) == \
        ("marketing_email", False, "unsubscribe_link")
    assert [a.data for a in audits] == [
        {"kind": "marketing_email", "granted": False, "channel": "unsubscribe_link"}]
    assert next((e.status, e.granted, e.channel) for e in events if e.kind == "consent") == \
        ("marketing_email", False, "unsubscribe_link")

    # again (a second click, the provider retrying): 200, nothing written
    for _ in range(2):
        r = await web.post(path_of(url), data=ONE_CLICK)
        assert r.status_code == 200
    async with db.reader() as s:
        assert len(await consent_history(s, c.id)) == len(history)
        assert len((await s.scalars(select(AuditEntry.id).where(
            AuditEntry.subject_type == "customer", AuditEntry.subject_id == c.id,
            AuditEntry.action == "customer.consent"))).all()) == 1


async def test_timeline_page_names_the_unsubscribe_link(
        db: Database, settings: Settings, shop: Shop, client: httpx.AsyncClient) -> None:
    from tests.support import staff_login

    c = await customer(db, consent=True)
    r = await client.post(path_of(unsubscribe_url(settings, c.id)), data=ONE_CLICK)
    assert r.status_code == 200
    await staff_login(client, shop, "owner")
    r = await client.get(f"/backoffice/customers/{c.id}", headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert "unsubscribe link in an e-mail" in r.text


async def test_sender_suppresses_after_withdrawal(db: Database, settings: Settings) -> None:
    stays = await customer(db, consent=True)
    leaves = await customer(db, consent=True)
    kept_id = await queue_offer(db, settings, stays)
    async with db.uow() as uow:  # queued with consent, withdrawn before any send
        gone_id = await queue_marketing_mail(
            uow, settings, customer_id=leaves.id, kind="test_offer", to=str(leaves.email),
            subject="Tarjous", text="Hei!\n", reference=f"offer:{leaves.id}")
        assert gone_id is not None
        await set_consent(uow, leaves.id, "marketing_email", False, "account")
        await uow.commit()
    assert kept_id is not None

    async def settled() -> bool:
        await send_due(db, settings, limit=1000)  # (any app sender may take them too)
        rows = [await mail_row(db, kept_id), await mail_row(db, gone_id)]
        return all(r.status != "queued" for r in rows)

    await eventually(settled, within=20, what="both mails handled")
    sent, gone = await mail_row(db, kept_id), await mail_row(db, gone_id)
    assert (sent.status, gone.status) == ("sent", "suppressed")
    assert gone.sent_at is None and "withdrew" in gone.last_error
    names = [f.name for f in settings.mail_dir().iterdir()]
    assert any(n.endswith(f"-{kept_id}-test_offer.eml") for n in names)
    assert not any(n.endswith(f"-{gone_id}-test_offer.eml") for n in names)
    [eml] = [f for f in settings.mail_dir().iterdir()
             if f.name.endswith(f"-{kept_id}-test_offer.eml")]
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["List-Unsubscribe"] == f"<{unsubscribe_url(settings, stays.id)}>"


def test_production_links_are_https(tmp_path: Path) -> None:
    from saumaton import production

    shop = Settings(public_url="https://kauppa.example.com/", secret_key="k" * 40,
                    var_dir=tmp_path)
    url = unsubscribe_url(shop, 7)
    assert url.startswith("https://kauppa.example.com/unsubscribe/")
    assert read_token(shop, url.rsplit("/", 1)[1]) == (7, "marketing_email")
    # a production shop without an https address does not start (so no http header URL)
    plain = Settings(env="production", public_url="http://kauppa.example.com",
                     secret_key="k" * 40, var_dir=tmp_path)
    assert any("https://" in reason for reason in production.problems(plain))
