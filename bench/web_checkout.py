"""Benchmark 5: the web checkout, as a browser does it, against the real server.

Three parts, each writing its own JSON:

- `web_checkout`: SHOPPERS concurrent shoppers (default 16) each loop over whole
  guest checkouts for WARMUP + DURATION seconds. One checkout is a fresh guest
  (no cookies): 1. GET the product page (the session's CSRF token), 2. POST
  /shop/cart/add, 3. GET /shop/checkout (the form's `key`), 4. POST
  /shop/checkout with contact and home-delivery address (-> the payment page at
  the Paytrail simulator), 5. POST {payment page}/success?callbacks=1 at the
  simulator (which also sends the server-to-server callback to the app), 6. GET
  the signed return URL (-> the status page), 7. GET the status page, which must
  say data-status="paid". Only step 7's "paid" counts a checkout. Throughput
  and the latency of the whole flow (and of each step) are taken over the
  DURATION after the warm-up. The variants sold have 10^6 units received at the
  first web-shipping location, so the run measures throughput, not sell-out.
- `product_page`: PAGE_CLIENTS clients (default 16) GET /shop/p/{slug} over every
  active product for PAGE_DURATION seconds (each client keeps its cookies).
- `web_oversell`: one variant is counted to exactly UNITS units online (default
  100); BUYERS buyers (default 300) each run the whole flow once, all at once.
  Exactly UNITS must end paid; every other buyer must get 409 with the sold-out
  message, at add-to-cart or at checkout; afterwards the variant has 0 on hand
  and 0 reserved at the web-shipping locations.

The client is one asyncio process on the keep-alive HTTP/1.1 client of
bench/common.py (each shopper: one connection to the app, one to the simulator,
a cookie jar); its CPU is reported, as is the simulator's.

    python -m bench.web_checkout --url http://127.0.0.1:PORT --dsn postgresql://... \
        --token sau_... [--server-pid PID] [--sim-pid PID] [--duration 20] [--warmup 3] \
        [--shoppers 16] [--page-duration 10] [--buyers 300] [--units 100] \
        [--parts checkout,page,oversell]

The server must run with SAUMATON_PAYTRAIL_URL pointing at `saumaton
paytrail-simulator` and SAUMATON_PUBLIC_URL at itself (bench/run.sh does that).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.common import (
    CLK_TCK,
    Connection,
    CpuSampler,
    Response,
    json_body,
    latency_summary,
    pg_fetch,
    write_result,
)

FORM = "application/x-www-form-urlencoded"
CSRF_RE = re.compile(rb'name="csrf_token" value="([^"]+)"')
KEY_RE = re.compile(rb'name="key" value="([^"]+)"')
# The sold-out message of checkout.py's MESSAGES, in either language.
SOLD_OUT = (b"Sorry, this is sold out.", b"loppuunmyyty")
# uvicorn closes a keep-alive connection idle for 5 s; one idle longer than this is
# reopened rather than raced against that close (a request lost in it looks like a
# server failure).
IDLE_REOPEN_S = 2.0
STEPS = ("1_product_page", "2_cart_add", "3_checkout_form", "4_checkout_post",
         "5_simulator_pay", "6_return", "7_status_page")


class FlowFailed(Exception):
    def __init__(self, step: str, status: int, detail: str) -> None:
        super().__init__(f"{step}: HTTP {status} {detail}")
        self.step = step
        self.status = status


class SoldOut(Exception):
    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


class CookieConnection(Connection):
    """Connection that keeps every Set-Cookie header (the base class keeps one
    value per header name), joined by newlines."""

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        first, *rest = head.decode("latin-1").split("\r\n")
        parts = first.split(" ", 2)
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for line in rest:
            if line:
                k, _, v = line.partition(":")
                k, v = k.strip().lower(), v.strip()
                if k == "set-cookie":
                    cookies.append(v)
                else:
                    headers[k] = v
        if cookies:
            headers["set-cookie"] = "\n".join(cookies)
        return int(parts[1]), headers


class Browser:
    """One shopper: keep-alive connections per origin and a cookie jar for the app
    (every cookie the app sets is Path=/ on one host)."""

    def __init__(self, app_url: str) -> None:
        u = urlsplit(app_url)
        self.app_origin = f"{u.scheme}://{u.netloc}"
        self.conns: dict[str, CookieConnection] = {}
        self.last_used: dict[str, float] = {}
        self.cookies: dict[str, str] = {}

    def _conn(self, origin: str) -> CookieConnection:
        c = self.conns.get(origin)
        if c is None:
            u = urlsplit(origin)
            c = self.conns[origin] = CookieConnection(u.hostname or "127.0.0.1", u.port or 80)
        return c

    async def open(self) -> None:
        await self._conn(self.app_origin).open()

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.conns.values()))

    def new_guest(self) -> None:
        self.cookies.clear()

    async def request(self, method: str, url: str, form: dict[str, str] | None = None
                      ) -> Response:
        if form is None:
            return await self.send(method, url, {}, None)
        return await self.send(method, url, {"Content-Type": FORM}, urlencode(form).encode())

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None
                   ) -> Response:
        if url.startswith("http"):
            u = urlsplit(url)
            origin, path = f"{u.scheme}://{u.netloc}", u.path + (f"?{u.query}" if u.query else "")
        else:
            origin, path = self.app_origin, url
        app = origin == self.app_origin
        if app and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = self._conn(origin)
        now = time.monotonic()
        if now - self.last_used.get(origin, now) > IDLE_REOPEN_S:
            await conn.close()  # the server may be closing it right now: never reuse it
        r = await conn.request(method, path, headers, body)
        self.last_used[origin] = time.monotonic()
        if app and "set-cookie" in r.headers:
            for raw in r.headers["set-cookie"].split("\n"):
                name, _, rest = raw.partition("=")
                value, _, attrs = rest.partition(";")
                attrs = attrs.lower()
                if "max-age=0" in attrs or "01 jan 1970" in attrs:
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value.strip()
        return r


def _expect(step: str, r: Response, status: int) -> None:
    if r.status != status:
        if r.status == 409 and any(m in r.body for m in SOLD_OUT):
            raise SoldOut(step)
        raise FlowFailed(step, r.status, r.body[:200].decode(errors="replace"))


def loop_cpu_seconds() -> float:
    """CPU of this thread, which runs the whole load generator (the event loop);
    leaves out CpuSampler's /proc polling thread (~0.03 core, measured)."""
    return time.thread_time()


