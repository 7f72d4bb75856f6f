"""The service desk's chat: webshop visitors talk with service agents.

A visitor is known by a random token in the `saumaton_chat` cookie (only its SHA-256 is
stored). Their first message starts a conversation; later messages join the newest open
one, so the chat survives page loads. A signed-in shopper is linked to their customer at
once. An e-mail address the visitor types proves nothing: when it belongs to a customer
the desk says so (`email_customer_id`, "e-mail given, not verified"), but the chat is
linked, and the customer's card shown, only when an agent links it. Links follow merged
customers to the kept one; an erased customer is never linked. Agents (staff with the
role service, manager or owner) list, answer, assign, close and link conversations.
When no agent is online the visitor leaves an offline message: a conversation in the
agents' queue and a mail to the shop (Reply-To: the visitor). An agent's answer to an
offline message, or to a visitor who has gone, is also mailed to the visitor
(`service.chat_mail`).

Every change emits `chat.message` (a new message) or `chat.updated` (anything else) with
the conversation's id and the visitor's key (`visitor`, a prefix of the token's hash),
so the visitor's stream and the agents' page update live.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers.duplicates import resolve_customer_id
from saumaton.customers.identities import normalise_email
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.uow import UnitOfWork
from saumaton.mail.queue import queue_mail
from saumaton.service import chat_mail
from saumaton.service.models import ChatMessage, Conversation
from saumaton.staff.models import Staff, StaffRole
from saumaton.staff.services import actor_for

CHAT_COOKIE = "saumaton_chat"
COOKIE_MAX_AGE = 30 * 24 * 3600
MAX_MESSAGE = 2000
MAX_NAME = 200
MAX_PAGE = 300
AGENT_ROLES = frozenset({"service", "manager", "owner"})
MANAGER_ROLES = frozenset({"manager", "owner"})
LIST_LIMIT = 100
HISTORY_LIMIT = 500
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")
_CLIENT_KEY = re.compile(r"[A-Za-z0-9_-]{8,60}")
VIEWS = ("open", "mine", "unassigned", "closed", "all")


# --- who may do what --------------------------------------------------------------------------

def is_agent(actor: Actor) -> bool:
    return actor.system or any(g.role in AGENT_ROLES for g in actor.grants)


def is_manager(actor: Actor) -> bool:
    return actor.system or any(g.role in MANAGER_ROLES for g in actor.grants)


def require_agent(actor: Actor) -> None:
    if not is_agent(actor):
        raise Forbidden(f"{actor.name or actor.label} is not a service agent", code="forbidden")


def require_manager(actor: Actor) -> None:
    if not is_manager(actor):
        raise Forbidden(f"{actor.name or actor.label} may not edit canned answers",
                        code="forbidden")


# --- the visitor's token ----------------------------------------------------------------------

def new_visitor_token() -> str:
    return secrets.token_urlsafe(32)


def valid_token(token: str | None) -> str | None:
    """The cookie's token if it looks like one we issued, else None."""
    return token if token and _TOKEN.fullmatch(token) else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_key(token_hash_hex: str) -> str:
    """What events carry to route them to the visitor's stream."""
    return token_hash_hex[:16]


# --- what callers get -------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageOut:
    id: int
    conversation_id: int
    sender: str  # visitor | agent | system
    body: str
    author: str  # the agent's name; "" for the visitor and the system
    created_at: datetime
    mail: str = ""  # the answer's e-mailed copy: "" (none) | queued | sent | failed

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "conversation_id": self.conversation_id, "sender": self.sender,
                "body": self.body, "author": self.author,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class ConversationOut:
    id: int
    status: str
    customer_id: int | None
    customer_name: str
    assigned_staff_id: int | None
    assigned_name: str
    name: str
    email: str
    language: str
    page: str
    offline_message: bool
    created_at: datetime
    last_message_at: datetime
    closed_at: datetime | None
    preview: str  # the newest message, shortened
    visitor: str  # the visitor key (a prefix of the token's hash)
    # Not linked, but the e-mail the visitor typed is this customer's (not verified).
    email_customer_id: int | None = None
    email_customer_name: str = ""
    answer_by_email: bool = False  # an agent's answer is mailed to `email` too

    @property
    def label(self) -> str:
        return self.customer_name or self.name or self.email


@dataclass(frozen=True)
class ConversationView:
    conversation: ConversationOut
    messages: list[MessageOut]


