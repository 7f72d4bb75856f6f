"""/api/v1 catalogue administration: the category tree, product pictures (upload,
alt text, order, delete) and a variant's further barcodes — what the back office's
catalogue pages do, through the same services (`catalogue.editing`,
`catalogue.images`), so the same rules, audit entries and events apply.

Reads need `catalogue.read`; writes `catalogue.write` at every location (the catalogue
is shared by every store).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from saumaton.api.fields import Name200, StrictInput, cursor_ints
from saumaton.api.pagination import CursorQuery, LimitQuery, Page, page_of
from saumaton.catalogue import editing, images, listing
from saumaton.catalogue.models import ProductImage
from saumaton.catalogue.services import CategoryInfo
from saumaton.core.actor import Actor
from saumaton.core.types import MAX_INT32, NoNul
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["catalogue"])
IdPath = Annotated[int, Path(ge=1, le=MAX_INT32)]
Read = Annotated[Actor, api_requires("catalogue.read")]
Write = Annotated[Actor, api_requires("catalogue.write", everywhere=True)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": (
    "category_not_found, product_not_found, image_not_found, variant_not_found or "
    "barcode_not_found")}}


# --- the product list of the back office (inactive products too) -------------------------

class ProductRowOut(BaseModel):
    id: int
    name: str
    brand: str
    category: str = Field(description="the category's name; empty: none")
    active: bool
    variants: int
    on_hand: int = Field(description="units at every location together")
    stock: Literal["in", "low", "out", "negative"] = Field(
        description="negative: some location is below zero (a count is due)")


@router.get("/catalogue/products", response_model=Page[ProductRowOut],
            summary="Every product, inactive ones too, filtered like the back office's "
                    "list (by id)")
async def list_product_rows(
    request: Request, actor: Read, cursor: CursorQuery = None, limit: LimitQuery = 50,
    q: Annotated[str, Query(max_length=100, description=(
        "name, brand, SKU, the exact EAN or a further barcode")), NoNul] = "",
    brand: Annotated[str, Query(max_length=120), NoNul] = "",
    category_id: Annotated[int | None, Query(
        ge=1, le=MAX_INT32, description="this category and its subcategories")] = None,
    active: Annotated[bool | None, Query()] = None,
    stock: Annotated[Literal["in", "low", "out", "negative"] | None, Query()] = None,
) -> Page[ProductRowOut]:
    after = cursor_ints(cursor, "id")
    filters = listing.ProductFilters(q=q.strip(), brand=brand, category_id=category_id,
                                     active=active, stock=stock or "")
    async with db_of(request).reader() as s:
        rows = await listing.products_after(s, filters, after[0] if after else None,
                                            limit + 1)
    return page_of([ProductRowOut(id=r.id, name=r.name, brand=r.brand, category=r.category,
                                  active=r.active, variants=r.variants, on_hand=r.on_hand,
                                  stock=r.stock)
                    for r in rows], limit, lambda r: {"id": r.id})


# --- categories ----------------------------------------------------------------------------

class CategoryOut(BaseModel):
    id: int
    slug: str
    name: str
    name_en: str
    parent_id: int | None
    position: int


def _category(c: CategoryInfo) -> CategoryOut:
    return CategoryOut(id=c.id, slug=c.slug, name=c.name, name_en=c.name_en,
                       parent_id=c.parent_id, position=c.position)


class CategoryIn(StrictInput):
    name: Name200
    name_en: str = Field(default="", max_length=200,
                         description="empty: the Finnish name on the English pages too")
    parent_id: int | None = Field(default=None, ge=1, le=MAX_INT32,
                                  description="null: a top-level category")
    position: int = Field(default=0, ge=0, le=10_000, description="order among siblings")


class CategoryPatch(StrictInput):
    """The fields to change; the others keep their values (`parent_id: null` moves the
    category to the top level)."""

    name: Name200 | None = None
    name_en: str | None = Field(default=None, max_length=200)
    parent_id: int | None = Field(default=None, ge=1, le=MAX_INT32)
    position: int | None = Field(default=None, ge=0, le=10_000)


@router.get("/categories", response_model=Page[CategoryOut],
            summary="The category tree, a page at a time (by id)")
async def list_categories(
    request: Request, actor: Read, cursor: CursorQuery = None, limit: LimitQuery = 100,
    parent_id: Annotated[int | None, Query(ge=1, le=MAX_INT32,
                                           description="only this category's children")]
    = None,
) -> Page[CategoryOut]:
    after = cursor_ints(cursor, "id")
    async with db_of(request).reader() as s:
        rows = await editing.categories_after(s, after[0] if after else None, limit,
                                              parent_id=parent_id)
    return page_of([_category(c) for c in rows], limit, lambda c: {"id": c.id})


@router.get("/categories/{category_id}", response_model=CategoryOut, responses=_NOT_FOUND)
async def get_category(request: Request, category_id: IdPath, actor: Read) -> CategoryOut:
    async with db_of(request).reader() as s:
        return _category(await editing.get_category(s, category_id))


@router.post("/categories", response_model=CategoryOut, status_code=201,
             summary="Create a category (its slug is made from the name)",
             responses={422: {"description": "invalid_name, unknown_category"}})
async def create_category(request: Request, body: CategoryIn, actor: Write,
                          response: Response) -> CategoryOut:
    async with db_of(request).uow() as uow:
        made = await editing.save_category(uow, actor, None, editing.CategoryEdit(
            name=body.name, name_en=body.name_en, parent_id=body.parent_id,
            position=body.position))
        await uow.commit()
    response.headers["Location"] = f"/api/v1/categories/{made.id}"
    async with db_of(request).reader() as s:
        return _category(await editing.get_category(s, made.id))


@router.patch("/categories/{category_id}", response_model=CategoryOut,
              summary="Rename, move (parent) or reorder a category",
              responses={**_NOT_FOUND,
                         422: {"description": "invalid_name, unknown_category, "
                                              "category_cycle"}})
async def patch_category(request: Request, category_id: IdPath, body: CategoryPatch,
                         actor: Write) -> CategoryOut:
    async with db_of(request).uow() as uow:
        current = await editing.get_category(uow.session, category_id)
        given = body.model_dump(exclude_unset=True)
        await editing.save_category(uow, actor, category_id, editing.CategoryEdit(
            name=current.name if body.name is None else body.name,
            name_en=current.name_en if body.name_en is None else body.name_en,
            parent_id=given["parent_id"] if "parent_id" in given else current.parent_id,
            position=current.position if body.position is None else body.position))
        await uow.commit()
    async with db_of(request).reader() as s:
        return _category(await editing.get_category(s, category_id))


@router.delete("/categories/{category_id}", status_code=204,
               summary="Remove an empty category",
               responses={**_NOT_FOUND,
                          409: {"description": "category_not_empty: it has subcategories, "
                                               "products or campaigns aimed at it (counts "
                                               "in `subcategories`, `products`, "
                                               "`campaigns`)"}})
async def delete_category(request: Request, category_id: IdPath, actor: Write) -> Response:
    async with db_of(request).uow() as uow:
        await editing.delete_category(uow, actor, category_id)
        await uow.commit()
    return Response(status_code=204)


# --- pictures ------------------------------------------------------------------------------

class ImageOut(BaseModel):
    id: int
    product_id: int
    variant_id: int | None = Field(description="set: the picture is this variant's swatch")
    position: int
    url: str = Field(description="the 400 px picture")
    alt: str
    sizes: dict[str, str] = Field(description="every stored size (px) and its URL")


def _image(row: ProductImage) -> ImageOut:
    return ImageOut(id=row.id, product_id=row.product_id, variant_id=row.variant_id,
                    position=row.position, url=row.url, alt=row.alt,
                    sizes={str(k): v for k, v in images.image_sizes(row.url).items()})


class ImagePatch(StrictInput):
    alt: str | None = Field(default=None, max_length=300)
    position: int | None = Field(default=None, ge=0, le=10_000)
    variant_id: int | None = Field(default=None, ge=1, le=MAX_INT32,
                                   description="null: a picture of the whole product")


class ImageOrderIn(StrictInput):
    image_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(
        min_length=1, max_length=500, description="every picture of the product, once each, "
                                                  "in the order to show them")


@router.get("/products/{product_id}/images", response_model=Page[ImageOut],
            summary="A product's pictures in display order", responses=_NOT_FOUND)
async def list_images(request: Request, product_id: IdPath, actor: Read,
                      cursor: CursorQuery = None, limit: LimitQuery = 50) -> Page[ImageOut]:
    after = cursor_ints(cursor, "position", "id")
    async with db_of(request).reader() as s:
        rows = await images.images_after(
            s, product_id, (after[0], after[1]) if after else None, limit)
    return page_of([_image(r) for r in rows], limit,
                   lambda i: {"position": i.position, "id": i.id})


@router.post("/products/{product_id}/images", response_model=ImageOut, status_code=201,
             summary="Upload a picture (multipart/form-data: image, alt, variant_id)",
             responses={**_NOT_FOUND,
                        422: {"description": "image_missing, image_too_large (over 10 MB "
                                             "or 40 megapixels), image_type (not JPEG, "
                                             "PNG or WebP), variant_not_of_product"}})
async def upload_image(
    request: Request, product_id: IdPath, actor: Write, response: Response,
    image: Annotated[UploadFile, File(
        description="a JPEG, PNG or WebP picture, at most 10 MB",
        json_schema_extra={"maxLength": images.MAX_BYTES})],
    alt: Annotated[str, Form(max_length=300)] = "",
    variant_id: Annotated[int | None, Form(ge=1, le=MAX_INT32)] = None,
) -> ImageOut:
    data = await image.read(images.MAX_BYTES + 1)
    # Decoding and resizing take a while: off the event loop.
    stored = await asyncio.to_thread(images.store_image, settings_of(request).media_dir(),
                                     data)
    async with db_of(request).uow() as uow:
        image_id = await images.add_uploaded_image(uow, actor, product_id, stored, alt=alt,
                                                   variant_id=variant_id)
        await uow.commit()
    response.headers["Location"] = f"/api/v1/products/{product_id}/images/{image_id}"
    async with db_of(request).reader() as s:
        return _image(await images.get_image(s, product_id, image_id))


@router.patch("/products/{product_id}/images/{image_id}", response_model=ImageOut,
              summary="Change a picture's alt text, position or variant",
              responses={**_NOT_FOUND,
                         422: {"description": "variant_not_of_product"}})
async def patch_image(request: Request, product_id: IdPath, image_id: IdPath,
                      body: ImagePatch, actor: Write) -> ImageOut:
    async with db_of(request).uow() as uow:
        row = await images.get_image(uow.session, product_id, image_id)
        given = body.model_dump(exclude_unset=True)
        await images.update_image(
            uow, actor, product_id, image_id,
            alt=row.alt if given.get("alt") is None else str(given["alt"]),
            position=row.position if given.get("position") is None
            else int(given["position"]),
            variant_id=given["variant_id"] if "variant_id" in given else row.variant_id)
        await uow.commit()
    async with db_of(request).reader() as s:
        return _image(await images.get_image(s, product_id, image_id))


@router.put("/products/{product_id}/images/order", response_model=Page[ImageOut],
            summary="Reorder a product's pictures (the first is the main picture)",
            responses={**_NOT_FOUND,
                       422: {"description": "invalid_image_order: the list must name each "
                                            "picture of the product once"}})
async def reorder_images(request: Request, product_id: IdPath, body: ImageOrderIn,
                         actor: Write) -> Page[ImageOut]:
    async with db_of(request).uow() as uow:
        await images.reorder_images(uow, actor, product_id, body.image_ids)
        await uow.commit()
    async with db_of(request).reader() as s:
        rows = await images.images_after(s, product_id, None, 500)
    return page_of([_image(r) for r in rows], 500,
                   lambda i: {"position": i.position, "id": i.id})


@router.delete("/products/{product_id}/images/{image_id}", status_code=204,
               summary="Take a picture off the product", responses=_NOT_FOUND)
async def delete_image(request: Request, product_id: IdPath, image_id: IdPath,
                       actor: Write) -> Response:
    async with db_of(request).uow() as uow:
        await images.delete_image(uow, actor, product_id, image_id)
        await uow.commit()
    return Response(status_code=204)


# --- further barcodes ----------------------------------------------------------------------

class BarcodeOut(BaseModel):
    id: int
    variant_id: int
    code: str


@router.get("/variants/{variant_id}/barcodes", response_model=Page[BarcodeOut],
            summary="A variant's further barcodes (its main EAN is the variant's own)",
            responses=_NOT_FOUND)
async def list_barcodes(request: Request, variant_id: IdPath, actor: Read,
                        cursor: CursorQuery = None, limit: LimitQuery = 50
                        ) -> Page[BarcodeOut]:
    after = cursor_ints(cursor, "id")
    async with db_of(request).reader() as s:
        rows = await editing.barcodes_after(s, variant_id, after[0] if after else None,
                                            limit)
    return page_of([BarcodeOut(id=b.id, variant_id=b.variant_id, code=b.code) for b in rows],
                   limit, lambda b: {"id": b.id})


@router.delete("/variants/{variant_id}/barcodes/{barcode_id}", status_code=204,
               summary="Remove a further barcode", responses=_NOT_FOUND)
async def delete_barcode(request: Request, variant_id: IdPath, barcode_id: IdPath,
                         actor: Write) -> Response:
    async with db_of(request).uow() as uow:
        await editing.remove_barcode(uow, actor, variant_id, barcode_id)
        await uow.commit()
    return Response(status_code=204)
