"""The customer card: what staff see about one customer at the till (and, later, at the
service desk), finding a customer by what they tell or show, and creating one at the till
in seconds.

A customer is found by phone (any format), e-mail, loyalty card number (what the account
page's QR code holds) or by the start of a first or last name. The card's figures count
purchases in every channel: orders with this customer that are paid, completed or
collected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import Field
from sqlalchemy import and_, func, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.types import Input, visible
from saumaton.customers.consents import CONSENT_KINDS, current_consents, set_consent
from saumaton.customers.contact import (
    ConsentShown,
    IdentityOut,
    consent_details,
    identities_of,
)
from saumaton.customers.fields import PreferenceShown, card_preferences
from saumaton.customers.identities import guess_kinds, normalise, normalise_phone
from saumaton.customers.models import (
    Customer,
    CustomerAccount,
    CustomerIdentity,
    CustomerNote,
    CustomerPreference,
    CustomerTag,
)
from saumaton.customers.segments import buyer_segments
from saumaton.customers.services import CustomerIn, CustomerOut, add_card, create_customer
from saumaton.customers.tags import normalise_tag, tags_of
from saumaton.db.uow import Database, UnitOfWork
from saumaton.giftcards.ledger import CardView, store_credit_of
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.tiers import LoyaltySummary, loyalty_summary
from saumaton.orders.lifecycle import OPEN_FULFILMENT, SOLD
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.services import order_number

# Orders that are purchases: paid, and possibly handed over.
PURCHASE_STATUSES = tuple(SOLD)
MAX_NAME_MATCHES = 10
RECENT_PURCHASES = 10
CARD_NOTES = 50
ITEMS_SHOWN = 3
_NAME_QUERY = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '’.-])*", re.UNICODE)


@dataclass(frozen=True)
class CustomerMatch:
    """One customer a search found; `matched_by` is phone | email | card | name."""

    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    card: str | None
    matched_by: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class NoteOut:
    id: int
    body: str
    author: str
    channel: str  # pos | service | backoffice
    created_at: datetime


@dataclass(frozen=True)
class PurchaseOut:
    """One recent order. `web`: bought in the webshop; else `place` is the store (or the
    channel's name for orders with no store)."""

    order_id: int
    number: str
    created_at: datetime
    web: bool
    place: str
    status: str
    total_cents: int
    items: list[str]  # the first few lines, e.g. "2 × Silk Foundation 1C"
    more_items: int  # lines not listed


@dataclass(frozen=True)
class PickupOut:
    """A paid click & collect order waiting at a store."""

    order_id: int
    number: str
    created_at: datetime
    location_id: int
    store: str
    total_cents: int


@dataclass(frozen=True)
class CustomerCard:
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    card: str | None
    member_since: datetime
    has_account: bool
    purchase_count: int
    lifetime_value_cents: int
    last_purchase_at: datetime | None
    preferences: dict[str, str]
    notes: list[NoteOut]
    recent: list[PurchaseOut]
    open_pickups: list[PickupOut]
    consents: dict[str, bool] = field(default_factory=dict)
    # Points balance, tier and the spend to the next tier (loyalty).
    loyalty: LoyaltySummary | None = None
    # The shop's active preference fields in order with this customer's values, then
    # values kept under removed fields (read-only); `preferences` has the values alone.
    fields: list[PreferenceShown] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    # Every e-mail, phone and card (the fields above hold the first of each), and each
    # consent with when and where it was given, for the contact forms (customers.contact).
    identities: list[IdentityOut] = field(default_factory=list)
    consent_details: list[ConsentShown] = field(default_factory=list)
    # The customer's store credit (a balance spent like money), if they have any.
    store_credit: CardView | None = None
    # The segments with a segment price this customer belongs to (the till prices an
    # attached customer with them: customers.segments.buyer_segments).
    segments: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


# --- finding --------------------------------------------------------------------------------

def _invalid_query(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, code="invalid_customer_query", field="q")


async def _identities(session: AsyncSession, ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for cid, kind, value in (await session.execute(
            select(CustomerIdentity.customer_id, CustomerIdentity.kind, CustomerIdentity.value)
            .where(CustomerIdentity.customer_id.in_(ids)).order_by(CustomerIdentity.id)
        )).all():
            out[int(cid)].setdefault(str(kind), str(value))
    return out


async def _matches(session: AsyncSession, found: list[tuple[int, str]]) -> list[CustomerMatch]:
    ids = [cid for cid, _ in found]
    names = {int(r[0]): (str(r[1]), str(r[2])) for r in (await session.execute(
        select(Customer.id, Customer.first_name, Customer.last_name)
        .where(Customer.id.in_(ids)))).all()} if ids else {}
    idents = await _identities(session, ids)
    out = []
    for cid, how in found:
        if cid not in names:
            continue
        first, last = names[cid]
        i = idents[cid]
        out.append(CustomerMatch(cid, first, last, i.get("email"), i.get("phone"),
                                 i.get("card"), how))
    return out


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column: InstrumentedAttribute[str], word: str) -> ColumnElement[bool]:
    """Case-insensitive prefix match on SQLite. Its lower() folds ASCII only, so the
    capitalised form is tried as typed as well ('äi' finds 'Äijälä')."""
    lowered = _escape_like(word).lower()
    capital = lowered[:1].upper() + lowered[1:]
    return or_(func.lower(column).like(lowered + "%", escape="\\"),
               column.like(capital + "%", escape="\\"))


async def find_customers(session: AsyncSession, actor: Actor, q: str) -> list[CustomerMatch]:
    """Customers for what the cashier typed or scanned: a phone number in any format, an
    e-mail, a loyalty card number, or the start of a name ('anna', 'anna vir'; at most
    10). Exact identity matches come first. A value that can be none of these is a
    422 `invalid_customer_query` on the field `q`."""
    actor.require("customers.read")
    value = " ".join(q.split())
    if not value:
        raise _invalid_query("type a phone number, an e-mail, a card number or a name")
    if len(value) > 320:
        raise _invalid_query("the search is too long")
    if _NAME_QUERY.fullmatch(value) and "@" not in value:
        return await _by_name(session, value)
    found: list[tuple[int, str]] = []
    valid = False
    problem: ValidationFailed | None = None
    for kind in guess_kinds(value):
        try:
            normal = normalise(kind, value)
        except ValidationFailed as exc:
            problem = problem or exc
            continue
        valid = True
        for cid in (await session.scalars(select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == kind, CustomerIdentity.value == normal))).all():
            if all(cid != c for c, _ in found):
                found.append((int(cid), kind))
    if not valid:
        detail = problem.detail if problem else "not a phone, e-mail, card number or name"
        raise _invalid_query(detail)
    return await _matches(session, found)


