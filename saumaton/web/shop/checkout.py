"""Cart, checkout, Paytrail return and callback, order status: the webshop's buying
pages. Each route reads the request, calls a `saumaton.checkout` service and
renders what it returns."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from saumaton.checkout import cart as carts
from saumaton.checkout.pickup import pickup_code_for
from saumaton.checkout.placing import Placed, place_checkout
from saumaton.checkout.services import (
    AddressIn,
    CheckoutIn,
    DeliveryOption,
    InvalidSignature,
    PaymentOutcome,
    checkout_problems,
    delivery_options,
    gift_card_part,
    order_by_token,
    order_review,
    parse_return,
    points_offer,
    record_payment_status,
    start_payment,
    start_payment_in,
    status_path,
)
from saumaton.checkout.status_page import StatusView, record_return, status_view
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.core.types import MAX_INT32
from saumaton.customers.accounts import account_profile
from saumaton.giftcards import services as giftcards
from saumaton.orders.schemas import LineIn, OrderOut
from saumaton.orders.suggestions import Suggestion, cached_suggestions
from saumaton.payments.paytrail.client import PaytrailClient
from saumaton.payments.paytrail.payload import gift_card_paid_cents, points_paid_cents
from saumaton.payments.paytrail_refunds import (
    InvalidRefundNotice,
    record_refund_callback,
    send_due_refunds,
)
from saumaton.web.analytics import track
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    is_htmx,
    page_lang,
    page_router,
    render,
    settings_of,
)
from saumaton.web.route_access import public
from saumaton.web.shopper import current_customer_id

log = logging.getLogger(__name__)
router = page_router("/shop")
OWN_CART = public("the shopper's own cart, named by their cookie; writes CSRF-checked")

CART_COOKIE = "saumaton_cart"
CART_COOKIE_AGE = 60 * 24 * 3600

# Messages for the codes this flow raises (the service's English detail is the fallback).
MESSAGES = {
    "out_of_stock": N_("Sorry, this is sold out."),
    "not_in_store": N_("%(name)s is not available at that store. Choose another store or "
                       "home delivery."),
    "invalid_quantity": N_("Choose a quantity between 1 and 99."),
    "cart_full": N_("Your cart is full."),
    "invalid_email": N_("Check the e-mail address."),
    "invalid_phone": N_("Check the phone number."),
    "phone_required": N_("Enter your phone number: click & collect needs it, so the store can "
                         "reach you about the order."),
    "address_required": N_("Fill in the delivery address."),
    "invalid_postcode": N_("A postcode has five digits."),
    "pickup_store_required": N_("Choose the store where you collect the order."),
    "not_a_pickup_point": N_("Orders cannot be collected at that store."),
    "checkout_expired": N_("The time to pay this order ran out. Please order again."),
    "order_paid": N_("This order is already paid."),
    "order_cancelled": N_("This order was cancelled."),
    "invalid_signature": N_("The payment result could not be verified. Nothing was changed."),
    "payment_mismatch": N_("The payment result could not be verified. Nothing was changed."),
    "paytrail_unreachable": N_("The payment service cannot be reached. Try again shortly."),
    "not_enough_points": N_("You have only %(balance)s points now. Choose fewer points."),
    "points_exceed_total": N_("That is more points than the order costs."),
    "points_leave_too_little": N_("Pay the whole order with points, or leave at least "
                                  "1,00 € to pay."),
    "points_need_account": N_("Sign in to use your points."),
    "invalid_points": N_("Give the points as a whole number."),
    "invalid_gift_card_code": N_("A gift card code has 16 digits. Check the code."),
    "gift_card_not_found": N_("No gift card has this code. Check the digits."),
    "gift_card_expired": N_("This gift card has expired."),
    "gift_card_void": N_("This card is no longer valid."),
    "insufficient_gift_card_balance": N_("This card has nothing left to spend."),
}


def _msg(request: Request, exc: DomainError) -> str:
    m = MESSAGES.get(exc.code)
    if m is None:
        return error_message(request, exc)
    if "%(" not in m:
        return gettext(request, m)
    try:
        return gettext(request, m, **{k: str(v) for k, v in exc.extra.items()})
    except (KeyError, ValueError):
        return exc.detail


def cart_token(request: Request) -> str | None:
    return request.cookies.get(CART_COOKIE)


def keep_cart_cookie(response: Response, token: str) -> None:
    response.set_cookie(CART_COOKIE, token, max_age=CART_COOKIE_AGE, httponly=True,
                        samesite="lax")


def _int(form: FormData, name: str, default: int | None = None) -> int:
    raw = form.get(name)
    try:
        value = int(str(raw)) if raw not in (None, "") else default
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_INT32:
        raise ValidationFailed(f"{name} must be a whole number", code="invalid_quantity"
                               if name == "quantity" else "invalid_input", field=name)
    return value


# --- cart ------------------------------------------------------------------------------

@router.get("/cart", dependencies=[OWN_CART])
async def cart_page(request: Request) -> HTMLResponse:
    async with db_of(request).reader() as s:
        view = await carts.view_cart(s, cart_token(request), current_customer_id(request),
                                     utcnow(), settings=settings_of(request))
        extra = await _suggestions(s, request, view)
    response = render(request, "shop/cart.html", {
        "title": gettext(request, N_("Shopping cart")), "cart": view, "suggestions": extra})
    response.headers["Cache-Control"] = "no-store"
    return response


async def _suggestions(s: AsyncSession, request: Request, view: carts.CartView
                       ) -> list[Suggestion]:
    """The "Goes well with" add-ons for the cart's lines (the process's copy when warm)."""
    if view.empty:
        return []
    return await cached_suggestions(s, None, current_customer_id(request),
                                    [ln.priced.variant_id for ln in view.lines], limit=3)


@router.get("/cart/count", dependencies=[OWN_CART])
async def cart_count(request: Request) -> HTMLResponse:
    async with db_of(request).reader() as s:
        n = await carts.cart_count(s, cart_token(request), current_customer_id(request))
    response = HTMLResponse(str(n) if n else "")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/cart/add", dependencies=[OWN_CART])
async def cart_add(request: Request) -> Response:
    form = await checked_form(request)
    try:
        variant_id = _int(form, "variant_id")
        quantity = _int(form, "quantity", 1)
        source = str(form.get("source") or "")
        async with db_of(request).uow() as uow:
            change = await carts.add_to_cart(uow, cart_token(request), current_customer_id(request),
                                             variant_id, quantity, source)
            await uow.commit()
    except DomainError as exc:
        if is_htmx(request):
            return render(request, "shop/_cart_message.html",
                          {"ok": False, "message": _msg(request, exc)}, status=exc.status)
        return error_page(request, exc.status, _msg(request, exc))
    track(request, "add_to_cart", variant_id=variant_id, data={"quantity": quantity})
    if is_htmx(request):
        message = gettext(request, N_("Added to cart."))
        if change.limited:
            message = gettext(request, N_("Only %(n)s available: your cart has %(n)s."),
                              n=str(change.quantity))
        response: Response = render(request, "shop/_cart_message.html",
                                    {"ok": True, "message": message},
                                    headers={"HX-Trigger": "cart-changed"})
    else:
        back = "/shop/checkout" if form.get("back") == "checkout" else "/shop/cart"
        response = RedirectResponse(back, status_code=303)
    keep_cart_cookie(response, change.token)
    return response


@router.post("/cart/update", dependencies=[OWN_CART])
async def cart_update(request: Request) -> Response:
    form = await checked_form(request)
    try:
        variant_id = _int(form, "variant_id")
        quantity = 0 if form.get("remove") else _int(form, "quantity")
        async with db_of(request).uow() as uow:
            change = await carts.set_quantity(uow, cart_token(request),
                                              current_customer_id(request), variant_id,
                                              quantity)
            await uow.commit()
    except DomainError as exc:
        return error_page(request, exc.status, _msg(request, exc))
    response = RedirectResponse("/shop/cart", status_code=303)
    keep_cart_cookie(response, change.token)
    return response


# --- checkout --------------------------------------------------------------------------

def _stores(options: list[DeliveryOption]) -> list[DeliveryOption]:
    return [o for o in options if o.method == "pickup"]


async def _checkout_context(request: Request, values: dict[str, Any],
                            errors: dict[str, str]) -> dict[str, Any]:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        view = await carts.view_cart(s, cart_token(request), current_customer_id(request),
                                     utcnow(), settings=settings_of(request))
        options = (await delivery_options(s, settings, view.quote, view.stock)
                   if not view.empty else [])
        method = values.get("delivery") or ("home" if options and options[0].available
                                             else "pickup")
        method = method if method in ("home", "pickup") else "home"
        review = await order_review(s, settings, view.quote, method)
        offer = await points_offer(s, current_customer_id(request), review.total_cents,
                                   settings)
        points_cents = 0
        if offer is not None:
            raw = str(values.get("points") or "").strip()
            if raw.isdigit() and len(raw) < 10 and 0 < int(raw) <= offer.max_points:
                points_cents = int(raw) * offer.point_cents
        # A preview of the card's part; a bad code is reported when the order is placed.
        gift_cents = 0
        code = str(values.get("gift_card_code") or "").strip()
        if code and len(code) <= 40:
            try:
                card = await giftcards.balance_of(s, code)
            except DomainError:
                card = None
            if card is not None:
                gift_cents = gift_card_part(card.usable_cents,
                                            review.total_cents - points_cents)
        extra = await _suggestions(s, request, view)
    return {"suggestions": extra, "offer": offer, "points_cents": points_cents,
            "gift_cents": gift_cents,
            "title": gettext(request, N_("Checkout")), "cart": view, "options": options,
            "home": options[0] if options else None, "stores": _stores(options),
            "values": values, "errors": errors, "method": method, "review": review,
            "key": values.get("key") or secrets.token_urlsafe(18)}


async def _prefill(request: Request) -> dict[str, Any]:
    customer_id = current_customer_id(request)
    if customer_id is None:
        return {}
    async with db_of(request).reader() as s:
        p = await account_profile(s, customer_id)
    values: dict[str, Any] = {"email": p.email, "first_name": p.first_name,
                              "last_name": p.last_name, "phone": p.phone or ""}
    address = getattr(p, "default_address", None)
    if address is not None:
        values.update({"address_name": address.name, "street": address.street,
                       "postcode": address.postcode, "city": address.city})
    return values


@router.get("/checkout", dependencies=[public("checkout of the shopper's own cart")])
async def checkout_page(request: Request) -> Response:
    ctx = await _checkout_context(request, await _prefill(request), {})
    if ctx["cart"].empty:
        return RedirectResponse("/shop/cart", status_code=303)
    track(request, "checkout_started")
    response = render(request, "shop/checkout.html", ctx)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/checkout/summary", dependencies=[public(
    "checkout of the shopper's own cart: CSRF-checked")])
async def checkout_summary(request: Request) -> HTMLResponse:
    """The order review for the delivery method chosen (htmx, on change)."""
    form = await checked_form(request)
    values = {"delivery": str(form.get("delivery") or ""),
              "points": str(form.get("points") or ""),
              "gift_card_code": str(form.get("gift_card_code") or "")[:40]}
    ctx = await _checkout_context(request, values, {})
    return render(request, "shop/_summary.html", ctx)


FIELD_OF_ERROR = {"address.name": "address_name", "address.street": "street",
                  "address.postcode": "postcode", "address.city": "city"}
# What to write in an empty field, by field; "required" and "address_required" use it.
REQUIRED = {
    "email": N_("Enter your e-mail address."),
    "first_name": N_("Enter your first name."),
    "last_name": N_("Enter your last name."),
    "address_name": N_("Enter the recipient's name."),
    "street": N_("Enter the street address."),
    "postcode": N_("Enter the postcode."),
    "city": N_("Enter the city."),
}
TOO_LONG = N_("Use at most %(max)s characters.")
CHECK_FIELD = N_("Check this field.")


def _form_field(field: str | None) -> str:
    """The form's field for a service's field name (lines and the like: the form)."""
    name = FIELD_OF_ERROR.get(field or "", field or "form")
    return "form" if name.startswith("lines") else name


def _pydantic_problems(exc: ValidationError) -> list[ValidationFailed]:
    out = []
    for e in exc.errors():
        field = _form_field(".".join(str(p) for p in e["loc"]))
        ctx = e.get("ctx") or {}
        if e["type"] == "string_too_short":
            out.append(ValidationFailed(f"{field} is required", code="required", field=field))
        elif e["type"] == "string_too_long":
            out.append(ValidationFailed(f"{field}: {e['msg']}", code="too_long", field=field,
                                        extra={"max": ctx.get("max_length", "")}))
        else:
            out.append(ValidationFailed(f"{field}: {e['msg']}", code="invalid_input",
                                        field=field))
    return out


def _command(form: FormData, lines: list[LineIn], lang: str
             ) -> tuple[CheckoutIn | None, list[ValidationFailed]]:
    """The checkout command of the form, or None, and every problem with the form."""
    def text(name: str) -> str:
        return str(form.get(name) or "").strip()

    problems: list[ValidationFailed] = [
        ValidationFailed(f"{name} is required", code="required", field=name)
        for name in ("email", "first_name", "last_name") if not text(name)]
    delivery = text("delivery")
    if delivery not in ("home", "pickup"):
        problems.append(ValidationFailed("choose how you get the order",
                                         code="delivery_required", field="delivery"))
    store = text("pickup_location_id") if delivery == "pickup" else ""
    store_id = int(store) if store.isdigit() and len(store) < 10 else None
    if delivery == "pickup" and store_id is None:
        problems.append(ValidationFailed("choose the store", code="pickup_store_required",
                                         field="pickup_location_id"))
    raw_points = text("points")
    if raw_points and not (raw_points.isdigit() and len(raw_points) < 10):
        problems.append(ValidationFailed("points must be a whole number",
                                         code="invalid_points", field="points"))
        raw_points = ""
    address = {"name": text("address_name"), "street": text("street"),
               "postcode": text("postcode"), "city": text("city")}
    data: dict[str, Any] = {
        "email": text("email"), "phone": text("phone"), "first_name": text("first_name"),
        "last_name": text("last_name"), "delivery": delivery, "pickup_location_id": store_id,
        "address": address if delivery == "home" else None,
        "marketing_email": form.get("marketing_email") == "yes",
        "language": lang if lang in ("fi", "en") else "fi",
        "lines": lines, "points": int(raw_points or 0),
        "gift_card_code": text("gift_card_code")[:40]}
    cmd: CheckoutIn | None = None
    try:
        cmd = CheckoutIn.model_validate(data)
        checked = cmd
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc))
        # The format checks run on the raw values too, so every problem shows at once.
        checked = CheckoutIn.model_construct(None, **{
            **data, "address": AddressIn.model_construct(None, **address, country="FI")
            if delivery == "home" else None})
    problems.extend(checkout_problems(checked))
    return (cmd if not problems else None), problems


def _problem_message(request: Request, field: str, exc: DomainError) -> str:
    if exc.code in ("required", "address_required") and field in REQUIRED:
        return gettext(request, REQUIRED[field])
    if exc.code == "too_long":
        return gettext(request, TOO_LONG, max=str(exc.extra.get("max", "")))
    if exc.code == "invalid_input":
        return gettext(request, CHECK_FIELD)
    return _msg(request, exc)


def _errors(request: Request, problems: list[ValidationFailed]) -> dict[str, str]:
    """The first problem of each field, in the page's language."""
    errors: dict[str, str] = {}
    for exc in problems:
        field = _form_field(exc.field)
        if field not in errors:
            errors[field] = _problem_message(request, field, exc)
    return errors


