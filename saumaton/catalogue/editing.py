"""Editing the catalogue: products, variants, further barcodes and the category tree.

One catalogue for every location: each change needs `catalogue.write` at every
location, is audited in the same transaction and emits `product.updated` (open tills
reload their snapshot, product pages read live). A product or variant set inactive is
off sale in every channel at once (the sale paths read `Variant.active AND
Product.active`); orders already made keep their lines.

The `*_problems` functions list every error of a change at once (the back office shows
each next to its field); the services raise the first one, so the API and the pages
refuse the same things.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.codes import clean_ean
from saumaton.catalogue.models import (
    Category,
    Product,
    ProductImage,
    Variant,
    VariantBarcode,
    VatClass,
)
from saumaton.catalogue.schemas import VariantOut
from saumaton.catalogue.services import GIFT_CARD_VAT_CLASS, CategoryInfo, get_variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from saumaton.core.types import Attributes, Input, Name, OptionalName
from saumaton.db.uow import UnitOfWork
from saumaton.pricing.models import CampaignTarget

MAX_BARCODES = 20  # further codes per variant


class ProductEdit(Input):
    """A product's own fields (its variants are edited one by one)."""

    name: Name = Field(min_length=1, max_length=200)
    name_en: OptionalName = Field(default="", max_length=200)
    brand: str = Field(default="", max_length=120)
    description: str = Field(default="", max_length=10_000)
    description_en: str = Field(default="", max_length=10_000)
    category_id: int | None = Field(default=None, ge=1)
    vat_class: str = Field(default="standard", max_length=32)
    active: bool = True


class VariantEdit(Input):
    """A variant's fields except its price (prices change through the price service)."""

    sku: str = Field(min_length=1, max_length=64)
    ean: str | None = Field(default=None, max_length=20)
    name: OptionalName = Field(default="", max_length=200)
    name_en: OptionalName = Field(default="", max_length=200)
    attributes: Attributes = Field(default_factory=dict, max_length=50)
    cost_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    active: bool = True


class VariantCreate(VariantEdit):
    price_cents: int = Field(ge=0, le=100_000_000)


@dataclass(frozen=True)
class CategoryEdit:
    name: str
    name_en: str = ""
    parent_id: int | None = None
    position: int = 0


