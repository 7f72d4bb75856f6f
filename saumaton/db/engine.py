"""Engines for SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with foreign keys on. Its write transactions start with
BEGIN IMMEDIATE through a single pooled connection, so writers queue instead of
failing with "database is locked"; reads use their own connections and never
wait for writers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

STATEMENT_CACHE = 2000  # prepared statements kept per pooled PostgreSQL connection


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:/// URLs and pick our async drivers."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def dialect_of(url: str) -> str:
    return make_url(url).get_backend_name()


def asyncpg_dsn(url: str) -> str:
    """A DSN asyncpg.connect() understands (for LISTEN connections)."""
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def overflow_for(pool_size: int) -> int:
    """Connections a pool may open beyond pool_size at a peak.

    SQLAlchemy closes an overflow connection as soon as it is returned while the pool
    holds pool_size idle ones, so a process whose steady load needs more than pool_size
    connections opens and closes one for every few requests: a PostgreSQL backend forked,
    its catalogue caches filled and every prepared statement planned again. At 16 web
    shoppers on two workers that churn (about 10 new backends a second) cost half of
    PostgreSQL's CPU per checkout, so the steady size must cover the steady load
    (default 20) and the overflow is only for short peaks."""
    return max(1, pool_size // 2)


def create_engines(url: str, pool_size: int = 20, pool_timeout: float = 30.0
                   ) -> tuple[AsyncEngine, AsyncEngine]:
    """Return (write_engine, read_engine). On PostgreSQL they share one pool."""
    url = normalise_url(url)
    if dialect_of(url) == "sqlite":
        writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        reader = create_async_engine(url, pool_size=pool_size,
                                     max_overflow=overflow_for(pool_size),
                                     pool_timeout=pool_timeout)
        for eng in (writer, reader):
            event.listen(eng.sync_engine, "connect", _sqlite_pragmas)

        @event.listens_for(writer.sync_engine, "connect")
        def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(writer.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return writer, reader
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=overflow_for(pool_size), pool_pre_ping=False,
        pool_timeout=pool_timeout,
        # The most recently used connection first: a quiet process keeps reusing the
        # few connections whose statement caches are warm.
        pool_use_lifo=True,
        # Each statement SQLAlchemy runs is a prepared statement of the connection; one
        # that fell out of the cache costs two more round trips (prepare, and closing
        # the statement it evicted). The app has well over the default 100 distinct
        # statements, so the hot paths' were evicted by everything else; the raw
        # prepared statements of the hot paths (uow.fetch) use asyncpg's own cache.
        connect_args={"prepared_statement_cache_size": STATEMENT_CACHE,
                      "statement_cache_size": STATEMENT_CACHE},
    )
    # Reads run outside a transaction: under READ COMMITTED every statement sees its
    # own snapshot anyway, and this saves the BEGIN and ROLLBACK round trips of each
    # read session. Same pool as the writer.
    return engine, engine.execution_options(isolation_level="AUTOCOMMIT")
