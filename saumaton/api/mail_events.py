"""/api/v1/mail/events: the mail provider's bounce and complaint reports
(docs/mail.md#bounces-and-complaints). Thin: the rules are in saumaton.mail.events.

Authenticated like every integration: an API token whose staff member has
`mail.events` at every location (the owner's role has it; give the provider's relay a
token of its own, revoked on its own).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from saumaton.core.actor import Actor
from saumaton.mail import events
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["mail"])
Relay = Annotated[Actor, api_requires(events.PERMISSION, everywhere=True)]


async def _record(request: Request, actor: Actor,
                  body: list[events.MailEventIn]) -> events.EventsResult:
    async with db_of(request).uow() as uow:
        result = await events.record_events(uow, actor, body)
        await uow.commit()
    return result


class EventsOut(BaseModel):
    recorded: int = Field(description="events recorded now")
    duplicates: int = Field(description="event ids recorded before: nothing done again")
    consents_withdrawn: list[int] = Field(
        description="customers whose marketing e-mail consent these events turned off")


@router.post("/mail/events", response_model=EventsOut,
             summary="Record bounces and complaints from the mail provider "
                     "(mail.events everywhere)",
             description="A JSON array of events (at most 1,000). A hard bounce or a "
                         "complaint turns off the marketing e-mail consent of every "
                         "customer with that address; a soft bounce is recorded, and the "
                         "third within 30 days counts as a hard one. Idempotent on the "
                         "event `id`. A batch with any invalid event answers 422 with "
                         "every error (`errors`, by position and field) and records "
                         "nothing.")
async def post_events(request: Request, actor: Relay,
                      body: Annotated[list[events.MailEventIn],
                                      Body(max_length=events.MAX_EVENTS)]) -> EventsOut:
    try:
        result = await _record(request, actor, body)
    except IntegrityError:
        # The same event delivered twice at once: the other delivery recorded it first;
        # read again, it is a duplicate.
        result = await _record(request, actor, body)
    return EventsOut(recorded=result.recorded, duplicates=result.duplicates,
                     consents_withdrawn=result.withdrawn)
