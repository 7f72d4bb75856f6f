"""Alembic migrations on fresh databases, on both backends.

Up to head, down to base, up again; the reference VAT data; the migrated schema
equals the SQLAlchemy models; and the app's engine settings (SQLite WAL,
foreign keys, BEGIN IMMEDIATE writers; PostgreSQL read committed).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Select, insert, inspect, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex

from saumaton.catalogue.services import vat_rates_on
from saumaton.core.clock import utcnow
from saumaton.customers.models import Customer
from saumaton.db.migrate import downgrade, upgrade
from saumaton.db.models import Base
from saumaton.db.uow import Database
from saumaton.followups.schedule import due_orders_query
from saumaton.locations.models import Channel
from saumaton.orders.models import Order
from tests.support import MIGRATION_HEAD, create_pg_database, drop_pg_database

HEAD = MIGRATION_HEAD


@pytest.fixture
async def blank_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A new, empty (unmigrated) database."""
    if backend == "postgresql":
        url = await create_pg_database()
        yield url
        await drop_pg_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / f'mig-{uuid.uuid4().hex[:8]}.db'}"


async def _tables(db: Database) -> set[str]:
    async with db.write_engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _revision(db: Database) -> str | None:
    async with db.reader() as s:
        value = await s.scalar(text("SELECT version_num FROM alembic_version"))
    return None if value is None else str(value)


# Alembic reflects an index expression without its COLLATE, so these (PostgreSQL-only)
# name-search indexes would always "differ"; test_name_search_indexes compares them
# with the models' DDL instead.
COLLATED_INDEXES = {"ix_customers_name_by_first", "ix_customers_name_by_last"}


def _compared(obj: Any, name: str | None, type_: str, reflected: bool,
              compare_to: Any) -> bool:
    return not (type_ == "index" and name in COLLATED_INDEXES)


def _schema_diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                 "include_object": _compared})
    return list(compare_metadata(ctx, Base.metadata))


async def test_name_search_indexes(blank_url: str, backend: str) -> None:
    """The migrated name-search indexes are the models' (COLLATE "C" included), on
    PostgreSQL; SQLite has none."""
    await asyncio.to_thread(upgrade, blank_url)
    db = Database(blank_url)
    try:
        async with db.reader() as s:
            if backend != "postgresql":
                names = (await s.scalars(text(
                    "SELECT name FROM sqlite_master WHERE type = 'index'"))).all()
                assert not COLLATED_INDEXES & set(names)
                return
            found = dict((await s.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers'"
            ))).tuples().all())
    finally:
        await db.dispose()
    customers = Base.metadata.tables["customers"]
    for index in customers.indexes:
        if index.name in COLLATED_INDEXES:
            ddl = str(CreateIndex(index).compile(dialect=postgresql.dialect()))
            assert found[index.name].replace(" public.", " ").replace(" USING btree", "") \
                == " ".join(ddl.split()), index.name
    assert COLLATED_INDEXES <= set(found)


async def test_upgrade_downgrade_upgrade_round_trip(blank_url: str) -> None:
    model_tables = set(Base.metadata.tables)
    db = Database(blank_url)
    try:
        await asyncio.to_thread(upgrade, blank_url)
        assert await _tables(db) == model_tables | {"alembic_version"}
        assert await _revision(db) == HEAD

        await asyncio.to_thread(downgrade, blank_url, "base")
        assert await _tables(db) == {"alembic_version"}
        assert await _revision(db) is None

        await asyncio.to_thread(upgrade, blank_url)
        assert await _tables(db) == model_tables | {"alembic_version"}
        assert await _revision(db) == HEAD
        async with db.reader() as s:
            # the reference data came back exactly once
            assert await s.scalar(text("SELECT count(*) FROM vat_classes")) == 5
            assert await s.scalar(text("SELECT count(*) FROM vat_rates")) == 9
    finally:
        await db.dispose()


async def test_finnish_vat_rates_in_force_by_date(blank_url: str) -> None:
    await asyncio.to_thread(upgrade, blank_url)
    db = Database(blank_url)
    try:
        async with db.reader() as s:
            assert await vat_rates_on(s, date(2026, 11, 22)) == {
                "standard": 2550, "food": 1350, "books_medicines": 1350, "newspapers": 1000,
                "zero": 0}
            assert await vat_rates_on(s, date(2024, 8, 31)) == {
                "standard": 2400, "food": 1400, "books_medicines": 1000, "newspapers": 1000,
                "zero": 0}
            # the change applies from the first day: 2024-09-01 is already 25.5 %
            assert (await vat_rates_on(s, date(2024, 9, 1)))["standard"] == 2550
            assert (await vat_rates_on(s, date(2025, 12, 31)))["books_medicines"] == 1400
    finally:
        await db.dispose()


