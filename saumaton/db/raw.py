"""The driver connection of the read engine, for a read-only page's hot statement.

The read engine runs outside a transaction on PostgreSQL (AUTOCOMMIT), so a statement
sent straight to the asyncpg connection is one round trip: no BEGIN, no ROLLBACK.
asyncpg prepares it once per connection and keeps it (its statement cache). Taken from
the pool directly, not through a session: a page whose other reads all came from the
process's caches never checks out the session's connection at all. Writes go through
a UnitOfWork (`uow.fetch`/`uow.execute`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from saumaton.db.uow import Database


@asynccontextmanager
async def read_driver(db: Database) -> AsyncIterator[Any]:
    """PostgreSQL only: an asyncpg connection of the read engine, for the block."""
    async with db.read_engine.connect() as conn:
        fairy = await conn.get_raw_connection()
        yield fairy.driver_connection
