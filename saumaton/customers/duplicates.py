"""Duplicate customers: finding the probable pairs, a reviewed merge, and its undo.

The same person often ends up in the register twice: once made at the till (phone and
first name), once by a web order (e-mail, with the same phone on the order). Candidates
are pairs that share a normalised e-mail or phone (an identity, the account's e-mail,
or the e-mail and phone typed on their orders), or that have a similar name (the same
last name ignoring case and accents, first names equal, one a prefix of the other or
one typo apart) and the same postcode (an address book entry or an order's shipping
address).

A merge moves every row that belongs to the merged customer to the kept one: each table
of the schema with a column referencing customers (found through `Base.metadata`, so a
table added later is moved too) - orders of every channel with their payments,
identities, the account, addresses, consents, preferences (the kept customer's value
wins on the same key), notes, tags, carts, analytics events. What moved is recorded in
`customer_merges.moved` so that the merge can be undone for `UNDO_WINDOW`; after that
the kept customer has gathered new orders and notes that can no longer be told apart,
so the merge stands. An undo also moves back what was written after the merge about a
moved order (a reversal or refund of its points, the points it earned when paid, its
NPS survey, its funnel event): such rows belong to the order's customer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound
from saumaton.customers.identities import normalise_phone
from saumaton.customers.models import (
    Customer,
    CustomerAccount,
    CustomerAddress,
    CustomerIdentity,
    CustomerMerge,
)
from saumaton.customers.sessions import revoke_all, sessions_revoked
from saumaton.db import models as _all_models  # noqa: F401  (every table in the metadata)
from saumaton.db.base import Base
from saumaton.db.uow import UnitOfWork
from saumaton.orders.lifecycle import SOLD
from saumaton.orders.models import Order

# After this a merge cannot be undone (see the module docstring and docs/duplicates.md).
UNDO_WINDOW = timedelta(days=7)
PURCHASE_STATUSES = tuple(SOLD)
# Scores (0-100): a shared e-mail or phone is nearly certain; a similar name in the same
# postcode is a strong hint; together they add up (capped at 100).
SCORE_EMAIL = 90
SCORE_PHONE = 85
SCORE_NAME_POSTCODE = 60
SCORE_EXTRA = 10
# Customer columns a merge never moves: the merge's own bookkeeping, and the reports'
# channel journeys, which are derived from the orders: the reports job recomputes both
# customers of a merge (or of its undo) from their orders as they are then. Shopper
# sessions stay too: a session of the merged customer, whose account moved, names no
# account any more and ends (the shopper signs in again, as the kept customer).
NOT_MOVED = {("customers", "merged_into_id"), ("customer_merges", "kept_id"),
             ("customer_merges", "merged_id"), ("customer_journeys", "customer_id"),
             ("customer_channels", "customer_id"), ("customer_sessions", "customer_id")}
# Letters folded for comparing last names in SQL (SQLite's lower() folds ASCII only).
_FOLD = (("ä", "a"), ("Ä", "a"), ("ö", "o"), ("Ö", "o"), ("å", "a"), ("Å", "a"),
         ("é", "e"), ("É", "e"), ("è", "e"), ("È", "e"), ("ü", "u"), ("Ü", "u"),
         ("á", "a"), ("Á", "a"), ("š", "s"), ("Š", "s"), ("ž", "z"), ("Ž", "z"))


# --- results ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """kind: email | phone | name_postcode; value: the shared e-mail, phone or postcode."""

    kind: str
    value: str

    @property
    def text(self) -> str:
        if self.kind == "email":
            return f"same e-mail {self.value}"
        if self.kind == "phone":
            return f"same phone {self.value}"
        return f"similar name + postcode {self.value}"


@dataclass(frozen=True)
class CustomerSummary:
    """One side of a candidate pair, as the review page shows it."""

    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    card: str | None
    postcode: str | None
    order_count: int
    last_purchase_at: datetime | None
    has_account: bool
    created_at: datetime

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class Candidate:
    a: CustomerSummary
    b: CustomerSummary
    reasons: list[Reason]
    score: int

    @property
    def suggested_kept_id(self) -> int:
        """The account holder, else the one with more orders, else the older record."""
        return suggested_kept(self.a, self.b)


@dataclass(frozen=True)
class MergePreview:
    kept: CustomerSummary
    merged: CustomerSummary
    counts: dict[str, int]  # table -> rows of the merged customer that will move
    kept_wins: dict[str, int]  # table -> rows where the kept customer's value stays
    blocked: str | None  # a Conflict code when the merge cannot be done


@dataclass(frozen=True)
class MergeResult:
    merge_id: int
    kept_id: int
    merged_id: int
    counts: dict[str, int]
    merged_at: datetime
    undo_until: datetime


@dataclass(frozen=True)
class MergeInfo:
    id: int
    kept_id: int
    merged_id: int
    merged_name: str
    counts: dict[str, int]
    merged_by: str
    merged_at: datetime
    undo_until: datetime
    undone_at: datetime | None
    can_undo: bool


def suggested_kept(a: CustomerSummary, b: CustomerSummary) -> int:
    def rank(c: CustomerSummary) -> tuple[int, int, float]:
        return (int(c.has_account), c.order_count, -c.created_at.timestamp())
    return a.id if rank(a) >= rank(b) else b.id


# --- comparing names ----------------------------------------------------------------------------

def fold(value: str) -> str:
    """Case- and accent-insensitive form of a name: 'Äijälä ' -> 'aijala'."""
    decomposed = unicodedata.normalize("NFKD", " ".join(value.split()).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _sql_fold(column: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[str]:
    out: ColumnElement[str] = func.lower(func.trim(column))
    for src, dst in _FOLD:
        out = func.replace(out, src, dst)
    return out


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance at most 1."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1:] == b[i + 1:]
    return a[i:] == b[i + 1:]


def similar_names(first_a: str, last_a: str, first_b: str, last_b: str) -> bool:
    fa, fb, la, lb = fold(first_a), fold(first_b), fold(last_a), fold(last_b)
    if not (fa and fb and la and lb) or la != lb:
        return False
    return fa.startswith(fb) or fb.startswith(fa) or within_one_edit(fa, fb)


# --- candidates ---------------------------------------------------------------------------------

def _active(ids: ColumnElement[int]) -> ColumnElement[bool]:
    return ids.in_(select(Customer.id).where(Customer.merged_into_id.is_(None),
                                             Customer.erased_at.is_(None)))


def _contacts() -> Any:
    """(customer_id, kind, value) of every e-mail and phone a customer is known by."""
    return union_all(
        select(CustomerIdentity.customer_id.label("customer_id"),
               CustomerIdentity.kind.label("kind"), CustomerIdentity.value.label("value"))
        .where(CustomerIdentity.kind.in_(("email", "phone"))),
        select(CustomerAccount.customer_id, literal("email"), func.lower(CustomerAccount.email)),
        select(Order.customer_id, literal("email"), func.lower(Order.email))
        .where(Order.customer_id.is_not(None), Order.email != ""),
        select(Order.customer_id, literal("phone"), Order.phone)
        .where(Order.customer_id.is_not(None), Order.phone != ""),
    ).subquery("contacts")


def _postcodes() -> Any:
    """(customer_id, postcode) from the address book and orders' shipping addresses."""
    shipped = Order.shipping_address["postcode"].as_string()
    return union(
        select(CustomerAddress.customer_id.label("customer_id"),
               func.trim(CustomerAddress.postcode).label("postcode"))
        .where(CustomerAddress.postcode != ""),
        select(Order.customer_id, func.trim(shipped))
        .where(Order.customer_id.is_not(None), Order.shipping_address.is_not(None),
               shipped.is_not(None), shipped != ""),
    ).subquery("postcodes")


