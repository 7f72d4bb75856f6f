"""Stock counts: a whole location or a part of it (a shelf), counted with scanners.

* open: a count of a location, `full` (every variant there) or a part named by a scope
  ("shelf A3").
* scan / set: a scan adds one unit, typing sets a quantity. Each is ONE conditional
  INSERT … ON CONFLICT statement that also checks the count is still open (the count's
  row is share-locked on PostgreSQL), so several people scanning at once lose nothing
  and a scan never lands after posting.
* variances: expected (the ledger's on-hand now) against counted. In a full count every
  variant with stock at the location that nobody counted counts as 0; a partial count
  touches only what was counted.
* post: the count is claimed with one conditional UPDATE (which waits for scans in
  flight), the levels are row-locked, count movements are written for the variances
  only, `needs_count` clears for everything counted and the expected figures are stored
  on the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.models import StockCount, StockCountLine, StockLevel
from saumaton.inventory.services import LevelAfter, Move, apply_moves, ensure_levels
from saumaton.locations.models import Location

MAX_COUNTED = 10_000_000


@dataclass(frozen=True)
class VarianceLine:
    variant_id: int
    sku: str
    ean: str | None
    name: str
    expected: int
    counted: int
    scanned: bool  # False: not counted (a full count takes it as 0)

    @property
    def variance(self) -> int:
        return self.counted - self.expected


@dataclass(frozen=True)
class CountOut:
    id: int
    location_id: int
    location_name: str
    scope: str
    full: bool
    status: str
    created_by: str
    created_at: datetime
    posted_by: str
    posted_at: datetime | None
    lines: tuple[VarianceLine, ...]

    @property
    def variances(self) -> list[VarianceLine]:
        return [ln for ln in self.lines if ln.variance]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "location_id": self.location_id, "scope": self.scope,
            "full": self.full, "status": self.status, "created_by": self.created_by,
            "created_at": self.created_at.isoformat(), "posted_by": self.posted_by,
            "posted_at": self.posted_at.isoformat() if self.posted_at else None,
            "lines": [{"variant_id": ln.variant_id, "sku": ln.sku, "expected": ln.expected,
                       "counted": ln.counted, "variance": ln.variance,
                       "scanned": ln.scanned} for ln in self.lines],
        }


async def open_count(uow: UnitOfWork, actor: Actor, location_id: int, *, scope: str = "",
                     full: bool = False) -> int:
    actor.require("stock.count", location_id)
    if await uow.session.scalar(select(Location.id).where(Location.id == location_id)) is None:
        raise NotFound(f"no location {location_id}", code="location_not_found",
                       field="location_id")
    scope = scope.strip()
    if len(scope) > 200:
        raise ValidationFailed("a scope has at most 200 characters", code="scope_too_long",
                               field="scope")
    if not full and not scope:
        raise ValidationFailed("say what part of the location is counted",
                               code="scope_required", field="scope")
    c = StockCount(location_id=location_id, scope=scope, full=full, status="open",
                   created_by=actor.label, created_at=utcnow())
    uow.session.add(c)
    await uow.session.flush()
    await record(uow, actor, "stock.count.open", "stock_count", c.id,
                 {"location_id": location_id, "scope": scope, "full": full})
    return c.id


async def _count_row(session: AsyncSession, count_id: int) -> StockCount:
    c = await session.get(StockCount, count_id, populate_existing=True)
    if c is None:
        raise NotFound(f"no stock count {count_id}", code="count_not_found")
    return c


async def record_scan(uow: UnitOfWork, actor: Actor, count_id: int, variant_id: int,
                      quantity: int = 1, *, replace: bool = False) -> int:
    """Add `quantity` units counted (a scan adds 1), or with `replace` set the counted
    quantity. One statement; returns the variant's counted quantity after it."""
    c = await _count_row(uow.session, count_id)
    actor.require("stock.count", c.location_id)
    if quantity < 0 or quantity > MAX_COUNTED or (not replace and quantity == 0):
        raise ValidationFailed("a counted quantity cannot be negative",
                               code="invalid_quantity", field="quantity")
    if await uow.session.scalar(select(Variant.id).where(Variant.id == variant_id)) is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found", field="code")
    now = utcnow()
    src = (select(StockCount.id, literal(variant_id), literal(quantity), literal(now))
           .where(StockCount.id == count_id, StockCount.status == "open"))
    if uow.db.is_postgres:
        src = src.with_for_update(read=True)  # posting waits for this scan, or refuses it
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(StockCountLine) \
        .from_select(["count_id", "variant_id", "counted", "counted_at"], src)
    new = ins.excluded.counted if replace else StockCountLine.counted + ins.excluded.counted
    stmt = ins.on_conflict_do_update(
        index_elements=["count_id", "variant_id"],
        set_={"counted": new, "counted_at": now},
    ).returning(StockCountLine.counted)
    row = (await uow.session.execute(stmt)).first()
    if row is None:
        raise Conflict("this count is no longer open", code="count_not_open")
    return int(row[0])


