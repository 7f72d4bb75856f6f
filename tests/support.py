"""Helpers for tests: throwaway databases, a fixture shop, a real server process."""

from __future__ import annotations

import asyncio
import html
import itertools
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from alembic.script import ScriptDirectory
from sqlalchemy import select
from stdnum import ean as stdnum_ean

from saumaton.catalogue.schemas import ProductIn, VariantIn
from saumaton.catalogue.services import create_product
from saumaton.checkout.services import record_payment_status
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.db.migrate import MIGRATIONS, upgrade
from saumaton.db.uow import Database
from saumaton.inventory.services import Move, apply_moves
from saumaton.locations.models import Channel, Location
from saumaton.orders.schemas import OrderOut
from saumaton.payments.models import PaytrailPayment
from saumaton.staff.models import Staff
from saumaton.staff.services import actor_for, create_api_token, create_staff
from saumaton.tills.models import DrawerSession, Register

T = TypeVar("T")

PG_ADMIN = os.environ.get("SAUMATON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent
# The newest migration; the chain must be linear (one head).
MIGRATION_HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def backends() -> list[str]:
    raw = os.environ.get("SAUMATON_TEST_BACKENDS", "sqlite,postgresql")
    return [b.strip() for b in raw.split(",") if b.strip()]


async def create_pg_database() -> str:
    name = f"saumaton_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_database(backend: str, tmp: Path) -> str:
    """A new, migrated database; returns its URL."""
    if backend == "postgresql":
        url = await create_pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp / f'test-{uuid.uuid4().hex[:8]}.db'}"
    await asyncio.to_thread(upgrade, url)
    return url


@asynccontextmanager
async def own_shop(backend: str, tmp: Path) -> AsyncIterator[tuple[Database, Shop]]:
    """A module's database of its own, migrated and with the shop built, dropped after:
    for tests whose figures must not see the session database's other data."""
    url = await fresh_database(backend, tmp)
    db = Database(url)
    try:
        yield db, await build_shop(db)
    finally:
        await db.dispose()
        if backend == "postgresql":
            await drop_pg_database(url)


_ean_counter = itertools.count(random.randrange(10**6))
_ean_base = random.randrange(10**4)


def new_ean() -> str:
    """A unique valid EAN-13 in the in-store range (prefix 2)."""
    body = f"2{_ean_base:04d}{next(_ean_counter):07d}"
    return body + stdnum_ean.calc_check_digit(body)


@dataclass
class Shop:
    """Locations, channels and staff every test can rely on."""

    store1: int
    store2: int
    warehouse: int
    tokens: dict[str, str] = field(default_factory=dict)  # role name -> bearer token
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (email, pw)

    def auth(self, who: str = "owner") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def build_shop(db: Database) -> Shop:
    async with db.uow() as uow:
        s = uow.session
        locs = [
            Location(code="store-1", name="Store Helsinki", kind="store", sells_in_person=True,
                     ships_web_orders=False, pickup_point=True, web_priority=50),
            Location(code="store-2", name="Store Tampere", kind="store", sells_in_person=True,
                     ships_web_orders=False, pickup_point=True, web_priority=60),
            Location(code="warehouse", name="Warehouse", kind="warehouse",
                     ships_web_orders=True, web_priority=10),
        ]
        s.add_all(locs)
        await s.flush()
        s.add_all([
            Channel(code="web", kind="webshop", name="Webshop"),
            Channel(code="pos-1", kind="pos", name="POS Helsinki", location_id=locs[0].id),
            Channel(code="pos-2", kind="pos", name="POS Tampere", location_id=locs[1].id),
            Channel(code="service", kind="service_desk", name="Service desk"),
            Channel(code="api", kind="api", name="API"),
        ])
        shop = Shop(locs[0].id, locs[1].id, locs[2].id)
        people = {
            "owner": [("owner", None)],
            "manager": [("manager", None)],
            "manager1": [("manager", locs[0].id)],  # the Helsinki store's manager only
            "cashier1": [("cashier", locs[0].id)],
            "cashier2": [("cashier", locs[1].id)],
            "service": [("service", None)],
            "finance": [("finance", None)],
        }
        for who, roles in people.items():
            email, pw = f"{who}@test.example", f"pw-{who}-secret"
            staff = await create_staff(uow, email, who.title(), pw, roles)
            shop.tokens[who] = await create_api_token(uow, staff.id, f"{who} token")
            shop.logins[who] = (email, pw)
        await uow.commit()
    # A store sale made through the API goes into an open drawer session: each store has
    # one of its own for the API (the till pages' register stays closed for the tests
    # that open it).
    for store in (shop.store1, shop.store2):
        await open_drawer(db, store)
    return shop