# --- checks ---------------------------------------------------------------------------------

def _body(body: str, field: str = "body") -> str:
    text = body.strip().replace("\r\n", "\n")
    if not text:
        raise ValidationFailed("write a message first", code="message_empty", field=field)
    if "\x00" in text:
        raise ValidationFailed("a message cannot contain the NUL character (U+0000)",
                               code="invalid_text", field=field)
    if len(text) > MAX_MESSAGE:
        raise ValidationFailed(f"a message is at most {MAX_MESSAGE} characters",
                               code="message_too_long", field=field, extra={"max": MAX_MESSAGE})
    return text


def _client_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if not _CLIENT_KEY.fullmatch(key):
        raise ValidationFailed("client_key is 8–60 letters, digits, '-' or '_'",
                               code="invalid_client_key", field="client_key")
    return key


def _name(value: str, required: bool) -> str:
    clean = " ".join(value.split())
    if required and not clean:
        raise ValidationFailed("name is required", code="name_required", field="name")
    if len(clean) > MAX_NAME or "\x00" in clean:
        raise ValidationFailed(f"a name is at most {MAX_NAME} characters",
                               code="name_too_long", field="name")
    return clean


def _language(value: str) -> str:
    return value if value in ("fi", "en") else "fi"


def _page(value: str) -> str:
    """Only a same-site path is kept ('/shop/p/…'), cut to fit."""
    v = value.strip()
    return v[:MAX_PAGE] if v.startswith("/") and not v.startswith("//") else ""


# --- reading --------------------------------------------------------------------------------