async def customer_matches(session: AsyncSession, ids: list[int],
                           matched_by: str) -> list[CustomerMatch]:
    """The customers with these ids as a search shows them, in this order."""
    return await _matches(session, [(i, matched_by) for i in ids])


async def list_customers(session: AsyncSession, actor: Actor, *, after_id: int | None,
                         limit: int, tag: str | None = None) -> list[CustomerMatch]:
    """The register (not merged, not erased) by id after `after_id`, `limit` at most; with
    `tag`, only the customers with it (normalised first: 422 `invalid_tag`). Keyset
    paging for the API: a page stays an index range however far down."""
    actor.require("customers.read")
    stmt = select(Customer.id).where(Customer.merged_into_id.is_(None),
                                     Customer.erased_at.is_(None))
    if tag is not None:
        stmt = stmt.join(CustomerTag, CustomerTag.customer_id == Customer.id).where(
            CustomerTag.tag == normalise_tag(tag))
    if after_id is not None:
        stmt = stmt.where(Customer.id > after_id)
    ids = [int(i) for i in (await session.scalars(stmt.order_by(Customer.id)
                                                  .limit(limit))).all()]
    return await _matches(session, [(i, "tag" if tag is not None else "list") for i in ids])


async def _by_name(session: AsyncSession, value: str) -> list[CustomerMatch]:
    """The name search, for a register of millions: each way the words can match is
    its own query that reads at most ten rows in name order — on PostgreSQL from one
    index range (ix_customers_name_by_last / _by_first, migration 0008), without
    sorting every 'Vi…'. Last-name matches come first (by last name, first name),
    then first-name matches (by first name, last name)."""
    words = value.split(" ")
    if len(value) < 2:
        raise _invalid_query("type at least two letters of a name")
    pg = session.get_bind().dialect.name == "postgresql"

    def key(column: InstrumentedAttribute[str]) -> ColumnElement[str]:
        return func.lower(column).collate("C") if pg else func.lower(column)

    def starts(column: InstrumentedAttribute[str], word: str) -> ColumnElement[bool]:
        if pg:  # lower() folds 'Ä' in a UTF-8 database
            return key(column).like(_escape_like(word.lower()) + "%", escape="\\")
        return _prefix(column, word)

    by_last = (Customer.last_name, Customer.first_name)
    by_first = (Customer.first_name, Customer.last_name)
    ways: list[tuple[tuple[InstrumentedAttribute[str], InstrumentedAttribute[str]],
                     ColumnElement[bool]]]
    if len(words) == 1:
        ways = [(by_last, starts(Customer.last_name, value)),
                (by_first, starts(Customer.first_name, value))]
    else:  # "anna vir": first and last name, in either order; or a two-word name
        first, rest = words[0], " ".join(words[1:])
        ways = [(by_last, and_(starts(Customer.last_name, rest),
                               starts(Customer.first_name, first))),
                (by_last, and_(starts(Customer.last_name, first),
                               starts(Customer.first_name, rest))),
                (by_last, starts(Customer.last_name, value)),
                (by_first, starts(Customer.first_name, value))]
    parts = [select(Customer.id, literal(0 if lead is Customer.last_name else 1).label("g"),
                    key(lead).label("k1"), key(then).label("k2"))
             .where(cond).order_by(key(lead), key(then), Customer.id)
             .limit(MAX_NAME_MATCHES).subquery()
             for (lead, then), cond in ways]
    both = union_all(*(select(*p.c) for p in parts)).subquery()
    rows = (await session.execute(select(both.c.id).order_by(
        both.c.g, both.c.k1, both.c.k2, both.c.id))).scalars().all()
    ids = list(dict.fromkeys(int(i) for i in rows))[:MAX_NAME_MATCHES]
    return await _matches(session, [(i, "name") for i in ids])


