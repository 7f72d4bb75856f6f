"""The points ledger: one balance per customer across every channel.

Every change is an append-only `LoyaltyEntry` with a unique `key`, so each write is
idempotent: an offline sale synced twice, a payment callback delivered three times
or a till that sends the same payment again earn or spend once.

- earn: a paid (or completed) order of an identified customer earns
  `loyalty_points_per_euro` per whole euro of its goods (delivery fee and the part
  paid with points excluded); the points lapse `loyalty_points_valid_days` later.
- redeem: points pay for a purchase (`loyalty_point_value_cents` each), never more
  than the balance; the customer row is locked so two tills cannot spend the same
  points.
- reverse: a refund takes back the points earned for the refunded part.
- refund: points spent on an order that is then cancelled unpaid come back.
- expire: earned points not used by their expiry are written off, first in first
  out (the oldest points are used first), by `expire_due` (a background job every
  hour and `saumaton loyalty expire`).

Every entry emits `loyalty.changed` with the customer id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.customers.models import Customer
from saumaton.db.uow import Database, UnitOfWork
from saumaton.locations.models import Channel
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.orders.lifecycle import SOLD
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment

log = logging.getLogger(__name__)

# Orders that are purchases (the same as the customer card's figures).
PURCHASE_STATUSES = tuple(SOLD)
POINTS_METHOD = "points"
HISTORY_LIMIT = 50
EXPIRY_EVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class EntryOut:
    id: int
    kind: str
    points: int
    order_id: int | None
    channel: str
    reason: str
    expires_at: datetime | None
    created_at: datetime


def points_for(amount_cents: int, settings: Settings | None = None) -> int:
    """Points earned for `amount_cents` of goods: per whole euro. `settings`: the
    caller's current settings (the owner may change the rate in the back office)."""
    rate = (settings or get_settings()).loyalty_points_per_euro
    return max(0, amount_cents) // 100 * rate


def points_value_cents(points: int, settings: Settings | None = None) -> int:
    return points * (settings or get_settings()).loyalty_point_value_cents


async def balance(session: AsyncSession, customer_id: int, at: datetime | None = None) -> int:
    """The customer's points: the sum of their entries (lapsed points are already
    written off as `expire` entries), as of `at` if given."""
    q = select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
        LoyaltyEntry.customer_id == customer_id)
    if at is not None:
        q = q.where(LoyaltyEntry.created_at <= at)
    return int(await session.scalar(q) or 0)


async def history(session: AsyncSession, customer_id: int,
                  limit: int = HISTORY_LIMIT) -> list[EntryOut]:
    """Newest first."""
    rows = (await session.scalars(
        select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id,
                                   LoyaltyEntry.points != 0)
        .order_by(LoyaltyEntry.id.desc()).limit(limit))).all()
    return [EntryOut(r.id, r.kind, r.points, r.order_id, r.channel, r.reason, r.expires_at,
                     r.created_at) for r in rows]


async def _write(uow: UnitOfWork, *, customer_id: int, kind: str, points: int, key: str,
                 order_id: int | None = None, channel: str = "", reason: str = "",
                 expires_at: datetime | None = None, created_by: str = "",
                 now: datetime | None = None) -> int | None:
    """Append one entry; None if its key was written before (nothing changes). A
    0-point entry (a lapsed lot that was used up) only marks the lot as handled."""
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(LoyaltyEntry)
    entry_id = await uow.session.scalar(ins.values(
        customer_id=customer_id, kind=kind, points=points, order_id=order_id,
        channel=channel[:32], reason=reason[:200], expires_at=expires_at, key=key,
        created_by=created_by[:200], created_at=now or utcnow(),
    ).on_conflict_do_nothing().returning(LoyaltyEntry.id))
    if entry_id is None:
        return None
    if points == 0:
        return int(entry_id)
    uow.emit("loyalty.changed", {"customer_id": customer_id, "kind": kind, "points": points,
                                 "order_id": order_id})
    return int(entry_id)


