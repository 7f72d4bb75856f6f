"""The service desk's chat (both databases): idempotent messages, the visitor's chat
across page loads, assignment, closing, recognising the visitor (signed in; a typed
e-mail of a customer is shown as not verified until an agent links it), links that
follow merged customers and refuse erased ones, who may do what, canned answers,
presence, the offline message (a conversation in the queue and a mail to the shop with
the visitor as Reply-To) and the agent's answer to it by e-mail. Through the core and
through HTTP (the widget's JSON endpoints, JSON errors included, and the agents'
pages with the staff board)."""

from __future__ import annotations

import html
import re
import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers import accounts
from saumaton.customers.card import customer_card
from saumaton.customers.models import Customer
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.mail.models import OutgoingMail
from saumaton.service import canned, chat
from saumaton.service.board import NoticeIn, create_notice
from saumaton.service.models import ChatMessage, Conversation
from saumaton.service.presence import ONLINE_SECONDS, Presence
from saumaton.staff.models import Staff
from tests.support import Shop
from tests.support import staff_login as log_in

HX = {"HX-Request": "true"}
PASSWORD = "vihreä kettu hyppää"


def token() -> str:
    return chat.new_visitor_token()


def key() -> str:
    return uuid.uuid4().hex


async def staff_actor(db: Database, shop: Shop, who: str) -> Actor:
    from saumaton.staff.services import actor_for

    async with db.reader() as s:
        sid = await s.scalar(select(Staff.id).where(Staff.email == shop.logins[who][0]))
        assert sid is not None
        actor = await actor_for(s, int(sid))
    assert actor is not None
    return actor


async def new_customer(db: Database, first: str = "Anna") -> tuple[int, str]:
    email = f"{first.lower()}.{uuid.uuid4().hex[:8]}@example.fi"
    async with db.uow() as uow:
        out = await create_customer(uow, SYSTEM, CustomerIn(
            first_name=first, last_name="Virtanen", email=email))
        await uow.commit()
    return out.id, email


async def visitor_says(db: Database, tok: str, body: str, client_key: str | None = None,
                       **kw: object) -> chat.MessageOut:
    async with db.uow() as uow:
        msg = await chat.post_visitor_message(uow, tok, body, client_key, **kw)  # type: ignore[arg-type]
        await uow.commit()
    return msg


async def count_messages(db: Database, conversation_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count(ChatMessage.id)).where(
            ChatMessage.conversation_id == conversation_id)) or 0)


# --- the core ----------------------------------------------------------------------------

async def test_visitor_message_is_idempotent_on_client_key(db: Database, shop: Shop) -> None:
    tok, k = token(), key()
    first = await visitor_says(db, tok, "Sopiiko sävy 2N minulle?", k, page="/shop/p/x")
    again = await visitor_says(db, tok, "Sopiiko sävy 2N minulle?", k)
    assert again.id == first.id
    assert await count_messages(db, first.conversation_id) == 1
    # Someone else's browser cannot reuse (or read) that key's message.
    with pytest.raises(Conflict) as exc:
        await visitor_says(db, token(), "hei", k)
    assert exc.value.code == "client_key_reused"
    # A second message joins the same open chat; the chat survives page loads.
    second = await visitor_says(db, tok, "Entä 3W?", key())
    assert second.conversation_id == first.conversation_id
    async with db.reader() as s:
        view = await chat.visitor_view(s, tok)
        assert view is not None
        assert [m.body for m in view.messages] == ["Sopiiko sävy 2N minulle?", "Entä 3W?"]
        assert view.conversation.page == "/shop/p/x"
        assert await chat.visitor_view(s, token()) is None
        assert await chat.visitor_view(s, "not a token") is None


