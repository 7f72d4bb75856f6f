"""Staff correct a customer's contact details on the card, in any channel: the name, the
e-mail addresses and phone numbers, a loyalty card for a customer who has none, and the
marketing consents the customer gives or withdraws.

Every change needs `customers.write` (like notes and tags), emits `customer.updated` so
open cards and timelines refresh, and is audited without the personal data itself: the
audit says which kind changed (`customer.name_change`, `customer.identity_add` /
`customer.identity_remove` with the kind, `customer.card_issue`, `customer.consent`).
A merged customer's old id acts on the kept customer; an erased customer is a 409
`customer_erased`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.customers.buyers import buyer_id
from saumaton.customers.consents import CONSENT_KINDS, set_consent
from saumaton.customers.identities import normalise
from saumaton.customers.models import (
    Customer,
    CustomerAccount,
    CustomerConsent,
    CustomerIdentity,
)
from saumaton.customers.services import add_card
from saumaton.db.uow import UnitOfWork

CONTACT_KINDS = ("email", "phone")
CHANNELS = ("pos", "service", "backoffice")
MAX_NAME = 100
# A few addresses and numbers are normal (work, home); dozens are a mistake.
MAX_PER_KIND = 10


@dataclass(frozen=True)
class IdentityOut:
    """One e-mail, phone or card of the customer; `login`: the webshop account's
    e-mail, which only the shopper changes."""

    id: int
    kind: str
    value: str
    login: bool = False


@dataclass(frozen=True)
class ConsentShown:
    """A consent in force and where it came from; `at` None: never asked."""

    kind: str
    granted: bool
    channel: str
    at: datetime | None


# --- reading ---------------------------------------------------------------------------------

async def identities_of(session: AsyncSession, customer_id: int) -> list[IdentityOut]:
    """E-mails, then phones, then cards, each in the order they were added."""
    login = await session.scalar(select(CustomerAccount.email)
                                 .where(CustomerAccount.customer_id == customer_id))
    rows = (await session.execute(
        select(CustomerIdentity.id, CustomerIdentity.kind, CustomerIdentity.value)
        .where(CustomerIdentity.customer_id == customer_id)
        .order_by(CustomerIdentity.id))).all()
    order = {"email": 0, "phone": 1, "card": 2}
    out = [IdentityOut(int(i), str(k), str(v), k == "email" and v == login)
           for i, k, v in rows]
    return sorted(out, key=lambda x: order.get(x.kind, 3))


async def consent_details(session: AsyncSession, customer_id: int) -> list[ConsentShown]:
    """Each consent kind with its newest entry (when and in which channel)."""
    newest = (select(CustomerConsent.kind, func.max(CustomerConsent.id).label("id"))
              .where(CustomerConsent.customer_id == customer_id)
              .group_by(CustomerConsent.kind).subquery())
    rows = {str(r.kind): r for r in (await session.execute(
        select(CustomerConsent.kind, CustomerConsent.granted, CustomerConsent.channel,
               CustomerConsent.created_at)
        .join(newest, newest.c.id == CustomerConsent.id))).all()}
    out = []
    for kind in CONSENT_KINDS:
        r = rows.get(kind)
        out.append(ConsentShown(kind, False, "", None) if r is None else
                   ConsentShown(kind, bool(r.granted), str(r.channel or ""), r.created_at))
    return out


# --- changing --------------------------------------------------------------------------------

async def _target(uow: UnitOfWork, actor: Actor, customer_id: int) -> int:
    """The customer a card's id stands for now (merges followed); 404 for none, 409
    `customer_erased` for an erased one."""
    actor.require("customers.write")
    if await uow.session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    return await buyer_id(uow.session, customer_id)


def _clean_name(value: str, field: str) -> str:
    clean = " ".join(value.split())
    if len(clean) > MAX_NAME or "\x00" in clean:
        raise ValidationFailed(f"{field} is at most {MAX_NAME} characters", code="too_long",
                               field=field, extra={"max": MAX_NAME})
    return clean


def _changed(uow: UnitOfWork, customer_id: int, what: str) -> None:
    uow.emit("customer.updated", {"customer_id": customer_id, "contact": what})


async def update_name(uow: UnitOfWork, actor: Actor, customer_id: int, first: str,
                      last: str) -> bool:
    """Correct the name; one of the two is needed (422 `name_required` on first_name).
    Returns whether it changed."""
    first_clean = _clean_name(first, "first_name")
    last_clean = _clean_name(last, "last_name")
    if not (first_clean or last_clean):
        raise ValidationFailed("give a first or a last name", code="name_required",
                               field="first_name")
    cid = await _target(uow, actor, customer_id)
    customer = await uow.session.get(Customer, cid)
    assert customer is not None  # _target found it
    fields = [f for f, new in (("first_name", first_clean), ("last_name", last_clean))
              if getattr(customer, f) != new]
    if not fields:
        return False
    customer.first_name, customer.last_name = first_clean, last_clean
    await uow.session.flush()
    await record(uow, actor, "customer.name_change", "customer", cid, {"fields": fields})
    _changed(uow, cid, "name")
    return True


def _taken(kind: str, owner: int) -> Conflict:
    return Conflict(f"another customer ({owner}) has this {kind}", code="identity_taken",
                    field=kind, extra={"customer_id": owner})


async def add_identity(uow: UnitOfWork, actor: Actor, customer_id: int, kind: str,
                       value: str) -> str:
    """Add an e-mail or a phone number (any Finnish format); returns it normalised.
    One the customer has already is no change; one another customer has is a 409
    `identity_taken` on the field `kind`, with that customer's id in `extra`."""
    if kind not in CONTACT_KINDS:
        raise ValidationFailed(f"staff add an e-mail or a phone, not '{kind[:20]}'",
                               code="invalid_identity_kind", field="kind")
    if not value.strip():
        raise ValidationFailed(f"{kind} is required", code="required", field=kind)
    if len(value) > 320:
        raise ValidationFailed(f"{kind} is too long", code=f"invalid_{kind}", field=kind)
    normal = normalise(kind, value)
    cid = await _target(uow, actor, customer_id)
    s = uow.session
    owner = await s.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == kind, CustomerIdentity.value == normal))
    if owner is not None:
        if int(owner) == cid:
            return normal
        raise _taken(kind, int(owner))
    count = await s.scalar(select(func.count()).select_from(CustomerIdentity).where(
        CustomerIdentity.customer_id == cid, CustomerIdentity.kind == kind)) or 0
    if count >= MAX_PER_KIND:
        raise Conflict(f"at most {MAX_PER_KIND} of each", code="too_many_identities",
                       field=kind, extra={"max": MAX_PER_KIND})
    try:
        async with s.begin_nested():  # the same value added elsewhere at this moment
            s.add(CustomerIdentity(customer_id=cid, kind=kind, value=normal))
    except IntegrityError:
        owner = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == kind, CustomerIdentity.value == normal))
        raise _taken(kind, int(owner or 0)) from None
    await record(uow, actor, "customer.identity_add", "customer", cid, {"kind": kind})
    _changed(uow, cid, kind)
    return normal


