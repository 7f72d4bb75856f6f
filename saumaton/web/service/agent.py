"""The service desk for agents (/service): the conversation queue, one conversation with
its messages, the reply box with canned answers, assignment, closing, the customer linked
to the chat with their card and its contact, consent, preference, tag and note forms;
canned answers for managers; the agents' live stream and presence heartbeat. Routes only
translate HTTP to saumaton.service and saumaton.customers."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from saumaton.core.types import MAX_ID
from saumaton.customers.card import CustomerCard, CustomerMatch, customer_card, find_customers
from saumaton.customers.fields import list_fields
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.tags import add_tag, remove_tag
from saumaton.events.hub import Event, EventHub
from saumaton.service import canned, chat, presence
from saumaton.web import customer_contact
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_page,
    gettext,
    is_htmx,
    page_router,
    render,
    settings_of,
)
from saumaton.web.service.common import CHAT_TOPICS, event_stream, message, service_agent

router = page_router("/service")
ConvId = Annotated[int, Path(ge=1, le=MAX_ID)]
CannedId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ViewQ = Annotated[str, Query(max_length=20)]
VIEW_LABELS = {"open": N_("Open"), "mine": N_("Mine"), "unassigned": N_("Unassigned"),
               "closed": N_("Closed")}


def _text(form: FormData, name: str, max_len: int = 4000) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _view(value: str) -> str:
    return value if value in VIEW_LABELS else "open"


async def _list(request: Request, actor: Actor, view: str) -> list[chat.ConversationOut]:
    async with db_of(request).reader() as s:
        return await chat.list_conversations(s, actor, view)


async def _card(request: Request, actor: Actor, customer_id: int | None) -> CustomerCard | None:
    if customer_id is None or not actor.can("customers.read"):
        return None
    try:
        async with db_of(request).reader() as s:
            return await customer_card(s, actor, customer_id, settings=settings_of(request))
    except NotFound:
        return None


async def _context(request: Request, actor: Actor, conversation_id: int | None, view: str,
                   **extra: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "title": gettext(request, N_("Customer service")), "actor": actor, "view": view,
        "views": [(k, gettext(request, v)) for k, v in VIEW_LABELS.items()],
        "conversations": await _list(request, actor, view), "conv": None, "messages": [],
        "card": None, "canned": [], "agents": [], "errors": {}, "values": {},
        "matches": None, "q": "", "saved": "", "reply_key": secrets.token_hex(16),
        "can_write": actor.can("customers.write"), "is_manager": chat.is_manager(actor),
    }
    if conversation_id is not None:
        async with db_of(request).reader() as s:
            detail = await chat.get_conversation(s, actor, conversation_id)
            ctx["canned"] = await canned.list_canned(s, actor, detail.conversation.language)
            ctx["agents"] = await chat.agents(s)
        ctx["conv"] = detail.conversation
        ctx["messages"] = detail.messages
        ctx["card"] = await _card(request, actor, detail.conversation.customer_id)
        ctx["title"] = detail.conversation.label or gettext(request, N_("Visitor"))
    ctx.update(extra)
    return ctx


@router.get("")
async def desk(request: Request,
        actor: Annotated[Actor, service_agent()], view: ViewQ = "open") -> Response:
    return _no_store(render(request, "service/desk.html",
                            await _context(request, actor, None, _view(view))))


@router.get("/list")
async def conversation_list(request: Request,
        actor: Annotated[Actor, service_agent()], view: ViewQ = "open",
                            current: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> Response:
    v = _view(view)
    return _no_store(render(request, "service/_list.html", {
        "conversations": await _list(request, actor, v), "view": v, "current": current,
        "actor": actor}))


@router.get("/c/{conversation_id}")
async def conversation_page(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId,
                            view: ViewQ = "open") -> Response:
    return _no_store(render(request, "service/desk.html",
                            await _context(request, actor, conversation_id, _view(view))))


@router.get("/c/{conversation_id}/messages")
async def messages(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    async with db_of(request).reader() as s:
        detail = await chat.get_conversation(s, actor, conversation_id)
    return _no_store(render(request, "service/_messages.html", {
        "conv": detail.conversation, "messages": detail.messages}))


@router.get("/c/{conversation_id}/head")
async def head(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    async with db_of(request).reader() as s:
        detail = await chat.get_conversation(s, actor, conversation_id)
        agents = await chat.agents(s)
    return _no_store(render(request, "service/_head.html", {
        "conv": detail.conversation, "agents": agents, "actor": actor, "errors": {}}))


@router.get("/c/{conversation_id}/customer")
async def customer(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    """The customer beside the chat (refreshed when the visitor is recognised)."""
    async with db_of(request).reader() as s:
        detail = await chat.get_conversation(s, actor, conversation_id)
    return _no_store(render(request, "service/_customer.html", {
        "conv": detail.conversation,
        "card": await _card(request, actor, detail.conversation.customer_id),
        "errors": {}, "values": {}, "saved": "", "can_write": actor.can("customers.write"),
        "matches": None, "q": ""}))


@router.post("/c/{conversation_id}/reply")
async def reply(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    form = await checked_form(request)
    body = _text(form, "body")
    key = _text(form, "client_key", 100) or None
    errors: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            await chat.post_agent_message(uow, actor, conversation_id, body, key,
                                          settings=settings_of(request))
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        errors["body"] = message(request, exc)
    if not is_htmx(request):
        if errors:
            return _no_store(render(request, "service/desk.html", await _context(
                request, actor, conversation_id, "open", errors=errors,
                values={"body": body}), status=422))
        return RedirectResponse(f"/service/c/{conversation_id}", status_code=303)
    async with db_of(request).reader() as s:
        detail = await chat.get_conversation(s, actor, conversation_id)
        answers = await canned.list_canned(s, actor, detail.conversation.language)
    return _no_store(render(request, "service/_reply.html", {
        "conv": detail.conversation, "messages": detail.messages, "canned": answers,
        "errors": errors, "values": {"body": body} if errors else {},
        "reply_key": key if errors and key else secrets.token_hex(16), "oob": not errors},
        status=422 if errors else 200))


def _staff_choice(value: str, actor: Actor) -> int | None:
    if value == "me":
        return actor.staff_id
    if value in ("", "none"):
        return None
    if value.isdigit() and len(value) < 10:
        return int(value)
    raise ValidationFailed("choose an agent", code="not_an_agent", field="staff_id")


@router.post("/c/{conversation_id}/assign")
async def assign(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    form = await checked_form(request)
    try:
        staff_id = _staff_choice(_text(form, "staff_id", 20), actor)
        async with db_of(request).uow() as uow:
            await chat.assign(uow, actor, conversation_id, staff_id)
            await uow.commit()
    except ValidationFailed as exc:
        return _no_store(render(request, "service/desk.html", await _context(
            request, actor, conversation_id, "open",
            errors={"staff_id": message(request, exc)}), status=422))
    return RedirectResponse(f"/service/c/{conversation_id}", status_code=303)


@router.post("/c/{conversation_id}/close")
async def close(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    await checked_form(request)
    async with db_of(request).uow() as uow:
        await chat.close(uow, actor, conversation_id)
        await uow.commit()
    return RedirectResponse(f"/service/c/{conversation_id}", status_code=303)


@router.get("/c/{conversation_id}/customers/find")
async def find(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId,
               q: Annotated[str, Query(max_length=400)] = "") -> Response:
    errors: dict[str, str] = {}
    matches: list[CustomerMatch] = []
    try:
        async with db_of(request).reader() as s:
            matches = await find_customers(s, actor, q)
    except ValidationFailed as exc:
        errors["q"] = message(request, exc)
    if not is_htmx(request):
        return _no_store(render(request, "service/desk.html", await _context(
            request, actor, conversation_id, "open", matches=matches, q=q, errors=errors),
            status=422 if errors else 200))
    return _no_store(render(request, "service/_matches.html", {
        "conversation_id": conversation_id, "matches": matches, "errors": errors, "q": q},
        status=422 if errors else 200))


@router.post("/c/{conversation_id}/customer")
async def link(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    form = await checked_form(request)
    raw = _text(form, "customer_id", 20)
    customer_id = int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ID else None
    if raw and customer_id is None:
        return error_page(request, 422, gettext(request, N_("There is no such customer.")))
    try:
        async with db_of(request).uow() as uow:
            await chat.link_customer(uow, actor, conversation_id, customer_id)
            await uow.commit()
    except (NotFound, Conflict) as exc:  # no such customer, or an erased one
        if exc.code == "conversation_not_found":
            raise
        return error_page(request, exc.status, message(request, exc))
    return RedirectResponse(f"/service/c/{conversation_id}", status_code=303)


@router.post("/c/{conversation_id}/notes")
async def note(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    form = await checked_form(request)
    body = _text(form, "body", 4000)
    async with db_of(request).reader() as s:
        detail = await chat.get_conversation(s, actor, conversation_id)
    customer_id = detail.conversation.customer_id
    if customer_id is None:
        return error_page(request, 409, gettext(request, N_("Link the chat to a customer first.")))
    errors: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            await add_note(uow, actor, customer_id, body, "service")
            await uow.commit()
    except ValidationFailed as exc:
        errors["body"] = message(request, exc)
    if not is_htmx(request):
        if errors:
            return _no_store(render(request, "service/desk.html", await _context(
                request, actor, conversation_id, "open", errors=errors,
                values={"body": body}), status=422))
        return RedirectResponse(f"/service/c/{conversation_id}", status_code=303)
    return _no_store(render(request, "service/_customer.html", {
        "conv": detail.conversation, "card": await _card(request, actor, customer_id),
        "errors": errors, "values": {"body": body} if errors else {},
        "saved": "" if errors else "note", "can_write": actor.can("customers.write"),
        "matches": None, "q": ""}, status=422 if errors else 200))


async def _linked(request: Request, actor: Actor, conversation_id: int
                  ) -> tuple[chat.ConversationOut, int | None]:
    async with db_of(request).reader() as s:
        detail = await chat.get_conversation(s, actor, conversation_id)
    return detail.conversation, detail.conversation.customer_id


async def _customer_answer(request: Request, actor: Actor, conv: chat.ConversationOut,
                           customer_id: int, errors: dict[str, str], values: dict[str, str],
                           saved: str) -> Response:
    """After a card form: the customer panel (htmx) or back to the conversation."""
    status = 422 if errors else 200
    if not is_htmx(request):
        if errors:
            return _no_store(render(request, "service/desk.html", await _context(
                request, actor, conv.id, "open", errors=errors, values=values),
                status=status))
        return RedirectResponse(f"/service/c/{conv.id}", status_code=303)
    return _no_store(render(request, "service/_customer.html", {
        "conv": conv, "card": await _card(request, actor, customer_id), "errors": errors,
        "values": values if errors else {}, "saved": "" if errors else saved,
        "can_write": actor.can("customers.write"), "matches": None, "q": ""}, status=status))


def _unlinked(request: Request) -> Response:
    return error_page(request, 409, gettext(request, N_("Link the chat to a customer first.")))


@router.post("/c/{conversation_id}/preferences")
async def preferences(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId) -> Response:
    """The linked customer's preference fields; all or nothing, like at the till."""
    form = await checked_form(request)
    conv, customer_id = await _linked(request, actor, conversation_id)
    if customer_id is None:
        return _unlinked(request)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            keys = [f.key for f in await list_fields(uow.session)]
            values = {k: _text(form, k, 400) for k in keys if k in form}
            for key, value in values.items():
                await set_preference(uow, actor, customer_id, key, value)
            await uow.commit()
    except ValidationFailed as exc:
        errors[exc.field if exc.field in values else "preferences"] = message(request, exc)
    return await _customer_answer(request, actor, conv, customer_id, errors, values,
                                  "preferences")


