"""/api/v1 staff and the audit log: what the back office's staff pages do
(web/backoffice/staff.py), as JSON.

Listing people needs `staff.read` (managers and the owner); every change needs
`staff.write` (the owner only). The audit log needs `audit.read` (the owner, finance).
Thin: the rules are in `saumaton.staff.admin` and `saumaton.audit.services`.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from saumaton.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, page_of
from saumaton.api.reports import ReportDate
from saumaton.audit.services import AuditQuery, search_after
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, NotFound, ValidationFailed
from saumaton.core.types import MAX_ID, Input, NoNul
from saumaton.locations.services import list_locations, location_by_code
from saumaton.staff import admin
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["staff"])

Role = Literal["owner", "manager", "cashier", "service", "finance"]
StaffId = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "staff_not_found"}}


def _one_line(value: str) -> str:
    """Spaces of any kind (no-break, em) count as blank: a name must have a letter."""
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


class GrantOut(BaseModel):
    id: int
    role: str
    location: str | None = Field(description="the location's code; null: every location")
    location_id: int | None


class StaffOut(BaseModel):
    id: int
    email: str
    name: str
    state: Literal["active", "disabled", "invited"]
    grants: list[GrantOut]
    created_at: datetime
    invited_at: datetime | None
    disabled_at: datetime | None
    disabled_by: str


class GrantIn(Input):
    role: Role
    location: str | None = Field(
        default=None, min_length=1, max_length=32,
        description="a location's code; leave out (or null) for every location")


class InviteIn(Input):
    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    grants: list[GrantIn] = Field(min_length=1, max_length=50)
    lang: Literal["fi", "en"] = Field("fi", description="the invitation e-mail's language")

    _name = field_validator("name")(_one_line)


class ResetIn(Input):
    lang: Literal["fi", "en"] = "fi"


class TokenIn(Input):
    name: str = Field(min_length=1, max_length=200,
                      description="what uses the token, e.g. \"accounting export\"")

    _name = field_validator("name")(_one_line)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NewTokenOut(BaseModel):
    id: int
    name: str
    token: str = Field(description="the bearer token: shown in this answer only")


async def _codes(request: Request) -> dict[int, str]:
    async with db_of(request).reader() as s:
        return {loc.id: loc.code for loc in await list_locations(s)}


def _out(m: admin.StaffMember, codes: dict[int, str]) -> StaffOut:
    return StaffOut(
        id=m.id, email=m.email, name=m.name, state=m.state,
        grants=[GrantOut(id=g.id, role=g.role, location_id=g.location_id,
                         location=codes.get(g.location_id) if g.location_id else None)
                for g in m.grants],
        created_at=m.created_at, invited_at=m.invited_at, disabled_at=m.disabled_at,
        disabled_by=m.disabled_by)


async def _location_id(request: Request, code: str | None, field: str) -> int | None:
    if code is None:
        return None
    async with db_of(request).reader() as s:
        try:
            return (await location_by_code(s, code)).id
        except NotFound as exc:
            raise ValidationFailed(f"no location {code!r}", code="location_not_found",
                                   field=field) from exc


async def _member(request: Request, actor: Actor, staff_id: int) -> StaffOut:
    async with db_of(request).reader() as s:
        m = await admin.get_member(s, actor, staff_id)
    return _out(m, await _codes(request))


@router.get("/staff", response_model=Page[StaffOut],
            summary="Everybody on the staff, by name (staff.read)")
async def list_staff(request: Request, actor: Annotated[Actor, api_requires("staff.read")],
                     cursor: CursorQuery = None, limit: LimitQuery = 50) -> Page[StaffOut]:
    key = decode_cursor(cursor, "name", "id")
    after = (str(key["name"]), int(key["id"])) if key else None
    async with db_of(request).reader() as s:
        people = await admin.staff_page(s, actor, after=after, limit=limit + 1)
    codes = await _codes(request)
    return page_of([_out(m, codes) for m in people], limit,
                   lambda m: {"name": m.name, "id": m.id})


@router.get("/staff/{staff_id}", response_model=StaffOut, responses=NOT_FOUND,
            summary="A person: state and roles per location (staff.read)")
async def get_staff(request: Request, staff_id: StaffId,
                    actor: Annotated[Actor, api_requires("staff.read")]) -> StaffOut:
    return await _member(request, actor, staff_id)


@router.post("/staff", response_model=StaffOut, status_code=201,
             responses={409: {"description": "staff_exists"}},
             summary="Invite a person by e-mail (staff.write: the owner)",
             description="The person gets an e-mailed link to choose a password (valid "
                         "7 days). Every problem is answered at once in `errors`.")
async def invite_staff(request: Request, response: Response, body: InviteIn,
                       actor: Annotated[Actor, api_requires("staff.write")]) -> StaffOut:
    grants: list[tuple[str, int | None]] = [
        (g.role, await _location_id(request, g.location, f"grants.{i}.location"))
        for i, g in enumerate(body.grants)]
    try:
        async with db_of(request).uow() as uow:
            member = await admin.invite(uow, actor, email=body.email, name=body.name,
                                        grants=grants, lang=body.lang,
                                        settings=settings_of(request))
            await uow.commit()
    except DomainError as exc:
        found: list[DomainError] = exc.extra.get("errors") or []
        if not found:
            raise
        first = found[0]
        raise type(first)(first.detail, code=first.code, field=first.field, extra={
            "errors": [{"code": e.code, "field": e.field, "detail": e.detail}
                       for e in found]}) from exc
    response.headers["Location"] = f"/api/v1/staff/{member.id}"
    return _out(member, await _codes(request))


@router.post("/staff/{staff_id}/grants", response_model=StaffOut, status_code=201,
             responses={**NOT_FOUND, 409: {"description": "grant_exists"}},
             summary="Give a person a role at a location or everywhere (staff.write)")
async def add_grant(request: Request, staff_id: StaffId, body: GrantIn,
                    actor: Annotated[Actor, api_requires("staff.write")]) -> StaffOut:
    location_id = await _location_id(request, body.location, "location")
    async with db_of(request).uow() as uow:
        await admin.add_grant(uow, actor, staff_id, body.role, location_id)
        await uow.commit()
    return await _member(request, actor, staff_id)


@router.delete("/staff/{staff_id}/grants/{grant_id}", response_model=StaffOut,
               responses={404: {"description": "staff_not_found, grant_not_found"},
                          409: {"description": "last_owner"}},
               summary="Take a role away (staff.write; the last owner stays an owner)")
async def remove_grant(request: Request, staff_id: StaffId,
                       grant_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                       actor: Annotated[Actor, api_requires("staff.write")]) -> StaffOut:
    async with db_of(request).uow() as uow:
        await admin.remove_grant(uow, actor, staff_id, grant_id)
        await uow.commit()
    return await _member(request, actor, staff_id)


@router.post("/staff/{staff_id}/disable", response_model=StaffOut,
             responses={**NOT_FOUND, 403: {"description": "disable_self"},
                        409: {"description": "last_owner"}},
             summary="Disable a person: their sessions and tokens stop at once "
                     "(staff.write)")
async def disable_staff(request: Request, staff_id: StaffId,
                        actor: Annotated[Actor, api_requires("staff.write")]) -> StaffOut:
    async with db_of(request).uow() as uow:
        await admin.disable(uow, actor, staff_id)
        await uow.commit()
    return await _member(request, actor, staff_id)


@router.post("/staff/{staff_id}/enable", response_model=StaffOut, responses=NOT_FOUND,
             summary="Let a disabled person sign in again (staff.write)")
async def enable_staff(request: Request, staff_id: StaffId,
                       actor: Annotated[Actor, api_requires("staff.write")]) -> StaffOut:
    async with db_of(request).uow() as uow:
        await admin.enable(uow, actor, staff_id)
        await uow.commit()
    return await _member(request, actor, staff_id)


@router.post("/staff/{staff_id}/password-reset", response_model=StaffOut,
             status_code=202, responses={**NOT_FOUND, 409: {"description": "staff_disabled"}},
             summary="E-mail a person a link to choose a new password (staff.write)",
             description="An invited person who has not chosen a password yet gets a new "
                         "invitation instead.")
async def send_reset(request: Request, staff_id: StaffId,
                     actor: Annotated[Actor, api_requires("staff.write")],
                     body: ResetIn | None = None) -> StaffOut:
    async with db_of(request).uow() as uow:
        await admin.send_password_reset(uow, actor, staff_id,
                                        lang=(body or ResetIn()).lang,
                                        settings=settings_of(request))
        await uow.commit()
    return await _member(request, actor, staff_id)


@router.get("/staff/{staff_id}/tokens", response_model=Page[TokenOut], responses=NOT_FOUND,
            summary="A person's API tokens, newest first (staff.read)")
async def list_tokens(request: Request, staff_id: StaffId,
                      actor: Annotated[Actor, api_requires("staff.read")],
                      cursor: CursorQuery = None, limit: LimitQuery = 50) -> Page[TokenOut]:
    key = decode_cursor(cursor, "id")
    async with db_of(request).reader() as s:
        await admin.get_member(s, actor, staff_id)
        tokens = await admin.list_tokens(s, actor, staff_id)
    rows = [TokenOut(id=t.id, name=t.name, prefix=t.prefix, created_at=t.created_at,
                     revoked_at=t.revoked_at)
            for t in tokens if key is None or t.id < int(key["id"])]
    return page_of(rows[:limit + 1], limit, lambda t: {"id": t.id})


@router.post("/staff/{staff_id}/tokens", response_model=NewTokenOut, status_code=201,
             responses={**NOT_FOUND, 409: {"description": "staff_disabled"}},
             summary="Create an API token acting as the person (staff.write)",
             description="The token is in this answer only; it is never shown again.")
async def create_token(request: Request, response: Response, staff_id: StaffId,
                       body: TokenIn,
                       actor: Annotated[Actor, api_requires("staff.write")]) -> NewTokenOut:
    async with db_of(request).uow() as uow:
        token_id, token = await admin.issue_token(uow, actor, staff_id, body.name)
        await uow.commit()
    response.headers["Cache-Control"] = "no-store"
    return NewTokenOut(id=token_id, name=body.name, token=token)


@router.delete("/staff/{staff_id}/tokens/{token_id}", status_code=204,
               response_class=Response,
               responses={404: {"description": "token_not_found"}},
               summary="Revoke a token: it stops working at once (staff.write)")
async def revoke_token(request: Request, staff_id: StaffId,
                       token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                       actor: Annotated[Actor, api_requires("staff.write")]) -> Response:
    async with db_of(request).uow() as uow:
        await admin.revoke_token(uow, actor, staff_id, token_id)
        await uow.commit()
    return Response(status_code=204)


# --- the audit log ------------------------------------------------------------------------

class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="who: \"staff:3 anna@shop.fi\", \"system\", …")
    action: str
    subject_type: str
    subject_id: int
    data: dict[str, Any] = Field(description="what changed; amounts in cents")


@router.get("/audit", response_model=Page[AuditEntryOut], tags=["audit"],
            summary="The audit log, newest first (audit.read: the owner, finance)")
async def audit_log(
    request: Request, actor: Annotated[Actor, api_requires("audit.read")],
    staff_id: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                          description="entries by this person")] = None,
    action: Annotated[str | None, Query(
        min_length=1, max_length=64,
        description="exact (\"price.change\") or a prefix ending in \".\" (\"staff.\")"),
        NoNul] = None,
    subject_type: Annotated[str | None, Query(min_length=1, max_length=32), NoNul] = None,
    subject_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    since: Annotated[ReportDate | None, Query(
        alias="from", description="first day (shop's time zone)")] = None,
    until: Annotated[ReportDate | None, Query(
        alias="to", description="last day, inclusive")] = None,
    cursor: CursorQuery = None, limit: LimitQuery = 50,
) -> Page[AuditEntryOut]:
    if since and until and until < since:
        raise ValidationFailed("the end is before the start", code="invalid_period",
                               field="to")
    tz = ZoneInfo(settings_of(request).timezone)
    q = AuditQuery(
        staff_id=staff_id, action=action or "", subject_type=subject_type or "",
        subject_id=subject_id,
        since=datetime.combine(since, time(), tz) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), tz) if until else None)
    key = decode_cursor(cursor, "at", "id")
    before = None
    if key is not None:
        try:
            before = (datetime.fromisoformat(str(key["at"])), int(key["id"]))
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("this cursor was not made by this list",
                                   code="invalid_cursor", field="cursor") from exc
    async with db_of(request).reader() as s:
        rows = await search_after(s, actor, q, before=before, limit=limit + 1)
    items = [AuditEntryOut(id=e.id, at=e.at, actor=e.actor, action=e.action,
                           subject_type=e.subject_type, subject_id=e.subject_id,
                           data=e.data or {}) for e in rows]
    return page_of(items, limit, lambda e: {"at": e.at.isoformat(), "id": e.id})