async def _shared_contacts(session: AsyncSession, max_values: int,
                           only: Sequence[int] | None = None
                           ) -> list[tuple[str, str, list[int]]]:
    """(kind, normalised value, customers) for each e-mail or phone more than one active
    customer is known by (given `only`: values one of those customers is known by)."""
    c = _contacts()
    mine = c.c.value.in_(select(c.c.value).where(c.c.customer_id.in_(only))) if only else None
    # Phones typed elsewhere than checkout may not be in E.164: normalise those here
    # (checkout and the till store E.164, so these are few).
    odd: dict[str, set[int]] = {}
    for cid, value in (await session.execute(
            select(c.c.customer_id, c.c.value).distinct()
            .where(c.c.kind == "phone", ~c.c.value.like("+%"), _active(c.c.customer_id))
            .limit(10_000))).all():
        try:
            odd.setdefault(normalise_phone(str(value)), set()).add(int(cid))
        except Exception:
            continue
    shared = (await session.execute(
        select(c.c.kind, c.c.value).where(_active(c.c.customer_id),
                                          *([mine] if mine is not None else []))
        .group_by(c.c.kind, c.c.value).having(func.count(func.distinct(c.c.customer_id)) > 1)
        .limit(max_values))).all()
    wanted = {(str(k), str(v)) for k, v in shared}
    wanted |= {("phone", v) for v in odd}
    if not wanted:
        return []
    values = sorted({v for _, v in wanted})
    owners: dict[tuple[str, str], set[int]] = {}
    for chunk in _chunks(values, 500):
        for cid, kind, value in (await session.execute(
                select(c.c.customer_id, c.c.kind, c.c.value).distinct()
                .where(c.c.value.in_(chunk), _active(c.c.customer_id)))).all():
            key = (str(kind), str(value))
            if key in wanted:
                owners.setdefault(key, set()).add(int(cid))
    for phone, cids in odd.items():
        owners.setdefault(("phone", phone), set()).update(cids)
    return [(k, v, sorted(ids)) for (k, v), ids in sorted(owners.items()) if len(ids) > 1]


