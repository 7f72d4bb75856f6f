"""Writing and reading the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
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


async def entries_for(session: AsyncSession, subject_type: str, subject_id: int,
                      limit: int = 100) -> list[AuditEntry]:
    """Newest first."""
    return list((await session.scalars(
        select(AuditEntry).where(AuditEntry.subject_type == subject_type,
                                 AuditEntry.subject_id == subject_id)
        .order_by(AuditEntry.id.desc()).limit(limit))).all())
