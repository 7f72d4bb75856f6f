"""The same requests served and in process: what the real server costs beyond the app.

Issue 15's third round found the product page at 1.46 ms of CPU in process (ASGI, no
sockets) against 3.26 ms through `saumaton serve`, and took the difference for the
server's overhead. This benchmark measures both the same way, on the same database,
one after the other:

- **served**: `saumaton serve --workers 1` (uvicorn, uvloop, httptools, no access log:
  the shop's own settings) started by this benchmark on a free port with the
  environment it was given (SAUMATON_DATABASE_URL is set to --dsn), driven by ONE
  keep-alive client (bench/web_checkout.py's Browser: bench/common.py's lean HTTP/1.1
  client and a cookie jar) sequentially; server CPU = /proc/PID/task/*/schedstat of
  the server process summed over its threads. Stopped by its PID afterwards.
- **in process**: `create_app()` in this process with the same environment, its
  lifespan entered (its jobs and followers run, as in the server), called directly as
  an ASGI app (`InProcessBrowser`: a scope, one `http.request`, the messages sent back
  collected, the same cookies kept); CPU = this process's `time.process_time()`. The
  driver's own CPU is in it (about 3 µs a request, measured against an app that
  answers at once).

Both on uvloop. Cases:

- `product_new`: GET the product page as a new guest (no cookies: the session cookie
  is created and signed), the first request of every checkout;
- `product`: GET the product page again with the guest's cookies (a cart of one);
- `form`: GET /shop/checkout with that cart;
- `flow`: whole guest checkouts (bench/web_checkout.py's `checkout_flow`, the callback
  sent by the benchmark before the return) against a `saumaton paytrail-simulator` this
  benchmark starts (SAUMATON_PAYTRAIL_URL): the median CPU of each request type, and
  per checkout the CPU of whole windows of CHECKOUTS checkouts (the background work
  the checkouts set off, mail and jobs, included; the simulator's page is the
  simulator's CPU in the served part and the driver's in process, ~0.1-0.3 ms).

With `--tasks` the benchmark runs on asyncio's default loop (the served server keeps
uvloop) and counts, in process, the CPU of every callback of the loop by what ran it:
the request itself (the benchmark's own task), each background job (`job: mail
sender`, `job: follow-ups`...), the event hub, the analytics flush, other threads (mail
written to files); the flow's table then shows each request type's CPU per checkout by
owner: what of a request's CPU is background work that happened to run in it.

The first three repeat one request, so the code and data it touches stay in the CPU's
caches; in the flow every request follows others that ran different code. Named only
(not by default): `product_new_cold` and `form_cold`, the same requests each after the
benchmark copied 48 MiB (more than this machine's L2 and L3 caches), each request's CPU
read on its own so that the copy is not counted: what a request costs when its code
and data must come from memory again, as in the flow. (Served, the copy runs in the
benchmark's process, maybe on the other core: it flushes the shared L3 cache, not
necessarily the server's core's L2.) The machine
is shared (2 cores, other work beside): each case runs WINDOWS windows, the cases'
windows interleaved, and the figure is the LEAST window (the least disturbed); all
windows are kept in the JSON. The idle process's CPU per second (timers, job polls) is
measured too, over IDLE seconds.

    python -m bench.served --dsn postgresql://postgres@127.0.0.1:5432/DB \\
        [--requests 300] [--windows 7] [--warmup 200] [--checkouts 40] \\
        [--flow-warmup 20] [--parts served,inprocess] \\
        [--cases product_new,product,form,flow] [--saumaton .venv/bin/saumaton]

The database needs the demo shop (`saumaton db upgrade && saumaton demo-data`); the
benchmark adds 10^6 units of the first product's first variant at the first
web-shipping location (through the ledger). `BENCH_ONLY=served bash bench/run.sh` makes
such a database and runs this (with SAUMATON_SRC=another tree, that tree's package is
served and, by the in-process part, imported). Result: bench/results/served.json, and
a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import uvloop

from bench.common import RESULTS, Response, keep_cookies, machine, pg_fetch, write_result
from bench.web_checkout import (
    CSRF_RE,
    STEPS,
    Browser,
    StepMeter,
    checkout_flow,
    free_port,
    stop_server,
    thread_ns,
    wait_up,
)
from bench.web_checkout import (
    LABELS as FLOW_LABELS,
)

CASES = ("product_new", "product", "form", "flow")
# Not run unless named: each request after the caches were flushed (see the module doc).
COLD = ("product_new_cold", "form_cold")
LABELS = {"product_new": "product page, new guest (no cookies)",
          "product": "product page, with the guest's cookies",
          "form": "checkout form (a cart of one)",
          "product_new_cold": "product page, new guest, caches flushed",
          "form_cold": "checkout form, caches flushed"}
# More than the L2 and L3 caches this process can have (2 x 1 MiB, 32 MiB).
FLUSH = bytearray(48 * 1024 * 1024)


def flush_caches() -> None:
    """Copy FLUSH: the CPU's caches then hold it rather than the server's code and data."""
    bytes(FLUSH)


# --- the app in this process -----------------------------------------------------------------

class InProcessBrowser(Browser):
    """bench/web_checkout.py's Browser whose requests to the app's origin call the ASGI
    app in this process (one `http.request`, the messages sent back collected); other
    origins (the Paytrail simulator) go over HTTP as before. Cookies as in Browser."""

    def __init__(self, app: Any, app_url: str) -> None:
        super().__init__(app_url)
        self.app = app

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                   cookies: bool = True) -> Response:
        if url.startswith("http"):
            u = urlsplit(url)
            if f"{u.scheme}://{u.netloc}" != self.app_origin:
                return await super().send(method, url, headers, body, cookies)
            url = u.path + (f"?{u.query}" if u.query else "")
        target, _, query = url.partition("?")
        raw = [(b"host", self.app_origin.split("://", 1)[1].encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if body is not None:
            raw.append((b"content-length", str(len(body)).encode()))
        if cookies and self.cookies:
            raw.append((b"cookie", "; ".join(
                f"{k}={v}" for k, v in self.cookies.items()).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
                 "http_version": "1.1", "method": method, "scheme": "http",
                 "path": target, "raw_path": target.encode(), "root_path": "",
                 "query_string": query.encode(), "headers": raw,
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
                 "state": {}}
        given = False
        status = 0
        answer: dict[str, str] = {}
        set_cookies: list[str] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body or b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect: the request stays open
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    k, v = name.decode("latin-1").lower(), value.decode("latin-1")
                    if k == "set-cookie":
                        set_cookies.append(v)
                    else:
                        answer[k] = v
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        keep_cookies(self.cookies, set_cookies)  # as Browser.send keeps them
        return Response(status, answer, b"".join(chunks))


# --- the requests -----------------------------------------------------------------------------

async def product(dsn: str) -> tuple[str, int]:
    """(slug, variant id) of the first active variant of the first active product."""
    [row] = await pg_fetch(dsn, """
        SELECT p.slug, v.id FROM products p JOIN variants v ON v.product_id = p.id
        WHERE p.active AND v.active ORDER BY p.id, v.id LIMIT 1""")
    return str(row["slug"]), int(row["id"])


async def stock_up(dsn: str, variant_id: int) -> None:
    """Plenty of units at the first web-shipping location (through the ledger), so that
    the cart of one is never sold out."""
    from saumaton.core.actor import SYSTEM
    from saumaton.db.uow import Database
    from saumaton.inventory.services import receive

    db = Database(dsn)
    try:
        async with db.uow() as uow:
            loc = (await uow.fetchrow(
                "SELECT id FROM locations WHERE ships_web_orders ORDER BY web_priority, id"))[0]
            await receive(uow, SYSTEM, variant_id, loc, 1_000_000, reference="bench served")
            await uow.commit()
    finally:
        await db.dispose()


class Guest:
    """One shopper on a Browser (served) or an InProcessBrowser; `start` leaves a guest
    with a cart of one (the steady cases), `checkout` runs a whole guest checkout."""

    def __init__(self, browser: Browser, slug: str, variant_id: int) -> None:
        self.b = browser
        self.slug = slug
        self.variant_id = variant_id
        self.page = f"/shop/p/{slug}?variant={variant_id}"
        self.emails = itertools.count()

    async def start(self) -> None:
        self.b.new_guest()
        r = await self.b.request("GET", self.page)
        m = CSRF_RE.search(r.body)
        if r.status != 200 or m is None:
            raise SystemExit(f"product page: HTTP {r.status}, no CSRF token")
        r = await self.b.request("POST", "/shop/cart/add", {
            "csrf_token": m.group(1).decode(), "variant_id": str(self.variant_id),
            "quantity": "1"})
        if r.status != 303:
            raise SystemExit(f"add to cart: HTTP {r.status} {r.body[:200]!r}")

    async def one(self, case: str) -> None:
        case = case.removesuffix("_cold")
        if case == "product_new":
            r = await self.b.request("GET", self.page, cookies=False)
        elif case == "product":
            r = await self.b.request("GET", self.page)
        else:
            r = await self.b.request("GET", "/shop/checkout")
        if r.status != 200:
            raise SystemExit(f"{case}: HTTP {r.status} {r.body[:200]!r}")

    async def checkout(self, tag: str, meter: StepMeter | None) -> None:
        await checkout_flow(self.b, self.slug, self.variant_id,
                            f"sv{tag}{next(self.emails)}@example.fi", meter)


# --tasks: this thread's CPU by what ran it (an asyncio task by its name, else the
# callback), counted around every callback of the default event loop.
TASK_CPU: dict[str, float] = {}


def count_task_cpu() -> None:
    """Wrap asyncio's Handle._run (the default loop runs every callback, a task's step
    included, through it; uvloop does not, hence the default loop with --tasks)."""
    run = asyncio.events.Handle._run

    def owner(callback: Any) -> str:
        target = getattr(callback, "__self__", None)
        if isinstance(target, asyncio.Task):
            name = target.get_name()
            # Tasks named by the app keep their name; others by their coroutine.
            if name.startswith("Task-"):
                name = getattr(target.get_coro(), "__qualname__", name)
            return f"task {name}"
        return f"callback {getattr(callback, '__qualname__', type(callback).__name__)}"

    def counted(self: asyncio.events.Handle) -> None:
        t0 = time.thread_time()
        try:
            run(self)
        finally:
            key = owner(self._callback)  # type: ignore[attr-defined]
            TASK_CPU[key] = TASK_CPU.get(key, 0.0) + time.thread_time() - t0

    asyncio.events.Handle._run = counted  # type: ignore[method-assign]


class CpuMeter:
    """CPU ms of each request of a checkout (a StepMeter), from `cpu_ms`."""

    def __init__(self, cpu_ms: Callable[[], float]) -> None:
        self.cpu_ms = cpu_ms
        self.recording = False
        self.t0 = 0.0
        self.costs: dict[str, list[float]] = {}
        # --tasks: per step, CPU ms by owner (and other threads), summed over the run.
        self.owners: dict[str, dict[str, float]] = {}
        self.tasks0: dict[str, float] = {}
        self.threads0 = 0.0

    def before(self) -> None:
        if TASK_CPU:
            self.tasks0 = dict(TASK_CPU)
            self.threads0 = time.process_time() - time.thread_time()
        self.t0 = self.cpu_ms()

    def after(self, step: str) -> None:
        if not self.recording:
            return
        self.costs.setdefault(step, []).append(self.cpu_ms() - self.t0)
        if TASK_CPU:
            mine = self.owners.setdefault(step, {})
            for key, seconds in TASK_CPU.items():
                spent = seconds - self.tasks0.get(key, 0.0)
                if spent > 0:
                    mine[key] = mine.get(key, 0.0) + spent * 1000
            others = time.process_time() - time.thread_time() - self.threads0
            mine["other threads"] = mine.get("other threads", 0.0) + others * 1000


async def measure(guest: Guest, args: argparse.Namespace, cpu_ms: Callable[[], float],
                  tag: str) -> dict[str, Any]:
    """Per steady case, CPU ms per request of each window (the cases' windows
    interleaved); then whole checkouts, per request type and per checkout."""
    cases = [c for c in args.cases if c != "flow"]
    out: dict[str, Any] = {"windows": {c: [] for c in cases}}
    if cases:
        await guest.start()
        for case in cases:
            for _ in range(args.warmup):
                await guest.one(case)
        for _ in range(args.windows):
            for case in cases:
                if case in COLD:  # each request measured alone, the flush left out
                    spent = 0.0
                    for _ in range(args.requests):
                        flush_caches()
                        c0 = cpu_ms()
                        await guest.one(case)
                        spent += cpu_ms() - c0
                    out["windows"][case].append(spent / args.requests)
                    continue
                c0 = cpu_ms()
                for _ in range(args.requests):
                    await guest.one(case)
                out["windows"][case].append((cpu_ms() - c0) / args.requests)
    if "flow" in args.cases:
        meter = CpuMeter(cpu_ms)
        for _ in range(args.flow_warmup):
            await guest.checkout(tag, meter)
        # Whole checkouts in windows too; per request type the median over all of them.
        meter.recording = True
        per_checkout: list[float] = []
        for _ in range(args.windows):
            c0 = cpu_ms()
            for _ in range(args.checkouts):
                await guest.checkout(tag, meter)
            per_checkout.append((cpu_ms() - c0) / args.checkouts)
        n = args.windows * args.checkouts
        out["flow"] = {"per_checkout_windows": per_checkout,
                       "steps": {k: v for k, v in meter.costs.items()}}
        if meter.owners:  # per request type: CPU ms per checkout by owner, largest first
            out["flow"]["by_owner"] = {
                step: {k: round(v / n, 3) for k, v in sorted(owners.items(),
                                                             key=lambda kv: -kv[1])
                       if v / n >= 0.005}
                for step, owners in meter.owners.items()}
    return out


async def idle_ms_per_s(cpu_ms: Callable[[], float], seconds: float) -> float:
    await asyncio.sleep(0.5)
    c0, t0 = cpu_ms(), time.monotonic()
    await asyncio.sleep(seconds)  # measuring the idle process, not synchronisation
    return (cpu_ms() - c0) / (time.monotonic() - t0)


async def start_simulator(args: argparse.Namespace) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        args.saumaton, "paytrail-simulator", "--host", "127.0.0.1", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await wait_up(proc, f"http://127.0.0.1:{port}", "/docs", "the Paytrail simulator")
    return proc, f"http://127.0.0.1:{port}"


async def run_served(args: argparse.Namespace, slug: str, variant_id: int
                     ) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / "served_server.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        args.saumaton, "serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
        env=dict(os.environ, SAUMATON_PUBLIC_URL=url), stdout=log,
        stderr=asyncio.subprocess.STDOUT)
    log.close()
    browser = Browser(url)
    try:
        await wait_up(proc, url, "/healthz", f"the server (see {RESULTS}/served_server.log)")

        def cpu_ms() -> float:
            return sum(thread_ns(proc.pid).values()) / 1e6

        if args.profile_pause:
            # A moment to attach a profiler (py-spy record --pid ...) before the windows.
            print(f"server pid {proc.pid}; measuring in {args.profile_pause} s", flush=True)
            await asyncio.sleep(args.profile_pause)
        out = await measure(Guest(browser, slug, variant_id), args, cpu_ms, "s")
        out["idle_cpu_ms_per_s"] = await idle_ms_per_s(cpu_ms, args.idle)
    finally:
        await browser.close()
        await stop_server(proc)
    return out


async def run_inprocess(args: argparse.Namespace, slug: str, variant_id: int
                        ) -> dict[str, Any]:
    from saumaton.web.app import create_app

    url = "http://127.0.0.1:8000"  # never connected to: the app is called directly
    os.environ["SAUMATON_PUBLIC_URL"] = url
    app = create_app()
    browser = InProcessBrowser(app, url)
    try:
        async with app.router.lifespan_context(app):
            def cpu_ms() -> float:
                return time.process_time() * 1000

            out = await measure(Guest(browser, slug, variant_id), args, cpu_ms, "i")
            out["idle_cpu_ms_per_s"] = await idle_ms_per_s(cpu_ms, args.idle)
    finally:
        await browser.close()
    return out


def summary(part: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"idle_cpu_ms_per_s": round(part["idle_cpu_ms_per_s"], 3)}
    for case, ws in part["windows"].items():
        out[case] = {"cpu_ms": round(min(ws), 4), "windows": [round(w, 4) for w in ws]}
    if "flow" in part:
        f = part["flow"]
        out["flow"] = {
            "per_checkout_ms": round(min(f["per_checkout_windows"]), 3),
            "per_checkout_windows": [round(w, 3) for w in f["per_checkout_windows"]],
            "steps_median_ms": {k: round(statistics.median(v), 3)
                                for k, v in f["steps"].items()},
            "steps_mean_ms": {k: round(statistics.fmean(v), 3) for k, v in f["steps"].items()}}
        if "by_owner" in f:
            out["flow"]["by_owner_ms_per_checkout"] = f["by_owner"]
    return out


def table(res: dict[str, Any]) -> str:
    lines = [f"{'request':44s} {'served ms':>10s} {'in process':>11s} {'gap':>7s}"]
    served, inproc = res.get("served", {}), res.get("inprocess", {})

    def row(label: str, s: float | None, i: float | None) -> None:
        gap = f"{s - i:7.3f}" if s is not None and i is not None else f"{'':7s}"
        lines.append(f"{label:44s} {'' if s is None else f'{s:.3f}':>10s} "
                     f"{'' if i is None else f'{i:.3f}':>11s} {gap}")

    for case in res["cases"]:
        if case != "flow":
            row(LABELS[case] + ", least window", served.get(case, {}).get("cpu_ms"),
                inproc.get(case, {}).get("cpu_ms"))
    sf, inf = served.get("flow"), inproc.get("flow")
    if sf or inf:
        steps = (sf or inf)["steps_median_ms"]
        for step in steps:
            if step == STEPS[4]:
                continue  # the simulator's page: not the app's request
            row(f"checkout: {FLOW_LABELS.get(step, step)}, median",
                sf["steps_median_ms"].get(step) if sf else None,
                inf["steps_median_ms"].get(step) if inf else None)
        row("whole checkout (simulator step in), least window",
            sf["per_checkout_ms"] if sf else None, inf["per_checkout_ms"] if inf else None)
    for step, owners in (inf or {}).get("by_owner_ms_per_checkout", {}).items():
        lines.append(f"  in process, {FLOW_LABELS.get(step, step)}: " + ", ".join(
            f"{k} {v}" for k, v in list(owners.items())[:6]))
    lines.append(f"idle CPU ms per second: served {served.get('idle_cpu_ms_per_s')}, "
                 f"in process {inproc.get('idle_cpu_ms_per_s')}; least of "
                 f"{res['windows']} windows of {res['requests']} requests "
                 f"({res['checkouts']} checkouts); load {res['machine']['loadavg']} before, "
                 f"{res['loadavg_after']} after")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    if task is not None:  # --tasks names it: in process, the app's requests run in it
        task.set_name("requests (in the benchmark's task)")
    os.environ["SAUMATON_DATABASE_URL"] = args.dsn
    slug, variant_id = await product(args.dsn)
    await stock_up(args.dsn, variant_id)
    res: dict[str, Any] = {"benchmark": "served", "cases": args.cases,
                           "requests": args.requests, "windows": args.windows,
                           "checkouts": args.checkouts, "warmup": args.warmup,
                           "in_process_loop": "asyncio" if args.tasks else "uvloop",
                           "product": [slug, variant_id], "machine": machine()}
    sim = None
    if "flow" in args.cases:
        sim, os.environ["SAUMATON_PAYTRAIL_URL"] = await start_simulator(args)
    try:
        for part in args.parts:
            runner = run_served if part == "served" else run_inprocess
            res[part] = summary(await runner(args, slug, variant_id))
    finally:
        if sim is not None:
            await stop_server(sim)
    res["loadavg_after"] = machine()["loadavg"]
    path = write_result("served", res)
    print(table(res))
    print(path)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True, help="a database with the demo shop")
    ap.add_argument("--requests", type=int, default=300, help="requests per window")
    ap.add_argument("--windows", type=int, default=7, help="windows per case")
    ap.add_argument("--warmup", type=int, default=200, help="requests per case first")
    ap.add_argument("--checkouts", type=int, default=40, help="checkouts per flow window")
    ap.add_argument("--flow-warmup", type=int, default=20, help="checkouts first")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle measurement")
    ap.add_argument("--parts", default="served,inprocess")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--saumaton", default=".venv/bin/saumaton")
    ap.add_argument("--tasks", action="store_true",
                    help="in process, on asyncio's default loop: each checkout request's "
                         "CPU by asyncio task (the request, each job, the event hub...)")
    ap.add_argument("--profile-pause", type=float, default=0.0,
                    help="seconds to wait before the served windows (to attach py-spy)")
    args = ap.parse_args()
    src = os.environ.get("SAUMATON_SRC")
    if src:  # the in-process part imports that tree's package (the server's PYTHONPATH)
        sys.path.insert(0, src)
    args.parts = [p for p in args.parts.split(",") if p]
    args.cases = [c for c in args.cases.split(",") if c]
    for c in args.cases:
        if c not in CASES + COLD:
            raise SystemExit(f"unknown case {c!r}: {', '.join(CASES + COLD)}")
    for p in args.parts:
        if p not in ("served", "inprocess"):
            raise SystemExit(f"unknown part {p!r}: served, inprocess")
    if args.tasks:
        count_task_cpu()
        raise SystemExit(asyncio.run(run(args)))
    raise SystemExit(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
