"""The floor of the stack: what a minimal app costs under the server settings the shop uses.

Issue 15 measured, on its author's machine, the server CPU of a minimal FastAPI app
under the same uvicorn settings as `saumaton serve` (uvloop, httptools, one worker, no
access log), one request type at a time. This benchmark measures the same on the
machine it runs on, so that the shop's own figures can be read against what the stack
allows there. For each case it starts `python -m bench.floor --serve CASE` (a FastAPI
app with that one route, under `uvicorn.run(..., loop="uvloop", http="httptools",
workers=1, access_log=False)`), drives it with ONE keep-alive client (bench/common.py's
lean HTTP/1.1 client) sequentially, WARMUP requests and then REPEATS windows of REQUESTS
requests each, and reports per request:

- server CPU ms: /proc/PID/task/*/schedstat of the server process (the scheduler's
  nanoseconds, summed over its threads), with utime+stime (10 ms ticks) beside it;
- PostgreSQL CPU ms: the same for the backends of the server's connections;
- round trips: the app's database connections go through bench/pg_proxy.py's counting
  proxy (Sync and Query messages), which runs in this process.

The machine may be shared: each figure is the minimum over the windows (the least
disturbed one), and the windows' range is kept in the JSON.

Cases (the issue's list):

- `empty`: GET, an empty response;
- `jinja`: GET, a small page (a list of 10 products, autoescaped) rendered by Jinja2
  from a template compiled at start;
- `asyncpg`: one prepared SELECT of one row on a connection of an asyncpg pool (the
  pool's reset on release is a no-op, as the shop's pooled connections send nothing
  either); `asyncpg_n`: N such queries on the one connection (the difference over N - 1
  is the cost of a further query);
- `asyncpg_write`: POST, BEGIN, one INSERT, COMMIT on a pooled asyncpg connection;
- `core`: one SELECT of one row through SQLAlchemy Core (`create_async_engine`, asyncpg
  driver, default settings: the connection begins a transaction and rolls it back);
- `orm`: one ORM `select(Item).where(Item.id == i)` in an `AsyncSession`; `orm_n`:
  N of them in one session (different rows, so the identity map answers none).

The rows live in the tables floor_items (1000 rows) and floor_writes, created in the
given database at the start and dropped at the end.

References, measured in this process (client side), after the cases:

- `hmac`: the shop's Paytrail signature (saumaton.payments.paytrail.signing.sign:
  HMAC-SHA256 over the sorted checkout-* headers and a Paytrail-sized JSON body), and
  the whole signed headers (request_headers: nonce, timestamp, signature);
- `http_client`: CPU of this process per POST of that body to a local minimal server
  (the same uvicorn settings), with the lean bench client, httpcore's connection pool
  (what the shop's Paytrail client uses) and httpx's AsyncClient, on uvloop.

    python -m bench.floor --dsn postgresql://postgres@127.0.0.1:5432/DB \
        [--requests 2000] [--warmup 300] [--repeats 3] [--n 10] [--cases empty,jinja,...] \
        [--no-reference]

Result: bench/results/floor.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpcore
import httpx
import uvloop
from fastapi import FastAPI
from fastapi.responses import Response
from jinja2 import Environment
from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.common import CLK_TCK, RESULTS, Connection, machine, write_result
from bench.pg_proxy import CountingProxy
from bench.web_checkout import free_port, thread_ns

ROWS = 1000
APP_NAME = "saumaton_floor"
# The server's connections name themselves: without the proxy (--direct) this is how
# their backends are found (pg_stat_activity).
NAMED = {"application_name": APP_NAME}


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    method: str
    db: str  # "" (none), "asyncpg" or "sqlalchemy"
    queries: int  # 1, or N (the --n option)
    issue_ms: float | None  # the issue's figure (its author's machine)


CASES = (
    Case("empty", "empty FastAPI response", "GET", "", 1, 0.07),
    Case("jinja", "small Jinja page", "GET", "", 1, 0.19),
    Case("asyncpg", "one asyncpg query (pooled, prepared)", "GET", "asyncpg", 1, 0.19),
    Case("asyncpg_n", "N asyncpg queries", "GET", "asyncpg", 0, None),
    Case("asyncpg_write", "asyncpg write transaction (BEGIN, INSERT, COMMIT)", "POST",
         "asyncpg", 1, 0.27),
    Case("core", "SQLAlchemy Core query (async engine, asyncpg)", "GET", "sqlalchemy", 1,
         0.38),
    Case("orm", "ORM query (AsyncSession, select)", "GET", "sqlalchemy", 1, 0.47),
    Case("orm_n", "N ORM queries (one session)", "GET", "sqlalchemy", 0, None),
)
BY_NAME = {c.name: c for c in CASES}
# Per further query (the issue's figures): (case with N, case with 1, issue's ms).
FURTHER = (("asyncpg_n", "asyncpg", 0.014), ("orm_n", "orm", 0.17))

PAGE = """<!doctype html>
<html lang="fi"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/shop.css"></head>
<body><header><a href="/shop">{{ shop }}</a> <a href="/shop/cart">Ostoskori ({{ cart }})</a>
</header><main><h1>{{ title }}</h1>
<ul class="products">
{% for p in products %}  <li><a href="/shop/p/{{ p.slug }}">{{ p.name }}</a>
  <span class="price">{{ "%.2f"|format(p.cents / 100) }} €</span>
  {%- if p.new %} <b>Uusi</b>{% endif %}</li>
{% endfor %}</ul>
<form method="post" action="/shop/newsletter"><input type="hidden" name="csrf_token"
 value="{{ csrf }}"><input name="email" type="email"><button>Tilaa</button></form>
