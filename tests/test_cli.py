"""The real `saumaton` command, run as a subprocess against a fresh database.

One demo load per backend (module fixture); the tests then use that shop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from saumaton.catalogue.models import Variant
from saumaton.config import Settings
from saumaton.customers.models import Customer
from saumaton.db.uow import Database
from saumaton.demo import DEMO_LOGINS
from saumaton.locations.models import Location
from saumaton.orders.models import Order
from saumaton.web.app import create_app
from tests.support import MIGRATION_HEAD, ROOT, create_pg_database, drop_pg_database

_SCRIPT = Path(sys.executable).parent / "saumaton"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [
    sys.executable, "-c", "from saumaton.cli import main; main()"]


@dataclass
class Result:
    code: int
    out: str


@dataclass
class Transcript:
    """What each CLI command printed and returned, in the order they ran."""

    url: str
    var_dir: Path
    upgrade: Result
    demo: Result
    counts_after_demo: tuple[int, ...] = ()
    demo_again: Result | None = None
    counts_after_demo_again: tuple[int, ...] = ()
    check_ok: Result | None = None
    staff: Result | None = None
    corrupted: tuple[int, int, int] = (0, 0, 0)  # variant, location, true on_hand
    check_bad: Result | None = None
    token: Result | None = None
    staff_email: str = field(default_factory=lambda: f"kassa-{uuid.uuid4().hex[:6]}@test.example")


async def run_cli(url: str, var_dir: Path, *args: str, **env: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "SAUMATON_DATABASE_URL": url, "SAUMATON_VAR_DIR": str(var_dir),
             # a narrow terminal: messages must still come out one per line
             "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb", **env},
    )
    try:
        async with asyncio.timeout(120):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Result(await proc.wait(), out.decode())


async def _corrupt_one_level(url: str) -> tuple[int, int, int]:
    """Add 7 to one stock level behind the ledger's back; returns (variant, location, on_hand)."""
    db = Database(url)
    try:
        async with db.write_engine.begin() as conn:
            vid, loc, on_hand = (await conn.execute(text(
                "SELECT variant_id, location_id, on_hand FROM stock_levels "
                "WHERE on_hand > 0 ORDER BY variant_id, location_id LIMIT 1"))).one()
            await conn.execute(text(
                "UPDATE stock_levels SET on_hand = on_hand + 7 "
                "WHERE variant_id = :v AND location_id = :l"), {"v": vid, "l": loc})
    finally:
        await db.dispose()
    return int(vid), int(loc), int(on_hand)


@pytest.fixture(scope="module")
async def cli(backend: str, tmp_path_factory: pytest.TempPathFactory
              ) -> AsyncIterator[Transcript]:
    """A brand-new database driven only through the CLI: one demo load per backend.

    Commands that do not depend on each other run side by side to keep this lean.
    """
    tmp = tmp_path_factory.mktemp(f"cli-{backend}")
    if backend == "postgresql":
        url = await create_pg_database()
    else:
        url = f"sqlite:///{tmp / f'cli-{uuid.uuid4().hex[:8]}.db'}"  # a plain URL, as users type
    try:
        t = Transcript(url, tmp, await run_cli(url, tmp, "db", "upgrade"), Result(-1, ""))
        if t.upgrade.code != 0:
            yield t
            return
        t.demo = await run_cli(url, tmp, "demo-data")
        t.counts_after_demo = await _counts(url)
        t.demo_again, t.check_ok, t.staff = await asyncio.gather(
            run_cli(url, tmp, "demo-data", "--skip-if-loaded"),
            run_cli(url, tmp, "check"),
            run_cli(url, tmp, "staff", "create", t.staff_email, "Kassa CLI",
                    "--role", "cashier@store-1", SAUMATON_STAFF_PASSWORD="cli-password-123"),
        )
        t.counts_after_demo_again = await _counts(url)
        t.corrupted = await _corrupt_one_level(url)
        t.check_bad, t.token = await asyncio.gather(
            run_cli(url, tmp, "check"),
            run_cli(url, tmp, "token", "create", t.staff_email, "--name", "till"),
        )
        yield t
    finally:
        if backend == "postgresql":
            await drop_pg_database(url)


async def _counts(url: str) -> tuple[int, ...]:
    db = Database(url)
    try:
        async with db.reader() as s:
            return tuple([
                int(await s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Location, Variant, Customer, Order)])
    finally:
        await db.dispose()


def _ok(r: Result | None) -> Result:
    assert r is not None, "not run: an earlier CLI step failed"
    assert r.code == 0, r.out
    return r


async def test_db_upgrade_and_demo_data(cli: Transcript) -> None:
    assert "database at head" in _ok(cli.upgrade).out
    assert "demo shop loaded" in _ok(cli.demo).out
    for email, password, role in DEMO_LOGINS:
        assert email in cli.demo.out and password in cli.demo.out
        assert role in cli.demo.out  # on one line, even in 80 columns
    db = Database(cli.url)
    try:
        async with db.reader() as s:
            assert await s.scalar(text("SELECT version_num FROM alembic_version")) == MIGRATION_HEAD
    finally:
        await db.dispose()
    locations, variants, customers, orders = cli.counts_after_demo
    assert locations >= 3 and variants >= 150 and customers > 0 and orders > 0


