"""What the webshop pages show, gathered from the core services.

Prices come from `pricing.resolve_prices` for the web channel, stock from
`inventory.availability`; nothing here computes a price or a stock level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.cached import variant_infos, vat_rates
from saumaton.catalogue.images import image_sizes
from saumaton.catalogue.schemas import ImageOut, ProductOut, VariantOut
from saumaton.catalogue.search import (
    PriceLookup,
    SearchFilters,
    SearchResult,
    campaign_candidates,
)
from saumaton.catalogue.services import VariantInfo, load_variant_infos
from saumaton.core.errors import DomainError, NotFound
from saumaton.db.uow import Database
from saumaton.i18n import localized
from saumaton.inventory.services import (
    Availability,
    availability,
    live_availability,
    stock_status,
)
from saumaton.locations.reference import channel_id
from saumaton.locations.services import channel_by_code
from saumaton.orders.services import business_day
from saumaton.pricing.book import campaign_book
from saumaton.pricing.services import PriceQuote, resolve_prices
from saumaton.web.pages import add_template_global

WEB_CHANNEL = "web"


@pass_context
def local_text(ctx: Context, obj: object, field: str = "name") -> str:
    """In templates: `{{ local(product) }}`, `{{ local(product, 'description') }}` — the
    English text on English pages when it is set, else the Finnish one."""
    return localized(obj, field, str(ctx.get("lang", "")))


def picture(url: str, size: int) -> str:
    """In templates: `{{ picture(img.url, 128) }}` — an uploaded picture's file of that
    size (catalogue.images.SIZES), else the URL as it is."""
    return image_sizes(url).get(size, url)


def srcset(url: str) -> str:
    """`url 1x, url-800 2x` for an uploaded picture shown at 400 px ("" otherwise)."""
    sizes = image_sizes(url)
    return f"{sizes[400]} 1x, {sizes[800]} 2x" if sizes else ""


add_template_global("local", local_text)
add_template_global("picture", picture)
add_template_global("srcset", srcset)


@dataclass(frozen=True)
class PriceView:
    variant_id: int
    list_cents: int
    price_cents: int
    discount_cents: int
    vat_rate_bp: int
    campaign_name: str | None
    limited_to: tuple[str, ...] | None
    member_tier: str | None = None  # the price is a member price of this loyalty tier

    @property
    def discounted(self) -> bool:
        return self.discount_cents > 0

    @property
    def web_only(self) -> bool:
        return self.limited_to == (WEB_CHANNEL,)


async def web_prices(s: AsyncSession, variant_ids: Sequence[int], at: datetime,
                     tier: str | None = None, segments: frozenset[int] = frozenset()
                     ) -> dict[int, PriceView]:
    """The web channel's price of each variant now, campaigns applied (with the member
    prices of a signed-in shopper's loyalty `tier`)."""
    if not variant_ids:
        return {}
    try:
        channel_id: int | None = (await channel_by_code(s, WEB_CHANNEL)).id
    except DomainError:
        channel_id = None  # no web channel configured: campaigns for every channel only
    infos = await load_variant_infos(s, business_day(at), ids=variant_ids)
    quotes = await resolve_prices(s, infos, channel_id, at, tier, segments)
    return {i.id: PriceView(i.id, quotes[i.id].list_cents, quotes[i.id].price_cents,
                            quotes[i.id].discount_cents, i.vat_rate_bp,
                            quotes[i.id].campaign_name, quotes[i.id].limited_to,
                            quotes[i.id].member_tier)
            for i in infos}


def _price_view(info: VariantInfo, quote: PriceQuote) -> PriceView:
    return PriceView(info.id, quote.list_cents, quote.price_cents, quote.discount_cents,
                     info.vat_rate_bp, quote.campaign_name, quote.limited_to,
                     quote.member_tier)