async def remove_identity(uow: UnitOfWork, actor: Actor, customer_id: int,
                          identity_id: int) -> str:
    """Remove one of the customer's e-mails or phones; returns its kind. Kept, with a
    409: the webshop account's login e-mail (`account_email`: the shopper changes it),
    a loyalty card (`card_kept`: its points and history hang on it), and the only way
    to recognise a customer who has no name (`last_identity`)."""
    cid = await _target(uow, actor, customer_id)
    s = uow.session
    ident = await s.get(CustomerIdentity, identity_id)
    if ident is None or ident.customer_id != cid:
        raise NotFound(f"customer {cid} has no identity {identity_id}",
                       code="identity_not_found", field="identity")
    if ident.kind == "card":
        raise Conflict("a loyalty card is kept", code="card_kept", field="identity")
    if ident.kind == "email" and await s.scalar(select(CustomerAccount.customer_id).where(
            CustomerAccount.customer_id == cid,
            CustomerAccount.email == ident.value)) is not None:
        raise Conflict("the webshop account's e-mail is changed by the shopper",
                       code="account_email", field="identity")
    customer = await s.get(Customer, cid)
    others = await s.scalar(select(func.count()).select_from(CustomerIdentity).where(
        CustomerIdentity.customer_id == cid, CustomerIdentity.id != ident.id)) or 0
    if not others and customer is not None and not (customer.first_name or customer.last_name):
        raise Conflict("a customer without a name keeps one way to be found",
                       code="last_identity", field="identity")
    kind = ident.kind
    await s.execute(delete(CustomerIdentity).where(CustomerIdentity.id == ident.id))
    await record(uow, actor, "customer.identity_remove", "customer", cid, {"kind": kind})
    _changed(uow, cid, kind)
    return kind


async def issue_card(uow: UnitOfWork, actor: Actor, customer_id: int) -> str:
    """A new loyalty card number for a customer who has none (409 `card_exists`)."""
    cid = await _target(uow, actor, customer_id)
    s = uow.session
    # Lock the customer (PostgreSQL; SQLite writers queue) so two clicks issue one.
    await s.execute(select(Customer.id).where(Customer.id == cid).with_for_update())
    has = await s.scalar(select(CustomerIdentity.id).where(
        CustomerIdentity.customer_id == cid, CustomerIdentity.kind == "card").limit(1))
    if has is not None:
        raise Conflict("the customer has a loyalty card", code="card_exists", field="card")
    number = await add_card(s, cid)
    await record(uow, actor, "customer.card_issue", "customer", cid, {"kind": "card"})
    _changed(uow, cid, "card")
    return number


async def set_consents(uow: UnitOfWork, actor: Actor, customer_id: int,
                       granted: Mapping[str, bool], channel: str) -> list[str]:
    """Record what the customer now says about marketing, as told to staff in
    `channel` (pos | service | backoffice). Appends to the history each consent whose
    value changes (or that was never asked: the answer is recorded); returns those
    kinds."""
    if channel not in CHANNELS:
        raise ValidationFailed(f"unknown channel '{channel[:20]}'", code="invalid_channel",
                               field="channel")
    unknown = [k for k in granted if k not in CONSENT_KINDS]
    if unknown:
        raise ValidationFailed(f"unknown consent '{unknown[0][:40]}'", code="invalid_consent",
                               field="consents")
    cid = await _target(uow, actor, customer_id)
    changed = []
    for kind in CONSENT_KINDS:
        if kind in granted and await set_consent(uow, cid, kind, granted[kind], channel,
                                                 record_unchanged=True):
            await record(uow, actor, "customer.consent", "customer", cid,
                         {"kind": kind, "granted": granted[kind], "channel": channel})
            changed.append(kind)
    return changed
