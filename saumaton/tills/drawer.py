"""The cash drawer: open a register's session with a float, put cash in or take it out
with a reason, close with the counted cash and get the Z report.

A register has at most one open session (a partial unique index says so too).
Opening and cash movements are idempotent on the till's key: a double tap or a
retried request changes nothing twice. Closing locks the session row (so a cash
movement or a sale in flight either lands before the report is computed or is
refused after) and the store's row (so two registers closing at once get
consecutive Z numbers).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.idempotency import IdempotencyRecord, fingerprint
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Location
from saumaton.tills.models import CashMovement, DrawerSession, Register
from saumaton.tills.zreport import ZReport, compute_report

DEFAULT_REGISTER = "Kassa 1"
MAX_CENTS = 10_000_000  # 100 000 € in one drawer is surely a typo
MAX_KEY = 200
_OPEN_SCOPE = "drawer.open"


class DrawerOut(BaseModel):
    id: int
    register_id: int
    register_name: str
    location_id: int
    float_cents: int
    opened_by: str
    opened_at: datetime
    status: str = "open"


class CashMovementOut(BaseModel):
    id: int
    session_id: int
    kind: str
    amount_cents: int
    reason: str
    created_by: str
    created_at: datetime


def _drawer_out(ds: DrawerSession, register: Register) -> DrawerOut:
    return DrawerOut(id=ds.id, register_id=register.id, register_name=register.name,
                     location_id=ds.location_id, float_cents=ds.float_cents,
                     opened_by=ds.opened_by, opened_at=ds.opened_at, status=ds.status)


def _movement_out(m: CashMovement) -> CashMovementOut:
    return CashMovementOut(id=m.id, session_id=m.session_id, kind=m.kind,
                           amount_cents=m.amount_cents, reason=m.reason,
                           created_by=m.created_by, created_at=m.created_at)


def _check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY:
        raise ValidationFailed("an idempotency key of 1 to 200 characters is needed",
                               code="invalid_key", field="key")
    return key


def _check_cents(value: int | None, field: str, *, positive: bool) -> int:
    if value is None:
        raise ValidationFailed(f"{field}: enter an amount", code="amount_required", field=field)
    if value < (1 if positive else 0) or value > MAX_CENTS:
        raise ValidationFailed(f"{field}: {value} is out of range", code="invalid_amount",
                               field=field)
    return value


async def _location(s: AsyncSession, location_id: int) -> Location:
    location = await s.get(Location, location_id)
    if location is None:
        raise NotFound(f"no location {location_id}", code="location_not_found")
    return location


async def ensure_register(uow: UnitOfWork, location_id: int) -> Register:
    """The store's first active register, created as "Kassa 1" if it has none."""
    s = uow.session
    query = (select(Register).where(Register.location_id == location_id,
                                    Register.active.is_(True)).order_by(Register.id).limit(1))
    register = await s.scalar(query)
    if register is not None:
        return register
    # Two first openings at once must not make two registers: lock the store's row.
    await s.execute(select(Location.id).where(Location.id == location_id)
                    .with_for_update(key_share=True))
    await _location(s, location_id)
    register = await s.scalar(query.execution_options(populate_existing=True))
    if register is None:
        register = Register(location_id=location_id, name=DEFAULT_REGISTER, active=True,
                            created_at=utcnow())
        s.add(register)
        await s.flush()
    return register


async def open_session_at(session: AsyncSession, location_id: int) -> DrawerOut | None:
    """The open drawer session of the store's register (its first active one, the one
    `open_session` opens), if any."""
    register = await session.scalar(
        select(Register).where(Register.location_id == location_id, Register.active.is_(True))
        .order_by(Register.id).limit(1))
    if register is None:
        return None
    ds = await session.scalar(select(DrawerSession).where(
        DrawerSession.register_id == register.id, DrawerSession.status == "open"))
    return None if ds is None else _drawer_out(ds, register)


async def open_session(uow: UnitOfWork, actor: Actor, location_id: int, float_cents: int,
                       key: str) -> DrawerOut:
    """Open the store's register with `float_cents` in the drawer. The same key again
    returns the same session; another open while one is open is refused (409
    `drawer_already_open`)."""
    actor.require("orders.create", location_id)
    _check_key(key)
    _check_cents(float_cents, "float", positive=False)
    s = uow.session
    scope = f"{_OPEN_SCOPE}:{location_id}"
    request_hash = fingerprint(f"{location_id}:{float_cents}")

    async def replay() -> DrawerOut | None:
        rec = await s.get(IdempotencyRecord, (scope, key), populate_existing=True)
        if rec is None:
            return None
        if rec.request_hash != request_hash:
            raise Conflict("this key was used to open the drawer with another float",
                           code="idempotency_key_reused", field="float")
        ds = await s.get(DrawerSession, int(rec.response["session_id"]))
        assert ds is not None
        register = await s.get(Register, ds.register_id)
        assert register is not None
        return _drawer_out(ds, register)

    again = await replay()
    if again is not None:
        return again
    register = await ensure_register(uow, location_id)
    now = utcnow()
    ds = DrawerSession(register_id=register.id, location_id=location_id, status="open",
                       float_cents=float_cents, opened_by=actor.name or actor.label,
                       opened_at=now, closed_by="", note="")
    try:
        async with s.begin_nested():
            s.add(ds)
            await s.flush()
            s.add(IdempotencyRecord(scope=scope, key=key, request_hash=request_hash,
                                    response={"session_id": ds.id}, created_at=now))
            await s.flush()
    except IntegrityError:
        # A twin with the same key won (return its session), or another session is open.
        again = await replay()
        if again is not None:
            return again
        raise Conflict(f"{register.name} is already open", code="drawer_already_open",
                       field="float") from None
    return _drawer_out(ds, register)