async def _tag(request: Request, actor: Actor, conversation_id: int, add: bool) -> Response:
    form = await checked_form(request)
    conv, customer_id = await _linked(request, actor, conversation_id)
    if customer_id is None:
        return _unlinked(request)
    tag = _text(form, "tag", 200)
    errors: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            if add:
                await add_tag(uow, actor, customer_id, tag)
            else:
                await remove_tag(uow, actor, customer_id, tag)
            await uow.commit()
    except ValidationFailed as exc:
        errors["tag"] = message(request, exc)
    return await _customer_answer(request, actor, conv, customer_id, errors, {"tag": tag},
                                  "tag" if add else "untag")


@router.post("/c/{conversation_id}/tags")
async def tag_add(request: Request, actor: Annotated[Actor, service_agent()],
                  conversation_id: ConvId) -> Response:
    return await _tag(request, actor, conversation_id, add=True)


@router.post("/c/{conversation_id}/tags/remove")
async def tag_remove(request: Request, actor: Annotated[Actor, service_agent()],
                  conversation_id: ConvId) -> Response:
    return await _tag(request, actor, conversation_id, add=False)


@router.post("/c/{conversation_id}/contact/{action}")
async def contact(request: Request,
        actor: Annotated[Actor, service_agent()], conversation_id: ConvId,
                  action: customer_contact.Action) -> Response:
    """The linked customer's contact forms: name, add an e-mail or phone, remove one,
    issue a card, the marketing consents (recorded as given at the service desk)."""
    form = await checked_form(request)
    conv, customer_id = await _linked(request, actor, conversation_id)
    if customer_id is None:
        return _unlinked(request)
    try:
        done = await customer_contact.apply(request, actor, customer_id, action, form,
                                            "service")
    except NotFound as exc:
        return error_page(request, 404, message(request, exc))
    if not is_htmx(request):
        if done.errors:
            return _no_store(render(request, "service/desk.html", await _context(
                request, actor, conv.id, "open", errors=done.errors, values=done.values),
                status=done.status))
        return RedirectResponse(f"/service/c/{conv.id}", status_code=303)
    return _no_store(render(request, "service/_customer.html", {
        "conv": conv, "card": await _card(request, actor, customer_id),
        "errors": done.errors, "values": done.values, "saved": done.saved,
        "can_write": actor.can("customers.write"), "matches": None, "q": ""},
        status=done.status))