async def test_bad_messages_are_refused_and_nothing_is_written(db: Database,
                                                              shop: Shop) -> None:
    tok = token()
    for body, code in (("   ", "message_empty"), ("x" * 2001, "message_too_long"),
                       ("hi\x00there", "invalid_text")):
        with pytest.raises(ValidationFailed) as exc:
            await visitor_says(db, tok, body, key())
        assert exc.value.code == code and exc.value.field == "body"
    with pytest.raises(ValidationFailed) as exc:
        await visitor_says(db, tok, "hei", "short")
    assert exc.value.code == "invalid_client_key"
    async with db.reader() as s:
        assert await s.scalar(select(Conversation.id).where(
            Conversation.visitor_token_hash == chat.token_hash(tok))) is None


async def test_agent_answer_assigns_and_events_reach_the_visitor(
        db: Database, settings: Settings, shop: Shop) -> None:
    agent = await staff_actor(db, shop, "service")
    tok = token()
    asked = await visitor_says(db, tok, "Onko tätä myymälässä?", key())
    async with db.reader() as s:
        before = int(await s.scalar(select(func.max(OutboxEvent.id))) or 0)
        queue = await chat.list_conversations(s, agent, "unassigned")
        assert asked.conversation_id in [c.id for c in queue]
    k = key()
    async with db.uow() as uow:
        answer = await chat.post_agent_message(uow, agent, asked.conversation_id,
                                               "On, Helsingin myymälässä.", k,
                                               settings=settings)
        await uow.commit()
    async with db.uow() as uow:  # the agent's page sent the form twice
        again = await chat.post_agent_message(uow, agent, asked.conversation_id,
                                              "On, Helsingin myymälässä.", k,
                                              settings=settings)
        await uow.commit()
    assert again.id == answer.id and answer.author == "Service" and answer.sender == "agent"
    async with db.reader() as s:
        view = await chat.get_conversation(s, agent, asked.conversation_id)
        assert view.conversation.assigned_staff_id == agent.staff_id
        assert [m.sender for m in view.messages] == ["visitor", "agent"]
        mine = await chat.list_conversations(s, agent, "mine")
        assert asked.conversation_id in [c.id for c in mine]
        events = (await s.execute(select(OutboxEvent.topic, OutboxEvent.payload).where(
            OutboxEvent.id > before, OutboxEvent.topic.like("chat.%")))).all()
    visitor = chat.visitor_key(chat.token_hash(tok))
    assert ("chat.message", asked.conversation_id, visitor) in {
        (t, p["conversation_id"], p["visitor"]) for t, p in events}
    async with db.reader() as s:
        assert [m.body for m in await chat.visitor_messages_after(s, tok, asked.id)] == [
            "On, Helsingin myymälässä."]


async def test_assign_to_another_agent_and_back_to_the_queue(db: Database, shop: Shop) -> None:
    agent = await staff_actor(db, shop, "service")
    manager = await staff_actor(db, shop, "manager")
    cashier = await staff_actor(db, shop, "cashier1")
    msg = await visitor_says(db, token(), "Hei!", key())
    cid = msg.conversation_id
    async with db.uow() as uow:
        out = await chat.assign(uow, agent, cid, manager.staff_id)
        await uow.commit()
    assert out.assigned_staff_id == manager.staff_id and out.assigned_name == "Manager"
    for target in (cashier.staff_id, 999_999):
        with pytest.raises(ValidationFailed) as exc:
            async with db.uow() as uow:
                await chat.assign(uow, agent, cid, target)
        assert exc.value.code == "not_an_agent" and exc.value.field == "staff_id"
    async with db.uow() as uow:
        out = await chat.assign(uow, agent, cid, None)
        await uow.commit()
    assert out.assigned_staff_id is None
    with pytest.raises(NotFound):
        async with db.uow() as uow:
            await chat.assign(uow, agent, 10**12, None)