@router.post("/checkout", dependencies=[public(
    "checkout of the shopper's own cart: CSRF-checked")])
async def checkout(request: Request) -> Response:
    form = await checked_form(request)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    settings = settings_of(request)
    client: PaytrailClient = request.app.state.paytrail
    customer_id = current_customer_id(request)
    status = 422
    errors: dict[str, str] = {}
    placed: Placed | None = None
    # One unit of work for the request: the cart, the order, the payment.
    async with db_of(request).uow() as uow:
        wanted = await carts.cart_lines_in(uow, cart_token(request), customer_id)
        if not wanted:
            return RedirectResponse("/shop/cart", status_code=303)
        cmd, problems = _command(
            form, [LineIn(variant_id=v, quantity=q, source="upsell" if src == "upsell" else "")
                   for v, q, src in wanted], page_lang(request))
        errors = _errors(request, problems)
        if cmd is not None:
            try:
                key = values.get("key", "")
                if not 16 <= len(key) <= 64:
                    key = secrets.token_urlsafe(18)
                placed = await place_checkout(uow, settings, cmd, customer_id=customer_id,
                                              key="web-checkout:" + key)
                await uow.commit()
            except DomainError as exc:
                errors = _errors(request, [ValidationFailed(exc.detail, code=exc.code,
                                                            field=exc.field, extra=exc.extra)])
                status = exc.status
        if placed is not None:
            order = placed.order
            if order.status == "paid":  # points or a gift card paid it all: no Paytrail
                await carts.remove_ordered(uow, cart_token(request), customer_id, order.id)
                await uow.commit()
                return RedirectResponse(status_path(order, placed.token), status_code=303)
            # The payment starts once the order is committed: no connection is held
            # while Paytrail answers.
            href: str | None = None
            payment_error: DomainError | None = None
            try:
                href = await start_payment_in(uow, client, settings, order)
                await uow.commit()
            except DomainError as exc:
                payment_error = exc
    if placed is None:
        ctx = await _checkout_context(request, values, errors)
        return render(request, "shop/checkout.html", ctx, status=status)
    if payment_error is not None or href is None:
        return _unpaid(request, placed.order, placed.token, payment_error)
    track(request, "payment_started", order_id=placed.order.id)
    request.session["paying_order"] = placed.order.id
    return RedirectResponse(href, status_code=303)


