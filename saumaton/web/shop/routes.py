"""The webshop: product list, product page, live price and availability fragments."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from saumaton.catalogue import services as catalogue
from saumaton.catalogue.schemas import ProductOut, VariantOut
from saumaton.catalogue.services import list_categories
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound
from saumaton.core.types import MAX_ID
from saumaton.web.auth import db_of
from saumaton.web.pages import page_router, render
from saumaton.web.shop import views

router = page_router("/shop")
PAGE_SIZE = 24
Slug = Annotated[str, Query(max_length=160)]
VariantQ = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/")
async def product_list(
    request: Request,
    q: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=120)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    q = (q or "").strip() or None
    category = category or None
    async with db_of(request).reader() as s:
        products, total = await catalogue.list_products(
            s, q, category=category, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        cards = await views.product_cards(s, products, utcnow())
        categories = await list_categories(s)

    def page_url(n: int) -> str:
        params = [(k, v) for k, v in (("q", q), ("category", category)) if v]
        return "/shop/?" + urlencode([*params, ("page", str(n))])

    pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "shop/list.html", {
        "cards": cards, "total": total, "q": q or "", "category": category or "",
        "categories": categories, "page": page, "pages": pages,
        "prev_url": page_url(page - 1) if page > 1 else None,
        "next_url": page_url(page + 1) if page < pages else None,
    })


async def _product(request: Request, slug: str, variant: int | None, *, strict: bool
                   ) -> tuple[ProductOut, VariantOut]:
    async with db_of(request).reader() as s:
        try:
            product = await catalogue.get_product(s, slug)
        except NotFound:
            raise NotFound(f"no product {slug!r}", code="product_not_found") from None
    return product, views.choose_variant(product, variant, strict=strict)


@router.get("/p/{slug}")
async def product_page(request: Request, slug: str, variant: VariantQ = None) -> HTMLResponse:
    product, current = await _product(request, slug, variant, strict=False)
    async with db_of(request).reader() as s:
        prices = await views.web_prices(s, [current.id], utcnow())
        stock = await views.availability_view(s, current.id)
    base = f"/shop/p/{product.slug}"
    events = "/api/v1/events?" + urlencode([
        ("topic", "stock.changed"), ("topic", "price.changed"), ("topic", "campaign.changed"),
        ("variant_id", str(current.id))])
    return render(request, "shop/product.html", {
        "title": product.name, "product": product, "variant": current,
        "pickers": views.pickers(product, current), "price": prices[current.id],
        "stock": stock, "events_url": events,
        "availability_url": f"{base}/availability?variant={current.id}",
        "price_url": f"{base}/price?variant={current.id}",
    })


@router.get("/p/{slug}/availability")
async def availability_fragment(request: Request, slug: str,
                                variant: VariantQ = None) -> HTMLResponse:
    """The availability block alone: the product page re-fetches it on stock events."""
    _, current = await _product(request, slug, variant, strict=variant is not None)
    async with db_of(request).reader() as s:
        stock = await views.availability_view(s, current.id)
    response = render(request, "shop/_availability.html", {"stock": stock})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/p/{slug}/price")
async def price_fragment(request: Request, slug: str, variant: VariantQ = None) -> HTMLResponse:
    """The price block alone: re-fetched on price and campaign events."""
    _, current = await _product(request, slug, variant, strict=variant is not None)
    async with db_of(request).reader() as s:
        prices = await views.web_prices(s, [current.id], utcnow())
    response = render(request, "shop/_price.html", {"price": prices[current.id]})
    response.headers["Cache-Control"] = "no-store"
    return response
