"""The customer timeline: one list, newest first, of everything that happened with a
customer in any channel — store purchases and web orders, click & collect handovers,
refunds, chats, notes, NPS answers, loyalty points, consent changes and merges.
A chat on it says what the visitor asked (their first message) and how many messages
there were; `chat_transcript()` is the whole chat, read-only, for anyone who may read
customers (a cashier too: the service desk's own view of a chat needs an agent).

One SQL statement per source, each with its own LIMIT (so a customer with thousands of
orders costs no more than one with a hundred), merged in Python. The same list is shown
at the till (the customer card), in the service desk and in the back office
(`templates/_timeline.html`), and refreshed live by `static/js/timeline.js`.

Paging: every event has a `cursor`; `timeline(..., before=event.cursor)` continues
after it. Events at the same instant are ordered by source and row id, so a page never
skips or repeats one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.customers.models import (
    Customer,
    CustomerAccount,
    CustomerConsent,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
)
from saumaton.followups.models import Followup
from saumaton.followups.state import mail_join, shown_status
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import MailEvent, OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.services import order_number
from saumaton.payments.models import Refund
from saumaton.service.models import ChatMessage, Conversation, NpsSurvey
from saumaton.staff.models import Staff
from saumaton.staff.services import staff_names
from saumaton.tryon.models import TryReservation

MAX_LIMIT = 500
PREVIEW = 140  # characters of a chat's first message shown on the timeline
TRANSCRIPT_LIMIT = 500  # messages of one chat shown (the newest)

# Sources in their tie-break order (events at the same instant: higher rank first).
SOURCES = ("merge", "consent", "mail", "loyalty", "nps", "note", "chat_closed", "chat_started",
           "refund", "collected", "order", "try", "followup")
_RANK = {name: i for i, name in enumerate(SOURCES)}
_Row = TypeVarTuple("_Row")


@dataclass(frozen=True)
class TimelineEvent:
    """One thing that happened. `kind` is one of SOURCES; the other fields are filled as
    the kind needs:

    - order: number, place (store name, "" for the webshop), web, status, amount_cents,
      channel (channel code), order_id
    - collected: number, place (the store), amount_cents, who (handed over by), order_id
    - refund: number, amount_cents (positive: money back), status (refund_due|refunded)
    - chat_started: ref_id (conversation), text (the visitor's first message, at most
      PREVIEW characters), count (messages), place (the page it started on), channel
      (chat|offline), status
    - chat_closed: ref_id (conversation), status
    - note: text, who (author), channel (pos|service|backoffice)
    - nps: score, text (comment), number (the order)
    - loyalty: status (earn|redeem|expire|reverse|adjust|refund), points, text (reason)
    - consent: status (marketing_email|marketing_sms), granted, channel
    - mail: the mail provider's report on a mail to one of their addresses
      (docs/mail.md): status (hard_bounce|soft_bounce|complaint), text (the address)
    - merge: ref_id (the other customer), status (merged|undone), who
    - try: a reservation to try in a store (docs/reserve-to-try.md): number (its code),
      place (the store), status (active|sold|released|expired), text (the product),
      order_id (the sale it became)
    - followup: an after-purchase e-mail (docs/follow-ups.md) queued, sent or not sent:
      status (queued|sent|suppressed|failed|skipped_no_consent|skipped_no_address; a
      queued one's mail outcome as soon as the mail sender recorded it), channel
      (step|refill),
      text (the subject as sent), number and order_id (the purchase)
    """

    kind: str
    at: datetime
    row_id: int
    number: str = ""
    place: str = ""
    web: bool = False
    status: str = ""
    amount_cents: int | None = None
    points: int | None = None
    score: int | None = None
    count: int | None = None
    granted: bool | None = None
    text: str = ""
    who: str = ""
    channel: str = ""
    order_id: int | None = None
    ref_id: int | None = None

    @property
    def cursor(self) -> str:
        """Pass as `before` to get what came before this event."""
        return f"{self.at.isoformat()}~{self.kind}~{self.row_id}"

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        return (self.at, _RANK[self.kind], self.row_id)


@dataclass(frozen=True)
class _Cursor:
    at: datetime
    rank: int
    row_id: int


def parse_cursor(value: str) -> _Cursor:
    """A cursor from TimelineEvent.cursor; anything else is a 422 on `before`."""
    try:
        at_s, kind, row_s = value.split("~")
        at = datetime.fromisoformat(at_s)
        if at.tzinfo is None or kind not in _RANK:
            raise ValueError(value)
        return _Cursor(at, _RANK[kind], int(row_s))
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("not a timeline position", code="invalid_cursor",
                               field="before") from exc


def _older(kind: str, at: Any, row_id: Any, cursor: _Cursor | None) -> ColumnElement[bool]:
    """Rows of source `kind` that sort after the cursor (older, newest-first)."""
    if cursor is None:
        return true()
    rank = _RANK[kind]
    if rank < cursor.rank:
        return at <= cursor.at  # type: ignore[no-any-return]
    if rank > cursor.rank:
        return at < cursor.at  # type: ignore[no-any-return]
    return or_(at < cursor.at, and_(at == cursor.at, row_id < cursor.row_id))


def _page(q: Select[*_Row], at: Any, row_id: Any, limit: int) -> Select[*_Row]:
    return q.order_by(at.desc(), row_id.desc()).limit(limit)


def _at(value: datetime | None) -> datetime:
    assert value is not None  # the query asked for rows where it is set
    return value


Source = Callable[[AsyncSession, int, "_Cursor | None", int], Awaitable[list[TimelineEvent]]]


async def _orders(s: AsyncSession, cid: int, cur: _Cursor | None,
                  limit: int) -> list[TimelineEvent]:
    at = func.coalesce(Order.sold_at, Order.created_at)
    rows = (await s.execute(_page(
        select(Order.id, at, Order.status, Order.total_cents, Channel.kind, Channel.code,
               Channel.name, Location.name)
        .join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .where(Order.customer_id == cid, _older("order", at, Order.id, cur)),
        at, Order.id, limit))).all()
    out = []
    for oid, when, status, total, kind, code, channel_name, store in rows:
        web = kind == "webshop"
        out.append(TimelineEvent(
            "order", when, int(oid), number=order_number(int(oid)),
            place="" if web else str(store or channel_name), web=web, status=str(status),
            amount_cents=int(total), channel=str(code), order_id=int(oid)))
    return out


async def _collected(s: AsyncSession, cid: int, cur: _Cursor | None,
                     limit: int) -> list[TimelineEvent]:
    at = Order.collected_at
    rows = (await s.execute(_page(
        select(Order.id, at, Order.total_cents, Order.collected_by, Location.name)
        .outerjoin(Location, Location.id == Order.location_id)
        .where(Order.customer_id == cid, at.is_not(None),
               _older("collected", at, Order.id, cur)),
        at, Order.id, limit))).all()
    names = await staff_names(s, (str(by) for *_, by, _store in rows))
    return [TimelineEvent("collected", _at(when), int(oid), number=order_number(int(oid)),
                          place=str(store or ""), amount_cents=int(total), who=names[str(by)],
                          order_id=int(oid))
            for oid, when, total, by, store in rows]


async def _refunds(s: AsyncSession, cid: int, cur: _Cursor | None,
                   limit: int) -> list[TimelineEvent]:
    at = Refund.created_at
    rows = (await s.execute(_page(
        select(Refund.id, at, Refund.order_id, Refund.amount_cents, Refund.status)
        .join(Order, Order.id == Refund.order_id)
        .where(Order.customer_id == cid, _older("refund", at, Refund.id, cur)),
        at, Refund.id, limit))).all()
    return [TimelineEvent("refund", when, int(rid), number=order_number(int(oid)),
                          amount_cents=abs(int(amount)),
                          status="refunded" if status == "ok" else "refund_due",
                          order_id=int(oid))
            for rid, when, oid, amount, status in rows]


def shorten(text: str, limit: int = PREVIEW) -> str:
    """One line of at most `limit` characters ("…" when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


async def _chat_summaries(s: AsyncSession, ids: list[int]) -> dict[int, tuple[int, str]]:
    """Per chat: its messages (the system's lines not counted) and the visitor's first
    message, shortened (cut in SQL first: a message may be 2000 characters)."""
    if not ids:
        return {}
    agg = (select(ChatMessage.conversation_id.label("conv"),
                  func.count(ChatMessage.id).label("n"),
                  func.min(case((ChatMessage.sender == "visitor", ChatMessage.id)))
                  .label("first"))
           .where(ChatMessage.conversation_id.in_(ids), ChatMessage.sender != "system")
           .group_by(ChatMessage.conversation_id).subquery())
    rows = (await s.execute(
        select(agg.c.conv, agg.c.n, func.substr(ChatMessage.body, 1, 4 * PREVIEW))
        .outerjoin(ChatMessage, ChatMessage.id == agg.c.first))).all()
    return {int(conv): (int(n), shorten(str(first or ""))) for conv, n, first in rows}


async def _chats_started(s: AsyncSession, cid: int, cur: _Cursor | None,
                         limit: int) -> list[TimelineEvent]:
    at = Conversation.created_at
    rows = (await s.execute(_page(
        select(Conversation.id, at, Conversation.status, Conversation.page,
               Conversation.offline_message)
        .where(Conversation.customer_id == cid,
               _older("chat_started", at, Conversation.id, cur)),
        at, Conversation.id, limit))).all()
    summaries = await _chat_summaries(s, [int(r[0]) for r in rows])
    out = []
    for conv, when, status, page, offline in rows:
        count, first = summaries.get(int(conv), (0, ""))
        out.append(TimelineEvent("chat_started", when, int(conv), ref_id=int(conv),
                                 status=str(status), text=first, count=count,
                                 place=str(page or ""),
                                 channel="offline" if offline else "chat"))
    return out


async def _chats_closed(s: AsyncSession, cid: int, cur: _Cursor | None,
                        limit: int) -> list[TimelineEvent]:
    at = Conversation.closed_at
    rows = (await s.execute(_page(
        select(Conversation.id, at)
        .where(Conversation.customer_id == cid, at.is_not(None),
               _older("chat_closed", at, Conversation.id, cur)),
        at, Conversation.id, limit))).all()
    return [TimelineEvent("chat_closed", _at(when), int(conv), ref_id=int(conv), status="closed")
            for conv, when in rows]


async def _notes(s: AsyncSession, cid: int, cur: _Cursor | None,
                 limit: int) -> list[TimelineEvent]:
    at = CustomerNote.created_at
    rows = (await s.execute(_page(
        select(CustomerNote.id, at, CustomerNote.body, CustomerNote.author,
               CustomerNote.channel)
        .where(CustomerNote.customer_id == cid,
               _older("note", at, CustomerNote.id, cur)),
        at, CustomerNote.id, limit))).all()
    return [TimelineEvent("note", when, int(nid), text=str(body), who=str(author),
                          channel=str(channel))
            for nid, when, body, author, channel in rows]


async def _nps(s: AsyncSession, cid: int, cur: _Cursor | None,
               limit: int) -> list[TimelineEvent]:
    at = NpsSurvey.answered_at
    rows = (await s.execute(_page(
        select(NpsSurvey.id, at, NpsSurvey.score, NpsSurvey.comment, NpsSurvey.order_id)
        .where(NpsSurvey.customer_id == cid, at.is_not(None),
               _older("nps", at, NpsSurvey.id, cur)),
        at, NpsSurvey.id, limit))).all()
    return [TimelineEvent("nps", _at(when), int(sid), score=int(score or 0), text=str(comment),
                          number=order_number(int(oid)), order_id=int(oid))
            for sid, when, score, comment, oid in rows]


async def _loyalty(s: AsyncSession, cid: int, cur: _Cursor | None,
                   limit: int) -> list[TimelineEvent]:
    at = LoyaltyEntry.created_at
    rows = (await s.execute(_page(
        select(LoyaltyEntry.id, at, LoyaltyEntry.kind, LoyaltyEntry.points,
               LoyaltyEntry.reason, LoyaltyEntry.order_id, LoyaltyEntry.channel)
        .where(LoyaltyEntry.customer_id == cid,
               LoyaltyEntry.points != 0,  # a used-up lot's expiry: bookkeeping only
               _older("loyalty", at, LoyaltyEntry.id, cur)),
        at, LoyaltyEntry.id, limit))).all()
    return [TimelineEvent("loyalty", when, int(eid), status=str(kind), points=int(points),
                          text=str(reason), channel=str(channel),
                          order_id=int(oid) if oid is not None else None,
                          number=order_number(int(oid)) if oid is not None else "")
            for eid, when, kind, points, reason, oid, channel in rows]


async def _consents(s: AsyncSession, cid: int, cur: _Cursor | None,
                    limit: int) -> list[TimelineEvent]:
    at = CustomerConsent.created_at
    rows = (await s.execute(_page(
        select(CustomerConsent.id, at, CustomerConsent.kind, CustomerConsent.granted,
               CustomerConsent.channel)
        .where(CustomerConsent.customer_id == cid,
               _older("consent", at, CustomerConsent.id, cur)),
        at, CustomerConsent.id, limit))).all()
    return [TimelineEvent("consent", when, int(rid), status=str(kind), granted=bool(granted),
                          channel=str(channel))
            for rid, when, kind, granted, channel in rows]


async def _merges(s: AsyncSession, cid: int, cur: _Cursor | None,
                  limit: int) -> list[TimelineEvent]:
    at = CustomerMerge.merged_at
    rows = (await s.execute(_page(
        select(CustomerMerge.id, at, CustomerMerge.kept_id, CustomerMerge.merged_id,
               CustomerMerge.merged_by, CustomerMerge.undone_at)
        .where(or_(CustomerMerge.kept_id == cid, CustomerMerge.merged_id == cid),
               _older("merge", at, CustomerMerge.id, cur)),
        at, CustomerMerge.id, limit))).all()
    return [TimelineEvent("merge", when, int(mid),
                          ref_id=int(merged) if int(kept) == cid else int(kept),
                          status="undone" if undone is not None else "merged",
                          channel="kept" if int(kept) == cid else "merged", who=str(by))
            for mid, when, kept, merged, by, undone in rows]


async def _tries(s: AsyncSession, cid: int, cur: _Cursor | None,
                 limit: int) -> list[TimelineEvent]:
    from saumaton.catalogue.models import Product, Variant

    t = TryReservation
    at = t.created_at
    rows = (await s.execute(_page(
        select(t.id, at, t.code, t.status, t.order_id, Location.name, Product.name,
               Variant.name)
        .join(Location, Location.id == t.location_id)
        .join(Variant, Variant.id == t.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(t.customer_id == cid, _older("try", at, t.id, cur)),
        at, t.id, limit))).all()
    return [TimelineEvent("try", when, int(rid), number=str(code), status=str(status),
                          order_id=int(oid) if oid is not None else None, place=str(store),
                          text=f"{product} – {variant}" if variant else str(product))
            for rid, when, code, status, oid, store, product, variant in rows]


async def _followups(s: AsyncSession, cid: int, cur: _Cursor | None,
                     limit: int) -> list[TimelineEvent]:
    """Follow-up e-mails queued, sent or not sent (pending and cancelled ones are not
    events); a queued one shows its mail's outcome once the sender has recorded it."""
    f = Followup
    at = f.closed_at
    rows = (await s.execute(_page(
        select(f.id, at, shown_status(), f.kind, f.subject, f.order_id)
        .outerjoin(OutgoingMail, mail_join())
        .where(f.customer_id == cid, at.is_not(None), f.status != "cancelled",
               f.status != "pending", _older("followup", at, f.id, cur)),
        at, f.id, limit))).all()
    return [TimelineEvent("followup", _at(when), int(fid), status=str(status),
                          channel=str(kind), text=str(subject),
                          number=order_number(int(oid)), order_id=int(oid))
            for fid, when, status, kind, subject, oid in rows]


async def _mail_events(s: AsyncSession, cid: int, cur: _Cursor | None,
                       limit: int) -> list[TimelineEvent]:
    """Bounces and complaints about any of the customer's e-mail addresses (the
    provider reports an address, not a customer)."""
    at = MailEvent.occurred_at
    addresses = select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == cid, CustomerIdentity.kind == "email").union(
        select(func.lower(CustomerAccount.email)).where(CustomerAccount.customer_id == cid))
    rows = (await s.execute(_page(
        select(MailEvent.id, at, MailEvent.kind, MailEvent.email)
        .where(MailEvent.email.in_(addresses), _older("mail", at, MailEvent.id, cur)),
        at, MailEvent.id, limit))).all()
    return [TimelineEvent("mail", when, int(rid), status=str(kind), text=str(email))
            for rid, when, kind, email in rows]


_SOURCES: tuple[Source, ...] = (_orders, _collected, _refunds, _chats_started, _chats_closed,
                                _notes, _nps, _loyalty, _consents, _merges, _tries,
                                _mail_events, _followups)


async def timeline(session: AsyncSession, actor: Actor, customer_id: int, limit: int = 100,
                   before: str | None = None) -> list[TimelineEvent]:
    """Everything that happened with the customer, newest first, at most `limit`
    (1–500) events older than the cursor `before`. A merged customer's old id shows the
    kept customer's timeline."""
    actor.require("customers.read")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit is 1–{MAX_LIMIT}", code="invalid_limit", field="limit",
                               extra={"max": MAX_LIMIT})
    cursor = parse_cursor(before) if before else None
    from saumaton.customers.duplicates import resolve_customer_id

    cid = await resolve_customer_id(session, customer_id)
    if await session.scalar(select(Customer.id).where(Customer.id == cid)) is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    events: list[TimelineEvent] = []
    for source in _SOURCES:
        events += await source(session, cid, cursor, limit)
    events.sort(key=lambda e: e.sort_key, reverse=True)
    return events[:limit]




# --- one chat, read-only ----------------------------------------------------------------------

@dataclass(frozen=True)
class ChatLine:
    sender: str  # visitor | agent | system
    body: str
    author: str  # the agent's name ("" for the visitor and the system)
    at: datetime


@dataclass(frozen=True)
class ChatTranscript:
    conversation_id: int
    customer_id: int
    name: str  # the name the visitor gave ("" if none)
    page: str  # where it started
    offline: bool  # a message left while no agent was online
    status: str  # open | closed
    started_at: datetime
    messages: list[ChatLine]  # oldest first; the newest TRANSCRIPT_LIMIT
    earlier: bool  # there were older messages than these


async def chat_transcript(session: AsyncSession, actor: Actor, customer_id: int,
                          conversation_id: int) -> ChatTranscript:
    """A chat of the customer's, as the timeline opens it: NotFound unless the chat is
    this customer's (a merged customer's old id reads the kept customer's chats)."""
    actor.require("customers.read")
    from saumaton.customers.duplicates import resolve_customer_id

    cid = await resolve_customer_id(session, customer_id)
    conv = await session.scalar(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.customer_id == cid))
    if conv is None:
        raise NotFound(f"customer {customer_id} has no chat {conversation_id}",
                       code="conversation_not_found")
    rows = (await session.execute(
        select(ChatMessage.sender, ChatMessage.body, ChatMessage.created_at, Staff.name)
        .outerjoin(Staff, Staff.id == ChatMessage.staff_id)
        .where(ChatMessage.conversation_id == conv.id)
        .order_by(ChatMessage.id.desc()).limit(TRANSCRIPT_LIMIT + 1))).all()
    lines = [ChatLine(str(sender), str(body), str(staff or "") if sender == "agent" else "",
                      at) for sender, body, at, staff in rows[:TRANSCRIPT_LIMIT]]
    return ChatTranscript(conv.id, cid, conv.name, conv.page, conv.offline_message,
                          conv.status, conv.created_at, lines[::-1],
                          earlier=len(rows) > TRANSCRIPT_LIMIT)
