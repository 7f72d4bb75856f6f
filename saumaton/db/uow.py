"""Unit of work: one transaction, plus the outbox events it emits.

Services receive a UnitOfWork, change rows through `uow.session`, call
`uow.emit(topic, payload)` and the caller commits. Events are inserted into the
outbox in the same transaction; on PostgreSQL the same statement issues
pg_notify, which PostgreSQL delivers only if the transaction commits.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.util import greenlet_spawn

from saumaton.core.clock import utcnow
from saumaton.db.engine import create_engines, dialect_of, normalise_url
from saumaton.events.models import OutboxEvent

NOTIFY_CHANNEL = "saumaton_events"
# PostgreSQL refuses NOTIFY payloads over 8000 bytes; bigger events go by id only.
_NOTIFY_LIMIT = 7000
# One statement for any number of events: insert them (in order) and queue their
# notifications, which PostgreSQL delivers on commit.
_OUTBOX_SQL = (
    "WITH ins AS (INSERT INTO outbox (topic, payload, created_at) "
    "SELECT e.topic, e.payload::json, $3 "
    "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e(topic, payload, n) ORDER BY e.n "
    "RETURNING id, topic, payload, created_at) "
    f"SELECT pg_notify('{NOTIFY_CHANNEL}', CASE WHEN length(payload::text) < $4 "
    "THEN json_build_object('id', id, 'topic', topic, 'payload', payload, "
    "'created_at', created_at)::text "
    "ELSE json_build_object('id', id, 'topic', topic)::text END) FROM ins ORDER BY id"
)
T = TypeVar("T")


def outbox_ctes_pg(events: str, *, now: str) -> str:
    """For a statement that writes its own events with its other rows (one round trip
    less; checkout/paid_pg.py): CTEs inserting the rows of `events` (a query of n, topic,
    payload json) into the outbox in n order, and `outbox_notified` queueing their
    notifications as `_OUTBOX_SQL` does. The statement must read `outbox_notified` (a
    CTE nobody reads is not run), and the unit of work be told with `wrote_events`."""
    return (
        "outbox_ins AS (INSERT INTO outbox (topic, payload, created_at) "
        f"SELECT e.topic, e.payload, {now}::timestamptz FROM ({events}) e ORDER BY e.n "
        "RETURNING id, topic, payload, created_at), "
        "outbox_notified AS (SELECT count(pg_notify("
        f"'{NOTIFY_CHANNEL}', CASE WHEN length(payload::text) < {_NOTIFY_LIMIT} "
        "THEN json_build_object('id', id, 'topic', topic, 'payload', payload, "
        "'created_at', created_at)::text "
        "ELSE json_build_object('id', id, 'topic', topic)::text END)) AS n "
        "FROM (SELECT * FROM outbox_ins ORDER BY id) ob)")


# Errors after which a connection is not handed out again.
_BROKEN = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)


async def _on_driver(driver: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    """One statement straight on an asyncpg connection, its errors wrapped as SQLAlchemy
    wraps them (IntegrityError, else DBAPIError with the asyncpg error as `orig`), so
    that callers handle them as they handle the ORM's."""
    try:
        return await getattr(driver, method)(sql, *args)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(sql, args, exc) from exc
    except (asyncpg.PostgresError, *_BROKEN) as exc:
        raise DBAPIError(sql, args, exc) from exc


class PooledConnection:
    """An asyncpg connection outside a transaction (`Database.pooled`), its errors
    wrapped as the unit of work's own statements are."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    async def _run(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        return await _on_driver(self._driver, method, sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._run("fetch", sql, args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchrow", sql, args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self._run("execute", sql, args)


class RawTransaction:
    """PostgreSQL: a transaction on a pooled connection without a SQLAlchemy session
    (`Database.raw_transaction`), for a hot path whose statements are all prepared ones
    (checkout/services.py, the paid callback): the session's begin, commit and close
    cost about as much CPU as the statements. What such a path needs of a unit of
    work: `fetch`, `fetchrow`, `execute`, `wrote_events`, `commit`; nothing emitted."""

    def __init__(self, db: Database, conn: PooledConnection) -> None:
        self.db = db
        self._conn = conn
        self._written: set[str] = set()
        self.done = False
        self._after: list[Callable[[], None]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await self._conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchrow(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    def wrote_events(self, topics: Iterable[str]) -> None:
        """As `UnitOfWork.wrote_events`."""
        self._written.update(topics)

    async def commit(self) -> None:
        """COMMIT; then, as `UnitOfWork.commit`, the cached values the written events
        make stale are dropped and the commit hooks run, and `after_commit`'s."""
        await self._conn.execute("COMMIT")
        self.done = True
        if self._written:
            self.db.invalidate(self._written)
            self.db.committed()
        for hook in self._after:
            hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """As `UnitOfWork.after_commit`."""
        self._after.append(hook)


