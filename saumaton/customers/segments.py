"""Customer segments: a saved, named set of rules that picks customers from the
register (docs/segments.md).

A rule set (`SegmentRules`) combines criteria with AND (a criterion left empty picks
everyone): loyalty tier (any of), tags (any or all of), preferences (each key given
holds one of its values), channel journey (the channel kind of the first purchase,
the kind bought in after it, kinds bought in at all: customers' journey tables, kept
by the reports job), last purchase (within / more than N days ago, never) and
marketing e-mail consent. Merged-away and erased customers are never members.

The count is one SQL statement (`count_members`): each criterion is an `IN (subquery)`
on an indexed column, so PostgreSQL answers it with hash semi-joins over the indexes.

Who gets a segment's members: `members(uow, segment_id)` yields only customers whose
marketing e-mail consent is in force (what an e-mail, a webhook export and the default
CSV export use); the owner may export the full list (`marketing_only=False`), each row
saying whether the customer consented. This is how Shopify treats its customer
segments too: a segment holds every matching customer, marketing reaches only the
subscribed ones.

Building, changing and deleting segments and exporting them needs `segments.write`
(only the owner has it); each change is audited ("segment.create", "segment.update",
"segment.delete", "segment.export") and emits "segment.changed" so the price books see
new rules at once.

At price time (`buyer_segments`) a signed-in or attached customer's memberships are
computed once per priced request, and only of the segments a campaign that is on or
still to come names: a shop without segment prices asks nothing more than before.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from sqlalchemy import and_, delete, func, literal, not_, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from saumaton.audit.services import record
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.types import Input
from saumaton.csvio.files import BOM, csv_line, excel_text, format_bool
from saumaton.customers.models import (
    Customer,
    CustomerConsent,
    CustomerIdentity,
    CustomerPreference,
    CustomerTag,
    Segment,
)
from saumaton.customers.tags import normalise_tag
from saumaton.db.session_cache import database_of
from saumaton.db.uow import Database, UnitOfWork
from saumaton.events.models import OutboxEvent
from saumaton.loyalty.ledger import PURCHASE_STATUSES
from saumaton.orders.models import Order
from saumaton.pricing.book import campaign_book
from saumaton.pricing.models import Campaign
from saumaton.reports.journey_tables import CustomerJourney
from saumaton.reports.journeys import KIND_BITS, stored_bits, stored_kinds

PERMISSION = "segments.write"
TIER_CHOICES = ("none", "member", "silver", "gold")
KINDS = tuple(KIND_BITS)  # pos | webshop | service_desk | api
MAX_NAME = 100
MAX_TAGS = 20
MAX_PREFERENCES = 10
MAX_VALUES = 50
MAX_DAYS = 3650
PREVIEW = 10
BATCH = 1000
WEBHOOK_PART = 500  # members per segment.exported event
SPEND_WINDOW = timedelta(days=365)  # as loyalty.tiers
_KEY = re.compile(r"[a-z][a-z0-9_]{0,49}")

Kind = Literal["pos", "webshop", "service_desk", "api"]


class PreferenceRule(Input):
    key: str = Field(max_length=50, description="a preference field's key, e.g. shade")
    values: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=MAX_VALUES, description="any of these values")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.fullmatch(value):
            raise ValueError("a key is lowercase letters a–z, digits or '_'")
        return value


class LastPurchase(Input):
    op: Literal["within", "before", "never"] = Field(
        description="within: the last purchase is at most `days` old; before: the "
                    "customer has bought, but not in the last `days` days; never: no "
                    "purchase")
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS, validate_default=True)

    @field_validator("days")
    @classmethod
    def _days(cls, value: int | None, info: Any) -> int | None:
        if info.data.get("op") in ("within", "before") and value is None:
            raise ValueError("give the number of days")
        return value


class SegmentRules(Input):
    """All criteria must hold; an empty one picks everyone."""

    tiers: list[Literal["none", "member", "silver", "gold"]] = Field(
        default_factory=list, max_length=4, description="any of these loyalty tiers "
        "(none: not enrolled)")
    tags: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list,
                                                            max_length=MAX_TAGS)
    tags_match: Literal["any", "all"] = "any"
    preferences: list[PreferenceRule] = Field(default_factory=list,
                                              max_length=MAX_PREFERENCES)
    first_channel: Kind | None = Field(default=None,
                                       description="the kind of the first purchase's channel")
    then_channel: Kind | None = Field(default=None, description="a kind bought in after the "
                                      "first purchase (web-then-store: webshop, then pos)")
    bought_in: list[Kind] = Field(default_factory=list, max_length=4,
                                  description="bought in any of these channel kinds")
    last_purchase: LastPurchase | None = None
    consent: Literal["any", "granted", "not_granted"] = Field(
        default="any", description="marketing e-mail consent in force")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            try:
                tag = normalise_tag(raw)
            except ValidationFailed as exc:
                raise ValueError(exc.detail) from None
            if tag not in out:
                out.append(tag)
        return out


def parse_rules(raw: object) -> SegmentRules:
    """Rules as stored or given; 422 `invalid_rules` (with every error) otherwise."""
    try:
        return SegmentRules.model_validate(raw)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]),
                   "message": str(e["msg"]).removeprefix("Value error, ")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"field": "rules", "message": "invalid rules"}
        raise ValidationFailed(f"{first['field']}: {first['message']}",
                               code="invalid_rules", field="rules",
                               extra={"errors": errors}) from None


# --- the rules as SQL ---------------------------------------------------------------------

# `only`: the one customer asked about (price time): each subquery reads that customer's
# rows alone instead of everyone's (a NOT IN or a grouped subquery is not narrowed down
# by the planner).

def _spend_at_least(cents: int, at: datetime, only: int | None = None) -> Any:
    q = (select(Order.customer_id)
         .where(Order.customer_id.is_not(None), Order.status.in_(PURCHASE_STATUSES),
                Order.created_at > at - SPEND_WINDOW, Order.created_at <= at)
         .group_by(Order.customer_id).having(func.sum(Order.total_cents) >= cents))
    return q.where(Order.customer_id == only) if only is not None else q


def _enrolled(only: int | None = None) -> Any:
    q = select(CustomerIdentity.customer_id).where(CustomerIdentity.kind == "card")
    return q.where(CustomerIdentity.customer_id == only) if only is not None else q


def _tiers_condition(tiers: Sequence[str], at: datetime, settings: Settings,
                     only: int | None = None) -> ColumnElement[bool]:
    """Any of `tiers`. The enrolled ones are taken as runs of neighbouring tiers (member
    to gold: a spend from one threshold to below the next), so that each run reads the
    year's spend at most twice and the usual choices ("silver or gold", "members")
    once or not at all."""
    cid = Customer.id
    ranks = sorted({TIER_CHOICES.index(t) for t in tiers if t != "none"})
    bounds = (0, settings.loyalty_silver_from_cents, settings.loyalty_gold_from_cents)
    runs: list[list[int]] = []
    for r in ranks:
        if runs and runs[-1][-1] == r - 1:
            runs[-1].append(r)
        else:
            runs.append([r])
    parts: list[ColumnElement[bool]] = []
    if "none" in tiers:
        parts.append(not_(cid.in_(_enrolled(only))))
    for run in runs:
        lo, hi = run[0], run[-1]  # ranks 1 member, 2 silver, 3 gold
        conds = [cid.in_(_enrolled(only))]
        if lo > 1:
            conds.append(cid.in_(_spend_at_least(bounds[lo - 1], at, only)))
        if hi < 3:
            conds.append(not_(cid.in_(_spend_at_least(bounds[hi], at, only))))
        parts.append(and_(*conds))
    return or_(*parts)


def _purchased(since: datetime | None = None, only: int | None = None) -> Any:
    q = select(Order.customer_id).where(Order.customer_id.is_not(None),
                                        Order.status.in_(PURCHASE_STATUSES))
    if only is not None:
        q = q.where(Order.customer_id == only)
    return q.where(Order.created_at > since) if since is not None else q


def _consented(only: int | None = None) -> Any:
    """The customers whose newest marketing e-mail consent row grants it (a granting
    row with no newer row of the kind: one probe of ix_customer_consents_newest)."""
    newer = aliased(CustomerConsent)
    q = select(CustomerConsent.customer_id).where(
        CustomerConsent.kind == "marketing_email", CustomerConsent.granted.is_(True),
        ~select(newer.id).where(newer.customer_id == CustomerConsent.customer_id,
                                newer.kind == CustomerConsent.kind,
                                newer.id > CustomerConsent.id).exists())
    return q.where(CustomerConsent.customer_id == only) if only is not None else q


def conditions(rules: SegmentRules, at: datetime | None = None,
               settings: Settings | None = None, *,
               only: int | None = None) -> list[ColumnElement[bool]]:
    """The WHERE conditions on `customers` that pick the segment's members (with
    `only`: whether that one customer is one, reading only their rows)."""
    at = at or utcnow()
    settings = settings or get_settings()
    cid = Customer.id
    out: list[ColumnElement[bool]] = [Customer.merged_into_id.is_(None),
                                      Customer.erased_at.is_(None)]
    if rules.tiers:
        out.append(_tiers_condition(rules.tiers, at, settings, only))
    if rules.tags:
        if rules.tags_match == "any":
            out.append(cid.in_(select(CustomerTag.customer_id)
                               .where(CustomerTag.tag.in_(rules.tags))))
        else:
            out.extend(cid.in_(select(CustomerTag.customer_id).where(CustomerTag.tag == t))
                       for t in rules.tags)
    for p in rules.preferences:
        out.append(cid.in_(select(CustomerPreference.customer_id).where(
            CustomerPreference.key == p.key, CustomerPreference.value.in_(p.values))))
    journey: list[ColumnElement[bool]] = []
    # A till sale of a reservation to try is a store purchase here (its own kind in the
    # journey tables: stored_kinds, stored_bits).
    if rules.first_channel:
        journey.append(CustomerJourney.first_kind.in_(stored_kinds(rules.first_channel)))
    if rules.then_channel:
        journey.append(CustomerJourney.later_kinds_mask.op("&")(
            stored_bits(rules.then_channel)) != 0)
    if rules.bought_in:
        mask = 0
        for k in set(rules.bought_in):
            mask |= stored_bits(k)
        journey.append(CustomerJourney.kinds_mask.op("&")(mask) != 0)
    if journey:
        out.append(cid.in_(select(CustomerJourney.customer_id).where(*journey)))
    lp = rules.last_purchase
    if lp is not None:
        if lp.op == "never":
            out.append(not_(cid.in_(_purchased(None, only))))
        else:
            since = at - timedelta(days=lp.days or 0)
            recent = cid.in_(_purchased(since, only))
            out.append(recent if lp.op == "within"
                       else and_(cid.in_(_purchased(None, only)), not_(recent)))
    if rules.consent != "any":
        consented = cid.in_(_consented(only))
        out.append(consented if rules.consent == "granted" else not_(consented))
    return out


# --- reading --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentOut:
    id: int
    name: str
    rules: SegmentRules
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    campaigns: tuple[int, ...]  # campaigns (not ended) priced for its members


@dataclass(frozen=True)
class Member:
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    marketing_email: bool


async def count_members(session: AsyncSession, rules: SegmentRules,
                        at: datetime | None = None, *, marketing_only: bool = False,
                        settings: Settings | None = None) -> int:
    """How many customers the rules pick (with marketing_only: of them, those who
    consented to marketing e-mail): one statement."""
    where = conditions(rules, at, settings)
    if marketing_only:
        where.append(Customer.id.in_(_consented()))
    return int(await session.scalar(select(func.count()).select_from(Customer)
                                    .where(*where)) or 0)


async def _members_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, Member]:
    if not ids:
        return {}
    rows = (await session.execute(select(Customer.id, Customer.first_name, Customer.last_name)
                                  .where(Customer.id.in_(ids)))).all()
    idents: dict[int, dict[str, str]] = {}
    for cid, kind, value in (await session.execute(
            select(CustomerIdentity.customer_id, CustomerIdentity.kind, CustomerIdentity.value)
            .where(CustomerIdentity.customer_id.in_(ids), CustomerIdentity.kind.in_(
                ("email", "phone"))).order_by(CustomerIdentity.id))).all():
        idents.setdefault(int(cid), {}).setdefault(str(kind), str(value))
    consented = set((await session.scalars(
        _consented().where(CustomerConsent.customer_id.in_(ids)))).all())
    return {int(r[0]): Member(int(r[0]), r[1], r[2], idents.get(r[0], {}).get("email", ""),
                              idents.get(r[0], {}).get("phone", ""), r[0] in consented)
            for r in rows}


async def preview(session: AsyncSession, rules: SegmentRules, limit: int = PREVIEW,
                  at: datetime | None = None, *, settings: Settings | None = None
                  ) -> list[Member]:
    """The first `limit` members by customer id."""
    ids = [int(i) for i in (await session.scalars(
        select(Customer.id).where(*conditions(rules, at, settings))
        .order_by(Customer.id).limit(limit))).all()]
    found = await _members_of(session, ids)
    return [found[i] for i in ids if i in found]


def _out(s: Segment, campaigns: Sequence[int]) -> SegmentOut:
    return SegmentOut(s.id, s.name, parse_rules(s.rules), s.created_by, s.created_at,
                      s.updated_by, s.updated_at, tuple(campaigns))


async def _campaigns_using(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    if ids:
        now = utcnow()
        for seg, cid in (await session.execute(
                select(Campaign.segment_id, Campaign.id)
                .where(Campaign.segment_id.in_(ids), Campaign.active,
                       or_(Campaign.ends_at.is_(None), Campaign.ends_at > now))
                .order_by(Campaign.id))).all():
            out.setdefault(int(seg or 0), []).append(int(cid))
    return out


async def list_segments(session: AsyncSession) -> list[SegmentOut]:
    rows = list((await session.scalars(select(Segment).order_by(Segment.name))).all())
    used = await _campaigns_using(session, [s.id for s in rows])
    return [_out(s, used.get(s.id, [])) for s in rows]


async def get_segment(session: AsyncSession, segment_id: int) -> SegmentOut:
    s = await session.get(Segment, segment_id) if 0 < segment_id < 2**31 else None
    if s is None:
        raise NotFound(f"no segment {segment_id}", code="segment_not_found")
    return _out(s, (await _campaigns_using(session, [s.id])).get(s.id, []))


async def members(uow: UnitOfWork, segment_id: int, *, marketing_only: bool = True,
                  at: datetime | None = None, batch: int = BATCH,
                  settings: Settings | None = None, after: int = 0
                  ) -> AsyncIterator[Member]:
    """The segment's members in customer id order, a batch of ids per query (keyset):
    only those whose marketing e-mail consent is in force unless `marketing_only` is
    False (the owner's full export). What an e-mail sequence sends to. `after`: only
    customers with a larger id (resuming a send in batches, mail/mailings.py)."""
    seg = await get_segment(uow.session, segment_id)
    where = conditions(seg.rules, at, settings)
    if marketing_only:
        where.append(Customer.id.in_(_consented()))
    while True:
        ids = [int(i) for i in (await uow.session.scalars(
            select(Customer.id).where(*where, Customer.id > after)
            .order_by(Customer.id).limit(batch))).all()]
        if not ids:
            return
        found = await _members_of(uow.session, ids)
        for i in ids:
            if i in found:
                yield found[i]
        after = ids[-1]


# --- price time -----------------------------------------------------------------------------

async def buyer_segments(session: AsyncSession, customer_id: int | None,
                         at: datetime | None = None, *, settings: Settings | None = None
                         ) -> frozenset[int]:
    """The segments `customer_id` belongs to among those a campaign on or still to come
    names (from this process's campaign book): no query at all when no campaign has a
    segment limit or there is no customer; else one statement for all of them. What
    the price functions take as `segments`, computed once per priced request."""
    if customer_id is None:
        return frozenset()
    db = database_of(session)
    if db is not None:
        wanted = (await campaign_book(db, session)).segment_ids
    else:  # a session without the app's database: asked directly
        wanted = frozenset(int(i) for i in (await session.scalars(
            select(Campaign.segment_id).distinct()
            .where(Campaign.active, Campaign.segment_id.is_not(None),
                   or_(Campaign.ends_at.is_(None), Campaign.ends_at > utcnow())))).all()
            if i is not None)
    if not wanted:
        return frozenset()
    rules = await segment_rules(db, session) if db is not None else {
        int(i): parse_rules(r) for i, r in (await session.execute(
            select(Segment.id, Segment.rules).where(Segment.id.in_(wanted)))).all()}
    parts = [select(literal(sid).label("sid")).select_from(Customer)
             .where(Customer.id == customer_id,
                    *conditions(rules[sid], at, settings, only=customer_id))
             for sid in sorted(wanted) if sid in rules]
    if not parts:
        return frozenset()
    stmt = parts[0] if len(parts) == 1 else union_all(*parts)
    return frozenset(int(r[0]) for r in (await session.execute(stmt)).all())


SEGMENT_TOPICS = ("segment.changed",)
RULES_SECONDS = 30.0


async def segment_rules(db: Database, session: AsyncSession) -> dict[int, SegmentRules]:
    """Every segment's rules as this process keeps them (dropped on segment.changed)."""
    async def load() -> dict[int, SegmentRules]:
        return {int(i): parse_rules(r) for i, r in
                (await session.execute(select(Segment.id, Segment.rules))).all()}
    return await db.cached(("segment-rules",), RULES_SECONDS, load, topics=SEGMENT_TOPICS)


# --- changes --------------------------------------------------------------------------------

def clean_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise ValidationFailed("give the segment a name", code="name_required", field="name")
    if len(name) > MAX_NAME or "\x00" in name:
        raise ValidationFailed(f"a name is at most {MAX_NAME} characters",
                               code="name_too_long", field="name", extra={"max": MAX_NAME})
    return name


async def _name_free(session: AsyncSession, name: str, but: int | None = None) -> None:
    q = select(Segment.id).where(func.lower(Segment.name) == name.lower())
    if but is not None:
        q = q.where(Segment.id != but)
    if await session.scalar(q) is not None:
        raise Conflict(f"a segment '{name}' exists", code="duplicate_segment", field="name")


async def create_segment(uow: UnitOfWork, actor: Actor, name: str,
                         rules: SegmentRules) -> SegmentOut:
    actor.require(PERMISSION, everywhere=True)
    clean = clean_name(name)
    await _name_free(uow.session, clean)
    now = utcnow()
    seg = Segment(name=clean, rules=rules.model_dump(mode="json"), created_by=actor.label,
                  created_at=now, updated_by=actor.label, updated_at=now)
    uow.session.add(seg)
    await uow.session.flush()
    await record(uow, actor, "segment.create", "segment", seg.id,
                 {"name": clean, "rules": seg.rules})
    uow.emit("segment.changed", {"segment_id": seg.id, "name": clean})
    return _out(seg, [])


async def update_segment(uow: UnitOfWork, actor: Actor, segment_id: int, name: str,
                         rules: SegmentRules) -> SegmentOut:
    actor.require(PERMISSION, everywhere=True)
    before = await get_segment(uow.session, segment_id)
    clean = clean_name(name)
    await _name_free(uow.session, clean, but=segment_id)
    seg = await uow.session.get(Segment, segment_id)
    assert seg is not None
    seg.name, seg.rules = clean, rules.model_dump(mode="json")
    seg.updated_by, seg.updated_at = actor.label, utcnow()
    await uow.session.flush()
    await record(uow, actor, "segment.update", "segment", segment_id, {
        "before": {"name": before.name, "rules": before.rules.model_dump(mode="json")},
        "after": {"name": clean, "rules": seg.rules}})
    uow.emit("segment.changed", {"segment_id": segment_id, "name": clean})
    return await get_segment(uow.session, segment_id)


async def delete_segment(uow: UnitOfWork, actor: Actor, segment_id: int) -> None:
    """Delete a segment no campaign names (409 `segment_in_use` otherwise, with the
    campaigns: end them or choose another segment first)."""
    actor.require(PERMISSION, everywhere=True)
    seg = await get_segment(uow.session, segment_id)
    named = [int(i) for i in (await uow.session.scalars(
        select(Campaign.id).where(Campaign.segment_id == segment_id)
        .order_by(Campaign.id))).all()]
    if seg.campaigns:
        raise Conflict("campaigns are priced for this segment's members",
                       code="segment_in_use", extra={"campaign_ids": list(seg.campaigns)})
    # Campaigns that have ended keep their history: the limit is let go of.
    if named:
        for c in (await uow.session.scalars(
                select(Campaign).where(Campaign.id.in_(named)))).all():
            c.segment_id = None
        await uow.session.flush()
    await uow.session.execute(delete(Segment).where(Segment.id == segment_id))
    await record(uow, actor, "segment.delete", "segment", segment_id,
                 {"name": seg.name, "rules": seg.rules.model_dump(mode="json")})
    uow.emit("segment.changed", {"segment_id": segment_id, "deleted": True})


async def forget_in_exports(uow: UnitOfWork, customer_ids: Sequence[int]) -> int:
    """Take erased customers out of past `segment.exported` events (GDPR art. 17): their
    contact details would stay in the outbox, and a delivery sent again would repeat
    them. Returns how many events changed."""
    ids = set(customer_ids)
    changed = 0
    for event in (await uow.session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "segment.exported"))).all():
        listed = list(event.payload.get("members", []))
        kept = [m for m in listed if m.get("customer_id") not in ids]
        if len(kept) != len(listed):
            event.payload = {**event.payload, "members": kept}
            changed += 1
    await uow.session.flush()
    return changed