async def product_prices(db: Database, s: AsyncSession, product: ProductOut, variant_id: int,
                         at: datetime, tier: str | None,
                         segments: frozenset[int] = frozenset()
                         ) -> tuple[PriceView, PriceView | None]:
    """The product page's price block, from this process's caches (product, VAT rates,
    the web channel, the campaign book): what `web_prices` gives the shopper of `tier`
    (and of `segments`: their segment prices), and what `member_teaser` adds for a
    shopper who is not a member."""
    day = business_day(at)
    infos = variant_infos(product, [variant_id], await vat_rates(db, s, day), day)
    try:
        channel: int | None = await channel_id(db, s, WEB_CHANNEL)
    except DomainError:
        channel = None  # no web channel configured: campaigns for every channel only
    book = await campaign_book(db, s)
    if not infos or at < book.valid_from:  # (a time before the book's: the database)
        price = (await web_prices(s, [variant_id], at, tier, segments))[variant_id]
        return price, await member_teaser(s, variant_id, at, tier, price)
    shown = _price_view(infos[0],
                        book.quotes(infos, channel, at, tier, segments)[variant_id])
    if tier is not None:
        return shown, None
    member = _price_view(infos[0], book.quotes(infos, channel, at, "member")[variant_id])
    return shown, member if member.price_cents < shown.price_cents else None


async def cached_web_prices(db: Database, s: AsyncSession, products: Sequence[ProductOut],
                            variant_ids: Sequence[int], at: datetime,
                            tier: str | None = None) -> dict[int, PriceView]:
    """`web_prices` of these variants of `products` (in hand), from this process's
    caches: no query."""
    if not variant_ids:
        return {}
    day = business_day(at)
    rates = await vat_rates(db, s, day)
    wanted = set(variant_ids)
    infos = [i for p in products for i in variant_infos(p, wanted, rates, day)]
    try:
        channel: int | None = await channel_id(db, s, WEB_CHANNEL)
    except DomainError:
        channel = None
    book = await campaign_book(db, s)
    if at < book.valid_from or len(infos) != len(wanted):
        return await web_prices(s, variant_ids, at, tier)
    quotes = book.quotes(infos, channel, at, tier)
    return {i.id: _price_view(i, quotes[i.id]) for i in infos}


async def member_teaser(s: AsyncSession, variant_id: int, at: datetime, tier: str | None,
                        shown: PriceView) -> PriceView | None:
    """The loyalty members' price of a variant, for a shopper who is not a member
    (signed out, or no loyalty card yet), when it is lower than the price they see."""
    if tier is not None:
        return None
    member = (await web_prices(s, [variant_id], at, "member")).get(variant_id)
    return member if member and member.price_cents < shown.price_cents else None


def price_lookup(s: AsyncSession, at: datetime, tier: str | None = None) -> PriceLookup:
    """The web price of variants (for a shopper of loyalty `tier`), for the catalogue
    search's price sorts."""
    async def lookup(variant_ids: Sequence[int]) -> dict[int, int]:
        return {vid: p.price_cents
                for vid, p in (await web_prices(s, variant_ids, at, tier)).items()}
    return lookup


@dataclass(frozen=True)
class ProductCard:
    product: ProductOut
    variant: VariantOut  # the one whose price is shown (the cheapest); the card opens it
    price: PriceView
    several_prices: bool
    image: ImageOut | None
    stock: str  # in_stock | few_left | in_stores | out_of_stock

    @property
    def url(self) -> str:
        return f"/shop/p/{self.product.slug}?variant={self.variant.id}"


def card_image(product: ProductOut, variant_id: int, *, narrowed: bool) -> ImageOut | None:
    """The product's picture; when the filters narrowed the product to some variants
    (a shade), that variant's own picture first."""
    for wanted in ((variant_id, None) if narrowed else (None, variant_id)):
        for img in product.images:
            if img.variant_id == wanted:
                return img
    return product.images[0] if product.images else None