async def _similar_named(session: AsyncSession, max_pairs: int,
                         only: Sequence[int] | None = None) -> list[tuple[int, int, str]]:
    """(a, b, postcode) for customers with a similar name and a shared postcode. The
    database blocks by folded last name and postcode; only those few pairs are compared
    in Python."""
    pc = _postcodes()
    pa, pb = aliased(pc), aliased(pc)
    ca, cb = aliased(Customer), aliased(Customer)
    rows = (await session.execute(
        select(ca.id, cb.id, pa.c.postcode, ca.first_name, ca.last_name, cb.first_name,
               cb.last_name).distinct()
        .join(pa, pa.c.customer_id == ca.id)
        .join(cb, and_(_sql_fold(cb.last_name) == _sql_fold(ca.last_name), cb.id > ca.id))
        .join(pb, and_(pb.c.customer_id == cb.id, pb.c.postcode == pa.c.postcode))
        .where(ca.last_name != "", ca.first_name != "", cb.first_name != "",
               ca.merged_into_id.is_(None), ca.erased_at.is_(None),
               cb.merged_into_id.is_(None), cb.erased_at.is_(None),
               *([or_(ca.id.in_(only), cb.id.in_(only))] if only else []))
        .order_by(cb.id.desc()).limit(max_pairs * 20))).all()
    out: dict[tuple[int, int], str] = {}
    for a, b, postcode, fa, la, fb, lb in rows:
        if similar_names(str(fa), str(la), str(fb), str(lb)):
            out.setdefault((int(a), int(b)), str(postcode))
    return [(a, b, p) for (a, b), p in out.items()]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def summaries(session: AsyncSession, ids: Iterable[int]) -> dict[int, CustomerSummary]:
    """What the review page shows about each customer."""
    wanted = sorted(set(ids))
    out: dict[int, CustomerSummary] = {}
    for chunk in _chunks(wanted, 500):
        people = (await session.execute(
            select(Customer.id, Customer.first_name, Customer.last_name, Customer.created_at)
            .where(Customer.id.in_(chunk)))).all()
        idents: dict[int, dict[str, str]] = {}
        for cid, kind, value in (await session.execute(
                select(CustomerIdentity.customer_id, CustomerIdentity.kind,
                       CustomerIdentity.value)
                .where(CustomerIdentity.customer_id.in_(chunk))
                .order_by(CustomerIdentity.id))).all():
            idents.setdefault(int(cid), {}).setdefault(str(kind), str(value))
        orders = {int(cid or 0): (int(n), last) for cid, n, last in (await session.execute(
            select(Order.customer_id, func.count(Order.id), func.max(Order.created_at))
            .where(Order.customer_id.in_(chunk), Order.status.in_(PURCHASE_STATUSES))
            .group_by(Order.customer_id))).all()}
        accounts = set((await session.scalars(select(CustomerAccount.customer_id).where(
            CustomerAccount.customer_id.in_(chunk)))).all())
        pc = _postcodes()
        postcodes: dict[int, str] = {}
        for cid, postcode in (await session.execute(
                select(pc.c.customer_id, pc.c.postcode).where(pc.c.customer_id.in_(chunk))
                .order_by(pc.c.customer_id, pc.c.postcode))).all():
            postcodes.setdefault(int(cid), str(postcode))
        for cid, first, last, created in people:
            i = idents.get(int(cid), {})
            n, last_at = orders.get(int(cid), (0, None))
            out[int(cid)] = CustomerSummary(
                id=int(cid), first_name=str(first), last_name=str(last),
                email=i.get("email"), phone=i.get("phone"), card=i.get("card"),
                postcode=postcodes.get(int(cid)), order_count=n, last_purchase_at=last_at,
                has_account=int(cid) in accounts, created_at=created)
    return out