# --- exports --------------------------------------------------------------------------------

CSV_COLUMNS = ("customer_id", "first_name", "last_name", "email", "phone",
               "marketing_email")


async def export_csv(uow: UnitOfWork, actor: Actor, segment_id: int, *,
                     full: bool = False) -> AsyncIterator[str]:
    """The members as CSV lines (csvio's conventions: `;`, UTF-8 with a byte order
    mark, CRLF): those who consented to marketing e-mail, or with `full` every member
    (each row says whether they consented). Audited."""
    actor.require(PERMISSION, everywhere=True)
    seg = await get_segment(uow.session, segment_id)
    await record(uow, actor, "segment.export", "segment", segment_id,
                 {"name": seg.name, "to": "csv", "full": full})
    yield BOM + csv_line(CSV_COLUMNS)
    async for m in members(uow, segment_id, marketing_only=not full):
        yield csv_line([m.id, excel_text(m.first_name), excel_text(m.last_name),
                        excel_text(m.email), m.phone, format_bool(m.marketing_email)])


@dataclass(frozen=True)
class WebhookExport:
    export_id: str
    members: int
    parts: int


async def export_webhook(uow: UnitOfWork, actor: Actor, segment_id: int) -> WebhookExport:
    """Send the members who consented to marketing e-mail to the webhooks subscribed
    to `segment.exported`: one event per WEBHOOK_PART members, all in this transaction
    (delivered in order: the resource is the segment)."""
    actor.require(PERMISSION, everywhere=True)
    seg = await get_segment(uow.session, segment_id)
    export_id = uuid.uuid4().hex
    chunks: list[list[dict[str, Any]]] = [[]]
    async for m in members(uow, segment_id):
        if len(chunks[-1]) >= WEBHOOK_PART:
            chunks.append([])
        chunks[-1].append({"customer_id": m.id, "first_name": m.first_name,
                           "last_name": m.last_name, "email": m.email, "phone": m.phone})
    total = sum(len(c) for c in chunks)
    for n, chunk in enumerate(chunks, 1):
        uow.emit("segment.exported", {
            "segment_id": segment_id, "name": seg.name, "export_id": export_id,
            "part": n, "parts": len(chunks), "total": total, "members": chunk})
    await record(uow, actor, "segment.export", "segment", segment_id,
                 {"name": seg.name, "to": "webhook", "export_id": export_id,
                  "members": total})
    return WebhookExport(export_id, total, len(chunks))
