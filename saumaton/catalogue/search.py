"""The webshop's product finder: text search, category pages, filters and facets.

Everything is counted and ordered in the database, so a page costs the same
handful of queries however big the catalogue is: the matching products (one
page of them), their number, the facet counts (one query, plus one per filtered
attribute, since choosing one shade must still show the other shades' counts)
and the availability counts. Attributes are JSON, read with each database's own
JSON functions (json_each on SQLite, json_each_text on PostgreSQL).

Filters match variants, not products: "shade Puolukka, in stock in Helsinki"
finds products that have a Puolukka variant in stock in Helsinki. Several values
of one attribute are alternatives (OR); different attributes and availability
must all hold (AND). Prices for the price sorts come from the caller
(`PriceLookup`, the one price function), asked only about variants a running
campaign may touch; every other variant sells at its list price.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum import ean as stdnum_ean

from saumaton.catalogue.models import Product, Variant, VariantBarcode
from saumaton.catalogue.schemas import ProductOut
from saumaton.catalogue.services import CategoryInfo, like_pattern, list_categories, load_products
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound
from saumaton.inventory.models import StockLevel
from saumaton.locations.models import Location
from saumaton.pricing.models import Campaign, CampaignTarget

SORTS = ("relevance", "newest", "price_asc", "price_desc", "name")
ONLINE = "online"
# Query parameters of the listing pages; an attribute with one of these names is not
# offered as a filter.
RESERVED_PARAMS = frozenset({"q", "category", "sort", "stock", "page", "lang", "variant"})
MAX_WORDS = 8
MAX_FILTER_VALUES = 50

# Effective price (cents) of each variant id: the caller asks the price function.
PriceLookup = Callable[[Sequence[int]], Awaitable[Mapping[int, int]]]


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    category: str | None = None  # a slug; its subcategories are included
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    stock: str | None = None  # "online" or a location code
    sort: str = ""  # one of SORTS; default relevance with words, else newest
    page: int = 1
    page_size: int = 24

    def effective_sort(self) -> str:
        if self.sort in SORTS and (self.sort != "relevance" or self.words()):
            return self.sort
        return "relevance" if self.words() else "newest"

    def words(self) -> list[str]:
        return self.q.lower().split()[:MAX_WORDS]


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int  # products that would match with this value chosen (other filters kept)
    selected: bool


@dataclass(frozen=True)
class Facet:
    attribute: str
    values: list[FacetValue]

    @property
    def selected(self) -> list[str]:
        return [v.value for v in self.values if v.selected]


@dataclass(frozen=True)
class StockOption:
    code: str  # "online" or a location code
    name: str  # the location's name ("" for online)
    count: int
    selected: bool


@dataclass(frozen=True)
class Hit:
    product: ProductOut
    variant_ids: tuple[int, ...]  # its active variants that match the filters, in order


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    total: int
    page: int
    pages: int
    sort: str
    facets: list[Facet]
    stock_options: list[StockOption]
    category: CategoryInfo | None = None


# --- categories ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CategoryTree:
    categories: list[CategoryInfo]  # by name

    def by_slug(self, slug: str) -> CategoryInfo | None:
        return next((c for c in self.categories if c.slug == slug), None)

    def children(self, parent_id: int | None) -> list[CategoryInfo]:
        return [c for c in self.categories if c.parent_id == parent_id]

    def descendants(self, category_id: int) -> set[int]:
        """The category and every category below it."""
        found, todo = {category_id}, [category_id]
        while todo:
            for c in self.children(todo.pop()):
                if c.id not in found:
                    found.add(c.id)
                    todo.append(c.id)
        return found

    def path(self, category: CategoryInfo) -> list[CategoryInfo]:
        """From the top category down to `category`'s parent (breadcrumbs)."""
        out: list[CategoryInfo] = []
        parent = category.parent_id
        while parent is not None and len(out) < 20:
            node = next((c for c in self.categories if c.id == parent), None)
            if node is None:
                break
            out.insert(0, node)
            parent = node.parent_id
        return out


async def category_tree(session: AsyncSession) -> CategoryTree:
    return CategoryTree(await list_categories(session))


# --- codes ----------------------------------------------------------------------------------

_CODE = re.compile(r"[0-9][0-9 -]{6,20}[0-9]")


def gtin_forms(text: str) -> list[str]:
    """The stored forms a typed or scanned barcode may have (EAN-8, UPC-A, EAN-13,
    GTIN-14 with leading zeros); [] when `text` is not a valid barcode."""
    text = text.strip()
    if not _CODE.fullmatch(text):
        return []
    digits = re.sub(r"[ -]", "", text)
    if len(digits) not in (8, 12, 13, 14) or not stdnum_ean.is_valid(digits):
        return []
    core = digits.lstrip("0")
    return [core.zfill(n) for n in (8, 12, 13, 14) if len(core) <= n]


