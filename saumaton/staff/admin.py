"""Running the staff: list, invite by e-mail, roles per location, disable and enable,
password reset links and API tokens per person.

Only the owner changes staff (`staff.write`, which only the owner's "*" holds); managers
may list them (`staff.read`). Every change is audited in its own transaction. Disabling
a person, or setting a new password, revokes every session and API token they hold
(staff/sessions.py), and every process learns of it at once (staff/events.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.config import Settings
from saumaton.core.actor import ROLES, Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Location
from saumaton.mail.queue import queue_mail
from saumaton.mail.staff_messages import staff_link_mail
from saumaton.staff.events import staff_changed
from saumaton.staff.models import ApiToken, Staff, StaffLinkToken, StaffRole
from saumaton.staff.services import (
    actor_for,
    create_api_token,
    hash_password,
    unusable_password,
)
from saumaton.staff.sessions import revoke_everything, token_hash

INVITE_DAYS = 7
RESET_HOURS = 24
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Grant:
    id: int
    role: str
    location_id: int | None


@dataclass(frozen=True)
class StaffMember:
    id: int
    email: str
    name: str
    state: str  # active | disabled | invited
    grants: tuple[Grant, ...]
    created_at: datetime
    disabled_at: datetime | None
    disabled_by: str
    invited_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _state(staff: Staff) -> str:
    if not staff.active:
        return "disabled"
    if staff.password_hash.startswith("!"):
        return "invited"
    return "active"


async def _grants(s: AsyncSession, staff_ids: list[int]) -> dict[int, list[Grant]]:
    out: dict[int, list[Grant]] = {i: [] for i in staff_ids}
    if not staff_ids:
        return out
    for r in (await s.scalars(select(StaffRole).where(StaffRole.staff_id.in_(staff_ids))
                              .order_by(StaffRole.id))).all():
        out[r.staff_id].append(Grant(r.id, r.role, r.location_id))
    return out


def _member(staff: Staff, grants: list[Grant]) -> StaffMember:
    return StaffMember(staff.id, staff.email, staff.name, _state(staff), tuple(grants),
                       staff.created_at, staff.disabled_at, staff.disabled_by,
                       staff.invited_at)


async def list_staff(s: AsyncSession, actor: Actor) -> list[StaffMember]:
    """Everybody, by name."""
    actor.require("staff.read")
    people = list((await s.scalars(select(Staff).order_by(Staff.name, Staff.id))).all())
    grants = await _grants(s, [p.id for p in people])
    return [_member(p, grants[p.id]) for p in people]


async def staff_page(s: AsyncSession, actor: Actor, *, after: tuple[str, int] | None,
                     limit: int) -> list[StaffMember]:
    """One page of `list_staff` (by name, then id) after the (name, id) `after`;
    `limit` rows (the caller asks one more to learn whether more follow)."""
    actor.require("staff.read")
    stmt = select(Staff)
    if after is not None:
        stmt = stmt.where(or_(Staff.name > after[0],
                              and_(Staff.name == after[0], Staff.id > after[1])))
    people = list((await s.scalars(stmt.order_by(Staff.name, Staff.id).limit(limit))).all())
    grants = await _grants(s, [p.id for p in people])
    return [_member(p, grants[p.id]) for p in people]


async def staff_choices(s: AsyncSession) -> list[tuple[int, str]]:
    """(id, name) of everybody, by name: for choosing a person in a filter (the audit
    log's readers see names anyway)."""
    return [(int(i), str(n)) for i, n in (await s.execute(
        select(Staff.id, Staff.name).order_by(Staff.name, Staff.id))).all()]


async def get_member(s: AsyncSession, actor: Actor, staff_id: int) -> StaffMember:
    actor.require("staff.read")
    staff = await s.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"no staff member {staff_id}", code="staff_not_found")
    return _member(staff, (await _grants(s, [staff_id]))[staff_id])


def grant_label(role: str, location_code: str | None) -> str:
    return f"{role}@{location_code}" if location_code else role


async def _location_code(s: AsyncSession, location_id: int | None) -> str | None:
    if location_id is None:
        return None
    code = await s.scalar(select(Location.code).where(Location.id == location_id))
    if code is None:
        raise ValidationFailed(f"no location {location_id}", code="location_not_found",
                               field="location")
    return str(code)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValidationFailed(f"unknown role '{role}'", code="invalid_role", field="role")


async def _staff_for_update(uow: UnitOfWork, staff_id: int) -> Staff:
    staff = await uow.session.get(Staff, staff_id, with_for_update=True)
    if staff is None:
        raise NotFound(f"no staff member {staff_id}", code="staff_not_found")
    return staff