async def product_cards(s: AsyncSession, products: Sequence[ProductOut], at: datetime, *,
                        matching: Mapping[int, Sequence[int]] | None = None,
                        tier: str | None = None, db: Database | None = None
                        ) -> list[ProductCard]:
    """Cards for a product list; `matching` narrows each product to the variants that
    matched the shopper's filters (price, "from" and stock are of those). Prices are
    a signed-in member's own (`tier`), as on the product page and in the cart. With
    `db`, prices come from this process's caches and stock in one statement."""
    def shown(p: ProductOut) -> list[VariantOut]:
        allowed = set(matching[p.id]) if matching and p.id in matching else None
        return [v for v in p.variants if v.active and (allowed is None or v.id in allowed)]

    ids = [v.id for p in products for v in shown(p)]
    if db is not None:
        prices = await cached_web_prices(db, s, products, ids, at, tier)
        stock = await live_availability(
            db, s, ids, {v.id for p in products if p.gift_card for v in p.variants})
    else:
        prices = await web_prices(s, ids, at, tier)
        stock = await availability(s, ids)
    cards = []
    for p in products:
        priced = [(prices[v.id], v) for v in shown(p) if v.id in prices]
        if not priced:
            continue
        price, variant = min(priced, key=lambda pv: (pv[0].price_cents, pv[1].id))
        several = len({pv[0].price_cents for pv in priced}) > 1
        narrowed = len(priced) < len(active_variants(p))
        cards.append(ProductCard(p, variant, price, several,
                                 card_image(p, variant.id, narrowed=narrowed),
                                 _card_stock([stock[v.id] for _, v in priced])))
    return cards


def _card_stock(found: Sequence[Availability]) -> str:
    status = stock_status(sum(a.online for a in found))
    if status == "out_of_stock" and any(
            loc.available > 0 for a in found for loc in a.locations
            if loc.pickup_point or loc.sells_in_person):
        return "in_stores"
    return status


async def campaign_cards(s: AsyncSession, at: datetime, limit: int = 8,
                         tier: str | None = None, db: Database | None = None
                         ) -> list[ProductCard]:
    """Products whose web price (for a shopper of `tier`) is discounted now (the home
    page's offers)."""
    candidates = await campaign_candidates(s, at)
    return [c for c in await product_cards(s, candidates, at, tier=tier, db=db)
            if c.price.discounted][:limit]


def gallery(product: ProductOut, current: VariantOut) -> list[ImageOut]:
    """The chosen variant's pictures first, then the product's own; other variants'
    swatches are left out."""
    return ([img for img in product.images if img.variant_id == current.id]
            + [img for img in product.images if img.variant_id is None])


@dataclass(frozen=True)
class Option:
    value: str
    variant_id: int
    selected: bool
    value_en: str = ""  # the variant's English name (a picker of names), else ""
    label: str = ""  # what the page shows: `value` in the page's language (`pickers`)


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


# `pickers` of a product in hand (by identity: a changed product is another object in
# the process's product cache), its variant and a language.
_pickers: dict[tuple[int, int, str], tuple[ProductOut, list[Picker]]] = {}
_PICKERS_MAX = 2000


def pickers(product: ProductOut, current: VariantOut, lang: str = "fi") -> list[Picker]:
    """One picker per attribute that varies; each option links to the variant that
    has that value and otherwise matches the current one best. Options are labelled in
    `lang`. Kept per product object, variant and language (the product page asks for
    the same ones again and again)."""
    key = (id(product), current.id, lang)
    hit = _pickers.get(key)
    if hit is not None and hit[0] is product:
        return hit[1]
    out = _make_pickers(product, current, lang)
    if len(_pickers) >= _PICKERS_MAX:
        _pickers.clear()
    _pickers[key] = (product, out)
    return out


