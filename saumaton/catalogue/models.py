"""Catalogue tables: VAT classes with dated rates, categories, products, variants."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, UTCDateTime


class VatClass(Base):
    __tablename__ = "vat_classes"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class VatRate(Base):
    """A rate in basis points (2550 = 25.5 %) valid from a date until the next one."""

    __tablename__ = "vat_rates"
    __table_args__ = (UniqueConstraint("vat_class_code", "valid_from"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vat_class_code: Mapped[str] = mapped_column(ForeignKey("vat_classes.code"))
    rate_bp: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), nullable=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # English name for the webshop's English pages; "" = show the Finnish name.
    name_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(160), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # English texts for the webshop's English pages; "" = show the Finnish ones.
    name_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    description_en: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id"), nullable=True, index=True
    )
    vat_class_code: Mapped[str] = mapped_column(ForeignKey("vat_classes.code"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A gift card: each unit sold issues a card worth the variant's price; no stock is
    # kept and the sale carries no VAT (a multi-purpose voucher, VAT class "zero").
    gift_card: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Variant(Base):
    """A sellable item: one SKU, one optional EAN/GTIN, one consumer price (VAT incl.)."""

    __tablename__ = "variants"
    # A customer's shade matched against variant names without case (the add-on
    # suggestions, migration 0026): one index lookup, not every variant's lower().
    __table_args__ = (Index("ix_variants_lower_name", func.lower(text("name"))),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    ean: Mapped[str | None] = mapped_column(String(14), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    name_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    price_cents: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # What one unit cost the shop, VAT excluded (gross margin in reports); NULL = unknown.
    cost_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)


class VariantBarcode(Base):
    """A further barcode of a variant (a supplier's own code, an old packaging's EAN);
    the main one is variants.ean. A code belongs to one variant across both."""

    __tablename__ = "variant_barcodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(14), unique=True)


class ProductImage(Base):
    """A picture of a product, or of one variant (a shade swatch). `url` is served as is:
    a path under /media/ (files in the media directory) or an absolute URL."""

    __tablename__ = "product_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(String(500))
    alt: Mapped[str] = mapped_column(String(300), default="")
