"""Writing and reading the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.db.uow import UnitOfWork


async def record(uow: UnitOfWork, actor: Actor, action: str, subject_type: str,
                 subject_id: int, data: dict[str, Any] | None = None) -> None:
    """Append an entry in the caller's transaction: it exists if and only if the
    audited change committed."""
    await uow.session.execute(insert(AuditEntry).values(
        at=utcnow(), actor=actor.label, action=action, subject_type=subject_type,
        subject_id=subject_id, data=data or {}))


async def record_many(uow: UnitOfWork, actor: Actor, action: str, subject_type: str,
                      entries: list[tuple[int, dict[str, Any]]]) -> None:
    """`record` for many subjects at once (one statement): (subject id, data) each."""
    if entries:
        now = utcnow()
        await uow.session.execute(insert(AuditEntry), [
            {"at": now, "actor": actor.label, "action": action, "subject_type": subject_type,
             "subject_id": sid, "data": data} for sid, data in entries])


async def entries_for(session: AsyncSession, subject_type: str, subject_id: int,
                      limit: int = 100) -> list[AuditEntry]:
    """Newest first."""
    return list((await session.scalars(
        select(AuditEntry).where(AuditEntry.subject_type == subject_type,
                                 AuditEntry.subject_id == subject_id)
        .order_by(AuditEntry.id.desc()).limit(limit))).all())


@dataclass(frozen=True)
class AuditQuery:
    staff_id: int | None = None  # entries whose actor is this staff member
    action: str = ""  # exact ("price.change") or a prefix ending in "." ("staff.")
    subject_type: str = ""
    subject_id: int | None = None
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC


async def search(session: AsyncSession, actor: Actor, q: AuditQuery, *, page: int = 1,
                 per_page: int = 50) -> tuple[list[AuditEntry], bool]:
    """Newest first, one page; and whether there is a next page. Needs audit.read."""
    actor.require("audit.read")
    page = max(1, page)
    rows = list((await session.scalars(
        _filtered(q).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * per_page).limit(per_page + 1))).all())
    return rows[:per_page], len(rows) > per_page


async def search_after(session: AsyncSession, actor: Actor, q: AuditQuery, *,
                       before: tuple[datetime, int] | None, limit: int) -> list[AuditEntry]:
    """Newest first, `limit` entries older than the (at, id) `before` (keyset paging for
    the API: a page stays cheap however deep). Needs audit.read."""
    actor.require("audit.read")
    stmt = _filtered(q)
    if before is not None:
        stmt = stmt.where(or_(AuditEntry.at < before[0],
                              and_(AuditEntry.at == before[0], AuditEntry.id < before[1])))
    return list((await session.scalars(
        stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))).all())


def _filtered(q: AuditQuery) -> Select[Any]:
    stmt = select(AuditEntry)
    if q.staff_id is not None:
        label = f"staff:{q.staff_id}"
        stmt = stmt.where(or_(AuditEntry.actor == label,
                              AuditEntry.actor.startswith(label + " ", autoescape=True)))
    if q.action.endswith("."):
        stmt = stmt.where(AuditEntry.action.startswith(q.action, autoescape=True))
    elif q.action:
        stmt = stmt.where(AuditEntry.action == q.action)
    if q.subject_type:
        stmt = stmt.where(AuditEntry.subject_type == q.subject_type)
    if q.subject_id is not None:
        stmt = stmt.where(AuditEntry.subject_id == q.subject_id)
    if q.since is not None:
        stmt = stmt.where(AuditEntry.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEntry.at < q.until)
    return stmt


async def known_actions(session: AsyncSession) -> list[str]:
    """Every action written so far (for the viewer's filter)."""
    return sorted(str(a) for a in (await session.scalars(
        select(AuditEntry.action).distinct())).all())


async def known_subject_types(session: AsyncSession) -> list[str]:
    return sorted(str(a) for a in (await session.scalars(
        select(AuditEntry.subject_type).distinct())).all())
