"""Shared by the account pages: messages for error codes, form values. (The sign-in guard
is the routes' declaration, `customer_session()` in web/route_access.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from saumaton.core.errors import DomainError
from saumaton.web.i18n import N_
from saumaton.web.pages import error_message, gettext, render, settings_of
from saumaton.web.shopper import current_customer_id

# Messages for the codes the account services raise (else pages.error_message).
MESSAGES: Mapping[str, str] = {
    "invalid_email": N_("Check the e-mail address."),
    "email_taken": N_("An account with this e-mail address exists already. Sign in, or "
                      "reset the password if you have forgotten it."),
    "password_too_short": N_("Use at least %(min)s characters."),
    "password_too_long": N_("That password is too long."),
    "password_too_common": N_("That password is too easy to guess. Choose another one."),
    "wrong_password": N_("The current password is wrong."),
    "invalid_link": N_("This link is invalid, already used or expired."),
    "required": N_("Fill in this field."),
    "too_long": N_("Use at most %(max)s characters."),
    "invalid_text": N_("That contains characters we cannot store."),
    "invalid_postcode": N_("Check the postcode: a Finnish postcode has five digits."),
    "invalid_country": N_("Choose a country."),
    "invalid_phone": N_("Check the phone number."),
    "too_many_addresses": N_("You have the most addresses we keep. Delete one first."),
    "address_not_found": N_("There is no such address in your account."),
    "order_not_found": N_("There is no such order in your account."),
}
NO_REFERRER = {"Referrer-Policy": "no-referrer"}  # pages whose URL holds a secret


def message(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


def field_errors(request: Request, exc: DomainError, fields: set[str]) -> dict[str, str]:
    """The error next to its field, or at the top of the form."""
    return {exc.field if exc.field in fields else "form": message(request, exc)}


def text_field(form: FormData, name: str, max_len: int = 400) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def missing(request: Request, form: FormData, names: list[str]) -> dict[str, str]:
    text = gettext(request, MESSAGES["required"])
    return {n: text for n in names if not text_field(form, n).strip()}


def base_url(request: Request) -> str:
    """Links in mail use the configured public address, never the request's Host."""
    return settings_of(request).resolved_public_url()


def page(request: Request, template: str, title: str, context: Mapping[str, Any] | None = None,
         *, status: int = 200, headers: Mapping[str, str] | None = None,
         title_values: Mapping[str, str] | None = None) -> HTMLResponse:
    """Render an account page; `title` is an untranslated message."""
    response = render(request, template, {"title": gettext(request, title,
                                                           **(title_values or {})),
                                          "signed_in": current_customer_id(request),
                                          **(context or {})},
                      status=status, headers=headers)
    response.headers["Cache-Control"] = "no-store"  # personal data, forms with tokens
    return response