async def test_demo_data_skip_if_loaded_changes_nothing(cli: Transcript) -> None:
    again = _ok(cli.demo_again)
    assert "already loaded" in again.out and "demo shop loaded" not in again.out
    assert DEMO_LOGINS[0][0] in again.out  # still prints the logins
    assert cli.counts_after_demo_again == cli.counts_after_demo


async def test_check_passes_then_names_a_corrupted_level(cli: Transcript) -> None:
    ok = _ok(cli.check_ok)
    assert "ledger OK" in ok.out and "MISMATCH" not in ok.out
    bad = cli.check_bad
    assert bad is not None
    assert bad.code == 1, bad.out
    assert "ledger OK" not in bad.out
    vid, loc, on_hand = cli.corrupted
    assert (f"MISMATCH variant {vid} @ location {loc}: on_hand {on_hand + 7} vs ledger "
            f"{on_hand}") in bad.out
    assert "1 stock levels disagree with the ledger" in bad.out


async def test_staff_and_token_from_the_cli_work_on_the_api(cli: Transcript) -> None:
    assert f"{cli.staff_email} created" in _ok(cli.staff).out
    token = _ok(cli.token).out.strip().splitlines()[-1].strip()
    assert token.startswith("sau_") and " " not in token

    settings = Settings(database_url=cli.url, var_dir=cli.var_dir / "app",
                        secret_key="cli-test-secret-0123456789")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as api:
            locations = (await api.get("/api/v1/locations")).json()["items"]
            stores = {x["code"]: x["id"] for x in locations}
            bearer = {"Authorization": f"Bearer {token}"}
            mine = await api.get("/api/v1/orders", headers=bearer,
                                 params={"location_id": stores["store-1"], "limit": 5})
            assert mine.status_code == 200, mine.text
            assert all(o["location_id"] == stores["store-1"] for o in mine.json()["items"])
            # the CLI scoped the role to store-1: another store is refused
            theirs = await api.get("/api/v1/orders", headers=bearer,
                                   params={"location_id": stores["store-2"]})
            assert theirs.status_code == 403 and theirs.json()["code"] == "forbidden"
            anon = await api.get("/api/v1/orders")
            assert anon.status_code == 401
            wrong = await api.get("/api/v1/orders",
                                  headers={"Authorization": f"Bearer {token}x"})
            assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_token"


async def test_analytics_prune_deletes_only_old_events(db: Database, database_url: str,
                                                       tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import insert

    from saumaton.analytics.models import AnalyticsEvent
    from saumaton.core.clock import utcnow

    tag = uuid.uuid4().hex
    now = utcnow()
    async with db.uow() as uow:
        await uow.session.execute(insert(AnalyticsEvent), [
            {"kind": "visit", "at": now - timedelta(days=days), "path": f"/{tag}", "data": {}}
            for days in (500, 401, 10)])
        await uow.commit()
    r = _ok(await run_cli(database_url, tmp_path, "analytics-prune", "--older-than-days",
                          "400"))
    assert "analytics events older than 400 days" in r.out
    async with db.reader() as s:
        left = await s.scalar(select(func.count()).select_from(AnalyticsEvent)
                              .where(AnalyticsEvent.path == f"/{tag}"))
    assert left == 1


async def test_report_refresh_builds_the_sales_summary_and_journeys(cli: Transcript) -> None:
    _ok(cli.demo)
    out = _ok(await run_cli(cli.url, cli.var_dir, "report", "refresh"))
    assert "days of the sales summary" in out.out
    bad = await run_cli(cli.url, cli.var_dir, "report", "refresh", "--since", "2026-13-01")
    assert bad.code == 2 and "YYYY-MM-DD" in bad.out
    db = Database(cli.url)
    try:
        async with db.reader() as s:
            days = int(await s.scalar(text("SELECT count(*) FROM sales_daily_days")) or 0)
            sold = int(await s.scalar(text(
                "SELECT coalesce(sum(gross_cents), 0) FROM sales_daily WHERE kind = 'sale'"))
                or 0)
            lines = int(await s.scalar(text(
                "SELECT coalesce(sum(l.total_cents), 0) FROM order_lines l "
                "JOIN orders o ON o.id = l.order_id JOIN variants v ON v.id = l.variant_id "
                "JOIN products p ON p.id = v.product_id "
                "WHERE o.status NOT IN ('pending', 'cancelled') AND NOT p.gift_card")) or 0)
            journeys = int(await s.scalar(text("SELECT count(*) FROM customer_journeys")) or 0)
            buyers = int(await s.scalar(text(
                "SELECT count(DISTINCT customer_id) FROM orders "
                "WHERE customer_id IS NOT NULL AND status NOT IN ('pending', 'cancelled')"))
                or 0)
    finally:
        await db.dispose()
    assert days > 0 and sold == lines > 0
    # The same command brought every buying customer's channel journey up to date.
    assert "channel journeys of" in out.out
    assert journeys == buyers > 0
