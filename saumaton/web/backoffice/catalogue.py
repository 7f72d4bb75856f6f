"""The catalogue in the back office: the product list (search and filters), creating and
editing products and their variants (SKU, EAN/GTIN, further barcodes, attributes, cost
price), pictures uploaded in the browser, and the category tree.

Thin: the rules are in `catalogue.editing` and `catalogue.images`; each form is checked
whole (every error at once, next to its field) before anything is saved. Prices are
entered when a variant is created; later changes are the price pages'
(/backoffice/prices?variant_id=…).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from saumaton.catalogue import editing, images, listing
from saumaton.catalogue.models import Category, Product, Variant, VatClass
from saumaton.catalogue.schemas import ProductIn, VariantIn
from saumaton.catalogue.services import create_product, list_categories
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_INT32
from saumaton.i18n import parse_money
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_router,
    render,
    settings_of,
)

router = page_router()
BASE = "/backoffice/products"
CATEGORIES = "/backoffice/categories"
PAGE_SIZE = 50
Read = Annotated[Actor, requires("catalogue.read")]
Write = Annotated[Actor, requires("catalogue.write", everywhere=True)]
Id = Annotated[int, Path(ge=1, le=MAX_INT32)]

MESSAGES: dict[str, str] = {
    "required": N_("Fill in this field."),
    "too_long": N_("This is too long."),
    "name_required": N_("Fill in this field."),
    "sku_required": N_("Fill in this field."),
    "invalid_ean": N_("This is not a valid EAN/GTIN barcode: check the digits."),
    "duplicate_ean": N_("Another variant already has this barcode."),
    "duplicate_sku": N_("Another variant already has this SKU."),
    "invalid_price": N_("Give the price in euros, for example 12,90."),
    "invalid_cost": N_("Give the cost price in euros, for example 4,50, or leave it empty."),
    "unknown_category": N_("Choose a category from the list."),
    "unknown_vat_class": N_("Choose a VAT class from the list."),
    "gift_card_vat_class": N_("A gift card is sold in VAT class zero."),
    "category_cycle": N_("A category cannot be under itself or its own subcategory."),
    "invalid_name": N_("Give a name (at most 200 characters)."),
    "invalid_position": N_("Give a number from 0 to 10000."),
    "image_missing": N_("Choose a picture to upload."),
    "image_too_large": N_("The picture is too large: at most 10 MB and 40 megapixels."),
    "image_type": N_("Upload a JPEG, PNG or WebP picture."),
    "too_many_barcodes": N_("A variant has at most 20 further barcodes."),
    "invalid_attributes": N_("Write one attribute per line as name: value."),
    "variant_not_of_product": N_("Choose a variant of this product."),
}
NOT_FOUND = N_("The product was not found.")


def _msg(request: Request, code: str) -> str:
    return gettext(request, MESSAGES.get(code, MESSAGES["required"]))


def _domain(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 10 else None


# --- form reading ---------------------------------------------------------------------------

PRODUCT_FIELDS = ("name", "name_en", "brand", "description", "description_en", "category_id",
                  "vat_class")
VARIANT_FIELDS = ("sku", "ean", "variant_name", "variant_name_en", "shade", "size",
                  "attributes", "cost")
LIMITS = {"name": 200, "name_en": 200, "brand": 120, "description": 10_000,
          "description_en": 10_000, "sku": 64, "ean": 20, "variant_name": 200,
          "variant_name_en": 200, "shade": 100, "size": 100, "attributes": 2000}


def _lengths(values: Mapping[str, str], errors: dict[str, str], request: Request) -> None:
    for name, limit in LIMITS.items():
        if len(values.get(name, "")) > limit and name not in errors:
            errors[name] = _msg(request, "too_long")


def _product_edit(request: Request, values: Mapping[str, str], errors: dict[str, str],
                  active: bool) -> editing.ProductEdit | None:
    if not values.get("name"):
        errors["name"] = _msg(request, "required")
    category_id = None
    if values.get("category_id"):
        category_id = _int_or_none(values["category_id"])
        if category_id is None:
            errors["category_id"] = _msg(request, "unknown_category")
    _lengths(values, errors, request)
    if any(k in errors for k in PRODUCT_FIELDS):
        return None
    return editing.ProductEdit(
        name=values["name"], name_en=values.get("name_en", ""), brand=values.get("brand", ""),
        description=values.get("description", ""),
        description_en=values.get("description_en", ""), category_id=category_id,
        vat_class=values.get("vat_class") or "standard", active=active)


def _attributes(values: Mapping[str, str], errors: dict[str, str], request: Request
                ) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for line in values.get("attributes", "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or not value.strip():
            errors["attributes"] = _msg(request, "invalid_attributes")
            break
        attrs[key.strip()[:50]] = value.strip()[:100]
    for key in ("shade", "size"):
        if values.get(key):
            attrs[key] = values[key]
    return attrs


def _variant_edit(request: Request, values: Mapping[str, str], errors: dict[str, str],
                  active: bool) -> editing.VariantEdit | None:
    if not values.get("sku"):
        errors["sku"] = _msg(request, "required")
    cost = None
    try:
        cost = parse_money(values.get("cost", ""))
    except ValueError:
        errors["cost"] = _msg(request, "invalid_cost")
    attrs = _attributes(values, errors, request)
    _lengths(values, errors, request)
    if any(k in errors for k in VARIANT_FIELDS):
        return None
    return editing.VariantEdit(
        sku=values["sku"], ean=values.get("ean") or None, name=values.get("variant_name", ""),
        name_en=values.get("variant_name_en", ""), attributes=attrs, cost_cents=cost,
        active=active)


def _product_probe(values: Mapping[str, str]) -> editing.ProductEdit:
    """What the domain checks of a form that has other errors too (all shown at once)."""
    return editing.ProductEdit.model_construct(
        name=values.get("name") or "-", vat_class=values.get("vat_class") or "standard",
        category_id=_int_or_none(values.get("category_id", "")))


def _variant_probe(values: Mapping[str, str]) -> editing.VariantEdit:
    return editing.VariantEdit.model_construct(
        sku=values.get("sku", "")[:64], ean=values.get("ean", "")[:20] or None)


def _price(request: Request, values: Mapping[str, str], errors: dict[str, str]) -> int | None:
    try:
        cents = parse_money(values.get("price", ""))
    except ValueError:
        cents = None
    if cents is None or cents < 0 or cents > 100_000_000:
        errors["price"] = _msg(request, "invalid_price")
        return None
    return cents


def _variant_field(field: str | None) -> str:
    """A domain error's field (variants.0.ean, name, ean…) as the form's field name."""
    name = (field or "").rsplit(".", 1)[-1]
    return {"name": "variant_name", "code": "ean"}.get(name, name) if field and (
        field.startswith("variants.") or name in ("sku", "ean", "code")) else name


SHOWN = frozenset({*PRODUCT_FIELDS, *VARIANT_FIELDS, "price", "parent_id", "position"})


def _add_problems(request: Request, problems: list[DomainError], errors: dict[str, str],
                  variant: bool = False) -> None:
    """Each domain error next to its field; one without a field on the form (a slug
    taken meanwhile) above the form."""
    for exc in problems:
        key = _variant_field(exc.field) if variant else (exc.field or "form")
        errors.setdefault(key if key in SHOWN else "form", _domain(request, exc))


# --- shared page data -----------------------------------------------------------------------

async def _choices(request: Request) -> dict[str, Any]:
    async with db_of(request).reader() as s:
        categories = await list_categories(s)
        vat = (await s.execute(select(VatClass.code, VatClass.name)
                               .order_by(VatClass.code))).all()
        brands = await listing.brands(s)
    return {"categories": _tree_order(categories), "vat_classes": vat, "brands": brands}


def _tree_order(categories: list[Any]) -> list[tuple[Any, int]]:
    """(category, depth) in tree order: each category after its parent."""
    children: dict[int | None, list[Any]] = {}
    known = {c.id for c in categories}
    for c in categories:
        children.setdefault(c.parent_id if c.parent_id in known else None, []).append(c)
    out: list[tuple[Any, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for c in children.get(parent, []):
            if len(out) > len(categories):
                return
            out.append((c, depth))
            walk(c.id, depth + 1)

    walk(None, 0)
    return out


def _notice(request: Request, done: str) -> str:
    return {"created": gettext(request, N_("The product is saved and on sale.")),
            "saved": gettext(request, N_("Saved.")),
            "variant": gettext(request, N_("The variant is saved.")),
            "image": gettext(request, N_("The picture is added.")),
            "image-saved": gettext(request, N_("The picture is saved.")),
            "image-deleted": gettext(request, N_("The picture is removed.")),
            "barcode": gettext(request, N_("The barcode is added.")),
            "barcode-removed": gettext(request, N_("The barcode is removed.")),
            "category": gettext(request, N_("The category is saved."))}.get(done, "")


# --- the product list -----------------------------------------------------------------------

@router.get("/backoffice/products")
async def products(request: Request, actor: Read,
                   q: Annotated[str, Query(max_length=100)] = "",
                   brand: Annotated[str, Query(max_length=120)] = "",
                   category: Annotated[str, Query(max_length=12)] = "",
                   active: Annotated[str, Query(max_length=3)] = "",
                   stock: Annotated[str, Query(max_length=10)] = "",
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    filters = listing.ProductFilters(
        q=q.strip(), brand=brand, category_id=_int_or_none(category),
        active={"yes": True, "no": False}.get(active),
        stock=stock if stock in listing.STOCK_STATES else "", page=page, page_size=PAGE_SIZE)
    async with db_of(request).reader() as s:
        rows, total = await listing.list_products(s, filters)
    pages = max(1, -(-total // PAGE_SIZE))
    params = {k: v for k, v in (("q", q.strip()), ("brand", brand), ("category", category),
                                ("active", active), ("stock", stock)) if v}

    def link(n: int) -> str:
        return f"{BASE}?{urlencode({**params, 'page': n})}"

    return render(request, "backoffice/catalogue/products.html", {
        "title": gettext(request, N_("Products")), "rows": rows, "total": total,
        "page": page, "pages": pages, "filters": params, **await _choices(request),
        "prev_url": link(page - 1) if page > 1 else None,
        "next_url": link(page + 1) if page < pages else None,
        "may_write": actor.can("catalogue.write", everywhere=True), "nav_key": "products"})


# --- creating a product ---------------------------------------------------------------------

async def _new_page(request: Request, values: Mapping[str, str], errors: Mapping[str, str],
                    status: int = 200) -> Response:
    return render(request, "backoffice/catalogue/product_new.html", {
        "title": gettext(request, N_("New product")), "values": values, "errors": errors,
        **await _choices(request), "nav_key": "products"}, status=status)


@router.get("/backoffice/products/new")
async def new_product(request: Request, actor: Write) -> Response:
    return await _new_page(request, {"vat_class": "standard"}, {})


@router.post("/backoffice/products/new")
async def create(request: Request, actor: Write) -> Response:
    form = await checked_form(request)
    values = {k: _text(form, k) for k in (*PRODUCT_FIELDS, *VARIANT_FIELDS, "price")}
    values["description"] = _text(form, "description")
    errors: dict[str, str] = {}
    product = _product_edit(request, values, errors, True)
    variant = _variant_edit(request, values, errors, True)
    price = _price(request, values, errors)
    async with db_of(request).reader() as s:
        _add_problems(request, await editing.product_problems(s, product or _product_probe(
            values)), errors)
        _add_problems(request, await editing.variant_problems(s, variant or _variant_probe(
            values)), errors, variant=True)
    if errors or product is None or variant is None or price is None:
        return await _new_page(request, values, errors, 422)
    try:
        async with db_of(request).uow() as uow:
            s = uow.session
            slug = await editing.free_slug(s, Product, product.name)
            category_slug = (await s.scalar(select(Category.slug).where(
                Category.id == product.category_id))) if product.category_id else None
            out = await create_product(uow, actor, ProductIn(
                slug=slug, name=product.name, name_en=product.name_en, brand=product.brand,
                description=product.description, description_en=product.description_en,
                category_slug=category_slug, vat_class=product.vat_class,
                variants=[VariantIn(sku=variant.sku, ean=variant.ean, name=variant.name,
                                    name_en=variant.name_en, attributes=variant.attributes,
                                    price_cents=price, cost_cents=variant.cost_cents)]))
            await uow.commit()
    except DomainError as exc:
        _add_problems(request, [exc], errors, variant=bool(exc.field and exc.field.startswith(
            "variants.")))
        return await _new_page(request, values, errors, exc.status)
    return RedirectResponse(f"{BASE}/{out.id}?done=created", status_code=303)


# --- editing a product ----------------------------------------------------------------------

async def _product_page(request: Request, actor: Actor, product_id: Id, *,
                        values: Mapping[str, str] | None = None,
                        errors: Mapping[str, str] | None = None,
                        image_errors: Mapping[str, str] | None = None,
                        notice: str = "", status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        product = await s.get(Product, product_id)
        if product is None:
            return error_page(request, 404, gettext(request, NOT_FOUND))
        variants = list((await s.scalars(select(Variant).where(
            Variant.product_id == product_id).order_by(Variant.position, Variant.id))).all())
        stock = await listing.stock_of_variants(s, [v.id for v in variants])
        barcodes = await editing.barcodes_of(s, [v.id for v in variants])
        pictures = await editing.product_images(s, product_id)
    shown = dict(values) if values is not None else {
        "name": product.name, "name_en": product.name_en, "brand": product.brand,
        "description": product.description, "description_en": product.description_en,
        "category_id": str(product.category_id or ""), "vat_class": product.vat_class_code,
        "active": "yes" if product.active else ""}
    return render(request, "backoffice/catalogue/product.html", {
        "title": product.name, "product": product, "variants": variants, "stock": stock,
        "barcodes": barcodes, "images": pictures, "values": shown, "errors": errors or {},
        "image_errors": image_errors or {}, "notice": notice, **await _choices(request),
        "may_write": actor.can("catalogue.write", everywhere=True),
        "may_price": actor.can("prices.write", everywhere=True), "nav_key": "products",
    }, status=status)


@router.get("/backoffice/products/{product_id}")
async def product_page(request: Request, actor: Read, product_id: Id,
                       done: Annotated[str, Query(max_length=20)] = "") -> Response:
    return await _product_page(request, actor, product_id, notice=_notice(request, done))


@router.post("/backoffice/products/{product_id}")
async def update(request: Request, actor: Write, product_id: Id) -> Response:
    form = await checked_form(request)
    values = {k: _text(form, k) for k in PRODUCT_FIELDS}
    values["active"] = "yes" if _text(form, "active") == "yes" else ""
    errors: dict[str, str] = {}
    data = _product_edit(request, values, errors, values["active"] == "yes")
    async with db_of(request).reader() as s:
        _add_problems(request, await editing.product_problems(
            s, data or _product_probe(values)), errors)
    if data is not None and not errors:
        try:
            async with db_of(request).uow() as uow:
                await editing.update_product(uow, actor, product_id, data)
                await uow.commit()
        except DomainError as exc:
            if exc.code == "product_not_found":
                return error_page(request, 404, gettext(request, NOT_FOUND))
            _add_problems(request, [exc], errors)
    if errors:
        return await _product_page(request, actor, product_id, values=values, errors=errors,
                                   status=422)
    return RedirectResponse(f"{BASE}/{product_id}?done=saved", status_code=303)


# --- variants -------------------------------------------------------------------------------

async def _variant_page(request: Request, actor: Actor, product_id: Id,
                        variant: Variant | None, *, values: Mapping[str, str] | None = None,
                        errors: Mapping[str, str] | None = None,
                        barcode_errors: Mapping[str, str] | None = None, notice: str = "",
                        status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        product = await s.get(Product, product_id)
        if product is None:
            return error_page(request, 404, gettext(request, NOT_FOUND))
        codes = (await editing.barcodes_of(s, [variant.id]))[variant.id] if variant else []
        on_hand = (await listing.stock_of_variants(s, [variant.id])).get(variant.id, 0) \
            if variant else 0
    if values is None and variant is not None:
        attrs = dict(variant.attributes or {})
        values = {
            "sku": variant.sku, "ean": variant.ean or "", "variant_name": variant.name,
            "variant_name_en": variant.name_en, "shade": str(attrs.pop("shade", "")),
            "size": str(attrs.pop("size", "")),
            "attributes": "\n".join(f"{k}: {v}" for k, v in attrs.items()),
            "cost": "" if variant.cost_cents is None else
            f"{variant.cost_cents // 100},{variant.cost_cents % 100:02d}",
            "active": "yes" if variant.active else ""}
    return render(request, "backoffice/catalogue/variant.html", {
        "title": (variant.sku if variant else gettext(request, N_("New variant"))),
        "product": product, "variant": variant, "codes": codes, "on_hand": on_hand,
        "values": values or {"active": "yes"}, "errors": errors or {},
        "barcode_errors": barcode_errors or {}, "notice": notice,
        "may_write": actor.can("catalogue.write", everywhere=True),
        "may_price": actor.can("prices.write", everywhere=True), "nav_key": "products",
    }, status=status)


async def _variant_of(request: Request, product_id: Id, variant_id: Id) -> Variant | None:
    async with db_of(request).reader() as s:
        variant = await s.get(Variant, variant_id)
    return variant if variant is not None and variant.product_id == product_id else None


@router.get("/backoffice/products/{product_id}/variants/new")
async def new_variant(request: Request, actor: Write, product_id: Id) -> Response:
    return await _variant_page(request, actor, product_id, None)


@router.post("/backoffice/products/{product_id}/variants/new")
async def add_variant(request: Request, actor: Write, product_id: Id) -> Response:
    form = await checked_form(request)
    values = {k: _text(form, k) for k in (*VARIANT_FIELDS, "price")}
    values["active"] = "yes" if _text(form, "active") == "yes" else ""
    errors: dict[str, str] = {}
    data = _variant_edit(request, values, errors, values["active"] == "yes")
    price = _price(request, values, errors)
    async with db_of(request).reader() as s:
        _add_problems(request, await editing.variant_problems(s, data or _variant_probe(
            values)), errors, variant=True)
    if not errors and data is not None and price is not None:
        try:
            async with db_of(request).uow() as uow:
                out = await editing.add_variant(uow, actor, product_id, editing.VariantCreate(
                    **data.model_dump(), price_cents=price))
                await uow.commit()
            return RedirectResponse(f"{BASE}/{product_id}/variants/{out.id}?done=variant",
                                    status_code=303)
        except DomainError as exc:
            if exc.code == "product_not_found":
                return error_page(request, 404, gettext(request, NOT_FOUND))
            _add_problems(request, [exc], errors, variant=True)
    return await _variant_page(request, actor, product_id, None, values=values, errors=errors,
                               status=422)


@router.get("/backoffice/products/{product_id}/variants/{variant_id}")
async def variant_page(request: Request, actor: Read, product_id: Id, variant_id: Id,
                       done: Annotated[str, Query(max_length=20)] = "") -> Response:
    variant = await _variant_of(request, product_id, variant_id)
    if variant is None:
        return error_page(request, 404, gettext(request, N_("The variant was not found.")))
    return await _variant_page(request, actor, product_id, variant,
                               notice=_notice(request, done))


@router.post("/backoffice/products/{product_id}/variants/{variant_id}")
async def update_variant(request: Request, actor: Write, product_id: Id,
                         variant_id: Id) -> Response:
    form = await checked_form(request)
    variant = await _variant_of(request, product_id, variant_id)
    if variant is None:
        return error_page(request, 404, gettext(request, N_("The variant was not found.")))
    values = {k: _text(form, k) for k in VARIANT_FIELDS}
    values["active"] = "yes" if _text(form, "active") == "yes" else ""
    errors: dict[str, str] = {}
    data = _variant_edit(request, values, errors, values["active"] == "yes")
    async with db_of(request).reader() as s:
        _add_problems(request, await editing.variant_problems(
            s, data or _variant_probe(values), variant_id), errors, variant=True)
    if not errors and data is not None:
        try:
            async with db_of(request).uow() as uow:
                await editing.update_variant(uow, actor, variant_id, data)
                await uow.commit()
            return RedirectResponse(f"{BASE}/{product_id}/variants/{variant_id}?done=saved",
                                    status_code=303)
        except DomainError as exc:
            _add_problems(request, [exc], errors, variant=True)
    return await _variant_page(request, actor, product_id, variant, values=values,
                               errors=errors, status=422)


@router.post("/backoffice/products/{product_id}/variants/{variant_id}/barcodes")
async def add_barcode(request: Request, actor: Write, product_id: Id,
                      variant_id: Id) -> Response:
    form = await checked_form(request)
    variant = await _variant_of(request, product_id, variant_id)
    if variant is None:
        return error_page(request, 404, gettext(request, N_("The variant was not found.")))
    remove = _int_or_none(_text(form, "remove"))
    code = _text(form, "code")[:40]
    try:
        async with db_of(request).uow() as uow:
            if remove is not None:
                await editing.remove_barcode(uow, actor, variant_id, remove)
            else:
                await editing.add_barcode(uow, actor, variant_id, code)
            await uow.commit()
    except DomainError as exc:
        return await _variant_page(request, actor, product_id, variant,
                                   barcode_errors={"code": _domain(request, exc)},
                                   status=exc.status)
    done = "barcode-removed" if remove is not None else "barcode"
    return RedirectResponse(f"{BASE}/{product_id}/variants/{variant_id}?done={done}",
                            status_code=303)


# --- pictures -------------------------------------------------------------------------------

@router.post("/backoffice/products/{product_id}/images")
async def upload_image(request: Request, actor: Write, product_id: Id) -> Response:
    form = await checked_form(request)
    upload = form.get("image")
    alt = _text(form, "alt")
    variant_id = _int_or_none(_text(form, "variant_id"))
    data = b""
    if isinstance(upload, UploadFile):
        data = await upload.read(images.MAX_BYTES + 1)
    try:
        # Decoding and resizing take a while: off the event loop.
        stored = await asyncio.to_thread(images.store_image, settings_of(request).media_dir(),
                                         data)
        async with db_of(request).uow() as uow:
            await images.add_uploaded_image(uow, actor, product_id, stored, alt=alt,
                                            variant_id=variant_id)
            await uow.commit()
    except DomainError as exc:
        if exc.code == "product_not_found":
            return error_page(request, 404, gettext(request, NOT_FOUND))
        field = {"variant_id": "variant_id", "alt": "alt"}.get(exc.field or "", "image")
        return await _product_page(request, actor, product_id,
                                   image_errors={field: _domain(request, exc)},
                                   status=exc.status)
    return RedirectResponse(f"{BASE}/{product_id}?done=image#images", status_code=303)


@router.post("/backoffice/products/{product_id}/images/{image_id}")
async def save_image(request: Request, actor: Write, product_id: Id,
                     image_id: Id) -> Response:
    form = await checked_form(request)
    delete = _text(form, "delete") == "yes"
    position = _int_or_none(_text(form, "position"))
    try:
        async with db_of(request).uow() as uow:
            if delete:
                await images.delete_image(uow, actor, product_id, image_id)
            else:
                await images.update_image(
                    uow, actor, product_id, image_id, alt=_text(form, "alt"),
                    position=-1 if position is None else position,
                    variant_id=_int_or_none(_text(form, "variant_id")))
            await uow.commit()
    except DomainError as exc:
        if exc.status == 404:
            return error_page(request, 404, gettext(request, N_("The picture was not found.")))
        return await _product_page(request, actor, product_id,
                                   image_errors={f"{image_id}": _domain(request, exc)},
                                   status=exc.status)
    done = "image-deleted" if delete else "image-saved"
    return RedirectResponse(f"{BASE}/{product_id}?done={done}#images", status_code=303)


# --- categories -----------------------------------------------------------------------------

async def _categories_page(request: Request, actor: Actor, *, editing_id: int | None = None,
                           values: Mapping[str, str] | None = None,
                           errors: Mapping[str, str] | None = None, notice: str = "",
                           status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        categories = await list_categories(s)
    current = next((c for c in categories if c.id == editing_id), None)
    if editing_id is not None and current is None:
        return error_page(request, 404, gettext(request, N_("The category was not found.")))
    if values is None:
        values = {"name": current.name, "name_en": current.name_en,
                  "parent_id": str(current.parent_id or ""),
                  "position": str(current.position)} if current else {"position": "0"}
    return render(request, "backoffice/catalogue/categories.html", {
        "title": gettext(request, N_("Categories")), "tree": _tree_order(categories),
        "current": current, "values": values, "errors": errors or {}, "notice": notice,
        "may_write": actor.can("catalogue.write", everywhere=True), "nav_key": "categories",
    }, status=status)


@router.get("/backoffice/categories")
async def categories(request: Request, actor: Read,
                     done: Annotated[str, Query(max_length=20)] = "") -> Response:
    return await _categories_page(request, actor, notice=_notice(request, done))


@router.get("/backoffice/categories/{category_id}")
async def category_page(request: Request, actor: Read, category_id: Id) -> Response:
    return await _categories_page(request, actor, editing_id=category_id)


async def _save_category(request: Request, actor: Actor, category_id: int | None) -> Response:
    form = await checked_form(request)
    values = {k: _text(form, k) for k in ("name", "name_en", "parent_id", "position")}
    errors: dict[str, str] = {}
    position = _int_or_none(values["position"] or "0")
    if position is None:
        errors["position"] = _msg(request, "invalid_position")
    parent_id = None
    if values["parent_id"]:
        parent_id = _int_or_none(values["parent_id"])
        if parent_id is None:
            errors["parent_id"] = _msg(request, "unknown_category")
    data = editing.CategoryEdit(name=values["name"], name_en=values["name_en"],
                                parent_id=parent_id, position=position or 0)
    async with db_of(request).reader() as s:
        _add_problems(request, await editing.category_problems(s, data, category_id), errors)
    if not errors:
        try:
            async with db_of(request).uow() as uow:
                await editing.save_category(uow, actor, category_id, data)
                await uow.commit()
            return RedirectResponse(f"{CATEGORIES}?done=category", status_code=303)
        except DomainError as exc:
            if exc.status == 404:
                return error_page(request, 404,
                                  gettext(request, N_("The category was not found.")))
            _add_problems(request, [exc], errors)
    return await _categories_page(request, actor, editing_id=category_id, values=values,
                                  errors=errors, status=422)


@router.post("/backoffice/categories")
async def create_category(request: Request, actor: Write) -> Response:
    return await _save_category(request, actor, None)


@router.post("/backoffice/categories/{category_id}")
async def update_category(request: Request, actor: Write, category_id: Id) -> Response:
    return await _save_category(request, actor, category_id)