</main><footer>{{ shop }} &middot; {{ year }}</footer></body></html>
"""
PAGE_CONTEXT: dict[str, Any] = {
    "title": "Kasvovoiteet & seerumit", "shop": "Kaunis Iho", "cart": 2, "year": 2026,
    "csrf": "f3a9c0e1b2d4", "products": [
        {"slug": f"tuote-{i}", "name": f"Kosteusvoide <{i}> & seerumi", "cents": 1990 + i * 250,
         "new": i % 3 == 0} for i in range(10)],
}


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "floor_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(Integer)


ITEMS = Item.__table__
SELECT_ONE = "SELECT id, name, price_cents FROM floor_items WHERE id = $1"
INSERT_ONE = "INSERT INTO floor_writes (item_id, quantity) VALUES ($1, $2)"


# --- the server ----------------------------------------------------------------------------

async def _no_reset(_conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing (asyncpg's default sends a reset query, a
    round trip the shop's pooled connections do not make)."""


def sa_url(dsn: str) -> str:
    return "postgresql+asyncpg://" + dsn.split("://", 1)[1]


def build_app(case: Case, dsn: str, n: int) -> FastAPI:
    """A FastAPI app with the one route of `case` at /."""
    queries = case.queries or n
    pool: list[asyncpg.Pool] = []
    engine: list[AsyncEngine] = []
    counter = [0]

    def next_id() -> int:
        counter[0] = counter[0] % ROWS + 1
        return counter[0]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if case.db == "asyncpg":
            pool.append(await asyncpg.create_pool(dsn, min_size=1, max_size=2,
                                                  reset=_no_reset, server_settings=NAMED))
        elif case.db == "sqlalchemy":
            engine.append(create_async_engine(sa_url(dsn), pool_size=2,
                                              connect_args={"server_settings": NAMED}))
        yield
        for p in pool:
            await p.close()
        for e in engine:
            await e.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    template = Environment(autoescape=True).from_string(PAGE)

    async def empty() -> Response:
        return Response()

    async def jinja() -> Response:
        return Response(template.render(PAGE_CONTEXT), media_type="text/html")

    async def pg_read() -> Response:
        async with pool[0].acquire() as conn:
            for _ in range(queries):
                row = await conn.fetchrow(SELECT_ONE, next_id())
        return Response(row["name"], media_type="text/plain")

    async def pg_write() -> Response:
        async with pool[0].acquire() as conn, conn.transaction():
            await conn.execute(INSERT_ONE, next_id(), 1)
        return Response(status_code=201)

    async def core() -> Response:
        async with engine[0].connect() as conn:
            for _ in range(queries):
                row = (await conn.execute(select(ITEMS).where(ITEMS.c.id == next_id()))).one()
        return Response(row.name, media_type="text/plain")

    async def orm() -> Response:
        async with AsyncSession(engine[0]) as session:
            for _ in range(queries):
                item = (await session.execute(select(Item).where(Item.id == next_id()))
                        ).scalar_one()
        return Response(item.name, media_type="text/plain")

    async def echo() -> Response:  # the POST target of the http_client reference
        return Response(b'{"ok":true}', media_type="application/json")

    handlers: dict[str, Callable[[], Awaitable[Response]]] = {
        "empty": empty, "jinja": jinja, "asyncpg": pg_read, "asyncpg_n": pg_read,
        "asyncpg_write": pg_write, "core": core, "orm": orm, "orm_n": orm, "echo": echo}
    app.add_api_route("/", handlers[case.name], methods=[case.method],
                      response_class=Response)
    return app


