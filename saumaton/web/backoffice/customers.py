"""Customers in the back office: the customer list (search, filter by tag), one
customer's page (preferences, tags, timeline), the shop's preference fields, and
duplicates: the candidate list, the confirmation that shows what a merge moves, the
merge, and its result page with Undo while the window is open. Routes only translate
HTTP to `saumaton.customers` (card, fields, tags, duplicates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, NotFound, ValidationFailed
from saumaton.core.types import MAX_ID
from saumaton.customers import fields as preference_fields
from saumaton.customers.card import (
    CustomerMatch,
    customer_card,
    customer_matches,
    find_customers,
)
from saumaton.customers.duplicates import (
    duplicate_candidates,
    get_merge,
    merge_customers,
    merge_preview,
    summaries,
    undo_merge,
)
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.tags import (
    MAX_LISTED,
    add_tag,
    all_tags,
    normalise_tag,
    remove_tag,
    tagged_customer_ids,
    tags_of_many,
)
from saumaton.customers.timeline import timeline
from saumaton.web import customer_contact
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_router,
    render,
    require_staff,
    settings_of,
)

router = page_router("/backoffice")
MergeId = Annotated[int, Path(ge=1, le=MAX_ID)]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
FieldKey = Annotated[str, Path(max_length=50)]
TIMELINE_PAGE = 50
# What `?saved=` may say on a customer's page after a form.
SAVED = ("preferences", "tag", "untag", "note", *customer_contact.SAVED.values())

# What moves, by table, in words (a table added later is shown by its name).
KINDS: Mapping[str, str] = {
    "orders": N_("Orders (all channels, with their payments)"),
    "customer_identities": N_("E-mail addresses, phone numbers and loyalty cards"),
    "customer_accounts": N_("Webshop account"),
    "account_tokens": N_("Account e-mail links"),
    "customer_addresses": N_("Addresses"),
    "customer_consents": N_("Marketing consents"),
    "customer_preferences": N_("Preferences"),
    "customer_notes": N_("Notes"),
    "customer_tags": N_("Tags"),
    "carts": N_("Shopping carts"),
    "analytics_events": N_("Webshop visit events"),
    "loyalty_entries": N_("Loyalty points (every entry of the ledger)"),
    "conversations": N_("Chats with customer service"),
    "nps_surveys": N_("Satisfaction surveys and answers"),
    "gift_cards": N_("Store credit"),
    "returns": N_("Returns"),
    "try_reservations": N_("Reservations to try in a store"),
    "followups": N_("Follow-up e-mails"),
    "outgoing_mail": N_("Marketing e-mails (whose consent the sender checks)"),
}
MESSAGES: Mapping[str, str] = {
    "merge_same_customer": N_("Choose two different customers."),
    "customer_not_found": N_("There is no such customer."),
    "customer_erased": N_("This customer's data has been erased; it cannot be merged."),
    "customer_already_merged": N_(
        "This customer has already been merged into another one. Reload the list."),
    "both_have_accounts": N_(
        "Both customers have a webshop account. An account has one e-mail address and "
        "password, so one would be lost: these two cannot be merged."),
    "merge_not_found": N_("There is no such merge."),
    "merge_already_undone": N_("This merge has been undone already."),
    "undo_window_over": N_(
        "A merge can be undone for 7 days. After that new orders and notes of the kept "
        "customer can no longer be told apart, so the merge stays."),
    "kept_since_merged": N_(
        "The kept customer has since been merged into another one; undo that merge first."),
    "customer_id_invalid": N_("Choose which customer is kept."),
    # preference fields
    "invalid_field_key": N_(
        "A key is 1–50 lowercase letters a–z, digits or underscores (_), starting with a "
        "letter, e.g. shade or skin_type."),
    "duplicate_field": N_(
        "A field with this key exists already (maybe removed: show it again instead)."),
    "label_required": N_("Give the field a label."),
    "label_too_long": N_("A label is at most %(max)s characters."),
    "invalid_field_kind": N_("Choose text or a choice."),
    "options_required": N_("A choice needs at least one option."),
    "option_too_long": N_("An option is at most %(max)s characters."),
    "too_many_options": N_("At most %(max)s options."),
    "invalid_position": N_("The order is a whole number from 0 to %(max)s."),
    "field_not_found": N_("There is no such preference field."),
    # a customer's preferences and tags
    "preference_too_long": N_("At most %(max)s characters."),
    "unknown_preference": N_("That is not a preference this card knows."),
    "invalid_choice": N_("Choose one of the options."),
    "invalid_tag": N_(
        "A tag is 1–%(max)s letters, digits, spaces, hyphens (-) or underscores (_)."),
    "invalid_customer_query": N_(
        "Type a phone number, an e-mail address, a card number or at least two letters "
        "of a name."),
}


def _message(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


def _id(value: object, field: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_ID:
        raise ValidationFailed("choose a customer", code="customer_id_invalid", field=field)
    return number


def _pair(values: Mapping[str, Any] | FormData) -> tuple[int, int]:
    """(kept, merged) from `kept` and `merged`, or `kept` and the pair `a`, `b`."""
    kept = _id(values.get("kept"), "kept")
    if values.get("merged") is not None:
        return kept, _id(values.get("merged"), "merged")
    a, b = _id(values.get("a"), "kept"), _id(values.get("b"), "kept")
    if kept not in (a, b):
        raise ValidationFailed("choose one of the two", code="customer_id_invalid",
                               field="kept")
    return kept, b if kept == a else a


def _kinds(request: Request, counts: Mapping[str, int]) -> list[tuple[str, int]]:
    order = list(KINDS)
    tables = sorted(counts, key=lambda t: (order.index(t) if t in order else len(order), t))
    return [(gettext(request, KINDS[t]) if t in KINDS else t, counts[t]) for t in tables]


def _can_merge(actor: Actor) -> bool:
    return actor.can("customers.merge", everywhere=True)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/customers/duplicates")
async def duplicates_page(request: Request,
        _allowed: Annotated[Actor, requires("customers.read")]) -> Response:
    """Pairs that are probably one person, likeliest first; `?q=` (a name, e-mail,
    phone or card, as at the till) narrows them to the customers it finds."""
    actor = await require_staff(request)
    q = (request.query_params.get("q") or "").strip()[:320]
    errors: dict[str, str] = {}
    async with db_of(request).reader() as s:
        ids: list[int] | None = None
        if q:
            try:
                ids = [m.id for m in await find_customers(s, actor, q)]
            except DomainError as exc:
                errors["q"] = error_message(request, exc)
                ids = []
        candidates = [] if ids == [] else await duplicate_candidates(s, actor,
                                                                     customer_ids=ids)
    return _no_store(render(request, "backoffice/duplicates.html", {
        "title": gettext(request, N_("Duplicate customers")), "candidates": candidates,
        "can_merge": _can_merge(actor), "q": q, "errors": errors},
        status=422 if errors else 200))


async def _confirm(request: Request, actor: Actor, kept: int, merged: int, *,
                   status: int = 200, errors: dict[str, str] | None = None) -> Response:
    async with db_of(request).reader() as s:
        preview = await merge_preview(s, actor, kept, merged)
    if preview.blocked and not errors:
        errors = {"kept": _message(request, DomainError("", code=preview.blocked))}
        status = 409
    return _no_store(render(request, "backoffice/merge.html", {
        "title": gettext(request, N_("Merge customers")), "view": "confirm",
        "preview": preview, "moves": _kinds(request, preview.counts),
        "kept_wins": _kinds(request, preview.kept_wins), "errors": errors or {}},
        status=status))


@router.get("/customers/merge")
async def confirm_page(request: Request,
        _allowed: Annotated[Actor, requires("customers.merge", everywhere=True)]) -> Response:
    """What the merge will move, with the button that does it."""
    actor = await require_staff(request)
    actor.require("customers.merge", everywhere=True)
    try:
        kept, merged = _pair(request.query_params)
    except ValidationFailed as exc:
        return error_page(request, 422, _message(request, exc))
    return await _confirm(request, actor, kept, merged)


@router.post("/customers/merge")
async def merge(request: Request,
        _allowed: Annotated[Actor, requires("customers.merge", everywhere=True)]) -> Response:
    actor = await require_staff(request)
    form = await checked_form(request)
    actor.require("customers.merge", everywhere=True)
    try:
        kept, merged = _pair(form)
    except ValidationFailed as exc:
        return error_page(request, 422, _message(request, exc))
    try:
        async with db_of(request).uow() as uow:
            result = await merge_customers(uow, actor, kept, merged)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _confirm(request, actor, kept, merged, status=exc.status,
                              errors={"kept": _message(request, exc)})
    return RedirectResponse(f"/backoffice/customers/merges/{result.merge_id}",
                            status_code=303)


async def _result(request: Request, actor: Actor, merge_id: int, *, status: int = 200,
                  errors: dict[str, str] | None = None) -> Response:
    async with db_of(request).reader() as s:
        info = await get_merge(s, actor, merge_id)
        people = await summaries(s, (info.kept_id, info.merged_id))
    return _no_store(render(request, "backoffice/merge.html", {
        "title": gettext(request, N_("Customers merged")), "view": "done", "info": info,
        "kept": people.get(info.kept_id), "moves": _kinds(request, info.counts),
        "errors": errors or {}}, status=status))


@router.get("/customers/merges/{merge_id}")
async def result_page(request: Request,
        _allowed: Annotated[Actor, requires("customers.merge", everywhere=True)],
        merge_id: MergeId) -> Response:
    actor = await require_staff(request)
    return await _result(request, actor, merge_id)


@router.post("/customers/merges/{merge_id}/undo")
async def undo(request: Request,
        _allowed: Annotated[Actor, requires("customers.merge", everywhere=True)],
        merge_id: MergeId) -> Response:
    actor = await require_staff(request)
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await undo_merge(uow, actor, merge_id)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _result(request, actor, merge_id, status=exc.status,
                             errors={"undo": _message(request, exc)})
    return RedirectResponse(f"/backoffice/customers/merges/{merge_id}", status_code=303)


# --- the customer list ----------------------------------------------------------------------

@router.get("/customers")
async def customers_page(request: Request,
        _allowed: Annotated[Actor, requires("customers.read")]) -> Response:
    """Customers by tag (`?tag=vip`) or by what `?q=` finds (as at the till); both narrow
    each other. The tags in use, with counts, are the filter links."""
    actor = await require_staff(request)
    actor.require("customers.read")
    q = (request.query_params.get("q") or "").strip()[:320]
    raw_tag = (request.query_params.get("tag") or "").strip()[:200]
    errors: dict[str, str] = {}
    found: list[CustomerMatch] = []
    more = False
    tag = ""
    try:
        tag = normalise_tag(raw_tag) if raw_tag else ""
    except DomainError as exc:
        errors["tag"] = _message(request, exc)
    async with db_of(request).reader() as s:
        tags = await all_tags(s, actor)
        if q and not errors:
            try:
                found = await find_customers(s, actor, q)
            except DomainError as exc:
                errors["q"] = _message(request, exc)
            if tag:
                have = await tags_of_many(s, [m.id for m in found])
                found = [m for m in found if tag in have[m.id]]
        elif tag and not errors:
            ids = await tagged_customer_ids(s, actor, tag, MAX_LISTED + 1)
            more = len(ids) > MAX_LISTED
            found = await customer_matches(s, ids[:MAX_LISTED], "tag")
        tags_by_customer = await tags_of_many(s, [m.id for m in found])
    return _no_store(render(request, "backoffice/customers.html", {
        "title": gettext(request, N_("Customers")), "tags": tags, "q": q,
        "tag": tag or raw_tag, "customers": found, "tags_by_customer": tags_by_customer,
        "errors": errors, "more": more, "max_listed": MAX_LISTED},
        status=422 if errors else 200))


@router.get("/customers/tags/options")
async def tag_options(request: Request,
        _allowed: Annotated[Actor, requires("customers.read")]) -> Response:
    """The tags in use as <option>s, for the cards' "add a tag" suggestions."""
    actor = await require_staff(request)
    async with db_of(request).reader() as s:
        tags = await all_tags(s, actor)
    return _no_store(render(request, "customers/_tag_options.html", {"tags": tags}))


