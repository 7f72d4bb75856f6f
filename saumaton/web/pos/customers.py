"""The customer card at the till: find (phone, e-mail, card, QR), create, preferences,
tags, notes, contact details and marketing consents.

Every answer is the customer panel (`pos/_customer_panel.html`): the card, a list to
pick from, "not found" with the quick-create form, or a message about the search. htmx
requests get the panel alone (the till loads it into its `#customer-panel`); a plain
request gets it inside the full page `pos/customers.html`, so the card works on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.core.errors import DomainError, NotFound, ValidationFailed
from saumaton.core.types import MAX_ID
from saumaton.customers.card import (
    CustomerCard,
    CustomerMatch,
    QuickCustomerIn,
    customer_card,
    find_customers,
    quick_create,
    quick_create_defaults,
)
from saumaton.customers.fields import list_fields
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.tags import add_tag, remove_tag
from saumaton.web import customer_contact
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    is_htmx,
    page_router,
    render,
    settings_of,
)
from saumaton.web.pos.routes import Till, till_requires

router = page_router("/pos")
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
CREATE_FIELDS = ("phone", "first_name", "last_name", "email")

# Messages for the codes the customer services raise (else pages.error_message).
MESSAGES: Mapping[str, str] = {
    "invalid_customer_query": N_(
        "Type a phone number, an e-mail address, a card number or at least two letters "
        "of a name."),
    "required": N_("Fill in this field."),
    "too_long": N_("That is too long."),
    "invalid_phone": N_("Check the phone number."),
    "invalid_email": N_("Check the e-mail address."),
    "note_empty": N_("Write the note first."),
    "note_too_long": N_("A note is at most %(max)s characters."),
    "preference_too_long": N_("At most %(max)s characters."),
    "unknown_preference": N_("That is not a preference this card knows."),
    "invalid_choice": N_("Choose one of the options."),
    "invalid_tag": N_(
        "A tag is 1–%(max)s letters, digits, spaces, hyphens (-) or underscores (_)."),
    "customer_not_found": N_("There is no such customer."),
}
EXISTS: Mapping[str, str] = {
    "phone": N_("A customer with this phone number exists already."),
    "email": N_("A customer with this e-mail address exists already."),
}


def _message(request: Request, exc: DomainError) -> str:
    if exc.code == "customer_exists":
        return gettext(request, EXISTS.get(exc.field or "", EXISTS["phone"]))
    return error_message(request, exc, MESSAGES)


def _text(form: FormData, name: str, max_len: int = 1000) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def _panel(request: Request, till: Till, view: str, *, status: int = 200,
           q: str = "", card: CustomerCard | None = None,
           matches: list[CustomerMatch] | None = None,
           errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
           saved: str = "", existing_id: int | None = None) -> Response:
    """view: card | list | create | error | empty."""
    context: dict[str, Any] = {
        "till": till, "view": view, "q": q, "card": card, "matches": matches or [],
        "errors": errors or {}, "values": values or {}, "saved": saved,
        "existing_id": existing_id,
        "can_write": till.actor.can("customers.write", till.location.id),
        "title": card.name if card else gettext(request, N_("Customers")),
    }
    template = "pos/_customer_panel.html" if is_htmx(request) else "pos/customers.html"
    response = render(request, template, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _no_customer(request: Request) -> Response:
    return error_page(request, 404, gettext(request, MESSAGES["customer_not_found"]))


async def _card_panel(request: Request, till: Till, customer_id: int, *, status: int = 200,
                      errors: dict[str, str] | None = None,
                      values: dict[str, str] | None = None, saved: str = "") -> Response:
    try:
        async with db_of(request).reader() as s:
            card = await customer_card(s, till.actor, customer_id,
                                       settings=settings_of(request))
    except NotFound:
        return _no_customer(request)
    return _panel(request, till, "card", status=status, card=card, errors=errors,
                  values=values, saved=saved)


@router.get("/{code}/customers")
async def customers_page(request: Request,
        till: Annotated[Till, till_requires("customers.read")]) -> Response:
    """The search on its own page (the till has the same search in its panel)."""
    return _panel(request, till, "empty")


@router.get("/{code}/customers/find")
async def find(request: Request,
        till: Annotated[Till, till_requires("customers.read")]) -> Response:
    """One match: the card; several: a list; none: the quick-create form prefilled with
    what was typed. All 200 so htmx swaps them; a search that cannot be anything is 422."""
    q = (request.query_params.get("q") or "")[:400]
    try:
        async with db_of(request).reader() as s:
            matches = await find_customers(s, till.actor, q)
            card = await customer_card(s, till.actor, matches[0].id,
                                       settings=settings_of(request)) \
                if len(matches) == 1 else None
    except ValidationFailed as exc:
        return _panel(request, till, "error", status=422, q=q,
                      errors={"q": _message(request, exc)})
    if card is not None:
        return _panel(request, till, "card", q=q, card=card)
    if matches:
        return _panel(request, till, "list", q=q, matches=matches)
    return _panel(request, till, "create", q=q, values=quick_create_defaults(q))


@router.post("/{code}/customers")
async def create(request: Request,
        till: Annotated[Till, till_requires("customers.write")]) -> Response:
    """Quick create at the till: phone and first name, optional last name and e-mail,
    the marketing consents; a loyalty card number is issued."""
    form = await checked_form(request)
    values = {name: _text(form, name) for name in CREATE_FIELDS}
    data = QuickCustomerIn(**values, marketing_email=form.get("marketing_email") == "yes",
                           marketing_sms=form.get("marketing_sms") == "yes")
    try:
        async with db_of(request).uow() as uow:
            out = await quick_create(uow, till.actor, data, channel="pos")
            await uow.commit()
    except DomainError as exc:
        if exc.status == 403:
            raise
        field = exc.field if exc.field in CREATE_FIELDS else "form"
        existing = exc.extra.get("customer_id") if exc.code == "customer_exists" else None
        values.update(marketing_email="yes" if data.marketing_email else "",
                      marketing_sms="yes" if data.marketing_sms else "")
        return _panel(request, till, "create", status=exc.status, values=values,
                      errors={field: _message(request, exc)},
                      existing_id=existing if isinstance(existing, int) else None)
    if not is_htmx(request):
        return RedirectResponse(f"{till.base}/customers/{out.id}", status_code=303)
    return await _card_panel(request, till, out.id, saved="created")


@router.get("/{code}/customers/{customer_id}")
async def card_page(request: Request,
        till: Annotated[Till, till_requires("customers.read")],
        customer_id: CustomerId) -> Response:
    return await _card_panel(request, till, customer_id)


@router.post("/{code}/customers/{customer_id}/notes")
async def note(request: Request,
        till: Annotated[Till, till_requires("customers.write")],
        customer_id: CustomerId) -> Response:
    form = await checked_form(request)
    body = _text(form, "body", 4000)
    try:
        async with db_of(request).uow() as uow:
            await add_note(uow, till.actor, customer_id, body, "pos")
            await uow.commit()
    except NotFound:
        return _no_customer(request)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return await _card_panel(request, till, customer_id, status=exc.status,
                                 errors={"body": _message(request, exc)}, values={"body": body})
    if not is_htmx(request):
        return RedirectResponse(f"{till.base}/customers/{customer_id}", status_code=303)
    return await _card_panel(request, till, customer_id, saved="note")


@router.post("/{code}/customers/{customer_id}/preferences")
async def preferences(request: Request,
        till: Annotated[Till, till_requires("customers.write")],
        customer_id: CustomerId) -> Response:
    """The form's preference fields (the shop's active ones); an emptied field removes the
    value. All or nothing: one refused value saves none."""
    form = await checked_form(request)
    values: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            keys = [f.key for f in await list_fields(uow.session)]
            values = {k: _text(form, k, 400) for k in keys if k in form}
            for key, value in values.items():
                await set_preference(uow, till.actor, customer_id, key, value)
            await uow.commit()
    except NotFound:
        return _no_customer(request)
    except DomainError as exc:
        if exc.status == 403:
            raise
        field = exc.field if exc.field in values else "preferences"
        return await _card_panel(request, till, customer_id, status=exc.status,
                                 errors={field: _message(request, exc)}, values=values)
    if not is_htmx(request):
        return RedirectResponse(f"{till.base}/customers/{customer_id}", status_code=303)
    return await _card_panel(request, till, customer_id, saved="preferences")


async def _tag(request: Request, till: Till, customer_id: int, add: bool) -> Response:
    form = await checked_form(request)
    tag = _text(form, "tag", 200)
    try:
        async with db_of(request).uow() as uow:
            if add:
                await add_tag(uow, till.actor, customer_id, tag)
            else:
                await remove_tag(uow, till.actor, customer_id, tag)
            await uow.commit()
    except NotFound:
        return _no_customer(request)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return await _card_panel(request, till, customer_id, status=exc.status,
                                 errors={"tag": _message(request, exc)}, values={"tag": tag})
    if not is_htmx(request):
        return RedirectResponse(f"{till.base}/customers/{customer_id}", status_code=303)
    return await _card_panel(request, till, customer_id, saved="tag" if add else "untag")


@router.post("/{code}/customers/{customer_id}/tags")
async def tag_add(request: Request,
        till: Annotated[Till, till_requires("customers.write")], customer_id: CustomerId,
        ) -> Response:
    return await _tag(request, till, customer_id, add=True)


@router.post("/{code}/customers/{customer_id}/tags/remove")
async def tag_remove(request: Request,
        till: Annotated[Till, till_requires("customers.write")], customer_id: CustomerId,
        ) -> Response:
    return await _tag(request, till, customer_id, add=False)


@router.post("/{code}/customers/{customer_id}/contact/{action}")
async def contact(request: Request,
        till: Annotated[Till, till_requires("customers.write")], customer_id: CustomerId,
                  action: customer_contact.Action) -> Response:
    """The card's contact forms: name, add an e-mail or phone, remove one, issue a card,
    the marketing consents (recorded as given at the till)."""
    form = await checked_form(request)
    try:
        done = await customer_contact.apply(request, till.actor, customer_id, action, form,
                                            "pos")
    except NotFound:
        return _no_customer(request)
    if done.errors:
        return await _card_panel(request, till, customer_id, status=done.status,
                                 errors=done.errors, values=done.values)
    if not is_htmx(request):
        return RedirectResponse(f"{till.base}/customers/{customer_id}", status_code=303)
    return await _card_panel(request, till, customer_id, saved=done.saved)
