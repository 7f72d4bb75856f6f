"""The webshop: home, category and search pages, the product page, and its live
price and availability fragments."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.cached import product_by_slug
from saumaton.catalogue.schemas import ProductOut, VariantOut
from saumaton.catalogue.search import (
    SearchFilters,
    category_tree,
    newest_products,
    parse_attribute_params,
    product_for_code,
    search_products,
)
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError, NotFound
from saumaton.core.types import MAX_ID
from saumaton.customers.segments import buyer_segments
from saumaton.db.uow import Database
from saumaton.giftcards import services as giftcards
from saumaton.i18n import localized
from saumaton.loyalty.tiers import tier_of
from saumaton.web.analytics import track
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_lang, page_router, render, settings_of
from saumaton.web.route_access import public
from saumaton.web.shop import views
from saumaton.web.shopper import current_customer_id

router = page_router("/shop", dependencies=[public(
    "the webshop's catalogue: anyone may browse it")])
PAGE_SIZE = 24
HOME_CARDS = 8
VariantQ = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# No length limit on the search words here: a longer search is shortened with a note
# on the page (MAX_QUERY), not refused as a broken link.
TextQ = Annotated[str | None, Query()]
MAX_QUERY = 100
CategoryQ = Annotated[str | None, Query(max_length=120)]
SortQ = Annotated[str | None, Query(max_length=20)]
StockQ = Annotated[str | None, Query(max_length=40)]
PageQ = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/")
async def home(request: Request, q: TextQ = None, category: CategoryQ = None,
               sort: SortQ = None, stock: StockQ = None, page: PageQ = 1) -> Response:
    if (q or "").strip() or category:
        # The old product list's URL (/shop/?q=…&category=…): the search page.
        return await _listing(request, "/shop/search", q=q, category=category, sort=sort,
                              stock=stock, page=page)
    now = utcnow()
    db = db_of(request)
    async with db.reader() as s:
        tier = await tier_of(s, current_customer_id(request), now,  # member prices
                             settings=settings_of(request))
        tree = await category_tree(s)
        offers = await views.campaign_cards(s, now, HOME_CARDS, tier, db=db)
        newest = await views.product_cards(s, await newest_products(s, HOME_CARDS), now,
                                           tier=tier, db=db)
    return render(request, "shop/home.html", {"tree": tree, "offers": offers,
                                              "newest": newest})


@router.get("/search")
async def search_page(request: Request, q: TextQ = None, category: CategoryQ = None,
                      sort: SortQ = None, stock: StockQ = None, page: PageQ = 1) -> Response:
    return await _listing(request, "/shop/search", q=q, category=category, sort=sort,
                          stock=stock, page=page)


@router.get("/c/{slug}")
async def category_page(request: Request, slug: Annotated[str, Path(max_length=120)],
                        sort: SortQ = None, stock: StockQ = None, page: PageQ = 1) -> Response:
    return await _listing(request, f"/shop/c/{slug}", category=slug, sort=sort, stock=stock,
                          page=page, category_page=True)


async def _listing(request: Request, base: str, *, q: str | None = None,
                   category: str | None = None, sort: str | None, stock: str | None,
                   page: int, category_page: bool = False) -> Response:
    """A category page or search results: the same filters, facets, sort and pages."""
    text = (q or "").strip()
    shortened = len(text) > MAX_QUERY
    if shortened:
        text = text[:MAX_QUERY].strip()
    filters = SearchFilters(
        q=text, category=category or None,
        attributes=parse_attribute_params(request.query_params.multi_items()),
        stock=stock or None, sort=sort or "", page=page, page_size=PAGE_SIZE)
    now = utcnow()
    db = db_of(request)
    async with db.reader() as s:
        if text and not category_page and page == 1:
            found = await product_for_code(s, text)
            if found:  # a scanned or typed barcode opens the product
                slug, variant_id = found
                return RedirectResponse(f"/shop/p/{slug}?variant={variant_id}", status_code=303)
        tier = await tier_of(s, current_customer_id(request), now,  # member prices
                             settings=settings_of(request))
        try:
            result = await search_products(s, filters,
                                           prices=views.price_lookup(s, now, tier))
        except NotFound:
            if category_page:
                raise NotFound(f"no category {category!r}", code="not_found") from None
            result = views.empty_result(filters)  # an old link's category: nothing matches
        cards = await views.product_cards(
            s, [h.product for h in result.hits], now,
            matching={h.product.id: h.variant_ids for h in result.hits}, tier=tier, db=db)
        tree = await category_tree(s) if result.category else None
    links = views.listing_links(base, result, filters, with_category=not category_page)
    current = result.category
    if category_page and current:
        title = localized(current, "name", page_lang(request))
    elif text:
        title = gettext(request, N_("Search: %(q)s"), q=text)
    else:
        title = gettext(request, N_("Products"))
    return render(request, "shop/list.html", {
        "title": title, "result": result, "cards": cards, "q": text, "shortened": shortened,
        "max_query": MAX_QUERY,
        "category": current, "category_page": category_page,
        "crumbs": tree.path(current) if tree and current else [],
        "subcategories": tree.children(current.id) if tree and current else [],
        "links": links, "active": views.active_filters(result, links), "base": base,
        "category_param": (category or "") if not category_page else "",
        "prev_url": links.page(result.page - 1) if result.page > 1 else None,
        "next_url": links.page(result.page + 1) if result.page < result.pages else None,
    })


async def _product(db: Database, s: AsyncSession, slug: str, variant: int | None, *,
                   strict: bool) -> tuple[ProductOut, VariantOut]:
    """The product (from this process's cache: `catalogue.cached`) and its variant."""
    try:
        product = await product_by_slug(db, s, slug)
    except NotFound:
        raise NotFound(f"no product {slug!r}", code="product_not_found") from None
    return product, views.choose_variant(product, variant, strict=strict)


async def _price_context(request: Request, db: Database, s: AsyncSession,
                         product: ProductOut, variant_id: int) -> dict[str, Any]:
    """The price block's context: a signed-in member sees their member price; anyone
    else sees what members pay when that is lower (with the way to join)."""
    now = utcnow()
    customer_id = current_customer_id(request)
    # A guest has no tier (and costs no query).
    tier = await tier_of(s, customer_id, now, settings=settings_of(request))
    segments = await buyer_segments(s, customer_id, now, settings=settings_of(request))
    price, teaser = await views.product_prices(db, s, product, variant_id, now, tier,
                                               segments)
    return {"price": price, "teaser": teaser, "signed_in": customer_id is not None,
            "back_url": f"/shop/p/{product.slug}?variant={variant_id}"}


@router.get("/p/{slug}")
async def product_page(request: Request, slug: str, variant: VariantQ = None) -> HTMLResponse:
    db = db_of(request)
    async with db.reader() as s:  # one session; product, prices and VAT from the caches
        product, current = await _product(db, s, slug, variant, strict=False)
        price_ctx = await _price_context(request, db, s, product, current.id)
        stock = await views.product_availability(db, s, product, current.id)
    track(request, "product_view", variant_id=current.id)
    base = f"/shop/p/{product.slug}"
    events = "/api/v1/events?" + urlencode([
        ("topic", "stock.changed"), ("topic", "price.changed"), ("topic", "campaign.changed"),
        ("topic", "product.updated"), ("variant_id", str(current.id)),
        ("product_id", str(product.id))])
    lang = page_lang(request)
    return render(request, "shop/product.html", {
        "title": localized(product, "name", lang), "product": product,
        "variant": current,
        "pickers": views.pickers(product, current, lang), **price_ctx, "stock": stock,
        "events_url": events, "gallery": views.gallery(product, current),
        "availability_url": f"{base}/availability?variant={current.id}",
        "price_url": f"{base}/price?variant={current.id}",
    })


@router.get("/p/{slug}/availability")
async def availability_fragment(request: Request, slug: str,
                                variant: VariantQ = None) -> HTMLResponse:
    """The availability block alone: the product page re-fetches it on stock events."""
    db = db_of(request)
    async with db.reader() as s:
        product, current = await _product(db, s, slug, variant, strict=variant is not None)
        stock = await views.product_availability(db, s, product, current.id)
    response = render(request, "shop/_availability.html", {"stock": stock})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/p/{slug}/price")
async def price_fragment(request: Request, slug: str, variant: VariantQ = None) -> HTMLResponse:
    """The price block alone: re-fetched on price and campaign events."""
    db = db_of(request)
    async with db.reader() as s:
        product, current = await _product(db, s, slug, variant, strict=variant is not None)
        price_ctx = await _price_context(request, db, s, product, current.id)
    response = render(request, "shop/_price.html", price_ctx)
    response.headers["Cache-Control"] = "no-store"
    return response


GIFT_CARD_MESSAGES = {
    "invalid_gift_card_code": N_("A gift card code has 16 digits. Check the code."),
    "gift_card_not_found": N_("No gift card has this code. Check the digits."),
}


@router.get("/gift-card")
async def gift_card_balance(request: Request,
                            code: Annotated[str | None, Query(max_length=40)] = None
                            ) -> HTMLResponse:
    """The holder types the code and sees the balance and the expiry (no history: the
    code is all anyone needs, and it cannot be guessed)."""
    card, error = None, ""
    if code and code.strip():
        async with db_of(request).reader() as s:
            try:
                card = await giftcards.balance_of(s, code)
            except DomainError as exc:
                error = gettext(request, GIFT_CARD_MESSAGES.get(exc.code, exc.detail))
    return render(request, "shop/gift_card.html", {
        "title": gettext(request, N_("Check a gift card's balance")), "card": card,
        "code": (code or "").strip(), "error": error}, status=422 if error else 200)
