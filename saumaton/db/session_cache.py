"""The Database behind a session, for services that take only a session.

Every session a Database makes carries it in `session.info["db"]`, so a service
given a session (or a unit of work's session) can still use this process's
reference cache (`Database.cached`) without its callers changing. A session made
some other way has none: such a caller reads the rows itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from saumaton.db.uow import Database


def database_of(session: AsyncSession) -> Database | None:
    db: Database | None = session.info.get("db")
    return db