async def _lock_customer(uow: UnitOfWork, customer_id: int) -> None:
    """Serialise spending of one customer's points (PostgreSQL row lock; SQLite
    writers queue anyway)."""
    q = select(Customer.id).where(Customer.id == customer_id)
    if uow.db.is_postgres:
        # NO KEY UPDATE: an order of this customer written earlier in the same
        # transaction holds KEY SHARE on the row; two such sales must queue, not
        # deadlock.
        q = q.with_for_update(key_share=True)
    if await uow.session.scalar(q) is None:
        raise ValidationFailed(f"no customer {customer_id}", code="unknown_customer",
                               field="customer_id")


# --- earning ---------------------------------------------------------------------------

async def earn_for_order(uow: UnitOfWork, order_id: int, now: datetime | None = None, *,
                         settings: Settings | None = None) -> int:
    """Points for a paid or completed order of an identified customer; idempotent by
    the key `earn:order:{id}`. Returns the points written now (0: none due, or
    written before)."""
    s = uow.session
    row = (await s.execute(
        select(Order.customer_id, Order.status, Order.total_cents, Order.delivery_fee_cents,
               Channel.code)
        .join(Channel, Channel.id == Order.channel_id).where(Order.id == order_id))).first()
    if row is None:
        return 0
    customer_id, status, total, fee, channel = row
    if customer_id is None or status not in PURCHASE_STATUSES:
        return 0
    # A gift card bought earns nothing: the goods it pays for later earn the points.
    with_points, gift_cards = (await s.execute(select(
        select(func.coalesce(func.sum(Payment.amount_cents), 0))
        .where(Payment.order_id == order_id, Payment.method == POINTS_METHOD)
        .scalar_subquery(),
        select(func.coalesce(func.sum(OrderLine.total_cents), 0))
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(OrderLine.order_id == order_id, Product.gift_card).scalar_subquery()))).one()
    with_points, gift_cards = int(with_points or 0), int(gift_cards or 0)
    settings = settings or get_settings()
    points = points_for(int(total) - int(fee or 0) - with_points - gift_cards, settings)
    if points <= 0:
        return 0
    now = now or utcnow()
    valid = timedelta(days=settings.loyalty_points_valid_days)
    written = await _write(uow, customer_id=int(customer_id), kind="earn", points=points,
                           key=f"earn:order:{order_id}", order_id=order_id,
                           channel=str(channel), expires_at=now + valid, now=now)
    return points if written is not None else 0


async def reverse_for_order(uow: UnitOfWork, order_id: int, amount_cents: int, reason: str,
                            *, key: str | None = None, now: datetime | None = None,
                            settings: Settings | None = None) -> int:
    """Take back the points earned for `amount_cents` of the order (a refund or a
    return), never more than the order earned and is not yet taken back. Returns the
    points taken back (0 if the order earned none). `key` makes a retried call a
    no-op; without one, each call is a new reversal."""
    s = uow.session
    earned = (await s.execute(
        select(LoyaltyEntry.customer_id, LoyaltyEntry.points, LoyaltyEntry.channel)
        .where(LoyaltyEntry.order_id == order_id, LoyaltyEntry.kind == "earn"))).first()
    if earned is None:
        return 0
    customer_id, points, channel = int(earned[0]), int(earned[1]), str(earned[2])
    taken, count = (await s.execute(
        select(func.coalesce(func.sum(LoyaltyEntry.points), 0), func.count(LoyaltyEntry.id))
        .where(LoyaltyEntry.order_id == order_id, LoyaltyEntry.kind == "reverse"))).one()
    take = min(points + int(taken), points_for(amount_cents, settings))
    if take <= 0:
        return 0
    written = await _write(uow, customer_id=customer_id, kind="reverse", points=-take,
                           key=key or f"reverse:order:{order_id}:{int(count) + 1}",
                           order_id=order_id, channel=channel, reason=reason, now=now)
    return take if written is not None else 0


# --- redeeming -------------------------------------------------------------------------

