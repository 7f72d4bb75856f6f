"""Hot statements keep one plan per connection on PostgreSQL (saumaton.db.uow: generic
plans). A prepared statement filtering on `= ANY($1)` was planned anew on every
execution, as its tailored plans looked cheaper than the generic one; read through a
sub-select the array's length is hidden from both alike and, after PostgreSQL's five
tailored plans, the generic plan is kept. On SQLite the same reads return the same rows
(nothing is prepared there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from saumaton.catalogue.services import load_variant_infos, load_variant_infos_pg
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.inventory.services import live_availability
from saumaton.orders.suggestions import suggestions
from tests.support import Shop, make_variants

RUNS = 8  # more than PostgreSQL's five tailored plans


async def _plans(rows: list[Any], needle: str) -> tuple[int, int]:
    """(generic, custom) plans of the one prepared statement whose text has `needle`."""
    mine = [(int(r[1]), int(r[2])) for r in rows if needle in r[0]]
    assert len(mine) == 1, mine
    return mine[0]


_PREPARED = "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"


@pytest.fixture
async def fresh(db: Database) -> AsyncIterator[Database]:
    """The same database through a pool of its own: the statements counted are this
    test's alone. (On the suite's shared connections other tests had run them with
    other arguments, and a table's new statistics meanwhile can make PostgreSQL plan
    anew, which counted as extra tailored plans.)"""
    own = Database(db.url, pool_size=1)
    yield own
    await own.dispose()


async def test_the_stock_levels_of_a_page_are_planned_once(db: Database, fresh: Database,
                                                          shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 7, shop.store1: 2})
    vid = int(str(v["id"]))
    async with fresh.reader() as s:
        for _ in range(RUNS):
            got = await live_availability(fresh, s, [vid])
            assert got[vid].online == 7
            assert {p.location_id: p.on_hand for p in got[vid].locations
                    if p.on_hand} == {shop.warehouse: 7, shop.store1: 2}
        if db.is_postgres:
            rows = list((await s.execute(text(_PREPARED))).all())
            generic, custom = await _plans(rows, "FROM stock_levels WHERE variant_id = ANY")
            assert custom <= 5 and generic >= 1, (generic, custom)


async def test_the_variants_of_an_order_are_planned_once(db: Database, fresh: Database,
                                                         shop: Shop) -> None:
    [v] = await make_variants(db, [1250])
    vid, ean = int(str(v["id"])), str(v["ean"])
    day = utcnow().date()
    async with fresh.uow() as uow:
        for i in range(RUNS):
            if db.is_postgres:
                infos = await load_variant_infos_pg(uow, day, ids=[vid] if i % 2 else [],
                                                    eans=[] if i % 2 else [ean])
            else:
                infos = await load_variant_infos(uow.session, day, ids=[vid])
            assert [(x.id, x.price_cents, x.vat_rate_bp) for x in infos] == [(vid, 1250, 2550)]
        if db.is_postgres:
            rows = await uow.fetch(_PREPARED)
            generic, custom = await _plans(rows, "v.ean = ANY")
            assert custom <= 5 and generic >= 1, (generic, custom)


async def test_a_statement_alone_is_its_own_transaction(db: Database, shop: Shop) -> None:
    """`UnitOfWork.fetchrow_alone` (the cart's add): one statement, committed when it
    returns, without BEGIN or COMMIT; refused once the unit of work has begun."""
    if not db.is_postgres:
        with pytest.raises(RuntimeError):  # PostgreSQL's hot path only
            async with db.uow() as uow:
                await uow.fetchrow_alone("SELECT 1")
        return
    async with db.uow() as uow:
        row = await uow.fetchrow_alone(
            "INSERT INTO carts (token, created_at, updated_at) VALUES ($1, now(), now()) "
            "RETURNING id", "alone-1")
        assert row[0] > 0
        # Left without a commit, the unit of work rolls back nothing: the statement
        # committed on its own (its round trips: tests/test_cart_round_trips.py).
    async with db.reader() as s:
        assert await s.scalar(text("SELECT count(*) FROM carts WHERE token = 'alone-1'")) == 1
    async with db.uow() as uow:
        await uow.fetchrow("SELECT 1")
        with pytest.raises(RuntimeError):
            await uow.fetchrow_alone("SELECT 1")


async def test_a_suggestion_lookup_is_planned_once(db: Database, fresh: Database,
                                                   shop: Shop) -> None:
    """The add-on engine's one statement (orders/suggestions.py) keeps its generic plan:
    planning it anew cost more than running it."""
    from tests.test_upsell import store_sale, vid

    stock = {shop.store1: 10, shop.warehouse: 10}
    a, b = [vid((await make_variants(db, [900 + i], stock=stock))[0]) for i in range(2)]
    for _ in range(2):
        await store_sale(db, [(a, ""), (b, "")])
    async with fresh.reader() as s:
        for i in range(RUNS):
            got = await suggestions(s, shop.store1 if i % 2 else None, None, [a])
            assert [(g.variant_id, g.available) for g in got] == [(b, 8 if i % 2 else 10)]
        if db.is_postgres:
            rows = list((await s.execute(text(_PREPARED))).all())
            generic, custom = await _plans(rows, "c (kind, variant_id, n, mine)")
            assert custom <= 5 and generic >= 1, (generic, custom)
