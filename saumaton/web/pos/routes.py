"""The POS pages: store picker, the sale screen, cart updates, payment, receipt.

Every total on screen is `orders.quote.quote_order` (the same pricing as
`place_order`); paying is `orders.services.place_order` with the cart's
idempotency key, so a double-tapped "Pay" sells once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.catalogue.services import find_variant_by_code
from saumaton.checkout.services import pickup_orders, ready_pickup_count
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError, Forbidden, NotAuthenticated, NotFound
from saumaton.core.types import MAX_ID
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations, location_by_code, pos_channel_for
from saumaton.orders.quote import OrderQuote, quote_order
from saumaton.orders.schemas import OrderIn
from saumaton.orders.services import get_order, place_order
from saumaton.payments.services import PaymentIn
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_, parse_money
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    is_htmx,
    page_router,
    render,
    require_staff,
)
from saumaton.web.pos.cart import Cart

router = page_router("/pos")
Code = Annotated[str, Path(max_length=32)]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
_LINE_FIELD = re.compile(r"lines\.(\d+)(?:\..*)?")


@dataclass(frozen=True)
class Till:
    actor: Actor
    location: Location
    channel_code: str

    @property
    def base(self) -> str:
        return f"/pos/{self.location.code}"


async def open_till(request: Request, code: str, permission: str = "orders.create") -> Till:
    """The store's till for the logged-in staff member, if they may use it."""
    actor = await require_staff(request)
    async with db_of(request).reader() as s:
        location = await location_by_code(s, code)
        channel = await pos_channel_for(s, location.id)
    actor.require(permission, location.id)
    return Till(actor, location, channel.code)


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/")
async def pos_home(request: Request) -> Response:
    actor = await require_staff(request)
    async with db_of(request).reader() as s:
        stores = [loc for loc in await list_locations(s)
                  if loc.kind == "store" and loc.sells_in_person
                  and actor.can("orders.create", loc.id)]
    if not stores:
        raise Forbidden(f"{actor.name} may not sell in any store", code="forbidden")
    if len(stores) == 1:
        return RedirectResponse(f"/pos/{stores[0].code}", status_code=303)
    return _no_cache(render(request, "pos/picker.html", {
        "title": gettext(request, N_("Choose a store")), "stores": stores}))


# --- the sale screen --------------------------------------------------------------------

def _errors_for(request: Request, exc: DomainError, cart: Cart, **values: str
                ) -> dict[str, str]:
    """Put a domain error next to the field it is about."""
    message = error_message(request, exc, **values)
    name = exc.field or ""
    if name.endswith("tendered_cents"):
        return {"tendered": message}
    if name.startswith("payments"):
        return {"payment": message}
    m = _LINE_FIELD.fullmatch(name)
    if m and int(m[1]) < len(cart.lines):
        return {f"line-{cart.lines[int(m[1])][0]}": message}
    if name == "code":
        return {"code": message}
    return {"general": message}


async def _quote(request: Request, till: Till, cart: Cart
                 ) -> tuple[OrderQuote | None, dict[str, str]]:
    try:
        async with db_of(request).reader() as s:
            return await quote_order(s, till.channel_code, cart.line_ins(), utcnow()), {}
    except DomainError as exc:
        return None, _errors_for(request, exc, cart)


def _sale(request: Request, till: Till, cart: Cart, quote: OrderQuote | None,
          errors: dict[str, str] | None = None, *, status: int = 200,
          form: FormData | None = None, **extra: Any) -> Response:
    """The sale screen: the whole page, or for htmx just the #sale block."""
    context: dict[str, Any] = {
        "title": till.location.name, "till": till, "cart": cart, "quote": quote,
        "errors": errors or {}, "tendered": str(form.get("tendered") or "") if form else "",
        "scanned": None, "payment": None, "change_error": None, **extra,
    }
    template = "pos/_sale.html" if is_htmx(request) else "pos/sale.html"
    return _no_cache(render(request, template, context, status=status))


@router.get("/{code}/pickups")
async def pickups(request: Request, code: Code) -> Response:
    """Click & collect orders waiting at this store (handover comes with the till work)."""
    till = await open_till(request, code, "orders.read")
    if request.query_params.get("count") == "1":  # the header's badge
        async with db_of(request).reader() as s:
            n = await ready_pickup_count(s, till.location.id)
        return _no_cache(Response(str(n) if n else "", media_type="text/plain"))
    async with db_of(request).reader() as s:
        waiting = await pickup_orders(s, till.location.id)
    return _no_cache(render(request, "pos/pickups.html", {
        "title": gettext(request, N_("Click & collect")), "till": till, "waiting": waiting}))


@router.get("/{code}")
async def sale_screen(request: Request, code: Code) -> Response:
    till = await open_till(request, code)
    cart = Cart()
    quote, errors = await _quote(request, till, cart)
    return _sale(request, till, cart, quote, errors)


@router.post("/{code}/scan")
async def scan(request: Request, code: Code) -> Response:
    till = await open_till(request, code)
    form = await checked_form(request)
    cart = Cart.from_form(form)
    typed = str(form.get("code") or "").strip()[:64]
    if not typed:
        errors = {"code": gettext(request, N_("Scan or type a product code."))}
    else:
        try:
            async with db_of(request).reader() as s:
                variant = await find_variant_by_code(s, typed)
                trial = cart.copy()
                trial.add(variant.id)
                new_quote = await quote_order(s, till.channel_code, trial.line_ins(), utcnow())
            return _sale(request, till, trial, new_quote, scanned=variant.id)
        except DomainError as exc:
            errors = {"code": error_message(request, exc, code=typed)}
    quote, more = await _quote(request, till, cart)
    return _sale(request, till, cart, quote, {**more, **errors}, status=422,
                 typed_code=typed)


@router.post("/{code}/cart")
async def change_cart(request: Request, code: Code) -> Response:
    """Cart buttons: op = inc:<variant> | dec:<variant> | del:<variant> | clear."""
    till = await open_till(request, code)
    form = await checked_form(request)
    cart = Cart.from_form(form)
    op, _, arg = str(form.get("op") or "").partition(":")
    variant_id = int(arg) if arg.isascii() and arg.isdigit() else 0
    if op == "inc":
        cart.change(variant_id, +1)
    elif op == "dec":
        cart.change(variant_id, -1)
    elif op == "del":
        cart.remove(variant_id)
    elif op == "clear":
        cart = Cart()
    quote, errors = await _quote(request, till, cart)
    return _sale(request, till, cart, quote, errors, status=422 if errors else 200, form=form)


@router.post("/{code}/change")
async def cash_change(request: Request, code: Code) -> Response:
    """The change for the cash tendered so far (shown while the cashier types)."""
    till = await open_till(request, code)
    form = await checked_form(request)
    cart = Cart.from_form(form)
    quote, errors = await _quote(request, till, cart)
    payment = None
    if quote is not None and quote.lines:
        try:
            tendered = parse_money(str(form.get("tendered") or ""))
        except ValueError:
            errors["tendered"] = gettext(request, N_("Enter an amount such as 20,00."))
        else:
            if tendered is not None:
                try:
                    payment = quote.cash_payment(tendered)
                except DomainError as exc:
                    errors.update(_errors_for(request, exc, cart))
    change_error = next(iter(errors.values()), None)
    return _no_cache(render(request, "pos/_change.html", {
        "payment": payment, "change_error": change_error}))


@router.post("/{code}/pay")
async def pay(request: Request, code: Code) -> Response:
    till = await open_till(request, code)
    form = await checked_form(request)
    cart = Cart.from_form(form)
    method = form.get("method")
    errors: dict[str, str] = {}
    tendered: int | None = None
    if not cart.lines:
        errors["general"] = gettext(request, N_("The cart is empty. Scan a product first."))
    if method not in ("cash", "card"):
        errors["payment"] = gettext(request, N_("Choose cash or card."))
    elif method == "cash":
        try:
            tendered = parse_money(str(form.get("tendered") or ""))
        except ValueError:
            errors["tendered"] = gettext(request, N_("Enter an amount such as 20,00."))
    if not errors:
        cmd = OrderIn(channel=till.channel_code, lines=cart.line_ins(), payments=[PaymentIn(
            method="cash" if method == "cash" else "card", tendered_cents=tendered,
            terminal_confirmed=method == "card")])
        try:
            order, _ = await place_order(db_of(request), till.actor, cmd,
                                         f"pos:{till.location.code}:{cart.key}")
        except (Forbidden, NotAuthenticated):
            raise
        except DomainError as exc:
            errors = _errors_for(request, exc, cart)
        else:
            url = f"{till.base}/receipt/{order.id}"
            if not is_htmx(request):
                return RedirectResponse(url, status_code=303)
            return _no_cache(render(request, "pos/_receipt_panel.html", {
                "till": till, "order": order, "just_paid": True},
                headers={"HX-Push-Url": url}))
    quote, more = await _quote(request, till, cart)
    return _sale(request, till, cart, quote, {**more, **errors}, status=422, form=form,
                 method=method)


@router.get("/{code}/receipt/{order_id}")
async def receipt(request: Request, code: Code, order_id: OrderId) -> Response:
    till = await open_till(request, code, "orders.read")
    async with db_of(request).reader() as s:
        order = await get_order(s, order_id)
    if order.location_id != till.location.id:
        raise NotFound(f"no order {order_id} at {code}", code="order_not_found")
    return _no_cache(render(request, "pos/receipt.html", {
        "title": gettext(request, N_("Receipt %(number)s"), number=order.number),
        "till": till, "order": order, "just_paid": False}))
