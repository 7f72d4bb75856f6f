"""The webshop's product finder: text search, category pages, filters and facets.

One query selects the candidate variants (active, in the category and/or matching
the words); one more finds which of them are available where. Attribute and
availability filters, facet counts, relevance and paging then run over those
rows in Python, so the same code serves SQLite and PostgreSQL (attributes are
JSON, whose SQL differs between the two). Prices for the price sorts come from
the caller (`PriceLookup`), which asks the one price function.

Filters match variants, not products: "shade Puolukka, in stock in Helsinki"
finds products that have a Puolukka variant in stock in Helsinki. Several values
of one attribute are alternatives (OR); different attributes and availability
must all hold (AND).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum import ean as stdnum_ean

from saumaton.catalogue.models import Product, Variant
from saumaton.catalogue.schemas import ProductOut
from saumaton.catalogue.services import CategoryInfo, like_pattern, list_categories, load_products
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


@dataclass
class _Row:
    variant_id: int
    product_id: int
    attributes: dict[str, str]
    position: int
    product_name: str
    brand: str
    created_at: datetime
    variant_name: str
    sku: str


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
        .where(Variant.ean.in_(forms), Variant.active, Product.active)
        .order_by(Variant.id).limit(1))).first()
    return (row[0], row[1]) if row else None


# --- search ---------------------------------------------------------------------------------

def _text_conditions(words: Sequence[str], code_forms: Sequence[str]) -> list[Any]:
    """Every word somewhere in the product name, brand, variant name or SKU."""
    conds: list[Any] = []
    for word in words:
        like = like_pattern(word)
        conds.append(or_(
            func.lower(Product.name).like(like, escape="\\"),
            func.lower(Product.brand).like(like, escape="\\"),
            func.lower(Variant.name).like(like, escape="\\"),
            func.lower(Variant.sku).like(like, escape="\\"),
            Variant.ean == word,
        ))
    if code_forms and conds:
        return [or_(and_(*conds), Variant.ean.in_(code_forms))]
    return conds


def _str_attributes(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if v is not None and str(v) != ""}


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """'5 ml' < '30 ml' < '150 ml'; words compare case-insensitively (ä, ö after z)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


def _relevance(row: _Row, q: str, words: Sequence[str]) -> int:
    name = row.product_name.casefold()
    if name == q:
        return 0
    if name.startswith(q):
        return 1
    if all(w in name for w in words):
        return 2
    if all(w in name or w in row.brand.casefold() for w in words):
        return 3
    return 4  # the words are in a variant's name or code


