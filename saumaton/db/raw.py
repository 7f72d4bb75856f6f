"""The driver connection under a read session, for a read-only page's hot statement.

`Database.reader()` sessions run outside a transaction on PostgreSQL (the read engine
is AUTOCOMMIT), so a statement sent straight to the asyncpg connection is one round
trip: no BEGIN, no ROLLBACK. asyncpg prepares it once per connection and keeps it
(its statement cache). Writes go through a UnitOfWork (`uow.fetch`/`uow.execute`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def reader_driver(session: AsyncSession) -> Any:
    """PostgreSQL only: the asyncpg connection of a `Database.reader()` session."""
    conn = await session.connection()
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection
