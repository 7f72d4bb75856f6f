"""The webshop cart: kept in the database, found by a cookie token.

A browser gets a cart on its first add; a signed-in shopper's cart also carries
their customer id, so signing in on another device finds it, and an anonymous
cart merges into it on sign-in. The cart stores only variants and quantities:
prices, totals and stock are read from the core every time it is shown, so what
the cart says is what the order will cost.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, ProductImage, Variant
from saumaton.catalogue.services import VariantInfo, display_name, load_variant_infos
from saumaton.checkout.cart_pg import add_pg, load_cart_pg
from saumaton.checkout.models import Cart, CartLine
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import OutOfStock, ValidationFailed
from saumaton.customers.segments import buyer_segments
from saumaton.db.session_cache import database_of
from saumaton.db.uow import Database, UnitOfWork, session_connection
from saumaton.inventory.services import Availability, availability
from saumaton.locations.reference import channel_id_of, locations
from saumaton.loyalty.tiers import tier_of
from saumaton.orders.quote import OrderQuote, QuotedLine, price_lines
from saumaton.orders.services import business_day
from saumaton.pricing.book import book_prices
from saumaton.pricing.bundles import load_bundles, load_bundles_pg
from saumaton.pricing.services import resolve_prices

WEB_CHANNEL = "web"
MAX_LINES = 50
MAX_QUANTITY = 99  # per line: a webshop, not a wholesale order


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _usable(token: str | None) -> str | None:
    """The cookie's token if it could name a cart."""
    return token if token and len(token) <= 64 else None


async def find_cart(s: AsyncSession, token: str | None, customer_id: int | None
                    ) -> Cart | None:
    """The cart behind this cookie, if it belongs to this shopper. A customer's cart
    is never shown to a browser signed in as someone else or signed out."""
    token = _usable(token)
    if token is None:
        return None
    cart = await s.scalar(select(Cart).where(Cart.token == token))
    if cart is None or (cart.customer_id is not None and cart.customer_id != customer_id):
        return None
    return cart


async def _cart_for_write(uow: UnitOfWork, token: str | None, customer_id: int | None
                          ) -> Cart:
    cart = await find_cart(uow.session, token, customer_id)
    if cart is None and customer_id is not None:
        cart = await _customer_cart(uow.session, customer_id)
    if cart is None:
        now = utcnow()
        cart = Cart(token=new_token(), customer_id=customer_id, created_at=now, updated_at=now)
        uow.session.add(cart)
        await uow.session.flush()
    return cart


async def _customer_cart(s: AsyncSession, customer_id: int) -> Cart | None:
    return await s.scalar(select(Cart).where(Cart.customer_id == customer_id)
                          .order_by(Cart.updated_at.desc(), Cart.id.desc()).limit(1))


@dataclass(frozen=True)
class CartChange:
    token: str  # the cart's token (a new cart gets one): the caller sets the cookie
    variant_id: int
    quantity: int  # now in the cart
    requested: int
    limit: int  # what could be bought

    @property
    def limited(self) -> bool:
        return self.quantity < self.requested


async def _line_limit(s: AsyncSession, variant_id: int) -> int:
    active = await s.scalar(
        select(Variant.active & Product.active).join(Product, Product.id == Variant.product_id)
        .where(Variant.id == variant_id))
    if active is None:
        raise ValidationFailed("no such product", code="unknown_variant", field="variant_id")
    if not active:
        raise ValidationFailed("this product is not for sale", code="variant_inactive",
                               field="variant_id")
    return min(MAX_QUANTITY, (await availability(s, [variant_id]))[variant_id].one_order_max)


def _insert_for(uow: UnitOfWork) -> Any:
    return postgresql.insert if uow.db.is_postgres else sqlite.insert