async def test_queue_order_open_unassigned_mine_newest(db: Database, shop: Shop) -> None:
    agent = await staff_actor(db, shop, "service")
    manager = await staff_actor(db, shop, "manager")
    ids = [(await visitor_says(db, token(), f"viesti {i}", key())).conversation_id
           for i in range(4)]
    async with db.uow() as uow:
        await chat.assign(uow, agent, ids[0], manager.staff_id)
        await chat.assign(uow, agent, ids[1], agent.staff_id)
        await chat.close(uow, agent, ids[2])
        await uow.commit()
    async with db.reader() as s:
        listed = [c.id for c in await chat.list_conversations(s, agent, "all")
                  if c.id in ids]
        open_ids = [c.id for c in await chat.list_conversations(s, agent, "open")]
        closed = [c.id for c in await chat.list_conversations(s, agent, "closed")]
        with pytest.raises(ValidationFailed):
            await chat.list_conversations(s, agent, "everything")
    assert listed == [ids[3], ids[1], ids[0], ids[2]]
    assert ids[2] not in open_ids and ids[2] in closed


async def test_closing_ends_the_chat_for_both(db: Database, settings: Settings,
                                              shop: Shop) -> None:
    agent = await staff_actor(db, shop, "service")
    tok = token()
    msg = await visitor_says(db, tok, "Kiitos!", key())
    async with db.uow() as uow:
        out = await chat.close(uow, agent, msg.conversation_id)
        await uow.commit()
    assert out.status == "closed" and out.closed_at is not None
    async with db.uow() as uow:  # closing again changes nothing
        assert (await chat.close(uow, agent, msg.conversation_id)).closed_at == out.closed_at
    with pytest.raises(Conflict) as exc:
        async with db.uow() as uow:
            await chat.post_agent_message(uow, agent, msg.conversation_id, "Vielä yksi", key(),
                                          settings=settings)
    assert exc.value.code == "conversation_closed"
    async with db.reader() as s:
        assert await chat.visitor_view(s, tok) is None
    nxt = await visitor_says(db, tok, "Uusi kysymys", key())
    assert nxt.conversation_id != msg.conversation_id


async def test_signed_in_shopper_is_recognised(db: Database, shop: Shop) -> None:
    customer_id, _ = await new_customer(db)
    msg = await visitor_says(db, token(), "Hei, tilaukseni?", key(), customer_id=customer_id)
    agent = await staff_actor(db, shop, "service")
    async with db.reader() as s:
        view = await chat.get_conversation(s, agent, msg.conversation_id)
        assert view.conversation.customer_id == customer_id
        assert view.conversation.customer_name == "Anna Virtanen"
        assert [c.id for c in await chat.conversations_of_customer(
            s, agent, customer_id)] == [msg.conversation_id]
    # Signing in after the chat began links it too.
    tok = token()
    later = await visitor_says(db, tok, "Hei", key())
    await visitor_says(db, tok, "Kirjauduin nyt", key(), customer_id=customer_id)
    async with db.reader() as s:
        assert (await chat.get_conversation(
            s, agent, later.conversation_id)).conversation.customer_id == customer_id


async def test_a_typed_email_of_a_customer_is_not_proof(db: Database, shop: Shop) -> None:
    """Anybody can type a customer's address: the desk shows the match as not verified
    and keeps the card (and the chat off the customer's timeline) until an agent links."""
    agent = await staff_actor(db, shop, "service")
    customer_id, email = await new_customer(db, "Eeva")
    tok = token()
    msg = await visitor_says(db, tok, "Sopiiko tämä?", key())
    async with db.uow() as uow:
        out = await chat.identify_visitor(uow, tok, "", email.upper())  # however typed
        await uow.commit()
    assert out.customer_id is None and out.email == email
    assert out.email_customer_id == customer_id and out.email_customer_name == "Eeva Virtanen"
    assert out.label == email  # not the customer's name
    async with db.reader() as s:
        listed = {c.id: c for c in await chat.list_conversations(s, agent, "all")}
        assert listed[msg.conversation_id].email_customer_id == customer_id
        assert msg.conversation_id not in [c.id for c in await chat.conversations_of_customer(
            s, agent, customer_id)]
    # The agent checks and links: now it is the customer's chat, the warning is gone.
    async with db.uow() as uow:
        linked = await chat.link_customer(uow, agent, msg.conversation_id,
                                          out.email_customer_id)
        await uow.commit()
    assert linked.customer_id == customer_id and linked.email_customer_id is None
    assert linked.label == "Eeva Virtanen"
    # An address nobody has is kept, but links no one.
    tok2 = token()
    await visitor_says(db, tok2, "Hei", key())
    async with db.uow() as uow:
        out2 = await chat.identify_visitor(uow, tok2, "Liisa", "liisa@nobody.example")
        await uow.commit()
    assert out2.customer_id is None and out2.name == "Liisa"
    with pytest.raises(ValidationFailed) as exc:
        async with db.uow() as uow:
            await chat.identify_visitor(uow, tok2, "", "not-an-email")
    assert exc.value.code == "invalid_email" and exc.value.field == "email"
    with pytest.raises(NotFound):
        async with db.uow() as uow:
            await chat.identify_visitor(uow, token(), "", email)