async def _names_of_staff(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {int(i): str(n) for i, n in (await session.execute(
        select(Staff.id, Staff.name).where(Staff.id.in_(ids)))).all()}


async def _customers_by_email(session: AsyncSession, emails: set[str]) -> dict[str, int]:
    """The live (not merged away, not erased) customer of each address that has one."""
    if not emails:
        return {}
    rows = (await session.execute(
        select(CustomerIdentity.value, CustomerIdentity.customer_id)
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(CustomerIdentity.kind == "email", CustomerIdentity.value.in_(sorted(emails)),
               Customer.merged_into_id.is_(None), Customer.erased_at.is_(None))
        .order_by(CustomerIdentity.id))).all()
    out: dict[str, int] = {}
    for value, cid in rows:
        out.setdefault(str(value), int(cid))
    return out


async def _last_visitor_at(session: AsyncSession, ids: list[int]) -> dict[int, datetime]:
    if not ids:
        return {}
    return {int(cid): at for cid, at in (await session.execute(
        select(ChatMessage.conversation_id, func.max(ChatMessage.created_at))
        .where(ChatMessage.conversation_id.in_(ids), ChatMessage.sender == "visitor")
        .group_by(ChatMessage.conversation_id))).all()}


async def _out_many(session: AsyncSession, rows: list[Conversation],
                    desk: bool = True) -> list[ConversationOut]:
    """`desk=False` (the visitor's own view): without what only agents see, the typed
    e-mail's customer and whether answers go by e-mail."""
    ids = [c.id for c in rows]
    by_email = await _customers_by_email(
        session, {c.email for c in rows if desk and c.email and c.customer_id is None})
    customers = {c.customer_id for c in rows if c.customer_id} | set(by_email.values())
    names: dict[int, str] = {}
    if customers:
        names = {int(i): f"{f} {last}".strip() for i, f, last in (await session.execute(
            select(Customer.id, Customer.first_name, Customer.last_name)
            .where(Customer.id.in_(customers)))).all()}
    last_visitor = await _last_visitor_at(session, [c.id for c in rows if desk and c.email])
    now = utcnow()
    staff = await _names_of_staff(session, {c.assigned_staff_id for c in rows
                                            if c.assigned_staff_id})
    previews: dict[int, str] = {}
    if ids:
        newest = (select(ChatMessage.conversation_id, func.max(ChatMessage.id).label("mid"))
                  .where(ChatMessage.conversation_id.in_(ids), ChatMessage.sender != "system")
                  .group_by(ChatMessage.conversation_id).subquery())
        previews = {int(cid): str(body) for cid, body in (await session.execute(
            select(ChatMessage.conversation_id, ChatMessage.body)
            .join(newest, newest.c.mid == ChatMessage.id))).all()}
    out = []
    for c in rows:
        preview = previews.get(c.id, "")
        unverified = by_email.get(c.email) if c.customer_id is None and c.email else None
        out.append(ConversationOut(
            id=c.id, status=c.status, customer_id=c.customer_id,
            customer_name=names.get(c.customer_id or 0, ""),
            assigned_staff_id=c.assigned_staff_id,
            assigned_name=staff.get(c.assigned_staff_id or 0, ""), name=c.name,
            email=c.email, language=c.language, page=c.page,
            offline_message=c.offline_message, created_at=c.created_at,
            last_message_at=c.last_message_at, closed_at=c.closed_at,
            preview=preview if len(preview) <= 80 else preview[:79] + "…",
            visitor=visitor_key(c.visitor_token_hash), email_customer_id=unverified,
            email_customer_name=names.get(unverified or 0, ""),
            answer_by_email=desk and c.status == "open" and chat_mail.answer_by_email(
                email=c.email, offline_message=c.offline_message,
                last_visitor_at=last_visitor.get(c.id), now=now)))
    return out


async def _messages(session: AsyncSession, conversation_id: int,
                    mail: bool = False) -> list[MessageOut]:
    """The newest messages, oldest first; `mail`: with the e-mailed copies' status."""
    rows = (await session.scalars(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
        .order_by(ChatMessage.id.desc()).limit(HISTORY_LIMIT))).all()
    staff = await _names_of_staff(session, {m.staff_id for m in rows if m.staff_id})
    mailed = await chat_mail.mail_status(
        session, [m.id for m in rows if m.sender == "agent"]) if mail else {}
    return [MessageOut(m.id, m.conversation_id, m.sender, m.body,
                       staff.get(m.staff_id or 0, "") if m.sender == "agent" else "",
                       m.created_at, mailed.get(m.id, "")) for m in reversed(rows)]


async def _open_conversation(session: AsyncSession, hashed: str) -> Conversation | None:
    return await session.scalar(
        select(Conversation).where(Conversation.visitor_token_hash == hashed,
                                   Conversation.status == "open",
                                   Conversation.offline_message.is_(False))
        .order_by(Conversation.id.desc()).limit(1))


async def visitor_view(session: AsyncSession, token: str | None) -> ConversationView | None:
    """The visitor's open chat with its messages (None: no chat yet, or it was closed)."""
    token = valid_token(token)
    if token is None:
        return None
    conv = await _open_conversation(session, token_hash(token))
    if conv is None:
        return None
    [out] = await _out_many(session, [conv], desk=False)
    return ConversationView(out, await _messages(session, conv.id))


async def visitor_messages_after(session: AsyncSession, token: str | None,
                                 after_id: int) -> list[MessageOut]:
    """The visitor's messages newer than `after_id` (what a live update fetches)."""
    view = await visitor_view(session, token)
    if view is None:
        return []
    return [m for m in view.messages if m.id > after_id]


async def list_conversations(session: AsyncSession, actor: Actor, view: str = "open",
                             limit: int = LIST_LIMIT) -> list[ConversationOut]:
    """The agents' queue: open before closed, then unassigned, then the agent's own,
    then the rest; newest activity first within each. view: open | mine | unassigned |
    closed | all."""
    require_agent(actor)
    if view not in VIEWS:
        raise ValidationFailed(f"unknown view '{view}'", code="invalid_view", field="view")
    q = select(Conversation)
    if view == "open":
        q = q.where(Conversation.status == "open")
    elif view == "closed":
        q = q.where(Conversation.status == "closed")
    elif view == "mine":
        q = q.where(Conversation.status == "open",
                    Conversation.assigned_staff_id == actor.staff_id)
    elif view == "unassigned":
        q = q.where(Conversation.status == "open", Conversation.assigned_staff_id.is_(None))
    mine = Conversation.assigned_staff_id == actor.staff_id if actor.staff_id else None
    q = q.order_by(
        case((Conversation.status == "open", 0), else_=1),
        case((Conversation.assigned_staff_id.is_(None), 0),
             *([(mine, 1)] if mine is not None else []), else_=2),
        Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit)
    rows = list((await session.scalars(q)).all())
    return await _out_many(session, rows)


async def _conversation(session: AsyncSession, conversation_id: int,
                        lock: bool = False) -> Conversation:
    q = select(Conversation).where(Conversation.id == conversation_id)
    conv = await session.scalar(q.with_for_update() if lock else q)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}", code="conversation_not_found")
    return conv