def _unpaid(request: Request, order: OrderOut, token: str, exc: DomainError | None
            ) -> Response:
    """The payment could not start: to the order's page, which offers paying again."""
    if exc is not None:
        request.session["flash"] = _msg(request, exc)
    return RedirectResponse(status_path(order, token), status_code=303)


async def _pay(request: Request, order: OrderOut) -> Response:
    client: PaytrailClient = request.app.state.paytrail
    try:
        href = await start_payment(db_of(request), client, settings_of(request), order)
    except DomainError as exc:
        async with db_of(request).reader() as s:
            token = await _token(s, order.id)
        request.session["flash"] = _msg(request, exc)
        return RedirectResponse(status_path(order, token), status_code=303)
    track(request, "payment_started", order_id=order.id)
    request.session["paying_order"] = order.id
    return RedirectResponse(href, status_code=303)


async def _token(s: Any, order_id: int) -> str:
    from saumaton.checkout.services import access_token_of
    return await access_token_of(s, order_id)


# --- Paytrail's answers -----------------------------------------------------------------

async def _record(request: Request) -> PaymentOutcome:
    client: PaytrailClient = request.app.state.paytrail
    params = {k: v for k, v in request.query_params.items()}
    stamp, txn, status, amount, provider = parse_return(client, params)
    out = await record_payment_status(db_of(request), settings_of(request), stamp, txn,
                                      status, amount, provider)
    if out.changed and out.refund_cents:
        # Recorded as due with the payment; asked for now, else by the checkout job.
        await send_due_refunds(db_of(request), client, settings_of(request),
                               order_id=out.order_id)
    return out