async def _other_owners(uow: UnitOfWork, staff_id: int) -> int:
    """Active people other than `staff_id` who are owners everywhere."""
    return int(await uow.session.scalar(
        select(func.count(func.distinct(StaffRole.staff_id)))
        .join(Staff, Staff.id == StaffRole.staff_id)
        .where(StaffRole.role == "owner", StaffRole.location_id.is_(None),
               Staff.active.is_(True), Staff.id != staff_id)) or 0)


def _last_owner() -> Conflict:
    return Conflict("the business must keep at least one owner", code="last_owner")


# --- links (invitation, password reset) ------------------------------------------------

async def _issue_link(uow: UnitOfWork, staff_id: int, purpose: str, ttl: timedelta) -> str:
    now = utcnow()
    # A new link replaces any unused one of the same purpose.
    await uow.session.execute(
        update(StaffLinkToken)
        .where(StaffLinkToken.staff_id == staff_id, StaffLinkToken.purpose == purpose,
               StaffLinkToken.used_at.is_(None))
        .values(expires_at=now).execution_options(synchronize_session=False))
    token = secrets.token_urlsafe(32)
    uow.session.add(StaffLinkToken(staff_id=staff_id, purpose=purpose,
                                   token_hash=token_hash(token), created_at=now,
                                   expires_at=now + ttl))
    await uow.session.flush()
    return token


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.resolved_public_url().rstrip('/')}/staff/set-password?token={token}"


async def _send_link(uow: UnitOfWork, staff: Staff, purpose: str, *, lang: str,
                     settings: Settings) -> str:
    ttl = timedelta(days=INVITE_DAYS) if purpose == "invite" else timedelta(hours=RESET_HOURS)
    token = await _issue_link(uow, staff.id, purpose, ttl)
    mail = staff_link_mail(purpose, url=link_url(settings, token), name=staff.name,
                           lang=lang, settings=settings)
    await queue_mail(uow, kind=f"staff_{purpose}", to=staff.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=f"staff:{staff.id}")
    return token


@dataclass(frozen=True)
class LinkState:
    state: str  # ok | expired | used | invalid
    purpose: str = ""
    staff_id: int | None = None
    name: str = ""
    email: str = ""


async def link_state(s: AsyncSession, token: str) -> LinkState:
    if not token or len(token) > 200:
        return LinkState("invalid")
    row = await s.scalar(select(StaffLinkToken).where(
        StaffLinkToken.token_hash == token_hash(token)))
    if row is None:
        return LinkState("invalid")
    staff = await s.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        return LinkState("invalid")
    if row.used_at is not None:
        state = "used"
    elif row.expires_at <= utcnow():
        state = "expired"
    else:
        state = "ok"
    return LinkState(state, row.purpose, staff.id, staff.name, staff.email)


def password_problem(password: str, confirm: str) -> ValidationFailed | None:
    if len(password) < MIN_PASSWORD:
        return ValidationFailed(f"a password has at least {MIN_PASSWORD} characters",
                                code="weak_password", field="password",
                                extra={"min": MIN_PASSWORD})
    if len(password) > 1000:
        return ValidationFailed("the password is too long", code="weak_password",
                                field="password", extra={"min": MIN_PASSWORD})
    if password != confirm:
        return ValidationFailed("the passwords differ", code="password_mismatch",
                                field="confirm")
    return None