_phones = itertools.count(random.randrange(10**6, 5 * 10**6))


@dataclass
class Flow:
    """One whole checkout: the time of each step (s) and the order number."""

    steps: dict[str, float] = field(default_factory=dict)
    number: str = ""


async def checkout_flow(b: Browser, slug: str, variant_id: int, email: str) -> Flow:
    flow = Flow()
    clock = time.perf_counter

    async def step(name: str, method: str, url: str, status: int,
                   form: dict[str, str] | None = None) -> Response:
        t = clock()
        r = await b.request(method, url, form)
        flow.steps[name] = clock() - t
        _expect(name, r, status)
        return r

    b.new_guest()
    r = await step(STEPS[0], "GET", f"/shop/p/{slug}?variant={variant_id}", 200)
    m = CSRF_RE.search(r.body)
    if m is None:  # e.g. nothing left to add: any page of the session carries one
        m = CSRF_RE.search((await b.request("GET", "/staff/login")).body)
        if m is None:
            raise FlowFailed(STEPS[0], r.status, "no CSRF token")
    token = m.group(1).decode()
    await step(STEPS[1], "POST", "/shop/cart/add", 303,
               {"csrf_token": token, "variant_id": str(variant_id), "quantity": "1"})
    r = await step(STEPS[2], "GET", "/shop/checkout", 200)
    k = KEY_RE.search(r.body)
    if k is None:
        raise FlowFailed(STEPS[2], r.status, "no checkout key")
    r = await step(STEPS[3], "POST", "/shop/checkout", 303, {
        "csrf_token": token, "key": k.group(1).decode(), "email": email,
        "first_name": "Penkki", "last_name": "Ostaja", "phone": f"040{next(_phones):07d}",
        "delivery": "home", "address_name": "Penkki Ostaja", "street": "Mannerheimintie 1",
        "postcode": "00100", "city": "Helsinki"})
    pay_page = r.headers["location"]
    if not pay_page.startswith("http"):  # back to the order page: the payment did not start
        raise FlowFailed(STEPS[3], r.status, f"payment not started, sent to {pay_page}")
    r = await step(STEPS[4], "POST", pay_page + "/success?callbacks=1", 303,
                   {"provider": "osuuspankki"})
    r = await step(STEPS[5], "GET", r.headers["location"], 303)
    status_url = r.headers["location"]
    r = await step(STEPS[6], "GET", status_url, 200)
    if b'data-status="paid"' not in r.body:
        raise FlowFailed(STEPS[6], r.status, "status page does not say paid")
    flow.number = urlsplit(status_url).path.rsplit("/", 1)[-1]
    return flow