def slugify(text: str) -> str:
    """'Huulipuna Äänekoski 5 ml' -> 'huulipuna-aanekoski-5-ml' (at most 100 chars)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:100].strip("-") or "item"


async def free_slug(session: AsyncSession, model: type[Product] | type[Category],
                    text: str) -> str:
    """A slug from `text` that no row of `model` has yet (-2, -3… appended)."""
    base = slugify(text)
    taken = set((await session.scalars(
        select(model.slug).where(or_(model.slug == base, model.slug.like(f"{base}-%"))))).all())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _first(problems: Sequence[DomainError]) -> None:
    if problems:
        raise problems[0]


# --- products -------------------------------------------------------------------------------

async def product_problems(session: AsyncSession, data: ProductEdit,
                           gift_card: bool = False) -> list[DomainError]:
    out: list[DomainError] = []
    if not data.name.strip():
        out.append(ValidationFailed("a product needs a name", code="name_required",
                                    field="name"))
    if await session.scalar(select(VatClass.code).where(VatClass.code == data.vat_class)) is None:
        out.append(ValidationFailed(f"unknown VAT class '{data.vat_class}'",
                                    code="unknown_vat_class", field="vat_class"))
    elif gift_card and data.vat_class != GIFT_CARD_VAT_CLASS:
        out.append(ValidationFailed("a gift card is sold in VAT class 'zero'",
                                    code="gift_card_vat_class", field="vat_class"))
    if data.category_id is not None and await session.get(Category, data.category_id) is None:
        out.append(ValidationFailed(f"unknown category {data.category_id}",
                                    code="unknown_category", field="category_id"))
    return out


async def _product(session: AsyncSession, product_id: int) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
        raise NotFound(f"no product {product_id}", code="product_not_found")
    return product


async def variant_ids_of(session: AsyncSession, product_id: int) -> list[int]:
    return list((await session.scalars(
        select(Variant.id).where(Variant.product_id == product_id).order_by(Variant.id))).all())


async def emit_updated(uow: UnitOfWork, product_id: int) -> None:
    """Tell open tills and product pages: the product or its variants changed."""
    uow.emit("product.updated", {"product_id": product_id,
                                 "variant_ids": await variant_ids_of(uow.session, product_id)})


async def update_product(uow: UnitOfWork, actor: Actor, product_id: int,
                         data: ProductEdit) -> None:
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    product = await _product(s, product_id)
    _first(await product_problems(s, data, product.gift_card))
    before = {"name": product.name, "name_en": product.name_en, "brand": product.brand,
              "category_id": product.category_id, "vat_class": product.vat_class_code,
              "active": product.active}
    product.name, product.name_en = data.name.strip(), data.name_en.strip()
    product.brand = data.brand.strip()
    product.description, product.description_en = data.description, data.description_en
    product.category_id, product.vat_class_code = data.category_id, data.vat_class
    product.active = data.active
    product.updated_at = utcnow()
    await s.flush()
    after = {"name": product.name, "name_en": product.name_en, "brand": product.brand,
             "category_id": product.category_id, "vat_class": product.vat_class_code,
             "active": product.active}
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    await record(uow, actor, "product.update", "product", product_id, {"changed": changed})
    await emit_updated(uow, product_id)


# --- variants -------------------------------------------------------------------------------

async def code_owner(session: AsyncSession, code: str) -> int | None:
    """The variant that has `code` as its EAN or as a further barcode."""
    found = await session.scalar(select(Variant.id).where(Variant.ean == code))
    if found is None:
        found = await session.scalar(
            select(VariantBarcode.variant_id).where(VariantBarcode.code == code))
    return found


async def variant_problems(session: AsyncSession, data: VariantEdit,
                           variant_id: int | None = None) -> list[DomainError]:
    """Every error of a new (`variant_id` None) or edited variant: the EAN's check digit,
    an SKU or code another variant has."""
    out: list[DomainError] = []
    sku = data.sku.strip()
    if not sku:
        out.append(ValidationFailed("a variant needs an SKU", code="sku_required", field="sku"))
    elif (other := await session.scalar(select(Variant.id).where(Variant.sku == sku))) \
            is not None and other != variant_id:
        out.append(Conflict(f"SKU '{sku}' is already in use", code="duplicate_sku",
                            field="sku"))
    if data.ean and data.ean.strip():
        try:
            ean = clean_ean(data.ean.strip())
        except ValidationFailed as exc:
            out.append(exc)
        else:
            owner = await code_owner(session, ean)
            if owner is not None and owner != variant_id:
                out.append(Conflict(f"EAN '{ean}' is already in use", code="duplicate_ean",
                                    field="ean", extra={"barcode": ean}))
            elif owner == variant_id and variant_id is not None and await session.scalar(
                    select(VariantBarcode.id).where(VariantBarcode.code == ean)) is not None:
                out.append(Conflict(f"EAN '{ean}' is already a further barcode of this variant",
                                    code="duplicate_ean", field="ean", extra={"barcode": ean}))
    return out


async def add_variant(uow: UnitOfWork, actor: Actor, product_id: int,
                      data: VariantCreate) -> VariantOut:
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    product = await _product(s, product_id)
    _first(await variant_problems(s, data))
    position = await s.scalar(select(func.max(Variant.position))
                              .where(Variant.product_id == product_id))
    variant = Variant(
        product_id=product.id, sku=data.sku.strip(),
        ean=clean_ean(data.ean.strip()) if data.ean and data.ean.strip() else None,
        name=data.name.strip(), name_en=data.name_en.strip(), attributes=dict(data.attributes),
        price_cents=data.price_cents, cost_cents=data.cost_cents, active=data.active,
        position=(position or 0) + 1)
    s.add(variant)
    await s.flush()
    await record(uow, actor, "variant.create", "variant", variant.id, {
        "product_id": product_id, "sku": variant.sku, "ean": variant.ean,
        "price_cents": variant.price_cents, "cost_cents": variant.cost_cents})
    await emit_updated(uow, product_id)
    return await get_variant(s, variant.id)


async def update_variant(uow: UnitOfWork, actor: Actor, variant_id: int,
                         data: VariantEdit) -> VariantOut:
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    variant = await s.get(Variant, variant_id)
    if variant is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found")
    _first(await variant_problems(s, data, variant_id))
    fields = ("sku", "ean", "name", "name_en", "attributes", "cost_cents", "active")
    before = {k: getattr(variant, k) for k in fields}
    variant.sku, variant.name, variant.name_en = (data.sku.strip(), data.name.strip(),
                                                  data.name_en.strip())
    variant.ean = clean_ean(data.ean.strip()) if data.ean and data.ean.strip() else None
    variant.attributes = dict(data.attributes)
    variant.cost_cents, variant.active = data.cost_cents, data.active
    await s.flush()
    changed = {k: [before[k], getattr(variant, k)] for k in fields
               if before[k] != getattr(variant, k)}
    await record(uow, actor, "variant.update", "variant", variant_id, {
        "product_id": variant.product_id, "changed": changed})
    await emit_updated(uow, variant.product_id)
    return await get_variant(s, variant_id)


# --- further barcodes -----------------------------------------------------------------------

async def barcodes_of(session: AsyncSession, variant_ids: Sequence[int]
                      ) -> dict[int, list[tuple[int, str]]]:
    """(barcode id, code) of each variant's further barcodes."""
    out: dict[int, list[tuple[int, str]]] = {vid: [] for vid in variant_ids}
    if variant_ids:
        for bid, vid, code in (await session.execute(
                select(VariantBarcode.id, VariantBarcode.variant_id, VariantBarcode.code)
                .where(VariantBarcode.variant_id.in_(list(variant_ids)))
                .order_by(VariantBarcode.id))).all():
            out[vid].append((bid, code))
    return out