# --- preference fields ----------------------------------------------------------------------

async def _fields_page(request: Request, actor: Actor, *, status: int = 200,
                       errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None, editing: str = "",
                       saved: str = "") -> Response:
    async with db_of(request).reader() as s:
        fields = await preference_fields.list_fields(s, include_inactive=True)
    return _no_store(render(request, "backoffice/fields.html", {
        "title": gettext(request, N_("Preference fields")), "fields": fields,
        "errors": errors or {}, "values": values or {}, "editing": editing,
        "saved": saved}, status=status))


def _configurer(actor: Actor) -> None:
    actor.require("customers.configure", everywhere=True)


def _position(raw: str) -> int | None:
    """'' is None (the service decides); anything but a whole number is refused."""
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed("a whole number", code="invalid_position", field="position",
                               extra={"max": preference_fields.MAX_POSITION})
    return int(text)


def _text(form: FormData, name: str, max_len: int = 4000) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def _field_values(form: FormData, *names: str) -> dict[str, str]:
    return {name: _text(form, name) for name in names}


@router.get("/customers/fields")
async def fields_page(request: Request,
        _allowed: Annotated[Actor, requires("customers.configure", everywhere=True)]) -> Response:
    """The preference fields the cards ask, with forms to add and change them."""
    actor = await require_staff(request)
    _configurer(actor)
    saved = request.query_params.get("saved", "")
    return await _fields_page(request, actor, saved=saved if saved in ("added", "saved")
                              else "")


