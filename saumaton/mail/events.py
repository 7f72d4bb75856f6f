"""What the mail provider tells us after sending: bounces and complaints.

A **hard bounce** (the address does not exist) and a **complaint** (the reader marked
the mail as spam) turn the marketing e-mail consent off at once for every customer
known by that address (consent channel `bounce` / `complaint`, an audit entry each). A
**soft bounce** (mailbox full, server busy) is only recorded, until the address has
SOFT_BOUNCE_LIMIT of them within SOFT_BOUNCE_WINDOW: then it counts as a hard one.

Every event is kept (`mail_events`, shown on the customer's timeline), keyed by the
provider's own event id: a report delivered twice is recognised and changes nothing.
A batch is checked whole before anything is written (`MailEventIn`: every error at
once, by field); the API (`POST /api/v1/mail/events`) and the CLI (`saumaton mail
events FILE.json`) read the same format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy import func, or_, select

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import Input
from saumaton.customers.consents import set_consent
from saumaton.customers.identities import normalise_email
from saumaton.customers.models import Customer, CustomerAccount, CustomerIdentity
from saumaton.db.uow import UnitOfWork
from saumaton.mail.models import MailEvent, OutgoingMail

PERMISSION = "mail.events"
KINDS = ("hard_bounce", "soft_bounce", "complaint")
CHANNELS = {"hard_bounce": "bounce", "soft_bounce": "bounce", "complaint": "complaint"}
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW = timedelta(days=30)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # earlier (or later than tomorrow): a mistake
MAX_EVENTS = 1000  # a batch; a provider's export is read in such batches
# Our Message-ID (mail/sender.py: make_msgid(idstring=f"mail{id}")) ends "mail<id>@…".
_OUR_MESSAGE_ID = re.compile(r"mail(\d{1,18})@")


class MailEventIn(Input):
    """One provider report. `id`: the provider's event id (repeats are ignored);
    `email`: the recipient; `mail_id` (ours) or `message_id` (the Message-ID header
    we sent) names the mail when the provider says; `at`: when it happened (ISO 8601
    with a time zone)."""

    id: str = Field(min_length=1, max_length=200)
    type: Literal["hard_bounce", "soft_bounce", "complaint"]
    email: str = Field(min_length=3, max_length=320)
    mail_id: int | None = Field(default=None, ge=1, le=2**53)
    message_id: str = Field(default="", max_length=500)
    at: datetime

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return normalise_email(value)
        except ValidationFailed as exc:
            raise ValueError("not an e-mail address") from exc

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone, e.g. 2026-12-07T10:00:00Z")
        if not EARLIEST <= value <= utcnow() + timedelta(days=1):
            raise ValueError("a time from 2000 until now")
        return value


@dataclass
class EventsResult:
    recorded: int = 0
    duplicates: int = 0  # already recorded (the provider sent them again)
    withdrawn: list[int] = field(default_factory=list)  # customers whose consent went off


def mail_id_of(event: MailEventIn) -> int | None:
    if event.mail_id is not None:
        return event.mail_id
    found = _OUR_MESSAGE_ID.search(event.message_id)
    return int(found.group(1)) if found else None


async def customers_with_email(uow: UnitOfWork, email: str) -> list[int]:
    """Every customer known by `email` (identities, accounts), merged and erased ones
    not: the consent is the person's, whichever record they gave it on."""
    rows = await uow.session.scalars(
        select(Customer.id).where(
            Customer.merged_into_id.is_(None), Customer.erased_at.is_(None),
            or_(Customer.id.in_(select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == "email", CustomerIdentity.value == email)),
                Customer.id.in_(select(CustomerAccount.customer_id).where(
                    func.lower(CustomerAccount.email) == email))))
        .order_by(Customer.id))
    return [int(r) for r in rows]


async def _soft_bounces(uow: UnitOfWork, email: str, at: datetime) -> int:
    return int(await uow.session.scalar(
        select(func.count()).select_from(MailEvent).where(
            MailEvent.email == email, MailEvent.kind == "soft_bounce",
            MailEvent.occurred_at > at - SOFT_BOUNCE_WINDOW,
            MailEvent.occurred_at <= at)) or 0)


async def record_events(uow: UnitOfWork, actor: Actor,
                        events: list[MailEventIn]) -> EventsResult:
    """Record a checked batch, in the caller's transaction. An event id seen before
    (in an earlier batch or earlier in this one) is skipped."""
    actor.require(PERMISSION, everywhere=True)
    if len(events) > MAX_EVENTS:
        raise ValidationFailed(f"at most {MAX_EVENTS} events at once",
                               code="too_many_events", field="events",
                               extra={"max": MAX_EVENTS})
    result = EventsResult()
    ids = list({e.id for e in events})
    seen = set((await uow.session.scalars(
        select(MailEvent.event_id).where(MailEvent.event_id.in_(ids)))).all()) if ids else set()
    for event in sorted(events, key=lambda e: e.at):
        if event.id in seen:
            result.duplicates += 1
            continue
        seen.add(event.id)
        row = MailEvent(event_id=event.id, kind=event.type, email=event.email,
                        mail_id=mail_id_of(event), occurred_at=event.at,
                        received_at=utcnow(), consents_withdrawn=0)
        uow.session.add(row)
        await uow.session.flush()
        result.recorded += 1
        if event.type == "soft_bounce" and \
                await _soft_bounces(uow, event.email, event.at) < SOFT_BOUNCE_LIMIT:
            continue
        withdrawn = await _withdraw(uow, actor, event, row.id)
        row.consents_withdrawn = len(withdrawn)
        result.withdrawn += [c for c in withdrawn if c not in result.withdrawn]
    await uow.session.flush()
    return result


async def _withdraw(uow: UnitOfWork, actor: Actor, event: MailEventIn,
                    row_id: int) -> list[int]:
    customer_ids = set(await customers_with_email(uow, event.email))
    mail_id = mail_id_of(event)
    if mail_id is not None:  # the mail's own customer, should the address be gone
        owner = await uow.session.scalar(select(OutgoingMail.customer_id).where(
            OutgoingMail.id == mail_id, func.lower(OutgoingMail.to_addr) == event.email))
        if owner is not None:
            customer_ids.add(int(owner))
    channel = CHANNELS[event.type]
    withdrawn = []
    for cid in sorted(customer_ids):
        if await set_consent(uow, cid, "marketing_email", False, channel):
            await record(uow, actor, "customer.consent", "customer", cid,
                         {"kind": "marketing_email", "granted": False, "channel": channel,
                          "mail_event": row_id, "event": event.type})
            withdrawn.append(cid)
    return withdrawn
