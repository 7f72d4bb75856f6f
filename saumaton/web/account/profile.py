"""The signed-in shopper's pages: overview with order history, one order, address book,
marketing consents and the password."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import segno
from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from saumaton.core.errors import DomainError, NotFound
from saumaton.core.types import MAX_ID
from saumaton.customers import accounts, addresses, consents
from saumaton.customers.card import account_card
from saumaton.db.uow import UnitOfWork
from saumaton.giftcards.ledger import store_credit_of
from saumaton.loyalty.tiers import loyalty_summary
from saumaton.mail.messages import country_name
from saumaton.orders.lifecycle import returnable
from saumaton.returns.services import returns_of_order
from saumaton.web.account.common import base_url, field_errors, missing, page, text_field
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_page,
    gettext,
    page_lang,
    page_router,
    settings_of,
)
from saumaton.web.route_access import customer_session
from saumaton.web.shopper import shopper_token, sign_out_shopper

router = page_router("/account")
AddressId = Annotated[int, Path(ge=1, le=MAX_ID)]
ADDRESS_FIELDS = ("name", "street", "postcode", "city", "country", "phone")
# Countries offered in the address form; Finland first.
COUNTRIES = ("FI", "SE", "NO", "DK", "EE", "DE")
STATUS_LABELS = {
    "pending": N_("Awaiting payment"), "paid": N_("Paid"), "completed": N_("Completed"),
    "cancelled": N_("Cancelled"), "ready": N_("Ready for collection"),
    "collected": N_("Collected"),
    "shipped": N_("Shipped"), "picking": N_("Being prepared"), "packed": N_("Packed"),
    "partly_returned": N_("Partly returned"), "returned": N_("Returned"),
}


def card_qr_svg(number: str) -> Markup:
    """The loyalty card number as a QR code (inline SVG) the till's scanner reads."""
    svg = segno.make(number, micro=False, error="m").svg_inline(
        scale=5, border=4, dark="#2b2226", light="#ffffff", title=number)
    return Markup(svg)  # segno's own markup; the number is digits only


async def _gone(request: Request) -> Response:
    """The session names an account that no longer exists."""
    await sign_out_shopper(request)
    return RedirectResponse("/account/login", status_code=303)