async def test_agent_links_a_customer_and_writes_a_note(db: Database, shop: Shop) -> None:
    from saumaton.customers.notes import add_note

    agent = await staff_actor(db, shop, "service")
    customer_id, _ = await new_customer(db, "Outi")
    msg = await visitor_says(db, token(), "Hei", key())
    async with db.uow() as uow:
        out = await chat.link_customer(uow, agent, msg.conversation_id, customer_id)
        await add_note(uow, agent, customer_id, "prefers shade 2N, sensitive skin", "service")
        await uow.commit()
    assert out.customer_id == customer_id
    async with db.reader() as s:
        card = await customer_card(s, agent, customer_id)
    assert [(n.body, n.channel) for n in card.notes] == [
        ("prefers shade 2N, sensitive skin", "service")]
    with pytest.raises(NotFound) as exc:
        async with db.uow() as uow:
            await chat.link_customer(uow, agent, msg.conversation_id, 10**12)
    assert exc.value.code == "customer_not_found"


async def test_only_agents_answer_and_only_managers_edit_canned_answers(
        db: Database, settings: Settings, shop: Shop) -> None:
    cashier = await staff_actor(db, shop, "cashier1")
    finance = await staff_actor(db, shop, "finance")
    agent = await staff_actor(db, shop, "service")
    manager = await staff_actor(db, shop, "manager")
    owner = await staff_actor(db, shop, "owner")
    msg = await visitor_says(db, token(), "Hei", key())
    for who in (cashier, finance):
        with pytest.raises(Forbidden):
            async with db.reader() as s:
                await chat.list_conversations(s, who)
        with pytest.raises(Forbidden):
            async with db.uow() as uow:
                await chat.post_agent_message(uow, who, msg.conversation_id, "Hei", key(),
                                              settings=settings)
        with pytest.raises(Forbidden):
            async with db.uow() as uow:
                await chat.close(uow, who, msg.conversation_id)
    assert chat.is_agent(owner) and chat.is_agent(manager) and not chat.is_agent(cashier)
    with pytest.raises(Forbidden):
        async with db.uow() as uow:
            await canned.create_canned(uow, agent, "Toimitus", "Toimitamme 1–3 päivässä.")
    async with db.uow() as uow:
        made = await canned.create_canned(uow, manager, f"Toimitus {key()[:6]}",
                                          "Toimitamme 1–3 arkipäivässä.")
        await uow.commit()
    with pytest.raises(ValidationFailed) as exc:
        async with db.uow() as uow:
            await canned.update_canned(uow, owner, made.id, "", "x")
    assert exc.value.field == "title"
    async with db.uow() as uow:
        await canned.update_canned(uow, owner, made.id, made.title, "Delivery 1–3 days.", "en")
        await uow.commit()
    async with db.reader() as s:
        seen = {a.id: a for a in await canned.list_canned(s, agent, "en")}
    assert seen[made.id].body == "Delivery 1–3 days." and seen[made.id].language == "en"
    async with db.uow() as uow:
        await canned.delete_canned(uow, manager, made.id)
        await uow.commit()
    with pytest.raises(NotFound):
        async with db.uow() as uow:
            await canned.delete_canned(uow, manager, made.id)


