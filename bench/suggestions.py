"""The add-on suggestion lookup at 1 M customers (issue 16, docs/suggestions.md): the
one engine (`saumaton.orders.suggestions`) that the pickup counter, the till and the
webshop's cart and checkout call.

Creates a database of its own (PostgreSQL: `suggest_bench_<pid>` next to the admin
DSN; SQLite: a file in a temporary folder), migrates it, loads the demo shop and fills
it with COPY (SQLite: executemany) from a seeded generator:

* 5,000 variants: 250 shade products (foundation, concealer, lipstick) of 12 shades
  each, named by shade as the demo's are ("2N Posliini"), and 1,000 skincare products
  in two sizes; products come in pairs that sell together (a "bundle" signal); stock
  at the three locations (15 % of the levels empty);
* `--customers` customers, 40 % with a `shade` preference;
* `--orders` orders over two years, in time order (1-5 lines, about 2.4 on average):
  45 % web (a customer each), 55 % at the two stores (half with a customer), who
  buys skewed towards regular customers; the first line's product drawn by
  popularity (Zipf-like), the second its pair's in 55 % of the orders, the third the
  customer's usual product in 60 % (refills); ~96 % sold, the rest pending, cancelled
  or returned;
* `--carts` guest carts of 1-3 popular variants (for the web cart page).

Then it measures, in-process, `suggestions()` as the channels call it — at a store's
till with a customer, in the webshop with a customer, in the webshop for a guest —
for `--lookups` random (customer, items) pairs each (the customer taken from a
random order, so as active customers come to the till): a first pass with fresh
connections (statements unprepared, each pair seen for the first time: "cold-ish";
the data set is in the OS cache) and a second pass over the same pairs ("warm").
Each lookup's PostgreSQL round trips are counted (asyncpg's protocol calls, as
tests/test_cart_round_trips.py counts them). Then the web cart page
(`GET /shop/cart`, the app in-process through httpx's ASGI transport) for
`--web-carts` of the guest carts: the first view (the engine runs) and the second
(the process's one-minute copy). Prints a table, writes
bench/results/suggestions[_sqlite].json and drops the database (`--keep-db` keeps
it; `--dsn` measures an existing filled database without filling or dropping it).

    python -m bench.suggestions [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres]
        [--customers 1000000] [--orders 1300000] [--lookups 2000] [--web-carts 1000]
    python -m bench.suggestions --sqlite --customers 100000 --orders 130000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, text

from bench.checkout_steps import ROUND_TRIPS
from bench.common import latency_summary, write_result

SEED = 16
SHADE_WORDS = ("Lumi", "Posliini", "Vanilja", "Hiekka", "Hunaja", "Kaneli", "Manteli",
               "Kaakao")
SHADES = [f"{n}{tone} {word}" for n, word in enumerate(SHADE_WORDS, 1) for tone in "CNW"]
SHADE_PRODUCTS = 250
SHADES_PER_PRODUCT = 12
SKIN_PRODUCTS = 1000
SIZES = ("30 ml", "50 ml")
SHADE_CATEGORIES = ("foundation", "concealer", "lipstick")
SKIN_CATEGORIES = ("serums", "cleansers", "moisturisers", "sunscreen")
VAT_BP = 2550
CHUNK = 50_000  # orders per COPY round
CART_COOKIE = "saumaton_cart"


@dataclass
class Catalogue:
    """The generated products: variant ids per product (in the database's ids)."""
    variants: list[list[int]] = field(default_factory=list)  # per product
    price: dict[int, int] = field(default_factory=dict)
    sku: dict[int, str] = field(default_factory=dict)
    name: dict[int, str] = field(default_factory=dict)
    all_ids: list[int] = field(default_factory=list)


class Gen:
    """The seeded generator: who buys what, with which popularity."""

    def __init__(self, cat: Catalogue, customers: int, customer0: int) -> None:
        self.rng = random.Random(SEED)
        self.cat = cat
        self.customers = customers
        self.customer0 = customer0  # the first generated customer's id

    def product(self) -> int:
        # Zipf-like: a few products sell a lot.
        return int(len(self.cat.variants) * self.rng.random() ** 2.2)

    def variant_of(self, product: int) -> int:
        return self.rng.choice(self.cat.variants[product])

    def popular(self) -> int:
        return self.variant_of(self.product())

    def usual(self, customer: int) -> int:
        """The customer's regular product (what she refills)."""
        ids = self.cat.all_ids
        return ids[(customer * 2654435761) % len(ids)]

    def customer(self) -> int:
        # Skewed to regular customers: the first ids buy most (the top one ~27 orders).
        return self.customer0 + int(self.customers * self.rng.random() ** 1.3)

    def items(self, customer: int | None) -> list[int]:
        r = self.rng.random()
        n = 1 if r < 0.3 else 2 if r < 0.6 else 3 if r < 0.8 else 4 if r < 0.92 else 5
        first = self.product()
        out = [self.variant_of(first)]
        if n >= 2:
            out.append(self.variant_of(first ^ 1) if self.rng.random() < 0.55
                       else self.popular())
        if n >= 3:
            out.append(self.usual(customer) if customer is not None
                       and self.rng.random() < 0.6 else self.popular())
        while len(out) < n:
            out.append(self.popular())
        return list(dict.fromkeys(out))


# --- filling -----------------------------------------------------------------------------

class Sink:
    """Where generated rows go: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, pg: asyncpg.Connection | None, lite: sqlite3.Connection | None) -> None:
        self.pg, self.lite = pg, lite

    async def put(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
                  ) -> None:
        if not rows:
            return
        if self.pg is not None:
            await self.pg.copy_records_to_table(table, records=rows, columns=list(columns))
            return
        assert self.lite is not None
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")
        lite = self.lite
        await asyncio.to_thread(lite.executemany, sql, [tuple(_lite(v) for v in r)
                                                          for r in rows])

    async def scalar(self, sql: str) -> Any:
        if self.pg is not None:
            return await self.pg.fetchval(sql)
        assert self.lite is not None
        return self.lite.execute(sql).fetchone()[0]

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            return [tuple(r) for r in await self.pg.fetch(sql)]
        assert self.lite is not None
        return list(self.lite.execute(sql).fetchall())


def _lite(v: Any) -> Any:
    """SQLite keeps UTC datetimes without a zone, as saumaton.db.base.UTCDateTime."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


async def fill(sink: Sink, customers: int, orders: int, carts: int,
               log: dict[str, Any]) -> tuple[Catalogue, Gen, list[str]]:
    now = datetime.now(UTC)
    t0 = time.monotonic()
    cats = dict(await sink.fetch("SELECT slug, id FROM categories"))
    channels = dict(await sink.fetch("SELECT code, id FROM channels"))
    locs = dict(await sink.fetch("SELECT code, id FROM locations"))
    store1, store2, warehouse = locs["store-1"], locs["store-2"], locs["warehouse"]
    rng = random.Random(SEED + 1)

    # Catalogue.
    p0 = int(await sink.scalar("SELECT coalesce(max(id), 0) FROM products")) + 1
    v0 = int(await sink.scalar("SELECT coalesce(max(id), 0) FROM variants")) + 1
    cat = Catalogue()
    products, variants, levels = [], [], []
    vid = v0
    for k in range(SHADE_PRODUCTS + SKIN_PRODUCTS):
        pid = p0 + k
        shade = k < SHADE_PRODUCTS
        kind = (SHADE_CATEGORIES[k % 3] if shade else SKIN_CATEGORIES[k % 4])
        pname = f"Bench {kind} {k}"
        products.append((pid, f"bench-{kind}-{k}", pname, "Bench", "", cats.get(kind),
                         "standard", True, now, False, "", ""))
        names = ([SHADES[(k * 3 + i) % len(SHADES)] for i in range(SHADES_PER_PRODUCT)]
                 if shade else list(SIZES))
        ids = []
        price = 990 + rng.randrange(50) * 100
        for pos, vname in enumerate(names):
            variants.append((vid, pid, f"SB-{k}-{pos}", None, vname, "{}", price, True, pos,
                             "", None))
            for loc in (store1, store2, warehouse):
                on_hand = 0 if rng.random() < 0.15 else rng.randint(1, 40)
                levels.append((vid, loc, on_hand, 0, False, now))
            cat.price[vid], cat.sku[vid] = price, f"SB-{k}-{pos}"
            cat.name[vid] = f"{pname} {vname}"
            ids.append(vid)
            vid += 1
        cat.variants.append(ids)
    cat.all_ids = [v for ids in cat.variants for v in ids]
    await sink.put("products", ("id", "slug", "name", "brand", "description", "category_id",
                                "vat_class_code", "active", "created_at", "gift_card",
                                "name_en", "description_en"), products)
    await sink.put("variants", ("id", "product_id", "sku", "ean", "name", "attributes",
                                "price_cents", "active", "position", "name_en", "cost_cents"),
                   variants)
    await sink.put("stock_levels", ("variant_id", "location_id", "on_hand", "reserved",
                                    "needs_count", "updated_at"), levels)
    log["variants"] = len(variants)

    # Customers and their shade.
    c0 = int(await sink.scalar("SELECT coalesce(max(id), 0) FROM customers")) + 1
    for start in range(0, customers, 200_000):
        ids = range(c0 + start, c0 + min(customers, start + 200_000))
        await sink.put("customers", ("id", "first_name", "last_name", "created_at"),
                       [(i, f"Asiakas{i % 997}", f"Penkki{i}", now) for i in ids])
        await sink.put("customer_preferences", ("customer_id", "key", "value", "updated_by",
                                                "updated_at"),
                       [(i, "shade", SHADES[(i * 7) % len(SHADES)], "", now)
                        for i in ids if i % 5 < 2])
    log["customers"] = customers
    log["fill_catalogue_customers_s"] = round(time.monotonic() - t0, 1)

    # Orders, in time order over two years.
    gen = Gen(cat, customers, c0)
    o0 = int(await sink.scalar("SELECT coalesce(max(id), 0) FROM orders")) + 1
    span = timedelta(days=730)
    lines_total = 0
    order_cols = ("id", "channel_id", "location_id", "customer_id", "status", "currency",
                  "subtotal_cents", "discount_cents", "total_cents", "vat_cents",
                  "paid_cents", "created_by", "created_at", "sold_at", "delivery_method")
    line_cols = ("order_id", "line_no", "variant_id", "location_id", "sku", "name", "quantity",
                 "unit_price_cents", "discount_cents", "total_cents", "vat_rate_bp",
                 "vat_cents")
    r = gen.rng
    for start in range(0, orders, CHUNK):
        orows, lrows = [], []
        for i in range(start, min(orders, start + CHUNK)):
            oid = o0 + i
            at = now - span * (1 - i / orders) - timedelta(seconds=r.random() * 60)
            x = r.random()
            if x < 0.45:
                channel, loc, cust = channels["web"], warehouse, gen.customer()
                y = r.random()
                status = ("shipped" if y < 0.6 else "collected" if y < 0.75 else
                          "paid" if y < 0.9 else "pending" if y < 0.95 else
                          "cancelled" if y < 0.97 else "returned")
                delivery: str | None = "pickup" if status == "collected" else "home"
            else:
                channel, loc = ((channels["pos-1"], store1) if x < 0.8
                                else (channels["pos-2"], store2))
                cust = gen.customer() if r.random() < 0.5 else None
                y = r.random()
                status = ("completed" if y < 0.97 else "partly_returned" if y < 0.99
                          else "returned")
                delivery = None
            items = gen.items(cust)
            total = 0
            for n, v in enumerate(items, 1):
                q = 2 if r.random() < 0.08 else 1
                cents = cat.price[v] * q
                total += cents
                lrows.append((oid, n, v, loc, cat.sku[v], cat.name[v], q, cat.price[v], 0,
                              cents, VAT_BP, cents - round(cents * 10000 / (10000 + VAT_BP))))
            vat = total - round(total * 10000 / (10000 + VAT_BP))
            paid = 0 if status in ("pending", "cancelled") else total
            orows.append((oid, channel, loc, cust, status, "EUR", total, 0, total, vat, paid,
                          "bench", at, at if paid else None, delivery))
        await sink.put("orders", order_cols, orows)
        await sink.put("order_lines", line_cols, lrows)
        lines_total += len(lrows)
        print(f"  orders {start + len(orows):,}/{orders:,}, lines {lines_total:,} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    log["orders"] = orders
    log["order_lines"] = lines_total

    # Guest carts for the web cart page.
    tokens: list[str] = []
    k0 = int(await sink.scalar("SELECT coalesce(max(id), 0) FROM carts")) + 1
    cart_rows, cart_lines = [], []
    for i in range(carts):
        token = f"suggest-bench-{SEED}-{i}"
        tokens.append(token)
        cart_rows.append((k0 + i, token, None, now, now))
        for v in list(dict.fromkeys(gen.popular() for _ in range(r.randint(1, 3)))):
            cart_lines.append((k0 + i, v, 1, now, ""))
    await sink.put("carts", ("id", "token", "customer_id", "created_at", "updated_at"),
                   cart_rows)
    await sink.put("cart_lines", ("cart_id", "variant_id", "quantity", "added_at", "source"),
                   cart_lines)
    log["carts"] = carts
    log["fill_s"] = round(time.monotonic() - t0, 1)
    return cat, gen, tokens


async def reset_sequences(conn: asyncpg.Connection) -> None:
    for table in ("products", "variants", "customers", "orders", "order_lines", "carts"):
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")


# --- measuring -----------------------------------------------------------------------------

class Counter:
    """Round trips to PostgreSQL on the pooled connections (asyncpg protocol calls)."""

    def __init__(self) -> None:
        self.n = 0

    def wrap(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        conn = dbapi_connection.driver_connection
        if hasattr(conn, "_protocol") and not isinstance(conn._protocol, _Counting):
            conn._protocol = _Counting(conn._protocol, self)


class _Counting:
    def __init__(self, inner: Any, counter: Counter) -> None:
        self._inner, self._counter = inner, counter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ROUND_TRIPS:
            return attr

        def counted(*a: Any, **kw: Any) -> Any:
            self._counter.n += 1
            return attr(*a, **kw)
        return counted


Lookup = tuple[int | None, int | None, list[int]]  # location, customer, items


async def lookups_of(url: str, gen: Gen, n: int, store: int) -> dict[str, list[Lookup]]:
    """`n` (customer, items) pairs per case; the customer of a random order."""
    from saumaton.db.uow import Database

    rng = random.Random(SEED + 2)
    db = Database(url)
    try:
        async with db.reader() as s:
            lo, hi = (await s.execute(text(
                "SELECT min(id), max(id) FROM orders WHERE customer_id IS NOT NULL"))).one()
            picked: list[int] = []
            while len(picked) < 2 * n:
                ids = [rng.randint(lo, hi) for _ in range(4 * n)]
                rows = (await s.execute(text(
                    "SELECT customer_id FROM orders WHERE customer_id IS NOT NULL AND id IN "
                    f"({', '.join(str(i) for i in ids)})"))).scalars().all()
                picked += [int(c) for c in rows]
    finally:
        await db.dispose()
    picked = picked[:2 * n]

    def cart() -> list[int]:
        return list(dict.fromkeys(gen.popular() for _ in range(rng.randint(1, 3))))

    return {"till, customer": [(store, c, cart()) for c in picked[:n]],
            "web, customer": [(None, c, cart()) for c in picked[n:]],
            "web, guest": [(None, None, cart()) for _ in range(n)]}


async def measure_engine(url: str, cases: dict[str, list[Lookup]]) -> dict[str, Any]:
    from saumaton.db.uow import Database
    from saumaton.orders.suggestions import suggestions

    out: dict[str, Any] = {}
    for name, lookups in cases.items():
        db = Database(url)  # fresh connections per case: statements not yet prepared
        counter = Counter()
        if db.is_postgres:
            event.listen(db.write_engine.sync_engine, "checkout", counter.wrap)
        found = 0
        try:
            result: dict[str, Any] = {}
            for phase, order in (("cold", lookups), ("warm", _shuffled(lookups))):
                times, trips = [], []
                cpu0 = time.process_time()
                for loc, cust, items in order:
                    async with db.reader() as s:
                        counter.n = 0
                        t0 = time.perf_counter()
                        got = await suggestions(s, loc, cust, items)
                        times.append((time.perf_counter() - t0) * 1000)
                        trips.append(counter.n)
                        found += bool(got)
                result[phase] = latency_summary(times)
                result[phase]["round_trips_mean"] = round(sum(trips) / len(trips), 2)
                # This process's CPU per lookup (the app's share, whatever the load).
                result[phase]["app_cpu_ms"] = round(
                    (time.process_time() - cpu0) * 1000 / len(order), 2)
            result["with_suggestions_share"] = round(found / (2 * len(lookups)), 3)
            out[name] = result
        finally:
            await db.dispose()
        print(f"  {name}: cold p99 {out[name]['cold']['p99']} ms, "
              f"warm p99 {out[name]['warm']['p99']} ms", flush=True)
    return out


def _shuffled(xs: list[Lookup]) -> list[Lookup]:
    ys = list(xs)
    random.Random(SEED + 3).shuffle(ys)
    return ys


async def measure_web(url: str, tokens: list[str], tmp: Path) -> dict[str, Any]:
    """GET /shop/cart of guest carts: the first view runs the engine, the second is the
    process's copy (both include the cart itself and the page)."""
    from saumaton.config import Settings
    from saumaton.web.app import create_app

    # No background jobs in this process: on a freshly filled database they would
    # rebuild a million customers' journeys while the pages are timed.
    settings = Settings(database_url=url, var_dir=tmp / "var",
                        secret_key="bench-secret-key-0123456789", run_jobs=False)
    app = create_app(settings)
    counter = Counter()
    result: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        db = app.state.db
        if db.is_postgres:
            event.listen(db.write_engine.sync_engine, "checkout", counter.wrap)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.bench") as h:
            # The page's own caches (locations, channel, campaigns, templates) first.
            for token in tokens[:5]:
                await h.get("/shop/cart", cookies={CART_COOKIE: "warm-" + token})
            shown = 0
            for phase in ("first view", "second view"):
                times, trips = [], []
                for token in tokens:
                    counter.n = 0
                    t0 = time.perf_counter()
                    r = await h.get("/shop/cart", cookies={CART_COOKIE: token})
                    times.append((time.perf_counter() - t0) * 1000)
                    trips.append(counter.n)
                    if r.status_code != 200:
                        raise SystemExit(f"GET /shop/cart: {r.status_code}")
                    shown += 'data-testid="suggestions"' in r.text
                result[phase] = latency_summary(times)
                result[phase]["round_trips_mean"] = round(sum(trips) / len(trips), 2)
            result["with_suggestions_share"] = round(shown / (2 * len(tokens)), 3)
    return result


# --- the run ---------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


async def prepare(url: str, tmp: Path) -> None:
    from saumaton.db.migrate import upgrade
    from saumaton.db.uow import Database
    from saumaton.demo import load_demo

    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        await load_demo(db, media_dir=tmp / "media")
    finally:
        await db.dispose()


async def run(a: argparse.Namespace) -> dict[str, Any]:
    log: dict[str, Any] = {"machine_before": machine(), "backend":
                           "sqlite" if a.sqlite else "postgresql"}
    name = f"suggest_bench_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp())  # the demo's pictures, the app's var dir, SQLite's file
    if a.sqlite:
        path = tmp / "suggest_bench.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = a.dsn or f"{a.admin_dsn.rsplit('/', 1)[0]}/{name}"
    created = False
    try:
        t0 = time.monotonic()
        if not a.dsn:
            if not a.sqlite:
                admin = await asyncpg.connect(a.admin_dsn)
                try:
                    await admin.execute(f'CREATE DATABASE "{name}"')
                finally:
                    await admin.close()
            created = True
            await prepare(url, tmp)
            log["migrate_demo_s"] = round(time.monotonic() - t0, 1)
            print(f"migrated, demo shop loaded ({log['migrate_demo_s']} s)", flush=True)
        if a.sqlite:
            lite = sqlite3.connect(path, check_same_thread=False)
            sink = Sink(None, lite)
        else:
            pg = await asyncpg.connect(url.replace("+asyncpg", ""))
            sink = Sink(pg, None)
        try:
            if a.dsn:
                _cat, gen = await catalogue_of(sink, a.customers)
                tokens = [r[0] for r in await sink.fetch(
                    "SELECT token FROM carts WHERE token LIKE 'suggest-bench-%' ORDER BY id")]
            else:
                if sink.pg is not None:
                    # The generator's rows are consistent: no per-row foreign key checks.
                    await sink.pg.execute("SET session_replication_role = replica")
                _cat, gen, tokens = await fill(sink, a.customers, a.orders, a.carts, log)
                t1 = time.monotonic()
                if sink.pg is not None:
                    await sink.pg.execute("SET session_replication_role = DEFAULT")
                    await reset_sequences(sink.pg)
                    await sink.pg.execute("VACUUM ANALYZE")
                else:
                    assert sink.lite is not None
                    sink.lite.commit()
                    sink.lite.execute("ANALYZE")
                    sink.lite.commit()
                log["analyze_s"] = round(time.monotonic() - t1, 1)
                print(f"filled: {log['order_lines']:,} lines in {log['fill_s']} s, "
                      f"analyzed in {log['analyze_s']} s", flush=True)
            store = int(await sink.scalar("SELECT id FROM locations WHERE code = 'store-1'"))
        finally:
            if sink.pg is not None:
                await sink.pg.close()
            if sink.lite is not None:
                sink.lite.close()
        t2 = time.monotonic()
        if a.lookups:
            log["engine_ms"] = await measure_engine(url, await lookups_of(url, gen, a.lookups,
                                                                          store))
        if a.web_carts:
            log["cart_page_ms"] = await measure_web(url, tokens[:a.web_carts], tmp)
        log["measure_s"] = round(time.monotonic() - t2, 1)
        log["total_s"] = round(time.monotonic() - t0, 1)
        log["machine_after"] = machine()
        return log
    finally:
        if created and not a.keep_db and not a.sqlite:
            admin = await asyncpg.connect(a.admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
        elif created and a.keep_db:
            print(f"kept database {url}")
        if not (a.sqlite and a.keep_db):
            shutil.rmtree(tmp, ignore_errors=True)


async def catalogue_of(sink: Sink, customers: int) -> tuple[Catalogue, Gen]:
    """The generated catalogue of an already filled database (`--dsn`)."""
    cat = Catalogue()
    rows = await sink.fetch(
        "SELECT v.product_id, v.id, v.price_cents, v.sku FROM variants v "
        "WHERE v.sku LIKE 'SB-%' ORDER BY v.product_id, v.position")
    by_product: dict[int, list[int]] = {}
    for pid, vid, price, sku in rows:
        by_product.setdefault(pid, []).append(vid)
        cat.price[vid], cat.sku[vid] = price, sku
    cat.variants = list(by_product.values())
    cat.all_ids = [v for ids in cat.variants for v in ids]
    c0 = int(await sink.scalar("SELECT min(id) FROM customers WHERE last_name LIKE 'Penkki%'"))
    return cat, Gen(cat, customers, c0)


def table(log: dict[str, Any]) -> Iterator[str]:
    yield (f"{'case':18s} {'pass':12s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'max':>7s} "
           f"{'trips':>6s} {'cpu':>6s}")
    for name, r in log.get("engine_ms", {}).items():
        for phase in ("cold", "warm"):
            x = r[phase]
            yield (f"{name:18s} {phase:12s} {x['p50']:7.2f} {x['p95']:7.2f} {x['p99']:7.2f} "
                   f"{x['max']:7.2f} {x['round_trips_mean']:6.2f} "
                   f"{x.get('app_cpu_ms', float('nan')):6.2f}")
    web = log.get("cart_page_ms")
    if web:
        for phase in ("first view", "second view"):
            x = web[phase]
            yield (f"{'GET /shop/cart':18s} {phase:12s} {x['p50']:7.2f} {x['p95']:7.2f} "
                   f"{x['p99']:7.2f} {x['max']:7.2f} {x['round_trips_mean']:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--dsn", help="an already filled database: measure only")
    ap.add_argument("--sqlite", action="store_true", help="SQLite in a temporary folder")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=1_300_000)
    ap.add_argument("--carts", type=int, default=2000)
    ap.add_argument("--lookups", type=int, default=2000,
                    help="per case and pass (0: the cart page only)")
    ap.add_argument("--web-carts", type=int, default=1000, help="0: skip the cart page")
    ap.add_argument("--keep-db", action="store_true")
    a = ap.parse_args()
    log = asyncio.run(run(a))
    for line in table(log):
        print(line)
    write_result("suggestions_sqlite" if a.sqlite else "suggestions", log)
    print(json.dumps({k: v for k, v in log.items() if not k.endswith("_ms")}, indent=1))


if __name__ == "__main__":
    main()