async def duplicate_candidates(session: AsyncSession, actor: Actor, limit: int = 50,
                               customer_ids: Sequence[int] | None = None
                               ) -> list[Candidate]:
    """Pairs of active (not erased, not merged) customers that are probably one person,
    likeliest first, with the reasons. Given `customer_ids`: only pairs with one of
    them (the possible duplicates of a customer)."""
    actor.require("customers.read")
    limit = max(1, min(limit, 500))
    reasons: dict[tuple[int, int], list[Reason]] = {}
    only = list(customer_ids) if customer_ids else None
    for kind, value, ids in await _shared_contacts(session, limit * 4, only):
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                if only and a not in only and b not in only:
                    continue
                pair = reasons.setdefault((a, b), [])
                if all(r.kind != kind for r in pair):
                    pair.append(Reason(kind, value))
    for a, b, postcode in await _similar_named(session, limit * 4, only):
        pair = reasons.setdefault((a, b), [])
        pair.append(Reason("name_postcode", postcode))

    def score(rs: list[Reason]) -> int:
        base = {"email": SCORE_EMAIL, "phone": SCORE_PHONE,
                "name_postcode": SCORE_NAME_POSTCODE}
        values = sorted((base[r.kind] for r in rs), reverse=True)
        return min(100, values[0] + SCORE_EXTRA * (len(values) - 1))

    ranked = sorted(reasons.items(), key=lambda kv: (-score(kv[1]), -kv[0][1], -kv[0][0]))
    ranked = ranked[:limit]
    people = await summaries(session, [i for pair, _ in ranked for i in pair])
    out = []
    for (a, b), rs in ranked:
        if a in people and b in people:
            order = {"email": 0, "phone": 1, "name_postcode": 2}
            out.append(Candidate(people[a], people[b], sorted(rs, key=lambda r: order[r.kind]),
                                 score(rs)))
    return out


# --- the tables that belong to a customer -------------------------------------------------------

@dataclass(frozen=True)
class CustomerColumn:
    table: Table
    column: Column[Any]

    @property
    def key_columns(self) -> list[Column[Any]]:
        """When the customer column is part of the primary key (tags, preferences, the
        account): the rest of the key; a row is moved unless the kept customer has the
        same key. Empty for a table keyed by its own id (moved by id)."""
        pk = list(self.table.primary_key.columns)
        if self.column in pk:
            return [c for c in pk if c is not self.column]
        return []

    @property
    def keyed_by_customer(self) -> bool:
        return self.column in list(self.table.primary_key.columns)

    @property
    def id_column(self) -> Column[Any]:
        [pk] = list(self.table.primary_key.columns)
        return pk