async def set_password_with_link(uow: UnitOfWork, token: str, password: str,
                                 confirm: str) -> Actor:
    """Use an invitation or reset link (once): the new password is set, every session
    and API token of the person revoked. Returns the person (to sign them in)."""
    problem = password_problem(password, confirm)
    if problem is not None:
        raise problem
    state = await link_state(uow.session, token)
    if state.state != "ok" or state.staff_id is None:
        raise ValidationFailed(f"the link is {state.state}", code=f"link_{state.state}",
                               field="token")
    used = await uow.session.execute(
        update(StaffLinkToken)
        .where(StaffLinkToken.token_hash == token_hash(token),
               StaffLinkToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if getattr(used, "rowcount", 0) != 1:
        raise ValidationFailed("the link is used", code="link_used", field="token")
    staff = await _staff_for_update(uow, state.staff_id)
    staff.password_hash = hash_password(password)
    await revoke_everything(uow, staff.id, tokens=state.purpose == "reset")
    actor = await actor_for(uow.session, staff.id)
    assert actor is not None
    await record(uow, actor, "staff.password_set", "staff", staff.id,
                 {"purpose": state.purpose})
    return actor


# --- the owner's changes --------------------------------------------------------------

async def invite(uow: UnitOfWork, actor: Actor, *, email: str, name: str,
                 grants: list[tuple[str, int | None]], lang: str,
                 settings: Settings) -> StaffMember:
    """A new person with no usable password and an e-mailed invitation link (valid
    INVITE_DAYS days). Every problem at once (ValidationFailed; extra["errors"])."""
    actor.require("staff.write")
    email = email.strip().lower()
    name = " ".join(name.split())
    errors: list[DomainError] = []
    if not name:
        errors.append(ValidationFailed("enter a name", code="name_required", field="name"))
    elif len(name) > 200:
        errors.append(ValidationFailed("the name is too long", code="name_too_long",
                                       field="name"))
    if not _EMAIL.match(email) or len(email) > 320:
        errors.append(ValidationFailed("enter a valid e-mail address", code="invalid_email",
                                       field="email"))
    elif await uow.session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        errors.append(Conflict(f"staff account {email} exists", code="staff_exists",
                               field="email"))
    if not grants:
        errors.append(ValidationFailed("choose a role", code="role_required", field="role"))
    labels = []
    for role, location_id in grants:
        try:
            _check_role(role)
            labels.append(grant_label(role, await _location_code(uow.session, location_id)))
        except ValidationFailed as exc:
            errors.append(exc)
    if errors:
        raise ValidationFailed(errors[0].detail, code=errors[0].code, field=errors[0].field,
                               extra={"errors": errors})
    now = utcnow()
    staff = Staff(email=email, name=name, password_hash=unusable_password(), active=True,
                  invited_at=now, created_at=now)
    uow.session.add(staff)
    await uow.session.flush()
    uow.session.add_all(StaffRole(staff_id=staff.id, role=r, location_id=loc)
                        for r, loc in grants)
    await uow.session.flush()
    await _send_link(uow, staff, "invite", lang=lang, settings=settings)
    await record(uow, actor, "staff.invite", "staff", staff.id,
                 {"email": email, "name": name, "roles": labels})
    return await get_member(uow.session, actor, staff.id)


async def resend_invite(uow: UnitOfWork, actor: Actor, staff_id: int, *, lang: str,
                        settings: Settings) -> None:
    actor.require("staff.write")
    staff = await _staff_for_update(uow, staff_id)
    if _state(staff) != "invited":
        raise Conflict("only an invited person gets an invitation", code="not_invited")
    await _send_link(uow, staff, "invite", lang=lang, settings=settings)
    await record(uow, actor, "staff.invite", "staff", staff.id,
                 {"email": staff.email, "resent": True})


async def add_grant(uow: UnitOfWork, actor: Actor, staff_id: int, role: str,
                    location_id: int | None) -> None:
    actor.require("staff.write")
    _check_role(role)
    code = await _location_code(uow.session, location_id)
    await _staff_for_update(uow, staff_id)
    exists = await uow.session.scalar(select(StaffRole.id).where(
        StaffRole.staff_id == staff_id, StaffRole.role == role,
        StaffRole.location_id.is_(None) if location_id is None
        else StaffRole.location_id == location_id))
    if exists is not None:
        raise Conflict("the person already has this role", code="grant_exists", field="role")
    uow.session.add(StaffRole(staff_id=staff_id, role=role, location_id=location_id))
    await uow.session.flush()
    await record(uow, actor, "staff.roles", "staff", staff_id,
                 {"added": grant_label(role, code)})
    staff_changed(uow, staff_id, revoked=False)


async def remove_grant(uow: UnitOfWork, actor: Actor, staff_id: int, grant_id: int) -> None:
    """Refuses to remove the owner role of the last active owner."""
    actor.require("staff.write")
    staff = await _staff_for_update(uow, staff_id)
    grant = await uow.session.get(StaffRole, grant_id)
    if grant is None or grant.staff_id != staff_id:
        raise NotFound(f"no role {grant_id} of staff member {staff_id}",
                       code="grant_not_found")
    if grant.role == "owner" and grant.location_id is None and staff.active \
            and await _other_owners(uow, staff_id) == 0:
        raise _last_owner()
    code = await _location_code(uow.session, grant.location_id)
    await uow.session.delete(grant)
    await uow.session.flush()
    await record(uow, actor, "staff.roles", "staff", staff_id,
                 {"removed": grant_label(grant.role, code)})
    staff_changed(uow, staff_id, revoked=False)


async def disable(uow: UnitOfWork, actor: Actor, staff_id: int) -> None:
    """The person can no longer sign in; every session and API token stops at once."""
    actor.require("staff.write")
    if staff_id == actor.staff_id:
        raise Forbidden("you cannot disable yourself", code="disable_self")
    staff = await _staff_for_update(uow, staff_id)
    if not staff.active:
        return
    owner = await uow.session.scalar(select(StaffRole.id).where(
        StaffRole.staff_id == staff_id, StaffRole.role == "owner",
        StaffRole.location_id.is_(None)))
    if owner is not None and await _other_owners(uow, staff_id) == 0:
        raise _last_owner()
    staff.active = False
    staff.disabled_at = utcnow()
    staff.disabled_by = actor.label[:200]
    await revoke_everything(uow, staff_id)
    await record(uow, actor, "staff.disable", "staff", staff_id, {"email": staff.email})


async def enable(uow: UnitOfWork, actor: Actor, staff_id: int) -> None:
    """The person may sign in again (revoked sessions and tokens stay revoked)."""
    actor.require("staff.write")
    staff = await _staff_for_update(uow, staff_id)
    if staff.active:
        return
    staff.active = True
    staff.disabled_at = None
    staff.disabled_by = ""
    await record(uow, actor, "staff.enable", "staff", staff_id, {"email": staff.email})
    staff_changed(uow, staff_id, revoked=False)


async def send_password_reset(uow: UnitOfWork, actor: Actor, staff_id: int, *, lang: str,
                              settings: Settings) -> None:
    """The owner sends a person a reset link (the old password works until it is used)."""
    actor.require("staff.write")
    staff = await _staff_for_update(uow, staff_id)
    if not staff.active:
        raise Conflict("the person is disabled", code="staff_disabled")
    if _state(staff) == "invited":  # no password yet: a new invitation instead
        await resend_invite(uow, actor, staff_id, lang=lang, settings=settings)
        return
    await _send_link(uow, staff, "reset", lang=lang, settings=settings)
    await record(uow, actor, "staff.password_reset", "staff", staff_id,
                 {"email": staff.email, "by": "owner"})


async def request_password_reset(uow: UnitOfWork, email: str, *, lang: str,
                                 settings: Settings) -> None:
    """"Forgot your password?": a reset link to an active account with this e-mail;
    nothing (and no hint) for an unknown one. At most one link per few minutes."""
    staff = await uow.session.scalar(
        select(Staff).where(Staff.email == email.strip().lower()[:320]))
    if staff is None or not staff.active:
        return
    recent = await uow.session.scalar(select(StaffLinkToken.id).where(
        StaffLinkToken.staff_id == staff.id,
        StaffLinkToken.created_at > utcnow() - timedelta(minutes=2)).limit(1))
    if recent is not None:
        return
    purpose = "invite" if _state(staff) == "invited" else "reset"
    await _send_link(uow, staff, purpose, lang=lang, settings=settings)
    me = await actor_for(uow.session, staff.id)
    assert me is not None
    await record(uow, me, "staff.password_reset", "staff", staff.id,
                 {"email": staff.email, "by": "self"})


# --- API tokens -----------------------------------------------------------------------

async def list_tokens(s: AsyncSession, actor: Actor, staff_id: int) -> list[TokenInfo]:
    actor.require("staff.read")
    rows = (await s.scalars(select(ApiToken).where(ApiToken.staff_id == staff_id)
                            .order_by(ApiToken.id.desc()))).all()
    return [TokenInfo(r.id, r.name, r.prefix, r.created_at, r.revoked_at) for r in rows]


async def issue_token(uow: UnitOfWork, actor: Actor, staff_id: int,
                      name: str) -> tuple[int, str]:
    """A new API token acting as the person; the token is returned once."""
    actor.require("staff.write")
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise ValidationFailed("name the token (what uses it)", code="token_name",
                               field="token_name")
    staff = await _staff_for_update(uow, staff_id)
    if not staff.active:
        raise Conflict("the person is disabled", code="staff_disabled", field="token_name")
    token = await create_api_token(uow, staff_id, name)
    token_id = int(await uow.session.scalar(
        select(ApiToken.id).where(ApiToken.token_hash == token_hash(token))) or 0)
    await record(uow, actor, "token.create", "api_token", token_id,
                 {"staff_id": staff_id, "name": name, "prefix": token[:10]})
    return token_id, token


async def revoke_token(uow: UnitOfWork, actor: Actor, staff_id: int, token_id: int) -> None:
    actor.require("staff.write")
    row = await uow.session.get(ApiToken, token_id)
    if row is None or row.staff_id != staff_id:
        raise NotFound(f"no token {token_id}", code="token_not_found")
    if row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    staff_changed(uow, staff_id, revoked=True)
    await record(uow, actor, "token.revoke", "api_token", token_id,
                 {"staff_id": staff_id, "name": row.name, "prefix": row.prefix})

