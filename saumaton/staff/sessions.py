"""Server-side staff sessions and the revocation of everything a person holds.

A browser's session cookie carries only a random session token; the database keeps its
SHA-256 (`StaffSession`). A session stops working when it is logged out, expires, or is
revoked (the person disabled, their password reset or changed); see staff/events.py for
how every process learns of it at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.db.uow import UnitOfWork
from saumaton.staff.events import staff_changed
from saumaton.staff.models import ApiToken, Staff, StaffSession
from saumaton.staff.services import actor_for

SESSION_HOURS = 12


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(uow: UnitOfWork, staff_id: int, user_agent: str = "") -> str:
    """A new session for a signed-in person; returns its token (the cookie's value)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    uow.session.add(StaffSession(staff_id=staff_id, token_hash=token_hash(token),
                                 created_at=now,
                                 expires_at=now + timedelta(hours=SESSION_HOURS),
                                 user_agent=user_agent[:200]))
    await uow.session.flush()
    return token


async def session_staff(s: AsyncSession, token: str) -> Actor | None:
    """The person of a live session (not revoked, not expired, account active)."""
    if not token or len(token) > 200:
        return None
    row = (await s.execute(
        select(StaffSession.staff_id, StaffSession.expires_at, StaffSession.revoked_at,
               Staff.active)
        .join(Staff, Staff.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == token_hash(token)))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() \
            or not row.active:
        return None
    return await actor_for(s, int(row.staff_id))


async def close_session(uow: UnitOfWork, token: str) -> int | None:
    """Log out: revoke this session. Returns its person's id (None if unknown)."""
    row = await uow.session.scalar(
        select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    staff_changed(uow, row.staff_id, revoked=True)
    return row.staff_id


async def revoke_everything(uow: UnitOfWork, staff_id: int, *, tokens: bool = True) -> None:
    """End every session (and, with `tokens`, every API token) of the person."""
    now = utcnow()
    await uow.session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))
    if tokens:
        await uow.session.execute(
            update(ApiToken)
            .where(ApiToken.staff_id == staff_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now).execution_options(synchronize_session=False))
    staff_changed(uow, staff_id, revoked=True)


async def sign_in(uow: UnitOfWork, actor: Actor, user_agent: str = "") -> str:
    """Open a session for a person who gave the right password; audited."""
    assert actor.staff_id is not None
    token = await open_session(uow, actor.staff_id, user_agent)
    await record(uow, actor, "staff.login", "staff", actor.staff_id, {})
    return token


async def note_failed_login(uow: UnitOfWork, email: str, staff_id: int | None) -> None:
    """Audit a refused login: the account of the e-mail if there is one (0 if not)."""
    await record(uow, Actor(label="anonymous", name="anonymous"), "staff.login_failed",
                 "staff", staff_id or 0, {"email": email.strip().lower()[:320]})


async def sign_out(uow: UnitOfWork, token: str) -> None:
    """Revoke the session (a copy of the cookie stops working too); audited."""
    staff_id = await close_session(uow, token)
    if staff_id is None:
        return
    actor = await actor_for(uow.session, staff_id)
    await record(uow, actor or Actor(label=f"staff:{staff_id}"), "staff.logout", "staff",
                 staff_id, {})