def order_linked_columns() -> list[CustomerColumn]:
    """Customer columns of tables whose rows are also about one order (loyalty entries,
    NPS surveys, analytics events): what is written about an order belongs to the
    order's customer. Payments have no customer column; they follow their order."""
    return [cc for cc in customer_columns()
            if cc.table.name != Order.__tablename__ and not cc.keyed_by_customer
            and "order_id" in cc.table.c]


def customer_columns() -> list[CustomerColumn]:
    """Every column in the schema that says which customer a row belongs to: a foreign
    key to customers.id or a column named customer_id (analytics has no foreign key)."""
    out = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            refs = any(fk.column.table.name == "customers" for fk in column.foreign_keys)
            if (refs or column.name == "customer_id") \
                    and (table.name, column.name) not in NOT_MOVED:
                out.append(CustomerColumn(table, column))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return {"$dt": value.isoformat()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$dt"}:
        return datetime.fromisoformat(str(value["$dt"]))
    return value


async def _count(session: AsyncSession, cc: CustomerColumn, customer_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(cc.table).where(cc.column == customer_id)) or 0)


async def _keys(session: AsyncSession, cc: CustomerColumn, customer_id: int
                ) -> list[tuple[Any, ...]]:
    cols = cc.key_columns
    if not cols:
        exists = await _count(session, cc, customer_id)
        return [()] if exists else []
    return [tuple(r) for r in (await session.execute(
        select(*cols).where(cc.column == customer_id))).all()]


def _key_match(cc: CustomerColumn, keys: Sequence[Sequence[Any]]) -> ColumnElement[bool]:
    cols = cc.key_columns
    if not cols:
        return literal(True)
    if len(cols) == 1:
        return cols[0].in_([k[0] for k in keys])
    return or_(*(and_(*(c == v for c, v in zip(cols, k, strict=True))) for k in keys))


# --- merging ------------------------------------------------------------------------------------

async def _lock(session: AsyncSession, ids: Sequence[int]) -> dict[int, Any]:
    """Lock the customers' rows (FOR UPDATE on PostgreSQL; SQLite writers queue), in id
    order so that two merges of the same pair cannot deadlock; read their current state."""
    rows = (await session.execute(
        select(Customer.id, Customer.first_name, Customer.last_name,
               Customer.merged_into_id, Customer.erased_at)
        .where(Customer.id.in_(sorted(set(ids)))).order_by(Customer.id)
        .with_for_update())).all()
    return {int(r[0]): r for r in rows}


def _check_mergeable(rows: dict[int, Any], kept_id: int, merged_id: int) -> None:
    if kept_id == merged_id:
        raise Conflict("a customer cannot be merged into itself", code="merge_same_customer",
                       field="kept_id")
    for cid in (kept_id, merged_id):
        if cid not in rows:
            raise NotFound(f"no customer {cid}", code="customer_not_found")
        if rows[cid].erased_at is not None:
            raise Conflict(f"customer {cid} has been erased", code="customer_erased",
                           extra={"customer_id": cid})
        if rows[cid].merged_into_id is not None:
            raise Conflict(f"customer {cid} has already been merged into customer "
                           f"{rows[cid].merged_into_id}", code="customer_already_merged",
                           extra={"customer_id": cid})


async def _both_have_accounts(session: AsyncSession, kept_id: int, merged_id: int) -> bool:
    n = await session.scalar(select(func.count()).select_from(CustomerAccount).where(
        CustomerAccount.customer_id.in_((kept_id, merged_id))))
    return int(n or 0) == 2


def _both_accounts_error() -> Conflict:
    return Conflict("both customers have a webshop account: an account has one e-mail "
                    "and password, so one of them would be lost; keep the accounts "
                    "apart or remove one first", code="both_have_accounts")