async def remove_line(uow: UnitOfWork, actor: Actor, count_id: int, variant_id: int) -> None:
    """Take a line off an open count (scanned by mistake)."""
    c = await _count_row(uow.session, count_id)
    actor.require("stock.count", c.location_id)
    if c.status != "open":
        raise Conflict("this count is no longer open", code="count_not_open")
    await uow.session.execute(delete(StockCountLine).where(
        StockCountLine.count_id == count_id, StockCountLine.variant_id == variant_id))


async def _lines(session: AsyncSession, c: StockCount) -> list[VarianceLine]:
    counted = (await session.execute(
        select(StockCountLine.variant_id, StockCountLine.counted, StockCountLine.expected)
        .where(StockCountLine.count_id == c.id))).all()
    got = {int(v): (int(n), e) for v, n, e in counted}
    on_hand = {int(v): int(n) for v, n in (await session.execute(
        select(StockLevel.variant_id, StockLevel.on_hand)
        .where(StockLevel.location_id == c.location_id,
               StockLevel.variant_id.in_(list(got)) if not c.full else StockLevel.on_hand != 0)
    )).all()}
    if c.full:
        on_hand.update({int(v): int(n) for v, n in (await session.execute(
            select(StockLevel.variant_id, StockLevel.on_hand)
            .where(StockLevel.location_id == c.location_id,
                   StockLevel.variant_id.in_(list(got))))).all()})
    ids = set(got) | (set(on_hand) if c.full and c.status == "open" else set())
    info = {int(v): (sku, ean, f"{pn} {vn}".strip()) for v, sku, ean, pn, vn in (
        await session.execute(
            select(Variant.id, Variant.sku, Variant.ean, Product.name, Variant.name)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id.in_(list(ids))))).all()}
    out = []
    for vid in ids:
        n, stored = got.get(vid, (0, None))
        expected = stored if c.status == "posted" and stored is not None \
            else on_hand.get(vid, 0)
        sku, ean, name = info.get(vid, ("", None, ""))
        out.append(VarianceLine(vid, sku, ean, name, expected, n, vid in got))
    out.sort(key=lambda ln: (ln.variance == 0, ln.sku))
    return out


async def get_count(session: AsyncSession, count_id: int) -> CountOut:
    """The count with its variances (expected = the ledger now while open; the stored
    expected once posted)."""
    c = await _count_row(session, count_id)
    name = await session.scalar(select(Location.name).where(Location.id == c.location_id))
    return CountOut(c.id, c.location_id, name or "", c.scope, c.full, c.status, c.created_by,
                    c.created_at, c.posted_by, c.posted_at, tuple(await _lines(session, c)))


