"""`Database.raw_transaction` (PostgreSQL): a transaction on a pooled connection without
a session, as the paid Paytrail callback uses it: rolled back unless committed (also
when a statement fails), the commit hooks and cache invalidation as a unit of work's."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from saumaton.core.clock import utcnow
from saumaton.db.uow import Database

_INSERT = ("INSERT INTO outbox (topic, payload, created_at) "
           "VALUES ('test.raw_transaction', $1::json, $2) RETURNING id")


async def _exists(db: Database, outbox_id: int) -> bool:
    row = await db.fetchrow_once("SELECT count(*) FROM outbox WHERE id = $1", outbox_id)
    return bool(row[0])


async def test_raw_transaction_commits_or_rolls_back(db: Database, backend: str) -> None:
    if backend != "postgresql":
        assert not db.is_postgres  # the portable path uses units of work only
        return
    # Not committed: rolled back when the block ends, or when it raises.
    async with db.raw_transaction() as tx:
        dropped = (await tx.fetchrow(_INSERT, '{"n":1}', utcnow()))[0]
    assert not await _exists(db, dropped)
    with pytest.raises(RuntimeError):
        async with db.raw_transaction() as tx:
            failed = (await tx.fetchrow(_INSERT, '{"n":2}', utcnow()))[0]
            raise RuntimeError("the caller's error")
    assert not await _exists(db, failed)
    with pytest.raises(DBAPIError):  # a statement's error, wrapped as the unit of work's
        async with db.raw_transaction() as tx:
            await tx.fetchrow("SELECT 1 / 0")

    # Committed: hooks run, the written topics' cached values dropped.
    loads = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    await db.cached(("raw-tx-test",), 60, load, topics=("test.raw_transaction",))
    seen: list[str] = []
    db.on_commit.append(lambda: seen.append("db"))
    try:
        async with db.raw_transaction() as tx:
            kept = (await tx.fetchrow(_INSERT, '{"n":3}', utcnow()))[0]
            tx.wrote_events(("test.raw_transaction",))
            tx.after_commit(lambda: seen.append("tx"))
            await tx.commit()
    finally:
        db.on_commit.pop()
    assert await _exists(db, kept) and seen == ["db", "tx"]
    assert await db.cached(("raw-tx-test",), 60, load, topics=("test.raw_transaction",)) == 2
    async with db.pooled() as conn:  # the pool's connections are outside any transaction
        first = (await conn.fetchrow("SELECT now()"))[0]
        assert (await conn.fetchrow("SELECT now()"))[0] != first  # each its own
        await conn.fetchrow("DELETE FROM outbox WHERE topic = 'test.raw_transaction' "
                            "RETURNING 1")
