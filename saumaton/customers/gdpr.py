"""GDPR for one customer: export everything we hold (art. 15 and 20) and erase it
(art. 17) with the accounting exception.

Erasure anonymises; it does not delete the sales. Finnish bookkeeping law
(Kirjanpitolaki 2:10) keeps receipts and their records for six years, so orders,
their lines, payments, totals and VAT stay exactly as they were, pointing to the now
anonymous customer row. What identifies the person goes: name, e-mail, phone, loyalty
card, account, addresses, notes, preferences, tags, consents, carts, the contact and
delivery details on their orders, their analytics link, the mails sent to them or about
them, their chats (also those where they only typed their e-mail) and the links of
their NPS surveys.

Both are audited (`customer.export`, `customer.erase`); the audit entry holds counts
and the reason, never the personal data itself.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.analytics.models import AnalyticsEvent
from saumaton.audit.services import record
from saumaton.checkout.models import Cart, CartLine
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.customers.models import (
    AccountToken,
    Customer,
    CustomerAccount,
    CustomerAddress,
    CustomerConsent,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    CustomerPreference,
    CustomerTag,
)
from saumaton.customers.segments import forget_in_exports
from saumaton.customers.sessions import forget_sessions
from saumaton.db.uow import UnitOfWork
from saumaton.followups.models import Followup
from saumaton.locations.models import Channel
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import MailEvent, OutgoingMail
from saumaton.orders.lifecycle import OPEN_FULFILMENT, OrderStatus
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.services import order_number
from saumaton.payments.models import Payment, PaytrailPayment
from saumaton.service.models import ChatMessage, Conversation, NpsSurvey
from saumaton.service.nps import void_token_hash
from saumaton.tryon.models import TryReservation

EXPORT_FORMAT = "saumaton.customer-export"
EXPORT_VERSION = 1
MAX_REASON = 500
# What a mail's recipient becomes once the person is erased.
ERASED_ADDRESS = "erased"
REDACTED = "[erased]"


# --- shared -----------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _customer(session: AsyncSession, customer_id: int, *,
                    lock: bool = False) -> Customer:
    q = select(Customer).where(Customer.id == customer_id)
    if lock:  # PostgreSQL: a second erasure waits, then sees erased_at
        q = q.with_for_update()
    c = await session.scalar(q)
    if c is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    return c


async def _merged_into(session: AsyncSession, customer_id: int) -> list[int]:
    """The customer and every record merged into it (directly or through a chain): one
    person, so an erasure covers them all."""
    found = [customer_id]
    frontier = [customer_id]
    while frontier:
        more = [int(i) for i in (await session.scalars(
            select(Customer.id).where(Customer.merged_into_id.in_(frontier))
            .order_by(Customer.id))).all() if int(i) not in found]
        found.extend(more)
        frontier = more
    return found


async def _order_ids(session: AsyncSession, customer_ids: list[int]) -> list[int]:
    return [int(i) for i in (await session.scalars(
        select(Order.id).where(Order.customer_id.in_(customer_ids)).order_by(Order.id)
    )).all()]


async def _emails(session: AsyncSession, customer_ids: list[int],
                  order_ids: list[int]) -> set[str]:
    """Every e-mail address we know the person by (identities, account, orders)."""
    out = {str(v).lower() for v in (await session.scalars(
        select(CustomerIdentity.value).where(CustomerIdentity.customer_id.in_(customer_ids),
                                             CustomerIdentity.kind == "email"))).all()}
    out |= {str(v).lower() for v in (await session.scalars(
        select(CustomerAccount.email).where(
            CustomerAccount.customer_id.in_(customer_ids)))).all()}
    if order_ids:
        out |= {str(v).lower() for v in (await session.scalars(
            select(Order.email).where(Order.id.in_(order_ids), Order.email != ""))).all()}
    out.discard("")
    return out


async def _conversation_ids(session: AsyncSession, customer_ids: list[int],
                            emails: set[str]) -> list[int]:
    """The person's chats: linked to them, or not linked to anyone but started with one
    of their e-mail addresses (typed in the chat or the offline form)."""
    conds: list[ColumnElement[bool]] = [Conversation.customer_id.in_(customer_ids)]
    if emails:
        conds.append(and_(Conversation.customer_id.is_(None),
                          func.lower(Conversation.email).in_(sorted(emails))))
    return [int(i) for i in (await session.scalars(
        select(Conversation.id).where(or_(*conds)).order_by(Conversation.id))).all()]


async def _conversation_emails(session: AsyncSession, conversation_ids: list[int]
                               ) -> set[str]:
    """The addresses typed in those chats (an agent's answers were mailed there)."""
    if not conversation_ids:
        return set()
    out = {str(v).lower() for v in (await session.scalars(select(Conversation.email).where(
        Conversation.id.in_(conversation_ids)))).all()}
    out.discard("")
    return out


def _mails_query(customer_ids: list[int], order_ids: list[int], emails: set[str],
                 conversation_ids: list[int]) -> Select[OutgoingMail]:
    """Mails to the person: sent to one of their addresses, marketing mail to them
    (`customer_id`), or about their account, one of their orders (receipts,
    confirmations) or one of their chats (the shop's copy of an offline message, with
    Reply-To: them)."""
    refs = ([f"customer:{i}" for i in customer_ids] + [order_number(i) for i in order_ids]
            + [f"conversation:{i}" for i in conversation_ids])
    conds = [OutgoingMail.reference.in_(refs), OutgoingMail.customer_id.in_(customer_ids)]
    if emails:
        conds.append(func.lower(OutgoingMail.to_addr).in_(sorted(emails)))
        conds.append(func.lower(OutgoingMail.reply_to).in_(sorted(emails)))
    return select(OutgoingMail).where(or_(*conds)).order_by(OutgoingMail.id)


# --- export -----------------------------------------------------------------------------

async def export_customer(session: AsyncSession, actor: Actor,
                          customer_id: int) -> dict[str, Any]:
    """Everything held about one customer as JSON-able data: stable keys, ISO 8601
    times (UTC), money in integer cents. The caller commits the audit entry: use
    `export_and_audit` from a channel."""
    actor.require("customers.read", everywhere=True)
    c = await _customer(session, customer_id)
    ids = [customer_id]
    merged_from = [i for i in await _merged_into(session, customer_id) if i != customer_id]
    order_ids = await _order_ids(session, ids)
    emails = await _emails(session, ids, order_ids)
    conv_ids = await _conversation_ids(session, ids, emails)

    identities = [{"kind": r.kind, "value": r.value} for r in (await session.scalars(
        select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id)
        .order_by(CustomerIdentity.kind, CustomerIdentity.id))).all()]

    acc = await session.get(CustomerAccount, customer_id)
    account = None if acc is None else {
        "email": acc.email, "email_verified_at": _iso(acc.email_verified_at),
        "created_at": _iso(acc.created_at), "last_login_at": _iso(acc.last_login_at),
        # The hash itself is a secret of the login, not data about the person.
        "password": "a password hash is held; it is not exported",
    }
    tokens = [{"purpose": t.purpose, "created_at": _iso(t.created_at),
               "expires_at": _iso(t.expires_at), "used_at": _iso(t.used_at)}
              for t in (await session.scalars(
                  select(AccountToken).where(AccountToken.customer_id == customer_id)
                  .order_by(AccountToken.id))).all()]

    addresses = [{"id": a.id, "name": a.name, "street": a.street, "postcode": a.postcode,
                  "city": a.city, "country": a.country, "phone": a.phone,
                  "is_default": a.is_default, "created_at": _iso(a.created_at)}
                 for a in (await session.scalars(
                     select(CustomerAddress).where(CustomerAddress.customer_id == customer_id)
                     .order_by(CustomerAddress.id))).all()]
    consents = [{"kind": r.kind, "granted": r.granted, "channel": r.channel,
                 "at": _iso(r.created_at)} for r in (await session.scalars(
                     select(CustomerConsent).where(CustomerConsent.customer_id == customer_id)
                     .order_by(CustomerConsent.id))).all()]
    preferences = [{"key": p.key, "value": p.value, "updated_by": p.updated_by,
                    "updated_at": _iso(p.updated_at)} for p in (await session.scalars(
                        select(CustomerPreference)
                        .where(CustomerPreference.customer_id == customer_id)
                        .order_by(CustomerPreference.key))).all()]
    notes = [{"id": n.id, "body": n.body, "author": n.author, "channel": n.channel,
              "created_at": _iso(n.created_at)} for n in (await session.scalars(
                  select(CustomerNote).where(CustomerNote.customer_id == customer_id)
                  .order_by(CustomerNote.id))).all()]
    tags = [{"tag": t.tag, "created_at": _iso(t.created_at)} for t in (await session.scalars(
        select(CustomerTag).where(CustomerTag.customer_id == customer_id)
        .order_by(CustomerTag.tag))).all()]

    orders = await _export_orders(session, order_ids)
    carts = await _export_carts(session, customer_id)
    events = [{"id": e.id, "at": _iso(e.at), "kind": e.kind, "channel": e.channel,
               "visitor_id": e.visitor_id, "order_id": e.order_id,
               "variant_id": e.variant_id, "path": e.path, "data": e.data}
              for e in (await session.scalars(
                  select(AnalyticsEvent).where(AnalyticsEvent.customer_id == customer_id)
                  .order_by(AnalyticsEvent.id))).all()]
    mails = [{"id": m.id, "kind": m.kind, "to": m.to_addr, "subject": m.subject,
              "status": m.status, "created_at": _iso(m.created_at),
              "sent_at": _iso(m.sent_at)}
             for m in (await session.scalars(
                 _mails_query([*ids, *merged_from], order_ids,
                              emails | await _conversation_emails(session, conv_ids),
                              conv_ids))).all()]
    mail_events = [{"type": e.kind, "email": e.email, "mail_id": e.mail_id,
                    "at": _iso(e.occurred_at), "received_at": _iso(e.received_at)}
                   for e in (await session.scalars(
                       select(MailEvent).where(MailEvent.email.in_(sorted(emails)))
                       .order_by(MailEvent.id))).all()] if emails else []
    merges = [{"id": m.id, "role": "kept" if m.kept_id == customer_id else "merged",
               "kept_id": m.kept_id, "merged_id": m.merged_id, "merged_by": m.merged_by,
               "merged_at": _iso(m.merged_at), "undone_at": _iso(m.undone_at),
               "undone_by": m.undone_by} for m in (await session.scalars(
                   select(CustomerMerge).where(or_(CustomerMerge.kept_id == customer_id,
                                                   CustomerMerge.merged_id == customer_id))
                   .order_by(CustomerMerge.id))).all()]

    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": _iso(utcnow()),
        "customer": {
            "id": c.id, "first_name": c.first_name, "last_name": c.last_name,
            "created_at": _iso(c.created_at), "merged_into_id": c.merged_into_id,
            "merged_from_ids": merged_from, "erased_at": _iso(c.erased_at),
        },
        "identities": identities,
        "account": account,
        "account_tokens": tokens,
        "addresses": addresses,
        "consents": consents,
        "preferences": preferences,
        "notes": notes,
        "tags": tags,
        "orders": orders,
        "carts": carts,
        "analytics_events": events,
        "mails": mails,
        "mail_events": mail_events,
        "merges": merges,
        "loyalty": [{"kind": e.kind, "points": e.points, "order_id": e.order_id,
                     "channel": e.channel, "reason": e.reason,
                     "expires_at": _iso(e.expires_at), "created_at": _iso(e.created_at)}
                    for e in (await session.scalars(
                        select(LoyaltyEntry).where(LoyaltyEntry.customer_id.in_(ids))
                        .order_by(LoyaltyEntry.id))).all()],
        "conversations": await _export_conversations(session, conv_ids),
        "nps": [{"order_id": n.order_id, "sent_at": _iso(n.sent_at), "score": n.score,
                 "comment": n.comment, "answered_at": _iso(n.answered_at)}
                for n in (await session.scalars(
                    select(NpsSurvey).where(NpsSurvey.customer_id.in_(ids))
                    .order_by(NpsSurvey.id))).all()],
        "followups": [{"order_id": f.order_id, "kind": f.kind, "status": f.status,
                       "subject": f.subject, "due_at": _iso(f.due_at),
                       "closed_at": _iso(f.closed_at)}
                      for f in (await session.scalars(
                          select(Followup).where(Followup.customer_id.in_(ids))
                          .order_by(Followup.id))).all()],
    }


