"""/api/v1 settings: the business settings the owner edits in the back office
(web/backoffice/settings.py) — business details, delivery and pickup, return windows
(web and each store's), loyalty, the till's discount limit. `settings.write` everywhere
(the owner only), for reading too: the page shows them to the owner only.

Money is in cents. A change applies at once in this process and, through the
"settings.changed" event, in every other one. Thin: the rules are in
`saumaton.shopsettings.services`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, StrictInt, StrictStr, create_model, model_validator

from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import Input
from saumaton.shopsettings import services
from saumaton.shopsettings.live import LiveSettings
from saumaton.shopsettings.registry import REGISTRY, store_field
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["settings"])
Owner = Annotated[Actor, api_requires(services.PERMISSION, everywhere=True)]


class SettingOut(BaseModel):
    key: str
    section: Literal["business", "delivery", "returns", "loyalty", "till"]
    kind: Literal["text", "int", "money", "percent"] = Field(
        description="money: integer cents; percent: whole per cents")
    value: int | str
    default: int | str = Field(description="the environment's value")
    overridden: bool
    minimum: int | None
    maximum: int | None
    max_length: int | None = Field(description="text only")
    updated_at: datetime | None
    updated_by: str


class StoreDaysOut(BaseModel):
    location: str = Field(description="the store's code")
    location_id: int
    name: str
    return_days: int


class SettingsOut(BaseModel):
    settings: list[SettingOut]
    stores: list[StoreDaysOut]


class StoreDaysIn(Input):
    location: str = Field(min_length=1, max_length=32, description="the store's code")
    return_days: StrictInt = Field(ge=1, le=365)


def _field(kind: str, minimum: int | None, maximum: int | None, max_length: int) -> Any:
    if kind == "text":
        return (StrictStr | None, Field(None, min_length=1, max_length=max_length))
    return (StrictInt | None, Field(None, ge=minimum, le=maximum))


_FIELDS: dict[str, Any] = {d.key: _field(d.kind, d.minimum, d.maximum, d.max_length)
                           for d in REGISTRY}
_SettingsBase: type[Input] = create_model(
    "SettingValuesIn", __base__=Input, **_FIELDS)


class SettingsPatch(_SettingsBase):
    """Only the settings sent change; money in cents. Every field is checked first: any
    error answers 422 with every problem in `errors` and changes nothing."""

    store_return_days: list[StoreDaysIn] | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _not_null(self) -> SettingsPatch:
        for key in self.model_fields_set:
            if getattr(self, key) is None:
                raise ValueError(f"{key}: leave a setting out instead of sending null")
        return self


def _live(request: Request) -> LiveSettings:
    live: LiveSettings = request.app.state.live_settings
    return live


async def _overview(request: Request, actor: Actor) -> SettingsOut:
    async with db_of(request).reader() as s:
        views, stores = await services.overview(s, actor, _live(request).base)
    return SettingsOut(
        settings=[SettingOut(
            key=v.definition.key, section=v.definition.section, kind=v.definition.kind,
            value=v.value, default=v.default, overridden=v.overridden,
            minimum=v.definition.minimum, maximum=v.definition.maximum,
            max_length=v.definition.max_length if v.definition.kind == "text" else None,
            updated_at=v.updated_at, updated_by=v.updated_by) for v in views],
        stores=[StoreDaysOut(location=st.code, location_id=st.location_id, name=st.name,
                             return_days=st.return_days) for st in stores])


@router.get("/settings", response_model=SettingsOut,
            summary="Every business setting: value, default, limits (settings.write)")
async def get_settings(request: Request, actor: Owner) -> SettingsOut:
    return await _overview(request, actor)


@router.patch("/settings", response_model=SettingsOut,
              responses={422: {"description": "invalid_settings: `errors` lists each "
                                              "refused key as {code, field, limit}"}},
              summary="Change business settings (settings.write: the owner)")
async def patch_settings(request: Request, body: SettingsPatch, actor: Owner) -> SettingsOut:
    values: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set
                              if k != "store_return_days"}
    db = db_of(request)
    if body.store_return_days:
        async with db.reader() as s:
            stores = {st.code: st for st in await services.store_return_days(s)}
        for i, item in enumerate(body.store_return_days):
            store = stores.get(item.location)
            if store is None:
                raise ValidationFailed(f"no store {item.location!r}",
                                       code="location_not_found",
                                       field=f"store_return_days.{i}.location")
            values[store_field(store.location_id)] = item.return_days
    try:
        async with db.uow() as uow:
            changed = await services.save_typed(uow, actor, _live(request).base, values)
            await uow.commit()
    except ValidationFailed as exc:
        found: dict[str, services.FieldError] = exc.extra.get("errors") or {}
        if not found:
            raise
        first = sorted(found)[0]
        raise ValidationFailed(exc.detail, code=exc.code, field=first, extra={"errors": [
            {"code": err.code, "field": key, "limit": err.limit}
            for key, err in sorted(found.items())]}) from exc
    if changed:
        await _live(request).refresh(db)  # this process at once; others by event
    return await _overview(request, actor)


@router.delete("/settings/{key}", status_code=204, response_class=Response,
               responses={404: {"description": "setting_not_found"}},
               summary="Put a setting back to the environment's default (settings.write)")
async def reset_setting(request: Request, actor: Owner,
                        key: Annotated[str, Path(min_length=1, max_length=64,
                                                 pattern=r"^[a-z_]+$")]) -> Response:
    db = db_of(request)
    async with db.uow() as uow:
        changed = await services.reset(uow, actor, _live(request).base, key)
        await uow.commit()
    if changed:
        await _live(request).refresh(db)
    return Response(status_code=204)
