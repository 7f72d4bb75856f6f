"""Reserve to try: the rules. A shopper holds a unit at a store, without payment, until
the store closes on the next day (settings: try_hold_days, try_close_hour), at most
try_limit_per_customer at once. The unit is held by an inventory reservation (reference
``try:<code>``), so web, till and API all see it as taken.

One lifecycle: active → sold (the till sale consumes the held unit) | released (the
cashier, or the shopper) | expired (a no-show, released by the background job with a
friendly note). Each move is one transaction with an outbox event and an audit entry.
Services take the caller's unit of work and never commit.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.models import Product, Variant
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, OutOfStock, ValidationFailed
from saumaton.customers.buyers import CustomerErased, buyer_id
from saumaton.customers.identities import normalise_email, normalise_phone
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import availability
from saumaton.inventory.services import release as release_hold
from saumaton.inventory.services import reserve as reserve_stock
from saumaton.locations.models import Location
from saumaton.tryon.models import TryReservation

CODE_PREFIX = "KT"  # "kokeilu": the code the shopper shows at the till
CODE_ALPHABET = "ACDEFHJKLMNPRTUVWXY347"  # no look-alikes (0/O, 1/I, 2/Z, 5/S, 6/G, 8/B)
CODE_LENGTH = 6
FIND_LIMIT = 20
TRY_EXPIRY = Actor(label="system:try expiry", name="system", system=True)


class TryStatus(enum.StrEnum):
    ACTIVE = "active"
    SOLD = "sold"
    RELEASED = "released"
    EXPIRED = "expired"


ALLOWED: dict[TryStatus, frozenset[TryStatus]] = {
    TryStatus.ACTIVE: frozenset({TryStatus.SOLD, TryStatus.RELEASED, TryStatus.EXPIRED}),
    TryStatus.SOLD: frozenset(),
    TryStatus.RELEASED: frozenset(),
    TryStatus.EXPIRED: frozenset(),
}


def can_move(src: TryStatus, dst: TryStatus) -> bool:
    return dst in ALLOWED[src]


@dataclass(frozen=True)
class TryIn:
    variant_id: int
    location_id: int
    name: str = ""
    phone: str = ""
    email: str = ""
    customer_id: int | None = None
    language: str = "fi"


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str  # a msgid: the page translates it


class TryInputInvalid(ValidationFailed):
    """Every problem of the form at once; nothing was changed."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors), code=errors[0].code,
                         field=errors[0].field,
                         extra={"errors": [e.__dict__ for e in errors]})
        self.errors = errors


@dataclass(frozen=True)
class TryOut:
    id: int
    code: str
    variant_id: int
    location_id: int
    customer_id: int | None
    name: str
    phone: str
    email: str
    language: str
    status: str
    expires_at: datetime
    created_at: datetime
    order_id: int | None
    closed_at: datetime | None = None


def _out(r: TryReservation) -> TryOut:
    return TryOut(r.id, r.code, r.variant_id, r.location_id, r.customer_id, r.name,
                  r.phone, r.email, r.language, r.status, r.expires_at, r.created_at,
                  r.order_id, r.closed_at)


def hold_until(now: datetime, settings: Settings) -> datetime:
    """The end of the hold: try_close_hour local time, try_hold_days after today; if that
    has already passed (hold 0 days, reserved after closing), the next day's closing."""
    tz = ZoneInfo(settings.timezone)
    local = now.astimezone(tz)
    day = local.date() + timedelta(days=settings.try_hold_days)
    hour = settings.try_close_hour
    end = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(hours=hour)
    if end <= now:
        day = day + timedelta(days=1)
        end = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(hours=hour)
    return end


def new_code() -> str:
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return code.strip().replace(" ", "").replace("-", "").upper()


def _check(cmd: TryIn) -> tuple[str, str, str]:
    errors: list[FieldError] = []
    name = " ".join(cmd.name.split())
    phone = email = ""
    if cmd.customer_id is None and not name:
        errors.append(FieldError("name", "name_required", "Give your name."))
    if len(name) > 200:
        errors.append(FieldError("name", "name_too_long", "The name is too long."))
    if cmd.phone.strip():
        try:
            phone = normalise_phone(cmd.phone)
        except ValidationFailed:
            errors.append(FieldError("phone", "invalid_phone", "Check the phone number."))
    if cmd.email.strip():
        try:
            email = normalise_email(cmd.email)
        except ValidationFailed:
            errors.append(FieldError("email", "invalid_email", "Check the e-mail address."))
    if (cmd.customer_id is None and not cmd.phone.strip() and not cmd.email.strip()):
        errors.append(FieldError("phone", "contact_required",
                                 "Give a phone number or an e-mail address."))
    if errors:
        raise TryInputInvalid(errors)
    return name, phone, email