async def redeem(uow: UnitOfWork, actor: Actor, customer_id: int, points: int,
                 order_id: int | None, key: str, *, channel: str = "",
                 field: str = "points", now: datetime | None = None) -> int:
    """Spend `points` (whole points) of the customer's balance for an order; 409
    `not_enough_points` if the balance is smaller (nothing is written). Idempotent by
    `key`: the same key again returns the first entry's id."""
    if points <= 0:
        raise ValidationFailed("use at least one point", code="invalid_points", field=field)
    s = uow.session
    existing = await s.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.key == key))
    if existing is not None:
        return int(existing)
    now = now or utcnow()
    await _lock_customer(uow, customer_id)
    await _expire_customer(uow, customer_id, now)  # lapsed points cannot be spent
    have = await balance(s, customer_id)
    if points > have:
        raise Conflict(f"not enough points: {have} available, {points} asked",
                       code="not_enough_points", field=field,
                       extra={"balance": have, "points": points})
    entry_id = await _write(uow, customer_id=customer_id, kind="redeem", points=-points,
                            key=key, order_id=order_id, channel=channel,
                            created_by=actor.label, now=now)
    assert entry_id is not None  # the key was free and the customer is locked
    return entry_id


async def refund_for_order(uow: UnitOfWork, order_id: int, reason: str,
                           now: datetime | None = None, *,
                           settings: Settings | None = None) -> int:
    """Give back the points spent on an order that will not be paid (cancelled unpaid,
    or sold out before the payment came): one `refund` entry with the key
    `refund:order:{id}`, so a second call gives nothing. Returns the points given back
    now (0: none were spent, or given back before). The points come back as new points
    (valid for `loyalty_points_valid_days` from now)."""
    spent = await _spent_on(uow.session, order_id)
    if spent is None or spent.points <= 0:
        return 0
    return await _refund_entry(uow, spent, order_id, spent.points, reason,
                               key=f"refund:order:{order_id}", now=now, settings=settings)


@dataclass(frozen=True)
class _Spent:
    customer_id: int
    points: int  # spent on the order, as a positive number
    channel: str


async def _spent_on(s: AsyncSession, order_id: int) -> _Spent | None:
    """Who spent points on the order, how many and in which channel (None: nobody)."""
    spent = (await s.execute(
        select(LoyaltyEntry.customer_id, func.sum(LoyaltyEntry.points),
               func.min(LoyaltyEntry.channel))
        .where(LoyaltyEntry.order_id == order_id, LoyaltyEntry.kind == "redeem")
        .group_by(LoyaltyEntry.customer_id))).first()
    if spent is None or not spent[1]:
        return None
    return _Spent(int(spent[0]), -int(spent[1]), str(spent[2] or ""))


async def _refund_entry(uow: UnitOfWork, spent: _Spent, order_id: int, points: int,
                        reason: str, *, key: str, now: datetime | None,
                        settings: Settings | None = None) -> int:
    """One `refund` entry giving `points` back as new points (valid for
    `loyalty_points_valid_days` from now); 0 when `key` was written before."""
    now = now or utcnow()
    valid = timedelta(days=(settings or get_settings()).loyalty_points_valid_days)
    written = await _write(uow, customer_id=spent.customer_id, kind="refund", points=points,
                           key=key, order_id=order_id, channel=spent.channel, reason=reason,
                           expires_at=now + valid, now=now)
    return points if written is not None else 0


# --- expiry ----------------------------------------------------------------------------

def _remaining_lots(entries: list[LoyaltyEntry]) -> tuple[dict[int, int], set[int]]:
    """What is left of each positive entry ("lot") after the spending so far, first in
    first out; and the lots already written off."""
    lots: dict[int, int] = {}
    by_order: dict[int, int] = {}
    written_off: set[int] = set()
    debt = 0  # spent beyond what was there (a reversal after the points were used)
    for e in entries:
        if e.points > 0:
            pay = min(debt, e.points)
            debt -= pay
            lots[e.id] = e.points - pay
            if e.kind == "earn" and e.order_id is not None:
                by_order[e.order_id] = e.id
            continue
        need = -e.points
        first: list[int] = []
        if e.kind == "expire" and e.key.startswith("expire:"):
            lot = int(e.key.split(":", 1)[1])
            written_off.add(lot)
            first = [lot]
        elif e.kind == "reverse" and e.order_id in by_order:
            first = [by_order[e.order_id]]
        for lot_id in [*first, *lots]:
            if need <= 0:
                break
            take = min(need, lots.get(lot_id, 0))
            if take > 0:
                lots[lot_id] -= take
                need -= take
        debt += need
    return lots, written_off


