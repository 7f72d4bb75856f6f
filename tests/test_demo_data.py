"""The demo shop loader and the scale generator, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import ColumnElement, func, or_, select
from stdnum import ean as stdnum_ean

from saumaton.analytics import KINDS as ANALYTICS_KINDS
from saumaton.analytics.models import AnalyticsEvent
from saumaton.catalogue.models import Product, Variant
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.base import Base
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.demo import DemoAlreadyLoaded, generate_scale, load_demo
from saumaton.inventory.models import StockLevel, StockMovement
from saumaton.inventory.services import verify_ledger
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment, Refund
from saumaton.pricing.models import Campaign, CampaignChannel
from saumaton.returns.models import Return, ReturnLine
from saumaton.service.models import NpsSurvey
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
            # A cancelled order moved no stock (its reservation was released).
            sold = await s.scalar(select(func.sum(OrderLine.quantity)).join(
                Order, Order.id == OrderLine.order_id).where(
                    Order.created_by == "system:demo-scale", Order.status != "cancelled"))
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
                    .group_by(Order.id, Order.total_cents, Order.delivery_fee_cents)
                    .having(func.sum(OrderLine.total_cents) + Order.delivery_fee_cents
                            != Order.total_cents).subquery()))
            assert mismatch == 0
            emails = await s.scalar(select(func.count()).select_from(CustomerIdentity)
                                    .where(CustomerIdentity.kind == "email"))
            assert emails == before_customers + 200

        await _check_after_sale(db)

        # A second run adds more without clashing.
        await generate_scale(db, customers=50, order_lines=120, seed=8)
        async with db.reader() as s:
            assert await verify_ledger(s) == []
        assert await _count(db, Customer) == before_customers + 250
    finally:
        await db.dispose()


async def _check_after_sale(db: Database) -> None:
    """What the scale generator adds after the sales: returns with refunds and stock,
    cancelled web orders, points, NPS answers and funnel events, all consistent."""
    scale = Order.created_by == "system:demo-scale"
    async with db.reader() as s:
        returns = int(await s.scalar(select(func.count()).select_from(Return)
                                     .where(Return.created_by == "system:demo-scale")) or 0)
        sold = int(await s.scalar(select(func.count()).select_from(Order).where(
            scale, Order.status.not_in(("pending", "cancelled")))) or 0)
        # About 5 % of the sales come back (a return 1-30 days later, so a few fewer).
        assert 0.015 * sold <= returns <= 0.10 * sold
        assert await s.scalar(select(func.count()).select_from(Return)
                              .where(Return.status != "completed")) == 0
        # Web orders came back both by post and at a store (cross-channel).
        web_returns = set((await s.execute(
            select(Return.kind, Return.channel).distinct()
            .join(Order, Order.id == Return.order_id)
            .join(Channel, Channel.id == Order.channel_id)
            .where(Channel.kind == "webshop"))).all())
        assert ("post", "web") in web_returns
        assert any(kind == "in_store" and ch.startswith("pos-") for kind, ch in web_returns)
        assert len(set((await s.scalars(select(Return.reason))).all())) >= 3
        # Never more back than sold; returned_quantity == the return lines' units.
        assert await s.scalar(select(func.count()).select_from(OrderLine).where(
            OrderLine.returned_quantity > OrderLine.quantity)) == 0
        per_line = select(ReturnLine.order_line_id, func.sum(ReturnLine.quantity).label("q")
                          ).group_by(ReturnLine.order_line_id).subquery()
        assert await s.scalar(select(func.count()).select_from(OrderLine).outerjoin(
            per_line, per_line.c.order_line_id == OrderLine.id).where(
                OrderLine.returned_quantity != func.coalesce(per_line.c.q, 0))) == 0
        # Refunds == the returns' totals == the lines' refunds == the orders' refunded.
        lines_sum = select(ReturnLine.return_id, func.sum(ReturnLine.refund_cents).label("c")
                           ).group_by(ReturnLine.return_id).subquery()
        refund_sum = select(Refund.return_id, func.sum(Refund.amount_cents).label("c")
                            ).where(Refund.status == "ok").group_by(Refund.return_id).subquery()
        assert await s.scalar(select(func.count()).select_from(Return)
                              .join(lines_sum, lines_sum.c.return_id == Return.id)
                              .join(refund_sum, refund_sum.c.return_id == Return.id)
                              .where(or_(Return.refund_cents != lines_sum.c.c,
                                         Return.refund_cents != refund_sum.c.c))) == 0
        assert await s.scalar(select(func.count()).select_from(Return).outerjoin(
            refund_sum, refund_sum.c.return_id == Return.id).where(
                refund_sum.c.c.is_(None))) == 0
        refunded = int(await s.scalar(select(func.sum(Order.refunded_cents)).where(scale)) or 0)
        assert refunded == int(await s.scalar(select(func.sum(Refund.amount_cents)).join(
            Order, Order.id == Refund.order_id).where(scale)) or 0) > 0
        # A returned order's status says how much came back.
        states = set((await s.scalars(select(Order.status).distinct().where(
            scale, Order.refunded_cents > 0))).all())
        assert states <= {"returned", "partly_returned"} and states
        # Every returned unit is a "return" row in the ledger at the receiving location.
        back = await s.scalar(select(func.sum(StockMovement.quantity)).where(
            StockMovement.kind == "return", StockMovement.actor == "system:demo-scale"))
        assert back == await s.scalar(select(func.sum(ReturnLine.quantity)).join(
            Return, Return.id == ReturnLine.return_id).where(
                Return.created_by == "system:demo-scale"))
        assert await verify_ledger(s) == []
        # Cancelled web orders: unpaid, no payment.
        cancelled = await s.scalar(select(func.count()).select_from(Order)
                                   .where(scale, Order.status == "cancelled"))
        assert cancelled and cancelled < sold * 0.05
        assert await s.scalar(select(func.count()).select_from(Payment).join(
            Order, Order.id == Payment.order_id).where(Order.status == "cancelled")) == 0
        # Points: earned once per identified sale, a return takes its share back.
        earned = await s.scalar(select(func.count()).select_from(LoyaltyEntry).where(
            LoyaltyEntry.kind == "earn", LoyaltyEntry.created_by == "system:demo-scale"))
        buyers = await s.scalar(select(func.count()).select_from(Order).where(
            scale, Order.customer_id.is_not(None),
            Order.status.not_in(("pending", "cancelled")), Order.total_cents >= 100))
        assert earned and earned <= int(buyers or 0)
        assert await s.scalar(select(func.count()).select_from(LoyaltyEntry)
                              .where(LoyaltyEntry.kind == "reverse"))
        # NPS: some asked, some answered with a score 0-10.
        answered = (await s.scalars(select(NpsSurvey.score)
                                    .where(NpsSurvey.score.is_not(None)))).all()
        assert answered and all(0 <= int(x) <= 10 for x in answered if x is not None)
        assert await s.scalar(select(func.count()).select_from(NpsSurvey)
                              .where(NpsSurvey.score.is_(None)))
        # Funnel events: every step, more visits than orders placed, devices recorded.
        kinds = dict((await s.execute(select(AnalyticsEvent.kind, func.count())
                                      .group_by(AnalyticsEvent.kind))).all())
        assert set(kinds) == set(ANALYTICS_KINDS)
        assert kinds["visit"] > kinds["order_placed"] > 0
        placed = await s.scalar(select(func.count()).select_from(AnalyticsEvent).join(
            Order, Order.id == AnalyticsEvent.order_id).where(
                AnalyticsEvent.kind == "order_placed"))
        assert placed == kinds["order_placed"]
        data = await s.scalar(select(AnalyticsEvent.data).limit(1))
        assert data is not None and data["device"] in {"mobile", "desktop", "tablet"}


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