async def add_barcode(uow: UnitOfWork, actor: Actor, variant_id: int, code: str) -> str:
    """A further EAN/GTIN of the variant; a code belongs to one variant only."""
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    variant = await s.get(Variant, variant_id)
    if variant is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found")
    clean = clean_ean(code.strip(), "code")
    if await code_owner(s, clean) is not None:
        raise Conflict(f"the code '{clean}' is already in use", code="duplicate_ean",
                       field="code", extra={"barcode": clean})
    count = await s.scalar(select(func.count()).select_from(VariantBarcode)
                           .where(VariantBarcode.variant_id == variant_id)) or 0
    if count >= MAX_BARCODES:
        raise ValidationFailed(f"at most {MAX_BARCODES} further barcodes per variant",
                               code="too_many_barcodes", field="code")
    s.add(VariantBarcode(variant_id=variant_id, code=clean))
    await s.flush()
    await record(uow, actor, "barcode.add", "variant", variant_id, {"code": clean})
    await emit_updated(uow, variant.product_id)
    return clean


async def remove_barcode(uow: UnitOfWork, actor: Actor, variant_id: int,
                         barcode_id: int) -> None:
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    row = await s.get(VariantBarcode, barcode_id)
    if row is None or row.variant_id != variant_id:
        raise NotFound(f"no barcode {barcode_id} on variant {variant_id}",
                       code="barcode_not_found")
    product_id = await s.scalar(select(Variant.product_id).where(Variant.id == variant_id))
    await s.execute(delete(VariantBarcode).where(VariantBarcode.id == barcode_id))
    await record(uow, actor, "barcode.remove", "variant", variant_id, {"code": row.code})
    if product_id is not None:
        await emit_updated(uow, product_id)


# --- categories -----------------------------------------------------------------------------

async def category_problems(session: AsyncSession, data: CategoryEdit,
                            category_id: int | None = None) -> list[DomainError]:
    out: list[DomainError] = []
    if not data.name.strip() or len(data.name) > 200:
        out.append(ValidationFailed("a category needs a name (at most 200 characters)",
                                    code="invalid_name", field="name"))
    if len(data.name_en) > 200:
        out.append(ValidationFailed("at most 200 characters", code="too_long",
                                    field="name_en"))
    if not 0 <= data.position <= 10_000:
        out.append(ValidationFailed("a position is 0-10000", code="invalid_position",
                                    field="position"))
    if data.parent_id is not None:
        parents = dict((await session.execute(select(Category.id, Category.parent_id))).all())
        if data.parent_id not in parents:
            out.append(ValidationFailed(f"unknown category {data.parent_id}",
                                        code="unknown_category", field="parent_id"))
        elif category_id is not None:
            node: int | None = data.parent_id  # walk up: the category must not be met
            seen: set[int] = set()
            while node is not None and node not in seen:
                if node == category_id:
                    out.append(ValidationFailed(
                        "a category cannot be under itself or its own subcategory",
                        code="category_cycle", field="parent_id"))
                    break
                seen.add(node)
                node = parents.get(node)
    return out