async def test_migrated_schema_matches_the_models(blank_url: str) -> None:
    await asyncio.to_thread(upgrade, blank_url)
    db = Database(blank_url)
    try:
        async with db.write_engine.connect() as conn:
            diff = await conn.run_sync(_schema_diff)
    finally:
        await db.dispose()
    assert diff == [], "migrations and models disagree; add a migration:\n" + "\n".join(
        map(repr, diff))


async def test_app_engine_connection_settings(backend: str, blank_url: str) -> None:
    await asyncio.to_thread(upgrade, blank_url)
    db = Database(blank_url)
    try:
        for engine in {db.write_engine, db.read_engine}:
            async with engine.connect() as conn:
                if backend == "sqlite":
                    assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
                    assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                else:
                    level = (await conn.exec_driver_sql("SHOW transaction_isolation")).scalar()
                    assert level == "read committed"
                await conn.rollback()

        # foreign keys are enforced through the app's unit of work
        with pytest.raises(IntegrityError):
            async with db.uow() as uow:
                await uow.session.execute(text(
                    "INSERT INTO stock_levels (variant_id, location_id, on_hand, reserved, "
                    "needs_count, updated_at) VALUES (999999, 999999, 1, 0, false, "
                    "CURRENT_TIMESTAMP)"))
                await uow.commit()

        if backend == "sqlite":
            # a unit of work takes the write lock when it begins (BEGIN IMMEDIATE), so a
            # second writer queues instead of failing half-way through
            path = make_url(blank_url).database
            assert path
            async with db.uow() as uow:
                await uow.session.execute(text("SELECT 1"))
                other = sqlite3.connect(path, timeout=0, isolation_level=None)
                try:
                    with pytest.raises(sqlite3.OperationalError, match="locked"):
                        other.execute("BEGIN IMMEDIATE")
                finally:
                    other.close()
    finally:
        await db.dispose()


async def _plan(db: Database, q: Select[Any]) -> str:
    """The database's own plan of `q` (EXPLAIN; SQLite: EXPLAIN QUERY PLAN)."""
    async with db.reader() as s:
        conn = await s.connection()
        compiled = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        params = tuple(values[name] for name in compiled.positiontup or ())
        explain = "EXPLAIN " if db.is_postgres else "EXPLAIN QUERY PLAN "
        rows = await conn.exec_driver_sql(explain + str(compiled), params)
        return "\n".join(" ".join(str(c) for c in r) for r in rows.all())


async def test_the_follow_up_scan_reads_orders_by_index(blank_url: str) -> None:
    """Migration 0027: the follow-up scheduler's scan of recent purchases
    (followups.schedule.due_orders) reads orders by index in a shop of two years' orders
    where only the last days' are wanted: the sold orders by created_at, the handed-over
    pickups by (status, collected_at) — not the whole table, nor every collected
    order."""
    await asyncio.to_thread(upgrade, blank_url)
    db = Database(blank_url)
    now = utcnow()
    try:
        async with db.uow() as uow:
            s = uow.session
            s.add(Channel(id=1, code="web", kind="webshop", name="Verkkokauppa"))
            s.add(Customer(id=1, first_name="Anna"))
            await s.flush()
            rows: list[dict[str, Any]] = []
            for i in range(20_000):
                at = now - timedelta(minutes=53 * (20_000 - i))  # about two years
                pickup = i % 5 == 0
                rows.append({
                    "channel_id": 1, "customer_id": 1,
                    "status": "collected" if pickup else "completed",
                    "delivery_method": "pickup" if pickup else "home", "created_at": at,
                    "collected_at": at + timedelta(days=1) if pickup else None,
                    "subtotal_cents": 1000, "discount_cents": 0, "total_cents": 1000,
                    "vat_cents": 200, "paid_cents": 1000})
            await s.execute(insert(Order), rows)
            await uow.commit()
        async with db.write_engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        plan = await _plan(db, due_orders_query(now))
    finally:
        await db.dispose()
    assert "Seq Scan on orders" not in plan and "SCAN orders" not in plan, plan
    assert "ix_orders_created_at" in plan, plan
    if db.is_postgres:
        assert "ix_orders_status_collected" in plan, plan
    else:  # both columns of the index, not every collected order
        assert "ix_orders_status_collected (status=? AND collected_at>?)" in plan, plan