async def merge_preview(session: AsyncSession, actor: Actor, kept_id: int,
                        merged_id: int) -> MergePreview:
    """What a merge of `merged_id` into `kept_id` would move, for the confirmation."""
    actor.require("customers.merge", everywhere=True)
    people = await summaries(session, (kept_id, merged_id))
    for cid in (kept_id, merged_id):
        if cid not in people:
            raise NotFound(f"no customer {cid}", code="customer_not_found")
    blocked: str | None = None
    rows = {int(r[0]): r for r in (await session.execute(
        select(Customer.id, Customer.first_name, Customer.last_name,
               Customer.merged_into_id, Customer.erased_at)
        .where(Customer.id.in_((kept_id, merged_id))))).all()}
    try:
        _check_mergeable(rows, kept_id, merged_id)
        if await _both_have_accounts(session, kept_id, merged_id):
            raise _both_accounts_error()
    except Conflict as exc:
        blocked = exc.code
    counts: dict[str, int] = {}
    kept_wins: dict[str, int] = {}
    for cc in customer_columns():
        name = cc.table.name
        if cc.keyed_by_customer:
            mine = set(await _keys(session, cc, merged_id))
            theirs = set(await _keys(session, cc, kept_id))
            moving, staying = len(mine - theirs), len(mine & theirs)
            if staying:
                kept_wins[name] = kept_wins.get(name, 0) + staying
        else:
            moving = await _count(session, cc, merged_id)
        if moving:
            counts[name] = counts.get(name, 0) + moving
    return MergePreview(people[kept_id], people[merged_id], counts, kept_wins, blocked)


async def merge_customers(uow: UnitOfWork, actor: Actor, kept_id: int,
                          merged_id: int) -> MergeResult:
    """Merge `merged_id` into `kept_id` (managers and owners): every row of the merged
    customer moves to the kept one, the merged record is left empty pointing to the kept
    one, and the merge can be undone for UNDO_WINDOW."""
    actor.require("customers.merge", everywhere=True)
    if kept_id == merged_id:
        _check_mergeable({}, kept_id, merged_id)
    s = uow.session
    rows = await _lock(s, (kept_id, merged_id))
    _check_mergeable(rows, kept_id, merged_id)
    if await _both_have_accounts(s, kept_id, merged_id):
        raise _both_accounts_error()
    moved: dict[str, Any] = {}
    replaced: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for cc in customer_columns():
        name = cc.table.name
        slot = name if cc.column.name == "customer_id" else f"{name}.{cc.column.name}"
        if cc.keyed_by_customer:
            mine = await _keys(s, cc, merged_id)
            theirs = set(await _keys(s, cc, kept_id))
            moving = [k for k in mine if k not in theirs]
            staying = [k for k in mine if k in theirs]
            if staying:  # the kept customer's row stays; the merged one's kept for undo
                full = (await s.execute(select(cc.table).where(
                    cc.column == merged_id, _key_match(cc, staying)))).mappings().all()
                replaced[slot] = [{k: _jsonable(v) for k, v in r.items()} for r in full]
                await s.execute(delete(cc.table).where(cc.column == merged_id,
                                                       _key_match(cc, staying)))
            if moving:
                await s.execute(update(cc.table).where(cc.column == merged_id,
                                                       _key_match(cc, moving))
                                .values({cc.column.name: kept_id}))
                moved[slot] = [[_jsonable(v) for v in k] for k in moving]
                counts[name] = counts.get(name, 0) + len(moving)
        else:
            pk = cc.id_column
            ids = [v for v in (await s.scalars(select(pk).where(cc.column == merged_id)
                                               .order_by(pk))).all()]
            for chunk in _chunks(ids, 1000):
                await s.execute(update(cc.table).where(pk.in_(chunk))
                                .values({cc.column.name: kept_id}))
            if ids:
                moved[slot] = ids
                counts[name] = counts.get(name, 0) + len(ids)
    kept_row, merged_row = rows[kept_id], rows[merged_id]
    filled = {}
    for attr in ("first_name", "last_name"):
        if not getattr(kept_row, attr) and getattr(merged_row, attr):
            filled[attr] = getattr(merged_row, attr)
    if filled:
        await s.execute(update(Customer).where(Customer.id == kept_id).values(filled))
    # The merged record stays (old references follow merged_into_id), empty.
    await s.execute(update(Customer).where(Customer.id == merged_id).values(
        merged_into_id=kept_id, first_name="", last_name=""))
    moved["_merged_customer"] = {"first_name": merged_row.first_name,
                                 "last_name": merged_row.last_name}
    moved["_kept_filled"] = filled
    moved["_kept_wins"] = replaced
    now = utcnow()
    merge_id = int(await s.scalar(insert(CustomerMerge).values(
        kept_id=kept_id, merged_id=merged_id, moved=moved, merged_by=actor.label,
        merged_at=now, undone_by="").returning(CustomerMerge.id)) or 0)
    data = {"kept_id": kept_id, "merged_id": merged_id, "merge_id": merge_id,
            "counts": counts, "kept_wins": {k: len(v) for k, v in replaced.items()}}
    await record(uow, actor, "customer.merge", "customer", kept_id, data)
    uow.emit("customer.merged", {"customer_id": kept_id, "merged_id": merged_id,
                                 "merge_id": merge_id})
    # The merged record holds no account now: its shopper sessions end (NOT_MOVED).
    await revoke_all(uow, merged_id)
    return MergeResult(merge_id, kept_id, merged_id, counts, now, now + UNDO_WINDOW)


