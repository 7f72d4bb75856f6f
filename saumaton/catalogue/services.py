"""Catalogue services: products and variants, VAT rates by date, variant lookups."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, or_, select
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
    VatRate,
)
from saumaton.catalogue.schemas import ImageIn, ImageOut, ProductIn, ProductOut, VariantOut
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.fetcher import Fetcher
from saumaton.db.uow import UnitOfWork


@dataclass(frozen=True)
class VariantInfo:
    """What selling a variant needs: identity, list price and the VAT rate in force."""

    id: int
    product_id: int
    category_id: int | None
    sku: str
    ean: str | None
    name: str  # product name + variant name
    price_cents: int
    vat_rate_bp: int
    active: bool
    # A gift card: each unit sold issues a card; no stock, no campaign discount.
    gift_card: bool = False


GIFT_CARD_VAT_CLASS = "zero"


def display_name(product_name: str, variant_name: str) -> str:
    return f"{product_name} – {variant_name}" if variant_name else product_name


async def vat_rates_on(session: AsyncSession, day: date) -> dict[str, int]:
    """Rate (basis points) per VAT class in force on `day`."""
    rows = await session.execute(
        select(VatRate.vat_class_code, VatRate.rate_bp).where(
            VatRate.valid_from <= day, or_(VatRate.valid_to.is_(None), VatRate.valid_to > day)
        )
    )
    return {code: bp for code, bp in rows.all()}


async def load_variant_infos(
    session: AsyncSession, day: date, *, ids: Iterable[int] = (), eans: Iterable[str] = ()
) -> list[VariantInfo]:
    """Variants by id and/or EAN with their VAT rate on `day`, in one query."""
    ids, eans = list(ids), list(eans)
    if not ids and not eans:
        return []
    conds = []
    if ids:
        conds.append(Variant.id.in_(ids))
    if eans:
        conds.append(Variant.ean.in_(eans))
    rate = (
        select(VatRate.rate_bp)
        .where(
            VatRate.vat_class_code == Product.vat_class_code, VatRate.valid_from <= day,
            or_(VatRate.valid_to.is_(None), VatRate.valid_to > day),
        )
        .order_by(VatRate.valid_from.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            Variant.id, Variant.product_id, Product.category_id, Variant.sku, Variant.ean,
            Product.name, Variant.name, Variant.price_cents, rate,
            and_(Variant.active, Product.active), Product.gift_card,
        )
        .join(Product, Product.id == Variant.product_id)
        .where(or_(*conds))
    )
    return _variant_infos((await session.execute(stmt)).all(), day)


# The column of `pg_variant_info_columns` with the VAT rate (NULL: none in force on the
# day: the variant cannot be sold, `variant_info_of` refuses it).
VARIANT_INFO_RATE_COLUMN = 8


def pg_variant_info_columns(day: str) -> str:
    """The select list of a `VariantInfo` (as `variant_info_of` reads it) for a
    PostgreSQL statement that reads variants `v` joined with their products `p`: the
    VAT rate in force on `day` (the SQL of a date) as `load_variant_infos` chooses it.
    For hot paths that read variants within a statement of their own."""
    return f"""v.id, v.product_id, p.category_id, v.sku, v.ean, p.name, v.name, v.price_cents,
       (SELECT r.rate_bp FROM vat_rates r
        WHERE r.vat_class_code = p.vat_class_code AND r.valid_from <= {day}
              AND (r.valid_to IS NULL OR r.valid_to > {day})
        ORDER BY r.valid_from DESC LIMIT 1),
       v.active AND p.active, p.gift_card"""


# The same query as `load_variant_infos`, as one constant statement for the PostgreSQL
# hot path (prepared once per connection; empty arrays match nothing). The arrays are
# read through sub-selects, so that the plan is made once per connection (see
# saumaton.db.uow: generic plans).
_PG_VARIANT_INFOS_SQL = f"""
SELECT {pg_variant_info_columns("$3::date")}
FROM variants v JOIN products p ON p.id = v.product_id
WHERE v.id = ANY((SELECT $1::int[])::int[]) OR v.ean = ANY((SELECT $2::text[])::text[])"""


async def load_variant_infos_pg(
    uow: Fetcher, day: date, *, ids: Iterable[int] = (), eans: Iterable[str] = ()
) -> list[VariantInfo]:
    """`load_variant_infos` inside `uow`'s transaction on PostgreSQL (or on a read's
    own connection outside one), as a prepared statement on the driver (same rows,
    same errors)."""
    ids, eans = list(ids), list(eans)
    if not ids and not eans:
        return []
    return _variant_infos(await uow.fetch(_PG_VARIANT_INFOS_SQL, ids, eans, day), day)


def _variant_infos(rows: Iterable[Sequence[Any]], day: date) -> list[VariantInfo]:
    return [variant_info_of(row, day) for row in rows]


def variant_info_of(row: Sequence[Any], day: date) -> VariantInfo:
    """A `VariantInfo` from the columns of `pg_variant_info_columns` (or
    `load_variant_infos`' statement), in that order. A variant with no VAT rate in
    force on `day` cannot be sold: ValidationFailed."""
    if row[VARIANT_INFO_RATE_COLUMN] is None:
        raise ValidationFailed(f"no VAT rate in force for variant {row[3]} on {day}",
                               code="no_vat_rate")
    return VariantInfo(
        id=row[0], product_id=row[1], category_id=row[2], sku=row[3], ean=row[4],
        name=display_name(row[5], row[6]), price_cents=row[7],
        vat_rate_bp=row[VARIANT_INFO_RATE_COLUMN], active=bool(row[9]), gift_card=bool(row[10]),
    )


async def create_product(uow: UnitOfWork, actor: Actor, data: ProductIn) -> ProductOut:
    actor.require("catalogue.write", everywhere=True)  # one catalogue for every location
    s = uow.session
    if await s.scalar(select(VatClass.code).where(VatClass.code == data.vat_class)) is None:
        raise ValidationFailed(f"unknown VAT class '{data.vat_class}'", code="unknown_vat_class",
                               field="vat_class")
    if data.gift_card and data.vat_class != GIFT_CARD_VAT_CLASS:
        # A multi-purpose voucher is not taxed when sold, only when spent (VAT Act §§ 17 a-c).
        raise ValidationFailed("a gift card is sold in VAT class 'zero'",
                               code="gift_card_vat_class", field="vat_class")
    category_id = None
    if data.category_slug:
        category_id = await s.scalar(select(Category.id).where(Category.slug == data.category_slug))
        if category_id is None:
            raise ValidationFailed(f"unknown category '{data.category_slug}'",
                                   code="unknown_category", field="category_slug")
    if await s.scalar(select(Product.id).where(Product.slug == data.slug)) is not None:
        raise Conflict(f"a product with slug '{data.slug}' exists", code="duplicate_slug",
                       field="slug")
    eans = [clean_ean(v.ean, f"variants.{i}.ean") if v.ean else None
            for i, v in enumerate(data.variants)]
    skus = [v.sku for v in data.variants]
    if len(set(skus)) != len(skus):
        raise ValidationFailed("SKUs repeat within the product", code="duplicate_sku")
    real_eans = [e for e in eans if e]
    if len(set(real_eans)) != len(real_eans):
        raise ValidationFailed("EANs repeat within the product", code="duplicate_ean")
    clash = await s.execute(
        select(Variant.sku, Variant.ean).where(
            or_(Variant.sku.in_(skus), Variant.ean.in_(real_eans or [""]))
        )
    )
    for sku, ean in clash.all():
        if sku in skus:
            raise Conflict(f"SKU '{sku}' is already in use", code="duplicate_sku",
                           field=f"variants.{skus.index(sku)}.sku")
        raise Conflict(f"EAN '{ean}' is already in use", code="duplicate_ean",
                       field=f"variants.{eans.index(ean)}.ean", extra={"barcode": ean})
    if real_eans:  # a code belongs to one variant, as its EAN or a further barcode
        taken = await s.scalar(select(VariantBarcode.code).where(
            VariantBarcode.code.in_(real_eans)).limit(1))
        if taken is not None:
            raise Conflict(f"EAN '{taken}' is already in use", code="duplicate_ean",
                           field=f"variants.{eans.index(taken)}.ean", extra={"barcode": taken})
    product = Product(
        slug=data.slug, name=data.name, brand=data.brand, description=data.description,
        name_en=data.name_en.strip(), description_en=data.description_en,
        category_id=category_id, vat_class_code=data.vat_class, active=True,
        gift_card=data.gift_card,
    )
    s.add(product)
    await s.flush()
    variants = [
        Variant(product_id=product.id, sku=v.sku, ean=eans[i], name=v.name,
                name_en=v.name_en.strip(), attributes=dict(v.attributes),
                price_cents=v.price_cents, cost_cents=v.cost_cents, active=True, position=i)
        for i, v in enumerate(data.variants)
    ]
    s.add_all(variants)
    await s.flush()
    await record(uow, actor, "product.create", "product", product.id, {
        "slug": product.slug, "name": product.name,
        "variants": [{"id": v.id, "sku": v.sku, "ean": v.ean, "price_cents": v.price_cents}
                     for v in variants]})
    uow.emit("product.created", {"product_id": product.id, "slug": product.slug})
    return _product_out(product, variants)


def _variant_out(v: Variant) -> VariantOut:
    return VariantOut(id=v.id, product_id=v.product_id, sku=v.sku, ean=v.ean, name=v.name,
                      attributes=dict(v.attributes or {}), price_cents=v.price_cents,
                      active=v.active, name_en=v.name_en or "")


def _product_out(p: Product, variants: Sequence[Variant],
                 images: Sequence[ImageOut] = ()) -> ProductOut:
    return ProductOut(
        id=p.id, slug=p.slug, name=p.name, brand=p.brand, description=p.description,
        category_id=p.category_id, vat_class=p.vat_class_code, active=p.active,
        gift_card=p.gift_card, name_en=p.name_en or "", description_en=p.description_en or "",
        variants=[_variant_out(v) for v in sorted(variants, key=lambda v: (v.position, v.id))],
        images=list(images),
    )


async def load_images(session: AsyncSession, product_ids: Iterable[int]
                      ) -> dict[int, list[ImageOut]]:
    """The images of each product in gallery order, in one query."""
    ids = list(product_ids)
    out: dict[int, list[ImageOut]] = {pid: [] for pid in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(ProductImage.product_id, ProductImage.url, ProductImage.alt,
               ProductImage.variant_id)
        .where(ProductImage.product_id.in_(ids))
        .order_by(ProductImage.product_id, ProductImage.position, ProductImage.id))
    for pid, url, alt, variant_id in rows.all():
        out[pid].append(ImageOut(url=url, alt=alt, variant_id=variant_id))
    return out


async def load_products(session: AsyncSession, product_ids: Sequence[int]
                        ) -> dict[int, ProductOut]:
    """Products by id with their variants and images: three queries, whatever the count."""
    if not product_ids:
        return {}
    products = (await session.scalars(
        select(Product).where(Product.id.in_(list(product_ids))))).all()
    by_product: dict[int, list[Variant]] = {p.id: [] for p in products}
    if products:
        for v in (await session.scalars(
            select(Variant).where(Variant.product_id.in_(list(by_product)))
        )).all():
            by_product[v.product_id].append(v)
    images = await load_images(session, by_product)
    return {p.id: _product_out(p, by_product[p.id], images[p.id]) for p in products}


async def get_product(session: AsyncSession, key: int | str) -> ProductOut:
    cond = Product.id == key if isinstance(key, int) else Product.slug == key
    product_id = await session.scalar(select(Product.id).where(cond))
    if product_id is None:
        raise NotFound(f"no product {key!r}", code="product_not_found")
    return (await load_products(session, [product_id]))[product_id]


def like_pattern(text: str) -> str:
    """`%text%` for LIKE ... ESCAPE '\\', lower-cased; % and _ in `text` stay literal."""
    esc = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


async def list_products(
    session: AsyncSession, q: str | None = None, *, category: str | None = None,
    limit: int = 50, offset: int = 0,
) -> tuple[list[ProductOut], int]:
    """Active products matching `q` (name, brand, SKU or EAN), with their variants."""
    conds: list[Any] = [Product.active]
    if q:
        like = like_pattern(q)
        conds.append(or_(
            func.lower(Product.name).like(like, escape="\\"),
            func.lower(Product.brand).like(like, escape="\\"),
            Product.id.in_(select(Variant.product_id).where(
                or_(func.lower(Variant.sku).like(like, escape="\\"), Variant.ean == q,
                    func.lower(Variant.name).like(like, escape="\\"))
            )),
        ))
    if category:
        conds.append(Product.category_id.in_(select(Category.id).where(Category.slug == category)))
    total = await session.scalar(select(func.count()).select_from(Product).where(*conds)) or 0
    ids = list((await session.scalars(
        select(Product.id).where(*conds).order_by(Product.name, Product.id)
        .limit(limit).offset(offset)
    )).all())
    found = await load_products(session, ids)
    return [found[i] for i in ids], total


_IMAGE_URL = re.compile(r"^(/media/[A-Za-z0-9._~/-]+|https://[^\s\"'<>]+)$")


async def add_images(uow: UnitOfWork, actor: Actor, images: Sequence[ImageIn]) -> list[ImageOut]:
    """Add pictures to products (not exposed in the API). A variant's picture must be
    of that product's variant; without a position a picture goes after the last one."""
    actor.require("catalogue.write", everywhere=True)
    if not images:
        return []
    s = uow.session
    for i, img in enumerate(images):
        if not _IMAGE_URL.match(img.url) or ".." in img.url:
            raise ValidationFailed("an image URL is a path under /media/ or an https:// URL",
                                   code="invalid_image_url", field=f"{i}.url")
    product_ids = {img.product_id for img in images}
    known = set((await s.scalars(select(Product.id).where(Product.id.in_(product_ids)))).all())
    variant_ids = {img.variant_id for img in images if img.variant_id is not None}
    owner: dict[int, int] = {vid: pid for vid, pid in (await s.execute(
        select(Variant.id, Variant.product_id).where(Variant.id.in_(variant_ids or {0}))
    )).all()}
    last: dict[int, int] = {pid: pos for pid, pos in (await s.execute(
        select(ProductImage.product_id, func.max(ProductImage.position))
        .where(ProductImage.product_id.in_(product_ids)).group_by(ProductImage.product_id)
    )).all()}
    rows = []
    for i, img in enumerate(images):
        if img.product_id not in known:
            raise NotFound(f"no product {img.product_id}", code="product_not_found",
                           field=f"{i}.product_id")
        if img.variant_id is not None and owner.get(img.variant_id) != img.product_id:
            raise ValidationFailed(f"variant {img.variant_id} is not of product {img.product_id}",
                                   code="variant_not_of_product", field=f"{i}.variant_id")
        position = img.position
        if position is None:
            prev = last.get(img.product_id)
            position = 0 if prev is None else prev + 1
        last[img.product_id] = max(position, last.get(img.product_id, position))
        rows.append(ProductImage(product_id=img.product_id, variant_id=img.variant_id,
                                 position=position, url=img.url, alt=img.alt.strip()))
    s.add_all(rows)
    await s.flush()
    for pid in sorted(product_ids):  # the shop's cached products show them at once
        uow.emit("product.updated", {"product_id": pid})
    return [ImageOut(url=r.url, alt=r.alt, variant_id=r.variant_id) for r in rows]


async def get_variant(session: AsyncSession, variant_id: int) -> VariantOut:
    v = await session.get(Variant, variant_id)
    if v is None:
        raise NotFound(f"no variant {variant_id}", code="variant_not_found")
    return _variant_out(v)


async def find_variant_by_code(session: AsyncSession, code: str) -> VariantOut:
    """A scanned or typed code: EAN/GTIN first, then SKU."""
    code = code.strip()
    v = await session.scalar(
        select(Variant).where(or_(Variant.ean == code, Variant.sku == code))
        .order_by(case((Variant.ean == code, 0), else_=1), Variant.id).limit(1)
    )
    if v is None:  # a further barcode (a supplier's code, an old packaging's EAN)
        v = await session.scalar(
            select(Variant).join(VariantBarcode, VariantBarcode.variant_id == Variant.id)
            .where(VariantBarcode.code == code).limit(1))
    if v is None:
        raise NotFound(f"no product with code '{code}'", code="unknown_code", field="code")
    return _variant_out(v)


async def set_variant_price(
    uow: UnitOfWork, actor: Actor, variant_id: int, price_cents: int
) -> VariantOut:
    """Change the one consumer price; every channel sees it at once. Recorded in the
    price history and audited (`pricing.changes.apply_price`, the one writer)."""
    from saumaton.pricing.changes import set_price_now  # pricing builds on the catalogue

    await set_price_now(uow, actor, variant_id, price_cents)
    return await get_variant(uow.session, variant_id)


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    slug: str
    name: str
    parent_id: int | None = None
    name_en: str = ""  # "" = the Finnish name on the English pages too
    position: int = 0


async def list_categories(session: AsyncSession) -> list[CategoryInfo]:
    """Every category, by position and name (the webshop's category filter)."""
    rows = await session.execute(select(Category.id, Category.slug, Category.name,
                                        Category.parent_id, Category.name_en,
                                        Category.position)
                                 .order_by(Category.position, Category.name, Category.id))
    return [CategoryInfo(*row) for row in rows.all()]


async def create_category(uow: UnitOfWork, actor: Actor, slug: str, name: str,
                          parent_slug: str | None = None) -> CategoryInfo:
    actor.require("catalogue.write", everywhere=True)
    s = uow.session
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,119}", slug):
        raise ValidationFailed("a slug is lower-case letters, digits and dashes",
                               code="invalid_slug", field="slug")
    if not name.strip() or len(name) > 200:
        raise ValidationFailed("a category needs a name (at most 200 characters)",
                               code="invalid_name", field="name")
    parent_id = None
    if parent_slug:
        parent_id = await s.scalar(select(Category.id).where(Category.slug == parent_slug))
        if parent_id is None:
            raise ValidationFailed(f"unknown category '{parent_slug}'", code="unknown_category",
                                   field="parent_slug")
    if await s.scalar(select(Category.id).where(Category.slug == slug)) is not None:
        raise Conflict(f"a category with slug '{slug}' exists", code="duplicate_slug",
                       field="slug")
    category = Category(slug=slug, name=name.strip(), parent_id=parent_id)
    s.add(category)
    await s.flush()
    return CategoryInfo(category.id, category.slug, category.name, category.parent_id)
