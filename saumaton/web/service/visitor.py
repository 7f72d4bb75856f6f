"""The chat widget's endpoints (JSON, for static/service/widget.js) and its live stream.

The visitor is known by the `saumaton_chat` cookie (a random token, 30 days), set by
the first message or offline message. Writes need the session's CSRF token in the
X-CSRF-Token header (the widget reads it from its data attribute). Errors are JSON,
whatever went wrong (a domain error, a query value out of range, a busy database):
{"code", "field", "message"} with the message in the page's language, and a 4xx (503
when busy).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData

from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.events.hub import Event, EventHub
from saumaton.service import chat
from saumaton.service.chat_mail import service_address
from saumaton.service.presence import agent_online
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import checked_form, gettext, page_lang, settings_of
from saumaton.web.route_access import public
from saumaton.web.service.common import CHAT_TOPICS, event_stream, message
from saumaton.web.shopper import current_customer_id

INVALID = N_("The chat could not read that. Reload the page and try again.")
BUSY = N_("The shop is very busy right now. Please try again in a moment.")


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


def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A query value the route refused (`after=-1`): 422 naming the field, as the API."""
    errors = exc.errors()
    loc = [str(p) for p in (errors[0].get("loc", ()) if errors else ())]
    field = ".".join(p for p in loc if p not in ("body", "query", "path", "header"))
    return _json({"code": "validation_error", "field": field or None,
                  "message": gettext(request, INVALID)}, 422)


class ChatJsonRoute(APIRoute):
    """The widget's routes answer in JSON, never with an HTML error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except DomainError as exc:
                return _error(request, exc)
            except RequestValidationError as exc:
                return _invalid(request, exc)
            except PoolTimeout:
                response = _json({"code": "busy", "field": None,
                                  "message": gettext(request, BUSY)}, 503)
                response.headers["Retry-After"] = "2"
                return response

        return handler


router = APIRouter(prefix="/service/chat", include_in_schema=False, route_class=ChatJsonRoute,
                   dependencies=[public(
                       "a visitor's own chat, named by the token in their session; "
                       "writes CSRF-checked")])


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
    form = await checked_form(request)
    token = _token(request)
    new_token = None
    if token is None:
        token = new_token = chat.new_visitor_token()
    async with db_of(request).uow() as uow:
        msg = await chat.post_visitor_message(
            uow, token, _text(form, "body"), _text(form, "client_key", 100) or None,
            language=page_lang(request), page=_text(form, "page", 1000),
            customer_id=current_customer_id(request))
        await uow.commit()
    return _json({"message": msg.as_json()}, token=new_token)


@router.post("/identify")
async def identify(request: Request) -> Response:
    form = await checked_form(request)
    async with db_of(request).uow() as uow:
        conv = await chat.identify_visitor(uow, _token(request) or "",
                                           _text(form, "name", 1000),
                                           _text(form, "email", 1000))
        await uow.commit()
    return _json({"conversation": _conversation_json(conv)})


@router.post("/offline")
async def offline(request: Request) -> Response:
    form = await checked_form(request)
    token = _token(request)
    new_token = None
    if token is None:
        token = new_token = chat.new_visitor_token()
    async with db_of(request).uow() as uow:
        conv = await chat.leave_offline_message(
            uow, token, name=_text(form, "name", 1000), email=_text(form, "email", 1000),
            body=_text(form, "message"),
            shop_address=service_address(settings_of(request)),
            language=page_lang(request), page=_text(form, "page", 1000),
            customer_id=current_customer_id(request))
        await uow.commit()
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