async def product_for_code(session: AsyncSession, text: str) -> tuple[str, int] | None:
    """(product slug, variant id) of the variant for sale with this EAN/GTIN, if any."""
    forms = gtin_forms(text)
    if not forms:
        return None
    row = (await session.execute(
        select(Product.slug, Variant.id).join(Product, Product.id == Variant.product_id)
        .where(or_(Variant.ean.in_(forms), Variant.id.in_(
            select(VariantBarcode.variant_id).where(VariantBarcode.code.in_(forms)))),
            Variant.active, Product.active)
        .order_by(Variant.id).limit(1))).first()
    return (row[0], row[1]) if row else None


# --- search ---------------------------------------------------------------------------------

def _text_conditions(words: Sequence[str], code_forms: Sequence[str],
                     tree: CategoryTree) -> list[Any]:
    """Every word somewhere in the product name, brand, slug, variant name or SKU, or in
    the name or slug of its category or a category above it. The slugs are where the
    English names are (kaunis-iho-matte-foundation, category foundation): a shopper
    on the English pages searching "foundation" finds every foundation."""
    conds: list[Any] = []
    for word in words:
        like = like_pattern(word)
        categories: set[int] = set()
        for c in tree.categories:
            if word in c.name.lower() or word in c.slug.lower() or word in c.name_en.lower():
                categories |= tree.descendants(c.id)
        conds.append(or_(
            func.lower(Product.name).like(like, escape="\\"),
            func.lower(Product.name_en).like(like, escape="\\"),
            func.lower(Product.brand).like(like, escape="\\"),
            func.lower(Product.slug).like(like, escape="\\"),
            func.lower(Variant.name).like(like, escape="\\"),
            func.lower(Variant.sku).like(like, escape="\\"),
            Variant.ean == word,
            Product.category_id.in_(categories) if categories else false(),
        ))
    if code_forms and conds:
        return [or_(and_(*conds), Variant.ean.in_(code_forms), Variant.id.in_(
            select(VariantBarcode.variant_id).where(VariantBarcode.code.in_(code_forms))))]
    return conds


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """'5 ml' < '30 ml' < '150 ml'; words compare case-insensitively (ä, ö after z)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


async def campaign_targeted(session: AsyncSession, at: datetime) -> Any:
    """A condition on products (joined with their variants) true where a campaign
    running at `at` targets the variant, the product or its category, in any
    channel (the price function has the last word). The running campaigns' targets
    are few: they are read first, so the condition is plain IN lists."""
    rows = (await session.execute(
        select(CampaignTarget.target_type, CampaignTarget.target_id)
        .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(Campaign.active, Campaign.starts_at <= at,
               or_(Campaign.ends_at.is_(None), Campaign.ends_at > at)))).all()
    targets: dict[str, set[int]] = {"variant": set(), "product": set(), "category": set()}
    for kind, target_id in rows:
        targets.setdefault(kind, set()).add(target_id)
    conds: list[Any] = [false()]
    if targets["variant"]:
        conds.append(Product.id.in_(select(Variant.product_id).where(
            Variant.id.in_(targets["variant"]))))
    if targets["product"]:
        conds.append(Product.id.in_(targets["product"]))
    if targets["category"]:
        conds.append(Product.category_id.in_(targets["category"]))
    return or_(*conds)


class _Query:
    """The conditions of one search, and the statements built from them."""

    def __init__(self, session: AsyncSession, base: list[Any]) -> None:
        self.s = session
        self.base = base
        postgres = session.get_bind().dialect.name == "postgresql"
        each = func.json_each_text if postgres else func.json_each
        self.kv = each(Variant.attributes).table_valued(
            "key", "value", joins_implicitly=True).alias("kv")

    def select(self, *cols: Any) -> Select[Any]:
        return select(*cols).select_from(Variant).join(Product, Product.id == Variant.product_id)

    async def facet_counts(self, conds: Sequence[Any], key: str | None = None
                           ) -> dict[tuple[str, str], int]:
        """Products per (attribute, value) among the variants meeting `conds`."""
        kv = self.kv
        stmt = (self.select(kv.c.key, cast(kv.c.value, String),
                            func.count(distinct(Variant.product_id)))
                .join(kv, true()).where(*self.base, *conds)
                .group_by(kv.c.key, cast(kv.c.value, String)))
        if key is not None:
            stmt = stmt.where(kv.c.key == key)
        return {(str(k), str(v)): int(n) for k, v, n in (await self.s.execute(stmt)).all()
                if v is not None}


def _in_stock(location_ids: Iterable[int]) -> Any:
    """Some of the variant available at one of the locations. The same rule as
    inventory.services.availability: available = on hand less reserved."""
    return exists().where(StockLevel.variant_id == Variant.id,
                          StockLevel.location_id.in_(list(location_ids) or [0]),
                          StockLevel.on_hand - StockLevel.reserved > 0)


def _relevance(words: Sequence[str]) -> Any:
    q = " ".join(words)
    name, brand = func.lower(Product.name), func.lower(Product.brand)
    esc = like_pattern(q)[1:]  # 'q%': the name starts with the words
    return case(
        (name == q, 0),
        (name.like(esc, escape="\\"), 1),
        (and_(*[name.like(like_pattern(w), escape="\\") for w in words]), 2),
        (and_(*[or_(name.like(like_pattern(w), escape="\\"),
                    brand.like(like_pattern(w), escape="\\")) for w in words]), 3),
        else_=4)


async def search_products(
    session: AsyncSession, filters: SearchFilters, *, prices: PriceLookup | None = None,
    at: datetime | None = None,
) -> SearchResult:
    """A page of products for the filters, with facet counts for refining it.

    Raises NotFound (`category_not_found`) for an unknown category. The price sorts
    need `prices`; `at` is the time whose campaigns count (default now)."""
    tree = await category_tree(session)
    category = None
    base: list[Any] = [Product.active, Variant.active]
    if filters.category is not None:
        category = tree.by_slug(filters.category)
        if category is None:
            raise NotFound(f"no category {filters.category!r}", code="category_not_found")
        base.append(Product.category_id.in_(tree.descendants(category.id)))
    words = filters.words()
    base.extend(_text_conditions(words, gtin_forms(filters.q), tree))
    query = _Query(session, base)

    # The attributes the candidates have; only chosen values of those count, so
    # an old link or a marketing parameter (utm_source) does not empty the page.
    universe = await query.facet_counts([])
    values: dict[str, set[str]] = {}
    for key, value in universe:
        if key not in RESERVED_PARAMS:
            values.setdefault(key, set()).add(value)
    chosen = {k: set(list(vs)[:MAX_FILTER_VALUES]) & values[k]
              for k, vs in filters.attributes.items() if k in values}
    chosen = {k: vs for k, vs in chosen.items() if vs}

    locations = (await session.scalars(select(Location).order_by(Location.name, Location.id))
                 ).all()
    stores = [loc for loc in locations if loc.pickup_point or loc.sells_in_person]
    places: dict[str, list[int]] = {ONLINE: [loc.id for loc in locations if loc.ships_web_orders],
                                    **{loc.code: [loc.id] for loc in stores}}
    stock_at = filters.stock if filters.stock in places else None

    def conds(*, skip_attr: str | None = None, skip_stock: bool = False) -> list[Any]:
        out = [Variant.attributes[k].as_string().in_(sorted(vs))
               for k, vs in chosen.items() if k != skip_attr]
        if stock_at is not None and not skip_stock:
            out.append(_in_stock(places[stock_at]))
        return out

    matching = conds()
    counts = universe if not matching else await query.facet_counts(matching)
    for key in chosen:  # the other values of a chosen attribute, as if it were not
        counts.update(await query.facet_counts(conds(skip_attr=key), key))
    facets = [
        Facet(key, [FacetValue(v, counts.get((key, v), 0), v in chosen.get(key, ()))
                    for v in sorted(values[key], key=natural_key)])
        for key in sorted(values, key=natural_key) if len(values[key]) > 1 or key in chosen]

    no_stock = conds(skip_stock=True)
    per_store: dict[int, int] = {lid: n for lid, n in (await session.execute(
        query.select(StockLevel.location_id, func.count(distinct(Variant.product_id)))
        .join(StockLevel, StockLevel.variant_id == Variant.id)
        .where(*base, *no_stock, StockLevel.on_hand - StockLevel.reserved > 0,
               StockLevel.location_id.in_([loc.id for loc in stores] or [0]))
        .group_by(StockLevel.location_id))).all()}
    online = await session.scalar(query.select(func.count(distinct(Variant.product_id)))
                                  .where(*base, *no_stock, _in_stock(places[ONLINE])))
    stock_options = [StockOption(ONLINE, "", int(online or 0), stock_at == ONLINE)] + [
        StockOption(loc.code, loc.name, int(per_store.get(loc.id, 0)), stock_at == loc.code)
        for loc in stores]

    total = int(await session.scalar(query.select(func.count(distinct(Variant.product_id)))
                                     .where(*base, *matching)) or 0)
    size = max(1, filters.page_size)
    pages = max(1, -(-total // size))
    offset = (filters.page - 1) * size
    sort = filters.effective_sort()
    if sort in ("price_asc", "price_desc"):
        page_ids = await _by_price(query, matching, sort, prices, at or utcnow(), offset, size)
    else:
        order: list[Any] = [Product.created_at.desc(), Product.id.desc()]  # newest
        if sort == "name":
            order = [func.lower(Product.name), Product.id]
        elif sort == "relevance":
            order = [func.min(_relevance(words)), func.lower(Product.name), Product.id]
        page_ids = list((await session.scalars(
            query.select(Product.id).where(*base, *matching)
            .group_by(Product.id, Product.created_at, Product.name, Product.brand)
            .order_by(*order).limit(size).offset(offset))).all())

    hit_variants: dict[int, list[int]] = {pid: [] for pid in page_ids}
    if page_ids:
        for vid, pid in (await session.execute(
            query.select(Variant.id, Variant.product_id)
            .where(*base, *matching, Variant.product_id.in_(page_ids))
            .order_by(Variant.position, Variant.id))).all():
            hit_variants[pid].append(vid)
    products = await load_products(session, page_ids)
    hits = [Hit(products[pid], tuple(hit_variants[pid])) for pid in page_ids]
    return SearchResult(hits, total, filters.page, pages, sort, facets, stock_options, category)


async def _by_price(query: _Query, matching: Sequence[Any], sort: str,
                    prices: PriceLookup | None, at: datetime, offset: int, size: int
                    ) -> list[int]:
    """One page of product ids by their lowest price among the matching variants:
    the list price, or what the price function says where a campaign may apply."""
    if prices is None:
        raise ValueError("sorting by price needs a price lookup")
    lowest: dict[int, int] = {}
    names: dict[int, str] = {}
    for pid, name, low in (await query.s.execute(
        query.select(Product.id, Product.name, func.min(Variant.price_cents))
        .where(*query.base, *matching).group_by(Product.id, Product.name))).all():
        lowest[pid], names[pid] = int(low), str(name)
    touched = (await query.s.execute(
        query.select(Variant.id, Variant.product_id)
        .where(*query.base, *matching, await campaign_targeted(query.s, at)))).all()
    if touched:
        found = await prices([vid for vid, _ in touched])
        campaign_low: dict[int, int] = {}
        for vid, pid in touched:
            if vid in found:
                campaign_low[pid] = min(found[vid], campaign_low.get(pid, found[vid]))
        lowest.update(campaign_low)
    sign = -1 if sort == "price_desc" else 1
    ordered = sorted(lowest, key=lambda pid: (sign * lowest[pid], names[pid].casefold(), pid))
    return ordered[offset:offset + size]


# --- the home page ----------------------------------------------------------------------------

async def newest_products(session: AsyncSession, limit: int = 8) -> list[ProductOut]:
    """The newest products for sale (with at least one active variant)."""
    ids = list((await session.scalars(
        select(Product.id).where(Product.active, exists().where(
            Variant.product_id == Product.id, Variant.active))
        .order_by(Product.created_at.desc(), Product.id.desc()).limit(limit))).all())
    found = await load_products(session, ids)
    return [found[i] for i in ids]


async def campaign_candidates(session: AsyncSession, at: datetime, limit: int = 24
                              ) -> list[ProductOut]:
    """Products for sale that a campaign running at `at` targets (by variant, product
    or category), by name. Only candidates: the price function decides whether the
    web price is discounted (a campaign may be limited to other channels)."""
    ids = list((await session.scalars(
        select(Product.id).where(Product.active, await campaign_targeted(session, at),
                                 exists().where(
            Variant.product_id == Product.id, Variant.active))
        .order_by(Product.name, Product.id).limit(limit))).all())
    found = await load_products(session, ids)
    return [found[i] for i in ids]


def parse_attribute_params(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Attribute filters from query parameters (?shade=A&shade=B&size=30 ml); the
    listing's own parameters are not attributes. Unknown attributes are ignored
    later, so marketing parameters (utm_*) do not empty the page."""
    out: dict[str, list[str]] = {}
    for key, value in items:
        value = value.strip()
        if key in RESERVED_PARAMS or not value or len(key) > 60 or len(value) > 200:
            continue
        values = out.setdefault(key, [])
        if value not in values and len(values) < MAX_FILTER_VALUES:
            values.append(value)
        if len(out) > 20:
            break
    return out