async def make_variants(db: Database, prices: list[int], *, stock: dict[int, int] | None = None,
                        vat_class: str = "standard", attributes: list[dict[str, str]] | None
                        = None, gift_card: bool = False,
                        category: str | None = None) -> list[dict[str, object]]:
    """A product with one variant per price, stocked per location (in the category with
    the slug `category`, if given); returns variant dicts."""
    tag = uuid.uuid4().hex[:8]
    data = ProductIn(
        slug=f"p-{tag}", name=f"Product {tag}", brand="Test",
        vat_class="zero" if gift_card else vat_class, gift_card=gift_card,
        category_slug=category,
        variants=[VariantIn(sku=f"SKU-{tag}-{i}", ean=new_ean(), name=f"V{i}",
                            attributes=(attributes[i] if attributes else {}), price_cents=p)
                  for i, p in enumerate(prices)],
    )
    async with db.uow() as uow:
        product = await create_product(uow, SYSTEM, data)
        if stock:
            await apply_moves(uow, SYSTEM, [
                Move(v.id, loc, qty, "receipt")
                for v in product.variants for loc, qty in stock.items()])
        await uow.commit()
    return [dict(v.model_dump(), product_slug=product.slug, product_id=product.id)
            for v in product.variants]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def link_caches(source: Database, target: Database) -> None:
    """Events committed through `source` drop `target`'s cached values at once, as a
    commit in `target`'s own process does (between processes the event hub does it,
    a moment later)."""
    own = source.invalidate

    def invalidate(topics: Iterable[str]) -> None:
        topics = tuple(topics)
        own(topics)
        target.invalidate(topics)
    source.invalidate = invalidate  # type: ignore[method-assign]


async def eventually(check: Callable[[], Awaitable[T]], *, within: float,
                     what: str, every: float = 0.05) -> T:
    """The tests' one polling loop: `check` again every `every` seconds until it gives a
    truthy value (returned), failing with `what` after `within` seconds. For conditions
    no event announces (another process's state, a background job); a bounded wait for
    a condition, never a fixed delay."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(every)


# What a scripted HTTP server answers to the n-th request it reads (from 1): bytes to
# write, then whether to close the connection (None: read the request, never answer).
Script = Callable[[int, bytes], tuple[bytes, bool] | None]


@dataclass
class Scripted:
    url: str
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def scripted_servers() -> AsyncIterator[Callable[[Script], Awaitable[Scripted]]]:
    """Raw HTTP/1.1 servers on 127.0.0.1 that answer as a test's script says, one request
    at a time per connection; each counts its connections and keeps what it was sent.
    `(await start(script)).url` is `http://127.0.0.1:port/base`."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []
    handlers: list[asyncio.Task[Any]] = []

    async def start(script: Script) -> Scripted:
        state = Scripted("")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            task = asyncio.current_task()
            assert task is not None
            handlers.append(task)
            state.connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    request = head + await reader.readexactly(length)
                    state.requests.append(request)
                    answer = script(len(state.requests), request)
                    if answer is None:
                        await reader.read()  # never answers; waits for the client to go
                        return
                    data, close = answer
                    writer.write(data)
                    await writer.drain()
                    if close:
                        return
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/base"
        return state

    try:
        yield start
    finally:
        for s in servers:
            s.close()
        for w in writers:
            w.close()
        if handlers:  # each sees its connection end and returns
            await asyncio.wait(handlers, timeout=5)


