"""The chat by e-mail (both databases): an agent's answer to an offline message, or to a
live visitor who has gone, is also queued as a mail to the visitor in the same
transaction, in the conversation's language, with the service address as Reply-To; the
shop's copy of an offline message has the visitor as Reply-To; the desk says which
answers went by e-mail (and which could not be delivered)."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.mail.sender import Claimed, build_message
from saumaton.service import chat, chat_mail
from saumaton.service.models import ChatMessage
from saumaton.staff.models import Staff
from saumaton.staff.services import actor_for
from tests.support import Shop
from tests.support import staff_login as log_in

SERVICE = "palvelu@kauppa.example"


def key() -> str:
    return uuid.uuid4().hex


async def agent_of(db: Database, shop: Shop) -> Actor:
    async with db.reader() as s:
        sid = await s.scalar(select(Staff.id).where(Staff.email == shop.logins["service"][0]))
        assert sid is not None
        actor = await actor_for(s, int(sid))
    assert actor is not None
    return actor


async def offline(db: Database, name: str, email: str, body: str, language: str) -> int:
    async with db.uow() as uow:
        out = await chat.leave_offline_message(
            uow, chat.new_visitor_token(), name=name, email=email, body=body,
            shop_address="shop@kauppa.example", language=language)
        await uow.commit()
    return out.id


async def answer(db: Database, agent: Actor, conversation_id: int, body: str,
                 settings: Settings, client_key: str | None = None) -> chat.MessageOut:
    async with db.uow() as uow:
        msg = await chat.post_agent_message(uow, agent, conversation_id, body, client_key,
                                            settings=settings)
        await uow.commit()
    return msg


async def mails_of(db: Database, message_id: int) -> list[OutgoingMail]:
    async with db.reader() as s:
        return list((await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == f"chat_message:{message_id}"))).all())


def claimed(row: OutgoingMail) -> Claimed:
    return Claimed(row.id, row.kind, row.to_addr, row.subject, row.body_text, row.body_html,
                   1, row.reply_to)


async def test_answer_to_an_offline_message_is_mailed_in_its_language(
        db: Database, settings: Settings, shop: Shop) -> None:
    agent = await agent_of(db, shop)
    with_service = settings.model_copy(update={"service_email": SERVICE})
    email = f"leo.{key()[:8]}@example.com"
    cid = await offline(db, "Leo Laine", email, "Do you ship to Åland?\nAnd to Sweden?", "en")
    async with db.reader() as s:
        assert (await chat.get_conversation(s, agent, cid)).conversation.answer_by_email
    k = key()
    msg = await answer(db, agent, cid, "Yes, we ship to Åland in 3–5 days.", with_service, k)
    assert msg.mail == "queued"
    [mail] = await mails_of(db, msg.id)
    assert mail.kind == "service_reply" and mail.to_addr == email and mail.status == "queued"
    assert mail.reply_to == SERVICE
    assert mail.subject == f"Answer from customer service – {settings.business_name}"
    text = mail.body_text
    assert text.startswith("Hello Leo,")
    assert "Yes, we ship to Åland in 3–5 days." in text and "\nService\n" in text
    assert "> Do you ship to Åland?\n> And to Sweden?" in text  # what they asked, quoted
    assert "You can answer this e-mail." in text
    assert "Yes, we ship to Åland in 3–5 days." in mail.body_html
    message = build_message(claimed(mail), with_service, utcnow())
    assert message["Reply-To"] == SERVICE and message["To"] == email

    # The form sent twice is one message and one mail; the desk says it went by e-mail.
    again = await answer(db, agent, cid, "Yes, we ship to Åland in 3–5 days.", with_service, k)
    assert again.id == msg.id and len(await mails_of(db, msg.id)) == 1
    async with db.reader() as s:
        view = await chat.get_conversation(s, agent, cid)
    assert [(m.sender, m.mail) for m in view.messages] == [("visitor", ""), ("agent", "queued")]

    # The shop's copy of the offline message answers the visitor.
    async with db.reader() as s:
        copy = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.reference == f"conversation:{cid}"))
    assert copy is not None and copy.reply_to == email
    assert build_message(claimed(copy), settings, utcnow())["Reply-To"] == email

    # In Finnish for a Finnish conversation; with no service address, no Reply-To and
    # the visitor is told not to answer the mail.
    fi_email = f"kaisa.{key()[:8]}@example.fi"
    fi_cid = await offline(db, "Kaisa", fi_email, "Onko sävyä 3W?", "fi")
    fi_msg = await answer(db, agent, fi_cid, "On, tilaamme sitä lisää.", settings)
    [fi_mail] = await mails_of(db, fi_msg.id)
    assert fi_mail.subject == f"Vastaus asiakaspalvelusta – {settings.business_name}"
    assert fi_mail.body_text.startswith("Hei Kaisa,") and "> Onko sävyä 3W?" in fi_mail.body_text
    assert "Älä vastaa tähän viestiin" in fi_mail.body_text and fi_mail.reply_to == ""
    assert "Reply-To" not in build_message(claimed(fi_mail), settings, utcnow())


async def test_live_answers_are_mailed_only_when_the_visitor_has_gone(
        db: Database, settings: Settings, shop: Shop) -> None:
    agent = await agent_of(db, shop)
    tok = chat.new_visitor_token()
    async with db.uow() as uow:
        asked = await chat.post_visitor_message(uow, tok, "Onko tätä Tampereella?", key())
        await chat.identify_visitor(uow, tok, "Outi", f"outi.{key()[:8]}@example.fi")
        await uow.commit()
    cid = asked.conversation_id
    # The visitor is there: the answer is in the chat only.
    present = await answer(db, agent, cid, "Hetki, tarkistan.", settings)
    assert present.mail == "" and await mails_of(db, present.id) == []

    # The visitor has not written for longer than VISITOR_AWAY: the answer is mailed too.
    async with db.uow() as uow:
        await uow.session.execute(
            update(ChatMessage).where(ChatMessage.conversation_id == cid,
                                      ChatMessage.sender == "visitor")
            .values(created_at=utcnow() - chat_mail.VISITOR_AWAY - timedelta(minutes=1)))
        await uow.commit()
    async with db.reader() as s:
        assert (await chat.get_conversation(s, agent, cid)).conversation.answer_by_email
    gone = await answer(db, agent, cid, "On, kaksi kappaletta.", settings)
    [mail] = await mails_of(db, gone.id)
    assert mail.to_addr.startswith("outi.") and "On, kaksi kappaletta." in mail.body_text
    assert "> Onko tätä Tampereella?" in mail.body_text

    # A visitor who gave no address: nothing to mail, however long they have been gone.
    async with db.uow() as uow:
        silent = await chat.post_visitor_message(uow, chat.new_visitor_token(), "Hei?", key())
        await uow.session.execute(
            update(ChatMessage).where(ChatMessage.id == silent.id)
            .values(created_at=utcnow() - timedelta(hours=2)))
        await uow.commit()
    unmailed = await answer(db, agent, silent.conversation_id, "Hei! Miten voin auttaa?",
                            settings)
    assert unmailed.mail == "" and await mails_of(db, unmailed.id) == []


def csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no CSRF token in page"
    return html.unescape(m[1])


async def test_the_desk_shows_answers_sent_by_email(client: httpx.AsyncClient, db: Database,
                                                   shop: Shop) -> None:
    email = f"liisa.{key()[:8]}@example.fi"
    cid = await offline(db, "Liisa", email, "Soittakaa huomenna.", "fi")
    await log_in(client, shop, "service")
    desk = await client.get(f"/service/c/{cid}")
    assert 'data-testid="reply-by-email"' in desk.text
    assert f"Jätetty viesti: vastauksesi lähtee myös sähköpostilla osoitteeseen {email}." \
        in desk.text
    r = await client.post(f"/service/c/{cid}/reply", headers={
        "HX-Request": "true", "X-CSRF-Token": csrf(desk.text)},
        data={"body": "Soitamme kello 10.", "client_key": key()})
    assert r.status_code == 200
    # Queued, or sent already by the app's mail sender: either way "sent by e-mail".
    assert re.search(r'data-testid="message-mail" data-mail="(queued|sent)"', r.text)
    assert f"Lähetetty sähköpostilla ({email})" in r.text
    async with db.reader() as s:
        mail_id = await s.scalar(select(OutgoingMail.id).where(
            OutgoingMail.kind == "service_reply", OutgoingMail.to_addr == email))
        count = await s.scalar(select(func.count(OutgoingMail.id)).where(
            OutgoingMail.kind == "service_reply", OutgoingMail.to_addr == email))
    assert mail_id is not None and count == 1
    # The mail bounced for good: the desk says so.
    async with db.uow() as uow:
        await uow.session.execute(update(OutgoingMail).where(OutgoingMail.id == mail_id)
                                  .values(status="failed"))
        await uow.commit()
    page = (await client.get(f"/service/c/{cid}/messages")).text
    assert 'data-mail="failed"' in page and "Sähköpostia ei saatu perille." in page
