"""Registering, signing in and out, password reset and e-mail verification links."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.checkout.cart import merge_on_sign_in
from saumaton.core.errors import DomainError
from saumaton.customers import accounts
from saumaton.customers import sessions as customer_sessions
from saumaton.throttle import services as throttle
from saumaton.web import throttling
from saumaton.web.account.common import (
    NO_REFERRER,
    base_url,
    field_errors,
    message,
    missing,
    page,
    text_field,
)
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import checked_form, page_lang, page_router, safe_next, settings_of
from saumaton.web.route_access import public
from saumaton.web.shop.checkout import CART_COOKIE, cart_token, keep_cart_cookie
from saumaton.web.shopper import (
    current_customer_id,
    shopper_token,
    sign_in_shopper,
    sign_out_shopper,
)

router = page_router("/account", dependencies=[public(
    "registration, sign-in and password reset: the password, or the one-time token "
    "mailed to the customer, decides; forms CSRF-checked")])
Token = Annotated[str, Path(max_length=200)]
REGISTER_FIELDS = {"email", "password", "first_name", "last_name"}


def _signed_in_response(request: Request, customer_id: int, session_token: str,
                        target: str, cart: str) -> Response:
    """Sign the browser in (the session's token into the cookie); it keeps the token of
    the customer's (merged) cart."""
    sign_in_shopper(request, session_token, customer_id)
    response = RedirectResponse(target, status_code=303)
    keep_cart_cookie(response, cart)
    return response


# --- register -----------------------------------------------------------------------------

def _register_page(request: Request, values: dict[str, Any], errors: dict[str, str],
                   status: int = 200) -> Response:
    return page(request, "account/register.html", N_("Create an account"),
                {"values": values, "errors": errors,
                 "next": safe_next(values.get("next"), "/account/")}, status=status)


@router.get("/register")
async def register_form(request: Request,
                        next: Annotated[str | None, Query(max_length=300)] = None) -> Response:
    if current_customer_id(request) is not None:
        return RedirectResponse("/account/", status_code=303)
    return _register_page(request, {"next": next}, {})


@router.post("/register")
async def register(request: Request) -> Response:
    form = await checked_form(request)
    values: dict[str, Any] = {n: text_field(form, n).strip()
                              for n in ("email", "first_name", "last_name", "next")}
    values["marketing_email"] = form.get("marketing_email") == "yes"
    password = text_field(form, "password", accounts.MAX_PASSWORD + 1)
    errors = missing(request, form, ["first_name", "last_name", "email", "password"])
    for problem in accounts.name_problems(values["first_name"], values["last_name"]):
        errors.setdefault(str(problem.field), message(request, problem))
    if errors and "password" not in errors:
        try:  # all the form's problems at once, not one per round trip
            accounts.check_password(password, values["email"])
        except DomainError as exc:
            errors.update(field_errors(request, exc, REGISTER_FIELDS))
    if errors:
        return _register_page(request, values, errors, 422)
    try:
        async with db_of(request).uow() as uow:
            customer_id = await accounts.register(
                uow, email=values["email"], password=password,
                first_name=values["first_name"], last_name=values["last_name"],
                marketing_email=bool(values["marketing_email"]), lang=page_lang(request),
                base_url=base_url(request), settings=settings_of(request))
            cart = await merge_on_sign_in(uow, cart_token(request), customer_id)
            await accounts.note_sign_in(uow, customer_id)
            token = await customer_sessions.sign_in(uow, customer_id,
                                                    replacing=shopper_token(request))
            await uow.commit()
    except DomainError as exc:
        return _register_page(request, values, field_errors(request, exc, REGISTER_FIELDS),
                              exc.status)
    target = safe_next(values["next"], "/account/")
    return _signed_in_response(request, customer_id, token, target, cart)


# --- sign in and out ----------------------------------------------------------------------

def _login_page(request: Request, email: str, next_url: str, errors: dict[str, str],
                status: int = 200, notice: str = "",
                headers: dict[str, str] | None = None) -> Response:
    return page(request, "account/login.html", N_("Sign in"),
                {"email": email, "next": next_url, "errors": errors, "notice": notice},
                status=status, headers=headers)


@router.get("/login")
async def login_form(request: Request,
                     next: Annotated[str | None, Query(max_length=300)] = None,
                     done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    next_url = safe_next(next, "/account/")
    if current_customer_id(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    notice = N_("Your password has been changed. Sign in with the new one.") \
        if done == "reset" else ""
    return _login_page(request, "", next_url, {}, notice=notice)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    email = text_field(form, "email", 320).strip()
    password = text_field(form, "password", accounts.MAX_PASSWORD)
    next_url = safe_next(form.get("next"), "/account/")
    errors = missing(request, form, ["email", "password"])
    if errors:
        return _login_page(request, email, next_url, errors, 422)
    refused = await throttling.attempt(request, "customer", email)
    if refused is not None:
        if throttling.wants_json(request):
            return throttling.json_refusal(refused)
        return _login_page(request, email, next_url,
                           {"form": throttling.message(request, refused)}, 429,
                           headers=throttling.retry_headers(refused))
    db = db_of(request)
    try:
        async with db.reader() as s:
            customer_id = await accounts.authenticate_customer(s, email, password)
    except DomainError as exc:
        return _login_page(request, email, next_url,
                           field_errors(request, exc, {"email", "password"}), exc.status)
    async with db.uow() as uow:
        cart = await merge_on_sign_in(uow, cart_token(request), customer_id)
        await accounts.note_sign_in(uow, customer_id)
        await throttle.succeeded(uow, "customer", email, throttling.client_address(request))
        token = await customer_sessions.sign_in(uow, customer_id,
                                                replacing=shopper_token(request))
        await uow.commit()
    return _signed_in_response(request, customer_id, token, next_url, cart)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    await sign_out_shopper(request)
    response = RedirectResponse("/shop/", status_code=303)
    # The cart cookie now names the customer's saved cart: not for the next person.
    response.delete_cookie(CART_COOKIE, httponly=True, samesite="lax")
    return response


# --- forgotten password -------------------------------------------------------------------

def _reset_request_page(request: Request, email: str, errors: dict[str, str],
                        status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return page(request, "account/reset_request.html", N_("Forgotten password"),
                {"email": email, "errors": errors}, status=status, headers=headers)


@router.get("/reset")
async def reset_request_form(request: Request) -> Response:
    return _reset_request_page(request, "", {})


@router.post("/reset")
async def reset_request(request: Request) -> Response:
    form = await checked_form(request)
    email = text_field(form, "email", 320).strip()
    errors = missing(request, form, ["email"])
    if errors:
        return _reset_request_page(request, email, errors, 422)
    refused = await throttling.attempt(request, "customer_reset", email)
    if refused is not None:
        return _reset_request_page(request, email,
                                   {"form": throttling.message(request, refused)}, 429,
                                   headers=throttling.retry_headers(refused))
    try:
        async with db_of(request).uow() as uow:
            await accounts.request_password_reset(
                uow, email, lang=page_lang(request), base_url=base_url(request),
                settings=settings_of(request))
            await uow.commit()
    except DomainError as exc:
        return _reset_request_page(request, email, field_errors(request, exc, {"email"}),
                                   exc.status)
    # The same answer whether or not an account has this address.
    return page(request, "account/reset_sent.html", N_("Check your e-mail"), {"email": email})


def _link_invalid(request: Request) -> Response:
    return page(request, "account/link_invalid.html", N_("The link does not work"),
                status=400, headers=NO_REFERRER)


def _new_password_page(request: Request, token: str, errors: dict[str, str],
                       status: int = 200) -> Response:
    return page(request, "account/reset_form.html", N_("Choose a new password"),
                {"token": token, "errors": errors}, status=status, headers=NO_REFERRER)


@router.get("/reset/{token}")
async def new_password_form(request: Request, token: Token) -> Response:
    async with db_of(request).reader() as s:
        ok = await accounts.token_is_valid(s, token, "reset")
    return _new_password_page(request, token, {}) if ok else _link_invalid(request)


@router.post("/reset/{token}")
async def new_password(request: Request, token: Token) -> Response:
    form = await checked_form(request)
    password = text_field(form, "password", accounts.MAX_PASSWORD + 1)
    errors = missing(request, form, ["password"])
    if errors:
        return _new_password_page(request, token, errors, 422)
    try:
        async with db_of(request).uow() as uow:
            await accounts.reset_password(uow, token, password)
            await uow.commit()
    except DomainError as exc:
        if exc.code == "invalid_link":
            return _link_invalid(request)
        return _new_password_page(request, token, field_errors(request, exc, {"password"}),
                                  exc.status)
    await sign_out_shopper(request)  # whoever was signed in here signs in with the new password
    return RedirectResponse("/account/login?done=reset", status_code=303)


# --- e-mail verification ------------------------------------------------------------------

@router.get("/verify/{token}")
async def verify(request: Request, token: Token) -> Response:
    try:
        async with db_of(request).uow() as uow:
            await accounts.verify_email(uow, token)
            await uow.commit()
    except DomainError as exc:
        return page(request, "account/verified.html", N_("The link does not work"),
                    {"ok": False, "message": message(request, exc)}, status=400,
                    headers=NO_REFERRER)
    return page(request, "account/verified.html", N_("E-mail address confirmed"),
                {"ok": True, "message": ""}, headers=NO_REFERRER)
