"""Price changes: a variant's one consumer price changed now or at a set time.

`apply_price` is the one place that writes `variants.price_cents`: it records the change
as an applied `price_changes` row (old → new, who, when: the price history), audits it
("price.change") and emits "price.changed" (open tills reload their catalogue, product
pages refresh). A change for later is a `scheduled` row ("price.schedule"); it can be
cancelled until it is applied ("price.cancel"). Several variants changed together share a
`batch_id`.

`apply_due` applies the scheduled changes whose time has come, each in its own
transaction. Several app processes run it at once: on PostgreSQL each claims a row with
`FOR UPDATE SKIP LOCKED` and re-checks its status, so no change is applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record, record_many
from saumaton.catalogue.models import Product, Variant, VariantBarcode
from saumaton.core.actor import SYSTEM, Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.types import Input, SmallId
from saumaton.db.uow import Database, UnitOfWork
from saumaton.pricing.models import PriceChange

log = logging.getLogger(__name__)

MAX_PRICE_CENTS = 100_000_000
SCHEDULED, APPLIED, CANCELLED = "scheduled", "applied", "cancelled"


class PriceChangeIn(Input):
    variant_ids: list[SmallId] = Field(min_length=1, max_length=5000)
    price_cents: int = Field(ge=0, le=MAX_PRICE_CENTS)
    effective_at: datetime | None = Field(
        default=None, description="when the new price takes effect; empty = now")
    note: str = Field(default="", max_length=200)

    @field_validator("effective_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the time must carry a UTC offset")
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise ValueError("time out of range") from exc


@dataclass(frozen=True)
class PriceChangeOut:
    id: int
    variant_id: int
    sku: str
    name: str
    price_cents: int
    old_price_cents: int | None
    effective_at: datetime
    status: str
    note: str
    created_by: str
    created_at: datetime
    applied_at: datetime | None
    batch_id: int | None


async def apply_price(uow: UnitOfWork, actor: Actor, variant_id: int, price_cents: int, *,
                      change: PriceChange | None = None, note: str = "",
                      batch_id: int | None = None) -> PriceChange:
    """THE place a variant's price is set: the variant, its history row (the given
    scheduled `change`, or a new applied one), the audit entry and the event."""
    if not 0 <= price_cents <= MAX_PRICE_CENTS:
        raise ValidationFailed("price must be between 0 and 1 000 000 €",
                               code="invalid_price", field="price_cents")
    s = uow.session
    q = select(Variant.price_cents, Variant.product_id).where(Variant.id == variant_id)
    if uow.db.is_postgres:
        q = q.with_for_update()
    row = (await s.execute(q)).one_or_none()
    if row is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found")
    old, product_id = int(row[0]), int(row[1])
    now = utcnow()
    await s.execute(update(Variant).where(Variant.id == variant_id)
                    .values(price_cents=price_cents)
                    .execution_options(synchronize_session=False))
    if change is None:
        change = PriceChange(variant_id=variant_id, price_cents=price_cents, effective_at=now,
                             status=APPLIED, note=note[:200], created_by=actor.label,
                             created_at=now, batch_id=batch_id)
        s.add(change)
    change.status = APPLIED
    change.old_price_cents = old
    change.applied_at = now
    await s.flush()
    await record(uow, actor, "price.change", "variant", variant_id, {
        "old_price_cents": old, "price_cents": price_cents, "change_id": change.id,
        "scheduled_by": change.created_by, "note": change.note})
    uow.emit("price.changed", {"variant_id": variant_id, "product_id": product_id,
                               "price_cents": price_cents, "old_price_cents": old})
    return change


async def apply_prices(uow: UnitOfWork, actor: Actor,
                       changes: Sequence[tuple[int, int, int]], note: str = "") -> None:
    """`apply_price` for many variants at once (a CSV import): `changes` are
    (variant id, old price, new price) read in the caller's transaction. The same
    variants, history rows, audit entries and events, in one statement each."""
    if not changes:
        return
    s = uow.session
    now = utcnow()
    await s.execute(update(Variant), [{"id": vid, "price_cents": new}
                                      for vid, _, new in changes])
    await s.execute(insert(PriceChange), [
        {"variant_id": vid, "price_cents": new, "old_price_cents": old, "effective_at": now,
         "status": APPLIED, "note": note[:200], "created_by": actor.label,
         "created_at": now, "applied_at": now} for vid, old, new in changes])
    await record_many(uow, actor, "price.change", "variant", [
        (vid, {"old_price_cents": old, "price_cents": new, "note": note[:200]})
        for vid, old, new in changes])
    owners = dict((await s.execute(select(Variant.id, Variant.product_id).where(
        Variant.id.in_([vid for vid, _, _ in changes])))).all())
    for vid, old, new in changes:
        uow.emit("price.changed", {"variant_id": vid, "product_id": owners[vid],
                                   "price_cents": new, "old_price_cents": old})


async def set_price_now(uow: UnitOfWork, actor: Actor, variant_id: int,
                        price_cents: int, note: str = "") -> PriceChange:
    """Change one variant's price at once (the API's PUT …/price, the catalogue)."""
    actor.require("prices.write", everywhere=True)  # one price for every channel
    return await apply_price(uow, actor, variant_id, price_cents, note=note)


async def _existing(s: AsyncSession, ids: list[int]) -> set[int]:
    found: set[int] = set()
    unique = sorted(set(ids))
    for i in range(0, len(unique), 1000):
        found.update((await s.scalars(
            select(Variant.id).where(Variant.id.in_(unique[i:i + 1000])))).all())
    return found


async def change_prices(uow: UnitOfWork, actor: Actor, data: PriceChangeIn,
                        now: datetime | None = None) -> list[int]:
    """Set `data.variant_ids` to one new price now (effective_at empty or not in the
    future) or schedule it. The changes share a batch id; their ids are returned."""
    actor.require("prices.write", everywhere=True)
    now = now or utcnow()
    s = uow.session
    ids = list(dict.fromkeys(data.variant_ids))
    missing = sorted(set(ids) - await _existing(s, ids))
    if missing:
        raise ValidationFailed(f"no such variant: {', '.join(map(str, missing[:10]))}",
                               code="unknown_variant", field="variant_ids")
    batched = len(ids) > 1
    out: list[int] = []
    if data.effective_at is None or data.effective_at <= now:
        batch_id: int | None = None
        for vid in ids:
            change = await apply_price(uow, actor, vid, data.price_cents, note=data.note,
                                       batch_id=batch_id)
            if batched and batch_id is None:  # the batch is named by its first change
                batch_id = change.batch_id = change.id
            out.append(change.id)
        await s.flush()
        return out
    rows = [PriceChange(variant_id=vid, price_cents=data.price_cents,
                        effective_at=data.effective_at, status=SCHEDULED,
                        note=data.note, created_by=actor.label, created_at=now)
            for vid in ids]
    s.add_all(rows)
    await s.flush()
    if batched:
        for row in rows:
            row.batch_id = rows[0].id
        await s.flush()
    for row in rows:
        await record(uow, actor, "price.schedule", "variant", row.variant_id, {
            "change_id": row.id, "price_cents": row.price_cents,
            "effective_at": row.effective_at.isoformat(), "note": row.note})
        out.append(row.id)
    return out


async def cancel_change(uow: UnitOfWork, actor: Actor, change_id: int) -> PriceChange:
    """Cancel a scheduled change (an applied one is history: change the price again)."""
    actor.require("prices.write", everywhere=True)
    q = select(PriceChange).where(PriceChange.id == change_id)
    if uow.db.is_postgres:
        q = q.with_for_update()
    change = (await uow.session.scalars(q)).one_or_none()
    if change is None:
        raise NotFound(f"no price change {change_id}", code="price_change_not_found")
    if change.status != SCHEDULED:
        raise Conflict(f"the change is {change.status} already",
                       code="price_change_not_scheduled", extra={"change_status": change.status})
    change.status = CANCELLED
    await uow.session.flush()
    await record(uow, actor, "price.cancel", "variant", change.variant_id, {
        "change_id": change.id, "price_cents": change.price_cents,
        "effective_at": change.effective_at.isoformat()})
    return change


async def apply_one_due(uow: UnitOfWork, now: datetime | None = None) -> int | None:
    """Apply the earliest due scheduled change (claimed with SKIP LOCKED on PostgreSQL);
    its id, 0 when another process took it first, or None when nothing is due. The
    caller commits."""
    now = now or utcnow()
    q = (select(PriceChange)
         .where(PriceChange.status == SCHEDULED, PriceChange.effective_at <= now)
         .order_by(PriceChange.effective_at, PriceChange.id).limit(1))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True)
    change = (await uow.session.scalars(q)).one_or_none()
    if change is None:
        return None
    # Claim it: only one transaction turns it from scheduled to applied (belt and braces
    # to SKIP LOCKED on PostgreSQL and SQLite's serialised writers).
    claimed = await uow.session.execute(
        update(PriceChange).where(PriceChange.id == change.id, PriceChange.status == SCHEDULED)
        .values(status=APPLIED).execution_options(synchronize_session=False))
    if getattr(claimed, "rowcount", 1) != 1:
        return 0
    await apply_price(uow, SYSTEM, change.variant_id, change.price_cents, change=change)
    return change.id


async def apply_due(db: Database, now: datetime | None = None, limit: int = 10_000) -> int:
    """Apply every due scheduled change, each in its own transaction; how many."""
    done = 0
    for _ in range(limit):
        async with db.uow() as uow:
            applied = await apply_one_due(uow, now)
            if applied is None:
                return done
            if applied:
                await uow.commit()
                done += 1
    return done


async def run_price_changes(db: Database, stop: asyncio.Event | None = None,
                            interval: float = 30.0) -> None:
    """The background job every app process runs (several at once are safe)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            n = await apply_due(db)
            if n:
                log.info("applied %d scheduled price changes", n)
        except Exception:  # retried on the next tick
            log.exception("applying scheduled price changes failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await stop.wait()


def _out(c: PriceChange, sku: str, name: str) -> PriceChangeOut:
    return PriceChangeOut(c.id, c.variant_id, sku, name, c.price_cents, c.old_price_cents,
                          c.effective_at, c.status, c.note, c.created_by, c.created_at,
                          c.applied_at, c.batch_id)


def _display(product: str, variant: str) -> str:
    return f"{product} – {variant}" if variant else product


async def list_changes(s: AsyncSession, *, status: str | None = None,
                       variant_id: int | None = None, limit: int = 200,
                       offset: int = 0) -> list[PriceChangeOut]:
    """Changes with the variant's SKU and name: scheduled ones soonest first, the rest
    (history) newest first."""
    q = (select(PriceChange, Variant.sku, Product.name, Variant.name)
         .join(Variant, Variant.id == PriceChange.variant_id)
         .join(Product, Product.id == Variant.product_id))
    if status is not None:
        q = q.where(PriceChange.status == status)
    if variant_id is not None:
        q = q.where(PriceChange.variant_id == variant_id)
    if status == SCHEDULED:
        q = q.order_by(PriceChange.effective_at, PriceChange.id)
    else:
        q = q.order_by(PriceChange.effective_at.desc(), PriceChange.id.desc())
    rows = (await s.execute(q.limit(limit).offset(offset))).all()
    return [_out(c, sku, _display(pn, vn)) for c, sku, pn, vn in rows]


async def price_history(s: AsyncSession, variant_id: int,
                        limit: int = 500, offset: int = 0) -> list[PriceChangeOut]:
    """Every change of the variant (applied, scheduled and cancelled), newest first."""
    return await list_changes(s, variant_id=variant_id, limit=limit, offset=offset)


# --- finding the variants to change (the back office's pickers) -------------------------

@dataclass(frozen=True)
class VariantPick:
    id: int
    product_id: int
    product_slug: str
    sku: str
    ean: str | None
    name: str
    price_cents: int
    active: bool


def _pick_query() -> Any:
    return (select(Variant.id, Variant.product_id, Product.slug, Variant.sku, Variant.ean,
                   Product.name, Variant.name, Variant.price_cents,
                   Variant.active & Product.active)
            .join(Product, Product.id == Variant.product_id))


def _picks(rows: Sequence[Any]) -> list[VariantPick]:
    return [VariantPick(r[0], r[1], r[2], r[3], r[4], _display(r[5], r[6]), r[7], bool(r[8]))
            for r in rows]


async def variant_picks(s: AsyncSession, ids: Iterable[int]) -> list[VariantPick]:
    """The variants `ids` (unknown ones left out), by product and position."""
    unique = sorted(set(ids))[:5000]
    if not unique:
        return []
    rows = (await s.execute(_pick_query().where(Variant.id.in_(unique))
                            .order_by(Product.name, Variant.position, Variant.id))).all()
    return _picks(rows)


async def search_variants(s: AsyncSession, q: str, limit: int = 50) -> list[VariantPick]:
    """Variants whose product name, variant name, SKU or EAN contains `q`."""
    q = q.strip().replace("%", "").replace("_", "")
    if not q:
        return []
    like = f"%{q}%"
    rows = (await s.execute(_pick_query().where(or_(
        Product.name.ilike(like), Variant.name.ilike(like), Variant.sku.ilike(like),
        Variant.ean == q, Product.slug == q))
        .order_by(Product.name, Variant.position, Variant.id).limit(limit))).all()
    return _picks(rows)


async def find_by_codes(s: AsyncSession, codes: Iterable[str], *, whole_product: bool = False
                        ) -> tuple[list[VariantPick], list[str]]:
    """The variants scanned or typed as SKU, EAN (also extra barcodes) or a product's
    slug (all its variants); with `whole_product`, every variant of each product found.
    Returns the variants and the codes that matched nothing."""
    wanted = list(dict.fromkeys(c.strip() for c in codes if c.strip()))[:5000]
    if not wanted:
        return [], []
    by_code: dict[str, set[int]] = {}
    product_of: dict[int, int] = {}
    for vid, pid, sku, ean in (await s.execute(
            select(Variant.id, Variant.product_id, Variant.sku, Variant.ean)
            .where(or_(Variant.sku.in_(wanted), Variant.ean.in_(wanted))))).all():
        product_of[vid] = pid
        for c in (sku, ean):
            if c in wanted:
                by_code.setdefault(c, set()).add(vid)
    for vid, pid, code in (await s.execute(
            select(VariantBarcode.variant_id, Variant.product_id, VariantBarcode.code)
            .join(Variant, Variant.id == VariantBarcode.variant_id)
            .where(VariantBarcode.code.in_(wanted)))).all():
        product_of[vid] = pid
        by_code.setdefault(code, set()).add(vid)
    slugs = [c for c in wanted if c not in by_code]
    if slugs:
        for vid, pid, slug in (await s.execute(
                select(Variant.id, Variant.product_id, Product.slug)
                .join(Product, Product.id == Variant.product_id)
                .where(Product.slug.in_(slugs)))).all():
            product_of[vid] = pid
            by_code.setdefault(slug, set()).add(vid)
    ids = {vid for found in by_code.values() for vid in found}
    if whole_product and product_of:
        ids |= set((await s.scalars(select(Variant.id).where(
            Variant.product_id.in_(set(product_of.values()))))).all())
    return await variant_picks(s, ids), [c for c in wanted if c not in by_code]
