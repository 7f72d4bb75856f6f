"""The back office's product list: search (name, brand, SKU, EAN or a further barcode)
and filters (brand, category and its subcategories, active or not, stock state).

The stock state is of the product's units at every location together:
negative (some location's level is below zero: a count is due), out (none),
low (at most LOW_STOCK), in stock (more)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Category, Product, Variant, VariantBarcode
from saumaton.catalogue.services import like_pattern
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import FEW_LEFT

# "Low": as few as the webshop calls "few left" (inventory.services.FEW_LEFT), counted
# over every location here (a product's units together).
LOW_STOCK = FEW_LEFT
STOCK_STATES = ("in", "low", "out", "negative")


@dataclass(frozen=True)
class ProductFilters:
    q: str = ""
    brand: str = ""
    category_id: int | None = None
    active: bool | None = None
    stock: str = ""  # one of STOCK_STATES or ""
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class ProductRow:
    id: int
    name: str
    brand: str
    category: str
    active: bool
    variants: int
    on_hand: int
    stock: str  # in | low | out | negative


def stock_state(on_hand: int, lowest: int | None) -> str:
    if lowest is not None and lowest < 0:
        return "negative"
    if on_hand <= 0:
        return "out"
    return "low" if on_hand <= LOW_STOCK else "in"


def _descendants(parents: dict[int, int | None], root: int) -> set[int]:
    out = {root}
    grew = True
    while grew:
        grew = False
        for cid, parent in parents.items():
            if parent in out and cid not in out:
                out.add(cid)
                grew = True
    return out


async def brands(session: AsyncSession) -> list[str]:
    return [b for b in (await session.scalars(
        select(Product.brand).where(Product.brand != "").distinct().order_by(Product.brand)
    )).all()]


async def list_products(session: AsyncSession, f: ProductFilters
                        ) -> tuple[list[ProductRow], int]:
    """One page of products (by name) and how many match."""
    conds, stock, on_hand = await _filtered(session, f)
    base = (select(Product.id).select_from(Product)
            .outerjoin(stock, stock.c.pid == Product.id).where(*conds))
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await _rows(session, _select_rows(stock, on_hand).where(*conds)
                       .order_by(func.lower(Product.name), Product.id)
                       .limit(f.page_size).offset((max(f.page, 1) - 1) * f.page_size))
    return rows, int(total)


async def products_after(session: AsyncSession, f: ProductFilters, after_id: int | None,
                         limit: int) -> list[ProductRow]:
    """The same products as `list_products` (its filters; `page` is not used) for the
    API's keyset pages: by id, those after `after_id`, at most `limit`."""
    conds, stock, on_hand = await _filtered(session, f)
    if after_id is not None:
        conds.append(Product.id > after_id)
    return await _rows(session, _select_rows(stock, on_hand).where(*conds)
                       .order_by(Product.id).limit(limit))


async def _filtered(session: AsyncSession, f: ProductFilters) -> tuple[list[Any], Any, Any]:
    """The filters' SQL conditions, the per-product stock subquery and its units."""
    stock = (select(Variant.product_id.label("pid"),
                    func.coalesce(func.sum(StockLevel.on_hand), 0).label("on_hand"),
                    func.min(StockLevel.on_hand).label("lowest"))
             .select_from(Variant)
             .outerjoin(StockLevel, StockLevel.variant_id == Variant.id)
             .group_by(Variant.product_id).subquery())
    on_hand = func.coalesce(stock.c.on_hand, 0)
    conds: list[Any] = []
    text = f.q.strip()
    if text:
        like = like_pattern(text)
        conds.append(or_(
            func.lower(Product.name).like(like, escape="\\"),
            func.lower(Product.name_en).like(like, escape="\\"),
            func.lower(Product.brand).like(like, escape="\\"),
            Product.id.in_(select(Variant.product_id).where(or_(
                func.lower(Variant.sku).like(like, escape="\\"), Variant.ean == text,
                Variant.id.in_(select(VariantBarcode.variant_id)
                               .where(VariantBarcode.code == text))))),
        ))
    if f.brand:
        conds.append(Product.brand == f.brand)
    if f.category_id is not None:
        parents = dict((await session.execute(select(Category.id, Category.parent_id))).all())
        conds.append(Product.category_id.in_(_descendants(parents, f.category_id)))
    if f.active is not None:
        conds.append(Product.active.is_(f.active))
    if f.stock == "negative":
        conds.append(stock.c.lowest < 0)
    elif f.stock == "out":
        conds.append(and_(on_hand <= 0, or_(stock.c.lowest.is_(None), stock.c.lowest >= 0)))
    elif f.stock == "low":
        conds.append(and_(on_hand > 0, on_hand <= LOW_STOCK,
                          or_(stock.c.lowest.is_(None), stock.c.lowest >= 0)))
    elif f.stock == "in":
        conds.append(and_(on_hand > LOW_STOCK,
                          or_(stock.c.lowest.is_(None), stock.c.lowest >= 0)))
    return conds, stock, on_hand


def _select_rows(stock: Any, on_hand: Any) -> Any:
    variants = (select(func.count()).select_from(Variant)
                .where(Variant.product_id == Product.id).scalar_subquery())
    return (select(Product.id, Product.name, Product.brand, Category.name, Product.active,
                   variants, on_hand, stock.c.lowest)
            .select_from(Product)
            .outerjoin(stock, stock.c.pid == Product.id)
            .outerjoin(Category, Category.id == Product.category_id))


async def _rows(session: AsyncSession, query: Any) -> list[ProductRow]:
    return [ProductRow(id=r[0], name=r[1], brand=r[2] or "", category=r[3] or "",
                       active=bool(r[4]), variants=int(r[5] or 0), on_hand=int(r[6] or 0),
                       stock=stock_state(int(r[6] or 0), r[7]))
            for r in (await session.execute(query)).all()]


async def stock_of_variants(session: AsyncSession, variant_ids: list[int]) -> dict[int, int]:
    """Units on hand of each variant at every location together."""
    if not variant_ids:
        return {}
    rows = (await session.execute(
        select(StockLevel.variant_id, func.sum(StockLevel.on_hand))
        .where(StockLevel.variant_id.in_(variant_ids)).group_by(StockLevel.variant_id))).all()
    return {vid: int(n or 0) for vid, n in rows}