@router.get("/checkout/return/{result}", dependencies=[public(
    "the browser back from Paytrail: nothing is recorded unless Paytrail's HMAC "
    "signature over the query checks")])
async def payment_return(request: Request,
                         result: Annotated[str, Path(pattern="^(success|cancel)$")]
                         ) -> Response:
    """The shopper's browser back from Paytrail, with signed query parameters: answered
    with the order's status page itself (its own URL stays the link to keep)."""
    client: PaytrailClient = request.app.state.paytrail
    try:
        stamp, txn, status, amount, provider = parse_return(
            client, dict(request.query_params.items()))
        answer = await record_return(db_of(request), settings_of(request), stamp, txn,
                                     status, amount, provider,
                                     cart_token=cart_token(request),
                                     customer_id=current_customer_id(request))
    except InvalidSignature as exc:
        return error_page(request, 400, _msg(request, exc))
    out = answer.outcome
    if out.changed and out.refund_cents:
        await send_due_refunds(db_of(request), client, settings_of(request),
                               order_id=out.order_id)
    flash = None
    if out.order_status != "paid" and out.attempt_status == "fail":
        flash = gettext(request, N_("The payment was cancelled. Your order is kept for a "
                                    "while: you can try again."))
    return _status_page(request, answer.view, flash)