@router.post("/customers/fields")
async def field_create(request: Request,
        _allowed: Annotated[Actor, requires("customers.configure", everywhere=True)]) -> Response:
    actor = await require_staff(request)
    form = await checked_form(request)
    _configurer(actor)
    values = _field_values(form, "key", "label", "kind", "options", "position")
    try:
        async with db_of(request).uow() as uow:
            await preference_fields.create_field(
                uow, actor, values["key"], values["label"], values["kind"] or "text",
                preference_fields.parse_options(values["options"]),
                _position(values["position"]))
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403):
            raise
        return await _fields_page(request, actor, status=exc.status, values=values,
                                  errors={exc.field or "key": _message(request, exc)})
    return RedirectResponse("/backoffice/customers/fields?saved=added", status_code=303)


@router.post("/customers/fields/{key}")
async def field_update(request: Request,
        _allowed: Annotated[Actor, requires("customers.configure", everywhere=True)],
        key: FieldKey) -> Response:
    """Label, options, order and whether the cards ask it (unticked: removed from the
    cards; the values customers have are kept)."""
    actor = await require_staff(request)
    form = await checked_form(request)
    _configurer(actor)
    values = _field_values(form, "label", "options", "position")
    try:
        async with db_of(request).uow() as uow:
            await preference_fields.update_field(
                uow, actor, key, label=values["label"],
                options=preference_fields.parse_options(values["options"]),
                position=_position(values["position"]), active=form.get("active") == "yes")
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _fields_page(request, actor, status=exc.status, editing=key,
                                  values={**values, "active": str(form.get("active") or "")},
                                  errors={exc.field or "label": _message(request, exc)})
    return RedirectResponse("/backoffice/customers/fields?saved=saved", status_code=303)