# --- set-up -------------------------------------------------------------------------------

async def api(b: Browser, token: str, method: str, path: str, data: dict[str, Any]
              ) -> dict[str, Any]:
    r = await b.send(method, path, {"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"}, json_body(data))
    if r.status != 201:
        raise SystemExit(f"{method} {path} failed: {r.status} {r.body!r}")
    out: dict[str, Any] = r.json()
    return out


async def web_locations(dsn: str) -> list[int]:
    return [int(r["id"]) for r in await pg_fetch(
        dsn, "SELECT id FROM locations WHERE ships_web_orders ORDER BY web_priority, id")]


async def stock_plenty(b: Browser, dsn: str, token: str, n: int) -> list[tuple[str, int]]:
    """(slug, variant id) of the first variant of N products, each with 10^6 more
    units at the first web-shipping location."""
    rows = await pg_fetch(dsn, """
        SELECT DISTINCT ON (p.id) p.slug, v.id FROM products p
        JOIN variants v ON v.product_id = p.id WHERE p.active AND v.active
        ORDER BY p.id, v.id LIMIT $1""", n)
    [loc, *_] = await web_locations(dsn)
    for r in rows:
        await api(b, token, "POST", "/api/v1/stock/receipts", {
            "variant_id": int(r["id"]), "location_id": loc, "quantity": 1_000_000,
            "reference": "bench web checkout"})
    return [(str(r["slug"]), int(r["id"])) for r in rows]


class DbCpuSampler(CpuSampler):
    """CpuSampler that counts as "postgres" only the backends of this benchmark's
    database: the PostgreSQL server is shared with whatever else runs on the
    machine (other databases' test suites). The server's own shared processes (WAL
    writer, checkpointer, ...) count as "other" too; they are a small share."""

    def __init__(self, server_pid: int | None, dsn: str) -> None:
        super().__init__(server_pid)
        self.marker = f" {urlsplit(dsn).path.lstrip('/')} ".encode()
        self.checked: set[int] = set()

    def _sample(self) -> None:
        super()._sample()
        for pid, kind in list(self.kind.items()):
            if kind == "postgres" and pid not in self.checked:
                self.checked.add(pid)
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if self.marker not in title:
                    self.kind[pid] = "other"