async def test_offline_message_reaches_the_queue_and_the_shop_by_mail(
        db: Database, shop: Shop) -> None:
    agent = await staff_actor(db, shop, "service")
    customer_id, email = await new_customer(db, "Kaisa")
    tok = token()
    async with db.uow() as uow:
        out = await chat.leave_offline_message(
            uow, tok, name="Kaisa Virtanen", email=email, body="Soittakaa minulle huomenna.",
            shop_address="shop@kauppa.example", page="/shop/")
        await uow.commit()
    # The typed address is the customer's, but that is not verified: not linked.
    assert out.offline_message and out.status == "open" and out.customer_id is None
    assert out.email_customer_id == customer_id
    async with db.reader() as s:
        queue = await chat.list_conversations(s, agent, "unassigned")
        assert out.id in [c.id for c in queue]
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.reference == f"conversation:{out.id}"))
        assert await chat.visitor_view(s, tok) is None  # not a live chat
    assert mail is not None and mail.to_addr == "shop@kauppa.example"
    assert mail.kind == "service_offline" and mail.reply_to == email  # answer the visitor
    assert "Soittakaa minulle huomenna." in mail.body_text and email in mail.body_text
    for fields, field in ((dict(name="", email=email, body="x"), "name"),
                          (dict(name="K", email="", body="x"), "email"),
                          (dict(name="K", email="nope", body="x"), "email"),
                          (dict(name="K", email=email, body=" "), "message")):
        tok2 = token()
        with pytest.raises(ValidationFailed) as exc:
            async with db.uow() as uow:
                await chat.leave_offline_message(uow, tok2, shop_address="shop@kauppa.example",
                                                 **fields)  # type: ignore[arg-type]
        assert exc.value.field == field
        async with db.reader() as s:
            assert await s.scalar(select(Conversation.id).where(
                Conversation.visitor_token_hash == chat.token_hash(tok2))) is None


def test_presence_counts_heartbeats_of_the_last_minute() -> None:
    p = Presence()
    now = time.time()
    assert not p.is_online(now)
    p.note(1, now - ONLINE_SECONDS - 1)
    assert not p.is_online(now)
    p.note(2, now - 5)
    assert p.online_agents(now) == {2}
    p.note(2, now, away=True)
    assert not p.is_online(now)


# --- HTTP ----------------------------------------------------------------------------------