# --- one customer ---------------------------------------------------------------------------

async def _customer_page(request: Request, actor: Actor, customer_id: int, *,
                         status: int = 200, errors: dict[str, str] | None = None,
                         values: dict[str, str] | None = None, saved: str = "") -> Response:
    try:
        async with db_of(request).reader() as s:
            card = await customer_card(s, actor, customer_id, settings=settings_of(request))
            events = await timeline(s, actor, card.id, limit=TIMELINE_PAGE + 1)
    except NotFound:
        return error_page(request, 404, gettext(request, N_("There is no such customer.")))
    shown = events[:TIMELINE_PAGE]
    return _no_store(render(request, "backoffice/customer.html", {
        "title": card.name or gettext(request, N_("Customer")), "card": card,
        "can_write": actor.can("customers.write"), "errors": errors or {},
        "values": values or {}, "saved": saved,
        "timeline": shown, "timeline_customer_id": card.id,
        "timeline_next": shown[-1].cursor if len(events) > TIMELINE_PAGE and shown else "",
        "timeline_older": False}, status=status))


@router.get("/customers/{customer_id}")
async def customer_page(request: Request,
        _allowed: Annotated[Actor, requires("customers.read")],
        customer_id: CustomerId) -> Response:
    """A customer in the back office: who they are, preferences, tags and timeline."""
    actor = await require_staff(request)
    saved = request.query_params.get("saved", "")
    return await _customer_page(request, actor, customer_id,
                                saved=saved if saved in SAVED else "")


