"""Staff accounts, password login (argon2), API tokens, and building the Actor."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import ROLES, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotAuthenticated, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.staff.events import staff_changed
from saumaton.staff.models import ApiToken, Staff, StaffRole

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not-a-password")
TOKEN_PREFIX = "sau_"
# An actor label as written into ledgers and "…_by" columns (Actor.label).
_STAFF_LABEL = re.compile(r"staff:(\d{1,18})(?:\s|$)")


async def create_staff(uow: UnitOfWork, email: str, name: str, password: str,
                       roles: list[tuple[str, int | None]]) -> Staff:
    email = email.strip().lower()
    if len(password) < 8:
        raise ValidationFailed("password must be at least 8 characters", code="weak_password",
                               field="password")
    for role, _ in roles:
        if role not in ROLES:
            raise ValidationFailed(f"unknown role '{role}'", code="invalid_role", field="roles")
    if await uow.session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        raise Conflict(f"staff account {email} exists", code="staff_exists", field="email")
    staff = Staff(email=email, name=name, password_hash=_hasher.hash(password), active=True)
    uow.session.add(staff)
    await uow.session.flush()
    uow.session.add_all(StaffRole(staff_id=staff.id, role=r, location_id=loc) for r, loc in roles)
    await uow.session.flush()
    return staff


async def actor_for(session: AsyncSession, staff_id: int) -> Actor | None:
    staff = await session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return None
    grants = tuple(RoleGrant(r.role, r.location_id) for r in (await session.scalars(
        select(StaffRole).where(StaffRole.staff_id == staff_id).order_by(StaffRole.id)
    )).all())
    return Actor(label=f"staff:{staff.id} {staff.email}", staff_id=staff.id, name=staff.name,
                 grants=grants)


async def staff_names(s: AsyncSession, labels: Iterable[str]) -> dict[str, str]:
    """The name to show for each actor label: "staff:3 anna@shop.fi" -> "Anna Virtanen".
    A label of no staff member (the system, a name stored as such, a removed account)
    stands for itself."""
    wanted = set(labels)
    ids = {int(m[1]) for label in wanted if (m := _STAFF_LABEL.match(label))}
    names = dict((await s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids)))).all()
                 ) if ids else {}
    out = {}
    for label in wanted:
        m = _STAFF_LABEL.match(label)
        name = names.get(int(m[1])) if m else None
        out[label] = name or label
    return out


async def authenticate(session: AsyncSession, email: str, password: str) -> Actor:
    """The person with this e-mail and password. A wrong password, an unknown e-mail, a
    disabled account and an invitation not yet accepted all answer the same
    NotAuthenticated, whose `extra["staff_id"]` names the account when one has the
    e-mail (for the audit log)."""
    staff = await session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    known = staff.id if staff is not None else None
    try:
        _hasher.verify(staff.password_hash if staff else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        staff = None
    if staff is None or not staff.active:
        raise NotAuthenticated("wrong e-mail or password", code="invalid_credentials",
                               field="password", extra={"staff_id": known})
    actor = await actor_for(session, staff.id)
    assert actor is not None
    return actor


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def unusable_password() -> str:
    """A stored hash that no password verifies (an invited person has none yet)."""
    return "!" + secrets.token_hex(16)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(uow: UnitOfWork, staff_id: int, name: str) -> str:
    """Returns the token once; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    uow.session.add(ApiToken(staff_id=staff_id, name=name, token_hash=_token_hash(token),
                             prefix=token[:10]))
    await uow.session.flush()
    return token


async def actor_for_token(session: AsyncSession, token: str) -> Actor:
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("invalid or revoked API token", code="invalid_token")
    actor = await actor_for(session, row.staff_id)
    if actor is None:
        raise NotAuthenticated("the token's staff account is disabled", code="invalid_token")
    return actor


async def revoke_api_token(uow: UnitOfWork, token_id: int) -> None:
    row = await uow.session.get(ApiToken, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        staff_changed(uow, row.staff_id, revoked=True)


async def revoke_api_token_value(uow: UnitOfWork, token: str) -> bool:
    """Revoke the token with this value; False if no such token exists."""
    row = await uow.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        staff_changed(uow, row.staff_id, revoked=True)
    return True
