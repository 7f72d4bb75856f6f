"""Importing products: one row per variant, upserted by SKU.

A batch of rows is validated alone (columns), against the rows before it in the file
(a SKU or a barcode given twice, a product whose columns differ between its rows) and
against the database (a SKU of another product, a barcode of another variant), then
written with a few bulk statements: the existing products and variants of the batch
in one SELECT each, new ones in one INSERT each, changed ones in one executemany
UPDATE. A row whose values equal what is stored writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.codes import clean_ean
from saumaton.catalogue.models import Category, Product, Variant, VariantBarcode, VatClass
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.csvio.files import (
    RowError,
    excel_text,
    format_bool,
    format_euros,
    parse_bool,
    parse_euros,
)
from saumaton.db.uow import UnitOfWork
from saumaton.pricing.changes import apply_prices

COLUMNS = ("product", "name", "name_en", "brand", "category", "vat_class", "description",
           "description_en", "active", "sku", "ean", "barcodes", "variant_name",
           "variant_name_en", "attributes", "price", "cost_price", "variant_active")
REQUIRED = ("product", "name", "sku", "price")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_CODE = re.compile(r"^[A-Za-z0-9-]{1,14}$")
MAX_PRICE = 100_000_000
LIMITS = {"product": 160, "name": 200, "name_en": 200, "brand": 120, "category": 120,
          "vat_class": 32, "description": 10_000, "description_en": 10_000, "sku": 64,
          "variant_name": 200, "variant_name_en": 200, "attributes": 2000,
          "barcodes": 500}


def require(actor: Actor) -> None:
    actor.require("catalogue.write", everywhere=True)  # one catalogue for every location
    actor.require("prices.write", everywhere=True)  # and one price in every channel


@dataclass(frozen=True)
class ProductFields:
    name: str
    name_en: str
    brand: str
    category: str
    vat_class: str
    description: str
    description_en: str
    active: bool


@dataclass(frozen=True)
class Row:
    n: int
    slug: str
    product: ProductFields
    sku: str
    ean: str | None
    barcodes: tuple[str, ...]
    name: str
    name_en: str
    attributes: dict[str, str]
    price_cents: int
    cost_cents: int | None
    active: bool


@dataclass
class State:
    """What the rows before this batch said, across the whole file."""

    categories: dict[str, int]
    vat_classes: set[str]
    skus: dict[str, int] = field(default_factory=dict)  # sku -> row
    codes: dict[str, str] = field(default_factory=dict)  # barcode -> sku
    products: dict[str, ProductFields] = field(default_factory=dict)  # slug -> first row's
    decided: set[str] = field(default_factory=set)  # products compared with the database
    positions: dict[str, int] = field(default_factory=dict)  # slug -> rows so far


async def load_state(session: AsyncSession) -> State:
    cats = dict((await session.execute(select(Category.slug, Category.id))).all())
    vats = set((await session.scalars(select(VatClass.code))).all())
    return State(categories=cats, vat_classes=vats)


def parse_attributes(text: str) -> dict[str, str]:
    """'shade=Ruby|size=4 g' -> {'shade': 'Ruby', 'size': '4 g'}; ValueError if a part
    has no '=' or no name."""
    out: dict[str, str] = {}
    for part in text.split("|"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(part)
        out[key.strip()] = value.strip()
    if len(out) > 50:
        raise ValueError(text)
    return out


def format_attributes(attributes: dict[str, Any]) -> str:
    return "|".join(f"{k}={v}" for k, v in attributes.items())


def _code(value: str, fieldname: str) -> str:
    digits = value.replace(" ", "").replace("-", "")
    if digits.isdigit() and len(digits) in (8, 12, 13, 14):
        return clean_ean(digits, fieldname)
    if not _CODE.match(value):
        raise ValidationFailed(f"'{value}' is not a barcode (1–14 letters and digits)",
                               code="invalid_barcode", field=fieldname)
    return value


def parse_row(n: int, v: dict[str, str], state: State) -> Row | list[RowError]:
    errors: list[RowError] = []

    def err(col: str, code: str, message: str) -> None:
        errors.append(RowError(n, col, code, message))

    for col, limit in LIMITS.items():
        if len(v.get(col, "")) > limit:
            err(col, "too_long", f"{col} is at most {limit} characters")
    slug, name, sku = v.get("product", ""), v.get("name", ""), v.get("sku", "")
    if not slug:
        err("product", "required", "product (the product's key) is required")
    elif not _SLUG.match(slug):
        err("product", "invalid_slug",
            "a product key is lower-case letters, digits and dashes")
    if not name:
        err("name", "required", "name is required")
    if not sku:
        err("sku", "required", "sku is required")
    category = v.get("category", "")
    if category and category not in state.categories:
        err("category", "unknown_category", f"no category '{category}'")
    vat = v.get("vat_class", "") or "standard"
    if vat not in state.vat_classes:
        err("vat_class", "unknown_vat_class", f"no VAT class '{vat}'")
    active, vactive = True, True
    for col in ("active", "variant_active"):
        if v.get(col, ""):
            b = parse_bool(v[col])
            if b is None:
                err(col, "invalid_bool", f"{col} is yes or no")
            elif col == "active":
                active = b
            else:
                vactive = b
    ean = None
    if v.get("ean", ""):
        try:
            ean = clean_ean(v["ean"].replace(" ", "").replace("-", ""), "ean")
        except ValidationFailed as exc:
            err("ean", exc.code, exc.detail)
    codes: list[str] = []
    for part in v.get("barcodes", "").split("|"):
        if part.strip():
            try:
                code = _code(part.strip(), "barcodes")
            except ValidationFailed as exc:
                err("barcodes", exc.code, exc.detail)
                continue
            if code == ean or code in codes:
                err("barcodes", "duplicate_ean", f"barcode {code} is given twice")
            else:
                codes.append(code)
    attributes: dict[str, str] = {}
    try:
        attributes = parse_attributes(v.get("attributes", ""))
    except ValueError:
        err("attributes", "invalid_attributes",
            "attributes are name=value pairs separated by |, e.g. shade=Ruby|size=4 g")
    price = cost = None
    try:
        price = parse_euros(v.get("price", ""))
        if price is None:
            err("price", "required", "price is required")
        elif price > MAX_PRICE:
            err("price", "invalid_price", "the price is too large")
    except ValueError:
        err("price", "invalid_price",
            "a price is euros with at most two decimals, e.g. 12,90")
    try:
        cost = parse_euros(v.get("cost_price", ""))
        if cost is not None and cost > MAX_PRICE:
            err("cost_price", "invalid_price", "the cost price is too large")
    except ValueError:
        err("cost_price", "invalid_price",
            "a cost price is euros with at most two decimals, e.g. 4,50")
    if errors or price is None:
        return errors
    return Row(n, slug, ProductFields(
        name=name, name_en=v.get("name_en", ""), brand=v.get("brand", ""), category=category,
        vat_class=vat, description=v.get("description", ""),
        description_en=v.get("description_en", ""), active=active,
    ), sku, ean, tuple(codes), v.get("variant_name", ""), v.get("variant_name_en", ""),
        attributes, price, cost, vactive)


def _in_file_errors(row: Row, state: State) -> list[RowError]:
    """Against the rows before it; remembers this row's SKU, codes and product."""
    errors = []
    if row.sku in state.skus:
        errors.append(RowError(row.n, "sku", "duplicate_sku",
                               f"SKU {row.sku} is also on row {state.skus[row.sku]}"))
    for col, code in ([("ean", row.ean)] if row.ean else []) + [
            ("barcodes", c) for c in row.barcodes]:
        other = state.codes.get(code)
        if other is not None and other != row.sku:
            errors.append(RowError(row.n, col, "duplicate_ean",
                                   f"barcode {code} is also given to SKU {other}"))
    first = state.products.get(row.slug)
    if first is not None and first != row.product:
        differing = [k for k in first.__dataclass_fields__
                     if getattr(first, k) != getattr(row.product, k)]
        col = {"description": "description", "vat_class": "vat_class"}.get(
            differing[0], differing[0])
        errors.append(RowError(row.n, col, "product_differs",
                               f"{col} differs from the product's first row; every row of "
                               "a product gives the same product columns"))
    if not errors:
        state.products.setdefault(row.slug, row.product)
        state.skus[row.sku] = row.n
        for code in ([row.ean] if row.ean else []) + list(row.barcodes):
            state.codes[code] = row.sku
    return errors