@router.post("/heartbeat")
async def heartbeat(request: Request,
        actor: Annotated[Actor, service_agent()]) -> Response:
    """The agent's page is open (every 20 s); `away=1` when it closes."""
    form = await checked_form(request)
    hub: EventHub = request.app.state.hub
    await presence.heartbeat(hub, actor, away=_text(form, "away", 5) == "1")
    return Response(status_code=204)


@router.get("/stream", response_class=EventSourceResponse)
async def stream(request: Request,
        _allowed: Annotated[Actor, service_agent()]) -> Response:
    """Every chat event, live, for the agents' page."""

    def accepts(e: Event) -> bool:
        return e.topic in CHAT_TOPICS

    return await event_stream(request, accepts)


# --- canned answers (managers) -------------------------------------------------------------

async def _canned_page(request: Request, actor: Actor, *, status: int = 200,
                       errors: dict[str, str] | None = None, values: dict[str, str] | None
                       = None, editing: int | None = None) -> Response:
    async with db_of(request).reader() as s:
        answers = await canned.list_canned(s, actor)
    return _no_store(render(request, "service/canned.html", {
        "title": gettext(request, N_("Canned answers")), "answers": answers,
        "errors": errors or {}, "values": values or {}, "editing": editing,
        "is_manager": chat.is_manager(actor)}, status=status))