@router.post("/customers/{customer_id}/preferences")
async def customer_preferences(request: Request,
        _allowed: Annotated[Actor, requires("customers.write")],
        customer_id: CustomerId) -> Response:
    """The shop's active preference fields; all or nothing, like at the till."""
    actor = await require_staff(request)
    form = await checked_form(request)
    values: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            keys = [f.key for f in await preference_fields.list_fields(uow.session)]
            values = {k: _text(form, k, 400) for k in keys if k in form}
            for key, value in values.items():
                await set_preference(uow, actor, customer_id, key, value)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        field = exc.field if exc.field in values else "preferences"
        return await _customer_page(request, actor, customer_id, status=exc.status,
                                    errors={field: _message(request, exc)}, values=values)
    return RedirectResponse(f"/backoffice/customers/{customer_id}?saved=preferences",
                            status_code=303)


@router.post("/customers/{customer_id}/notes")
async def customer_note(request: Request,
        _allowed: Annotated[Actor, requires("customers.write")],
        customer_id: CustomerId) -> Response:
    actor = await require_staff(request)
    form = await checked_form(request)
    body = _text(form, "body", 4000)
    try:
        async with db_of(request).uow() as uow:
            await add_note(uow, actor, customer_id, body, "backoffice")
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _customer_page(request, actor, customer_id, status=exc.status,
                                    errors={"body": _message(request, exc)},
                                    values={"body": body})
    return RedirectResponse(f"/backoffice/customers/{customer_id}?saved=note",
                            status_code=303)


async def _tag(request: Request, customer_id: int, add: bool) -> Response:
    actor = await require_staff(request)
    form = await checked_form(request)
    tag = _text(form, "tag", 200)
    try:
        async with db_of(request).uow() as uow:
            if add:
                await add_tag(uow, actor, customer_id, tag)
            else:
                await remove_tag(uow, actor, customer_id, tag)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _customer_page(request, actor, customer_id, status=exc.status,
                                    errors={"tag": _message(request, exc)},
                                    values={"tag": tag})
    saved = "tag" if add else "untag"
    return RedirectResponse(f"/backoffice/customers/{customer_id}?saved={saved}",
                            status_code=303)


@router.post("/customers/{customer_id}/tags")
async def customer_tag_add(request: Request,
        _allowed: Annotated[Actor, requires("customers.write")],
        customer_id: CustomerId) -> Response:
    return await _tag(request, customer_id, add=True)


@router.post("/customers/{customer_id}/tags/remove")
async def customer_tag_remove(request: Request,
        _allowed: Annotated[Actor, requires("customers.write")],
        customer_id: CustomerId) -> Response:
    return await _tag(request, customer_id, add=False)


@router.post("/customers/{customer_id}/contact/{action}")
async def customer_contact_form(request: Request,
        _allowed: Annotated[Actor, requires("customers.write")],
        customer_id: CustomerId,
                                action: customer_contact.Action) -> Response:
    """The page's contact forms: name, add an e-mail or phone, remove one, issue a card,
    the marketing consents (recorded as given in the back office)."""
    actor = await require_staff(request)
    form = await checked_form(request)
    done = await customer_contact.apply(request, actor, customer_id, action, form,
                                        "backoffice")
    if done.errors:
        return await _customer_page(request, actor, customer_id, status=done.status,
                                    errors=done.errors, values=done.values)
    return RedirectResponse(f"/backoffice/customers/{customer_id}?saved={done.saved}",
                            status_code=303)