async def _active_count(uow: UnitOfWork, customer_id: int | None, phone: str,
                        email: str) -> int:
    who = []
    if customer_id is not None:
        who.append(TryReservation.customer_id == customer_id)
    if phone:
        who.append(TryReservation.phone == phone)
    if email:
        who.append(TryReservation.email == email)
    if not who:
        return 0
    n = await uow.session.scalar(select(func.count()).select_from(TryReservation).where(
        TryReservation.status == TryStatus.ACTIVE.value, or_(*who)))
    return int(n or 0)


async def reserve_once(uow: UnitOfWork, actor: Actor, cmd: TryIn, key: str, *,
                       settings: Settings) -> tuple[TryOut, bool]:
    """`reserve` for a caller that may retry (the API's Idempotency-Key): (reservation,
    replayed). The same key again returns the first reservation whatever became of it;
    for another product or store, 409 ``idempotency_key_reused``. Two retries at the
    same moment: the unique key lets one insert win (the caller re-reads on conflict)."""
    seen = (await uow.session.scalars(select(TryReservation).where(
        TryReservation.idempotency_key == key))).first()
    if seen is not None:
        if (seen.variant_id, seen.location_id) != (cmd.variant_id, cmd.location_id):
            raise Conflict("this Idempotency-Key was used for a different request",
                           code="idempotency_key_reused")
        return _out(seen), True
    return await reserve(uow, actor, cmd, settings=settings, key=key), False


async def reserve(uow: UnitOfWork, actor: Actor, cmd: TryIn, *, settings: Settings,
                  now: datetime | None = None, notify: bool = True,
                  key: str | None = None) -> TryOut:
    """Hold one unit of the variant at the store for the shopper. Bad input raises
    `TryInputInvalid` (every field at once); no unit free: `OutOfStock` with the code
    ``try_unavailable``; over the limit: `Conflict` ``try_limit``."""
    name, phone, email = _check(cmd)
    now = now or utcnow()
    s = uow.session
    loc = await s.get(Location, cmd.location_id)
    if loc is None or loc.kind != "store":
        raise TryInputInvalid([FieldError("location_id", "invalid_store", "Choose a store.")])
    vrow = (await s.execute(select(Variant.id, Product.name).join(
        Product, Product.id == Variant.product_id).where(Variant.id == cmd.variant_id))).first()
    if vrow is None:
        raise NotFound("no such product", code="variant_not_found", field="variant_id")
    if cmd.customer_id is not None:
        c = await s.get(Customer, cmd.customer_id)
        if c is None:
            raise NotFound("no such customer", code="customer_not_found")
        name = name or f"{c.first_name} {c.last_name}".strip()
    if uow.db.is_postgres:
        # Two reservations of one shopper at once: the second counts after the first
        # committed (SQLite's writers are serialised anyway: BEGIN IMMEDIATE).
        for who in sorted(k for k in (f"c:{cmd.customer_id}" if cmd.customer_id else "",
                                      f"p:{phone}" if phone else "",
                                      f"e:{email}" if email else "") if k):
            await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                      {"k": f"try-limit:{who}"})
    if await _active_count(uow, cmd.customer_id, phone, email) >= \
            settings.try_limit_per_customer:
        raise Conflict("you already hold the most reservations to try at once",
                       code="try_limit", field="variant_id",
                       extra={"limit": settings.try_limit_per_customer})
    code = new_code()
    until = hold_until(now, settings)
    try:
        hold_id = await reserve_stock(uow, actor, cmd.variant_id, cmd.location_id, 1,
                                      reference=f"try:{code}", ttl=until - now, now=now)
    except OutOfStock as e:
        raise OutOfStock("the store has no unit free to reserve any more",
                         code="try_unavailable", field="location_id",
                         extra={"variant_id": cmd.variant_id,
                                "location_id": cmd.location_id}) from e
    row = TryReservation(code=code, variant_id=cmd.variant_id, location_id=cmd.location_id,
                         stock_reservation_id=hold_id, customer_id=cmd.customer_id,
                         name=name, phone=phone, email=email,
                         language=cmd.language if cmd.language in ("fi", "en") else "fi",
                         status=TryStatus.ACTIVE.value, expires_at=until, created_at=now,
                         closed_by="", quantity=1, idempotency_key=key)
    s.add(row)
    await s.flush()
    out = _out(row)
    if notify and out.email:
        from saumaton.mail.queue import queue_mail
        from saumaton.tryon.mail import reserved_note

        m = await reserved_note(s, out, settings)
        await queue_mail(uow, kind="try_reserved", to=out.email, subject=m.subject,
                         text=m.text, html=m.html, reference=f"try:{out.code}")
    _event(uow, "try.reserved", out)
    await record(uow, actor, "try.reserved", "try_reservation", row.id,
                 {"code": code, "variant_id": cmd.variant_id,
                  "location_id": cmd.location_id})
    return out