class Server:
    """A real uvicorn process serving the app against a test database."""

    def __init__(self, database_url: str, var_dir: Path, workers: int = 1,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Every test client comes from 127.0.0.1: the per-address sign-in limit would
        # add up the whole suite's wrong passwords (tests/test_security.py tests it).
        env = dict(os.environ, SAUMATON_DATABASE_URL=database_url,
                   SAUMATON_VAR_DIR=str(var_dir), PORT=str(self.port),
                   SAUMATON_LOGIN_MAX_FAILURES_PER_ADDRESS="100000", **(extra_env or {}))
        var_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(var_dir / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            # As a shop runs it: `saumaton serve` (uvicorn with the shop's own protocol
            # class and settings, saumaton/cli.py), not uvicorn's command line.
            [sys.executable, "-m", "saumaton", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            try:  # wait a moment for the process to die; if it does, say why
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"server exited: {Path(self.log.name).read_text()}")
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def staff_login(c: httpx.AsyncClient, shop: Shop, who: str) -> str:
    """Log `who` in through the staff login form; returns the session's CSRF token."""
    page = (await c.get("/staff/login")).text
    email, password = shop.logins[who]
    m = _CSRF_FIELD.search(page)
    assert m, "no CSRF token on the login page"
    r = await c.post("/staff/login", data={"email": email, "password": password,
                                           "csrf_token": m[1]})
    assert r.status_code == 303, r.text
    m = _CSRF_FIELD.search((await c.get("/staff/login")).text)
    assert m
    return m[1]


def text_of(page: str, testid: str) -> str:
    """The text inside the element marked data-testid=testid (tags stripped, spaces
    and no-break spaces folded)."""
    m = re.search(rf'<(\w+)[^>]*\sdata-testid="{re.escape(testid)}"[^>]*>(.*?)</\1>', page,
                  re.S)
    assert m, f"no data-testid={testid!r} in page"
    text = html.unescape(re.sub(r"<[^>]+>", " ", m[2])).replace("\xa0", " ")
    return " ".join(text.split())


def csrf_of(page: str) -> str:
    """The CSRF token of the page's (first) form."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no csrf token"
    return html.unescape(m[1])


async def staff_actor(db: Database, shop: Shop, who: str) -> Actor:
    """The demo shop's staff member `who` (cashier1, manager, …) as the core sees them."""
    async with db.reader() as s:
        staff_id = await s.scalar(select(Staff.id).where(Staff.email == shop.logins[who][0]))
        assert staff_id is not None
        actor = await actor_for(s, int(staff_id))
    assert actor is not None
    return actor


async def open_drawer(db: Database, location_id: int, status: str = "open") -> int:
    """A drawer session of the test's own (on an inactive register, not the store's till
    that pages open); its id."""
    async with db.uow() as uow:
        reg = Register(location_id=location_id, name=f"Kassa {uuid.uuid4().hex[:4]}",
                       active=False)
        uow.session.add(reg)
        await uow.session.flush()
        d = DrawerSession(register_id=reg.id, location_id=location_id, status=status,
                          float_cents=10000, opened_by="test")
        uow.session.add(d)
        await uow.session.flush()
        session_id = int(d.id)
        await uow.commit()
    return session_id


async def pay_web_order(db: Database, settings: Settings, order: OrderOut) -> str:
    """Pay a placed web order as Paytrail's "ok" result does (a payment attempt, then its
    status recorded); returns the Paytrail transaction id."""
    stamp, txn = f"st-{order.id}", f"tx-{order.id}"
    async with db.uow() as uow:
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=stamp, transaction_id=txn,
                                        amount_cents=order.total_cents, status="new"))
        await uow.commit()
    out = await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
    assert out.order_status == "paid"
    return txn


@dataclass(frozen=True)
class NewStore:
    id: int
    code: str
    channel: str  # its till channel's code
    cashier: Actor  # a cashier of this store only


async def new_store(db: Database, prefix: str = "z") -> NewStore:
    """A store of its own (Z numbers and receipt numbers start from 1) with its till
    channel and a cashier."""
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        loc = Location(code=f"{prefix}-{tag}", name=f"Store {tag}", kind="store",
                       sells_in_person=True, ships_web_orders=False, pickup_point=False,
                       web_priority=100)
        uow.session.add(loc)
        await uow.session.flush()
        uow.session.add(Channel(code=f"pos-{tag}", kind="pos", name=f"POS {tag}",
                                location_id=loc.id))
        uow.emit("settings.changed", {"keys": ["locations"]})  # processes' copies
        await uow.commit()
        store_id, code = int(loc.id), str(loc.code)
    return NewStore(store_id, code, f"pos-{tag}", Actor(
        label=f"staff:cashier {tag}", name="Kaisa Kassa",
        grants=(RoleGrant("cashier", store_id),)))
