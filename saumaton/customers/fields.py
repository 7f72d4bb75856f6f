"""Preference fields the shop defines (shade, skin type, …): what staff can record about
a customer on the card, in every channel.

A field is free text or a choice from its options. Fields are never deleted: removing
one deactivates it, so the values customers have are kept (cards show them read-only).
Managing fields needs `customers.configure`; each change is audited
(`preference_field.create` / `preference_field.update`, subject ("preference_field", 0),
the key in the data: a field's key is its identity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.customers.models import CustomerPreference, PreferenceField
from saumaton.db.uow import UnitOfWork

FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,49}")
FIELD_KINDS = ("text", "choice")
MAX_LABEL = 100
MAX_OPTION = 200  # a choice is stored as the preference's value (at most 200 characters)
MAX_OPTIONS = 50
MAX_POSITION = 100_000
POSITION_STEP = 10


@dataclass(frozen=True)
class FieldOut:
    key: str
    label: str
    kind: str  # text | choice
    options: tuple[str, ...]
    position: int
    active: bool


@dataclass(frozen=True)
class PreferenceShown:
    """One line of a card's preferences. `editable`: an active field, shown as an input
    (a <select> for a choice); else the value of a removed field, shown read-only."""

    key: str
    label: str
    kind: str
    options: tuple[str, ...]
    value: str
    editable: bool


def _plausible(key: str) -> bool:
    """Could be a key: else not looked up (PostgreSQL refuses NUL even to compare)."""
    return len(key) <= 50 and "\x00" not in key


def _out(f: PreferenceField) -> FieldOut:
    return FieldOut(f.key, f.label, f.kind, tuple(f.options or ()), f.position, f.active)


async def list_fields(session: AsyncSession, *, include_inactive: bool = False
                      ) -> list[FieldOut]:
    """The fields in the order cards show them; only the active ones unless asked."""
    q = select(PreferenceField).order_by(PreferenceField.position, PreferenceField.key)
    if not include_inactive:
        q = q.where(PreferenceField.active.is_(True))
    return [_out(f) for f in (await session.scalars(q)).all()]


async def get_field(session: AsyncSession, key: str) -> FieldOut | None:
    f = await session.get(PreferenceField, key) if _plausible(key) else None
    return _out(f) if f is not None else None


async def card_preferences(session: AsyncSession, customer_id: int) -> list[PreferenceShown]:
    """What a card shows: every active field in order with the customer's value (or ""),
    then values kept under fields that were removed since (read-only)."""
    fields = await list_fields(session, include_inactive=True)
    values = {str(k): str(v) for k, v in (await session.execute(
        select(CustomerPreference.key, CustomerPreference.value)
        .where(CustomerPreference.customer_id == customer_id))).all()}
    shown = [PreferenceShown(f.key, f.label, f.kind, f.options, values.get(f.key, ""), True)
             for f in fields if f.active]
    by_key = {f.key: f for f in fields}
    for key in sorted(k for k in values if k not in by_key or not by_key[k].active):
        f = by_key.get(key)
        shown.append(PreferenceShown(key, f.label if f else key.replace("_", " "),
                                     f.kind if f else "text", f.options if f else (),
                                     values[key], False))
    return shown


# --- validation -----------------------------------------------------------------------------

def _invalid(detail: str, code: str, field: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(detail, code=code, field=field, extra=extra)


def clean_key(key: str) -> str:
    value = key.strip()
    if not FIELD_KEY.fullmatch(value):
        raise _invalid("a key is 1–50 lowercase letters a–z, digits or '_', starting with "
                       "a letter", "invalid_field_key", "key")
    return value


def clean_label(label: str) -> str:
    value = " ".join(label.split())
    if not value:
        raise _invalid("give the field a label", "label_required", "label")
    if len(value) > MAX_LABEL or "\x00" in value:
        raise _invalid(f"a label is at most {MAX_LABEL} characters", "label_too_long",
                       "label", max=MAX_LABEL)
    return value


def parse_options(text: str) -> list[str]:
    """Options as a form gives them: one per line, or separated by commas."""
    return [o for o in re.split(r"[\r\n,]+", text) if o.strip()]


def clean_options(kind: str, options: list[str]) -> list[str]:
    """Trimmed, single-spaced, without repeats, in the order given; none for text."""
    if kind != "choice":
        return []
    out: list[str] = []
    for raw in options:
        value = " ".join(raw.split())
        if len(value) > MAX_OPTION or "\x00" in value:
            raise _invalid(f"an option is at most {MAX_OPTION} characters",
                           "option_too_long", "options", max=MAX_OPTION)
        if value and value not in out:
            out.append(value)
    if not out:
        raise _invalid("a choice needs at least one option", "options_required", "options")
    if len(out) > MAX_OPTIONS:
        raise _invalid(f"at most {MAX_OPTIONS} options", "too_many_options", "options",
                       max=MAX_OPTIONS)
    return out


def clean_position(position: int) -> int:
    if not 0 <= position <= MAX_POSITION:
        raise _invalid(f"a position is a whole number from 0 to {MAX_POSITION}",
                       "invalid_position", "position", max=MAX_POSITION)
    return position


def _configure(actor: Actor) -> None:
    actor.require("customers.configure", everywhere=True)


# --- changes --------------------------------------------------------------------------------

async def create_field(uow: UnitOfWork, actor: Actor, key: str, label: str, kind: str,
                       options: list[str] | None = None, position: int | None = None
                       ) -> FieldOut:
    """A new active field; without a position it goes last. 409 `duplicate_field` when
    the key exists (also a removed field's: reactivate that one instead)."""
    _configure(actor)
    k = clean_key(key)
    text = clean_label(label)
    if kind not in FIELD_KINDS:
        raise _invalid("a field is text or a choice", "invalid_field_kind", "kind")
    opts = clean_options(kind, options or [])
    s = uow.session
    if position is None:
        last = await s.scalar(select(func.max(PreferenceField.position)))
        position = min(int(last or 0) + POSITION_STEP, MAX_POSITION)
    pos = clean_position(position)
    if await s.get(PreferenceField, k) is not None:
        raise Conflict(f"a field '{k}' exists", code="duplicate_field", field="key")
    now = utcnow()
    f = PreferenceField(key=k, label=text, kind=kind, options=opts, position=pos, active=True,
                        created_at=now, updated_at=now)
    s.add(f)
    await s.flush()
    await record(uow, actor, "preference_field.create", "preference_field", 0, {
        "key": k, "label": text, "kind": kind, "options": opts, "position": pos})
    return _out(f)


async def update_field(uow: UnitOfWork, actor: Actor, key: str, *, label: str | None = None,
                       options: list[str] | None = None, position: int | None = None,
                       active: bool | None = None) -> FieldOut:
    """Change what is given; a field's key and kind stay. Values customers already have
    stay as they are, even one no longer among a choice's options. Deactivating
    removes the field from the cards' forms (the values are kept and shown read-only)."""
    _configure(actor)
    f = await uow.session.get(PreferenceField, key) if _plausible(key) else None
    if f is None:
        raise NotFound(f"no preference field '{key}'", code="field_not_found", field="key")
    changes: dict[str, Any] = {}
    if label is not None:
        changes["label"] = clean_label(label)
    if options is not None and f.kind == "choice":
        changes["options"] = clean_options(f.kind, options)
    if position is not None:
        changes["position"] = clean_position(position)
    if active is not None:
        changes["active"] = active
    before = {name: getattr(f, name) for name in changes}
    changed = {name: value for name, value in changes.items() if before[name] != value}
    if changed:
        for name, value in changed.items():
            setattr(f, name, value)
        f.updated_at = utcnow()
        await uow.session.flush()
        await record(uow, actor, "preference_field.update", "preference_field", 0, {
            "key": f.key, "before": {n: before[n] for n in changed}, "after": changed})
    return _out(f)
