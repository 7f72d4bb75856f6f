"""Idempotency for write requests other than orders (orders keep their key on the
order row): the first response to a key is stored in the same transaction as the
change it made, so a retry gets that response back instead of changing twice."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict
from saumaton.db.base import Base, UTCDateTime
from saumaton.db.uow import Database, UnitOfWork


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def fingerprint(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


async def _stored(db: Database, scope: str, key: str, request_hash: str) -> Any | None:
    async with db.reader() as s:
        row = (await s.execute(
            select(IdempotencyRecord.request_hash, IdempotencyRecord.response)
            .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        )).first()
    if row is None:
        return None
    if row[0] != request_hash:
        raise Conflict("this Idempotency-Key was used for a different request",
                       code="idempotency_key_reused")
    return row[1]


async def run_once(db: Database, scope: str, key: str | None, request_hash: str,
                   work: Callable[[UnitOfWork], Awaitable[Any]]) -> tuple[Any, bool]:
    """Run `work` in one unit of work unless `key` was seen in `scope`; returns
    (JSON-able result, replayed)."""
    if key:
        stored = await _stored(db, scope, key, request_hash)
        if stored is not None:
            return stored, True
    try:
        async with db.uow() as uow:
            result = await work(uow)
            if key:
                uow.session.add(IdempotencyRecord(scope=scope, key=key,
                                                  request_hash=request_hash,
                                                  response=result, created_at=utcnow()))
                await uow.session.flush()
            await uow.commit()
            return result, False
    except IntegrityError:
        if not key:
            raise
        stored = await _stored(db, scope, key, request_hash)  # a concurrent twin won
        if stored is None:
            raise
        return stored, True
