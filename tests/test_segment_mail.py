"""E-mails to a customer segment (both databases): only consenting members get one, in
their language, with the unsubscribe link and headers; a mailing is sent once per form
key however often it is posted; a big segment goes in batches, each member once; the
back office's form shows every error at once, a preview and the live recipient count.
The browser test is in tests/test_segment_mail_browser.py."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.customers.consents import set_consent
from saumaton.customers.segments import create_segment
from saumaton.db.uow import Database
from saumaton.mail import mailings
from saumaton.mail.mailings import MailingIn, start_mailing
from saumaton.mail.marketing import unsubscribe_url
from saumaton.mail.models import OutgoingMail, SegmentMailing
from saumaton.orders.models import Order
from tests.support import Shop, csrf_of, staff_login
from tests.test_segments import new_customer, new_tag, rules, till_sale

TEXTS = MailingIn("Kevään uutuudet", "Hei!\n\nUusi sävy 2N on tullut.",
                  "Spring news", "Hello!\n\nThe new shade 2N is in.")


async def segment_with(db: Database, tag: str) -> int:
    async with db.uow() as uow:
        seg = await create_segment(uow, SYSTEM, f"Kirje {tag}", rules(tag))
        await uow.commit()
    return seg.id


async def mails_of(db: Database, mailing_id: int) -> list[OutgoingMail]:
    async with db.reader() as s:
        return list((await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == mailings.reference(mailing_id))
            .order_by(OutgoingMail.customer_id))).all())


async def start(db: Database, settings: Settings, segment_id: int, key: str,
                data: MailingIn = TEXTS) -> tuple[int, bool]:
    async with db.uow() as uow:
        out = await start_mailing(uow, SYSTEM, settings, segment_id, key, data)
        await uow.commit()
    return out


async def test_consenting_members_once_each_in_their_language(
        db: Database, shop: Shop, settings: Settings) -> None:
    tag = new_tag()
    fi_member = await new_customer(db, tag, consent=True, first="Aino")
    en_member = await new_customer(db, tag, consent=True, first="Emma")
    refuses = await new_customer(db, tag, consent=False, first="Bea")
    await till_sale(db, shop, en_member, 1200)
    async with db.uow() as uow:  # her latest order was in English
        await uow.session.execute(update(Order).where(Order.customer_id == en_member)
                                  .values(language="en"))
        await uow.commit()
    segment_id = await segment_with(db, tag)
    key = uuid.uuid4().hex
    mailing_id, started = await start(db, settings, segment_id, key)
    assert started
    mails = await mails_of(db, mailing_id)
    assert [m.customer_id for m in mails] == [fi_member, en_member]
    assert refuses not in {m.customer_id for m in mails}
    by_customer = {m.customer_id: m for m in mails}
    assert by_customer[fi_member].subject == "Kevään uutuudet"
    assert by_customer[en_member].subject == "Spring news"
    assert "The new shade 2N is in." in by_customer[en_member].body_text
    for m in mails:
        url = unsubscribe_url(settings, int(str(m.customer_id)))
        assert m.list_unsubscribe == url and url in m.body_text and url in m.body_html
        assert m.kind == "segment_mailing"
    assert "Unsubscribe" in by_customer[en_member].body_html
    assert "Peru tilaus" in by_customer[fi_member].body_html
    async with db.reader() as s:
        out = await mailings.get_mailing(s, mailing_id)
    assert out is not None and (out.status, out.queued, out.skipped) == ("done", 2, 0)

    # the same form again (a double click, a retried POST): the same mailing, no mail
    assert await start(db, settings, segment_id, key) == (mailing_id, False)
    assert len(await mails_of(db, mailing_id)) == 2


async def test_a_big_segment_goes_in_batches_each_member_once(
        db: Database, shop: Shop, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailings, "BATCH", 2)
    tag = new_tag()
    members = [await new_customer(db, tag, consent=True) for _ in range(5)]
    withdraws = members[3]
    segment_id = await segment_with(db, tag)
    mailing_id, _ = await start(db, settings, segment_id, uuid.uuid4().hex)
    assert [m.customer_id for m in await mails_of(db, mailing_id)] == members[:2]
    async with db.uow() as uow:  # meanwhile one member says no more
        await set_consent(uow, withdraws, "marketing_email", False, "web")
        await uow.commit()
    for _ in range(10):  # the job's rounds (any app process's job may take some too)
        async with db.reader() as s:
            row = await s.get(SegmentMailing, mailing_id)
            assert row is not None
            if row.status == "done":
                break
        await mailings.send_due(db, settings)
    mails = await mails_of(db, mailing_id)
    assert [m.customer_id for m in mails] == [c for c in members if c != withdraws]
    async with db.reader() as s:
        out = await mailings.get_mailing(s, mailing_id)
    assert out is not None and (out.status, out.queued) == ("done", 4)
    # done: another round queues nothing
    await mailings.send_due(db, settings)
    assert len(await mails_of(db, mailing_id)) == 4


async def test_form_errors_preview_and_send_once(
        db: Database, shop: Shop, settings: Settings, client: httpx.AsyncClient) -> None:
    tag = new_tag()
    await new_customer(db, tag, consent=True, first="Aino")
    await new_customer(db, tag, consent=True, first="Emma")
    await new_customer(db, tag, consent=False, first="Bea")
    segment_id = await segment_with(db, tag)
    await staff_login(client, shop, "owner")
    url = f"/backoffice/segments/{segment_id}/mail"
    page = await client.get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'data-testid="mail-recipients" data-count="2"' in page.text
    assert "Send to 2 customers" in page.text
    key = page.text.split('name="key" value="', 1)[1].split('"', 1)[0]
    csrf = csrf_of(page.text)

    # every error at once, next to its field, nothing sent
    r = await client.post(url, headers={"Accept-Language": "fi"}, data={
        "csrf_token": csrf, "key": key, "action": "send", "subject_fi": "",
        "text_fi": "", "subject_en": "x" * 201, "text_en": "  "})
    assert r.status_code == 422
    for field in ("subject_fi", "text_fi", "subject_en", "text_en"):
        assert f'data-testid="error-{field}"' in r.text, field
    assert "Kirjoita otsikko." in r.text and "enintään 200 merkkiä" in r.text
    async with db.reader() as s:
        assert await mailings.find_by_key(s, key) is None

    form = {"csrf_token": csrf, "key": key, "subject_fi": TEXTS.subject_fi,
            "text_fi": TEXTS.text_fi, "subject_en": TEXTS.subject_en,
            "text_en": TEXTS.text_en}
    r = await client.post(url, data={**form, "action": "preview"},
                          headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert 'data-testid="mail-preview-fi"' in r.text and "Spring news" in r.text
    async with db.reader() as s:
        assert await mailings.find_by_key(s, key) is None  # a preview sends nothing

    first = await client.post(url, data={**form, "action": "send"})
    again = await client.post(url, data={**form, "action": "send"})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    mailing_id = int(first.headers["location"].rsplit("/", 1)[1])
    assert len(await mails_of(db, mailing_id)) == 2
    r = await client.get(first.headers["location"], headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert 'data-testid="mailing-queued">2<' in r.text
    assert 'data-status="done"' in r.text
    # another segment's page does not show it
    r = await client.get(f"/backoffice/segments/{segment_id + 1}/mailings/{mailing_id}")
    assert r.status_code == 404
    # not the manager's to send
    await staff_login(client, shop, "manager")
    assert (await client.get(url)).status_code == 403
