"""Unit of work: one transaction, plus the outbox events it emits.

Services receive a UnitOfWork, change rows through `uow.session`, call
`uow.emit(topic, payload)` and the caller commits. Events are inserted into the
outbox in the same transaction; on PostgreSQL the same statement issues
pg_notify, which PostgreSQL delivers only if the transaction commits.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saumaton.core.clock import utcnow
from saumaton.db.engine import create_engines, dialect_of, normalise_url
from saumaton.events.models import OutboxEvent

NOTIFY_CHANNEL = "saumaton_events"
# PostgreSQL refuses NOTIFY payloads over 8000 bytes; bigger events go by id only.
_NOTIFY_LIMIT = 7000


class Database:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.dialect = dialect_of(self.url)
        self.write_engine, self.read_engine = create_engines(self.url, pool_size)
        self._writes = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reads = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self.on_commit: list[Callable[[], None]] = []

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session:
            yield session

    def committed(self) -> None:
        for hook in self.on_commit:
            hook()

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.session: AsyncSession = db._writes()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._done = False

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._done:
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.events.append((topic, payload))

    async def commit(self) -> None:
        if self.events:
            await self._write_outbox()
        await self.session.commit()
        self._done = True
        if self.events:
            self.db.committed()
        self.events = []

    async def rollback(self) -> None:
        await self.session.rollback()
        self.events = []

    async def _write_outbox(self) -> None:
        now = utcnow()
        if not self.db.is_postgres:
            await self.session.execute(
                insert(OutboxEvent),
                [{"topic": t, "payload": p, "created_at": now} for t, p in self.events],
            )
            return
        rows = []
        params: dict[str, Any] = {"now": now, "limit": _NOTIFY_LIMIT}
        for i, (topic, payload) in enumerate(self.events):
            rows.append(f"(:t{i}, CAST(:p{i} AS JSON), :now)")
            params[f"t{i}"] = topic
            params[f"p{i}"] = json.dumps(payload, separators=(",", ":"))
        # One round trip: insert the events and queue their notifications.
        sql = (
            "WITH ins AS (INSERT INTO outbox (topic, payload, created_at) VALUES "
            + ", ".join(rows)
            + " RETURNING id, topic, payload, created_at) "
            f"SELECT pg_notify('{NOTIFY_CHANNEL}', CASE WHEN length(payload::text) < :limit "
            "THEN json_build_object('id', id, 'topic', topic, 'payload', payload, "
            "'created_at', created_at)::text "
            "ELSE json_build_object('id', id, 'topic', topic)::text END) FROM ins"
        )
        await self.session.execute(text(sql), params)