class SimCpu:
    """CPU seconds of one process (the simulator) from /proc."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = self._ticks()

    def _ticks(self) -> int:
        if self.pid is None:
            return 0
        try:
            raw = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0
        rest = raw[raw.rindex(")") + 2:].split()
        return int(rest[11]) + int(rest[12])

    def seconds(self) -> float:
        return (self._ticks() - self.start) / CLK_TCK


# --- part 1: throughput --------------------------------------------------------------------

async def run_checkouts(args: argparse.Namespace, items: list[tuple[str, int]],
                        tag: str) -> dict[str, Any]:
    loop_started = time.perf_counter()
    measure_from = loop_started + args.warmup
    measure_to = measure_from + args.duration
    done: list[tuple[float, float, Flow]] = []  # (end, latency, flow)
    failures: Counter[str] = Counter()
    counter = itertools.count()
    window: dict[str, Any] = {}

    async def shopper(i: int) -> None:
        b = Browser(args.url)
        try:
            while time.perf_counter() < measure_to:
                slug, vid = items[(i + len(done)) % len(items)]
                t0 = time.perf_counter()
                try:
                    flow = await checkout_flow(b, slug, vid,
                                               f"wc{tag}{next(counter)}@example.fi")
                except (FlowFailed, SoldOut, OSError, asyncio.IncompleteReadError) as exc:
                    failures[str(exc)[:120]] += 1
                    await b.close()  # start the next flow on fresh connections
                    b = Browser(args.url)
                    continue
                t1 = time.perf_counter()
                done.append((t1, t1 - t0, flow))
        finally:
            await b.close()

    async def sample() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        window["cpu0"], window["sim"] = loop_cpu_seconds(), SimCpu(args.sim_pid)
        window["sampler"] = DbCpuSampler(args.server_pid, args.dsn).__enter__()
        await asyncio.sleep(max(0.0, measure_to - time.perf_counter()))
        window["sampler"].__exit__()
        window["client_cpu"] = loop_cpu_seconds() - window["cpu0"]
        window["sim_cpu"] = window["sim"].seconds()

    await asyncio.wait_for(asyncio.gather(sample(), *(shopper(i) for i in range(args.shoppers))),
                           timeout=args.warmup + args.duration + 120)
    measured = [(lat, f) for end, lat, f in done if measure_from <= end < measure_to]
    lat_ms = [lat * 1000 for lat, _ in measured]
    cpu = window["sampler"].report(window["client_cpu"])
    cpu["core_seconds"]["paytrail_simulator"] = round(window["sim_cpu"], 2)
    cpu["share_of_machine_pct"]["paytrail_simulator"] = round(
        100.0 * window["sim_cpu"] / (cpu["wall_s"] * cpu["cores"]), 1)
    # The simulator is not in the server's tree: CpuSampler counted it as "other".
    other = max(0.0, cpu["core_seconds"]["other_processes"] - window["sim_cpu"])
    cpu["core_seconds"]["other_processes"] = round(other, 2)
    cpu["share_of_machine_pct"]["other_processes"] = round(
        100.0 * other / (cpu["wall_s"] * cpu["cores"]), 1)
    n = max(len(measured), 1)
    per = {k: round(1000.0 * cpu["core_seconds"][k] / n, 2)
           for k in ("server", "postgres", "load_generator", "paytrail_simulator")}

    [db] = await pg_fetch(args.dsn, """
        WITH o AS (SELECT id, status FROM orders WHERE email LIKE $1)
        SELECT (SELECT count(*) FROM o) AS orders,
               (SELECT count(*) FROM o WHERE status = 'paid') AS paid,
               (SELECT count(*) FROM payments p JOIN o ON o.id = p.order_id
                  WHERE p.status = 'captured') AS payments,
               (SELECT count(*) FROM stock_reservations r WHERE r.status = 'active'
                  AND r.reference IN (SELECT lpad(id::text, 6, '0') FROM o)) AS reservations
    """, f"wc{tag}%")
    facts = {k: int(db[k]) for k in ("orders", "paid", "payments", "reservations")}
    consistent = (facts["orders"] == facts["paid"] == facts["payments"] == len(done)
                  and facts["reservations"] == 0)
    duration = args.duration
    result: dict[str, Any] = {
        "benchmark": "web_checkout",
        "client": "python asyncio streams (bench/common.py), one process; per shopper one "
                  "keep-alive connection to the app and one to the simulator",
        "shoppers": args.shoppers, "warmup_s": args.warmup, "duration_s": duration,
        "variants": [vid for _, vid in items],
        "checkouts_measured": len(measured), "checkouts_total": len(done),
        "checkouts_per_s": round(len(measured) / duration, 1),
        "requests_per_checkout": {"app": 6, "simulator": 1, "callback_to_app": 1},
        "latency_ms": latency_summary(lat_ms),
        "step_latency_ms": {s: latency_summary(f.steps[s] * 1000 for _, f in measured)
                            for s in STEPS},
        "failures": dict(failures),
        "cpu": cpu, "cpu_ms_per_checkout": per,
        "capacity_estimate_checkouts_per_s": round(
            1000.0 * cpu["cores"] / max(sum(per.values()), 1e-9), 1),
        "database_check": dict(facts, consistent=consistent),
        "targets": {"checkouts_per_s": 200, "p99_ms": 250},
    }
    result["targets_met"] = {
        "checkouts_per_s": result["checkouts_per_s"] >= 200,
        "p99_ms": bool(lat_ms) and result["latency_ms"]["p99"] <= 250}
    result["passed"] = consistent and not failures and bool(measured)
    return result


# --- part 2: product page ----------------------------------------------------------------

async def run_product_page(args: argparse.Namespace) -> dict[str, Any]:
    slugs = [str(r["slug"]) for r in await pg_fetch(
        args.dsn, "SELECT slug FROM products WHERE active ORDER BY id")]
    lat: list[float] = []
    statuses: Counter[str] = Counter()
    end = time.perf_counter() + args.page_duration

    async def client(i: int) -> None:
        b = Browser(args.url)
        try:
            for n in itertools.count(i):
                if time.perf_counter() >= end:
                    return
                t0 = time.perf_counter()
                r = await b.request("GET", f"/shop/p/{slugs[n % len(slugs)]}")
                lat.append((time.perf_counter() - t0) * 1000)
                statuses[str(r.status)] += 1
        finally:
            await b.close()

    cpu0 = loop_cpu_seconds()
    t0 = time.perf_counter()
    with DbCpuSampler(args.server_pid, args.dsn) as cpu:
        await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(args.page_clients))),
                               timeout=args.page_duration + 60)
    wall = time.perf_counter() - t0
    report = cpu.report(loop_cpu_seconds() - cpu0)
    summary = latency_summary(lat)
    return {
        "benchmark": "product_page", "clients": args.page_clients, "duration_s": round(wall, 2),
        "products": len(slugs), "requests": len(lat), "statuses": dict(statuses),
        "requests_per_s": round(len(lat) / wall, 1), "latency_ms": summary,
        "cpu": report,
        "server_cpu_ms_per_request": round(
            1000.0 * report["core_seconds"]["server"] / max(len(lat), 1), 2),
        "passed": set(statuses) == {"200"},
    }


# --- part 3: oversell ---------------------------------------------------------------------

async def run_oversell(args: argparse.Namespace, setup: Browser, tag: str) -> dict[str, Any]:
    [row] = await pg_fetch(args.dsn, """
        SELECT p.slug, v.id FROM variants v JOIN products p ON p.id = v.product_id
        WHERE v.active AND p.active AND NOT p.gift_card ORDER BY v.id DESC OFFSET 1 LIMIT 1""")
    slug, vid = str(row["slug"]), int(row["id"])
    locs = await web_locations(args.dsn)
    levels = {int(r["location_id"]): int(r["reserved"]) for r in await pg_fetch(
        args.dsn, "SELECT location_id, reserved FROM stock_levels WHERE variant_id = $1", vid)}
    share, extra = divmod(args.units, len(locs))
    for i, loc in enumerate(locs):  # exactly UNITS available online, like the flash sale
        await api(setup, args.token, "POST", "/api/v1/stock/counts", {
            "variant_id": vid, "location_id": loc,
            "counted": share + (extra if i == 0 else 0) + levels.get(loc, 0),
            "reference": "bench web oversell"})

    browsers = [Browser(args.url) for _ in range(args.buyers)]
    gate = asyncio.Semaphore(100)

    async def connect(b: Browser) -> None:
        async with gate:
            await b.open()

    await asyncio.gather(*(connect(b) for b in browsers))
    outcomes: list[tuple[str, float]] = []

    async def buyer(i: int, b: Browser) -> None:
        t0 = time.perf_counter()
        try:
            await checkout_flow(b, slug, vid, f"wo{tag}{i}@example.fi")
            kind = "paid"
        except SoldOut as exc:
            kind = f"sold_out_at_{exc.step}"
        except (FlowFailed, OSError, asyncio.IncompleteReadError) as exc:
            kind = f"failed: {str(exc)[:100]}"
        outcomes.append((kind, time.perf_counter() - t0))

    cpu0 = loop_cpu_seconds()
    t0 = time.perf_counter()
    with DbCpuSampler(args.server_pid, args.dsn) as cpu:
        await asyncio.wait_for(asyncio.gather(*(buyer(i, b) for i, b in enumerate(browsers))),
                               timeout=180)
    total = time.perf_counter() - t0
    client_cpu = loop_cpu_seconds() - cpu0
    await asyncio.gather(*(b.close() for b in browsers))

    kinds = Counter(k for k, _ in outcomes)
    sold_out = sum(n for k, n in kinds.items() if k.startswith("sold_out"))
    [db] = await pg_fetch(args.dsn, """
        WITH o AS (SELECT id, status FROM orders WHERE email LIKE $1)
        SELECT (SELECT count(*) FROM o) AS orders,
               (SELECT count(*) FROM o WHERE status = 'paid') AS paid,
               (SELECT coalesce(sum(on_hand), 0) FROM stock_levels
                  WHERE variant_id = $2 AND location_id = ANY($3::int[])) AS on_hand,
               (SELECT coalesce(sum(reserved), 0) FROM stock_levels
                  WHERE variant_id = $2 AND location_id = ANY($3::int[])) AS reserved,
               (SELECT coalesce(min(on_hand - reserved), 0) FROM stock_levels
                  WHERE variant_id = $2) AS lowest
    """, f"wo{tag}%", vid, locs)
    facts = {k: int(db[k]) for k in ("orders", "paid", "on_hand", "reserved", "lowest")}
    passed = (kinds["paid"] == args.units and sold_out == args.buyers - args.units
              and facts["orders"] == facts["paid"] == args.units
              and facts["on_hand"] == 0 and facts["reserved"] == 0 and facts["lowest"] >= 0)
    # Never more sold than there was, whatever else went wrong (the hard requirement).
    no_oversell = (kinds["paid"] <= args.units and facts["paid"] <= args.units
                   and facts["orders"] <= args.units and facts["lowest"] >= 0)
    paid_s = sorted(t for k, t in outcomes if k == "paid")
    return {
        "benchmark": "web_oversell", "buyers": args.buyers, "units_online": args.units,
        "variant_id": vid, "web_locations": locs, "outcomes": dict(kinds),
        "paid": kinds["paid"], "sold_out": sold_out, "total_s": round(total, 3),
        "latency_ms_paid": latency_summary(t * 1000 for t in paid_s),
        "latency_ms_sold_out": latency_summary(
            t * 1000 for k, t in outcomes if k.startswith("sold_out")),
        "database_check": facts, "cpu": cpu.report(client_cpu), "no_oversell": no_oversell,
        "passed": passed,
    }


# --- main ---------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> int:
    parts = set(args.parts.split(","))
    tag = uuid.uuid4().hex[:8]
    setup = Browser(args.url)
    ok = True
    try:
        if "checkout" in parts:
            items = await stock_plenty(setup, args.dsn, args.token, args.products)
            res = await run_checkouts(args, items, tag)
            write_result("web_checkout", res)
            lat = res["latency_ms"]
            print(f"Web checkout: {res['checkouts_per_s']} checkouts/s with {args.shoppers} "
                  f"shoppers ({res['checkouts_measured']} in {args.duration:g} s); whole flow "
                  f"ms p50 {lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')}; CPU "
                  f"ms/checkout {res['cpu_ms_per_checkout']}; machine share "
                  f"{res['cpu']['share_of_machine_pct']}; failures {res['failures']}; "
                  f"database {res['database_check']}")
            ok &= res["passed"]
        if "page" in parts:
            res = await run_product_page(args)
            write_result("product_page", res)
            lat = res["latency_ms"]
            print(f"Product page: {res['requests_per_s']} req/s with {args.page_clients} "
                  f"clients; ms p50 {lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')}; "
                  f"statuses {res['statuses']}")
            ok &= res["passed"]
        if "oversell" in parts:
            res = await run_oversell(args, setup, tag)
            write_result("web_oversell", res)
            print(f"Web oversell: {args.buyers} buyers for {args.units} units -> "
                  f"{res['outcomes']}; database {res['database_check']}; all answered after "
                  f"{res['total_s']} s; {'OK' if res['passed'] else 'FAILED'} (oversold: "
                  f"{'no' if res['no_oversell'] else 'YES'})")
            ok &= res["passed"]
    finally:
        await setup.close()
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--sim-pid", type=int, help="the Paytrail simulator (for its CPU)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--shoppers", type=int, default=16)
    ap.add_argument("--products", type=int, default=4, help="products sold in part 1")
    ap.add_argument("--page-duration", type=float, default=10.0)
    ap.add_argument("--page-clients", type=int, default=16)
    ap.add_argument("--buyers", type=int, default=300)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--parts", default="checkout,page,oversell")
    sys.exit(asyncio.run(run(ap.parse_args())))


if __name__ == "__main__":
    main()