def _event(uow: UnitOfWork, topic: str, r: TryOut) -> None:
    uow.emit(topic, {"id": r.id, "code": r.code, "variant_id": r.variant_id,
                     "location_id": r.location_id, "customer_id": r.customer_id,
                     "status": r.status, "expires_at": r.expires_at.isoformat(),
                     "order_id": r.order_id})


async def _move(uow: UnitOfWork, actor: Actor, try_id: int, dst: TryStatus, now: datetime,
                order_id: int | None = None) -> TryOut | None:
    """ACTIVE → dst as one conditional UPDATE (a concurrent move wins or loses whole),
    the unit's hold closed, the event and the audit entry. None if it was not active."""
    assert can_move(TryStatus.ACTIVE, dst)
    res = await uow.session.execute(
        update(TryReservation)
        .where(TryReservation.id == try_id,
               TryReservation.status == TryStatus.ACTIVE.value)
        .values(status=dst.value, closed_at=now, closed_by=actor.label, order_id=order_id)
        .returning(TryReservation.stock_reservation_id)
        .execution_options(synchronize_session=False))
    hold = res.scalar_one_or_none()
    if hold is None:
        return None
    # The hold may have lapsed in inventory's own sweep a moment before: then it is
    # already given back, and closing it again is a no-op.
    await release_hold(uow, int(hold))
    r = await uow.session.get(TryReservation, try_id, populate_existing=True)
    assert r is not None
    out = _out(r)
    _event(uow, f"try.{dst.value}", out)
    await record(uow, actor, f"try.{dst.value}", "try_reservation", try_id,
                 {"code": r.code, "order_id": order_id})
    return out


async def _get(uow: UnitOfWork, try_id: int, location_id: int | None) -> TryReservation:
    r = await uow.session.get(TryReservation, try_id)
    if r is None or (location_id is not None and r.location_id != location_id):
        raise NotFound("no such reservation to try", code="try_not_found")
    return r


async def get(session: AsyncSession, try_id: int, location_id: int) -> TryOut:
    """One reservation of the store (404 ``try_not_found`` for another store's)."""
    r = await session.get(TryReservation, try_id)
    if r is None or r.location_id != location_id:
        raise NotFound("no such reservation to try", code="try_not_found")
    return _out(r)


async def release(uow: UnitOfWork, actor: Actor, try_id: int, *,
                  location_id: int | None = None) -> TryOut:
    """The cashier (or the shopper) gives the unit back to the shelf."""
    if location_id is not None:
        actor.require("orders.create", location_id)
    r = await _get(uow, try_id, location_id)
    out = await _move(uow, actor, try_id, TryStatus.RELEASED, utcnow())
    if out is None:
        raise Conflict(f"the reservation is already {r.status}", code="try_closed",
                       extra={"status": r.status})
    return out


async def sell(uow: UnitOfWork, actor: Actor, try_id: int, *, order_id: int,
               location_id: int, variant_ids: set[int]) -> TryOut:
    """Inside the till sale that records the unit (a non-strict "sale" movement of its
    line): the hold is closed, so the unit leaves on-hand stock once, and the
    reservation becomes that sale."""
    r = await _get(uow, try_id, location_id)
    if r.variant_id not in variant_ids:
        raise ValidationFailed("the sale has no line of the reserved product",
                               code="try_not_in_sale", field="try_ids")
    out = await _move(uow, actor, try_id, TryStatus.SOLD, utcnow(), order_id=order_id)
    if out is None:
        raise Conflict(f"the reservation is already {r.status}", code="try_closed",
                       extra={"status": r.status})
    return out