def _product_values(p: ProductFields, state: State) -> dict[str, Any]:
    return {"name": p.name, "name_en": p.name_en, "brand": p.brand,
            "category_id": state.categories.get(p.category) if p.category else None,
            "vat_class_code": p.vat_class, "description": p.description,
            "description_en": p.description_en, "active": p.active}


def _variant_values(r: Row) -> dict[str, Any]:
    return {"ean": r.ean, "name": r.name, "name_en": r.name_en,
            "attributes": r.attributes, "price_cents": r.price_cents,
            "cost_cents": r.cost_cents, "active": r.active}


Result = tuple[str, list[RowError]]  # status: n(ew) u(pdated) =(unchanged) e(rror)


async def process(uow: UnitOfWork, actor: Actor, state: State,
                  rows: list[tuple[int, dict[str, str]]], *, write: bool,
                  reference: str) -> list[Result]:
    s = uow.session
    results: dict[int, Result] = {}
    parsed: list[Row] = []
    for n, values in rows:
        r = parse_row(n, values, state)
        if isinstance(r, list):
            results[n] = ("e", r)
        else:
            parsed.append(r)
    skus = [r.sku for r in parsed]
    existing = {row.sku: row for row in (await s.execute(
        select(Variant.id, Variant.sku, Variant.product_id, Product.slug, Variant.ean,
               Variant.name, Variant.name_en, Variant.attributes, Variant.price_cents,
               Variant.cost_cents, Variant.active)
        .join(Product, Product.id == Variant.product_id).where(Variant.sku.in_(skus))
    )).all()} if skus else {}
    codes = {c for r in parsed for c in ([r.ean] if r.ean else []) + list(r.barcodes)}
    owners: dict[str, str] = {}
    if codes:
        for code, sku in (await s.execute(
                select(Variant.ean, Variant.sku).where(Variant.ean.in_(codes)))).all():
            if code is not None:
                owners[code] = sku
        for code, sku in (await s.execute(
                select(VariantBarcode.code, Variant.sku)
                .join(Variant, Variant.id == VariantBarcode.variant_id)
                .where(VariantBarcode.code.in_(codes)))).all():
            owners[code] = sku
    ok: list[Row] = []
    for r in parsed:
        errors = []
        old = existing.get(r.sku)
        if old is not None and old.slug != r.slug:
            errors.append(RowError(r.n, "sku", "sku_of_other_product",
                                   f"SKU {r.sku} belongs to product {old.slug}"))
        for col, code in ([("ean", r.ean)] if r.ean else []) + [
                ("barcodes", c) for c in r.barcodes]:
            if owners.get(code, r.sku) != r.sku:
                errors.append(RowError(r.n, col, "ean_in_use",
                                       f"barcode {code} belongs to SKU {owners[code]}"))
        errors += _in_file_errors(r, state) if not errors else []
        if errors:
            results[r.n] = ("e", errors)
        else:
            ok.append(r)
    slugs = sorted({r.slug for r in ok})
    products = {row.slug: row for row in (await s.execute(
        select(Product.id, Product.slug, Product.name, Product.name_en, Product.brand,
               Product.category_id, Product.vat_class_code, Product.description,
               Product.description_en, Product.active).where(Product.slug.in_(slugs))
    )).all()} if slugs else {}
    variant_ids = [existing[r.sku].id for r in ok if r.sku in existing]
    old_codes: dict[int, dict[str, int]] = {}
    if variant_ids:
        for bid, vid, code in (await s.execute(
                select(VariantBarcode.id, VariantBarcode.variant_id, VariantBarcode.code)
                .where(VariantBarcode.variant_id.in_(variant_ids)))).all():
            old_codes.setdefault(vid, {})[code] = bid

    new_products: dict[str, dict[str, Any]] = {}
    changed_products: dict[str, dict[str, Any]] = {}
    new_variants: list[tuple[Row, dict[str, Any]]] = []
    changed_variants: list[dict[str, Any]] = []
    price_changes: list[tuple[int, int, int]] = []  # variant, old, new
    barcode_deletes: list[int] = []
    barcode_inserts: list[tuple[Row, int | None, str]] = []  # row, variant id (None=new)
    touched_products: set[str] = set()
    for r in ok:
        first = r.slug not in state.decided
        state.decided.add(r.slug)
        position = state.positions.get(r.slug, 0)
        state.positions[r.slug] = position + 1
        status = "="
        values = _product_values(r.product, state)
        prod = products.get(r.slug)
        if prod is None:
            if r.slug not in new_products:
                new_products[r.slug] = {"slug": r.slug, **values}
        elif first:
            if any(getattr(prod, k) != val for k, val in values.items()):
                changed_products[r.slug] = {"id": prod.id, **values}
                status = "u"
        old = existing.get(r.sku)
        vvalues = _variant_values(r)
        if old is None:
            status = "n"
            new_variants.append((r, {"sku": r.sku, "position": position, **vvalues}))
            barcode_inserts += [(r, None, c) for c in r.barcodes]
        else:
            if any(getattr(old, k) != val for k, val in vvalues.items()):
                # The price moves through pricing.changes (history, audit, event).
                others = {k: val for k, val in vvalues.items() if k != "price_cents"}
                if any(getattr(old, k) != val for k, val in others.items()):
                    changed_variants.append({"id": old.id, **others})
                status = "u"
                if old.price_cents != r.price_cents:
                    price_changes.append((old.id, old.price_cents, r.price_cents))
            have = old_codes.get(old.id, {})
            if set(have) != set(r.barcodes):
                status = "u"
                barcode_deletes += [bid for code, bid in have.items()
                                    if code not in r.barcodes]
                barcode_inserts += [(r, old.id, c) for c in r.barcodes if c not in have]
        if status != "=":
            touched_products.add(r.slug)
        results[r.n] = (status, [])
    if write:
        await _write(uow, actor, reference, products, new_products, changed_products,
                     new_variants, changed_variants, price_changes, barcode_deletes,
                     barcode_inserts, touched_products)
    return [results[n] for n, _ in rows]