# --- the card ------------------------------------------------------------------------------

async def _customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    return customer


async def notes_of(session: AsyncSession, customer_id: int,
                   limit: int = CARD_NOTES) -> list[NoteOut]:
    """Newest first."""
    rows = (await session.scalars(
        select(CustomerNote).where(CustomerNote.customer_id == customer_id)
        .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc()).limit(limit))).all()
    return [NoteOut(r.id, r.body, r.author, r.channel, r.created_at) for r in rows]


async def preferences_of(session: AsyncSession, customer_id: int) -> dict[str, str]:
    return {str(k): str(v) for k, v in (await session.execute(
        select(CustomerPreference.key, CustomerPreference.value)
        .where(CustomerPreference.customer_id == customer_id)
        .order_by(CustomerPreference.key))).all()}


async def _recent(session: AsyncSession, customer_id: int) -> list[PurchaseOut]:
    rows = (await session.execute(
        select(Order.id, Order.created_at, Order.sold_at, Order.status, Order.total_cents,
               Channel.kind, Channel.name, Location.name)
        .join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .where(Order.customer_id == customer_id, Order.status.in_(PURCHASE_STATUSES))
        .order_by(Order.id.desc()).limit(RECENT_PURCHASES))).all()
    ids = [int(r[0]) for r in rows]
    items: dict[int, list[str]] = {i: [] for i in ids}
    counts: dict[int, int] = dict.fromkeys(ids, 0)
    if ids:
        for oid, name, qty in (await session.execute(
            select(OrderLine.order_id, OrderLine.name, OrderLine.quantity)
            .where(OrderLine.order_id.in_(ids))
            .order_by(OrderLine.order_id, OrderLine.line_no))).all():
            counts[int(oid)] += 1
            if len(items[int(oid)]) < ITEMS_SHOWN:
                items[int(oid)].append(f"{qty} × {name}")
    out = []
    for oid, created, sold, status, total, kind, channel_name, store in rows:
        web = kind == "webshop"
        out.append(PurchaseOut(
            order_id=int(oid), number=order_number(int(oid)), created_at=sold or created,
            web=web, place="" if web else str(store or channel_name), status=str(status),
            total_cents=int(total), items=items[int(oid)],
            more_items=counts[int(oid)] - len(items[int(oid)])))
    return out


