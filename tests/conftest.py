"""Every database test runs on SQLite and on PostgreSQL (fixture `backend`).

PostgreSQL must be reachable on 127.0.0.1:5432; when it is not, the tests
fail rather than skip. SAUMATON_TEST_BACKENDS=sqlite narrows a local run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.web.app import create_app

# The browser tests' fixtures (Chromium, contexts), shared by every browser test module.
from tests.browser import browser, contexts  # noqa: F401

# Several app servers on one PostgreSQL behind nginx (tests/cluster.py).
from tests.cluster import two_servers  # noqa: F401
from tests.support import (
    Server,
    Shop,
    backends,
    build_shop,
    drop_pg_database,
    fresh_database,
    link_caches,
)

# Connections per pool of every app the suite runs, in-process or as a server (they
# inherit the environment): with 10 (and as many overflow) the PostgreSQL half of a
# two-worker run held more than the server's 100 connections at its peak.
TEST_DB_POOL_SIZE = 4
os.environ.setdefault("SAUMATON_DB_POOL_SIZE", str(TEST_DB_POOL_SIZE))

# Modules whose tests start several app processes on databases of their own: they run
# with PostgreSQL's group, as in one process, so the connections of both never add up
# past the server's max_connections (100 by default).
OWN_POSTGRESQL = frozenset({"test_kill9.py", "test_two_servers.py", "test_cli.py",
                            "test_demo_data.py", "test_migrations.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: --dist loadgroup) every test of one database runs
    in one worker: the session's database, shop and servers are then built once per
    database, as in a single process, not again for each test file."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "backend" in params:
            item.add_marker(pytest.mark.xdist_group(str(params["backend"])))
        elif item.path.name in OWN_POSTGRESQL:
            item.add_marker(pytest.mark.xdist_group("postgresql"))


@pytest.fixture(scope="session", params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("saumaton")


@pytest.fixture(scope="session")
async def database_url(backend: str, session_tmp: Path) -> AsyncIterator[str]:
    url = await fresh_database(backend, session_tmp)
    yield url
    if backend == "postgresql":
        await drop_pg_database(url)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=TEST_DB_POOL_SIZE)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def shop(db: Database) -> Shop:
    return await build_shop(db)


@pytest.fixture(scope="session")
def settings(database_url: str, session_tmp: Path, backend: str) -> Settings:
    # A var dir per database: mail files are named by the mail's id, which both
    # databases' runs count from 1.
    # Every in-process request comes from 127.0.0.1: the per-address sign-in limit
    # would add up the whole suite's wrong passwords (test_security.py tests it).
    return Settings(database_url=database_url, var_dir=session_tmp / f"var-{backend}",
                    secret_key="test-secret-key-0123456789",
                    login_max_failures_per_address=100000)


@pytest.fixture(scope="session")
async def client(settings: Settings, shop: Shop, db: Database
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (real database, no network)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        # The tests change data through their own Database (`db`), as another process
        # would: the app's per-process caches (products, campaigns...) then hear of it
        # through the event hub, within milliseconds on PostgreSQL but up to a second on
        # SQLite (a poll). Here the test's commit drops them at once, as a commit in the
        # app's own process does; tests/test_reference_cache.py tests the hub's way.
        link_caches(db, app.state.db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.fixture
async def web(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own (own cookies) on the shared in-process app."""
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        yield c


@pytest.fixture(autouse=True)
def _fresh_client_cookies(request: pytest.FixtureRequest) -> Iterator[None]:
    """The in-process client is shared by the session: a test that logs in must not
    leave the next test logged in."""
    yield
    if "client" in request.fixturenames:
        request.getfixturevalue("client").cookies.clear()


@pytest.fixture(scope="session")
def server(database_url: str, shop: Shop, session_tmp: Path, backend: str) -> Iterator[Server]:
    """A real uvicorn process against the same database."""
    srv = Server(database_url, session_tmp / f"server-{backend}")
    yield srv
    srv.stop()
