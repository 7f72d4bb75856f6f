"""A transaction PostgreSQL aborts as a deadlock victim is run again (db/retry.py): a
real deadlock between two connections, recognised through SQLAlchemy's wrapping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from saumaton.db.retry import is_retryable, retried
from saumaton.db.uow import Database
from tests.support import drop_pg_database, fresh_database


async def _deadlock(db: Database) -> BaseException:
    """Two transactions lock rows 1 and 2 in opposite orders; PostgreSQL aborts one."""
    async with db.uow() as setup:
        await setup.session.execute(text("CREATE TABLE pair (id int PRIMARY KEY)"))
        await setup.session.execute(text("INSERT INTO pair VALUES (1), (2)"))
        await setup.commit()
    first_locked = [asyncio.Event(), asyncio.Event()]

    async def side(mine: int, theirs: int, me: int) -> None:
        async with db.uow() as uow:
            await uow.session.execute(text("SELECT 1 FROM pair WHERE id = :i FOR UPDATE"),
                                      {"i": mine})
            first_locked[me].set()
            await first_locked[1 - me].wait()
            await uow.session.execute(text("SELECT 1 FROM pair WHERE id = :i FOR UPDATE"),
                                      {"i": theirs})
            await uow.commit()

    results = await asyncio.gather(side(1, 2, 0), side(2, 1, 1), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results  # one victim, the other went through
    return errors[0]


async def test_a_deadlock_victim_is_recognised_and_run_again(tmp_path: Path) -> None:
    url = await fresh_database("postgresql", tmp_path)
    db = Database(url)
    try:
        victim = await _deadlock(db)
        assert is_retryable(victim)
        assert not is_retryable(ValueError("not a database error"))

        calls = 0

        async def transaction() -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise victim
            return "done"
        assert await retried(transaction) == "done" and calls == 2

        async def always() -> str:
            raise victim
        with pytest.raises(type(victim)):
            await retried(always, tries=2)
    finally:
        await db.dispose()
        await drop_pg_database(url)