def _make_pickers(product: ProductOut, current: VariantOut, lang: str) -> list[Picker]:
    variants = active_variants(product)
    keys: list[str] = []
    for v in variants:
        keys.extend(k for k in v.attributes if k not in keys)
    # Each variant's values read once (a product may have dozens of shades).
    values_of = [(v, {k: _attr(v, k) for k in keys}) for v in variants]
    mine = {k: _attr(current, k) for k in keys}
    out: list[Picker] = []
    for key in keys:
        values = list(dict.fromkeys(a[key] for _, a in values_of if a[key]))
        if len(values) < 2:
            continue
        others = [k for k in keys if k != key]
        options = []
        for value in values:
            best = max((va for va in values_of if va[1][key] == value),
                       key=lambda va: sum(va[1][k] == mine[k] for k in others))
            options.append(Option(value, best[0].id, mine[key] == value, label=value))
        out.append(Picker(key, options))
    if not out and len(variants) > 1:
        named = [Option(v.name or v.sku, v.id, v.id == current.id,
                        v.name_en if v.name else "") for v in variants]
        out.append(Picker("", [replace(o, label=localized(o, "value", lang))
                               for o in named]))
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
    # The most one can order: delivered from the web stock, or collected at one store.
    max_quantity: int


async def availability_view(s: AsyncSession, variant_id: int) -> AvailabilityView:
    return _availability_view((await availability(s, [variant_id]))[variant_id])


async def product_availability(db: Database, s: AsyncSession, product: ProductOut,
                               variant_id: int) -> AvailabilityView:
    """`availability_view` of a variant of `product`: the stock read live, the rest
    from this process's caches."""
    gift_cards = (variant_id,) if product.gift_card else ()
    found = await live_availability(db, s, [variant_id], gift_cards)
    return _availability_view(found[variant_id])


def _availability_view(a: Availability) -> AvailabilityView:
    variant_id = a.variant_id
    stores = [StockRow(loc.code, loc.name, loc.available, stock_status(loc.available))
              for loc in a.locations if loc.kind == "store"]
    return AvailabilityView(variant_id, StockRow("online", "", a.online, stock_status(a.online)),
                            stores, a.one_order_max)


# --- listing pages (category, search) ----------------------------------------------------

@dataclass(frozen=True)
class ListingLinks:
    """URLs of a listing page with its filters (`params`, without the page number)."""

    base: str
    params: tuple[tuple[str, str], ...]
    keep: frozenset[str] = frozenset({"q", "category", "sort"})  # what "clear filters" keeps

    def url(self, params: Sequence[tuple[str, str]]) -> str:
        return self.base + ("?" + urlencode(params) if params else "")

    def page(self, n: int) -> str:
        return self.url([*self.params, *([("page", str(n))] if n > 1 else [])])

    def without(self, key: str, value: str | None = None) -> str:
        return self.url([(k, v) for k, v in self.params
                         if not (k == key and (value is None or v == value))])

    def clear(self) -> str:
        return self.url([(k, v) for k, v in self.params if k in self.keep])

    @property
    def filtered(self) -> bool:
        return any(k not in self.keep for k, _ in self.params)


@dataclass(frozen=True)
class ActiveFilter:
    key: str  # an attribute, or "stock"
    value: str  # the attribute value, or the stock option's code
    name: str  # the store's name for a stock option, else ""
    remove_url: str


def listing_links(base: str, result: SearchResult, filters: SearchFilters, *,
                  with_category: bool) -> ListingLinks:
    """The filters in force, as they go into links: what the search applied, in a
    stable order (unknown parameters are dropped)."""
    params: list[tuple[str, str]] = []
    if filters.q:
        params.append(("q", filters.q))
    if with_category and filters.category:
        params.append(("category", filters.category))
    if filters.sort and filters.sort == result.sort:
        params.append(("sort", result.sort))
    params.extend(("stock", o.code) for o in result.stock_options if o.selected)
    for facet in result.facets:
        params.extend((facet.attribute, v) for v in facet.selected)
    return ListingLinks(base, tuple(params))


def active_filters(result: SearchResult, links: ListingLinks) -> list[ActiveFilter]:
    out = [ActiveFilter("stock", o.code, o.name, links.without("stock"))
           for o in result.stock_options if o.selected]
    for facet in result.facets:
        out.extend(ActiveFilter(facet.attribute, v, "", links.without(facet.attribute, v))
                   for v in facet.selected)
    return out


def empty_result(filters: SearchFilters) -> SearchResult:
    return SearchResult([], 0, filters.page, 1, filters.effective_sort(), [], [])
