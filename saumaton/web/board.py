"""The staff knowledge board in every staff channel (`templates/_board.html`):

- `GET /pos/{code}/board` — the till's board (the store's notices and everyone's);
- `GET /backoffice/board` — every store's board with the notice form; managers write
  and end notices (`POST /backoffice/board/notices`, `.../{id}/end`);
- `GET /board` — the fragment alone (the service desk loads it; `?store=CODE` for one
  store's board).
Routes only translate HTTP to `saumaton.service.board`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.core.types import MAX_INT32
from saumaton.locations.services import list_locations, location_by_code
from saumaton.service.board import (
    NoticeIn,
    board,
    can_write_notices,
    create_notice,
    end_notice,
)
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    page_router,
    render,
    settings_of,
)
from saumaton.web.pos.routes import Till, till_requires

router = page_router()
NoticeId = Annotated[int, Path(ge=1, le=MAX_INT32)]
FIELDS = ("title", "body", "location", "starts_at", "ends_at")
MESSAGES: Mapping[str, str] = {
    "required": N_("Fill in this field."),
    "too_long": N_("At most %(max)s characters."),
    "ends_before_start": N_("The end must be after the start and in the future."),
    "location_not_found": N_("There is no such store."),
    "invalid_time": N_("Give a date and time, e.g. 24.12.2026 18:00."),
    "notice_not_found": N_("There is no such notice."),
    "notice_ended": N_("This notice has ended already."),
}


def _message(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/pos/{code}/board")
async def pos_board(request: Request,
        till: Annotated[Till, till_requires("orders.read")]) -> Response:
    async with db_of(request).reader() as s:
        data = await board(s, till.actor, till.location.id)
    return _no_store(render(request, "pos/board.html", {
        "title": gettext(request, N_("Staff board")), "till": till, "board": data,
        "can_manage": False}))


@router.get("/board")
async def board_fragment(
        request: Request,
        actor: Annotated[Actor, requires("orders.read")],
        store: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    async with db_of(request).reader() as s:
        location_id = (await location_by_code(s, store)).id if store else None
        data = await board(s, actor, location_id)
    return _no_store(render(request, "_board.html", {"board": data, "can_manage": False}))


async def _backoffice(request: Request, actor: Actor, *, status: int = 200,
                      errors: dict[str, str] | None = None,
                      values: dict[str, str] | None = None, saved: str = "") -> Response:
    async with db_of(request).reader() as s:
        data = await board(s, actor)
        stores = [loc for loc in await list_locations(s) if loc.kind == "store"
                  and can_write_notices(actor, loc.id)]
    return _no_store(render(request, "backoffice/board.html", {
        "title": gettext(request, N_("Staff board")), "board": data,
        "can_manage": can_write_notices(actor), "stores": stores,
        "everyone_ok": actor.can("staff.read", everywhere=True),
        "errors": errors or {}, "values": values or {}, "saved": saved}, status=status))


@router.get("/backoffice/board")
async def backoffice_board(request: Request,
        actor: Annotated[Actor, requires("orders.read")]) -> Response:
    return await _backoffice(request, actor, saved=request.query_params.get("saved", "")[:10])


def _text(form: FormData, name: str, max_len: int = 20000) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def _local_time(value: str, field: str, zone: str) -> datetime | None:
    """A datetime-local value ('2026-12-24T18:00') in the shop's time zone, as UTC."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationFailed("not a date and time", code="invalid_time",
                               field=field) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        return parsed.astimezone(ZoneInfo("UTC"))
    except (OverflowError, ValueError) as exc:
        raise ValidationFailed("not a date and time", code="invalid_time",
                               field=field) from exc


@router.post("/backoffice/board/notices")
async def add_notice(request: Request,
        actor: Annotated[Actor, requires("notices.write")]) -> Response:
    form = await checked_form(request)
    values = {name: _text(form, name) for name in FIELDS}
    zone = settings_of(request).timezone
    try:
        location_id: int | None = None
        if values["location"]:
            try:
                location_id = int(values["location"])
            except ValueError as exc:
                raise ValidationFailed("no such store", code="location_not_found",
                                       field="location") from exc
        try:
            data = NoticeIn(title=values["title"], body=values["body"],
                            location_id=location_id,
                            starts_at=_local_time(values["starts_at"], "starts_at", zone),
                            ends_at=_local_time(values["ends_at"], "ends_at", zone))
        except ValidationError as exc:
            raise ValidationFailed("check the times", code="invalid_time",
                                   field="starts_at") from exc
        async with db_of(request).uow() as uow:
            await create_notice(uow, actor, data)
            await uow.commit()
    except DomainError as exc:
        if exc.status == 403:
            raise
        field = "location" if exc.field == "location_id" else exc.field
        return await _backoffice(request, actor, status=exc.status, values=values,
                                 errors={field if field in FIELDS else "form":
                                         _message(request, exc)})
    return RedirectResponse("/backoffice/board?saved=notice", status_code=303)


@router.post("/backoffice/board/notices/{notice_id}/end")
async def stop_notice(request: Request,
        actor: Annotated[Actor, requires("notices.write")],
        notice_id: NoticeId) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await end_notice(uow, actor, notice_id)
            await uow.commit()
    except DomainError as exc:
        if exc.status == 403:
            raise
        return await _backoffice(request, actor, status=exc.status,
                                 errors={"form": _message(request, exc)})
    return RedirectResponse("/backoffice/board?saved=ended", status_code=303)