async def _expire_customer(uow: UnitOfWork, customer_id: int, now: datetime) -> int:
    """Write off the customer's lapsed, unused points; returns the points written off."""
    entries = list((await uow.session.scalars(
        select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id)
        .order_by(LoyaltyEntry.id))).all())
    expiring = {e.id: e for e in entries
                if e.points > 0 and e.expires_at is not None and e.expires_at <= now}
    if not expiring:
        return 0
    lots, written_off = _remaining_lots(entries)
    total = 0
    for lot_id, lot in expiring.items():
        if lot_id in written_off:
            continue
        # A lot used up before it lapsed gets a 0-point entry: handled, not asked again.
        left = max(0, lots.get(lot_id, 0))
        if await _write(uow, customer_id=customer_id, kind="expire", points=-left,
                        key=f"expire:{lot_id}", order_id=lot.order_id, channel=lot.channel,
                        reason="expired", now=now) is not None:
            total += left
    return total


@dataclass(frozen=True)
class ExpiryRun:
    customers: int  # customers with lapsed points handled (0: nothing left to do)
    points: int  # points written off


async def expire_due(uow: UnitOfWork, now: datetime | None = None,
                     limit: int = 500) -> ExpiryRun:
    """Write off lapsed points (idempotent per earned entry: key `expire:{id}`) for up
    to `limit` customers. Several processes may run it: the customer row lock
    serialises them and the keys keep it exactly once."""
    now = now or utcnow()
    s = uow.session
    lot = LoyaltyEntry.__table__.alias("lot")
    seen = LoyaltyEntry.__table__.alias("seen")
    pending = (select(lot.c.customer_id).distinct()
               .where(lot.c.points > 0, lot.c.expires_at.is_not(None),
                      lot.c.expires_at <= now,
                      ~select(seen.c.id).where(
                          seen.c.key == literal("expire:") + cast(lot.c.id, String)
                      ).exists())
               .limit(limit))
    total = 0
    customers = (await s.scalars(pending)).all()
    for customer_id in customers:
        await _lock_customer(uow, int(customer_id))
        total += await _expire_customer(uow, int(customer_id), now)
    return ExpiryRun(len(customers), total)


async def expire_once(db: Database, now: datetime | None = None) -> ExpiryRun:
    async with db.uow() as uow:
        run = await expire_due(uow, now)
        await uow.commit()
    return run


async def run_expiry(db: Database, every_seconds: float = EXPIRY_EVERY_SECONDS,
                     stop: asyncio.Event | None = None) -> None:
    """The background job every app process runs: lapsed points written off hourly."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            run = await expire_once(db)
            if run.points:
                log.info("wrote off %d lapsed loyalty points", run.points)
        except Exception:  # retried on the next tick
            log.exception("loyalty point expiry failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()


async def give_back_points(uow: UnitOfWork, order_id: int, points: int, reason: str, *,
                           key: str, now: datetime | None = None,
                           settings: Settings | None = None) -> int:
    """Give back `points` of those spent on the order (a return of goods paid partly
    with points), never more than were spent and not yet given back. One `refund`
    entry with `key`: a retried return gives nothing twice. Returns the points given
    back now."""
    if points <= 0:
        return 0
    s = uow.session
    spent = await _spent_on(s, order_id)
    if spent is None:
        return 0
    back = int(await s.scalar(
        select(func.coalesce(func.sum(LoyaltyEntry.points), 0))
        .where(LoyaltyEntry.order_id == order_id, LoyaltyEntry.kind == "refund")) or 0)
    give = min(points, spent.points - back)
    if give <= 0:
        return 0
    return await _refund_entry(uow, spent, order_id, give, reason, key=key, now=now,
                               settings=settings)