async def _write(uow: UnitOfWork, actor: Actor, reference: str, products: dict[str, Any],
                 new_products: dict[str, dict[str, Any]],
                 changed_products: dict[str, dict[str, Any]],
                 new_variants: list[tuple[Row, dict[str, Any]]],
                 changed_variants: list[dict[str, Any]],
                 price_changes: list[tuple[int, int, int]], barcode_deletes: list[int],
                 barcode_inserts: list[tuple[Row, int | None, str]],
                 touched_products: set[str]) -> None:
    s = uow.session
    now = utcnow()
    product_ids = {slug: p.id for slug, p in products.items()}
    if new_products:
        created = (await s.execute(
            insert(Product).returning(Product.id, Product.slug),
            [{**v, "created_at": now, "updated_at": now, "gift_card": False}
             for v in new_products.values()])).all()
        for pid, slug in created:
            product_ids[slug] = pid
            uow.emit("product.created", {"product_id": pid, "slug": slug})
    if changed_products:
        await s.execute(update(Product), [{**v, "updated_at": now}
                                          for v in changed_products.values()])
    if barcode_deletes:
        await s.execute(delete(VariantBarcode).where(VariantBarcode.id.in_(barcode_deletes)))
    if changed_variants:
        await s.execute(update(Variant), changed_variants)
    variant_ids: dict[str, int] = {}
    if new_variants:
        created_v = (await s.execute(
            insert(Variant).returning(Variant.id, Variant.sku),
            [{**v, "product_id": product_ids[r.slug]} for r, v in new_variants])).all()
        variant_ids = {sku: vid for vid, sku in created_v}
    if barcode_inserts:
        await s.execute(insert(VariantBarcode), [
            {"variant_id": vid if vid is not None else variant_ids[r.sku], "code": code}
            for r, vid, code in barcode_inserts])
    await apply_prices(uow, actor, price_changes, note=reference)
    for slug in sorted(touched_products - set(new_products)):
        uow.emit("product.updated", {"product_id": product_ids[slug], "slug": slug})


