"""What staff record about a customer: preferences (the shop's preference fields, e.g.
shade, skin type; see `customers.fields`) and notes. Tags are in `customers.tags`.

Each change emits `customer.updated` (with the customer's id) in the same transaction,
so views of the customer in any channel can refresh.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.customers.card import NoteOut
from saumaton.customers.fields import get_field
from saumaton.customers.models import Customer, CustomerNote, CustomerPreference
from saumaton.db.uow import UnitOfWork

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
    """Set what suits the customer, e.g. shade = '2N'; an empty value removes it. Only an
    active preference field's key is accepted (422 `unknown_preference`) and, for a
    choice, one of its options (422 `invalid_choice`); the error is on the field `key`.
    Saving the value the customer already has is no change, even one that is no longer
    among the options. Returns whether anything changed."""
    actor.require("customers.write")
    field = await get_field(uow.session, key)
    if field is None or not field.active:
        raise ValidationFailed(f"'{key[:60]}' is not a preference field",
                               code="unknown_preference", field=key[:60])
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
    if clean and field.kind == "choice" and clean not in field.options:
        raise ValidationFailed(f"choose one of: {', '.join(field.options)}",
                               code="invalid_choice", field=key,
                               extra={"options": list(field.options)})
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
