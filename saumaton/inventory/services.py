"""Stock services. Levels change only through single conditional SQL statements
(or row-locked transactions for counts), each paired with a ledger row.

* A strict move (web sale, transfer out, reservation) succeeds only if enough
  stock is available (on_hand − reserved) at that instant; otherwise nothing
  changes and `out_of_stock` is raised. This is what makes overselling impossible.
* A non-strict move (POS sale of an item in the cashier's hand, receipt,
  adjustment) always succeeds; a level pushed below zero is flagged for a count.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, OutOfStock, ValidationFailed
from saumaton.db.uow import Database, UnitOfWork, session_connection
from saumaton.inventory.models import StockLevel, StockMovement, StockReservation
from saumaton.locations.models import Location
from saumaton.locations.reference import locations as location_refs

# write_off: a unit that came back damaged (a "return" in, then this out), or one taken
# off the shelf with a reason (broken, expired, stolen).
# transfer_out / transfer_in: a transfer with an in-transit state (inventory.transfers);
# "transfer" is the instant one of `transfer()`.
MOVEMENT_KINDS = ("receipt", "sale", "return", "transfer", "count", "adjustment", "write_off",
                  "transfer_out", "transfer_in")


@dataclass(frozen=True)
class Move:
    variant_id: int
    location_id: int
    quantity: int  # signed: negative takes stock out
    kind: str
    strict: bool = False
    reason: str = ""
    reference: str = ""
    order_id: int | None = None


@dataclass(frozen=True)
class LevelAfter:
    variant_id: int
    location_id: int
    on_hand: int
    reserved: int
    needs_count: bool

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def event(self) -> dict[str, Any]:
        return {"variant_id": self.variant_id, "location_id": self.location_id,
                "on_hand": self.on_hand, "reserved": self.reserved,
                "available": self.available, "needs_count": self.needs_count}


def _insert_for(uow: UnitOfWork) -> Any:
    return postgresql.insert if uow.db.is_postgres else sqlite.insert


async def _ensure_levels(uow: UnitOfWork, keys: set[tuple[int, int]]) -> None:
    if keys:
        stmt = _insert_for(uow)(StockLevel).on_conflict_do_nothing(
            index_elements=["variant_id", "location_id"]
        )
        now = utcnow()
        await uow.session.execute(stmt, [
            {"variant_id": v, "location_id": loc, "on_hand": 0, "reserved": 0,
             "needs_count": False, "updated_at": now} for v, loc in sorted(keys)
        ])


async def ensure_levels(uow: UnitOfWork, keys: set[tuple[int, int]]) -> None:
    """Create missing level rows (zero) for (variant_id, location_id) keys."""
    await _ensure_levels(uow, keys)


async def _change_level(uow: UnitOfWork, m: Move) -> LevelAfter:
    now = utcnow()
    if m.strict:
        if m.quantity >= 0:
            raise ValueError("strict moves take stock out")
        res = await uow.session.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == m.variant_id, StockLevel.location_id == m.location_id,
                   StockLevel.on_hand - StockLevel.reserved >= -m.quantity)
            .values(on_hand=StockLevel.on_hand + m.quantity, updated_at=now)
            .returning(StockLevel.on_hand, StockLevel.reserved, StockLevel.needs_count)
            .execution_options(synchronize_session=False)
        )
        row = res.first()
        if row is None:
            raise OutOfStock(
                f"not enough stock of variant {m.variant_id} at location {m.location_id}",
                extra={"variant_id": m.variant_id, "location_id": m.location_id},
            )
    else:
        ins = _insert_for(uow)(StockLevel).values(
            variant_id=m.variant_id, location_id=m.location_id, on_hand=m.quantity, reserved=0,
            needs_count=m.quantity < 0, updated_at=now,
        )
        new_on_hand = StockLevel.on_hand + ins.excluded.on_hand
        stmt = ins.on_conflict_do_update(
            index_elements=["variant_id", "location_id"],
            set_={"on_hand": new_on_hand,
                  "needs_count": or_(StockLevel.needs_count, new_on_hand < 0),
                  "updated_at": now},
        ).returning(StockLevel.on_hand, StockLevel.reserved, StockLevel.needs_count)
        row = (await uow.session.execute(stmt)).one()
    return LevelAfter(m.variant_id, m.location_id, row[0], row[1], bool(row[2]))


# PostgreSQL: non-strict moves (distinct keys) in one statement. Levels are upserted
# in key order (the same lock order as one statement per move) and each move's ledger
# row records the balance its upsert returned.
_UPSERT_MOVES_SQL = """
WITH m AS (
    SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[],
                         $7::bigint[]) WITH ORDINALITY
        AS m(variant_id, location_id, quantity, kind, reason, reference, order_id, n)
), lv AS (
    INSERT INTO stock_levels AS s (variant_id, location_id, on_hand, reserved, needs_count,
                                   updated_at)
    SELECT variant_id, location_id, quantity, 0, quantity < 0, $8::timestamptz
    FROM m ORDER BY n
    ON CONFLICT (variant_id, location_id) DO UPDATE
    SET on_hand = s.on_hand + excluded.on_hand,
        needs_count = s.needs_count OR s.on_hand + excluded.on_hand < 0,
        updated_at = excluded.updated_at
    RETURNING s.variant_id, s.location_id, s.on_hand, s.reserved, s.needs_count
), mv AS (
    INSERT INTO stock_movements (variant_id, location_id, kind, quantity, balance_after,
                                 reason, reference, order_id, actor, created_at)
    SELECT m.variant_id, m.location_id, m.kind, m.quantity, lv.on_hand, m.reason,
           m.reference, m.order_id, $9::text, $8::timestamptz
    FROM m JOIN lv ON lv.variant_id = m.variant_id AND lv.location_id = m.location_id
    ORDER BY m.n
)
SELECT variant_id, location_id, on_hand, reserved, needs_count FROM lv
"""
# PostgreSQL: one strict move (take stock out only if available) and its ledger row.
_STRICT_MOVE_SQL = """
WITH lv AS (
    UPDATE stock_levels SET on_hand = on_hand + $3::int, updated_at = $4::timestamptz
    WHERE variant_id = $1::int AND location_id = $2::int
      AND on_hand - reserved >= -($3::int)
    RETURNING variant_id, location_id, on_hand, reserved, needs_count
), mv AS (
    INSERT INTO stock_movements (variant_id, location_id, kind, quantity, balance_after,
                                 reason, reference, order_id, actor, created_at)
    SELECT variant_id, location_id, $5::text, $3::int, on_hand, $6::text, $7::text,
           $8::bigint, $9::text, $4::timestamptz FROM lv
)
SELECT on_hand, reserved, needs_count FROM lv
"""


async def _apply_moves_pg(uow: UnitOfWork, actor: Actor, ordered: list[Move]
                          ) -> list[LevelAfter]:
    now = utcnow()
    if ordered[0].strict:
        [m] = ordered
        if m.quantity >= 0:
            raise ValueError("strict moves take stock out")
        row = await uow.fetchrow(_STRICT_MOVE_SQL, m.variant_id, m.location_id, m.quantity,
                                 now, m.kind, m.reason, m.reference, m.order_id, actor.label)
        if row is None:
            raise OutOfStock(
                f"not enough stock of variant {m.variant_id} at location {m.location_id}",
                extra={"variant_id": m.variant_id, "location_id": m.location_id},
            )
        afters = [LevelAfter(m.variant_id, m.location_id, row[0], row[1], bool(row[2]))]
    else:
        rows = await uow.fetch(
            _UPSERT_MOVES_SQL, [m.variant_id for m in ordered],
            [m.location_id for m in ordered], [m.quantity for m in ordered],
            [m.kind for m in ordered], [m.reason for m in ordered],
            [m.reference for m in ordered], [m.order_id for m in ordered], now, actor.label)
        by_key = {(r[0], r[1]): r for r in rows}
        afters = []
        for m in ordered:
            r = by_key[(m.variant_id, m.location_id)]
            afters.append(LevelAfter(m.variant_id, m.location_id, r[2], r[3], bool(r[4])))
    for after in afters:
        uow.emit("stock.changed", after.event())
    return afters


async def apply_moves(uow: UnitOfWork, actor: Actor, moves: Sequence[Move]) -> list[LevelAfter]:
    """Apply moves in one transaction (sorted by key so concurrent orders never deadlock)."""
    for m in moves:
        if m.kind not in MOVEMENT_KINDS:
            raise ValidationFailed(f"unknown movement kind '{m.kind}'", code="invalid_kind")
    ordered = sorted(moves, key=lambda m: (m.variant_id, m.location_id))
    if (uow.db.is_postgres and ordered
            and len({(m.variant_id, m.location_id) for m in ordered}) == len(ordered)
            and (not any(m.strict for m in ordered)
                 or (len(ordered) == 1 and ordered[0].strict))):
        return await _apply_moves_pg(uow, actor, ordered)
    afters: list[LevelAfter] = []
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for m in ordered:
        after = await _change_level(uow, m)
        afters.append(after)
        rows.append({"variant_id": m.variant_id, "location_id": m.location_id, "kind": m.kind,
                     "quantity": m.quantity, "balance_after": after.on_hand,
                     "reason": m.reason, "reference": m.reference, "order_id": m.order_id,
                     "actor": actor.label, "created_at": now})
    if rows:
        await uow.session.execute(insert(StockMovement), rows)
    for after in afters:
        uow.emit("stock.changed", after.event())
    return afters


async def _check_refs(session: AsyncSession, variant_id: int, location_id: int) -> None:
    if await session.scalar(select(Variant.id).where(Variant.id == variant_id)) is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found", field="variant_id")
    if await session.scalar(select(Location.id).where(Location.id == location_id)) is None:
        raise NotFound(f"no location {location_id}", code="location_not_found",
                       field="location_id")


async def receive(uow: UnitOfWork, actor: Actor, variant_id: int, location_id: int,
                  quantity: int, *, reason: str = "", reference: str = "") -> LevelAfter:
    actor.require("stock.write", location_id)
    if quantity <= 0:
        raise ValidationFailed("quantity received must be positive", code="invalid_quantity",
                               field="quantity")
    await _check_refs(uow.session, variant_id, location_id)
    [after] = await apply_moves(uow, actor, [Move(variant_id, location_id, quantity, "receipt",
                                                  reason=reason, reference=reference)])
    return after


async def adjust(uow: UnitOfWork, actor: Actor, variant_id: int, location_id: int,
                 quantity: int, *, reason: str, reference: str = "") -> LevelAfter:
    """A signed correction (damage, loss, found). A reason is required."""
    actor.require("stock.write", location_id)
    if quantity == 0:
        raise ValidationFailed("adjustment must not be zero", code="invalid_quantity",
                               field="quantity")
    if not reason.strip():
        raise ValidationFailed("an adjustment needs a reason", code="reason_required",
                               field="reason")
    await _check_refs(uow.session, variant_id, location_id)
    [after] = await apply_moves(uow, actor, [Move(variant_id, location_id, quantity, "adjustment",
                                                  reason=reason, reference=reference)])
    return after


async def count(uow: UnitOfWork, actor: Actor, variant_id: int, location_id: int,
                counted: int, *, reference: str = "") -> LevelAfter:
    """Record a physical count: the ledger gets the difference; the count flag clears."""
    actor.require("stock.write", location_id)
    if counted < 0:
        raise ValidationFailed("a count cannot be negative", code="invalid_quantity",
                               field="counted")
    await _check_refs(uow.session, variant_id, location_id)
    await _ensure_levels(uow, {(variant_id, location_id)})
    level = (await uow.session.execute(
        select(StockLevel.on_hand).where(StockLevel.variant_id == variant_id,
                                         StockLevel.location_id == location_id)
        .with_for_update()
    )).scalar_one()
    diff = counted - level
    now = utcnow()
    res = await uow.session.execute(
        update(StockLevel)
        .where(StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)
        .values(on_hand=StockLevel.on_hand + diff, needs_count=False, updated_at=now)
        .returning(StockLevel.on_hand, StockLevel.reserved)
        .execution_options(synchronize_session=False)
    )
    on_hand, reserved = res.one()
    await uow.session.execute(insert(StockMovement), [{
        "variant_id": variant_id, "location_id": location_id, "kind": "count", "quantity": diff,
        "balance_after": on_hand, "reason": f"counted {counted}", "reference": reference,
        "actor": actor.label, "created_at": now}])
    after = LevelAfter(variant_id, location_id, on_hand, reserved, False)
    uow.emit("stock.changed", after.event())
    return after


async def transfer(uow: UnitOfWork, actor: Actor, variant_id: int, from_location: int,
                   to_location: int, quantity: int, *, reference: str = "") -> list[LevelAfter]:
    actor.require("stock.write", from_location)
    actor.require("stock.write", to_location)
    if quantity <= 0:
        raise ValidationFailed("transfer quantity must be positive", code="invalid_quantity",
                               field="quantity")
    if from_location == to_location:
        raise ValidationFailed("transfer needs two different locations",
                               code="same_location", field="to_location_id")
    await _check_refs(uow.session, variant_id, from_location)
    await _check_refs(uow.session, variant_id, to_location)
    await _ensure_levels(uow, {(variant_id, from_location)})
    return await apply_moves(uow, actor, [
        Move(variant_id, from_location, -quantity, "transfer", strict=True,
             reason=f"to location {to_location}", reference=reference),
        Move(variant_id, to_location, quantity, "transfer",
             reason=f"from location {from_location}", reference=reference),
    ])


# --- reservations -----------------------------------------------------------------


async def reserve(uow: UnitOfWork, actor: Actor, variant_id: int, location_id: int,
                  quantity: int, *, reference: str, ttl: timedelta,
                  now: datetime | None = None) -> int:
    """Hold stock for a checkout or a click & collect order; returns the reservation id."""
    if quantity <= 0:
        raise ValidationFailed("quantity must be positive", code="invalid_quantity",
                               field="quantity")
    now = now or utcnow()
    res = await uow.session.execute(
        update(StockLevel)
        .where(StockLevel.variant_id == variant_id, StockLevel.location_id == location_id,
               StockLevel.on_hand - StockLevel.reserved >= quantity)
        .values(reserved=StockLevel.reserved + quantity, updated_at=now)
        .returning(StockLevel.on_hand, StockLevel.reserved, StockLevel.needs_count)
        .execution_options(synchronize_session=False)
    )
    row = res.first()
    if row is None:
        raise OutOfStock(f"not enough stock of variant {variant_id} at location {location_id}",
                         extra={"variant_id": variant_id, "location_id": location_id})
    rid = (await uow.session.execute(
        insert(StockReservation).values(
            variant_id=variant_id, location_id=location_id, quantity=quantity,
            reference=reference, status="active", expires_at=now + ttl, created_at=now,
        ).returning(StockReservation.id)
    )).scalar_one()
    uow.emit("stock.changed",
             LevelAfter(variant_id, location_id, row[0], row[1], bool(row[2])).event())
    return int(rid)


async def _close_reservation(uow: UnitOfWork, reservation_id: int, status: str,
                             now: datetime) -> StockReservation | None:
    res = await uow.session.execute(
        update(StockReservation)
        .where(StockReservation.id == reservation_id, StockReservation.status == "active")
        .values(status=status)
        .returning(StockReservation.variant_id, StockReservation.location_id,
                   StockReservation.quantity)
        .execution_options(synchronize_session=False)
    )
    row = res.first()
    if row is None:
        return None
    lv = (await uow.session.execute(
        update(StockLevel)
        .where(StockLevel.variant_id == row[0], StockLevel.location_id == row[1])
        .values(reserved=StockLevel.reserved - row[2], updated_at=now)
        .returning(StockLevel.on_hand, StockLevel.reserved, StockLevel.needs_count)
        .execution_options(synchronize_session=False)
    )).one()
    uow.emit("stock.changed", LevelAfter(row[0], row[1], lv[0], lv[1], bool(lv[2])).event())
    return StockReservation(id=reservation_id, variant_id=row[0], location_id=row[1],
                            quantity=row[2], status=status)


async def release(uow: UnitOfWork, reservation_id: int) -> bool:
    """Give reserved stock back. False if it was no longer active (idempotent)."""
    return await _close_reservation(uow, reservation_id, "released", utcnow()) is not None


async def release_units(uow: UnitOfWork, reference: str, variant_id: int, location_id: int,
                        quantity: int) -> int:
    """Give back up to `quantity` units of the active holds `reference` has on the
    variant at the location (a held order line returned before it was handed over):
    whole holds are released, the last one made smaller. Returns the units given back
    (fewer when less was held, e.g. a lapsed hold)."""
    left = quantity
    now = utcnow()
    for rid, held in (await uow.session.execute(
            select(StockReservation.id, StockReservation.quantity).where(
                StockReservation.reference == reference,
                StockReservation.variant_id == variant_id,
                StockReservation.location_id == location_id,
                StockReservation.status == "active")
            .order_by(StockReservation.id.desc()))).all():
        if left <= 0:
            break
        if held <= left:
            if await _close_reservation(uow, int(rid), "released", now) is not None:
                left -= int(held)
            continue
        # one conditional UPDATE: a hold consumed or released meanwhile is left alone
        cut = await uow.session.execute(
            update(StockReservation)
            .where(StockReservation.id == rid, StockReservation.status == "active",
                   StockReservation.quantity > left)
            .values(quantity=StockReservation.quantity - left)
            .execution_options(synchronize_session=False))
        if getattr(cut, "rowcount", 1) != 1:
            continue
        lv = (await uow.session.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)
            .values(reserved=StockLevel.reserved - left, updated_at=now)
            .returning(StockLevel.on_hand, StockLevel.reserved, StockLevel.needs_count)
            .execution_options(synchronize_session=False))).one()
        uow.emit("stock.changed",
                 LevelAfter(variant_id, location_id, lv[0], lv[1], bool(lv[2])).event())
        left = 0
    return quantity - left


# PostgreSQL: `consume` in one statement: the reservation closed, its units out of
# on-hand stock (not strict: sold units are gone, a level below zero is flagged for a
# count) and the ledger row. `cur` locks the level and keeps its count flag from before.
_CONSUME_SQL = """
WITH c AS (
    UPDATE stock_reservations SET status = 'consumed' WHERE id = $1 AND status = 'active'
    RETURNING variant_id, location_id, quantity
), cur AS (
    SELECT s.variant_id, s.location_id, s.needs_count AS flagged, c.quantity
    FROM stock_levels s JOIN c ON s.variant_id = c.variant_id AND s.location_id = c.location_id
    FOR UPDATE OF s
), lv AS (
    UPDATE stock_levels s SET reserved = s.reserved - cur.quantity,
        on_hand = s.on_hand - cur.quantity,
        needs_count = s.needs_count OR s.on_hand - cur.quantity < 0,
        updated_at = $2::timestamptz
    FROM cur WHERE s.variant_id = cur.variant_id AND s.location_id = cur.location_id
    RETURNING s.variant_id, s.location_id, s.on_hand, s.reserved, s.needs_count, cur.flagged,
              cur.quantity
), mv AS (
    INSERT INTO stock_movements (variant_id, location_id, kind, quantity, balance_after,
                                 reason, reference, order_id, actor, created_at)
    SELECT variant_id, location_id, 'sale', -quantity, on_hand, $3::text, $4::text,
           $5::bigint, $6::text, $2::timestamptz
    FROM lv
)
SELECT variant_id, location_id, on_hand, reserved, needs_count, flagged, quantity FROM lv
"""


async def consume(uow: UnitOfWork, actor: Actor, reservation_id: int, *,
                  order_id: int | None = None, reference: str = "") -> LevelAfter:
    """Turn a reservation into a sale: the held units leave on-hand stock."""
    if uow.db.is_postgres:
        return await _consume_pg(uow, actor, reservation_id, order_id, reference)
    r = await _close_reservation(uow, reservation_id, "consumed", utcnow())
    if r is None:
        raise OutOfStock(f"reservation {reservation_id} is no longer active",
                         code="reservation_inactive")
    [after] = await apply_moves(uow, actor, [Move(
        r.variant_id, r.location_id, -r.quantity, "sale", reference=reference,
        order_id=order_id, reason=f"reservation {reservation_id}")])
    return after


async def _consume_pg(uow: UnitOfWork, actor: Actor, reservation_id: int,
                      order_id: int | None, reference: str) -> LevelAfter:
    row = await uow.fetchrow(_CONSUME_SQL, reservation_id, utcnow(),
                             f"reservation {reservation_id}", reference, order_id, actor.label)
    if row is None:
        raise OutOfStock(f"reservation {reservation_id} is no longer active",
                         code="reservation_inactive")
    variant_id, location_id, on_hand, reserved = (int(row[0]), int(row[1]), int(row[2]),
                                                   int(row[3]))
    # The same two events as closing the reservation, then moving the units, emit.
    uow.emit("stock.changed", LevelAfter(variant_id, location_id, on_hand + int(row[6]),
                                         reserved, bool(row[5])).event())
    after = LevelAfter(variant_id, location_id, on_hand, reserved, bool(row[4]))
    uow.emit("stock.changed", after.event())
    return after


async def expire_due(uow: UnitOfWork, now: datetime | None = None, limit: int = 500) -> int:
    """Release reservations past their expiry. Safe to run in several processes
    at once: on PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED."""
    now = now or utcnow()
    q = (select(StockReservation.id)
         .where(StockReservation.status == "active", StockReservation.expires_at <= now)
         .order_by(StockReservation.expires_at).limit(limit))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True)
    ids = list((await uow.session.scalars(q)).all())
    n = 0
    for rid in ids:
        if await _close_reservation(uow, rid, "expired", now) is not None:
            n += 1
    return n


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class LocationStock:
    location_id: int
    code: str
    name: str
    kind: str
    sells_in_person: bool
    ships_web_orders: bool
    pickup_point: bool
    on_hand: int
    reserved: int
    needs_count: bool

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved)


# What a gift card product shows as available everywhere: it keeps no stock.
GIFT_CARD_UNITS = 10_000

# At most this many available units reads "few left" to customers, in every channel.
FEW_LEFT = 3


def stock_status(units: int) -> str:
    """in_stock | few_left | out_of_stock, as shown to customers."""
    if units <= 0:
        return "out_of_stock"
    return "few_left" if units <= FEW_LEFT else "in_stock"


@dataclass(frozen=True)
class Availability:
    variant_id: int
    online: int  # sellable to the webshop: available at locations that ship web orders
    locations: tuple[LocationStock, ...]

    def at(self, location_id: int) -> LocationStock | None:
        return next((loc for loc in self.locations if loc.location_id == location_id), None)

    @property
    def one_order_max(self) -> int:
        """The most one web order can get: delivered from the web stock, or collected
        at the pickup store that has the most."""
        pickup = [loc.available for loc in self.locations if loc.pickup_point]
        return max([self.online, *pickup])


async def availability(
    session: AsyncSession, variant_ids: Sequence[int]
) -> dict[int, Availability]:
    """Stock of each variant at every location (zero where no level row exists)."""
    if not variant_ids:
        return {}
    locations = (await session.scalars(select(Location).order_by(Location.id))).all()
    levels = {
        (r.variant_id, r.location_id): r
        for r in (await session.scalars(
            select(StockLevel).where(StockLevel.variant_id.in_(list(variant_ids)))
        )).all()
    }
    gift_cards = set((await session.scalars(
        select(Variant.id).join(Product, Product.id == Variant.product_id)
        .where(Variant.id.in_(list(variant_ids)), Product.gift_card))).all())
    out: dict[int, Availability] = {}
    for vid in variant_ids:
        per = []
        for loc in locations:
            lv = levels.get((vid, loc.id))
            on_hand = lv.on_hand if lv else 0
            if vid in gift_cards:  # no stock is kept: a card is issued when sold
                on_hand = GIFT_CARD_UNITS
            per.append(LocationStock(
                loc.id, loc.code, loc.name, loc.kind, loc.sells_in_person, loc.ships_web_orders,
                loc.pickup_point, on_hand, lv.reserved if lv else 0,
                bool(lv.needs_count) if lv else False,
            ))
        online = sum(p.available for p in per if p.ships_web_orders)
        out[vid] = Availability(vid, online, tuple(per))
    return out


# The stock levels of some variants, as one prepared statement (PostgreSQL); the array
# read through a sub-select, so that the plan is made once per connection (see
# saumaton.db.uow: generic plans).
_PG_LEVELS_SQL = ("SELECT variant_id, location_id, on_hand, reserved, needs_count "
                  "FROM stock_levels WHERE variant_id = ANY((SELECT $1::int[])::int[])")


async def live_availability(db: Database, session: AsyncSession, variant_ids: Sequence[int],
                            gift_cards: Collection[int] = ()) -> dict[int, Availability]:
    """`availability` for a shop page: the stock levels read live (one statement), the
    locations from this process's copy; `gift_cards` are the variants among
    `variant_ids` that are gift cards (the caller's product says so)."""
    if not variant_ids:
        return {}
    places = await location_refs(db, session)
    if db.is_postgres:
        # On the session's own connection: one connection per request, never a second.
        conn = await session_connection(session)
        rows = [(r[0], r[1], r[2], r[3], r[4])
                for r in await conn.fetch(_PG_LEVELS_SQL, list(variant_ids))]
    else:
        rows = [(r.variant_id, r.location_id, r.on_hand, r.reserved, r.needs_count)
                for r in (await session.scalars(select(StockLevel).where(
                    StockLevel.variant_id.in_(list(variant_ids))))).all()]
    levels = {(r[0], r[1]): r for r in rows}
    out: dict[int, Availability] = {}
    for vid in variant_ids:
        per = []
        for loc in places:
            lv = levels.get((vid, loc.id))
            on_hand = GIFT_CARD_UNITS if vid in gift_cards else (lv[2] if lv else 0)
            per.append(LocationStock(
                loc.id, loc.code, loc.name, loc.kind, loc.sells_in_person,
                loc.ships_web_orders, loc.pickup_point, on_hand, lv[3] if lv else 0,
                bool(lv[4]) if lv else False))
        online = sum(p.available for p in per if p.ships_web_orders)
        out[vid] = Availability(vid, online, tuple(per))
    return out


async def movements(session: AsyncSession, *, variant_id: int | None = None,
                    location_id: int | None = None, limit: int = 100,
                    before_id: int | None = None) -> list[StockMovement]:
    q = select(StockMovement).order_by(StockMovement.id.desc()).limit(limit)
    if variant_id is not None:
        q = q.where(StockMovement.variant_id == variant_id)
    if location_id is not None:
        q = q.where(StockMovement.location_id == location_id)
    if before_id is not None:
        q = q.where(StockMovement.id < before_id)
    return list((await session.scalars(q)).all())


@dataclass(frozen=True)
class LedgerMismatch:
    variant_id: int
    location_id: int
    on_hand: int
    ledger_sum: int
    reserved: int
    active_reservations: int


async def verify_ledger(session: AsyncSession) -> list[LedgerMismatch]:
    """Every level must equal the sum of its ledger, and `reserved` the sum of its
    active reservations. Returns the rows that do not."""
    sums = (select(StockMovement.variant_id, StockMovement.location_id,
                   func.sum(StockMovement.quantity).label("total"))
            .group_by(StockMovement.variant_id, StockMovement.location_id).subquery())
    held = (select(StockReservation.variant_id, StockReservation.location_id,
                   func.sum(StockReservation.quantity).label("held"))
            .where(StockReservation.status == "active")
            .group_by(StockReservation.variant_id, StockReservation.location_id).subquery())
    total = func.coalesce(sums.c.total, 0)
    held_q = func.coalesce(held.c.held, 0)
    q = (select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand, total,
                StockLevel.reserved, held_q)
         .outerjoin(sums, and_(sums.c.variant_id == StockLevel.variant_id,
                               sums.c.location_id == StockLevel.location_id))
         .outerjoin(held, and_(held.c.variant_id == StockLevel.variant_id,
                               held.c.location_id == StockLevel.location_id))
         .where(or_(StockLevel.on_hand != total, StockLevel.reserved != held_q)))
    bad = [LedgerMismatch(*map(int, r)) for r in (await session.execute(q)).all()]
    # Ledger rows with no level row at all.
    orphans = (select(sums.c.variant_id, sums.c.location_id, sums.c.total)
               .outerjoin(StockLevel, and_(sums.c.variant_id == StockLevel.variant_id,
                                           sums.c.location_id == StockLevel.location_id))
               .where(StockLevel.variant_id.is_(None)))
    for v, loc, t in (await session.execute(orphans)).all():
        bad.append(LedgerMismatch(int(v), int(loc), 0, int(t), 0, 0))
    return bad


async def flagged_for_count(session: AsyncSession, location_id: int | None = None
                            ) -> list[StockLevel]:
    q = select(StockLevel).where(StockLevel.needs_count)
    if location_id is not None:
        q = q.where(StockLevel.location_id == location_id)
    return list((await session.scalars(q)).all())
