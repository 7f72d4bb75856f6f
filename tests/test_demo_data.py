"""The demo shop loader and the scale generator, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import ColumnElement, func, select
from stdnum import ean as stdnum_ean

from saumaton.catalogue.models import Product, Variant
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.base import Base
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.demo import DemoAlreadyLoaded, generate_scale, load_demo
from saumaton.inventory.models import StockLevel, StockMovement
from saumaton.inventory.services import verify_ledger
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment
from saumaton.pricing.models import Campaign, CampaignChannel
from saumaton.staff.services import authenticate

PG_ADMIN = os.environ.get("SAUMATON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    yield f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    # PostgreSQL must be there (CI starts it): a missing server fails, never skips.
    assert await _pg_available(), "no PostgreSQL server at " + PG_ADMIN
    name = f"saumaton_demo_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = PG_ADMIN.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _count(db: Database, model: type[Base], *where: ColumnElement[bool]) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _exercise(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        summary = await load_demo(db)

        # Catalogue, locations, channels.
        assert summary.variants >= 150
        assert await _count(db, Variant) == summary.variants
        assert await _count(db, Location, Location.kind == "store") >= 2
        assert await _count(db, Location, Location.kind == "warehouse") >= 1
        assert await _count(db, Channel) == 5
        assert summary.hero_slug == "kaunis-iho-silk-foundation"
        assert stdnum_ean.is_valid(summary.hero_ean) and len(summary.hero_ean) == 13
        assert summary.hero_ean.startswith("640")
        async with db.reader() as s:
            hero = await s.scalar(
                select(Variant).join(Product, Product.id == Variant.product_id)
                .where(Product.slug == summary.hero_slug).order_by(Variant.position).limit(1))
            assert hero is not None and hero.ean == summary.hero_ean
            assert "shade" in hero.attributes
            eans = (await s.scalars(select(Variant.ean))).all()
            assert all(e is not None and stdnum_ean.is_valid(e) for e in eans)
            assert len(set(eans)) == len(eans)

        # Campaigns: one everywhere, one web-only, a 3-for-2 bundle, a members' price.
        assert await _count(db, Campaign) == 4
        assert await _count(db, CampaignChannel) == 1

        # Customers with orders in the stores and in the webshop.
        assert summary.customers == await _count(db, Customer) >= 40
        assert summary.orders == await _count(db, Order) >= 90
        async with db.reader() as s:
            kinds = set((await s.scalars(
                select(Channel.kind).distinct().join(Order, Order.channel_id == Channel.id)
                .where(Order.customer_id.is_not(None)))).all())
            assert {"pos", "webshop"} <= kinds
            cards = await s.scalar(select(func.count()).select_from(CustomerIdentity)
                                   .where(CustomerIdentity.kind == "card"))
            assert cards == summary.customers // 2
            # Discounted serums were sold under the campaign somewhere.
            assert await s.scalar(select(func.count()).select_from(OrderLine)
                                  .where(OrderLine.campaign_id.is_not(None)))
            # The demo logins work.
            for email, password, _ in summary.logins:
                actor = await authenticate(s, email, password)
                assert actor.grants
            assert await verify_ledger(s) == []

        # Never loaded twice.
        with pytest.raises(DemoAlreadyLoaded):
            await load_demo(db)

        # Scale generator on top.
        before_orders = await _count(db, Order)
        before_lines = await _count(db, OrderLine)
        before_customers = await _count(db, Customer)
        stages: list[tuple[str, int, int]] = []
        await generate_scale(db, customers=200, order_lines=1000,
                             progress=lambda st, d, t: stages.append((st, d, t)), seed=7)
        assert await _count(db, Customer) == before_customers + 200
        assert await _count(db, OrderLine) == before_lines + 1000
        new_orders = await _count(db, Order) - before_orders
        assert 1000 / 5 <= new_orders <= 1000
        assert stages[-1] == ("order_lines", 1000, 1000)
        assert ("customers", 200, 200) in stages
        async with db.reader() as s:
            assert await verify_ledger(s) == []
            sales = await s.scalar(select(func.coalesce(func.sum(StockMovement.quantity), 0))
                                   .where(StockMovement.kind == "sale",
                                          StockMovement.actor == "system:demo-scale"))
            sold = await s.scalar(select(func.sum(OrderLine.quantity)).join(
                Order, Order.id == OrderLine.order_id).where(Order.created_by ==
                                                             "system:demo-scale"))
            assert sales == -int(sold or 0)
            assert await s.scalar(select(func.count()).select_from(StockLevel)
                                  .where(StockLevel.on_hand < 0)) == 0
            # Every paid generated order has its payment, and totals add up.
            unpaid = await s.scalar(
                select(func.count()).select_from(Order)
                .outerjoin(Payment, Payment.order_id == Order.id)
                .where(Order.paid_cents > 0, Payment.id.is_(None)))
            assert unpaid == 0
            mismatch = await s.scalar(
                select(func.count()).select_from(
                    select(Order.id).join(OrderLine, OrderLine.order_id == Order.id)
                    .group_by(Order.id, Order.total_cents)
                    .having(func.sum(OrderLine.total_cents) != Order.total_cents).subquery()))
            assert mismatch == 0
            emails = await s.scalar(select(func.count()).select_from(CustomerIdentity)
                                    .where(CustomerIdentity.kind == "email"))
            assert emails == before_customers + 200

        # A second run adds more without clashing.
        await generate_scale(db, customers=50, order_lines=120, seed=8)
        async with db.reader() as s:
            assert await verify_ledger(s) == []
        assert await _count(db, Customer) == before_customers + 250
    finally:
        await db.dispose()


async def test_demo_data_sqlite(sqlite_url: str) -> None:
    await _exercise(sqlite_url)


async def test_demo_data_postgres(pg_url: str) -> None:
    await _exercise(pg_url)


async def test_scale_needs_the_demo(sqlite_url: str) -> None:
    from saumaton.demo.scale import DemoNotLoaded

    await asyncio.to_thread(upgrade, sqlite_url)
    db = Database(sqlite_url)
    try:
        with pytest.raises(DemoNotLoaded):
            await generate_scale(db, customers=1, order_lines=1)
    finally:
        await db.dispose()
