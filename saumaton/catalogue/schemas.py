"""Commands and views of the catalogue, shared by the API and the pages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from saumaton.core.types import Attributes, Input, Name, OptionalName, SmallId


class VariantIn(Input):
    sku: str = Field(min_length=1, max_length=64)
    ean: str | None = Field(
        default=None, max_length=20,
        description="EAN-8, UPC-A, EAN-13 or GTIN-14; spaces and dashes are ignored")
    name: OptionalName = Field(default="", max_length=200)
    name_en: OptionalName = Field(default="", max_length=200,
                                  description="English name; '' = the Finnish")
    attributes: Attributes = Field(default_factory=dict, max_length=50,
                                   description="e.g. shade, size: keys up to 50, values "
                                               "up to 200 characters, at most 50 pairs")
    price_cents: int = Field(ge=0, le=100_000_000)
    cost_cents: int | None = Field(default=None, ge=0, le=100_000_000,
                                   description="what one unit cost, VAT excluded")


class ProductIn(Input):
    slug: str = Field(min_length=1, max_length=160, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Name = Field(min_length=1, max_length=200)
    name_en: OptionalName = Field(default="", max_length=200,
                                  description="English name; '' = the Finnish")
    brand: str = Field(default="", max_length=120)
    description: str = Field(default="", max_length=10_000)
    description_en: str = Field(default="", max_length=10_000)
    category_slug: str | None = Field(default=None, max_length=120)
    vat_class: str = Field(default="standard", max_length=32)
    gift_card: bool = Field(
        default=False, description="each unit sold issues a gift card worth its price; "
                                   "needs vat_class 'zero' (docs/gift-cards.md)")
    variants: list[VariantIn] = Field(min_length=1, max_length=500)


class VariantOut(BaseModel):
    id: int
    product_id: int
    sku: str
    ean: str | None
    name: str
    attributes: dict[str, Any]
    price_cents: int
    active: bool
    name_en: str = ""


class ImageIn(Input):
    """A picture of a product, or of one of its variants (a shade swatch)."""

    product_id: SmallId
    variant_id: SmallId | None = None
    url: str = Field(min_length=1, max_length=500,
                     description="a path under /media/ or an absolute https:// URL")
    alt: str = Field(default="", max_length=300)
    position: int | None = Field(default=None, ge=0, le=10_000,
                                 description="order in the gallery; default: after the last")


class ImageOut(BaseModel):
    url: str
    alt: str
    variant_id: int | None


class ProductOut(BaseModel):
    id: int
    slug: str
    name: str
    brand: str
    description: str
    category_id: int | None
    vat_class: str
    active: bool
    gift_card: bool = False
    name_en: str = ""
    description_en: str = ""
    variants: list[VariantOut]
    images: list[ImageOut] = Field(default_factory=list)  # gallery order