def serve(case: Case, dsn: str, n: int, port: int) -> None:
    import uvicorn

    # The settings `saumaton serve` uses (saumaton/cli.py).
    uvicorn.run(build_app(case, dsn, n), host="127.0.0.1", port=port, workers=1,
                log_level="warning", access_log=False, loop="uvloop", http="httptools",
                proxy_headers=False)


# --- the measurement -----------------------------------------------------------------------

def _ns(pids: list[int]) -> dict[tuple[int, int], int]:
    return {(pid, tid): ns for pid in pids for tid, ns in thread_ns(pid).items()}


def _delta_ms(a: dict[tuple[int, int], int], b: dict[tuple[int, int], int]) -> float:
    return sum(ns - a.get(k, 0) for k, ns in b.items()) / 1e6


def _ticks(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


async def start_server(case: Case, dsn: str, n: int) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / "floor_server.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.floor", "--serve", case.name, "--dsn", dsn,
        "--n", str(n), "--port", str(port), stdout=log, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    log.close()
    deadline = time.monotonic() + 60
    while True:
        conn = Connection("127.0.0.1", port)
        try:
            await conn.open()
            return proc, port
        except OSError:
            pass
        finally:
            await conn.close()
        if proc.returncode is not None or time.monotonic() > deadline:
            await stop_server(proc)
            raise SystemExit(f"the {case.name} server did not start (see {RESULTS}/"
                             "floor_server.log)")
        await asyncio.sleep(0.1)  # polling the server's start, not synchronisation


async def stop_server(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()  # by its PID: the process this benchmark started
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Backends:
    """The PostgreSQL backends of the server's connections, and the round trips on them:
    from the counting proxy, or (direct connections) from pg_stat_activity, uncounted."""

    def __init__(self, proxy: CountingProxy | None, admin: asyncpg.Connection) -> None:
        self.proxy = proxy
        self.admin = admin

    async def pids(self) -> list[int]:
        if self.proxy is not None:
            return sorted(self.proxy.backend_pids)
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", APP_NAME)
        return sorted(int(r["pid"]) for r in rows)

    def round_trips(self) -> int:
        return 0 if self.proxy is None else self.proxy.round_trips


async def measure_case(case: Case, backends: Backends, server_dsn: str,
                       args: argparse.Namespace) -> dict[str, Any]:
    proc, port = await start_server(case, server_dsn, args.n)
    conn = Connection("127.0.0.1", port)
    body = b"" if case.method == "POST" else None
    expect = 201 if case.name == "asyncpg_write" else 200
    windows: list[dict[str, float]] = []
    try:
        for _ in range(args.warmup):
            r = await conn.request(case.method, "/", body=body)
            if r.status != expect:
                raise SystemExit(f"{case.name}: HTTP {r.status} {r.body[:200]!r}")
        for _ in range(args.repeats):
            pg0 = _ns(await backends.pids())
            srv0, rt0 = _ns([proc.pid]), backends.round_trips()
            ticks0, wall0 = _ticks(proc.pid), time.monotonic()
            for _ in range(args.requests):
                r = await conn.request(case.method, "/", body=body)
                if r.status != expect:
                    raise SystemExit(f"{case.name}: HTTP {r.status}")
            wall = time.monotonic() - wall0
            srv1 = _ns([proc.pid])
            pg1 = _ns(await backends.pids())
            k = args.requests
            windows.append({
                "server_ms": _delta_ms(srv0, srv1) / k,
                "server_ms_utime_stime": (_ticks(proc.pid) - ticks0) * 1000 / CLK_TCK / k,
                "postgres_ms": _delta_ms(pg0, pg1) / k,
                "round_trips": (backends.round_trips() - rt0) / k,
                "wall_ms": wall * 1000 / k})
    finally:
        await conn.close()
        await stop_server(proc)

    def best(key: str) -> float:
        return min(w[key] for w in windows)

    return {"label": case.label, "queries": case.queries or args.n, "issue_ms": case.issue_ms,
            "server_ms": round(best("server_ms"), 4),
            "server_ms_range": [round(w["server_ms"], 4) for w in windows],
            "server_ms_utime_stime": round(best("server_ms_utime_stime"), 3),
            "postgres_ms": round(best("postgres_ms"), 4) if case.db else None,
            "postgres_ms_range": ([round(w["postgres_ms"], 4) for w in windows]
                                  if case.db else None),
            "round_trips": round(best("round_trips"), 2) if backends.proxy else None,
            "wall_ms": round(best("wall_ms"), 3)}


# --- references (client side) --------------------------------------------------------------

def paytrail_body() -> str:
    """A create-payment body of the size the shop sends (three lines, a customer, URLs)."""
    items: list[dict[str, Any]] = [
        {"unitPrice": 2490 + i * 500, "units": 1 + i % 2, "vatPercentage": 25.5,
         "productCode": f"KI-{1000 + i}-50ML", "description": f"Kosteusvoide {i} 50 ml",
         "stamp": f"3f2c9a1e-{i:04d}-4b7a-9e21-0c5d7f3a8b61"} for i in range(3)]
    body = {"stamp": "9b0f3c2a-5d1e-4f7a-8c6b-2e9d1a0f4c3b", "reference": "100234",
            "amount": sum(int(i["unitPrice"]) * int(i["units"]) for i in items),
            "currency": "EUR", "language": "FI", "items": items,
            "customer": {"email": "asiakas@example.fi"},
            "redirectUrls": {"success": "https://kauppa.example.fi/shop/paytrail/return/success",
                             "cancel": "https://kauppa.example.fi/shop/paytrail/return/cancel"},
            "callbackUrls": {"success": "https://kauppa.example.fi/paytrail/callback/success",
                             "cancel": "https://kauppa.example.fi/paytrail/callback/cancel"}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def cpu_ms_per_call(fn: Callable[[], object], calls: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - t0) * 1000 / calls)
    return best


def measure_hmac(repeats: int) -> dict[str, Any]:
    from saumaton.payments.paytrail.signing import request_headers, sign

    body = paytrail_body()
    headers = request_headers("375917", "SAIPPUAKAUPPIAS", "POST", body)
    params = {k: v for k, v in headers.items() if k.startswith("checkout-")}
    return {
        "body_bytes": len(body.encode()),
        "sign_ms": round(cpu_ms_per_call(lambda: sign(params, body, "SAIPPUAKAUPPIAS"),
                                         20000, repeats), 4),
        "request_headers_ms": round(cpu_ms_per_call(
            lambda: request_headers("375917", "SAIPPUAKAUPPIAS", "POST", body), 20000,
            repeats), 4)}


async def measure_http_clients(args: argparse.Namespace) -> dict[str, Any]:
    echo = Case("echo", "POST target", "POST", "", 1, None)
    proc, port = await start_server(echo, "", 1)
    url = f"http://127.0.0.1:{port}/"
    raw = paytrail_body().encode()
    headers = {"content-type": "application/json; charset=utf-8", "signature": "0" * 64}
    lean = Connection("127.0.0.1", port)
    pool = httpcore.AsyncConnectionPool(retries=2, keepalive_expiry=30.0)
    client = httpx.AsyncClient()

    async def lean_post() -> int:
        return (await lean.request("POST", "/", headers, raw)).status

    async def httpcore_post() -> int:
        r = await pool.request("POST", url, headers=list(headers.items()), content=raw)
        return r.status

    async def httpx_post() -> int:
        return (await client.post(url, content=raw, headers=headers)).status_code

    out: dict[str, Any] = {"body_bytes": len(raw)}
    try:
        for name, post in (("lean_client", lean_post), ("httpcore", httpcore_post),
                           ("httpx", httpx_post)):
            for _ in range(args.warmup):
                await post()
            client_ms, server_ms = [], []
            for _ in range(args.repeats):
                srv0, t0 = _ns([proc.pid]), time.process_time()
                for _ in range(args.requests):
                    if await post() != 200:
                        raise SystemExit(f"{name}: POST failed")
                client_ms.append((time.process_time() - t0) * 1000 / args.requests)
                server_ms.append(_delta_ms(srv0, _ns([proc.pid])) / args.requests)
            out[name] = {"client_ms": round(min(client_ms), 4),
                         "client_ms_range": [round(x, 4) for x in client_ms],
                         "server_ms": round(min(server_ms), 4)}
    finally:
        await lean.close()
        await pool.aclose()
        await client.aclose()
        await stop_server(proc)
    return out


# --- main ----------------------------------------------------------------------------------

async def setup_tables(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""
            DROP TABLE IF EXISTS floor_items, floor_writes;
            CREATE TABLE floor_items (id integer PRIMARY KEY, name varchar(100) NOT NULL,
                                      price_cents integer NOT NULL);
            CREATE TABLE floor_writes (id bigserial PRIMARY KEY, item_id integer NOT NULL,
                                       quantity integer NOT NULL,
                                       created_at timestamptz NOT NULL DEFAULT now());
        """)
        await conn.copy_records_to_table(
            "floor_items", records=[(i, f"Tuote {i}", 990 + i) for i in range(1, ROWS + 1)])
        await conn.execute("ANALYZE floor_items")
    finally:
        await conn.close()


async def drop_tables(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS floor_items, floor_writes")
    finally:
        await conn.close()


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def table(res: dict[str, Any]) -> str:
    lines = [f"{'case':<52} {'server ms':>10} {'issue ms':>9} {'ratio':>6} "
             f"{'PG ms':>7} {'rt':>5}"]
    for name, c in res["cases"].items():
        issue = c["issue_ms"]
        ratio = f"{c['server_ms'] / issue:.2f}" if issue else ""
        pg = "" if c["postgres_ms"] is None else f"{c['postgres_ms']:.3f}"
        label = c["label"].replace("N ", f"{c['queries']} ") if name.endswith("_n") else c["label"]
        rt = "" if c["round_trips"] is None else c["round_trips"]
        lines.append(f"{label:<52} {c['server_ms']:>10.3f} {issue or '':>9} {ratio:>6} "
                     f"{pg:>7} {rt:>5}")
    for name, f in res["further_query"].items():
        lines.append(f"{'  per further query (' + name + ')':<52} {f['server_ms']:>10.3f} "
                     f"{f['issue_ms']:>9} {f['server_ms'] / f['issue_ms']:>6.2f} "
                     f"{f['postgres_ms']:>7.3f}")
    if res.get("ratio_to_issue"):
        lines.append(f"median ratio this machine / the issue's: {res['ratio_to_issue']}")
    ref = res.get("reference") or {}
    if "hmac" in ref:
        h = ref["hmac"]
        lines.append(f"Paytrail HMAC-SHA256 of a {h['body_bytes']}-byte body: sign "
                     f"{h['sign_ms']:.4f} ms, signed headers {h['request_headers_ms']:.4f} ms")
    if "http_client" in ref:
        h = ref["http_client"]
        lines.append("POST of that body to a local server, client CPU ms: " + ", ".join(
            f"{k} {h[k]['client_ms']:.3f}" for k in ("lean_client", "httpcore", "httpx")))
    return "\n".join(lines)


def proxied(dsn: str, port: int) -> str:
    u = urlsplit(dsn)
    auth = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
    return urlunsplit((u.scheme, f"{auth}127.0.0.1:{port}", u.path, u.query, ""))


async def run(args: argparse.Namespace) -> int:
    names = args.cases.split(",") if args.cases else [c.name for c in CASES]
    unknown = set(names) - set(BY_NAME)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; known: {list(BY_NAME)}")
    u = urlsplit(args.dsn)
    proxy = None if args.direct else CountingProxy(u.hostname or "127.0.0.1", u.port or 5432)
    server_dsn = args.dsn if proxy is None else proxied(args.dsn, await proxy.start())
    res: dict[str, Any] = {"machine": machine(), "requests": args.requests,
                           "warmup": args.warmup, "repeats": args.repeats, "n": args.n,
                           "through_proxy": proxy is not None, "cases": {},
                           "further_query": {}}
    await setup_tables(args.dsn)
    admin = await asyncpg.connect(args.dsn)
    backends = Backends(proxy, admin)
    try:
        for name in names:
            res["cases"][name] = await measure_case(BY_NAME[name], backends, server_dsn, args)
            c = res["cases"][name]
            print(f"{name}: server {c['server_ms']:.3f} ms (windows {c['server_ms_range']}), "
                  f"PostgreSQL {c['postgres_ms']} ms, {c['round_trips']} round trips",
                  flush=True)
    finally:
        await admin.close()
        if proxy is not None:
            await proxy.close()
        await drop_tables(args.dsn)
    cases = res["cases"]
    for many, one, issue in FURTHER:
        if many in cases and one in cases and args.n > 1:
            res["further_query"][many] = {
                "server_ms": round((cases[many]["server_ms"] - cases[one]["server_ms"])
                                   / (args.n - 1), 4),
                "postgres_ms": round((cases[many]["postgres_ms"] - cases[one]["postgres_ms"])
                                     / (args.n - 1), 4),
                "issue_ms": issue}
    ratios = sorted(c["server_ms"] / c["issue_ms"] for c in cases.values() if c["issue_ms"])
    if ratios:
        res["ratio_to_issue"] = round(ratios[len(ratios) // 2], 2)
    if args.reference:
        res["reference"] = {"hmac": measure_hmac(args.repeats),
                            "http_client": await measure_http_clients(args)}
    res["machine"]["loadavg_after"] = loadavg()
    path = write_result("floor", res)
    print(table(res))
    print(f"machine: {res['machine']}; {path}")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True, help="a PostgreSQL database (tables "
                    "floor_items and floor_writes are created and dropped in it)")
    ap.add_argument("--requests", type=int, default=2000, help="requests per window")
    ap.add_argument("--warmup", type=int, default=300, help="requests before the windows")
    ap.add_argument("--repeats", type=int, default=3, help="windows per case (the minimum "
                    "counts)")
    ap.add_argument("--n", type=int, default=10, help="queries in the *_n cases")
    ap.add_argument("--cases", default="", help=f"a comma list of {list(BY_NAME)}")
    ap.add_argument("--direct", action="store_true",
                    help="the servers connect to PostgreSQL directly (round trips not "
                         "counted)")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the HMAC and HTTP client references")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        case = (BY_NAME.get(args.serve)
                or Case("echo", "POST target", "POST", "", 1, None))
        serve(case, args.dsn, args.n, args.port)
        return
    # uvloop here too: the HTTP client references run on the loop the shop's server uses.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(run(args)))


if __name__ == "__main__":
    main()