def _info(m: CustomerMerge, now: datetime) -> MergeInfo:
    name = m.moved.get("_merged_customer", {})
    counts: dict[str, int] = {}
    for slot, rows in m.moved.items():
        if not slot.startswith("_"):
            table = slot.split(".")[0]
            counts[table] = counts.get(table, 0) + len(rows)
    until = m.merged_at + UNDO_WINDOW
    return MergeInfo(
        id=m.id, kept_id=m.kept_id, merged_id=m.merged_id,
        merged_name=f"{name.get('first_name', '')} {name.get('last_name', '')}".strip(),
        counts=counts, merged_by=m.merged_by, merged_at=m.merged_at, undo_until=until,
        undone_at=m.undone_at, can_undo=m.undone_at is None and now <= until)


async def get_merge(session: AsyncSession, actor: Actor, merge_id: int) -> MergeInfo:
    actor.require("customers.merge", everywhere=True)
    m = await session.get(CustomerMerge, merge_id)
    if m is None:
        raise NotFound(f"no merge {merge_id}", code="merge_not_found")
    return _info(m, utcnow())


async def _follow_orders(session: AsyncSession, order_ids: Sequence[int], kept_id: int,
                         merged_id: int) -> dict[str, int]:
    """Give the merged customer back the rows the kept one got after the merge for the
    orders that move back (e.g. a return's points reversal written on the kept
    customer's ledger); counts per table."""
    out: dict[str, int] = {}
    for cc in order_linked_columns():
        n = 0
        for chunk in _chunks(list(order_ids), 1000):
            result = await session.execute(
                update(cc.table).where(cc.column == kept_id, cc.table.c.order_id.in_(chunk))
                .values({cc.column.name: merged_id}))
            n += int(getattr(result, "rowcount", 0) or 0)
        if n:
            out[cc.table.name] = n
    return out