async def search_products(
    session: AsyncSession, filters: SearchFilters, *, prices: PriceLookup | None = None,
) -> SearchResult:
    """A page of products for the filters, with facet counts for refining it.

    Raises NotFound (`category_not_found`) for an unknown category. The price sorts
    need `prices`."""
    tree = await category_tree(session)
    category = None
    conds: list[Any] = [Product.active, Variant.active]
    if filters.category is not None:
        category = tree.by_slug(filters.category)
        if category is None:
            raise NotFound(f"no category {filters.category!r}", code="category_not_found")
        conds.append(Product.category_id.in_(tree.descendants(category.id)))
    words = filters.words()
    conds.extend(_text_conditions(words, gtin_forms(filters.q)))
    candidates: Select[Any] = (
        select(Variant.id).join(Product, Product.id == Variant.product_id).where(*conds))

    rows = [
        _Row(vid, pid, _str_attributes(attrs), pos, pname, brand, created, vname, sku)
        for vid, pid, attrs, pos, pname, brand, created, vname, sku in (await session.execute(
            select(Variant.id, Variant.product_id, Variant.attributes, Variant.position,
                   Product.name, Product.brand, Product.created_at, Variant.name, Variant.sku)
            .join(Product, Product.id == Variant.product_id).where(*conds)
        )).all()
    ]
    locations = (await session.scalars(select(Location).order_by(Location.name, Location.id))
                 ).all()
    # Available = on hand less reserved, > 0; online = at a location that ships web
    # orders: the same rule as inventory.services.availability.
    in_stock: set[tuple[int, int]] = set()
    if rows:
        in_stock = {(vid, lid) for vid, lid in (await session.execute(
            select(StockLevel.variant_id, StockLevel.location_id).where(
                StockLevel.variant_id.in_(candidates),
                StockLevel.on_hand - StockLevel.reserved > 0))).all()}
    online_locs = {loc.id for loc in locations if loc.ships_web_orders}
    stores = [loc for loc in locations if loc.pickup_point or loc.sells_in_person]
    stock_places: dict[str, set[int]] = {ONLINE: online_locs,
                                         **{loc.code: {loc.id} for loc in stores}}
    stock_at = filters.stock if filters.stock in stock_places else None

    def available(row: _Row, code: str) -> bool:
        return any((row.variant_id, lid) in in_stock for lid in stock_places[code])

    # Facets: the attributes the candidates have; only chosen values of those count.
    keys: dict[str, set[str]] = {}
    for row in rows:
        for k, v in row.attributes.items():
            if k not in RESERVED_PARAMS:
                keys.setdefault(k, set()).add(v)
    chosen = {k: set(list(vs)[:MAX_FILTER_VALUES]) & keys[k]
              for k, vs in filters.attributes.items() if k in keys}
    chosen = {k: vs for k, vs in chosen.items() if vs}

    def matches(row: _Row, *, skip_attr: str | None = None, skip_stock: bool = False) -> bool:
        for k, vs in chosen.items():
            if k != skip_attr and row.attributes.get(k) not in vs:
                return False
        return skip_stock or stock_at is None or available(row, stock_at)

    facets = []
    for key in sorted(keys, key=natural_key):
        counts: dict[str, set[int]] = {v: set() for v in keys[key]}
        for row in rows:
            value = row.attributes.get(key)
            if value is not None and matches(row, skip_attr=key):
                counts[value].add(row.product_id)
        if len(keys[key]) > 1 or key in chosen:
            facets.append(Facet(key, [FacetValue(v, len(counts[v]), v in chosen.get(key, ()))
                                      for v in sorted(keys[key], key=natural_key)]))
    stock_options = []
    for code, name in [(ONLINE, ""), *((loc.code, loc.name) for loc in stores)]:
        having = {r.product_id for r in rows if matches(r, skip_stock=True)
                  and available(r, code)}
        stock_options.append(StockOption(code, name, len(having), code == stock_at))

    matching: dict[int, list[_Row]] = {}
    for row in rows:
        if matches(row):
            matching.setdefault(row.product_id, []).append(row)
    for product_rows in matching.values():
        product_rows.sort(key=lambda r: (r.position, r.variant_id))
    order = await _sorted(matching, filters, words, prices)

    total = len(order)
    size = max(1, filters.page_size)
    pages = max(1, -(-total // size))
    page_ids = order[(filters.page - 1) * size: filters.page * size]
    products = await load_products(session, page_ids)
    hits = [Hit(products[pid], tuple(r.variant_id for r in matching[pid])) for pid in page_ids]
    return SearchResult(hits, total, filters.page, pages, filters.effective_sort(), facets,
                        stock_options, category)


async def _sorted(matching: Mapping[int, list[_Row]], filters: SearchFilters,
                  words: Sequence[str], prices: PriceLookup | None) -> list[int]:
    sort = filters.effective_sort()
    first = {pid: rows[0] for pid, rows in matching.items()}

    def by_name(pid: int) -> tuple[Any, ...]:
        return (first[pid].product_name.casefold(), pid)

    def newest(pid: int) -> tuple[float, int]:
        return (-first[pid].created_at.timestamp(), -pid)

    ids = list(matching)
    if sort == "name":
        return sorted(ids, key=by_name)
    if sort == "newest":
        return sorted(ids, key=newest)
    if sort == "relevance":
        q = " ".join(words)
        score = {pid: min(_relevance(r, q, words) for r in rows)
                 for pid, rows in matching.items()}
        return sorted(ids, key=lambda pid: (score[pid], *by_name(pid)))
    if prices is None:
        raise ValueError("sorting by price needs a price lookup")
    found = await prices([r.variant_id for rows in matching.values() for r in rows])
    low = {pid: min((found[r.variant_id] for r in rows if r.variant_id in found), default=None)
           for pid, rows in matching.items()}
    priced = [pid for pid in ids if low[pid] is not None]
    unpriced = sorted((pid for pid in ids if low[pid] is None), key=by_name)
    sign = -1 if sort == "price_desc" else 1
    return sorted(priced, key=lambda pid: (sign * (low[pid] or 0), *by_name(pid))) + unpriced


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
    running = select(CampaignTarget.target_type, CampaignTarget.target_id).join(
        Campaign, Campaign.id == CampaignTarget.campaign_id).where(
        Campaign.active, Campaign.starts_at <= at,
        or_(Campaign.ends_at.is_(None), Campaign.ends_at > at)).subquery()
    targeted = exists().where(or_(
        and_(running.c.target_type == "product", running.c.target_id == Product.id),
        and_(running.c.target_type == "category", running.c.target_id == Product.category_id),
        and_(running.c.target_type == "variant", running.c.target_id.in_(
            select(Variant.id).where(Variant.product_id == Product.id, Variant.active))),
    ))
    ids = list((await session.scalars(
        select(Product.id).where(Product.active, targeted, exists().where(
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

