"""The shop's settings in the back office (the owner only): business details on
receipts, delivery fees and pickup, return windows (web and each store's), loyalty, the
till's cashier discount limit. Environment variables are the defaults; a saved change
applies at once in this process and, through the "settings.changed" event, in every
other one.

Thin: the rules are in `saumaton.shopsettings.services`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton import i18n
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.shopsettings import services
from saumaton.shopsettings.live import LiveSettings
from saumaton.shopsettings.registry import BY_KEY, REGISTRY, SECTIONS, SettingDef
from saumaton.shopsettings.services import FieldError, SettingView, StoreReturnDays
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_page,
    gettext,
    page_lang,
    page_router,
    render,
)

router = page_router()
BASE = "/backoffice/settings"
Owner = Annotated[Actor, requires(services.PERMISSION, everywhere=True)]

MESSAGES = {
    "required": N_("Fill in this field."),
    "too_long": N_("Use at most %(limit)s characters."),
    "not_a_number": N_("Give a whole number."),
    "not_money": N_("Give an amount in euros, e.g. 5,90."),
    "too_small": N_("Give at least %(limit)s."),
    "too_large": N_("Give at most %(limit)s."),
    "invalid_business_id": N_("This is not a valid business ID (Y-tunnus), e.g. 1234567-1."),
    "reminder_not_before_hold": N_(
        "The reminder must come before the hold ends: fewer days than the hold "
        "(%(limit)s)."),
    "gold_below_silver": N_("The gold limit must be at least the silver limit (%(limit)s)."),
    "invalid": N_("This value is not allowed."),
}
NOTICES = {
    "saved": N_("Settings saved. The shop uses the new values now."),
    "unchanged": N_("Nothing was changed."),
    "reset": N_("The default is back in use."),
}


def live_settings(request: Request) -> LiveSettings:
    live: LiveSettings = request.app.state.live_settings
    return live


def base_settings(request: Request) -> Settings:
    """The environment's settings: the defaults the owner's changes are applied to."""
    return live_settings(request).base


def typed(d: SettingDef, value: Any, lang: str) -> str:
    """A value as the form shows it: money in euros with the language's decimal mark."""
    if d.kind == "money":
        euros = f"{int(value) // 100},{int(value) % 100:02d}"
        return euros if lang == "fi" else euros.replace(",", ".")
    return str(value)


def shown(d: SettingDef, value: Any, lang: str) -> str:
    """A value as text (the default next to a field)."""
    if d.kind == "money":
        return i18n.money(int(value), lang)
    if d.kind == "percent":
        return f"{value} %"
    return str(value)


def _error_text(request: Request, key: str, error: FieldError) -> str:
    message = MESSAGES.get(error.code, MESSAGES["invalid"])
    if error.limit is None:
        return gettext(request, message)
    d = BY_KEY.get(key)
    limit = shown(d, error.limit, page_lang(request)) if d and d.kind == "money" \
        else str(error.limit)
    return gettext(request, message, limit=limit)


async def _render(request: Request, *, values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, notice: str = "",
                  status: int = 200, actor: Actor) -> Response:
    lang = page_lang(request)
    async with db_of(request).reader() as s:
        views, stores = await services.overview(s, actor, base_settings(request))
    by_key: dict[str, SettingView] = {v.definition.key: v for v in views}
    form = dict(values or {})
    for v in views:
        form.setdefault(v.definition.key, typed(v.definition, v.value, lang))
    store_rows: list[StoreReturnDays] = stores
    for st in store_rows:
        form.setdefault(st.field, str(st.return_days))
    sections = [(key, label, [by_key[d.key] for d in REGISTRY if d.section == key])
                for key, label in SECTIONS]
    defaults = {v.definition.key: shown(v.definition, v.default, lang) for v in views}
    response = render(request, "backoffice/settings.html", {
        "title": gettext(request, N_("Settings")), "sections": sections,
        "stores": store_rows, "values": form, "errors": errors or {},
        "defaults": defaults, "notice": notice, "base": BASE, "nav_key": "settings"},
        status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/backoffice/settings")
async def settings_page(request: Request, actor: Owner,
                        done: Annotated[str, Query(max_length=16)] = "") -> Response:
    notice = gettext(request, NOTICES[done]) if done in NOTICES else ""
    return await _render(request, notice=notice, actor=actor)


@router.post("/backoffice/settings")
async def save_settings(request: Request, actor: Owner) -> Response:
    form = await checked_form(request)
    raw = {k: str(v)[:400] for k, v in form.items()
           if k in BY_KEY or k.startswith("return_days_")}
    db = db_of(request)
    try:
        async with db.uow() as uow:
            changed = await services.save(uow, actor, base_settings(request), raw)
            await uow.commit()
    except ValidationFailed as exc:
        found: dict[str, FieldError] = exc.extra.get("errors") or {}
        if not found:
            raise
        errors = {key: _error_text(request, key, err) for key, err in found.items()}
        return await _render(request, values=raw, errors=errors, status=422, actor=actor)
    if changed:
        await live_settings(request).refresh(db)  # this process at once; others by event
    return RedirectResponse(f"{BASE}?done={'saved' if changed else 'unchanged'}",
                            status_code=303)


@router.post("/backoffice/settings/{key}/reset")
async def reset_setting(request: Request, actor: Owner,
                        key: Annotated[str, Path(max_length=64)]) -> Response:
    await checked_form(request)
    if key not in BY_KEY:
        return error_page(request, 404, gettext(request, N_("No such setting.")))
    db = db_of(request)
    try:
        async with db.uow() as uow:
            await services.reset(uow, actor, base_settings(request), key)
            await uow.commit()
    except NotFound:
        return error_page(request, 404, gettext(request, N_("No such setting.")))
    await live_settings(request).refresh(db)
    return RedirectResponse(f"{BASE}?done=reset", status_code=303)
