"""/api/v1 catalogue, prices, campaigns, locations and availability."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from saumaton.api.pagination import CursorQuery, Page, offset_from, offset_page
from saumaton.catalogue import editing
from saumaton.catalogue import services as catalogue
from saumaton.catalogue.models import Variant
from saumaton.catalogue.schemas import ProductIn, ProductOut, VariantOut
from saumaton.catalogue.services import load_variant_infos
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound
from saumaton.core.types import MAX_INT32, Attributes, Input, Name, NoNul, OptionalName
from saumaton.inventory.services import availability
from saumaton.locations.services import channel_by_code, list_channels, list_locations
from saumaton.orders.services import business_day
from saumaton.pricing.services import CampaignIn, resolve_prices
from saumaton.pricing.services import create_campaign as create_campaign_svc
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires, public

router = APIRouter(prefix="/api/v1", tags=["catalogue"])
IdPath = Annotated[int, Path(ge=1, le=MAX_INT32)]
# The webshop shows the catalogue, its prices and availability to anyone.
CATALOGUE_IS_PUBLIC = "the webshop shows the catalogue, prices and availability to anyone"


class ProductPage(Page[ProductOut]):
    total: int = Field(description="products matching the search, on every page")


@router.get("/products", response_model=ProductPage, summary="List or search products",
            dependencies=[public(CATALOGUE_IS_PUBLIC)])
async def list_products(
    request: Request,
    q: Annotated[str | None, Query(max_length=100, description="name, brand, SKU or EAN"),
                 NoNul] = None,
    category: Annotated[str | None, Query(max_length=120), NoNul] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200, description="items per page")] = 50,
    offset: Annotated[int | None, Query(
        ge=0, le=10_000_000, deprecated=True,
        description="the old way to page: use `cursor`")] = None,
) -> ProductPage:
    start = offset if offset is not None and cursor is None else offset_from(cursor)
    async with db_of(request).reader() as s:
        items, total = await catalogue.list_products(s, q, category=category,
                                                     limit=limit + 1, offset=start)
    page = offset_page(items, limit, start)
    return ProductPage(items=page.items, next_cursor=page.next_cursor, total=total)


@router.get("/products/{product_id}", response_model=ProductOut,
            dependencies=[public(CATALOGUE_IS_PUBLIC)])
async def get_product(request: Request, product_id: IdPath) -> ProductOut:
    async with db_of(request).reader() as s:
        return await catalogue.get_product(s, product_id)


@router.post("/products", response_model=ProductOut, status_code=201)
async def create_product(
        request: Request, body: ProductIn,
        actor: Annotated[Actor, api_requires("catalogue.write", everywhere=True)]
) -> ProductOut:
    async with db_of(request).uow() as uow:
        out = await catalogue.create_product(uow, actor, body)
        await uow.commit()
    return out


@router.get("/variants", response_model=VariantOut, summary="Find a variant by EAN or SKU",
            dependencies=[public(CATALOGUE_IS_PUBLIC)])
async def find_variant(request: Request,
                       code: Annotated[str, Query(min_length=1, max_length=64), NoNul]
                       ) -> VariantOut:
    async with db_of(request).reader() as s:
        return await catalogue.find_variant_by_code(s, code)


@router.get("/variants/{variant_id}", response_model=VariantOut,
            dependencies=[public(CATALOGUE_IS_PUBLIC)])
async def get_variant(request: Request, variant_id: IdPath) -> VariantOut:
    async with db_of(request).reader() as s:
        return await catalogue.get_variant(s, variant_id)


class PriceIn(Input):
    price_cents: int = Field(ge=0, le=100_000_000)


@router.put("/variants/{variant_id}/price", response_model=VariantOut,
            operation_id="set_variant_price",
            summary="Set the one consumer price (VAT incl.) for every channel")
async def set_price(
        request: Request, variant_id: IdPath, body: PriceIn,
        actor: Annotated[Actor, api_requires("prices.write", everywhere=True)]
) -> VariantOut:
    async with db_of(request).uow() as uow:
        out = await catalogue.set_variant_price(uow, actor, variant_id, body.price_cents)
        await uow.commit()
    return out


class PriceQuoteOut(BaseModel):
    variant_id: int
    channel: str
    list_cents: int
    discount_cents: int
    price_cents: int
    vat_rate_bp: int
    campaign_id: int | None
    campaign_name: str | None
    limited_to: list[str] | None


@router.get("/variants/{variant_id}/price", response_model=PriceQuoteOut,
            operation_id="get_variant_price",
            summary="The price a channel charges now (campaigns applied)",
            dependencies=[public(CATALOGUE_IS_PUBLIC)])
async def get_price(request: Request, variant_id: IdPath,
                    channel: Annotated[str, Query(max_length=32), NoNul] = "web"
                    ) -> PriceQuoteOut:
    now = utcnow()
    async with db_of(request).reader() as s:
        ch = await channel_by_code(s, channel)
        infos = await load_variant_infos(s, business_day(now), ids=[variant_id])
        if not infos:
            raise NotFound(f"no variant {variant_id}", code="variant_not_found")
        q = (await resolve_prices(s, infos, ch.id, now))[variant_id]
    return PriceQuoteOut(variant_id=variant_id, channel=channel, list_cents=q.list_cents,
                         discount_cents=q.discount_cents, price_cents=q.price_cents,
                         vat_rate_bp=infos[0].vat_rate_bp, campaign_id=q.campaign_id,
                         campaign_name=q.campaign_name,
                         limited_to=list(q.limited_to) if q.limited_to else None)


class LocationAvailabilityOut(BaseModel):
    location_id: int
    code: str
    name: str
    kind: str
    sells_in_person: bool
    ships_web_orders: bool
    pickup_point: bool
    on_hand: int
    reserved: int
    available: int
    needs_count: bool


class AvailabilityOut(BaseModel):
    variant_id: int
    online: int = Field(description="units the webshop can sell now")
    locations: list[LocationAvailabilityOut]


@router.get("/variants/{variant_id}/availability", response_model=AvailabilityOut,
            operation_id="get_variant_availability",
            dependencies=[public(CATALOGUE_IS_PUBLIC)])
async def get_availability(request: Request, variant_id: IdPath) -> AvailabilityOut:
    async with db_of(request).reader() as s:
        await catalogue.get_variant(s, variant_id)
        a = (await availability(s, [variant_id]))[variant_id]
    return AvailabilityOut(variant_id=variant_id, online=a.online, locations=[
        LocationAvailabilityOut(
            location_id=x.location_id, code=x.code, name=x.name, kind=x.kind,
            sells_in_person=x.sells_in_person, ships_web_orders=x.ships_web_orders,
            pickup_point=x.pickup_point, on_hand=x.on_hand, reserved=x.reserved,
            available=x.available, needs_count=x.needs_count,
        ) for x in a.locations])


class CampaignCreated(BaseModel):
    id: int


@router.post("/campaigns", response_model=CampaignCreated, status_code=201)
async def create_campaign(
        request: Request, body: CampaignIn,
        actor: Annotated[Actor, api_requires("prices.write", everywhere=True)]
) -> CampaignCreated:
    async with db_of(request).uow() as uow:
        cid = await create_campaign_svc(uow, actor, body)
        await uow.commit()
    return CampaignCreated(id=cid)


class LocationOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    sells_in_person: bool
    ships_web_orders: bool
    pickup_point: bool
    address: str


class ChannelOut(BaseModel):
    id: int
    code: str
    kind: str
    name: str
    location_id: int | None


LOCATIONS_ARE_PUBLIC = "the webshop shows its stores and pickup points to anyone"


@router.get("/locations", response_model=Page[LocationOut], operation_id="list_locations",
            dependencies=[public(LOCATIONS_ARE_PUBLIC)])
async def get_locations(request: Request, cursor: CursorQuery = None,
                        limit: Annotated[int, Query(ge=1, le=200)] = 200
                        ) -> Page[LocationOut]:
    start = offset_from(cursor)
    async with db_of(request).reader() as s:
        rows = (await list_locations(s))[start:start + limit + 1]
    return offset_page([LocationOut.model_validate(loc, from_attributes=True) for loc in rows],
                       limit, start)


@router.get("/channels", response_model=Page[ChannelOut], operation_id="list_channels",
            dependencies=[public(LOCATIONS_ARE_PUBLIC)])
async def get_channels(request: Request, cursor: CursorQuery = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 200
                       ) -> Page[ChannelOut]:
    start = offset_from(cursor)
    async with db_of(request).reader() as s:
        rows = (await list_channels(s))[start:start + limit + 1]
    return offset_page([ChannelOut.model_validate(c, from_attributes=True) for c in rows],
                       limit, start)


# --- editing the catalogue (the back office's product pages use the same services) ------

class ProductPatch(Input):
    """The fields to change; the others keep their values."""

    # Left out: unchanged. Only category_id takes null (no category).
    name: Name = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    name_en: OptionalName = Field(default=None, max_length=200)  # type: ignore[assignment]
    brand: str = Field(default=None, max_length=120)  # type: ignore[assignment]
    description: str = Field(default=None, max_length=10_000)  # type: ignore[assignment]
    description_en: str = Field(default=None, max_length=10_000)  # type: ignore[assignment]
    category_id: int | None = Field(default=None, ge=1, le=MAX_INT32)
    vat_class: str = Field(default=None, max_length=32)  # type: ignore[assignment]
    active: bool = Field(default=None)  # type: ignore[assignment]


class VariantPatch(Input):
    # Left out: unchanged. ean and cost_cents take null (none).
    sku: str = Field(default=None, min_length=1, max_length=64)  # type: ignore[assignment]
    ean: str | None = Field(default=None, max_length=20)
    name: OptionalName = Field(default=None, max_length=200)  # type: ignore[assignment]
    name_en: OptionalName = Field(default=None, max_length=200)  # type: ignore[assignment]
    attributes: Attributes = Field(default=None, max_length=50)  # type: ignore[arg-type]
    cost_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    active: bool = Field(default=None)  # type: ignore[assignment]


@router.patch("/products/{product_id}", response_model=ProductOut,
              summary="Change a product (names, texts, brand, category, VAT class, active)")
async def patch_product(
        request: Request, product_id: IdPath, body: ProductPatch,
        actor: Annotated[Actor, api_requires("catalogue.write", everywhere=True)]
) -> ProductOut:
    async with db_of(request).uow() as uow:
        current = await catalogue.get_product(uow.session, product_id)
        merged = {"name": current.name, "name_en": current.name_en, "brand": current.brand,
                  "description": current.description,
                  "description_en": current.description_en,
                  "category_id": current.category_id, "vat_class": current.vat_class,
                  "active": current.active, **body.model_dump(exclude_unset=True)}
        await editing.update_product(uow, actor, product_id,
                                     editing.ProductEdit.model_validate(merged))
        await uow.commit()
    async with db_of(request).reader() as s:
        return await catalogue.get_product(s, product_id)


@router.post("/products/{product_id}/variants", response_model=VariantOut, status_code=201,
             summary="Add a variant to a product (its price is set here once)")
async def add_variant(
        request: Request, product_id: IdPath, body: editing.VariantCreate,
        actor: Annotated[Actor, api_requires("catalogue.write", everywhere=True)]
) -> VariantOut:
    async with db_of(request).uow() as uow:
        out = await editing.add_variant(uow, actor, product_id, body)
        await uow.commit()
    return out


@router.patch("/variants/{variant_id}", response_model=VariantOut,
              summary="Change a variant (SKU, EAN, names, attributes, cost price, active)")
async def patch_variant(
        request: Request, variant_id: IdPath, body: VariantPatch,
        actor: Annotated[Actor, api_requires("catalogue.write", everywhere=True)]
) -> VariantOut:
    async with db_of(request).uow() as uow:
        current = await uow.session.get(Variant, variant_id)
        if current is None:
            raise NotFound(f"no variant {variant_id}", code="variant_not_found")
        merged = {"sku": current.sku, "ean": current.ean, "name": current.name,
                  "name_en": current.name_en, "attributes": dict(current.attributes or {}),
                  "cost_cents": current.cost_cents, "active": current.active,
                  **body.model_dump(exclude_unset=True)}
        out = await editing.update_variant(uow, actor, variant_id,
                                           editing.VariantEdit.model_validate(merged))
        await uow.commit()
    return out


class BarcodeIn(Input):
    code: str = Field(min_length=1, max_length=20, description="an EAN/GTIN")


@router.post("/variants/{variant_id}/barcodes", status_code=201,
             summary="Add a further barcode to a variant")
async def add_barcode(
        request: Request, variant_id: IdPath, body: BarcodeIn,
        actor: Annotated[Actor, api_requires("catalogue.write", everywhere=True)]
) -> dict[str, str]:
    async with db_of(request).uow() as uow:
        code = await editing.add_barcode(uow, actor, variant_id, body.code)
        await uow.commit()
    return {"code": code}