@router.get("/checkout/refund/{result}", dependencies=[public(
    "Paytrail's refund callback: refused unless its HMAC signature checks")])
async def refund_callback(request: Request,
                          result: Annotated[str, Path(pattern="^(success|cancel)$")]
                          ) -> Response:
    """Paytrail's signed notice about a refund: ok or fail (may come several times)."""
    client: PaytrailClient = request.app.state.paytrail
    try:
        notice = await record_refund_callback(db_of(request), client,
                                              dict(request.query_params.items()))
    except InvalidRefundNotice as exc:
        return PlainTextResponse(exc.detail, status_code=400)
    log.info("Paytrail refund %s (%s): %s", notice.refund_id, result, notice.status)
    return PlainTextResponse("OK")


@router.get("/checkout/callback/{result}", dependencies=[public(
    "Paytrail's payment callback: refused unless its HMAC signature checks")])
async def payment_callback(request: Request,
                           result: Annotated[str, Path(pattern="^(success|cancel)$")]
                           ) -> Response:
    """Paytrail's server-to-server notice; may come several times, late, or first."""
    try:
        await _record(request)
    except InvalidSignature as exc:
        return PlainTextResponse(exc.detail, status_code=400)
    except DomainError as exc:
        return PlainTextResponse(exc.detail, status_code=exc.status)
    return PlainTextResponse("OK")