async def save_category(uow: UnitOfWork, actor: Actor, category_id: int | None,
                        data: CategoryEdit) -> CategoryInfo:
    """Create (`category_id` None) or edit a category; a parent that would make a
    cycle is refused."""
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    category = None
    if category_id is not None:
        category = await s.get(Category, category_id)
        if category is None:
            raise NotFound(f"no category {category_id}", code="category_not_found")
    _first(await category_problems(s, data, category_id))
    if category is None:
        category = Category(slug=await free_slug(s, Category, data.name_en or data.name),
                            name="", parent_id=None)
        s.add(category)
        action = "category.create"
    else:
        action = "category.update"
    category.name, category.name_en = data.name.strip(), data.name_en.strip()
    category.parent_id, category.position = data.parent_id, data.position
    await s.flush()
    await record(uow, actor, action, "category", category.id, {
        "name": category.name, "name_en": category.name_en, "parent_id": category.parent_id,
        "position": category.position})
    uow.emit("category.updated", {"category_id": category.id})
    return CategoryInfo(category.id, category.slug, category.name, category.parent_id)


async def product_images(session: AsyncSession, product_id: int) -> list[ProductImage]:
    return list((await session.scalars(
        select(ProductImage).where(ProductImage.product_id == product_id)
        .order_by(ProductImage.position, ProductImage.id))).all())


# --- reads for the API's lists (keyset pages: `limit + 1` rows, the extra one says more) ---

async def categories_after(session: AsyncSession, after_id: int | None, limit: int,
                           parent_id: int | None = None) -> list[CategoryInfo]:
    """Categories by id, those after `after_id`; with `parent_id`, its children only."""
    q = select(Category.id, Category.slug, Category.name, Category.parent_id,
               Category.name_en, Category.position).order_by(Category.id).limit(limit + 1)
    if after_id is not None:
        q = q.where(Category.id > after_id)
    if parent_id is not None:
        q = q.where(Category.parent_id == parent_id)
    return [CategoryInfo(*row) for row in (await session.execute(q)).all()]


async def get_category(session: AsyncSession, category_id: int) -> CategoryInfo:
    row = (await session.execute(
        select(Category.id, Category.slug, Category.name, Category.parent_id,
               Category.name_en, Category.position).where(Category.id == category_id))).first()
    if row is None:
        raise NotFound(f"no category {category_id}", code="category_not_found")
    return CategoryInfo(*row)


async def barcodes_after(session: AsyncSession, variant_id: int, after_id: int | None,
                         limit: int) -> list[VariantBarcode]:
    """A variant's further barcodes by id (404 when the variant does not exist)."""
    if await session.get(Variant, variant_id) is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found")
    q = (select(VariantBarcode).where(VariantBarcode.variant_id == variant_id)
         .order_by(VariantBarcode.id).limit(limit + 1))
    if after_id is not None:
        q = q.where(VariantBarcode.id > after_id)
    return list((await session.scalars(q)).all())


async def delete_category(uow: UnitOfWork, actor: Actor, category_id: int) -> None:
    """Remove an empty category. One with subcategories, products or campaigns aimed
    at it is refused (409 `category_not_empty`, with how many of each): move or change
    them first, so nothing loses its place in the tree, or its discount, by accident."""
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    category = await s.get(Category, category_id)
    if category is None:
        raise NotFound(f"no category {category_id}", code="category_not_found")
    children = await s.scalar(select(func.count()).select_from(Category)
                              .where(Category.parent_id == category_id)) or 0
    products = await s.scalar(select(func.count()).select_from(Product)
                              .where(Product.category_id == category_id)) or 0
    campaigns = await s.scalar(select(func.count()).select_from(CampaignTarget).where(
        CampaignTarget.target_type == "category",
        CampaignTarget.target_id == category_id)) or 0
    if children or products or campaigns:
        raise Conflict("the category has subcategories, products or campaigns: move or "
                       "change them first", code="category_not_empty",
                       extra={"subcategories": int(children), "products": int(products),
                              "campaigns": int(campaigns)})
    name, slug = category.name, category.slug
    await s.delete(category)
    await s.flush()
    await record(uow, actor, "category.delete", "category", category_id,
                 {"name": name, "slug": slug})
    uow.emit("category.deleted", {"category_id": category_id})
