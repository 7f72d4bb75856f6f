"""The shop's settings: the environment's `Settings` are the defaults, the owner's
changes (table shop_settings, one row per changed key) are applied on top.

`effective()` gives the Settings every part of the shop uses; `save()` validates every
field first (all errors at once, nothing saved on any error), audits each change
("settings.change", old → new) and emits "settings.changed" so every app process loads
the new values (`saumaton.shopsettings.live`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum.fi import ytunnus

from saumaton.audit.services import record
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.i18n import parse_money
from saumaton.locations.models import Location
from saumaton.shopsettings.models import ShopSetting
from saumaton.shopsettings.registry import (
    BY_KEY,
    REGISTRY,
    STORE_RETURN_DAYS_MAX,
    STORE_RETURN_DAYS_MIN,
    SettingDef,
    store_field,
)

log = logging.getLogger(__name__)

TOPIC = "settings.changed"
AUDIT_ACTION = "settings.change"
PERMISSION = "settings.write"
_INT = re.compile(r"-?[0-9]{1,9}")


@dataclass(frozen=True)
class FieldError:
    """Why a typed value was refused: a stable code and, for a range, the limit (in the
    field's own unit: cents for money)."""

    code: str
    limit: int | None = None


class Invalid(Exception):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.code)
        self.error = error


@dataclass(frozen=True)
class SettingView:
    definition: SettingDef
    value: Any
    default: Any
    overridden: bool
    updated_at: datetime | None
    updated_by: str


@dataclass(frozen=True)
class StoreReturnDays:
    location_id: int
    code: str
    name: str
    return_days: int

    @property
    def field(self) -> str:
        return store_field(self.location_id)


# --- parsing and checking ----------------------------------------------------------------

def _whole(raw: str, money: bool) -> int:
    t = raw.strip()
    if not t:
        raise Invalid(FieldError("required"))
    negative = t.startswith("-")
    body = t[1:] if negative else t
    if money:
        try:
            cents = parse_money(body)
        except ValueError:
            raise Invalid(FieldError("not_money")) from None
        if cents is None:
            raise Invalid(FieldError("not_money"))
        return -cents if negative else cents
    if not _INT.fullmatch(t):
        raise Invalid(FieldError("not_a_number"))
    return int(t)


_PROBE = Settings.model_construct()  # a scratch model for field validation


def _pydantic_check(d: SettingDef, value: Any) -> Any:
    """The value through the Settings model's own type and limits for the field."""
    try:
        Settings.__pydantic_validator__.validate_assignment(_PROBE, d.key, value)
    except PydanticError:
        raise Invalid(FieldError("invalid")) from None
    return getattr(_PROBE, d.key)


def check(d: SettingDef, value: Any) -> Any:
    """`value` (already typed) checked against the setting's rules; the value to keep."""
    if d.kind == "text":
        if not isinstance(value, str):
            raise Invalid(FieldError("invalid"))
        value = " ".join(value.split())
        if not value:
            raise Invalid(FieldError("required"))
        if d.key == "business_id":
            if not ytunnus.is_valid(value):
                raise Invalid(FieldError("invalid_business_id"))
            value = ytunnus.format(value)
        if len(value) > d.max_length:
            raise Invalid(FieldError("too_long", d.max_length))
    else:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(FieldError("not_a_number"))
        if d.minimum is not None and value < d.minimum:
            raise Invalid(FieldError("too_small", d.minimum))
        if d.maximum is not None and value > d.maximum:
            raise Invalid(FieldError("too_large", d.maximum))
    return _pydantic_check(d, value)


def parse(d: SettingDef, raw: str) -> Any:
    """What the owner typed (money in euros, a decimal comma accepted) as the setting's
    value; raises Invalid."""
    if d.kind == "text":
        return check(d, raw)
    return check(d, _whole(raw, d.kind == "money"))


def parse_store_days(raw: str) -> int:
    days = _whole(raw, money=False)
    if days < STORE_RETURN_DAYS_MIN:
        raise Invalid(FieldError("too_small", STORE_RETURN_DAYS_MIN))
    if days > STORE_RETURN_DAYS_MAX:
        raise Invalid(FieldError("too_large", STORE_RETURN_DAYS_MAX))
    return days


def _cross_checks(values: Mapping[str, Any]) -> dict[str, FieldError]:
    errors: dict[str, FieldError] = {}
    if values["pickup_reminder_days_before"] >= values["pickup_hold_days"]:
        errors["pickup_reminder_days_before"] = FieldError(
            "reminder_not_before_hold", int(values["pickup_hold_days"]))
    if values["loyalty_gold_from_cents"] < values["loyalty_silver_from_cents"]:
        errors["loyalty_gold_from_cents"] = FieldError(
            "gold_below_silver", int(values["loyalty_silver_from_cents"]))
    return errors


# --- reading -----------------------------------------------------------------------------

async def _rows(s: AsyncSession) -> dict[str, ShopSetting]:
    return {r.key: r for r in (await s.scalars(select(ShopSetting))).all()}


def _apply(base: Settings, rows: Mapping[str, ShopSetting]) -> Settings:
    update: dict[str, Any] = {}
    for key, row in rows.items():
        d = BY_KEY.get(key)
        if d is None:
            continue
        try:
            update[key] = check(d, row.value)
        except Invalid as exc:  # e.g. stored before a rule tightened: the default holds
            log.warning("shop setting %s=%r ignored: %s", key, row.value, exc.error.code)
    merged = base.model_copy(update=update)
    if _cross_checks({d.key: getattr(merged, d.key) for d in REGISTRY}):
        log.warning("shop settings conflict with each other (check them in the back office)")
    return merged