async def get_conversation(session: AsyncSession, actor: Actor,
                           conversation_id: int) -> ConversationView:
    require_agent(actor)
    conv = await _conversation(session, conversation_id)
    [out] = await _out_many(session, [conv])
    return ConversationView(out, await _messages(session, conv.id, mail=True))


async def agents(session: AsyncSession) -> list[tuple[int, str]]:
    """Active staff who may answer chats: (id, name), by name."""
    rows = (await session.execute(
        select(Staff.id, Staff.name).join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(Staff.active.is_(True), StaffRole.role.in_(AGENT_ROLES))
        .distinct().order_by(Staff.name, Staff.id))).all()
    return [(int(i), str(n)) for i, n in rows]


# --- writing --------------------------------------------------------------------------------

def _emit(uow: UnitOfWork, topic: str, conv: Conversation, **extra: Any) -> None:
    uow.emit(topic, {"conversation_id": conv.id,
                     "visitor": visitor_key(conv.visitor_token_hash), **extra})


async def _live_customer(uow: UnitOfWork, customer_id: int) -> int:
    """The customer `customer_id` stands for now (a merged one: the kept one). 404
    `customer_not_found`; 409 `customer_erased` for an erased customer, whose anonymised
    record must not gather new personal data."""
    resolved = await resolve_customer_id(uow.session, customer_id)
    row = (await uow.session.execute(
        select(Customer.id, Customer.erased_at).where(Customer.id == resolved))).first()
    if row is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found",
                       field="customer_id")
    if row.erased_at is not None:
        raise Conflict(f"customer {customer_id} was erased", code="customer_erased",
                       field="customer_id")
    return resolved


async def _shopper(uow: UnitOfWork, customer_id: int | None) -> int | None:
    """The signed-in shopper's customer to link a chat to; None when there is none to
    link (not signed in, or the customer is gone): their chat goes on unlinked."""
    if customer_id is None:
        return None
    try:
        return await _live_customer(uow, customer_id)
    except (NotFound, Conflict):
        return None


async def _existing_message(uow: UnitOfWork, key: str) -> ChatMessage | None:
    return await uow.session.scalar(select(ChatMessage).where(ChatMessage.client_key == key))


async def _add_message(uow: UnitOfWork, conv: Conversation, sender: str, body: str,
                       key: str | None, staff_id: int | None = None) -> ChatMessage:
    now = utcnow()
    msg = ChatMessage(conversation_id=conv.id, sender=sender, staff_id=staff_id, body=body,
                      client_key=key, created_at=now)
    try:
        async with uow.session.begin_nested():
            uow.session.add(msg)
            await uow.session.flush()
    except IntegrityError:  # the same key sent twice at the same moment
        raise Conflict("this message was sent already", code="message_duplicate",
                       field="client_key") from None
    conv.last_message_at = now
    _emit(uow, "chat.message", conv, message_id=msg.id, sender=sender)
    return msg


async def _out_message(uow: UnitOfWork, msg: ChatMessage) -> MessageOut:
    author = ""
    if msg.sender == "agent" and msg.staff_id:
        author = (await _names_of_staff(uow.session, {msg.staff_id})).get(msg.staff_id, "")
    return MessageOut(msg.id, msg.conversation_id, msg.sender, msg.body, author,
                      msg.created_at)


async def start_conversation(uow: UnitOfWork, token: str, *, language: str = "fi",
                             page: str = "", customer_id: int | None = None) -> ConversationOut:
    """The visitor's open chat, or a new one. `customer_id`: the signed-in shopper."""
    conv = await _start(uow, token, language=language, page=page, customer_id=customer_id)
    [out] = await _out_many(uow.session, [conv])
    return out


async def _start(uow: UnitOfWork, token: str, *, language: str, page: str,
                 customer_id: int | None) -> Conversation:
    if valid_token(token) is None:
        raise ValidationFailed("no chat token", code="invalid_chat_token", field="token")
    hashed = token_hash(token)
    conv = await _open_conversation(uow.session, hashed)
    if conv is None:
        now = utcnow()
        conv = Conversation(visitor_token_hash=hashed, status="open",
                            language=_language(language), page=_page(page),
                            offline_message=False, created_at=now, last_message_at=now,
                            customer_id=await _shopper(uow, customer_id))
        uow.session.add(conv)
        await uow.session.flush()
        _emit(uow, "chat.updated", conv)
    elif customer_id is not None and conv.customer_id is None:
        shopper = await _shopper(uow, customer_id)
        if shopper is not None:
            conv.customer_id = shopper  # signed in since the chat began
            _emit(uow, "chat.updated", conv)
    return conv