async def _locked_session(uow: UnitOfWork, actor: Actor, session_id: int,
                          location_id: int | None) -> DrawerSession:
    ds = await uow.session.scalar(
        select(DrawerSession).where(DrawerSession.id == session_id)
        .with_for_update().execution_options(populate_existing=True))
    if ds is None or (location_id is not None and ds.location_id != location_id):
        raise NotFound(f"no drawer session {session_id}", code="drawer_not_found")
    actor.require("orders.create", ds.location_id)
    return ds


async def cash_movement(uow: UnitOfWork, actor: Actor, session_id: int, kind: str,
                        amount_cents: int | None, reason: str, key: str, *,
                        location_id: int | None = None) -> CashMovementOut:
    """Put cash into (`in`) or take it out of (`out`) an open drawer, with the reason.
    The same key again returns the first movement. Given `location_id`, a session of
    another store is not found."""
    _check_key(key)
    s = uow.session
    existing = await s.scalar(select(CashMovement).where(CashMovement.idempotency_key == key))
    if existing is not None:
        # The caller's permission first: a replay answers only who may move this cash.
        where = await s.scalar(select(DrawerSession.location_id).where(
            DrawerSession.id == existing.session_id))
        actor.require("orders.create", where)
        return _replayed_movement(existing, session_id, kind, amount_cents)
    ds = await _locked_session(uow, actor, session_id, location_id)
    if kind not in ("in", "out"):
        raise ValidationFailed(f"kind {kind!r} is not in or out", code="invalid_kind",
                               field="kind")
    amount = _check_cents(amount_cents, "amount", positive=True)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationFailed("give a reason", code="reason_required", field="reason")
    if len(reason) > 200:
        raise ValidationFailed("the reason is too long", code="reason_too_long",
                               field="reason")
    if ds.status != "open":
        raise Conflict(f"drawer session {session_id} is closed", code="drawer_closed")
    m = CashMovement(session_id=ds.id, kind=kind, amount_cents=amount, reason=reason,
                     created_by=actor.name or actor.label, created_at=utcnow(),
                     idempotency_key=key)
    try:
        async with s.begin_nested():
            s.add(m)
            await s.flush()
    except IntegrityError:
        twin = await s.scalar(select(CashMovement).where(CashMovement.idempotency_key == key)
                              .execution_options(populate_existing=True))
        if twin is None:
            raise
        return _replayed_movement(twin, session_id, kind, amount_cents)
    return _movement_out(m)


def _replayed_movement(m: CashMovement, session_id: int, kind: str,
                       amount_cents: int | None) -> CashMovementOut:
    if (m.session_id, m.kind, m.amount_cents) != (session_id, kind, amount_cents):
        raise Conflict("this key was used for another cash movement",
                       code="idempotency_key_reused")
    return _movement_out(m)


async def close_session(uow: UnitOfWork, actor: Actor, session_id: int,
                        counted_cents: int | None, note: str = "", *,
                        location_id: int | None = None,
                        confirm_over_cents: int | None = None) -> ZReport:
    """Close the drawer with the cash counted in it: the Z report is computed, given the
    store's next Z number and stored on the session for reprints. Given `location_id`,
    a session of another store is not found. Given `confirm_over_cents`, a count that
    differs from the expected cash by more than that is refused with 422
    `difference_needs_confirmation` (count again, then confirm: call without it)."""
    s = uow.session
    ds = await _locked_session(uow, actor, session_id, location_id)
    if ds.status != "open":
        raise Conflict(f"drawer session {session_id} is already closed", code="drawer_closed")
    if counted_cents is None:
        raise ValidationFailed("enter the cash counted in the drawer", code="count_required",
                               field="counted")
    if counted_cents < 0 or counted_cents > MAX_CENTS:
        raise ValidationFailed(f"a count of {counted_cents} is not possible",
                               code="invalid_count", field="counted")
    note = note.strip()
    if len(note) > 500:
        raise ValidationFailed("the note is too long", code="note_too_long", field="note")
    # One Z number at a time per store (FOR NO KEY UPDATE: sales referencing the store
    # are not blocked); the unique (location_id, z_number) index is the backstop.
    await s.execute(select(Location.id).where(Location.id == ds.location_id)
                    .with_for_update(key_share=True))
    last = await s.scalar(select(func.max(DrawerSession.z_number))
                          .where(DrawerSession.location_id == ds.location_id))
    now = utcnow()
    ds.status = "closed"
    ds.closed_by = actor.name or actor.label
    ds.closed_at = now
    ds.counted_cents = counted_cents
    ds.note = note
    ds.z_number = (last or 0) + 1
    report = await compute_report(s, ds, now=now)
    difference = counted_cents - report.expected_cents
    if confirm_over_cents is not None and abs(difference) > confirm_over_cents:
        # Nothing is kept: the caller's unit of work is rolled back.
        raise ValidationFailed(
            f"the count differs from the expected cash by {difference} cents",
            code="difference_needs_confirmation", field="counted",
            extra={"difference_cents": difference, "expected_cents": report.expected_cents})
    ds.expected_cents = report.expected_cents
    ds.z_report = report.model_dump(mode="json")
    await s.flush()
    return report
