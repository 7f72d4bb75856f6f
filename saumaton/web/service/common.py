"""What the visitor's and the agents' routes share: messages for error codes, the SSE
stream over the event hub."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Depends, Request
from sse_starlette.sse import EventSourceResponse

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.events import sse
from saumaton.events.hub import Event, EventHub
from saumaton.service import chat
from saumaton.web.i18n import N_
from saumaton.web.pages import error_message, require_staff


class ServiceAgent:
    """A service desk page's declaration: a staff session with a service agent's role
    (service, manager, owner: `chat.is_agent`); editing canned answers needs a
    manager, checked by the service."""

    async def __call__(self, request: Request) -> Actor:
        actor = await require_staff(request)
        chat.require_agent(actor)
        return actor


def service_agent() -> Any:
    """`actor: Annotated[Actor, service_agent()]` on a /service route."""
    return Depends(ServiceAgent())


MESSAGES: Mapping[str, str] = {
    "message_empty": N_("Write a message first."),
    "message_too_long": N_("A message is at most %(max)s characters."),
    "invalid_text": N_("The text has a character that cannot be stored (NUL): remove it."),
    "invalid_client_key": N_("The message could not be sent. Reload the page and try again."),
    "client_key_reused": N_("The message could not be sent. Reload the page and try again."),
    "message_duplicate": N_("This message was sent already."),
    "invalid_chat_token": N_("The chat could not be started. Reload the page and try again."),
    "conversation_not_found": N_("There is no such conversation."),
    "conversation_closed": N_("This conversation is closed."),
    "name_required": N_("Tell us your name."),
    "name_too_long": N_("That is too long."),
    "email_required": N_("Give your e-mail address."),
    "invalid_email": N_("Check the e-mail address."),
    "not_an_agent": N_("That person does not answer chats."),
    "customer_not_found": N_("There is no such customer."),
    "customer_erased": N_(
        "This customer's data has been erased: the chat cannot be linked to them."),
    "title_required": N_("Give the answer a title."),
    "title_too_long": N_("A title is at most %(max)s characters."),
    "invalid_language": N_("Choose Finnish or English."),
    "canned_not_found": N_("There is no such canned answer."),
    "invalid_customer_query": N_(
        "Type a phone number, an e-mail address, a card number or at least two letters "
        "of a name."),
    "note_empty": N_("Write the note first."),
    "note_too_long": N_("A note is at most %(max)s characters."),
    "preference_too_long": N_("At most %(max)s characters."),
    "unknown_preference": N_("That is not a preference this card knows."),
    "invalid_choice": N_("Choose one of the options."),
    "invalid_tag": N_(
        "A tag is 1–%(max)s letters, digits, spaces, hyphens (-) or underscores (_)."),
}
CHAT_TOPICS = frozenset({"chat.message", "chat.updated"})


def message(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


def last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "")
    if raw.isdigit() and len(raw) < 19 and int(raw) <= MAX_ID:
        return int(raw)
    return None


async def event_stream(request: Request, accepts: Callable[[Event], bool]
                       ) -> EventSourceResponse:
    """Server-sent events that `accepts` takes (`events.sse`), resumed after the
    request's Last-Event-ID."""
    hub: EventHub = request.app.state.hub
    return await sse.event_stream(hub, accepts, last_event_id(request))