def csrf(page: str) -> str:
    m = re.search(r'data-csrf="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no CSRF token in page"
    return html.unescape(m[1])




async def test_widget_endpoints_and_the_agents_page(client: httpx.AsyncClient, db: Database,
                                                    shop: Shop) -> None:
    page = (await client.get("/shop/")).text
    assert 'data-testid="chat-widget"' in page and "Kysy meiltä" in page
    token_ = csrf(page)
    r = await client.post("/service/chat/messages", data={"body": "Hei", "client_key": key()})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    k = key()
    r = await client.post("/service/chat/messages", headers={"X-CSRF-Token": token_},
                          data={"body": "Sopiiko sävy 2N?", "client_key": k, "page": "/shop/"})
    assert r.status_code == 200, r.text
    assert chat.CHAT_COOKIE in r.headers["set-cookie"]
    first = r.json()["message"]
    r = await client.post("/service/chat/messages", headers={"X-CSRF-Token": token_},
                          data={"body": "Sopiiko sävy 2N?", "client_key": k})
    assert r.json()["message"]["id"] == first["id"]
    r = await client.post("/service/chat/messages", headers={"X-CSRF-Token": token_},
                          data={"body": "", "client_key": key()})
    assert r.status_code == 422
    assert r.json() == {"code": "message_empty", "field": "body",
                        "message": "Kirjoita ensin viesti."}
    state = (await client.get("/service/chat/state")).json()
    assert [m["body"] for m in state["messages"]] == ["Sopiiko sävy 2N?"]
    assert state["conversation"]["identified"] is False and state["signed_in"] is False
    conversation_id = state["conversation"]["id"]
    _, email = await new_customer(db, "Helmi")
    r = await client.post("/service/chat/identify", headers={"X-CSRF-Token": token_},
                          data={"email": email})
    assert r.status_code == 200 and r.json()["conversation"]["identified"] is True
    r = await client.post("/service/chat/identify", headers={"X-CSRF-Token": token_},
                          data={"email": "x@"})
    assert r.status_code == 422 and r.json()["field"] == "email"

    # The agents' page: a cashier may not, an agent sees and answers.
    visitor_cookies = dict(client.cookies)
    client.cookies.clear()
    r = await client.get("/service")
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    await log_in(client, shop, "cashier1")
    assert (await client.get("/service")).status_code == 403
    client.cookies.clear()
    await log_in(client, shop, "service")
    desk = await client.get(f"/service/c/{conversation_id}")
    assert desk.status_code == 200
    # The typed e-mail is a customer's: a warning and a link button, no card yet.
    assert "Sopiiko sävy 2N?" in desk.text and "Helmi Virtanen" in desk.text
    assert 'data-testid="email-unverified"' in desk.text
    assert "Sähköposti annettu, ei varmistettu" in desk.text
    assert 'data-testid="customer-card"' not in desk.text
    m = re.search(r'name="customer_id" value="(\d+)">\s*'
                  r'<button[^>]*data-testid="link-email-customer"', desk.text)
    assert m, "a button links the customer of the typed e-mail"
    r = await client.post(f"/service/c/{conversation_id}/customer",
                          data={"csrf_token": csrf(desk.text), "customer_id": m[1]})
    assert r.status_code == 303
    desk = await client.get(f"/service/c/{conversation_id}")
    assert 'data-testid="customer-card"' in desk.text
    assert 'data-testid="email-unverified"' not in desk.text
    r = await client.post(f"/service/c/{conversation_id}/reply", headers={
        **HX, "X-CSRF-Token": csrf(desk.text)}, data={"body": "Sopii hyvin!", "client_key": key()})
    assert r.status_code == 200 and "Sopii hyvin!" in r.text and 'hx-swap-oob="true"' in r.text
    r = await client.post(f"/service/c/{conversation_id}/reply", headers={
        **HX, "X-CSRF-Token": csrf(desk.text)}, data={"body": " ", "client_key": key()})
    assert r.status_code == 422 and 'data-testid="reply-error"' in r.text
    r = await client.post("/service/heartbeat", headers={"X-CSRF-Token": csrf(desk.text)})
    assert r.status_code == 204
    client.cookies.clear()
    client.cookies.update(visitor_cookies)
    state = (await client.get("/service/chat/state")).json()
    assert state["online"] is True
    assert [m["sender"] for m in state["messages"]] == ["visitor", "agent"]
    after = state["messages"][0]["id"]
    more = (await client.get(f"/service/chat/messages?after={after}")).json()
    assert [m["body"] for m in more["messages"]] == ["Sopii hyvin!"]
    # The agent's page closes: nobody is online (and the browser tests start offline).
    client.cookies.clear()
    await log_in(client, shop, "service")
    desk = await client.get("/service")
    r = await client.post("/service/heartbeat", data={"csrf_token": csrf(desk.text),
                                                      "away": "1"})
    assert r.status_code == 204
    assert (await client.get("/service/chat/state")).json()["online"] is False


async def test_signed_in_shopper_chat_is_linked_over_http(
        client: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop) -> None:
    email = f"maija.{uuid.uuid4().hex[:8]}@example.fi"
    async with db.uow() as uow:
        cid = await accounts.register(uow, email=email, password=PASSWORD, first_name="Maija",
                                      last_name="Mallikas", marketing_email=False, lang="fi",
                                      base_url="https://kauppa.example", settings=settings)
        await uow.commit()
    page = (await client.get("/account/login")).text
    r = await client.post("/account/login", data={"csrf_token": csrf(page), "email": email,
                                                  "password": PASSWORD})
    assert r.status_code == 303
    page = (await client.get("/shop/")).text
    r = await client.post("/service/chat/messages", headers={"X-CSRF-Token": csrf(page)},
                          data={"body": "Missä tilaukseni on?", "client_key": key()})
    assert r.status_code == 200
    state = (await client.get("/service/chat/state")).json()
    assert state["signed_in"] is True and state["conversation"]["identified"] is True
    async with db.reader() as s:
        conv = await s.get(Conversation, state["conversation"]["id"])
    assert conv is not None and conv.customer_id == cid


async def test_offline_form_over_http(client: httpx.AsyncClient, db: Database,
                                      shop: Shop) -> None:
    page = (await client.get("/shop/?lang=en")).text
    assert "Ask us" in page
    headers = {"X-CSRF-Token": csrf(page)}
    r = await client.post("/service/chat/offline", headers=headers,
                          data={"name": "Leo", "email": "bad", "message": "Hello"})
    assert r.status_code == 422 and r.json()["field"] == "email"
    assert r.json()["message"] == "Check the e-mail address."
    r = await client.post("/service/chat/offline", headers=headers,
                          data={"name": "Leo", "email": "leo@example.com",
                                "message": "Do you ship to Åland?"})
    assert r.status_code == 200
    cid = r.json()["conversation"]["id"]
    async with db.reader() as s:
        conv = await s.get(Conversation, cid)
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.reference == f"conversation:{cid}"))
    assert conv is not None and conv.offline_message and conv.language == "en"
    assert mail is not None and mail.to_addr == "noreply@saumaton.invalid"


