"""Products and VAT rates as each process keeps them, for the webshop's pages.

A product (its variants with their prices, its pictures) is read once and kept until
an outbox event says it changed: editing (`product.updated`, also sent by the picture
and barcode changes and the CSV import), a new product (`product.created`), a price
change (`price.changed`) or a category's change (`category.updated`/`.deleted`). The
event drops the value in every process (`Database.cached`), so the next page view reads
it again; PRODUCT_SECONDS is only the backstop for a change made outside the app.
VAT rates are never changed by the app; they are kept a minute per business day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import VatRate
from saumaton.catalogue.schemas import ProductOut
from saumaton.catalogue.services import VariantInfo, display_name, get_product
from saumaton.core.errors import ValidationFailed
from saumaton.db.uow import Database

PRODUCT_TOPICS = ("product.updated", "product.created", "price.changed",
                  "category.updated", "category.deleted")
PRODUCT_SECONDS = 60.0
VAT_SECONDS = 60.0


async def product_by_slug(db: Database, session: AsyncSession, slug: str) -> ProductOut:
    """`get_product(session, slug)`, kept in this process until the product changes.
    The value is shared: callers must not change it. An unknown slug raises NotFound
    (and is not kept)."""
    async def load() -> ProductOut:
        return await get_product(session, slug)
    return await db.cached(("product", slug), PRODUCT_SECONDS, load, topics=PRODUCT_TOPICS)


async def vat_rates(db: Database, session: AsyncSession, day: date) -> dict[str, int]:
    """Rate (basis points) per VAT class in force on `day`: of overlapping rows the
    latest `valid_from`, as `load_variant_infos` chooses."""
    async def load() -> dict[str, int]:
        rows = await session.execute(
            select(VatRate.vat_class_code, VatRate.rate_bp).where(
                VatRate.valid_from <= day,
                or_(VatRate.valid_to.is_(None), VatRate.valid_to > day))
            .order_by(VatRate.valid_from))
        return {code: bp for code, bp in rows.all()}
    return await db.cached(("vat-rates", day), VAT_SECONDS, load)


def variant_infos(product: ProductOut, variant_ids: Iterable[int], rates: dict[str, int],
                  day: date) -> list[VariantInfo]:
    """What `load_variant_infos` returns for these variants of `product`, from the
    product in hand and the day's VAT `rates`."""
    wanted = set(variant_ids)
    out = []
    for v in product.variants:
        if v.id not in wanted:
            continue
        rate = rates.get(product.vat_class)
        if rate is None:
            raise ValidationFailed(f"no VAT rate in force for variant {v.sku} on {day}",
                                   code="no_vat_rate")
        out.append(VariantInfo(
            id=v.id, product_id=product.id, category_id=product.category_id, sku=v.sku,
            ean=v.ean, name=display_name(product.name, v.name), price_cents=v.price_cents,
            vat_rate_bp=rate, active=v.active and product.active,
            gift_card=product.gift_card))
    return out
