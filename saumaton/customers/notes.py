"""What staff record about a customer: preferences (shade, skin type, …) and notes.

Each change emits `customer.updated` (with the customer's id) in the same transaction,
so views of the customer in any channel can refresh.
"""

from __future__ import annotations

import re

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.customers.card import NoteOut
from saumaton.customers.models import Customer, CustomerNote, CustomerPreference
from saumaton.db.uow import UnitOfWork

PREFERENCE_KEY = re.compile(r"[a-z_]{1,50}")
MAX_PREFERENCE_VALUE = 200
MAX_NOTE = 2000
NOTE_CHANNELS = ("pos", "service", "backoffice")


async def _exists(uow: UnitOfWork, customer_id: int) -> None:
    if await uow.session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")


def _author(actor: Actor) -> str:
    return (actor.name or actor.label)[:200]


async def set_preference(uow: UnitOfWork, actor: Actor, customer_id: int, key: str,
                         value: str) -> bool:
    """Set what suits the customer, e.g. shade = '2N'; an empty value removes the key.
    Keys are lowercase letters and underscores. Returns whether anything changed."""
    actor.require("customers.write")
    if not PREFERENCE_KEY.fullmatch(key):
        raise ValidationFailed("a preference key is 1–50 lowercase letters or '_'",
                               code="invalid_preference_key", field="key")
    clean = " ".join(value.split())
    if len(clean) > MAX_PREFERENCE_VALUE or "\x00" in clean:
        raise ValidationFailed(f"a preference is at most {MAX_PREFERENCE_VALUE} characters",
                               code="preference_too_long", field=key,
                               extra={"max": MAX_PREFERENCE_VALUE})
    await _exists(uow, customer_id)
    s = uow.session
    current = await s.scalar(select(CustomerPreference.value).where(
        CustomerPreference.customer_id == customer_id, CustomerPreference.key == key))
    if (current or "") == clean:
        return False
    if not clean:
        await s.execute(delete(CustomerPreference).where(
            CustomerPreference.customer_id == customer_id, CustomerPreference.key == key))
    else:
        ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(CustomerPreference)
        values = {"value": clean, "updated_by": _author(actor), "updated_at": utcnow()}
        await s.execute(ins.values(customer_id=customer_id, key=key, **values)
                        .on_conflict_do_update(index_elements=["customer_id", "key"],
                                               set_=values))
    uow.emit("customer.updated", {"customer_id": customer_id, "preference": key})
    return True


async def add_note(uow: UnitOfWork, actor: Actor, customer_id: int, body: str,
                   channel: str) -> NoteOut:
    """A note about the customer, signed with the staff member's name and the channel
    (pos | service | backoffice) it was written in."""
    actor.require("customers.write")
    text = body.strip().replace("\r\n", "\n")
    if not text:
        raise ValidationFailed("write the note first", code="note_empty", field="body")
    if len(text) > MAX_NOTE or "\x00" in text:
        raise ValidationFailed(f"a note is at most {MAX_NOTE} characters",
                               code="note_too_long", field="body", extra={"max": MAX_NOTE})
    if channel not in NOTE_CHANNELS:
        raise ValidationFailed(f"unknown channel '{channel}'", code="invalid_channel",
                               field="channel")
    await _exists(uow, customer_id)
    note = CustomerNote(customer_id=customer_id, body=text, author=_author(actor),
                        channel=channel, created_at=utcnow())
    uow.session.add(note)
    await uow.session.flush()
    uow.emit("customer.updated", {"customer_id": customer_id, "note_id": note.id})
    return NoteOut(note.id, note.body, note.author, note.channel, note.created_at)