async def post_visitor_message(uow: UnitOfWork, token: str, body: str,
                               client_key: str | None, *, language: str = "fi",
                               page: str = "", customer_id: int | None = None) -> MessageOut:
    """The visitor's message, starting a chat if there is none open. The same
    `client_key` again (a resend after a network error) returns the first message."""
    text = _body(body)
    key = _client_key(client_key)
    if valid_token(token) is None:
        raise ValidationFailed("no chat token", code="invalid_chat_token", field="token")
    if key is not None:
        key = f"v-{key}"
        seen = await _existing_message(uow, key)
        if seen is not None:
            owner = await uow.session.get(Conversation, seen.conversation_id)
            if seen.sender != "visitor" or owner is None \
                    or owner.visitor_token_hash != token_hash(token):
                raise Conflict("this client_key belongs to another message",
                               code="client_key_reused", field="client_key")
            return await _out_message(uow, seen)
    conv = await _start(uow, token, language=language, page=page, customer_id=customer_id)
    msg = await _add_message(uow, conv, "visitor", text, key)
    return await _out_message(uow, msg)


async def identify_visitor(uow: UnitOfWork, token: str, name: str,
                           email: str) -> ConversationOut:
    """The visitor tells who they are. The e-mail is kept, but links no one: anybody
    can type anybody's address (the desk shows the match as not verified)."""
    clean_name = _name(name, False)
    clean_email = normalise_email(email) if email.strip() else ""
    if not clean_name and not clean_email:
        raise ValidationFailed("give a name or an e-mail address", code="email_required",
                               field="email")
    if valid_token(token) is None:
        raise NotFound("no chat", code="conversation_not_found")
    conv = await _open_conversation(uow.session, token_hash(token))
    if conv is None:
        raise NotFound("no open chat", code="conversation_not_found")
    if clean_name:
        conv.name = clean_name
    if clean_email:
        conv.email = clean_email
    await uow.session.flush()
    _emit(uow, "chat.updated", conv)
    [out] = await _out_many(uow.session, [conv])
    return out


async def leave_offline_message(uow: UnitOfWork, token: str, *, name: str, email: str,
                                body: str, shop_address: str, language: str = "fi",
                                page: str = "", customer_id: int | None = None
                                ) -> ConversationOut:
    """No agent is online: the visitor's message becomes a conversation in the agents'
    queue (`offline_message`) and a mail to the shop (Reply-To: the visitor), both in
    this transaction. Linked only to a signed-in shopper, never by the typed e-mail."""
    clean_name = _name(name, True)
    if not email.strip():
        raise ValidationFailed("e-mail is required", code="email_required", field="email")
    clean_email = normalise_email(email)
    text = _body(body, "message")
    if valid_token(token) is None:
        raise ValidationFailed("no chat token", code="invalid_chat_token", field="token")
    now = utcnow()
    conv = Conversation(visitor_token_hash=token_hash(token), status="open",
                        name=clean_name, email=clean_email, language=_language(language),
                        page=_page(page), offline_message=True, created_at=now,
                        last_message_at=now, customer_id=await _shopper(uow, customer_id))
    uow.session.add(conv)
    await uow.session.flush()
    _emit(uow, "chat.updated", conv)
    await _add_message(uow, conv, "visitor", text, None)
    await queue_mail(
        uow, kind="service_offline", to=shop_address,
        subject=f"Viesti asiakaspalveluun / Message to customer service: {clean_name}",
        text=(f"{clean_name} <{clean_email}>\n"
              f"{('Sivu / Page: ' + conv.page) if conv.page else ''}\n\n{text}\n\n"
              f"/service/c/{conv.id}\n"),
        reference=f"conversation:{conv.id}", reply_to=clean_email)
    [out] = await _out_many(uow.session, [conv])
    return out


