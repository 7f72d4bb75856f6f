"""What the webshop pages show, gathered from the core services.

Prices come from `pricing.resolve_prices` for the web channel, stock from
`inventory.availability`; nothing here computes a price or a stock level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.schemas import ProductOut, VariantOut
from saumaton.catalogue.services import load_variant_infos
from saumaton.core.errors import DomainError, NotFound
from saumaton.inventory.services import availability, stock_status
from saumaton.locations.services import channel_by_code
from saumaton.orders.services import business_day
from saumaton.pricing.services import resolve_prices

WEB_CHANNEL = "web"


@dataclass(frozen=True)
class PriceView:
    variant_id: int
    list_cents: int
    price_cents: int
    discount_cents: int
    vat_rate_bp: int
    campaign_name: str | None
    limited_to: tuple[str, ...] | None

    @property
    def discounted(self) -> bool:
        return self.discount_cents > 0

    @property
    def web_only(self) -> bool:
        return self.limited_to == (WEB_CHANNEL,)


async def web_prices(s: AsyncSession, variant_ids: Sequence[int], at: datetime
                     ) -> dict[int, PriceView]:
    """The web channel's price of each variant now, campaigns applied."""
    if not variant_ids:
        return {}
    try:
        channel_id: int | None = (await channel_by_code(s, WEB_CHANNEL)).id
    except DomainError:
        channel_id = None  # no web channel configured: campaigns for every channel only
    infos = await load_variant_infos(s, business_day(at), ids=variant_ids)
    quotes = await resolve_prices(s, infos, channel_id, at)
    return {i.id: PriceView(i.id, quotes[i.id].list_cents, quotes[i.id].price_cents,
                            quotes[i.id].discount_cents, i.vat_rate_bp,
                            quotes[i.id].campaign_name, quotes[i.id].limited_to)
            for i in infos}


@dataclass(frozen=True)
class ProductCard:
    product: ProductOut
    variant: VariantOut  # the one whose price is shown (the cheapest)
    price: PriceView
    several_prices: bool


async def product_cards(s: AsyncSession, products: Sequence[ProductOut], at: datetime
                        ) -> list[ProductCard]:
    ids = [v.id for p in products for v in p.variants if v.active]
    prices = await web_prices(s, ids, at)
    cards = []
    for p in products:
        priced = [(prices[v.id], v) for v in p.variants if v.active and v.id in prices]
        if not priced:
            continue
        price, variant = min(priced, key=lambda pv: (pv[0].price_cents, pv[1].id))
        several = len({pv[0].price_cents for pv in priced}) > 1
        cards.append(ProductCard(p, variant, price, several))
    return cards


@dataclass(frozen=True)
class Option:
    value: str
    variant_id: int
    selected: bool


@dataclass(frozen=True)
class Picker:
    attribute: str  # e.g. "shade", "size"; "" when variants have no attributes
    options: list[Option] = field(default_factory=list)


def active_variants(product: ProductOut) -> list[VariantOut]:
    return [v for v in product.variants if v.active]


def choose_variant(product: ProductOut, variant_id: int | None, *, strict: bool = False
                   ) -> VariantOut:
    """The variant asked for, or the first one for sale. Strict: it must exist."""
    variants = active_variants(product)
    if not product.active or not variants:
        raise NotFound(f"product {product.slug} is not for sale", code="product_not_found")
    for v in variants:
        if v.id == variant_id:
            return v
    if strict:
        raise NotFound(f"no variant {variant_id} of {product.slug}", code="variant_not_found")
    return variants[0]


def _attr(v: VariantOut, key: str) -> str:
    value: Any = v.attributes.get(key)
    return "" if value is None else str(value)


def pickers(product: ProductOut, current: VariantOut) -> list[Picker]:
    """One picker per attribute that varies; each option links to the variant that
    has that value and otherwise matches the current one best."""
    variants = active_variants(product)
    keys: list[str] = []
    for v in variants:
        keys.extend(k for k in v.attributes if k not in keys)
    out: list[Picker] = []
    for key in keys:
        values = list(dict.fromkeys(_attr(v, key) for v in variants if _attr(v, key)))
        if len(values) < 2:
            continue
        options = []
        for value in values:
            candidates = [v for v in variants if _attr(v, key) == value]
            best = max(candidates, key=lambda v: sum(
                _attr(v, k) == _attr(current, k) for k in keys if k != key))
            options.append(Option(value, best.id, _attr(current, key) == value))
        out.append(Picker(key, options))
    if not out and len(variants) > 1:
        out.append(Picker("", [Option(v.name or v.sku, v.id, v.id == current.id)
                               for v in variants]))
    return out


@dataclass(frozen=True)
class StockRow:
    code: str
    name: str
    available: int
    status: str  # in_stock | few_left | out_of_stock


@dataclass(frozen=True)
class AvailabilityView:
    variant_id: int
    online: StockRow
    stores: list[StockRow]


async def availability_view(s: AsyncSession, variant_id: int) -> AvailabilityView:
    a = (await availability(s, [variant_id]))[variant_id]
    stores = [StockRow(loc.code, loc.name, loc.available, stock_status(loc.available))
              for loc in a.locations if loc.kind == "store"]
    return AvailabilityView(variant_id, StockRow("online", "", a.online, stock_status(a.online)),
                            stores)