async def reserved_for(session: AsyncSession, try_ids: Sequence[int], location_id: int
                       ) -> int | None:
    """The customer of the register a till sale of these reservations (this store's) is
    for when the cashier chose nobody: who reserved — signed in, her own record; a guest,
    the customer who owns the e-mail address she gave, else her phone number (each is one
    customer's at most). A merged customer's kept record. None when no reservation names
    a registered customer, when they name different ones (or a guest's e-mail and phone
    are two customers'), or when she was erased: the cashier attaches whom she finds.
    Any status: an offline sale synced after the hold lapsed was still hers."""
    if not try_ids:
        return None
    rows = (await session.execute(
        select(TryReservation.customer_id, TryReservation.email, TryReservation.phone)
        .where(TryReservation.id.in_(sorted(set(try_ids))),
               TryReservation.location_id == location_id))).all()
    found: set[int] = set()
    for customer_id, email, phone in rows:
        if customer_id is not None:
            owners = {int(customer_id)}
        else:
            contacts = [(k, v) for k, v in (("email", email), ("phone", phone)) if v]
            if not contacts:
                continue
            owners = {int(c) for c in (await session.scalars(
                select(CustomerIdentity.customer_id).where(or_(*[
                    (CustomerIdentity.kind == k) & (CustomerIdentity.value == v)
                    for k, v in contacts])))).all()}
            if len(owners) != 1:  # nobody, or her e-mail and phone are two customers'
                if owners:
                    return None
                continue
        found |= owners
    if len(found) != 1:
        return None
    try:
        return await buyer_id(session, found.pop())
    except CustomerErased:  # no new sale goes to an erased record
        return None


async def check_not_held(uow: UnitOfWork, location_id: int,
                         lines: list[tuple[int, int, int]], sold_tries: list[int],
                         now: datetime | None = None) -> None:
    """An online till sale of the store's own units [(line index, variant, quantity)]
    leaves on the shelf at least the units held there for reservations to try (other
    than `sold_tries`, the ones this sale sells). Else 409 ``try_held`` with the codes:
    the cashier sells it with its reservation or releases that first. On PostgreSQL the
    levels are locked first, so a reservation made at this very moment waits for the
    sale and then finds no unit (409 ``try_unavailable``): of the two, exactly one wins.
    Before any charge; an offline sale (the item already went) is never checked."""
    wanted: dict[int, int] = {}
    first: dict[int, int] = {}
    for i, vid, qty in lines:
        wanted[vid] = wanted.get(vid, 0) + qty
        first.setdefault(vid, i)
    if not wanted:
        return
    now = now or utcnow()
    q = (select(StockLevel.variant_id, StockLevel.on_hand)
         .where(StockLevel.location_id == location_id,
                StockLevel.variant_id.in_(sorted(wanted)))
         .order_by(StockLevel.variant_id))
    if uow.db.is_postgres:
        q = q.with_for_update()
    on_hand = {int(v): int(n) for v, n in await uow.session.execute(q)}
    held_q = (select(TryReservation.variant_id, TryReservation.code)
              .where(TryReservation.location_id == location_id,
                     TryReservation.status == TryStatus.ACTIVE.value,
                     TryReservation.expires_at > now,
                     TryReservation.variant_id.in_(sorted(wanted))))
    if sold_tries:
        held_q = held_q.where(TryReservation.id.not_in(sold_tries))
    held: dict[int, list[str]] = {}
    for vid, code in await uow.session.execute(held_q.order_by(TryReservation.expires_at)):
        held.setdefault(int(vid), []).append(str(code))
    for vid, codes in held.items():
        if on_hand.get(vid, 0) - wanted[vid] < len(codes):
            raise Conflict("the unit is reserved to try: sell it with its reservation or "
                           "release that first", code="try_held",
                           field=f"lines.{first[vid]}",
                           extra={"variant_id": vid, "codes": codes})


async def expire_due(uow: UnitOfWork, settings: Settings, now: datetime | None = None,
                     limit: int = 200) -> list[TryOut]:
    """No-shows: past their hold, released, and a friendly note queued to each one with an
    e-mail address. Safe in several processes: rows claimed FOR UPDATE SKIP LOCKED, and
    each moved by a conditional UPDATE."""
    from saumaton.mail.queue import queue_mail
    from saumaton.tryon.mail import released_note

    now = now or utcnow()
    q = (select(TryReservation.id)
         .where(TryReservation.status == TryStatus.ACTIVE.value,
                TryReservation.expires_at <= now)
         .order_by(TryReservation.expires_at).limit(limit))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True)
    ids = list((await uow.session.scalars(q)).all())
    done: list[TryOut] = []
    for tid in ids:
        out = await _move(uow, TRY_EXPIRY, tid, TryStatus.EXPIRED, now)
        if out is None:
            continue
        done.append(out)
        if out.email:
            m = await released_note(uow.session, out, settings)
            await queue_mail(uow, kind="try_released", to=out.email, subject=m.subject,
                             text=m.text, html=m.html, reference=f"try:{out.code}")
    return done


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantName:
    product: str
    variant: str
    ean: str
    sku: str

    @property
    def code(self) -> str:  # what the till's code field takes
        return self.ean or self.sku