async def post_agent_message(uow: UnitOfWork, actor: Actor, conversation_id: int, body: str,
                             client_key: str | None = None, *,
                             settings: Settings) -> MessageOut:
    """An agent's answer. An unassigned chat becomes theirs; a closed one takes no more
    messages (409 `conversation_closed`). To an offline message, or a visitor who has
    gone, the answer is mailed too (`chat_mail`), in this transaction."""
    require_agent(actor)
    text = _body(body)
    key = _client_key(client_key)
    if key is not None:
        key = f"a-{key}"
        seen = await _existing_message(uow, key)
        if seen is not None:
            if seen.conversation_id != conversation_id or seen.sender != "agent":
                raise Conflict("this client_key belongs to another message",
                               code="client_key_reused", field="client_key")
            return await _out_message(uow, seen)
    conv = await _conversation(uow.session, conversation_id, lock=True)
    if conv.status != "open":
        raise Conflict("the conversation is closed", code="conversation_closed", field="body")
    if conv.assigned_staff_id is None and actor.staff_id is not None:
        conv.assigned_staff_id = actor.staff_id
        _emit(uow, "chat.updated", conv)
    question = (await uow.session.execute(
        select(ChatMessage.body, ChatMessage.created_at)
        .where(ChatMessage.conversation_id == conv.id, ChatMessage.sender == "visitor")
        .order_by(ChatMessage.id.desc()).limit(1))).first()
    by_email = chat_mail.answer_by_email(
        email=conv.email, offline_message=conv.offline_message,
        last_visitor_at=question.created_at if question else None, now=utcnow())
    msg = await _add_message(uow, conv, "agent", text, key, actor.staff_id)
    out = await _out_message(uow, msg)
    if not by_email:
        return out
    mail = chat_mail.reply_mail(settings=settings, language=conv.language, name=conv.name,
                                answer=text, agent=out.author or actor.name,
                                question=question.body if question else "")
    await queue_mail(uow, kind=chat_mail.KIND, to=conv.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=chat_mail.reference(msg.id),
                     reply_to=settings.service_email)
    return MessageOut(out.id, out.conversation_id, out.sender, out.body, out.author,
                      out.created_at, "queued")


async def assign(uow: UnitOfWork, actor: Actor, conversation_id: int,
                 staff_id: int | None) -> ConversationOut:
    """Give the chat to an agent (None: back to the queue)."""
    require_agent(actor)
    conv = await _conversation(uow.session, conversation_id, lock=True)
    if staff_id is not None:
        target = await actor_for(uow.session, staff_id)
        if target is None or not is_agent(target):
            raise ValidationFailed("that staff member does not answer chats",
                                   code="not_an_agent", field="staff_id")
    if conv.assigned_staff_id != staff_id:
        conv.assigned_staff_id = staff_id
        await uow.session.flush()
        _emit(uow, "chat.updated", conv)
    [out] = await _out_many(uow.session, [conv])
    return out


async def close(uow: UnitOfWork, actor: Actor, conversation_id: int) -> ConversationOut:
    """Close the chat (again: nothing changes). The visitor's next message starts a new
    one."""
    require_agent(actor)
    conv = await _conversation(uow.session, conversation_id, lock=True)
    if conv.status != "closed":
        conv.status = "closed"
        conv.closed_at = utcnow()
        if conv.assigned_staff_id is None and actor.staff_id is not None:
            conv.assigned_staff_id = actor.staff_id
        await uow.session.flush()
        _emit(uow, "chat.updated", conv, closed=True)
    [out] = await _out_many(uow.session, [conv])
    return out


async def link_customer(uow: UnitOfWork, actor: Actor, conversation_id: int,
                        customer_id: int | None) -> ConversationOut:
    """Tie the chat to a customer the agent found (None: untie it). A merged customer's
    id links the kept one; an erased customer is refused (409 `customer_erased`)."""
    require_agent(actor)
    actor.require("customers.read")
    conv = await _conversation(uow.session, conversation_id, lock=True)
    if customer_id is not None:
        customer_id = await _live_customer(uow, customer_id)
    if conv.customer_id != customer_id:
        conv.customer_id = customer_id
        await uow.session.flush()
        _emit(uow, "chat.updated", conv)
    [out] = await _out_many(uow.session, [conv])
    return out


async def conversations_of_customer(session: AsyncSession, actor: Actor, customer_id: int,
                                    limit: int = 20) -> list[ConversationOut]:
    """A customer's chats, newest first (for the customer's timeline)."""
    require_agent(actor)
    rows = list((await session.scalars(
        select(Conversation).where(Conversation.customer_id == customer_id)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit))).all())
    return await _out_many(session, rows)

