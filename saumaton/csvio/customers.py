"""Importing customers with their marketing consents, through the customer register's
own services: a row is matched by its e-mail, then its phone, then its loyalty card
(as normalised by the register); a match gets the missing name parts, e-mails and
phones and the consents that differ; no match is a new customer. A row whose e-mail
and phone belong to two different customers is an error (merge them first on the
duplicates page)."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.csvio.files import RowError, excel_text, format_bool, parse_bool
from saumaton.customers.consents import CONSENT_KINDS, set_consent
from saumaton.customers.contact import add_identity, update_name
from saumaton.customers.identities import normalise
from saumaton.customers.models import Customer, CustomerConsent, CustomerIdentity
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import UnitOfWork

COLUMNS = ("first_name", "last_name", "email", "phone", "card", "marketing_email",
           "marketing_sms", "consent_source")
REQUIRED: tuple[str, ...] = ()
KEYS = ("email", "phone", "card")
DEFAULT_SOURCE = "import"


def require(actor: Actor) -> None:
    actor.require("customers.write")


@dataclass
class State:
    seen: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, value) -> row


async def load_state(session: AsyncSession) -> State:
    return State()


@dataclass
class Row:
    n: int
    first: str
    last: str
    ids: dict[str, str]
    consents: dict[str, bool]
    source: str


def parse_row(n: int, v: dict[str, str]) -> Row | list[RowError]:
    errors: list[RowError] = []
    names = {}
    for col in ("first_name", "last_name"):
        clean = " ".join(v.get(col, "").split())
        if len(clean) > 100:
            errors.append(RowError(n, col, "too_long", f"{col} is at most 100 characters"))
        names[col] = clean
    ids: dict[str, str] = {}
    for kind in KEYS:
        raw = v.get(kind, "")
        if raw:
            if len(raw) > 320:
                errors.append(RowError(n, kind, f"invalid_{kind}", f"{kind} is too long"))
                continue
            try:
                ids[kind] = normalise(kind, raw)
            except ValidationFailed as exc:
                errors.append(RowError(n, kind, exc.code, exc.detail))
    if not ids and not any(e.field in KEYS for e in errors):
        errors.append(RowError(n, "email", "required",
                               "give an e-mail, a phone or a loyalty card number"))
    consents: dict[str, bool] = {}
    for kind in CONSENT_KINDS:
        raw = v.get(kind, "")
        if raw:
            b = parse_bool(raw)
            if b is None:
                errors.append(RowError(n, kind, "invalid_bool", f"{kind} is yes or no"))
            else:
                consents[kind] = b
    source = v.get("consent_source", "") or DEFAULT_SOURCE
    if len(source) > 32:
        errors.append(RowError(n, "consent_source", "too_long",
                               "consent_source is at most 32 characters"))
    if errors:
        return errors
    return Row(n, names["first_name"], names["last_name"], ids, consents, source)


Result = tuple[str, list[RowError]]


async def process(uow: UnitOfWork, actor: Actor, state: State,
                  rows: list[tuple[int, dict[str, str]]], *, write: bool,
                  reference: str) -> list[Result]:
    s = uow.session
    results: dict[int, Result] = {}
    parsed: list[Row] = []
    for n, v in rows:
        r = parse_row(n, v)
        if isinstance(r, list):
            results[n] = ("e", r)
            continue
        dup = [(k, val) for k, val in r.ids.items() if (k, val) in state.seen]
        if dup:
            k, val = dup[0]
            results[n] = ("e", [RowError(n, k, "duplicate_row",
                                         f"row {state.seen[(k, val)]} has the same {k}")])
            continue
        for k, val in r.ids.items():
            state.seen[(k, val)] = n
        parsed.append(r)
    values = {val for r in parsed for val in r.ids.values()}
    owners: dict[tuple[str, str], int] = {}
    if values:
        for kind, value, cid in (await s.execute(
                select(CustomerIdentity.kind, CustomerIdentity.value,
                       CustomerIdentity.customer_id)
                .where(CustomerIdentity.value.in_(values)))).all():
            owners[(kind, value)] = int(cid)
    cids = set(owners.values())
    customers: dict[int, Any] = {}
    have: dict[int, set[tuple[str, str]]] = {}
    consents: dict[int, dict[str, bool]] = {}
    if cids:
        customers = {c.id: c for c in (await s.execute(
            select(Customer.id, Customer.first_name, Customer.last_name, Customer.erased_at)
            .where(Customer.id.in_(cids)))).all()}
        for cid, kind, value in (await s.execute(
                select(CustomerIdentity.customer_id, CustomerIdentity.kind,
                       CustomerIdentity.value)
                .where(CustomerIdentity.customer_id.in_(cids)))).all():
            have.setdefault(int(cid), set()).add((kind, value))
        for cid, kind, granted in (await s.execute(
                select(CustomerConsent.customer_id, CustomerConsent.kind,
                       CustomerConsent.granted)
                .where(CustomerConsent.customer_id.in_(cids))
                .order_by(CustomerConsent.id))).all():
            consents.setdefault(int(cid), {})[kind] = bool(granted)
    for r in parsed:
        found = {owners[(k, v)] for k, v in r.ids.items() if (k, v) in owners}
        if len(found) > 1:
            results[r.n] = ("e", [RowError(
                r.n, "phone", "different_customers",
                "the e-mail, phone or card belong to different customers "
                f"({', '.join(map(str, sorted(found)))}); merge them first")])
            continue
        if not found:
            results[r.n] = ("n", [])
            if write:
                results[r.n] = await _guarded(uow, r, "n", _create(uow, actor, r))
            continue
        [cid] = found
        c = customers[cid]
        if c.erased_at is not None:
            results[r.n] = ("e", [RowError(r.n, "email", "customer_erased",
                                           f"customer {cid} has been erased")])
            continue
        first = r.first or c.first_name
        last = r.last or c.last_name
        name_changed = (first, last) != (c.first_name, c.last_name)
        missing = [(k, v) for k, v in r.ids.items()
                   if (k, v) not in have.get(cid, set()) and k != "card"]
        current = consents.get(cid, {})
        changed = {k: g for k, g in r.consents.items()
                   if (k in current and current[k] != g) or (k not in current and g)}
        if r.ids.get("card") and ("card", r.ids["card"]) not in have.get(cid, set()):
            results[r.n] = ("e", [RowError(r.n, "card", "card_mismatch",
                                           f"customer {cid} has another loyalty card")])
            continue
        if not (name_changed or missing or changed):
            results[r.n] = ("=", [])
            continue
        results[r.n] = ("u", [])
        if write:
            results[r.n] = await _guarded(uow, r, "u", _update(
                uow, actor, r, cid, (first, last) if name_changed else None, missing,
                changed))
    return [results[n] for n, _ in rows]


async def _create(uow: UnitOfWork, actor: Actor, r: Row) -> None:
    out = await create_customer(uow, actor, CustomerIn(
        first_name=r.first, last_name=r.last, email=r.ids.get("email"),
        phone=r.ids.get("phone"), card=r.ids.get("card")))
    for kind, granted in r.consents.items():
        await set_consent(uow, out.id, kind, granted, r.source)


async def _update(uow: UnitOfWork, actor: Actor, r: Row, cid: int,
                  name: tuple[str, str] | None, missing: list[tuple[str, str]],
                  changed: dict[str, bool]) -> None:
    if name is not None:
        await update_name(uow, actor, cid, *name)
    for kind, value in missing:
        await add_identity(uow, actor, cid, kind, value)
    for kind, granted in changed.items():
        await set_consent(uow, cid, kind, granted, r.source)


async def _guarded(uow: UnitOfWork, r: Row, status: str,
                   write: Coroutine[Any, Any, None]) -> Result:
    """Write one row in a savepoint: a rule of the register that refuses it (an
    identity taken at this moment, too many e-mails) becomes the row's error and
    leaves the rest of the batch, and no event of the refused row is sent."""
    events = len(uow.events)
    try:
        async with uow.session.begin_nested():
            await write
    except DomainError as exc:
        del uow.events[events:]
        field = exc.field if exc.field in COLUMNS else "email"
        return "e", [RowError(r.n, field, exc.code, exc.detail)]
    return status, []


async def export_rows(session: AsyncSession, after_id: int, limit: int
                      ) -> tuple[int, list[list[object]]]:
    """The next `limit` customers after `after_id` (not merged away, not erased)."""
    custs = (await session.execute(
        select(Customer.id, Customer.first_name, Customer.last_name)
        .where(Customer.id > after_id, Customer.merged_into_id.is_(None),
               Customer.erased_at.is_(None))
        .order_by(Customer.id).limit(limit))).all()
    if not custs:
        return after_id, []
    ids = [c.id for c in custs]
    idents: dict[int, dict[str, str]] = {}
    for cid, kind, value in (await session.execute(
            select(CustomerIdentity.customer_id, CustomerIdentity.kind, CustomerIdentity.value)
            .where(CustomerIdentity.customer_id.in_(ids))
            .order_by(CustomerIdentity.id))).all():
        idents.setdefault(int(cid), {}).setdefault(kind, value)
    given: dict[int, dict[str, bool]] = {}
    source: dict[int, str] = {}
    for cid, kind, granted, channel in (await session.execute(
            select(CustomerConsent.customer_id, CustomerConsent.kind,
                   CustomerConsent.granted, CustomerConsent.channel)
            .where(CustomerConsent.customer_id.in_(ids))
            .order_by(CustomerConsent.id))).all():
        given.setdefault(int(cid), {})[kind] = bool(granted)
        source[int(cid)] = channel
    out: list[list[object]] = []
    for c in custs:
        i, g = idents.get(c.id, {}), given.get(c.id, {})
        out.append([excel_text(c.first_name), excel_text(c.last_name),
                    excel_text(i.get("email", "")), i.get("phone", ""),
                    i.get("card", ""),
                    *(format_bool(g[k]) if k in g else "" for k in CONSENT_KINDS),
                    excel_text(source.get(c.id, ""))])
    return custs[-1].id, out