async def _export_conversations(session: AsyncSession, conversation_ids: list[int]
                                ) -> list[dict[str, Any]]:
    if not conversation_ids:
        return []
    convs = (await session.scalars(select(Conversation).where(
        Conversation.id.in_(conversation_ids)).order_by(Conversation.id))).all()
    messages: dict[int, list[dict[str, Any]]] = {}
    if convs:
        for m in (await session.scalars(select(ChatMessage).where(
                ChatMessage.conversation_id.in_([c.id for c in convs]))
                .order_by(ChatMessage.id))).all():
            messages.setdefault(m.conversation_id, []).append(
                {"sender": m.sender, "body": m.body, "at": _iso(m.created_at)})
    return [{"id": c.id, "status": c.status, "name": c.name, "email": c.email,
             "started_at": _iso(c.created_at), "page": c.page,
             "messages": messages.get(c.id, [])} for c in convs]


async def _export_orders(session: AsyncSession,
                         order_ids: list[int]) -> list[dict[str, Any]]:
    if not order_ids:
        return []
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ln in (await session.scalars(
            select(OrderLine).where(OrderLine.order_id.in_(order_ids))
            .order_by(OrderLine.order_id, OrderLine.line_no))).all():
        lines[ln.order_id].append({
            "line_no": ln.line_no, "variant_id": ln.variant_id, "sku": ln.sku,
            "name": ln.name, "quantity": ln.quantity,
            "unit_price_cents": ln.unit_price_cents, "discount_cents": ln.discount_cents,
            "total_cents": ln.total_cents, "vat_rate_bp": ln.vat_rate_bp,
            "vat_cents": ln.vat_cents, "location_id": ln.location_id})
    payments: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in (await session.scalars(
            select(Payment).where(Payment.order_id.in_(order_ids)).order_by(Payment.id))).all():
        payments[p.order_id].append({
            "method": p.method, "status": p.status, "amount_cents": p.amount_cents,
            "rounding_cents": p.rounding_cents, "tendered_cents": p.tendered_cents,
            "change_cents": p.change_cents, "created_at": _iso(p.created_at)})
    online: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in (await session.scalars(
            select(PaytrailPayment).where(PaytrailPayment.order_id.in_(order_ids))
            .order_by(PaytrailPayment.id))).all():
        online[t.order_id].append({
            "provider": t.provider, "status": t.status, "amount_cents": t.amount_cents,
            "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at)})
    out = []
    for o, channel in (await session.execute(
            select(Order, Channel.code).join(Channel, Channel.id == Order.channel_id)
            .where(Order.id.in_(order_ids)).order_by(Order.id))).all():
        delivery = None if o.delivery_method is None else {
            "method": o.delivery_method, "fee_cents": o.delivery_fee_cents,
            "vat_rate_bp": o.delivery_vat_rate_bp, "vat_cents": o.delivery_vat_cents,
            "address": o.shipping_address, "collected_at": _iso(o.collected_at)}
        out.append({
            "id": o.id, "number": order_number(o.id), "channel": channel,
            "location_id": o.location_id, "status": o.status, "currency": o.currency,
            "created_at": _iso(o.created_at), "sold_at": _iso(o.sold_at),
            "receipt_number": o.client_ref or None,
            "subtotal_cents": o.subtotal_cents, "discount_cents": o.discount_cents,
            "total_cents": o.total_cents, "vat_cents": o.vat_cents,
            "paid_cents": o.paid_cents, "email": o.email, "phone": o.phone,
            "language": o.language, "delivery": delivery, "lines": lines[o.id],
            "payments": payments[o.id], "online_payments": online[o.id]})
    return out


async def _export_carts(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    carts = (await session.scalars(select(Cart).where(Cart.customer_id == customer_id)
                                   .order_by(Cart.id))).all()
    if not carts:
        return []
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ln in (await session.scalars(
            select(CartLine).where(CartLine.cart_id.in_([c.id for c in carts]))
            .order_by(CartLine.cart_id, CartLine.added_at, CartLine.variant_id))).all():
        lines[ln.cart_id].append({"variant_id": ln.variant_id, "quantity": ln.quantity,
                                  "added_at": _iso(ln.added_at)})
    return [{"id": c.id, "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at),
             "lines": lines[c.id]} for c in carts]


def export_counts(data: dict[str, Any]) -> dict[str, int]:
    """How many items each section of an export holds (what the audit entry keeps)."""
    return {k: len(v) for k, v in data.items() if isinstance(v, list)}


async def export_and_audit(uow: UnitOfWork, actor: Actor, customer_id: int) -> dict[str, Any]:
    """`export_customer` plus its audit entry in the same transaction; the caller commits.
    The entry names the customer and counts the sections, nothing more."""
    data = await export_customer(uow.session, actor, customer_id)
    await record(uow, actor, "customer.export", "customer", customer_id,
                 {"sections": export_counts(data)})
    return data


# --- erasure ----------------------------------------------------------------------------

class ErasureReport(BaseModel):
    customer_id: int
    erased_at: datetime
    # The customer and any records merged into it: all anonymised.
    customer_ids: list[int]
    # Rows deleted, per table.
    deleted: dict[str, int]
    # Rows kept with their personal fields cleared, per table.
    anonymised: dict[str, int]
    # Accounting records kept as they were (orders point to the anonymous customer).
    kept: dict[str, int]


def _clean_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise ValidationFailed("say why the data is erased (e.g. the customer's request "
                               "of 3 May)", code="reason_required", field="reason")
    if len(text) > MAX_REASON or "\x00" in text:
        raise ValidationFailed(f"a reason is at most {MAX_REASON} characters",
                               code="reason_too_long", field="reason",
                               extra={"max": MAX_REASON})
    return text


def _redact(text: str, values: set[str]) -> str:
    """The reason with any of the erased values in it blanked (staff sometimes write
    the person's name or e-mail into it)."""
    out = text
    for v in sorted(values, key=len, reverse=True):
        if len(v) < 3:
            continue
        lower = out.lower()
        i = lower.find(v.lower())
        while i >= 0:
            out = out[:i] + REDACTED + out[i + len(v):]
            lower = out.lower()
            i = lower.find(v.lower(), i + len(REDACTED))
    return out


def _blank_strings(value: Any) -> Any:
    """JSON with every string value emptied and the structure (keys, ids) kept."""
    if isinstance(value, dict):
        return {k: _blank_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_strings(v) for v in value]
    if isinstance(value, str):
        return ""
    return value


def _open_order() -> Any:
    """Not finished: awaiting payment, or paid for collection and not handed over."""
    return or_(Order.status == OrderStatus.PENDING,
               Order.status.in_(OPEN_FULFILMENT) & (Order.delivery_method == "pickup")
               & Order.collected_at.is_(None))


async def _personal_values(s: AsyncSession, ids: list[int], order_ids: list[int],
                           emails: set[str], conv_ids: list[int]) -> set[str]:
    values = set(emails) | await _conversation_emails(s, conv_ids)
    if conv_ids:  # the name they typed in a chat may differ from the register's
        values |= {str(n) for n in (await s.scalars(select(Conversation.name).where(
            Conversation.id.in_(conv_ids)))).all()}
    for first, last in (await s.execute(select(Customer.first_name, Customer.last_name)
                                        .where(Customer.id.in_(ids)))).all():
        values |= {str(first), str(last)}
    values |= {str(v) for v in (await s.scalars(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id.in_(ids)))).all()}
    for a in (await s.scalars(select(CustomerAddress).where(
            CustomerAddress.customer_id.in_(ids)))).all():
        values |= {a.name, a.street, a.phone}
    if order_ids:
        for phone, address in (await s.execute(select(Order.phone, Order.shipping_address)
                                               .where(Order.id.in_(order_ids)))).all():
            values.add(str(phone))
            if isinstance(address, dict):
                values |= {str(address.get("name", "")), str(address.get("street", ""))}
    values.discard("")
    return values


async def erase_customer(uow: UnitOfWork, actor: Actor, customer_id: int,
                         reason: str) -> ErasureReport:
    """Anonymise the customer (and any records merged into them) everywhere, keeping the
    accounting records; audited as `customer.erase`. The caller commits.

    409 `already_erased` the second time; 409 `customer_has_open_orders` while an order
    is pending payment or waiting for collection (finish or cancel it first)."""
    actor.require("customers.write", everywhere=True)
    actor.require("customers.erase", everywhere=True)
    why = _clean_reason(reason)
    s = uow.session
    customer = await _customer(s, customer_id, lock=uow.db.is_postgres)
    if customer.erased_at is not None:
        raise Conflict(f"customer {customer_id} was erased on "
                       f"{customer.erased_at.date().isoformat()}", code="already_erased",
                       extra={"erased_at": customer.erased_at.isoformat()})
    ids = await _merged_into(s, customer_id)
    open_orders = [int(i) for i in (await s.scalars(
        select(Order.id).where(Order.customer_id.in_(ids), _open_order())
        .order_by(Order.id))).all()]
    if open_orders:
        numbers = [order_number(i) for i in open_orders]
        raise Conflict(f"the customer has open orders ({', '.join(numbers)}); finish or "
                       "cancel them first", code="customer_has_open_orders",
                       extra={"orders": numbers})

    order_ids = await _order_ids(s, ids)
    emails = await _emails(s, ids, order_ids)
    conv_ids = await _conversation_ids(s, ids, emails)
    values = await _personal_values(s, ids, order_ids, emails, conv_ids)
    now = utcnow()
    deleted: dict[str, int] = {}
    anonymised: dict[str, int] = {}

    # Mails first: they are found through the addresses about to be deleted (also the
    # ones typed in their chats, where agents' answers were mailed).
    mails = (await s.scalars(_mails_query(
        ids, order_ids, emails | await _conversation_emails(s, conv_ids), conv_ids))).all()
    chat_refs = {f"conversation:{i}" for i in conv_ids}
    for mail in mails:
        if mail.status == "queued":  # never sent now
            mail.status = "failed"
        mail.to_addr, mail.reply_to = ERASED_ADDRESS, ""
        mail.body_text, mail.body_html, mail.last_error = "", "", ""
        # An offline message's subject is the name the visitor typed; other subjects
        # are the shop's own words, with anything of the person's blanked to be sure.
        mail.subject = (REDACTED if mail.reference in chat_refs
                        else _redact(mail.subject, values))
    await s.flush()
    anonymised["outgoing_mail"] = len(mails)
    # The mail provider's bounce and complaint reports name the person's addresses.
    deleted["mail_events"] = _rowcount(await s.execute(
        delete(MailEvent).where(MailEvent.email.in_(sorted(emails))))) if emails else 0

    # Analytics: the events stay as anonymous counts; the visitor ids that linked them
    # to this person are removed wherever they occur.
    visitors = {str(v) for v in (await s.scalars(select(AnalyticsEvent.visitor_id).where(
        AnalyticsEvent.customer_id.in_(ids), AnalyticsEvent.visitor_id.is_not(None))
        .distinct())).all()}
    linked = or_(AnalyticsEvent.customer_id.in_(ids),
                 AnalyticsEvent.visitor_id.in_(sorted(visitors)))
    anonymised["analytics_events"] = _rowcount(await s.execute(
        update(AnalyticsEvent).where(linked).values(customer_id=None, visitor_id=None)
        .execution_options(synchronize_session=False)))

    # Orders: the accounting record stays (lines, payments, totals, VAT); the contact
    # and delivery details go.
    if order_ids:
        anonymised["orders"] = _rowcount(await s.execute(
            update(Order).where(Order.id.in_(order_ids))
            .values(email="", phone="", shipping_address=None)
            .execution_options(synchronize_session=False)))
    else:
        anonymised["orders"] = 0

    # Reservations to try: the code, product and store stay; who reserved it goes.
    anonymised["try_reservations"] = _rowcount(await s.execute(
        update(TryReservation).where(TryReservation.customer_id.in_(ids))
        .values(name="", phone="", email="")
        .execution_options(synchronize_session=False)))

    # Follow-up e-mails: nothing more is sent; the subjects (they may name her) go.
    anonymised["followups"] = _rowcount(await s.execute(
        update(Followup).where(Followup.customer_id.in_(ids))
        .values(subject="", status=case((Followup.status == "pending", "cancelled"),
                                        else_=Followup.status),
                reason=case((Followup.status == "pending", "erased"), else_=Followup.reason))
        .execution_options(synchronize_session=False)))

    # Merges: the record of what moved stays (ids), the personal fields it kept go.
    merges = (await s.scalars(select(CustomerMerge).where(or_(
        CustomerMerge.kept_id.in_(ids), CustomerMerge.merged_id.in_(ids))))).all()
    for m in merges:
        m.moved = _blank_strings(dict(m.moved or {}))
    await s.flush()
    anonymised["customer_merges"] = len(merges)

    # Chats (theirs, and unlinked ones started with their e-mail): the conversations
    # stay as anonymous counts for the service statistics; what was said and who said
    # it goes.
    if conv_ids:
        anonymised["chat_messages"] = _rowcount(await s.execute(
            update(ChatMessage).where(ChatMessage.conversation_id.in_(conv_ids))
            .values(body="", client_key=None)))
        anonymised["conversations"] = _rowcount(await s.execute(
            update(Conversation).where(Conversation.id.in_(conv_ids))
            .values(name="", email="", page="", visitor_token_hash="erased")))
    if emails:  # their address typed in a chat that staff linked to someone else
        anonymised["conversations"] = anonymised.get("conversations", 0) + _rowcount(
            await s.execute(update(Conversation).where(
                func.lower(Conversation.email).in_(sorted(emails))).values(email="")
                .execution_options(synchronize_session=False)))
    # NPS: the score stays for the statistics, the free-text comment goes, and so does
    # the link: its token is voided, so the mailed link answers "closed" (410).
    surveys = (await s.scalars(select(NpsSurvey).where(NpsSurvey.customer_id.in_(ids)))).all()
    for n in surveys:
        n.comment = ""
        n.token_hash = void_token_hash(n.token_hash)
    await s.flush()
    anonymised["nps_surveys"] = len(surveys)
    # Loyalty entries stay with the anonymous customer (the points ledger must add up).

    cart_ids = [int(i) for i in (await s.scalars(
        select(Cart.id).where(Cart.customer_id.in_(ids)))).all()]
    if cart_ids:
        await s.execute(delete(CartLine).where(CartLine.cart_id.in_(cart_ids)))
    deleted["carts"] = _rowcount(await s.execute(delete(Cart).where(Cart.id.in_(cart_ids))))
    for name, model in (("customer_identities", CustomerIdentity),
                        ("customer_accounts", CustomerAccount),
                        ("account_tokens", AccountToken),
                        ("customer_addresses", CustomerAddress),
                        ("customer_consents", CustomerConsent),
                        ("customer_preferences", CustomerPreference),
                        ("customer_notes", CustomerNote),
                        ("customer_tags", CustomerTag)):
        col = model.__table__.c.customer_id
        deleted[name] = _rowcount(await s.execute(delete(model).where(col.in_(ids))))
    # Signed-in browsers are signed out at once (every process drops its cached look-up).
    deleted["customer_sessions"] = await forget_sessions(uow, ids)
    # Segment exports sent to webhooks: the customer's contact details out of them.
    anonymised["segment_exports"] = await forget_in_exports(uow, ids)

    await s.execute(update(Customer).where(Customer.id.in_(ids)).values(
        first_name="", last_name="", erased_at=now)
        .execution_options(synchronize_session=False))
    anonymised["customers"] = len(ids)
    kept = {"orders": len(order_ids)}
    if order_ids:
        kept["order_lines"] = int(await s.scalar(select(func.count()).select_from(OrderLine)
                                                 .where(OrderLine.order_id.in_(order_ids)))
                                  or 0)
        kept["payments"] = int(await s.scalar(select(func.count()).select_from(Payment)
                                              .where(Payment.order_id.in_(order_ids))) or 0)
    else:
        kept["order_lines"] = kept["payments"] = 0

    await record(uow, actor, "customer.erase", "customer", customer_id, {
        "reason": _redact(why, values), "customer_ids": ids, "deleted": deleted,
        "anonymised": anonymised, "kept": kept})
    for i in ids:  # open views of the customer refresh (and show nothing personal)
        uow.emit("customer.updated", {"customer_id": i, "erased": True})
    s.expire_all()  # rows changed by statements: read afresh
    return ErasureReport(customer_id=customer_id, erased_at=now, customer_ids=ids,
                         deleted=deleted, anonymised=anonymised, kept=kept)