async def export_rows(session: AsyncSession, after_id: int, limit: int
                      ) -> tuple[int, list[list[object]]]:
    """The export's rows for the next `limit` products after `after_id` (id order):
    (the last product id, the rows in the import's columns)."""
    prods = (await session.execute(
        select(Product.id, Product.slug, Product.name, Product.name_en, Product.brand,
               Category.slug.label("category"), Product.vat_class_code, Product.description,
               Product.description_en, Product.active)
        .outerjoin(Category, Category.id == Product.category_id)
        .where(Product.id > after_id).order_by(Product.id).limit(limit))).all()
    if not prods:
        return after_id, []
    ids = [p.id for p in prods]
    variants: dict[int, list[Any]] = {}
    for v in (await session.execute(
            select(Variant).where(Variant.product_id.in_(ids))
            .order_by(Variant.product_id, Variant.position, Variant.id))).scalars():
        variants.setdefault(v.product_id, []).append(v)
    vids = [v.id for vs in variants.values() for v in vs]
    codes: dict[int, list[str]] = {}
    if vids:
        for vid, code in (await session.execute(
                select(VariantBarcode.variant_id, VariantBarcode.code)
                .where(VariantBarcode.variant_id.in_(vids)).order_by(VariantBarcode.id))).all():
            codes.setdefault(vid, []).append(code)
    out: list[list[object]] = []
    for p in prods:
        for v in variants.get(p.id, []):
            t = excel_text
            out.append([p.slug, t(p.name), t(p.name_en), t(p.brand), p.category or "",
                        p.vat_class_code, t(p.description), t(p.description_en),
                        format_bool(p.active), t(v.sku), v.ean or "",
                        "|".join(codes.get(v.id, [])), t(v.name), t(v.name_en),
                        t(format_attributes(dict(v.attributes or {}))),
                        format_euros(v.price_cents), format_euros(v.cost_cents),
                        format_bool(v.active)])
    return prods[-1].id, out

