"""A supplier delivery received by scanning, a write-off with a reason, and the scanned
code → variant look-up the stock pages share."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.models import Product, Variant, VariantBarcode
from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.services import LevelAfter, Move, apply_moves
from saumaton.inventory.transfers import MAX_LINES, MAX_QUANTITY, check_variants, merge_lines
from saumaton.locations.models import Location


async def variant_by_code(session: AsyncSession, code: str) -> tuple[int, str, str]:
    """A scanned or typed code (EAN/GTIN, a further barcode, or the SKU) → (variant id,
    SKU, display name). `unknown_code` if nothing has it."""
    code = code.strip()
    if not code or len(code) > 64:
        raise NotFound("no product with this code", code="unknown_code", field="code")
    row = (await session.execute(
        select(Variant.id, Variant.sku, Product.name, Variant.name)
        .join(Product, Product.id == Variant.product_id)
        .where(or_(Variant.ean == code, Variant.sku == code))
        .order_by(case((Variant.ean == code, 0), else_=1), Variant.id).limit(1))).first()
    if row is None:
        row = (await session.execute(
            select(Variant.id, Variant.sku, Product.name, Variant.name)
            .join(Product, Product.id == Variant.product_id)
            .join(VariantBarcode, VariantBarcode.variant_id == Variant.id)
            .where(VariantBarcode.code == code).limit(1))).first()
    if row is None:
        raise NotFound(f"no product with code '{code}'", code="unknown_code", field="code")
    return int(row[0]), str(row[1]), f"{row[2]} {row[3]}".strip()


async def receive_delivery(uow: UnitOfWork, actor: Actor, location_id: int,
                           lines: Sequence[tuple[int, int]], *, reference: str,
                           supplier: str = "") -> list[LevelAfter]:
    """Post a scanned delivery: one receipt movement per variant, in one transaction."""
    actor.require("stock.write", location_id)
    if await uow.session.scalar(select(Location.id).where(Location.id == location_id)) is None:
        raise NotFound(f"no location {location_id}", code="location_not_found",
                       field="location_id")
    reference, supplier = reference.strip(), supplier.strip()
    if not reference:
        raise ValidationFailed("give the delivery's reference (delivery note number)",
                               code="reference_required", field="reference")
    if len(reference) > 100:
        raise ValidationFailed("a reference has at most 100 characters",
                               code="reference_too_long", field="reference")
    if len(supplier) > 150:
        raise ValidationFailed("a supplier name has at most 150 characters",
                               code="supplier_too_long", field="supplier")
    merged = merge_lines(lines)
    if not merged:
        raise ValidationFailed("scan at least one product", code="no_lines", field="lines")
    if len(merged) > MAX_LINES:
        raise ValidationFailed(f"at most {MAX_LINES} lines", code="too_many_lines",
                               field="lines")
    if any(q <= 0 or q > MAX_QUANTITY for q in merged.values()):
        raise ValidationFailed("each quantity must be positive", code="invalid_quantity",
                               field="lines")
    await check_variants(uow.session, list(merged))
    reason = f"delivery from {supplier}" if supplier else "delivery"
    afters = await apply_moves(uow, actor, [
        Move(vid, location_id, qty, "receipt", reason=reason[:200], reference=reference)
        for vid, qty in sorted(merged.items())])
    await record(uow, actor, "stock.receive", "location", location_id, {
        "reference": reference, "supplier": supplier,
        "lines": [[vid, qty] for vid, qty in sorted(merged.items())]})
    return afters


async def write_off(uow: UnitOfWork, actor: Actor, variant_id: int, location_id: int,
                    quantity: int, *, reason: str) -> LevelAfter:
    """Take units off the shelf for good (broken, expired, stolen): a reason is needed.
    Like an adjustment it never refuses; a level taken below zero is flagged."""
    actor.require("stock.write", location_id)
    reason = reason.strip()
    if quantity <= 0 or quantity > MAX_QUANTITY:
        raise ValidationFailed("the quantity written off must be positive",
                               code="invalid_quantity", field="quantity")
    if not reason:
        raise ValidationFailed("a write-off needs a reason", code="reason_required",
                               field="reason")
    if len(reason) > 200:
        raise ValidationFailed("a reason has at most 200 characters", code="reason_too_long",
                               field="reason")
    await check_variants(uow.session, [variant_id])
    if await uow.session.scalar(select(Location.id).where(Location.id == location_id)) is None:
        raise NotFound(f"no location {location_id}", code="location_not_found",
                       field="location_id")
    [after] = await apply_moves(uow, actor, [Move(variant_id, location_id, -quantity,
                                                  "write_off", reason=reason)])
    await record(uow, actor, "stock.write_off", "variant", variant_id, {
        "location_id": location_id, "quantity": quantity, "reason": reason})
    return after