async def test_canned_answers_page(client: httpx.AsyncClient, shop: Shop) -> None:
    await log_in(client, shop, "manager")
    page = (await client.get("/service/canned")).text
    assert 'data-testid="canned-new"' in page
    r = await client.post("/service/canned", data={"csrf_token": csrf(page), "title": " ",
                                                   "body": "Kiitos viestistä!"})
    assert r.status_code == 422
    assert 'aria-invalid="true" aria-describedby="canned-new-title-error"' in r.text
    assert "Anna vastaukselle otsikko." in r.text and "Kiitos viestistä!" in r.text
    title = f"Kiitos {key()[:6]}"
    r = await client.post("/service/canned", data={"csrf_token": csrf(page), "title": title,
                                                   "body": "Kiitos viestistä!"})
    assert r.status_code == 303
    client.cookies.clear()
    await log_in(client, shop, "service")
    page = (await client.get("/service/canned")).text
    assert title in page and 'data-testid="canned-new"' not in page
    m = re.search(rf'data-canned-id="(\d+)">\s*<h2>{re.escape(title)}', page)
    assert m, "the answer is listed"
    r = await client.post(f"/service/canned/{m[1]}/delete", data={"csrf_token": csrf(page)})
    assert r.status_code == 403


async def test_links_follow_merged_customers_and_refuse_erased_ones(
        db: Database, shop: Shop) -> None:
    agent = await staff_actor(db, shop, "service")
    kept, _ = await new_customer(db, "Kerttu")
    merged, merged_email = await new_customer(db, "Kerttu")
    erased, erased_email = await new_customer(db, "Elli")
    async with db.uow() as uow:
        await uow.session.execute(update(Customer).where(Customer.id == merged)
                                  .values(merged_into_id=kept))
        await uow.session.execute(update(Customer).where(Customer.id == erased)
                                  .values(erased_at=utcnow()))
        await uow.commit()
    # An agent links the merged id: the chat goes to the kept customer.
    msg = await visitor_says(db, token(), "Hei", key())
    async with db.uow() as uow:
        out = await chat.link_customer(uow, agent, msg.conversation_id, merged)
        await uow.commit()
    assert out.customer_id == kept
    # An erased customer is refused and nothing changes.
    with pytest.raises(Conflict) as exc:
        async with db.uow() as uow:
            await chat.link_customer(uow, agent, msg.conversation_id, erased)
    assert exc.value.code == "customer_erased" and exc.value.field == "customer_id"
    async with db.reader() as s:
        assert (await chat.get_conversation(s, agent, msg.conversation_id)
                ).conversation.customer_id == kept
    # A signed-in shopper's merged id links the kept customer too; an erased customer's
    # stale session chats on, linked to no one.
    shopper = await visitor_says(db, token(), "Moi", key(), customer_id=merged)
    ghost = await visitor_says(db, token(), "Moi", key(), customer_id=erased)
    async with db.reader() as s:
        assert (await chat.get_conversation(s, agent, shopper.conversation_id)
                ).conversation.customer_id == kept
        assert (await chat.get_conversation(s, agent, ghost.conversation_id)
                ).conversation.customer_id is None
    # Neither an erased nor a merged-away customer is offered as the typed e-mail's match.
    for typed in (erased_email, merged_email):
        tok = token()
        await visitor_says(db, tok, "Hei", key())
        async with db.uow() as uow:
            conv = await chat.identify_visitor(uow, tok, "", typed)
            await uow.commit()
        assert conv.customer_id is None and conv.email_customer_id is None