async def post(uow: UnitOfWork, actor: Actor, count_id: int) -> CountOut:
    """Post a reviewed count: count movements for the variances only."""
    c = await _count_row(uow.session, count_id)
    actor.require("stock.write", c.location_id)
    now = utcnow()
    res = await uow.session.execute(
        update(StockCount).where(StockCount.id == count_id, StockCount.status == "open")
        .values(status="posted", posted_by=actor.label, posted_at=now)
        .returning(StockCount.id).execution_options(synchronize_session=False))
    if res.first() is None:
        raise Conflict("this count is no longer open", code="count_not_open")
    loc = c.location_id
    got = {int(v): int(n) for v, n in (await uow.session.execute(
        select(StockCountLine.variant_id, StockCountLine.counted)
        .where(StockCountLine.count_id == count_id))).all()}
    await ensure_levels(uow, {(v, loc) for v in got})
    # Lock the levels in key order (the order every stock move locks them in), in one
    # statement: a full count covers every level with stock there, too.
    counted = StockLevel.variant_id.in_(list(got))
    lock = (select(StockLevel.variant_id, StockLevel.on_hand, StockLevel.reserved)
            .where(StockLevel.location_id == loc,
                   or_(counted, StockLevel.on_hand != 0) if c.full else counted)
            .order_by(StockLevel.variant_id).with_for_update())
    levels = {int(v): (int(n), int(r)) for v, n, r in (await uow.session.execute(lock)).all()}
    if c.full:
        missing = sorted(set(levels) - set(got))
        if missing:  # not counted in a full count: none on the shelf
            await uow.session.execute(insert(StockCountLine), [
                {"count_id": count_id, "variant_id": v, "counted": 0, "counted_at": now}
                for v in missing])
            got.update({v: 0 for v in missing})
    moves = []
    expected = []
    for vid in sorted(got):
        on_hand, _ = levels.get(vid, (0, 0))
        expected.append({"b_vid": vid, "b_expected": on_hand})
        if got[vid] != on_hand:  # the levels are locked: the difference is exact
            moves.append(Move(vid, loc, got[vid] - on_hand, "count",
                              reason=f"counted {got[vid]}", reference=f"count:{count_id}"))
    if expected:  # one statement for every line (a full count has thousands)
        lines = cast(Table, StockCountLine.__table__)  # Core: executemany with a WHERE
        await uow.session.execute(
            update(lines)
            .where(lines.c.count_id == count_id, lines.c.variant_id == bindparam("b_vid"))
            .values(expected=bindparam("b_expected")), expected)
    afters = await apply_moves(uow, actor, moves) if moves else []
    if got:
        await uow.session.execute(
            update(StockLevel)
            .where(StockLevel.location_id == loc, StockLevel.variant_id.in_(list(got)),
                   StockLevel.needs_count)
            .values(needs_count=False, updated_at=now)
            .execution_options(synchronize_session=False))
        # The flag cleared: open tills and pages learn it (a moved level's event from
        # apply_moves may still carry the flag).
        moved = {a.variant_id for a in afters if not a.needs_count}
        for vid in sorted(set(got) - moved):
            uow.emit("stock.changed", LevelAfter(vid, loc, got[vid], levels.get(
                vid, (0, 0))[1], False).event())
    await record(uow, actor, "stock.count.post", "stock_count", count_id, {
        "location_id": loc, "lines": len(got),
        "variances": [[m.variant_id, m.quantity] for m in moves]})
    return await get_count(uow.session, count_id)


async def cancel(uow: UnitOfWork, actor: Actor, count_id: int) -> None:
    c = await _count_row(uow.session, count_id)
    actor.require("stock.count", c.location_id)
    res = await uow.session.execute(
        update(StockCount).where(StockCount.id == count_id, StockCount.status == "open")
        .values(status="cancelled", posted_by=actor.label, posted_at=utcnow())
        .returning(StockCount.id).execution_options(synchronize_session=False))
    if res.first() is None:
        raise Conflict("this count is no longer open", code="count_not_open")
    await record(uow, actor, "stock.count.cancel", "stock_count", count_id, {})


async def list_counts(session: AsyncSession, actor: Actor, *, status: str = "",
                      limit: int = 50, offset: int = 0, before_id: int | None = None,
                      location_id: int | None = None) -> list[StockCount]:
    """Counts newest first at the locations `actor` may count at; `before_id` pages on
    from the last count of the previous page."""
    q = select(StockCount).order_by(StockCount.id.desc()).limit(limit).offset(offset)
    if status:
        q = q.where(StockCount.status == status)
    if before_id is not None:
        q = q.where(StockCount.id < before_id)
    if location_id is not None:
        q = q.where(StockCount.location_id == location_id)
    if not actor.can("stock.count", everywhere=True):
        mine = [loc for loc in actor.location_ids if loc is not None
                and actor.can("stock.count", loc)]
        q = q.where(StockCount.location_id.in_(mine))
    return list((await session.scalars(q)).all())


async def line_counts(session: AsyncSession, count_ids: Sequence[int]) -> dict[int, int]:
    """Lines counted so far per count."""
    rows = (await session.execute(
        select(StockCountLine.count_id, func.count())
        .where(StockCountLine.count_id.in_(list(count_ids)))
        .group_by(StockCountLine.count_id))).all()
    return {int(c): int(n) for c, n in rows}