async def undo_merge(uow: UnitOfWork, actor: Actor, merge_id: int) -> None:
    """Move back the rows the merge moved and what was written since about the orders
    among them, restore the merged customer's preferences and tags the kept ones had
    replaced, and clear merged_into_id. Only within UNDO_WINDOW, once."""
    actor.require("customers.merge", everywhere=True)
    s = uow.session
    m = (await s.execute(select(CustomerMerge).where(CustomerMerge.id == merge_id)
                         .with_for_update().execution_options(populate_existing=True)
                         )).scalar_one_or_none()
    if m is None:
        raise NotFound(f"no merge {merge_id}", code="merge_not_found")
    rows = await _lock(s, (m.kept_id, m.merged_id))
    if m.undone_at is not None:
        raise Conflict("this merge has been undone already", code="merge_already_undone")
    if utcnow() > m.merged_at + UNDO_WINDOW:
        raise Conflict(
            f"a merge can be undone for {UNDO_WINDOW.days} days; after that new orders and "
            "notes of the kept customer can no longer be told apart", code="undo_window_over")
    kept, merged = rows.get(m.kept_id), rows.get(m.merged_id)
    if kept is None or merged is None or kept.erased_at is not None \
            or merged.erased_at is not None:
        raise Conflict("one of the customers has been erased", code="customer_erased")
    if kept.merged_into_id is not None:
        raise Conflict(f"customer {m.kept_id} has since been merged into customer "
                       f"{kept.merged_into_id}; undo that merge first",
                       code="kept_since_merged")
    by_slot = {(cc.table.name if cc.column.name == "customer_id"
                else f"{cc.table.name}.{cc.column.name}"): cc for cc in customer_columns()}
    moved: dict[str, Any] = m.moved
    for slot, values in moved.items():
        if slot.startswith("_"):
            continue
        cc = by_slot.get(slot)
        if cc is None:
            continue  # a table dropped since: nothing to move back
        if cc.keyed_by_customer:
            keys = [[_from_json(v) for v in k] for k in values]
            if keys:
                await s.execute(update(cc.table).where(cc.column == m.kept_id,
                                                       _key_match(cc, keys))
                                .values({cc.column.name: m.merged_id}))
        else:
            pk = cc.id_column
            for chunk in _chunks(list(values), 1000):
                await s.execute(update(cc.table).where(pk.in_(chunk),
                                                       cc.column == m.kept_id)
                                .values({cc.column.name: m.merged_id}))
    # Written after the merge about a moved order: back with the order, so that the two
    # ledgers split along the orders (and still add up to what the kept one had).
    moved_orders = [int(i) for i in moved.get(Order.__tablename__, [])]
    followed = await _follow_orders(s, moved_orders, m.kept_id, m.merged_id)
    for slot, full in dict(moved.get("_kept_wins", {})).items():
        cc = by_slot.get(slot)
        if cc is None:
            continue
        for row in full:
            values = {k: _from_json(v) for k, v in row.items()}
            key = [[values[c.name] for c in cc.key_columns]]
            taken = await s.scalar(select(func.count()).select_from(cc.table).where(
                cc.column == m.merged_id, _key_match(cc, key)))
            if not taken:
                await s.execute(insert(cc.table).values(values))
    name = dict(moved.get("_merged_customer", {}))
    await s.execute(update(Customer).where(Customer.id == m.merged_id).values(
        merged_into_id=None, first_name=str(name.get("first_name", "")),
        last_name=str(name.get("last_name", ""))))
    for attr, value in dict(moved.get("_kept_filled", {})).items():
        if attr in ("first_name", "last_name"):
            col = getattr(Customer, attr)
            await s.execute(update(Customer).where(Customer.id == m.kept_id, col == value)
                            .values({attr: ""}))
    now = utcnow()
    await s.execute(update(CustomerMerge).where(CustomerMerge.id == m.id).values(
        undone_at=now, undone_by=actor.label))
    info = _info(m, now)
    await record(uow, actor, "customer.unmerge", "customer", m.kept_id, {
        "kept_id": m.kept_id, "merged_id": m.merged_id, "merge_id": m.id,
        "counts": info.counts, "followed_orders": followed})
    uow.emit("customer.unmerged", {"customer_id": m.kept_id, "merged_id": m.merged_id,
                                   "merge_id": m.id})
    # An account that moved back takes its sign-ins' customer with it: cached look-ups
    # of the kept customer's sessions are read again (the database decides).
    sessions_revoked(uow, m.kept_id)


async def resolve_customer_id(session: AsyncSession, customer_id: int) -> int:
    """The customer a (possibly merged) id stands for now: follows merged_into_id."""
    seen = {customer_id}
    current = customer_id
    for _ in range(20):
        nxt = await session.scalar(select(Customer.merged_into_id)
                                   .where(Customer.id == current))
        if nxt is None or int(nxt) in seen:
            return current
        current = int(nxt)
        seen.add(current)
    return current