async def test_widget_answers_bad_input_with_json(client: httpx.AsyncClient, db: Database,
                                                 shop: Shop) -> None:
    for query in ("after=-1", "after=abc", f"after={10**30}"):
        r = await client.get(f"/service/chat/messages?{query}")
        assert r.status_code == 422, (query, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"code": "validation_error", "field": "after", "message":
                            "Chat ei ymmärtänyt pyyntöä. Lataa sivu uudelleen ja yritä "
                            "uudestaan."}
    r = await client.get("/service/chat/messages?after=-1&lang=en")
    assert r.json()["message"] == "The chat could not read that. Reload the page and try again."
    # A write without a form: JSON too (the CSRF check fails first).
    r = await client.post("/service/chat/messages", json={"body": "Hei"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    # The agents' link form: an erased customer is refused with the reason.
    erased, _ = await new_customer(db, "Elli")
    async with db.uow() as uow:
        await uow.session.execute(update(Customer).where(Customer.id == erased)
                                  .values(erased_at=utcnow()))
        await uow.commit()
    msg = await visitor_says(db, token(), "Hei", key())
    await log_in(client, shop, "service")
    desk = await client.get(f"/service/c/{msg.conversation_id}")
    r = await client.post(f"/service/c/{msg.conversation_id}/customer",
                          data={"csrf_token": csrf(desk.text), "customer_id": str(erased)})
    assert r.status_code == 409
    assert "Tämän asiakkaan tiedot on poistettu" in r.text
    async with db.reader() as s:
        conv = await s.get(Conversation, msg.conversation_id)
    assert conv is not None and conv.customer_id is None


async def test_the_staff_board_is_in_the_desk(client: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    title = f"Inventaario perjantaina {key()[:6]}"
    async with db.uow() as uow:
        await create_notice(uow, SYSTEM, NoticeIn(title=title, body="Myymälät kiinni klo 18."))
        await uow.commit()
    await log_in(client, shop, "service")
    desk = (await client.get("/service")).text
    assert 'href="/service/board"' in desk and 'data-testid="board-link"' in desk
    page = await client.get("/service/board")
    assert page.status_code == 200
    assert 'data-testid="board"' in page.text and title in page.text
    assert "Henkilökunnan taulu" in page.text and "Myymälät kiinni klo 18." in page.text
    assert 'aria-current="page" data-testid="board-link"' in page.text
    assert 'data-testid="notice-end"' not in page.text  # ending notices is the back office's
    client.cookies.clear()
    await log_in(client, shop, "cashier1")
    assert (await client.get("/service/board")).status_code == 403
