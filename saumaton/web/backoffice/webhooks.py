"""Webhooks in the back office (owners): subscriptions, their secret (shown once, and
rotated), the delivery log with "send again", and a test event.

Thin: the rules are in `saumaton.outbound_webhooks.services`; the worker sends.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.db.retry import retried
from saumaton.outbound_webhooks import services as webhooks
from saumaton.outbound_webhooks.services import (
    DeliveryQuery,
    SubscriptionIn,
    SubscriptionOut,
    check_url,
)
from saumaton.outbound_webhooks.topics import AREAS
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    page_router,
    render,
    settings_of,
)

router = page_router("/backoffice")
BASE = "/backoffice/webhooks"
PER_PAGE = 50
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Owner = Annotated[Actor, requires(webhooks.PERMISSION)]
MESSAGES = {
    "invalid_webhook_url": N_("Give an address starting with http:// or https://."),
    "webhook_url_not_https": N_("In production the address must start with https://."),
    "too_many_webhooks": N_("There are already 50 subscriptions: delete one first."),
    "webhook_not_found": N_("This subscription no longer exists."),
    "webhook_delivery_not_found": N_("This delivery no longer exists."),
    "webhook_delivering": N_("This delivery is being sent right now; try again in a moment."),
    "webhook_disabled": N_("The subscription is off: turn it on to send a test event."),
}
NOTICES = {
    "saved": N_("The subscription is saved."),
    "enabled": N_("The subscription is on: queued events are sent now."),
    "disabled": N_("The subscription is off: nothing is sent until you turn it on."),
    "deleted": N_("The subscription and its delivery log are deleted."),
    "test": N_("A test event is on its way; it appears in the log below."),
    "again": N_("The delivery is queued again with the same webhook-id."),
}


def _form_values(form: Any) -> dict[str, Any]:
    return {"url": str(form.get("url", "")).strip(),
            "description": str(form.get("description", "")).strip(),
            "topics": [str(t) for t in form.getlist("topics")][:100],
            "enabled": form.get("enabled") == "on"}


def _validate(request: Request, values: dict[str, Any]) -> tuple[SubscriptionIn | None,
                                                                  dict[str, str]]:
    """Every field's error at once (the form shows each next to its field)."""
    errors: dict[str, str] = {}
    try:
        check_url(values["url"], settings_of(request))
    except DomainError as exc:
        errors["url"] = error_message(request, exc, MESSAGES)
    if len(values["url"]) > 2000:
        errors["url"] = gettext(request, N_("Use at most 2000 characters."))
    if len(values["description"]) > 200:
        errors["description"] = gettext(request, N_("Use at most 200 characters."))
    if not values["topics"]:
        errors["topics"] = gettext(request, N_("Choose at least one event."))
    if errors:
        return None, errors
    try:
        return SubscriptionIn(url=values["url"], topics=values["topics"],
                              description=values["description"],
                              enabled=values["enabled"]), {}
    except ValidationError:
        return None, {"topics": gettext(request, N_("Choose events from the list."))}


def _render_form(request: Request, *, sub: SubscriptionOut | None, values: dict[str, Any],
                 errors: dict[str, str] | None = None, status: int = 200,
                 **extra: Any) -> Response:
    return render(request, "backoffice/webhook.html", {
        "title": gettext(request, N_("Webhook") if sub else N_("New webhook")),
        "sub": sub, "values": values, "errors": errors or {}, "areas": AREAS,
        "base": BASE, "deliveries": [], "attempts": {}, "counts": {}, "notice": "",
        "secret": "", "older": None, "status_filter": "", **extra}, status=status)


@router.get("/webhooks")
async def webhook_list(request: Request, actor: Owner,
                       done: Annotated[str, Query(max_length=16)] = "") -> Response:
    async with db_of(request).reader() as s:
        subs = await webhooks.list_subscriptions(s, actor)
        counts = {sub.id: await webhooks.delivery_counts(s, sub.id) for sub in subs}
    notice = gettext(request, NOTICES[done]) if done in NOTICES else ""
    return render(request, "backoffice/webhooks.html", {
        "title": gettext(request, N_("Webhooks")), "subs": subs, "counts": counts,
        "base": BASE, "notice": notice})


@router.get("/webhooks/new")
async def new_webhook(request: Request, _actor: Owner) -> Response:
    return _render_form(request, sub=None, values={"url": "", "description": "",
                                                   "topics": [], "enabled": True})


@router.post("/webhooks")
async def create_webhook(request: Request, actor: Owner) -> Response:
    values = _form_values(await checked_form(request))
    data, errors = _validate(request, values)
    if data is None:
        return _render_form(request, sub=None, values=values, errors=errors, status=422)
    try:
        async with db_of(request).uow() as uow:
            created = await webhooks.create_subscription(uow, actor, data,
                                                         settings_of(request))
            await uow.commit()
    except DomainError as exc:
        return _render_form(request, sub=None, values=values, status=exc.status,
                            errors={exc.field or "form": error_message(request, exc, MESSAGES)})
    # The secret is shown now and never again: no redirect that would lose it.
    return await _detail(request, actor, created.id, secret=created.secret, status=201)


