"""A pooled PostgreSQL connection on its own, for a page's one-statement read.

A read session costs ~0.3 ms of CPU before its first statement (the session, its
transaction bookkeeping, the pool checkout through it); a page whose data is one
statement can take the asyncpg connection straight from the read pool instead. The
read engine runs in autocommit, so the statement is one round trip and sees one
snapshot; nothing is left open when the connection goes back to the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.util import greenlet_spawn

from saumaton.db.uow import Database


@asynccontextmanager
async def pooled_driver(db: Database) -> AsyncIterator[Any]:
    """PostgreSQL only: an asyncpg connection of the read pool, outside a transaction."""
    fairy = await db.read_engine.raw_connection()
    try:
        yield fairy.driver_connection
    except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError) as exc:
        # A broken connection does not go back to the pool.
        await greenlet_spawn(fairy.invalidate, exc)
        raise
    finally:
        # Returned to the pool as SQLAlchemy returns its own (that may talk to the
        # driver, hence inside its greenlet).
        await greenlet_spawn(fairy.close)
