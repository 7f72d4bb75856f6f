"""Duplicate customers in the back office: the candidate list, the confirmation that
shows what a merge moves, the merge, and its result page with Undo while the window is
open. Routes only translate HTTP to `saumaton.customers.duplicates`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.core.types import MAX_ID
from saumaton.customers.card import find_customers
from saumaton.customers.duplicates import (
    duplicate_candidates,
    get_merge,
    merge_customers,
    merge_preview,
    summaries,
    undo_merge,
)
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_router,
    render,
    require_staff,
)

router = page_router("/backoffice")
MergeId = Annotated[int, Path(ge=1, le=MAX_ID)]

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
}


def _message(request: Request, exc: DomainError) -> str:
    text = MESSAGES.get(exc.code)
    return gettext(request, text) if text else error_message(request, exc)


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
async def duplicates_page(request: Request) -> Response:
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
async def confirm_page(request: Request) -> Response:
    """What the merge will move, with the button that does it."""
    actor = await require_staff(request)
    actor.require("customers.merge", everywhere=True)
    try:
        kept, merged = _pair(request.query_params)
    except ValidationFailed as exc:
        return error_page(request, 422, _message(request, exc))
    return await _confirm(request, actor, kept, merged)


@router.post("/customers/merge")
async def merge(request: Request) -> Response:
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
async def result_page(request: Request, merge_id: MergeId) -> Response:
    actor = await require_staff(request)
    return await _result(request, actor, merge_id)


@router.post("/customers/merges/{merge_id}/undo")
async def undo(request: Request, merge_id: MergeId) -> Response:
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