async def _set_line(uow: UnitOfWork, cart: Cart, variant_id: int, quantity: int,
                    source: str = "") -> None:
    """Set the line's quantity; a new line takes `source`, an existing one keeps its."""
    s = uow.session
    now = utcnow()
    if quantity <= 0:
        await s.execute(delete(CartLine).where(CartLine.cart_id == cart.id,
                                               CartLine.variant_id == variant_id))
    else:
        ins = _insert_for(uow)(CartLine).values(cart_id=cart.id, variant_id=variant_id,
                                                quantity=quantity, added_at=now,
                                                source=source)
        await s.execute(ins.on_conflict_do_update(
            index_elements=["cart_id", "variant_id"], set_={"quantity": quantity}))
    await s.execute(update(Cart).where(Cart.id == cart.id).values(updated_at=now)
                    .execution_options(synchronize_session=False))


async def _line_count(s: AsyncSession, cart_id: int) -> int:
    return int(await s.scalar(select(func.count()).select_from(CartLine)
                              .where(CartLine.cart_id == cart_id)) or 0)


async def _quantity_in(s: AsyncSession, cart_id: int, variant_id: int) -> int:
    return int(await s.scalar(select(CartLine.quantity).where(
        CartLine.cart_id == cart_id, CartLine.variant_id == variant_id)) or 0)


SOURCES = ("", "upsell")


async def add_to_cart(uow: UnitOfWork, token: str | None, customer_id: int | None,
                      variant_id: int, quantity: int, source: str = "") -> CartChange:
    """Add units, up to what can be sold. Nothing at all available: out_of_stock.
    `source` 'upsell': taken from the suggestions (a new line keeps it to the order)."""
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(f"quantity must be 1–{MAX_QUANTITY}", code="invalid_quantity",
                               field="quantity")
    if source not in SOURCES:
        raise ValidationFailed("unknown source", code="invalid_source", field="source")
    if uow.db.is_postgres:  # the same rules as below, in one statement
        added = await add_pg(uow, _usable(token), customer_id, variant_id, quantity,
                             new_token(), utcnow(), MAX_QUANTITY, MAX_LINES, source)
        return CartChange(added.token, variant_id, added.quantity, added.have + quantity,
                          added.limit)
    limit = await _line_limit(uow.session, variant_id)
    cart = await _cart_for_write(uow, token, customer_id)
    have = await _quantity_in(uow.session, cart.id, variant_id)
    if limit <= 0:
        raise OutOfStock("this product is sold out", code="out_of_stock",
                         field="quantity", extra={"variant_id": variant_id})
    if have == 0 and await _line_count(uow.session, cart.id) >= MAX_LINES:
        raise ValidationFailed(f"a cart holds at most {MAX_LINES} different products",
                               code="cart_full", field="variant_id")
    new = min(have + quantity, limit)
    await _set_line(uow, cart, variant_id, new, source)
    return CartChange(cart.token, variant_id, new, have + quantity, limit)


async def set_quantity(uow: UnitOfWork, token: str | None, customer_id: int | None,
                       variant_id: int, quantity: int) -> CartChange:
    """Set a line's quantity (0 removes it), capped at what can be sold."""
    if not 0 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(f"quantity must be 0–{MAX_QUANTITY}", code="invalid_quantity",
                               field="quantity")
    cart = await _cart_for_write(uow, token, customer_id)
    limit = 0 if quantity == 0 else await _line_limit(uow.session, variant_id)
    new = min(quantity, limit)
    await _set_line(uow, cart, variant_id, new)
    return CartChange(cart.token, variant_id, new, quantity, limit)


async def remove_ordered(uow: UnitOfWork, token: str | None, customer_id: int | None,
                         order_id: int) -> None:
    """Take an order's items out of the browser's cart (what was added after the
    checkout stays)."""
    from saumaton.orders.models import OrderLine

    cart = await find_cart(uow.session, token, customer_id)
    if cart is None:
        return
    bought: dict[int, int] = {}
    for v, q in (await uow.session.execute(select(OrderLine.variant_id, OrderLine.quantity)
                                           .where(OrderLine.order_id == order_id))).all():
        bought[int(v)] = bought.get(int(v), 0) + int(q)
    for variant_id, qty in sorted(bought.items()):
        have = await _quantity_in(uow.session, cart.id, variant_id)
        if have:
            await _set_line(uow, cart, variant_id, max(0, have - qty))


async def merge_on_sign_in(uow: UnitOfWork, anon_token: str | None, customer_id: int) -> str:
    """On sign-in the browser's anonymous cart joins the customer's saved cart
    (quantities add up, capped at what can be sold). Returns the token the browser
    should keep."""
    s = uow.session
    anon = await find_cart(s, anon_token, None)
    if anon is not None and anon.customer_id == customer_id:
        return anon.token
    mine = await _customer_cart(s, customer_id)
    if anon is None or anon.customer_id is not None:
        if mine is None:
            mine = await _cart_for_write(uow, None, customer_id)
        return mine.token
    if mine is None:
        # The anonymous cart becomes the customer's.
        await s.execute(update(Cart).where(Cart.id == anon.id)
                        .values(customer_id=customer_id, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
        return anon.token
    anon_lines = (await s.scalars(select(CartLine).where(CartLine.cart_id == anon.id))).all()
    theirs = {ln.variant_id: ln.quantity for ln in anon_lines}
    their_sources = {ln.variant_id: ln.source for ln in anon_lines}  # an upsell stays one
    ours = {ln.variant_id: ln.quantity for ln in (await s.scalars(
        select(CartLine).where(CartLine.cart_id == mine.id))).all()}
    for variant_id, qty in sorted(theirs.items()):
        try:
            limit = await _line_limit(s, variant_id)
        except ValidationFailed:
            continue  # no longer for sale: dropped
        await _set_line(uow, mine, variant_id, min(ours.get(variant_id, 0) + qty, limit),
                        their_sources.get(variant_id, ""))
    await s.execute(delete(Cart).where(Cart.id == anon.id))
    return mine.token


async def cart_lines(s: AsyncSession, token: str | None, customer_id: int | None
                     ) -> list[tuple[int, int]]:
    """(variant_id, quantity) of the cart, in the order added; no prices (cheap)."""
    cart = await find_cart(s, token, customer_id)
    if cart is None:
        return []
    rows = (await s.execute(
        select(CartLine.variant_id, CartLine.quantity)
        .where(CartLine.cart_id == cart.id).order_by(CartLine.added_at, CartLine.variant_id)
    )).all()
    return [(int(v), int(q)) for v, q in rows]


async def sourced_cart_lines(s: AsyncSession, token: str | None, customer_id: int | None
                             ) -> list[tuple[int, int, str]]:
    """(variant_id, quantity, source) of the cart, in the order added."""
    cart = await find_cart(s, token, customer_id)
    if cart is None:
        return []
    rows = (await s.execute(
        select(CartLine.variant_id, CartLine.quantity, CartLine.source)
        .where(CartLine.cart_id == cart.id).order_by(CartLine.added_at, CartLine.variant_id)
    )).all()
    return [(int(v), int(q), str(src or "")) for v, q, src in rows]


# `sourced_cart_lines` in one prepared statement: the cart's owner checked as
# `find_cart` does.
_PG_LINES_SQL = """
SELECT l.variant_id, l.quantity, l.source FROM carts c JOIN cart_lines l ON l.cart_id = c.id
WHERE c.token = $1 AND (c.customer_id IS NULL OR c.customer_id = $2::bigint)
ORDER BY l.added_at, l.variant_id"""


async def cart_lines_in(uow: UnitOfWork, token: str | None, customer_id: int | None
                        ) -> list[tuple[int, int, str]]:
    """`sourced_cart_lines` inside `uow`: on PostgreSQL one prepared statement (the
    checkout's hot path) instead of two through the ORM."""
    if not uow.db.is_postgres:
        return await sourced_cart_lines(uow.session, token, customer_id)
    token = _usable(token)
    if token is None:
        return []
    return [(int(r[0]), int(r[1]), str(r[2] or ""))
            for r in await uow.fetch(_PG_LINES_SQL, token, customer_id)]


async def cart_count(s: AsyncSession, token: str | None, customer_id: int | None) -> int:
    cart = await find_cart(s, token, customer_id)
    if cart is None:
        return 0
    return int(await s.scalar(select(func.coalesce(func.sum(CartLine.quantity), 0))
                              .where(CartLine.cart_id == cart.id)) or 0)


# --- what the cart shows -------------------------------------------------------------

@dataclass(frozen=True)
class CartLineView:
    priced: QuotedLine
    product_slug: str
    image_url: str | None
    wanted: int  # what the shopper put in the cart
    sellable: int  # what can be bought now
    online: int
    name_en: str = ""  # the English name when the product or variant has one

    @property
    def name(self) -> str:
        return self.priced.name

    @property
    def short(self) -> bool:
        """Less is available than the shopper wants."""
        return self.sellable < self.wanted

    @property
    def sold_out(self) -> bool:
        return self.sellable <= 0


@dataclass(frozen=True)
class CartView:
    cart_id: int | None
    token: str | None
    lines: list[CartLineView]
    quote: OrderQuote
    dropped: int  # lines no longer for sale (removed from the view)
    stock: Mapping[int, Availability] = field(default_factory=dict)  # per variant

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def count(self) -> int:
        return sum(ln.wanted for ln in self.lines)

    @property
    def has_problems(self) -> bool:
        return any(ln.short for ln in self.lines)


async def view_cart(s: AsyncSession, token: str | None, customer_id: int | None,
                    at: datetime, *, settings: Settings | None = None) -> CartView:
    db = database_of(s)
    if db is not None and db.is_postgres:
        return await _view_cart_pg(db, s, token, customer_id, at, settings)
    cart = await find_cart(s, token, customer_id)
    if cart is None:
        return _empty_view()
    rows = (await s.execute(
        select(CartLine.variant_id, CartLine.quantity)
        .where(CartLine.cart_id == cart.id).order_by(CartLine.added_at, CartLine.variant_id)
    )).all()
    return await price_cart(s, cart.id, cart.token, [(int(v), int(q)) for v, q in rows], at,
                            customer_id=customer_id, settings=settings)


def _empty_view() -> CartView:
    empty = OrderQuote(channel=WEB_CHANNEL, lines=(), subtotal_cents=0, discount_cents=0,
                       total_cents=0, vat_cents=0)
    return CartView(None, None, [], empty, 0)


async def _view_cart_pg(db: Database, s: AsyncSession, token: str | None,
                        customer_id: int | None, at: datetime, settings: Settings | None
                        ) -> CartView:
    """view_cart on PostgreSQL: the cart, its variants and their stock in one statement
    (cart_pg), its bundles with the price function's prepared statement, both on the
    session's own connection (the read session runs outside a transaction), its unit
    campaigns from the process's campaign book; the locations and the channel from the
    process cache. The session also loads what is not cached (and a member's tier)."""
    token = _usable(token)
    if token is None:
        return _empty_view()
    channel = await channel_id_of(s, WEB_CHANNEL)
    tier = await tier_of(s, customer_id, at, settings=settings)
    segments = await buyer_segments(s, customer_id, at, settings=settings)
    places = await locations(db, s)
    conn = await session_connection(s)  # one connection per request, never a second
    rows = await load_cart_pg(conn, token, customer_id, business_day(at), places)
    if rows is None:
        return _empty_view()
    keep = [(v, q) for v, q in rows.wanted if v in rows.infos and rows.infos[v].active]
    distinct = list({v: rows.infos[v] for v, _ in keep}.values())
    quotes = await book_prices(db, s, distinct, channel, at, tier, segments)
    bundles = await load_bundles_pg(conn, distinct, channel, at, tier)
    quote = price_lines(WEB_CHANNEL, [rows.infos[v] for v, _ in keep], [q for _, q in keep],
                        quotes, bundles)
    return _cart_view(rows.cart_id, rows.token, len(rows.wanted) - len(keep), quote,
                      rows.stock, rows.slugs, rows.names_en, rows.images)


async def _price(s: AsyncSession, infos: Mapping[int, VariantInfo],
                 keep: Sequence[tuple[int, int]], at: datetime, customer_id: int | None,
                 settings: Settings | None) -> OrderQuote:
    """The web price of the lines `keep` (for sale), with the signed-in shopper's
    member prices and the bundles: one call of the price function for all."""
    channel = await channel_id_of(s, WEB_CHANNEL)
    tier = await tier_of(s, customer_id, at, settings=settings)
    segments = await buyer_segments(s, customer_id, at, settings=settings)
    distinct = list({v: infos[v] for v, _ in keep}.values())
    quotes = await resolve_prices(s, distinct, channel, at, tier, segments)
    return price_lines(WEB_CHANNEL, [infos[v] for v, _ in keep], [q for _, q in keep], quotes,
                       await load_bundles(s, distinct, channel, at, tier))


def _cart_view(cart_id: int | None, token: str | None, dropped: int, quote: OrderQuote,
               stock: Mapping[int, Availability], slugs: Mapping[int, str],
               names_en: Mapping[int, str], images: Mapping[int, str]) -> CartView:
    lines = [CartLineView(priced=ln, product_slug=str(slugs.get(ln.variant_id, "")),
                          image_url=images.get(ln.variant_id), wanted=ln.quantity,
                          sellable=stock[ln.variant_id].one_order_max,
                          online=stock[ln.variant_id].online,
                          name_en=names_en.get(ln.variant_id, ""))
             for ln in quote.lines]
    return CartView(cart_id, token, lines, quote, dropped, stock)


async def price_cart(s: AsyncSession, cart_id: int | None, token: str | None,
                     wanted: Sequence[tuple[int, int]], at: datetime, *,
                     customer_id: int | None = None, settings: Settings | None = None
                     ) -> CartView:
    """Price (variant_id, quantity) pairs for the web with the one price function, with
    the signed-in shopper's (`customer_id`) member prices."""
    ids = [v for v, _ in wanted]
    infos = {i.id: i for i in await load_variant_infos(s, business_day(at), ids=ids)}
    slugs: dict[int, str] = {}
    names_en: dict[int, str] = {}
    if ids:
        for vid, slug, p_name, p_en, v_name, v_en in (await s.execute(
                select(Variant.id, Product.slug, Product.name, Product.name_en, Variant.name,
                       Variant.name_en)
                .join(Product, Product.id == Variant.product_id)
                .where(Variant.id.in_(ids)))).all():
            slugs[vid] = slug
            if p_en or v_en:
                names_en[vid] = display_name(p_en or p_name, v_en or v_name)
    keep = [(v, q) for v, q in wanted if v in infos and infos[v].active]
    quote = await _price(s, infos, keep, at, customer_id, settings)
    stock = await availability(s, [v for v, _ in keep])
    images: dict[int, str] = {}
    if keep:
        # The variant's own picture first, else the product's first.
        rows = (await s.execute(
            select(Variant.id, ProductImage.url, ProductImage.variant_id)
            .join(ProductImage, ProductImage.product_id == Variant.product_id)
            .where(Variant.id.in_([v for v, _ in keep]))
            .order_by(ProductImage.position, ProductImage.id))).all()
        for vid, url, img_variant in rows:
            if img_variant == vid or (vid not in images and img_variant is None):
                images[vid] = url
    return _cart_view(cart_id, token, len(wanted) - len(keep), quote, stock, slugs, names_en,
                      images)