async def _pickups(session: AsyncSession, customer_id: int) -> list[PickupOut]:
    rows = (await session.execute(
        select(Order.id, Order.created_at, Order.location_id, Location.name, Order.total_cents)
        .join(Location, Location.id == Order.location_id)
        .where(Order.customer_id == customer_id, Order.delivery_method == "pickup",
               Order.status.in_(OPEN_FULFILMENT), Order.collected_at.is_(None))
        .order_by(Order.id))).all()
    return [PickupOut(int(oid), order_number(int(oid)), created, int(loc or 0), str(store),
                      int(total)) for oid, created, loc, store, total in rows]


async def customer_card(session: AsyncSession, actor: Actor, customer_id: int, *,
                        settings: Settings | None = None) -> CustomerCard:
    """Everything the till (and the service desk) shows about one customer."""
    actor.require("customers.read")
    # A merged customer's old id (a bookmarked card, an old order) opens the kept one.
    from saumaton.customers.duplicates import resolve_customer_id

    customer_id = await resolve_customer_id(session, customer_id)
    customer = await _customer(session, customer_id)
    idents = (await _identities(session, [customer_id]))[customer_id]
    count, value, last = (await session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.total_cents), 0),
               func.max(Order.created_at))
        .where(Order.customer_id == customer_id,
               Order.status.in_(PURCHASE_STATUSES)))).one()
    has_account = await session.scalar(select(CustomerAccount.customer_id).where(
        CustomerAccount.customer_id == customer_id)) is not None
    shown = await card_preferences(session, customer_id)
    return CustomerCard(
        id=customer.id, first_name=customer.first_name, last_name=customer.last_name,
        email=idents.get("email"), phone=idents.get("phone"), card=idents.get("card"),
        member_since=customer.created_at, has_account=has_account,
        purchase_count=int(count), lifetime_value_cents=int(value), last_purchase_at=last,
        preferences={p.key: p.value for p in sorted(shown, key=lambda p: p.key) if p.value},
        notes=await notes_of(session, customer_id),
        recent=await _recent(session, customer_id),
        open_pickups=await _pickups(session, customer_id),
        consents=await current_consents(session, customer_id),
        loyalty=await loyalty_summary(session, customer_id, settings=settings),
        fields=shown, tags=await tags_of(session, customer_id),
        segments=tuple(sorted(await buyer_segments(session, customer_id,
                                                   settings=settings))),
        identities=await identities_of(session, customer_id),
        consent_details=await consent_details(session, customer_id),
        store_credit=await store_credit_of(session, customer_id))


# --- creating at the till ------------------------------------------------------------------