async def session_connection(session: AsyncSession) -> PooledConnection:
    """The asyncpg connection under `session`, for prepared statements on the connection
    the request already uses. A request that holds one pooled connection must not wait
    for a second: with every request doing so at once the pool is empty and all of them
    wait for ever (until the pool's timeout). Under a read session (autocommit) each
    statement stands alone, one round trip."""
    conn = await session.connection()
    fairy = await conn.get_raw_connection()
    return PooledConnection(fairy.driver_connection)


class Database:
    def __init__(self, url: str, pool_size: int = 20, pool_timeout: float = 30.0) -> None:
        self.url = normalise_url(url)
        self.dialect = dialect_of(self.url)
        self.write_engine, self.read_engine = create_engines(self.url, pool_size, pool_timeout)
        # A session knows its database (session.info["db"]): a service given only a
        # session can still use this process's reference cache (db/session_cache.py).
        self._writes = async_sessionmaker(self.write_engine, expire_on_commit=False,
                                          info={"db": self})
        self._reads = async_sessionmaker(self.read_engine, expire_on_commit=False,
                                         info={"db": self})
        self.on_commit: list[Callable[[], None]] = []
        self._cache: dict[Hashable, tuple[float, Any]] = {}
        # topic -> keys of the cached values that an event of that topic makes stale
        self._cache_topics: dict[str, set[Hashable]] = {}
        self._cached_topics: set[str] = set()  # every topic a cached value named
        # Bumped by every event of such a topic, even with nothing cached: a load under
        # way when it came is not stored.
        self._invalidations = 0

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session:
            yield session

    async def cached(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[T]], *,
                     topics: Iterable[str] = ()) -> T:
        """`load()`'s result, kept in this process for `ttl` seconds: for reference rows
        that hot paths read on every request and that change rarely (channels,
        locations, VAT rates, campaigns, products). An outbox event of one of `topics`
        drops the value at once: committed here (`UnitOfWork.commit`) or in any other
        process (the event hub calls `invalidate`), so `ttl` is only a backstop for
        changes made outside the app. A load that raises is not cached, nor one that
        began before an invalidation (it may have read the state from before it)."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        topics = tuple(topics)
        self._cached_topics.update(topics)
        began = self._invalidations
        value = await load()
        if began != self._invalidations:
            return value
        if len(self._cache) > 5000:
            self._cache.clear()
            self._cache_topics.clear()
        self._cache[key] = (now + ttl, value)
        for topic in topics:
            self._cache_topics.setdefault(topic, set()).add(key)
        return value

    async def fetchrow_once(self, sql: str, *args: Any) -> Any:
        """PostgreSQL: one prepared statement in a transaction of its own (no BEGIN or
        COMMIT round trips): for a hot read, or a write that stands alone."""
        async with self.pooled() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetch_once(self, sql: str, *args: Any) -> list[Any]:
        """`fetchrow_once` for every row."""
        async with self.pooled() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
        return rows

    @asynccontextmanager
    async def pooled(self) -> AsyncIterator[PooledConnection]:
        """PostgreSQL: a pooled connection for the block, outside any transaction: each
        statement on it is one round trip and its own snapshot (a page's reads that
        need no common snapshot, or writes that each stand alone). Not for a request
        that already holds a connection (a session that ran a statement): see
        `session_connection`."""
        # The pool's connection itself, without a SQLAlchemy Connection around it (a
        # third of the CPU of a statement): the adapter has begun no transaction, so
        # asyncpg runs each statement on its own and the pool's reset sends nothing.
        fairy = await self.write_engine.raw_connection()
        broken = False
        try:
            yield PooledConnection(fairy.driver_connection)
        except DBAPIError as exc:
            broken = isinstance(exc.orig, _BROKEN)
            raise
        finally:
            if broken:
                await greenlet_spawn(fairy.invalidate)  # not handed out again
            await greenlet_spawn(fairy.close)

    @asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[RawTransaction]:
        """PostgreSQL: a pooled connection in a transaction of its own (read committed,
        as the units of work's), rolled back unless `commit` was called; a connection
        whose rollback fails is not handed out again."""
        fairy = await self.write_engine.raw_connection()
        driver = fairy.driver_connection
        assert driver is not None
        tx: RawTransaction | None = None
        try:
            conn = PooledConnection(driver)
            await conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            tx = RawTransaction(self, conn)
            yield tx
        finally:
            settled = tx is not None and tx.done
            try:
                if not settled:
                    with contextlib.suppress(Exception):
                        await driver.execute("ROLLBACK")
                        settled = True
            finally:
                if not settled:  # perhaps still inside the transaction: not reused
                    await greenlet_spawn(fairy.invalidate)
                await greenlet_spawn(fairy.close)

    @property
    def caches_by_topic(self) -> bool:
        """Whether some cached value is dropped by events (the hub then reads each one)."""
        return bool(self._cached_topics)

    def invalidate(self, topics: Iterable[str]) -> None:
        """Drop the cached values that events of these topics make stale."""
        for topic in topics:
            if topic not in self._cached_topics:
                continue
            self._invalidations += 1
            for key in self._cache_topics.pop(topic, ()):
                self._cache.pop(key, None)

    def committed(self) -> None:
        for hook in self.on_commit:
            hook()

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine.pool is not self.write_engine.pool:
            await self.read_engine.dispose()


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.session: AsyncSession = db._writes()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._done = False
        self._driver: Any = None
        self._written: set[str] = set()

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

    # --- PostgreSQL hot paths -----------------------------------------------------------
    # Generic plans: PostgreSQL plans a prepared statement anew for each of its first five
    # executions on a connection, then keeps one generic plan unless that plan looks
    # dearer than the tailored ones. A hot statement that filters on `= ANY($1)` looks
    # cheaper tailored to a short array and so was planned on every execution (a
    # quarter of a millisecond of the server's CPU, more than running it). Reading the
    # array through a sub-select, `= ANY((SELECT $1::int[])::int[])`, hides its length
    # from both kinds of plan alike: the generic plan is kept (tests/test_pg_plans.py).
    # Prepared statements run on the asyncpg connection itself cost a fraction of the
    # CPU of the same statement through SQLAlchemy; the few statements of a sale use
    # them. They run inside this unit of work's transaction and commit or roll back
    # with everything else. Errors surface wrapped as SQLAlchemy wraps them
    # (IntegrityError, else DBAPIError with the asyncpg error as `orig`).

    async def driver(self) -> Any:
        """PostgreSQL only: the asyncpg connection of this unit of work, its
        transaction begun."""
        if self._driver is None:
            if not self.db.is_postgres:
                raise RuntimeError("driver() is for PostgreSQL")
            conn = await self.session.connection()
            fairy = await conn.get_raw_connection()
            adapted = fairy.dbapi_connection
            # SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its own first
            # statement; begin now so that statements sent directly are inside the
            # transaction the session commits.
            if getattr(adapted, "_transaction", None) is None:
                start = getattr(adapted, "_start_transaction", None)
                if start is not None:
                    await start()
                else:  # a future adapter: any statement through it begins
                    await conn.exec_driver_sql("SELECT 1")
            self._driver = fairy.driver_connection
        return self._driver

    async def _run(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        return await _on_driver(await self.driver(), method, sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._run("fetch", sql, args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchrow", sql, args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self._run("execute", sql, args)

    async def fetchrow_alone(self, sql: str, *args: Any) -> Any:
        """PostgreSQL: `sql` as the whole of this unit of work, one statement in a
        transaction of its own (no BEGIN or COMMIT round trips: one round trip where a
        transaction takes three). For a unit of work that has done nothing yet, emits no
        events and commits right after (or raises with nothing written): the statement
        is committed, durably, when it returns, and a rollback cannot undo it."""
        if not self.db.is_postgres:
            raise RuntimeError("fetchrow_alone() is for PostgreSQL")
        if (self._driver is not None or self.events or self._written
                or self.session.in_transaction()):
            raise RuntimeError("fetchrow_alone: the unit of work has begun already")
        return await self.db.fetchrow_once(sql, *args)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once this unit of work has committed (not if it rolls back)."""
        def committed(_session: Any) -> None:
            hook()
        event.listen(self.session.sync_session, "after_commit", committed, once=True)

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.events.append((topic, payload))

    def wrote_events(self, topics: Iterable[str]) -> None:
        """Events of these topics were written to the outbox by a statement of the
        caller's (`outbox_ctes_pg`): the commit drops the cached values they make stale
        and runs the commit hooks, as for emitted events."""
        self._written.update(topics)

    async def commit(self) -> None:
        if self.events:
            await self._write_outbox()
        await self.session.commit()
        self._driver = None  # the next statement begins a new transaction
        self._done = True
        if self.events or self._written:
            self.db.invalidate({topic for topic, _ in self.events} | self._written)
            self.db.committed()
        self.events = []
        self._written = set()

    async def rollback(self) -> None:
        await self.session.rollback()
        self._driver = None
        self.events = []
        self._written = set()

    async def _write_outbox(self) -> None:
        now = utcnow()
        if not self.db.is_postgres:
            await self.session.execute(
                insert(OutboxEvent),
                [{"topic": t, "payload": p, "created_at": now} for t, p in self.events],
            )
            return
        # One round trip: insert the events and queue their notifications.
        await self.execute(
            _OUTBOX_SQL, [t for t, _ in self.events],
            [json.dumps(p, separators=(",", ":")) for _, p in self.events], now, _NOTIFY_LIMIT)


# A unit of work, or a transaction without a session (a hot path's): what statements
# written for both take, with `db`, `fetchrow`, `wrote_events` and `after_commit`.
Transaction = UnitOfWork | RawTransaction