async def effective(s: AsyncSession, base: Settings) -> Settings:
    """`base` (the environment's settings) with the owner's changes applied."""
    return _apply(base, await _rows(s))


async def overview(s: AsyncSession, actor: Actor, base: Settings
                   ) -> tuple[list[SettingView], list[StoreReturnDays]]:
    """Every editable setting (value, default, overridden?) and each store's return days."""
    actor.require(PERMISSION, everywhere=True)
    rows = await _rows(s)
    current = _apply(base, rows)
    views = [SettingView(d, getattr(current, d.key), getattr(base, d.key),
                         d.key in rows and getattr(current, d.key) != getattr(base, d.key),
                         rows[d.key].updated_at if d.key in rows else None,
                         rows[d.key].updated_by if d.key in rows else "")
             for d in REGISTRY]
    return views, await store_return_days(s)


async def store_return_days(s: AsyncSession) -> list[StoreReturnDays]:
    stores = (await s.scalars(select(Location).where(Location.kind == "store")
                              .order_by(Location.id))).all()
    return [StoreReturnDays(loc.id, loc.code, loc.name, loc.return_days) for loc in stores]


# --- changing ----------------------------------------------------------------------------

async def save(uow: UnitOfWork, actor: Actor, base: Settings, raw: Mapping[str, str]
               ) -> list[str]:
    """Apply what the owner typed (`raw`: a setting's key, or `store_field(id)` for a
    store's return days; keys left out stay as they are). Every field is checked first;
    any error raises ValidationFailed (code "invalid_settings", extra["errors"]: field →
    FieldError) and nothing changes. Returns the keys that changed."""
    return await _save(uow, actor, base, raw, parse, parse_store_days)


def _typed_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(FieldError("not_a_number"))
    return parse_store_days(str(value))


async def save_typed(uow: UnitOfWork, actor: Actor, base: Settings,
                     values: Mapping[str, Any]) -> list[str]:
    """`save` for typed values (the API): money in cents, counts as integers, text as
    text; `store_field(id)` keys hold a store's return days. Same checks, audit and
    announcement; returns the keys that changed."""
    return await _save(uow, actor, base, values, check, _typed_days)


async def _save(uow: UnitOfWork, actor: Actor, base: Settings, raw: Mapping[str, Any],
                value_of: Callable[[SettingDef, Any], Any],
                days_of: Callable[[Any], int]) -> list[str]:
    actor.require(PERMISSION, everywhere=True)
    s = uow.session
    rows = await _rows(s)
    current = _apply(base, rows)
    stores = await store_return_days(s)
    errors: dict[str, FieldError] = {}
    new: dict[str, Any] = {}
    for d in REGISTRY:
        if d.key in raw:
            try:
                new[d.key] = value_of(d, raw[d.key])
            except Invalid as exc:
                errors[d.key] = exc.error
    new_days: dict[int, int] = {}
    for store in stores:
        if store.field in raw:
            try:
                new_days[store.location_id] = days_of(raw[store.field])
            except Invalid as exc:
                errors[store.field] = exc.error
    merged = {d.key: new.get(d.key, getattr(current, d.key)) for d in REGISTRY}
    for key, err in _cross_checks(merged).items():
        errors.setdefault(key, err)
    if errors:
        raise ValidationFailed(f"{len(errors)} settings are not valid: "
                               + ", ".join(sorted(errors)),
                               code="invalid_settings", extra={"errors": errors})
    changed: list[str] = []
    now = utcnow()
    for key, value in new.items():
        old = getattr(current, key)
        if value == old:
            continue
        await _store(uow, actor, base, rows.get(key), key, value, now)
        await record(uow, actor, AUDIT_ACTION, "setting", 0,
                     {"key": key, "old": old, "new": value})
        changed.append(key)
    for store in stores:
        days = new_days.get(store.location_id)
        if days is None or days == store.return_days:
            continue
        loc = await s.get(Location, store.location_id)
        assert loc is not None
        loc.return_days = days
        await record(uow, actor, AUDIT_ACTION, "location", store.location_id,
                     {"key": "return_days", "location": store.code,
                      "old": store.return_days, "new": days})
        changed.append(store.field)
    if changed:
        await s.flush()
        uow.emit(TOPIC, {"keys": changed})
    return changed


async def _store(uow: UnitOfWork, actor: Actor, base: Settings, row: ShopSetting | None,
                 key: str, value: Any, now: datetime) -> None:
    """The override row for `key`: none when the value is the default again."""
    if value == getattr(base, key):
        if row is not None:
            await uow.session.delete(row)
        return
    if row is None:
        uow.session.add(ShopSetting(key=key, value=value, updated_at=now,
                                    updated_by=actor.label))
    else:
        row.value, row.updated_at, row.updated_by = value, now, actor.label


async def reset(uow: UnitOfWork, actor: Actor, base: Settings, key: str) -> bool:
    """Back to the environment's default (the override row removed); False when the key
    was not overridden. Audited and announced like `save`."""
    actor.require(PERMISSION, everywhere=True)
    if key not in BY_KEY:
        raise NotFound(f"no setting {key!r}", code="setting_not_found")
    rows = await _rows(uow.session)
    if key not in rows:
        return False
    old = getattr(_apply(base, rows), key)
    await uow.session.execute(delete(ShopSetting).where(ShopSetting.key == key))
    default = getattr(base, key)
    if old != default:
        await record(uow, actor, AUDIT_ACTION, "setting", 0,
                     {"key": key, "old": old, "new": default, "reset": True})
    uow.emit(TOPIC, {"keys": [key]})
    return True