async def _detail(request: Request, actor: Actor, webhook_id: int, *, secret: str = "",
                  notice: str = "", before: int | None = None, status_filter: str = "",
                  errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                  status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        sub = await webhooks.get_subscription(s, actor, webhook_id)
        rows = await webhooks.list_deliveries(
            s, actor, DeliveryQuery(webhook_id, status_filter, before), PER_PAGE + 1)
        shown = rows[:PER_PAGE]
        attempts = await webhooks.attempts_of(s, actor, [d.id for d in shown])
        counts = await webhooks.delivery_counts(s, webhook_id)
    return _render_form(
        request, sub=sub, status=status, errors=errors,
        values=values or {"url": sub.url, "description": sub.description,
                          "topics": sub.topics, "enabled": sub.enabled},
        deliveries=shown, attempts=attempts, counts=counts, secret=secret, notice=notice,
        older=shown[-1].id if len(rows) > PER_PAGE else None, status_filter=status_filter)


@router.get("/webhooks/{webhook_id}")
async def webhook_page(
    request: Request, webhook_id: IdPath, actor: Owner,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[str, Query(pattern="^(|pending|delivering|delivered|failed)$")] = "",
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    notice = gettext(request, NOTICES[done]) if done in NOTICES else ""
    return await _detail(request, actor, webhook_id, notice=notice, before=before,
                         status_filter=status)


@router.post("/webhooks/{webhook_id}")
async def update_webhook(request: Request, webhook_id: IdPath, actor: Owner) -> Response:
    values = _form_values(await checked_form(request))
    data, errors = _validate(request, values)
    if data is None:
        return await _detail(request, actor, webhook_id, errors=errors, values=values,
                             status=422)
    try:
        async with db_of(request).uow() as uow:
            await webhooks.update_subscription(uow, actor, webhook_id, data,
                                               settings_of(request))
            await uow.commit()
    except DomainError as exc:
        if exc.code == "webhook_not_found":
            raise
        return await _detail(request, actor, webhook_id, values=values, status=exc.status,
                             errors={exc.field or "form": error_message(request, exc,
                                                                         MESSAGES)})
    return RedirectResponse(f"{BASE}/{webhook_id}?done=saved", status_code=303)


@router.post("/webhooks/{webhook_id}/enabled")
async def toggle_webhook(request: Request, webhook_id: IdPath, actor: Owner) -> Response:
    form = await checked_form(request)
    on = form.get("enabled") == "on"
    async with db_of(request).uow() as uow:
        await webhooks.set_enabled(uow, actor, webhook_id, on)
        await uow.commit()
    return RedirectResponse(f"{BASE}/{webhook_id}?done={'enabled' if on else 'disabled'}",
                            status_code=303)


@router.post("/webhooks/{webhook_id}/secret")
async def rotate_secret(request: Request, webhook_id: IdPath, actor: Owner) -> Response:
    await checked_form(request)
    async with db_of(request).uow() as uow:
        out = await webhooks.rotate_secret(uow, actor, webhook_id)
        await uow.commit()
    return await _detail(request, actor, webhook_id, secret=out.secret)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: IdPath, actor: Owner) -> Response:
    await checked_form(request)

    async def delete() -> None:
        async with db_of(request).uow() as uow:
            await webhooks.delete_subscription(uow, actor, webhook_id)
            await uow.commit()
    await retried(delete)  # as the API does (api/webhooks.py)
    return RedirectResponse(f"{BASE}?done=deleted", status_code=303)


@router.post("/webhooks/{webhook_id}/test")
async def send_test(request: Request, webhook_id: IdPath, actor: Owner) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await webhooks.send_test_event(uow, actor, webhook_id)
            await uow.commit()
    except DomainError as exc:
        if exc.code == "webhook_not_found":
            raise
        return await _detail(request, actor, webhook_id, status=exc.status,
                             errors={"actions": error_message(request, exc, MESSAGES)})
    return RedirectResponse(f"{BASE}/{webhook_id}?done=test", status_code=303)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/again")
async def send_again(request: Request, webhook_id: IdPath, delivery_id: IdPath,
                     actor: Owner) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await webhooks.redeliver(uow, actor, delivery_id, webhook_id)
            await uow.commit()
    except DomainError as exc:
        if exc.code == "webhook_not_found":
            raise
        return await _detail(request, actor, webhook_id, status=exc.status,
                             errors={"log": error_message(request, exc, MESSAGES)})
    return RedirectResponse(f"{BASE}/{webhook_id}?done=again", status_code=303)
