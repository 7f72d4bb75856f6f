"""Importing stock levels: location code, SKU or EAN, the quantity on hand. A level
that differs is set with a count movement through the ledger (`apply_moves`); an equal
one writes nothing. The export's `on_hand` column is read as the quantity, so an export
re-imports unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import Actor
from saumaton.csvio.files import RowError, excel_text, format_euros
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import Move, apply_moves
from saumaton.locations.models import Location

COLUMNS = ("location", "sku", "ean", "quantity")
EXPORT_COLUMNS = ("location", "sku", "ean", "name", "on_hand", "reserved", "available",
                  "cost_value")
REQUIRED = ("location",)
MAX_QUANTITY = 1_000_000


def require(actor: Actor) -> None:
    """The right to change stock somewhere; each row's location is checked on the row."""
    actor.require("stock.write")


@dataclass
class State:
    locations: dict[str, int]
    seen: dict[tuple[int, int], int] = field(default_factory=dict)  # (variant, loc) -> row


async def load_state(session: AsyncSession) -> State:
    return State(dict((await session.execute(select(Location.code, Location.id)))
                      .all()))


Result = tuple[str, list[RowError]]


async def process(uow: UnitOfWork, actor: Actor, state: State,
                  rows: list[tuple[int, dict[str, str]]], *, write: bool,
                  reference: str) -> list[Result]:
    s = uow.session
    results: dict[int, Result] = {}
    skus = {v.get("sku", "") for _, v in rows} - {""}
    eans = {v.get("ean", "").replace(" ", "") for _, v in rows} - {""}
    by_sku: dict[str, int] = {}
    by_ean: dict[str, int] = {}
    if skus:
        by_sku = dict((await s.execute(select(Variant.sku, Variant.id)
                                       .where(Variant.sku.in_(skus)))).all())
    if eans:
        by_ean = {e: i for e, i in (await s.execute(select(Variant.ean, Variant.id)
                                                    .where(Variant.ean.in_(eans)))).all()
                  if e is not None}
    wanted: list[tuple[int, int, int, int]] = []  # row, variant, location, quantity
    for n, v in rows:
        errors: list[RowError] = []
        loc = state.locations.get(v.get("location", ""))
        if not v.get("location"):
            errors.append(RowError(n, "location", "required", "location is required"))
        elif loc is None:
            errors.append(RowError(n, "location", "unknown_location",
                                   f"no location '{v['location']}'"))
        elif not actor.can("stock.write", loc):
            errors.append(RowError(n, "location", "forbidden",
                                   f"you may not change the stock at {v['location']}"))
        sku, ean = v.get("sku", ""), v.get("ean", "").replace(" ", "")
        variant = None
        if not sku and not ean:
            errors.append(RowError(n, "sku", "required", "give the SKU or the EAN"))
        elif sku:
            variant = by_sku.get(sku)
            if variant is None:
                errors.append(RowError(n, "sku", "unknown_sku", f"no product with SKU {sku}"))
            elif ean and by_ean.get(ean) != variant:
                errors.append(RowError(n, "ean", "ean_mismatch",
                                       f"EAN {ean} is not the EAN of SKU {sku}"))
        else:
            variant = by_ean.get(ean)
            if variant is None:
                errors.append(RowError(n, "ean", "unknown_ean", f"no product with EAN {ean}"))
        raw = v.get("quantity", "") or v.get("on_hand", "")
        col = "quantity" if "quantity" in v or "on_hand" not in v else "on_hand"
        quantity = None
        try:
            quantity = int(raw.replace(" ", ""))
            if not 0 <= quantity <= MAX_QUANTITY:
                raise ValueError(raw)
        except ValueError:
            errors.append(RowError(n, col, "invalid_quantity",
                                   "the quantity is a whole number, 0 or more"
                                   if raw else "the quantity is required"))
        if not errors and variant is not None and loc is not None and quantity is not None:
            other = state.seen.get((variant, loc))
            if other is not None:
                errors.append(RowError(n, "sku", "duplicate_row",
                                       f"row {other} gives the same product and location"))
            else:
                state.seen[(variant, loc)] = n
                wanted.append((n, variant, loc, quantity))
        if errors:
            results[n] = ("e", errors)
    current: dict[tuple[int, int], tuple[int, bool]] = {}
    if wanted:
        keys = sorted({(w[1], w[2]) for w in wanted})
        stmt = select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand,
                      StockLevel.needs_count).where(
            tuple_(StockLevel.variant_id, StockLevel.location_id).in_(keys))
        if write:
            stmt = stmt.order_by(StockLevel.variant_id, StockLevel.location_id) \
                .with_for_update()
        current = {(r[0], r[1]): (r[2], bool(r[3])) for r in (await s.execute(stmt)).all()}
    moves = []
    counted: list[tuple[int, int]] = []  # levels flagged "needs a count": counted now
    for n, variant, loc, quantity in wanted:
        on_hand, flagged = current.get((variant, loc), (0, False))
        diff = quantity - on_hand
        results[n] = ("u" if diff or flagged else "=", [])
        if diff:
            moves.append(Move(variant, loc, diff, "count", reason=f"counted {quantity}",
                              reference=reference[:100]))
        if flagged:
            counted.append((variant, loc))
    if write and moves:
        await apply_moves(uow, actor, moves)
    if write and counted:
        # Like a stock count: the level is known again.
        await s.execute(update(StockLevel).where(
            tuple_(StockLevel.variant_id, StockLevel.location_id).in_(counted),
            StockLevel.needs_count.is_(True)).values(needs_count=False)
            .execution_options(synchronize_session=False))
    return [results[n] for n, _ in rows]


async def export_rows(session: AsyncSession, after: tuple[int, int], limit: int
                      ) -> tuple[tuple[int, int], list[list[object]]]:
    """The next `limit` stock levels after the key `after` (variant id, location id)."""
    rows = (await session.execute(
        select(StockLevel.variant_id, StockLevel.location_id, Location.code, Variant.sku,
               Variant.ean, Product.name, Variant.name.label("vname"), StockLevel.on_hand,
               StockLevel.reserved, Variant.cost_cents)
        .join(Location, Location.id == StockLevel.location_id)
        .join(Variant, Variant.id == StockLevel.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(tuple_(StockLevel.variant_id, StockLevel.location_id) > tuple_(*after))
        .order_by(StockLevel.variant_id, StockLevel.location_id).limit(limit))).all()
    out: list[list[object]] = []
    for r in rows:
        name = f"{r.name} – {r.vname}" if r.vname else r.name
        value: Any = None if r.cost_cents is None else r.cost_cents * r.on_hand
        out.append([r.code, excel_text(r.sku), r.ean or "", excel_text(name), r.on_hand,
                    r.reserved,
                    r.on_hand - r.reserved, format_euros(value)])
    last = (rows[-1].variant_id, rows[-1].location_id) if rows else after
    return last, out