@dataclass(frozen=True)
class StoreChoice:
    location_id: int
    code: str
    name: str
    available: int


async def variant_names(session: AsyncSession, variant_ids: list[int]
                        ) -> dict[int, VariantName]:
    """What the till and the shopper's pages show of a reserved variant."""
    if not variant_ids:
        return {}
    rows = await session.execute(
        select(Variant.id, Product.name, Variant.name, Variant.ean, Variant.sku)
        .join(Product, Product.id == Variant.product_id).where(Variant.id.in_(variant_ids)))
    return {int(v): VariantName(str(p), str(n or ""), str(e or ""), str(sku))
            for v, p, n, e, sku in rows}


async def store_choices(session: AsyncSession, variant_id: int) -> list[StoreChoice]:
    """The stores where a unit of the variant is free to reserve now."""
    found = (await availability(session, [variant_id])).get(variant_id)
    if found is None:
        return []
    return [StoreChoice(loc.location_id, loc.code, loc.name, loc.available)
            for loc in found.locations if loc.kind == "store" and loc.available > 0]


async def get_by_code(session: AsyncSession, code: str) -> TryOut | None:
    r = (await session.scalars(select(TryReservation).where(
        TryReservation.code == normalise_code(code)))).first()
    return None if r is None else _out(r)


async def find(session: AsyncSession, location_id: int, q: str) -> list[TryOut]:
    """The store's active reservations matching a code, a phone number or a name."""
    q = q.strip()
    base = select(TryReservation).where(TryReservation.location_id == location_id,
                                        TryReservation.status == TryStatus.ACTIVE.value)
    conds = [TryReservation.code == normalise_code(q)]
    if sum(ch.isdigit() for ch in q) >= 6:
        try:
            conds.append(TryReservation.phone == normalise_phone(q))
        except ValidationFailed:
            pass
    if len(q) >= 2:
        conds.append(func.lower(TryReservation.name).contains(q.lower(), autoescape=True))
        conds.append(TryReservation.email == q.lower())
    rows = (await session.scalars(base.where(or_(*conds))
                                      .order_by(TryReservation.expires_at)
                                      .limit(FIND_LIMIT))).all()
    return [_out(r) for r in rows]


async def store_list(session: AsyncSession, location_id: int, limit: int = 200
                     ) -> list[TryOut]:
    rows = (await session.scalars(select(TryReservation).where(
        TryReservation.location_id == location_id,
        TryReservation.status == TryStatus.ACTIVE.value)
        .order_by(TryReservation.expires_at).limit(limit))).all()
    return [_out(r) for r in rows]


async def list_reservations(session: AsyncSession, location_ids: list[int] | None, *,
                            status: str = "", before_id: int | None = None,
                            limit: int = 50) -> list[TryOut]:
    """Reservations newest first (the API's list): of the given stores (None: every
    store), in one status if given; `before_id` pages on."""
    q = select(TryReservation)
    if location_ids is not None:
        q = q.where(TryReservation.location_id.in_(location_ids))
    if status:
        q = q.where(TryReservation.status == status)
    if before_id is not None:
        q = q.where(TryReservation.id < before_id)
    rows = (await session.scalars(q.order_by(TryReservation.id.desc()).limit(limit))).all()
    return [_out(r) for r in rows]


async def recently_closed(session: AsyncSession, location_id: int, since: datetime,
                          limit: int = 50) -> list[TryOut]:
    """The store's reservations closed since `since` (sold, released, not collected),
    the latest first: the cashier sees what became of a no-show."""
    rows = (await session.scalars(select(TryReservation).where(
        TryReservation.location_id == location_id, TryReservation.closed_at >= since)
        .order_by(TryReservation.closed_at.desc()).limit(limit))).all()
    return [_out(r) for r in rows]


async def for_customer(session: AsyncSession, customer_id: int, limit: int = 50
                       ) -> list[TryOut]:
    rows = (await session.scalars(select(TryReservation).where(
        TryReservation.customer_id == customer_id)
        .order_by(TryReservation.created_at.desc()).limit(limit))).all()
    return [_out(r) for r in rows]