# --- order status -------------------------------------------------------------------------

TokenQ = Annotated[str, Query(min_length=1, max_length=64)]


@router.get("/orders/{number}", dependencies=[public(
    "an order's status page: the secret access token in the link decides")])
async def order_status(request: Request, number: Annotated[str, Path(max_length=18)],
                       t: TokenQ) -> HTMLResponse:
    return _status_page(request, await status_view(db_of(request), number, t))


def _status_page(request: Request, view: StatusView, flash: str | None = None
                 ) -> HTMLResponse:
    order = view.order
    flash = request.session.pop("flash", None) or flash
    response = render(request, "shop/order.html", {
        "title": gettext(request, N_("Order %(number)s"), number=order.number),
        "order": order, "points_cents": points_paid_cents(order), "token": view.token,
        "store": view.store, "gift_cents": gift_card_paid_cents(order), "flash": flash,
        "order_returns": view.order_returns, "refunds": view.refunds,
        "settings_": settings_of(request),
        "pickup": pickup_code_for(order, settings_of(request).resolved_secret_key())})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/orders/{number}/pay", dependencies=[public(
    "paying one's order again: the secret access token decides; CSRF-checked")])
async def order_pay(request: Request, number: Annotated[str, Path(max_length=18)]
                    ) -> Response:
    form = await checked_form(request)
    token = str(form.get("t") or "")
    async with db_of(request).reader() as s:
        order = await order_by_token(s, number, token)
    return await _pay(request, order)
