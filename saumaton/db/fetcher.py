"""What a PostgreSQL hot-path read needs of its connection: `fetch(sql, *args)`.

A unit of work has it (its transaction's driver connection) and so has an asyncpg
connection taken from the pool for a read outside a transaction (`Database.pooled`): a
function that only reads with prepared statements takes either.
"""

from __future__ import annotations

from typing import Any, Protocol


class Fetcher(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...