@router.get("/canned")
async def canned_page(request: Request,
        actor: Annotated[Actor, service_agent()]) -> Response:
    return await _canned_page(request, actor)


def _canned_values(form: FormData) -> dict[str, str]:
    return {"title": _text(form, "title", 1000), "body": _text(form, "body"),
            "language": _text(form, "language", 5) or "fi"}


@router.post("/canned")
async def canned_create(request: Request,
        actor: Annotated[Actor, service_agent()]) -> Response:
    form = await checked_form(request)
    values = _canned_values(form)
    try:
        async with db_of(request).uow() as uow:
            await canned.create_canned(uow, actor, **values)
            await uow.commit()
    except ValidationFailed as exc:
        return await _canned_page(request, actor, status=422, values=values,
                                  errors={exc.field or "title": message(request, exc)})
    return RedirectResponse("/service/canned", status_code=303)


@router.post("/canned/{canned_id}")
async def canned_update(request: Request,
        actor: Annotated[Actor, service_agent()], canned_id: CannedId) -> Response:
    form = await checked_form(request)
    values = _canned_values(form)
    try:
        async with db_of(request).uow() as uow:
            await canned.update_canned(uow, actor, canned_id, **values)
            await uow.commit()
    except ValidationFailed as exc:
        return await _canned_page(request, actor, status=422, values=values, editing=canned_id,
                                  errors={exc.field or "title": message(request, exc)})
    return RedirectResponse("/service/canned", status_code=303)


@router.post("/canned/{canned_id}/delete")
async def canned_delete(request: Request,
        actor: Annotated[Actor, service_agent()], canned_id: CannedId) -> Response:
    await checked_form(request)
    async with db_of(request).uow() as uow:
        await canned.delete_canned(uow, actor, canned_id)
        await uow.commit()
    return RedirectResponse("/service/canned", status_code=303)