@router.get("/")
async def overview(request: Request,
        customer_id: Annotated[int, customer_session()],
                   before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                   sent: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    async with db_of(request).reader() as s:
        try:
            profile = await accounts.account_profile(s, customer_id)
        except NotFound:
            return await _gone(request)
        history = await accounts.order_history(s, customer_id, limit=20, before_id=before)
        store_credit = await store_credit_of(s, customer_id)
    # The card first: issued on the first visit after the e-mail is confirmed, it makes
    # the shopper a member, which the summary's tier must already show.
    card = await account_card(db_of(request), customer_id)
    async with db_of(request).reader() as s:
        loyalty = await loyalty_summary(s, customer_id, settings=settings_of(request))
    return page(request, "account/overview.html", N_("My account"), {
        "profile": profile, "history": history, "sent": bool(sent),
        "status_labels": STATUS_LABELS, "card_number": card,
        "card_qr": card_qr_svg(card) if card else None, "loyalty": loyalty,
        "store_credit": store_credit})


@router.get("/orders/{number}")
async def order_page(request: Request,
        customer_id: Annotated[int, customer_session()],
                     number: Annotated[str, Path(max_length=20)]) -> Response:
    try:
        async with db_of(request).reader() as s:
            entry = await accounts.customer_order(s, customer_id, number)
            order_returns = await returns_of_order(s, entry.order.id)
    except NotFound as exc:
        if exc.code == "account_not_found":
            return await _gone(request)
        return error_page(request, 404, gettext(request, N_(
            "There is no such order in your account.")))
    return page(request, "account/order.html", N_("Order %(number)s"),
                {"entry": entry, "order": entry.order, "status_labels": STATUS_LABELS,
                 "order_returns": order_returns, "may_return": returnable(entry.order.status)},
                title_values={"number": entry.order.number})


# --- address book -------------------------------------------------------------------------

def _address_in(form: Any) -> addresses.AddressIn:
    v = {n: text_field(form, n, 300) for n in ADDRESS_FIELDS}
    return addresses.AddressIn(name=v["name"], street=v["street"], postcode=v["postcode"],
                               city=v["city"], country=v["country"] or "FI", phone=v["phone"])


def _countries(lang: str) -> list[tuple[str, str]]:
    return [(c, country_name(c, lang)) for c in COUNTRIES]


async def _addresses_page(request: Request, customer_id: int, values: dict[str, str],
                          errors: dict[str, str], status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        book = await addresses.list_addresses(s, customer_id)
    return page(request, "account/addresses.html", N_("Addresses"), {
        "addresses": book, "values": values, "errors": errors,
        "countries": _countries(page_lang(request)), "limit": addresses.MAX_ADDRESSES,
        "country_name": lambda c: country_name(c, page_lang(request))}, status=status)


def _form_values(form: Any) -> dict[str, str]:
    return {n: text_field(form, n, 300) for n in ADDRESS_FIELDS}


@router.get("/addresses")
async def address_book(request: Request,
        customer_id: Annotated[int, customer_session()]) -> Response:
    return await _addresses_page(request, customer_id, {"country": "FI"}, {})


@router.post("/addresses")
async def add_address(request: Request,
        customer_id: Annotated[int, customer_session()]) -> Response:
    form = await checked_form(request)
    values = _form_values(form)
    errors = missing(request, form, ["name", "street", "postcode", "city"])
    if not errors:
        try:
            async with db_of(request).uow() as uow:
                await addresses.add_address(uow, customer_id, _address_in(form),
                                            make_default=form.get("is_default") == "yes")
                await uow.commit()
        except DomainError as exc:
            errors = field_errors(request, exc, set(ADDRESS_FIELDS))
            return await _addresses_page(request, customer_id, values, errors, exc.status)
        return RedirectResponse("/account/addresses", status_code=303)
    return await _addresses_page(request, customer_id, values, errors, 422)


async def _edit_page(request: Request, address_id: int, values: dict[str, str],
                     errors: dict[str, str], status: int = 200) -> Response:
    return page(request, "account/address_edit.html", N_("Edit address"), {
        "address_id": address_id, "values": values, "errors": errors,
        "countries": _countries(page_lang(request))}, status=status)


def _no_address(request: Request) -> Response:
    return error_page(request, 404, gettext(
        request, N_("There is no such address in your account.")))


@router.get("/addresses/{address_id}")
async def edit_address_form(request: Request,
        customer_id: Annotated[int, customer_session()], address_id: AddressId) -> Response:
    async with db_of(request).reader() as s:
        book = await addresses.list_addresses(s, customer_id)
    found = next((a for a in book if a.id == address_id), None)
    if found is None:
        return _no_address(request)
    values = {n: str(getattr(found, n)) for n in ADDRESS_FIELDS}
    return await _edit_page(request, address_id, values, {})


@router.post("/addresses/{address_id}")
async def edit_address(request: Request,
        customer_id: Annotated[int, customer_session()], address_id: AddressId) -> Response:
    form = await checked_form(request)
    values = _form_values(form)
    errors = missing(request, form, ["name", "street", "postcode", "city"])
    if errors:
        return await _edit_page(request, address_id, values, errors, 422)
    try:
        async with db_of(request).uow() as uow:
            await addresses.update_address(uow, customer_id, address_id, _address_in(form))
            await uow.commit()
    except NotFound:
        return _no_address(request)
    except DomainError as exc:
        return await _edit_page(request, address_id, values,
                                field_errors(request, exc, set(ADDRESS_FIELDS)), exc.status)
    return RedirectResponse("/account/addresses", status_code=303)


async def _address_action(request: Request, customer_id: int, address_id: int,
                          action: Callable[[UnitOfWork, int, int], Awaitable[object]]
                          ) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await action(uow, customer_id, address_id)
            await uow.commit()
    except NotFound:
        return _no_address(request)
    return RedirectResponse("/account/addresses", status_code=303)


@router.post("/addresses/{address_id}/delete")
async def delete_address(request: Request, customer_id: Annotated[int, customer_session()],
                         address_id: AddressId) -> Response:
    return await _address_action(request, customer_id, address_id, addresses.delete_address)


@router.post("/addresses/{address_id}/default")
async def default_address(request: Request, customer_id: Annotated[int, customer_session()],
                         address_id: AddressId) -> Response:
    return await _address_action(request, customer_id, address_id, addresses.set_default_address)


# --- consents -----------------------------------------------------------------------------

@router.get("/consents")
async def consents_page(request: Request,
        customer_id: Annotated[int, customer_session()],
                        saved: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    async with db_of(request).reader() as s:
        current = await consents.current_consents(s, customer_id)
        history = await consents.consent_history(s, customer_id)
    return page(request, "account/consents.html", N_("Marketing permissions"), {
        "current": current, "history": history, "saved": bool(saved)})


@router.post("/consents")
async def save_consents(request: Request,
        customer_id: Annotated[int, customer_session()]) -> Response:
    form = await checked_form(request)
    async with db_of(request).uow() as uow:
        for kind in consents.CONSENT_KINDS:
            await consents.set_consent(uow, customer_id, kind, form.get(kind) == "yes", "web")
        await uow.commit()
    return RedirectResponse("/account/consents?saved=1", status_code=303)


# --- password -----------------------------------------------------------------------------

@router.get("/password")
async def password_form(request: Request,
        customer_id: Annotated[int, customer_session()],
                        saved: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    return page(request, "account/password.html", N_("Change password"),
                {"errors": {}, "saved": bool(saved)})


@router.post("/password")
async def change_password(request: Request,
        customer_id: Annotated[int, customer_session()]) -> Response:
    form = await checked_form(request)
    errors = missing(request, form, ["current_password", "password"])
    if not errors:
        try:
            async with db_of(request).uow() as uow:
                await accounts.change_password(
                    uow, customer_id, text_field(form, "current_password", 1001),
                    text_field(form, "password", accounts.MAX_PASSWORD + 1),
                    keep_session=shopper_token(request))  # other browsers sign out
                await uow.commit()
        except DomainError as exc:
            errors = field_errors(request, exc, {"current_password", "password"})
            return page(request, "account/password.html", N_("Change password"),
                        {"errors": errors, "saved": False}, status=exc.status)
        return RedirectResponse("/account/password?saved=1", status_code=303)
    return page(request, "account/password.html", N_("Change password"),
                {"errors": errors, "saved": False}, status=422)


# --- the verification mail again ------------------------------------------------------------

@router.post("/verify")
async def resend_verification(request: Request,
                              customer_id: Annotated[int, customer_session()]) -> Response:
    await checked_form(request)
    async with db_of(request).uow() as uow:
        await accounts.resend_verification(uow, customer_id, lang=page_lang(request),
                                           base_url=base_url(request),
                                           settings=settings_of(request))
        await uow.commit()
    return RedirectResponse("/account/?sent=1", status_code=303)