def quick_create_defaults(q: str) -> dict[str, str]:
    """What a search that found nobody prefills in the create form: the phone or
    e-mail typed, or the name."""
    value = " ".join(q.split())[:320]
    if not value:
        return {}
    if _NAME_QUERY.fullmatch(value) and "@" not in value:
        first, _, last = value.partition(" ")
        return {"first_name": first[:100], "last_name": last[:100]}
    for kind in guess_kinds(value):
        if kind in ("phone", "email"):
            try:
                normalise(kind, value)
            except ValidationFailed:
                continue
            return {kind: value}
    return {}


class QuickCustomerIn(Input):
    """A customer made at the till: phone and first name, the rest optional."""

    phone: str = Field(default="", max_length=1000)
    first_name: str = Field(default="", max_length=1000)
    last_name: str = Field(default="", max_length=1000)
    email: str = Field(default="", max_length=1000)
    marketing_email: bool = False
    marketing_sms: bool = False


def _name(value: str, field_name: str, required: bool) -> str:
    # split() drops no-break and em spaces too; a name of zero-width spaces is blank
    clean = " ".join(value.split()) if visible(value) else ""
    if required and not clean:
        raise ValidationFailed(f"{field_name} is required", code="required", field=field_name)
    if len(clean) > 100 or "\x00" in clean:
        raise ValidationFailed(f"{field_name} is at most 100 characters", code="too_long",
                               field=field_name)
    return clean


async def quick_create(uow: UnitOfWork, actor: Actor, data: QuickCustomerIn,
                       channel: str = "pos") -> CustomerOut:
    """Create a customer with a new loyalty card number and record the marketing
    consents asked at the till (a box left empty is recorded as a refusal). A phone or
    e-mail someone already has is a 409 `customer_exists` on that field, with the
    other customer's id in `extra`."""
    actor.require("customers.write")
    if not data.phone.strip():
        raise ValidationFailed("phone is required", code="required", field="phone")
    if len(data.phone) > 40:
        raise ValidationFailed("a phone number is at most 40 characters",
                               code="invalid_phone", field="phone")
    phone = normalise_phone(data.phone)
    first = _name(data.first_name, "first_name", True)
    last = _name(data.last_name, "last_name", False)
    email = normalise("email", data.email) if data.email.strip() else None
    try:
        out = await create_customer(uow, actor, CustomerIn(
            first_name=first, last_name=last, phone=phone, email=email, issue_card=True))
    except IntegrityError as exc:  # the same phone or e-mail added at this moment
        raise Conflict("a customer with this phone or e-mail exists", code="customer_exists",
                       field="phone") from exc
    for kind in CONSENT_KINDS:
        await set_consent(uow, out.id, kind, bool(getattr(data, kind)), channel,
                          record_unchanged=True)
    return out


# --- the account page's QR code ------------------------------------------------------------

async def card_number(session: AsyncSession, customer_id: int) -> str | None:
    return await session.scalar(
        select(CustomerIdentity.value)
        .where(CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "card")
        .order_by(CustomerIdentity.id).limit(1))


async def account_card(db: Database, customer_id: int) -> str | None:
    """The loyalty card number a shopper shows at the till (as the account page's QR
    code); one is issued on first use. None until the account's e-mail is verified: an
    unverified registration may use someone else's address."""
    async with db.reader() as s:
        account = await s.get(CustomerAccount, customer_id)
        if account is None or account.email_verified_at is None:
            return None
        number = await card_number(s, customer_id)
    if number is not None:
        return number
    async with db.uow() as uow:
        s = uow.session
        # Lock the customer (PostgreSQL; SQLite writers queue) so two page loads issue one.
        await s.execute(select(Customer.id).where(Customer.id == customer_id)
                        .with_for_update())
        number = await card_number(s, customer_id)
        if number is not None:
            return number
        number = await add_card(s, customer_id)
        uow.emit("customer.updated", {"customer_id": customer_id})
        await uow.commit()
        return number
