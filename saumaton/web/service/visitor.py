"""The chat widget's endpoints (JSON, for static/service/widget.js) and its live stream.

The visitor is known by the `saumaton_chat` cookie (a random token, 30 days), set by
the first message or offline message. Writes need the session's CSRF token in the
X-CSRF-Token header (the widget reads it from its data attribute). Errors are JSON:
{"code", "field", "message"} with the message in the page's language.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData

from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.events.hub import Event, EventHub
from saumaton.service import chat
from saumaton.service.presence import agent_online
from saumaton.web.auth import db_of
from saumaton.web.pages import checked_form, page_lang, page_router, settings_of
from saumaton.web.service.common import CHAT_TOPICS, event_stream, message
from saumaton.web.shopper import current_customer_id

router = page_router("/service/chat")


def _token(request: Request) -> str | None:
    return chat.valid_token(request.cookies.get(chat.CHAT_COOKIE))


def _text(form: FormData, name: str, max_len: int = 4000) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def _json(data: dict[str, Any], status: int = 200, token: str | None = None) -> JSONResponse:
    response = JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})
    if token is not None:
        response.set_cookie(chat.CHAT_COOKIE, token, max_age=chat.COOKIE_MAX_AGE,
                            httponly=True, samesite="lax", path="/")
    return response


def _error(request: Request, exc: DomainError) -> JSONResponse:
    return _json({"code": exc.code, "field": exc.field, "message": message(request, exc)},
                 exc.status)


async def _checked(request: Request) -> FormData | JSONResponse:
    try:
        return await checked_form(request)
    except DomainError as exc:
        return _error(request, exc)


def _hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.hub
    return hub


def _conversation_json(c: chat.ConversationOut) -> dict[str, Any]:
    return {"id": c.id, "status": c.status, "identified": bool(c.customer_id or c.email),
            "name": c.name, "email": c.email}


@router.get("/state")
async def state(request: Request) -> Response:
    """Whether an agent is online, and the visitor's open chat with its messages."""
    token = _token(request)
    async with db_of(request).reader() as s:
        view = await chat.visitor_view(s, token)
    return _json({
        "online": await agent_online(_hub(request)),
        "signed_in": current_customer_id(request) is not None,
        "conversation": _conversation_json(view.conversation) if view else None,
        "messages": [m.as_json() for m in view.messages] if view else [],
    })


@router.get("/messages")
async def messages_after(request: Request,
                         after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> Response:
    token = _token(request)
    async with db_of(request).reader() as s:
        view = await chat.visitor_view(s, token)
    if view is None:
        return _json({"conversation": None, "messages": []})
    return _json({"conversation": _conversation_json(view.conversation),
                  "messages": [m.as_json() for m in view.messages if m.id > after]})


@router.post("/messages")
async def send(request: Request) -> Response:
    form = await _checked(request)
    if isinstance(form, JSONResponse):
        return form
    token = _token(request)
    new_token = None
    if token is None:
        token = new_token = chat.new_visitor_token()
    try:
        async with db_of(request).uow() as uow:
            msg = await chat.post_visitor_message(
                uow, token, _text(form, "body"), _text(form, "client_key", 100) or None,
                language=page_lang(request), page=_text(form, "page", 1000),
                customer_id=current_customer_id(request))
            await uow.commit()
    except DomainError as exc:
        return _error(request, exc)
    return _json({"message": msg.as_json()}, token=new_token)


@router.post("/identify")
async def identify(request: Request) -> Response:
    form = await _checked(request)
    if isinstance(form, JSONResponse):
        return form
    try:
        async with db_of(request).uow() as uow:
            conv = await chat.identify_visitor(uow, _token(request) or "",
                                               _text(form, "name", 1000),
                                               _text(form, "email", 1000))
            await uow.commit()
    except DomainError as exc:
        return _error(request, exc)
    return _json({"conversation": _conversation_json(conv)})


def _shop_address(request: Request) -> str:
    """Where offline messages are mailed: SAUMATON_SERVICE_EMAIL, else the shop's own
    address (SAUMATON_MAIL_FROM)."""
    settings = settings_of(request)
    return (settings.service_email or parseaddr(settings.mail_from)[1]
            or settings.mail_from)


@router.post("/offline")
async def offline(request: Request) -> Response:
    form = await _checked(request)
    if isinstance(form, JSONResponse):
        return form
    token = _token(request)
    new_token = None
    if token is None:
        token = new_token = chat.new_visitor_token()
    try:
        async with db_of(request).uow() as uow:
            conv = await chat.leave_offline_message(
                uow, token, name=_text(form, "name", 1000), email=_text(form, "email", 1000),
                body=_text(form, "message"), shop_address=_shop_address(request),
                language=page_lang(request), page=_text(form, "page", 1000),
                customer_id=current_customer_id(request))
            await uow.commit()
    except DomainError as exc:
        return _error(request, exc)
    return _json({"conversation": _conversation_json(conv)}, token=new_token)


@router.get("/stream", response_class=EventSourceResponse)
async def stream(request: Request) -> Response:
    """The visitor's own chat events (by the cookie's token), live."""
    token = _token(request)
    if token is None:
        return _json({"code": "no_chat", "field": None, "message": ""}, 404)
    key = chat.visitor_key(chat.token_hash(token))

    def accepts(e: Event) -> bool:
        return e.topic in CHAT_TOPICS and e.payload.get("visitor") == key

    return await event_stream(request, accepts)
