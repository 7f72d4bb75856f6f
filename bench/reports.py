"""Benchmark 9 (issue 13): the reports on the scaled data set (1 M customers, 5 M order
lines, returns, points, NPS answers, funnel events; `saumaton demo-data --scale`).

The data set lives in a template database, `scale_base` (4 GB; built once, 12-25 min
depending on how busy the machine is; kept between runs). Each run copies it
(`CREATE DATABASE reports_bench_<pid> TEMPLATE scale_base`, a file copy: about
1.5 min), upgrades the copy to the newest migration (the summary tables'
backfills run here and are timed), runs every report benchmark module that exists
and drops the copy:

    bench/report_sales.py     the monthly channel report and the other sales reports
    bench/report_journeys.py  the journey matrix and the customer reports
    bench/report_journal.py   the daily journal, a day and a week
    bench/reconcile.py        a Paytrail settlement of 100,000 payments

Each exposes `async def run(url: str) -> list[tuple[str, float]]` (figure name,
seconds), or else a `main()`, which is run as `python -m bench.<module>` with
SAUMATON_DATABASE_URL and BENCH_DSN set to the copy and timed as a whole. A module
that is not there is listed as missing (not a failure). Prints a table and JSON and
writes bench/results/reports.json.

    python -m bench.reports [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres]
        [--template scale_base] [--build | --no-build] [--keep-db]
        [--customers 1000000] [--order-lines 5000000] [--base-revision 0011]

Without `scale_base`: `--build` (the default) builds it first, `--no-build` skips
the step with the reason (exit 0, "skipped" in the JSON). The template is built at
`--base-revision` (default 0011, the schema before the report migrations, so the
copies exercise those migrations' backfills on 5 M lines); if the demo shop cannot
be loaded at that revision (a later migration changed a table the loader writes),
build it with `--base-revision head`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench.common import ROOT, write_result

MODULES = ("report_sales", "report_journeys", "report_journal", "reconcile")
# Targets of issue 13 (seconds) per module: each report figure, the reconciliation.
TARGETS = {"report_sales": 1.0, "report_journeys": 1.0, "report_journal": 1.0,
           "reconcile": 10.0}
COUNTED = ("customers", "orders", "order_lines", "returns", "return_lines", "refunds",
           "payments", "stock_movements", "loyalty_entries", "nps_surveys",
           "analytics_events")


def dsn_of(admin_dsn: str, name: str) -> str:
    return f"{admin_dsn.rsplit('/', 1)[0]}/{name}"


async def exists(admin_dsn: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def build_template(admin_dsn: str, name: str, *, customers: int, order_lines: int,
                         revision: str) -> float:
    """Build `name` under a temporary name and rename it when complete, so that a
    half-built data set never has the template's name. Returns the seconds taken."""
    from saumaton.db.migrate import upgrade
    from saumaton.db.uow import Database
    from saumaton.demo import generate_scale, load_demo

    t0 = time.monotonic()
    tmp = f"{name}_tmp"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{tmp}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{tmp}"')
    finally:
        await admin.close()
    url = dsn_of(admin_dsn, tmp)
    await asyncio.to_thread(upgrade, url, revision)
    db = Database(url)
    shown: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if shown.get(stage) != tenth:
            shown[stage] = tenth
            print(f"  {stage}: {done:,}/{total:,} ({time.monotonic() - t0:.0f} s)",
                  flush=True)

    try:
        await load_demo(db)
        await generate_scale(db, customers=customers, order_lines=order_lines,
                             progress=progress)
    finally:
        await db.dispose()
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{tmp}" RENAME TO "{name}"')
    finally:
        await admin.close()
    return time.monotonic() - t0


async def copy_of(admin_dsn: str, template: str, name: str, attempts: int = 30) -> None:
    """CREATE DATABASE .. TEMPLATE fails while anyone else is connected to the template
    (another copy being made): try again for a while."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        for attempt in range(attempts):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(2)
    finally:
        await admin.close()


async def drop(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in COUNTED}
    finally:
        await conn.close()


def run_main(module: str, url: str) -> list[tuple[str, float]]:
    env = dict(os.environ, SAUMATON_DATABASE_URL=url, BENCH_DSN=url)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", f"bench.{module}"], cwd=ROOT, env=env, check=True)
    return [(f"{module} (whole run)", time.monotonic() - t0)]


async def run_module(module: str, url: str) -> tuple[str, list[tuple[str, float]] | None]:
    """("ok" | "missing" | "failed: ...", figures)."""
    try:
        mod = importlib.import_module(f"bench.{module}")
    except ModuleNotFoundError as e:
        if e.name == f"bench.{module}":
            return "missing", None
        return f"failed: {e}", None
    try:
        run: Callable[[str], Awaitable[list[tuple[str, float]]]] | None = getattr(
            mod, "run", None)
        if run is not None:
            figures = await run(url)
        elif callable(getattr(mod, "main", None)):
            figures = await asyncio.to_thread(run_main, module, url)
        else:
            return "failed: neither run(url) nor main()", None
    except Exception as e:  # one module's failure must not hide the others' figures
        return f"failed: {type(e).__name__}: {e}", None
    return "ok", [(str(n), float(s)) for n, s in figures]


def table(rows: list[dict[str, Any]]) -> str:
    out = [f"{'module':<16} {'figure':<52} {'seconds':>9} {'target':>7}  ok"]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"{r['module']:<16} {r['status']}")
            continue
        for f in r["figures"]:
            out.append(f"{r['module']:<16} {f['name'][:52]:<52} {f['seconds']:>9.3f} "
                       f"{r['target_s']:>7.1f}  {'yes' if f['within_target'] else 'NO'}")
    return "\n".join(out)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin-dsn", default=os.environ.get(
        "BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--template", default="scale_base")
    ap.add_argument("--build", action=argparse.BooleanOptionalAction, default=True,
                    help="build the template if it is missing (default: yes)")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--order-lines", type=int, default=5_000_000)
    ap.add_argument("--base-revision", default="0011")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    from saumaton.db.migrate import upgrade

    result: dict[str, Any] = {"template": args.template, "loadavg_before": os.getloadavg(),
                              "nproc": os.cpu_count()}
    if not await exists(args.admin_dsn, args.template):
        if not args.build:
            result["skipped"] = (f"no template database {args.template}: build it with "
                                 f"`python -m bench.reports --build` (12-25 min)")
            print(f"reports benchmark skipped: {result['skipped']}")
            write_result("reports", result)
            return 0
        print(f"building {args.template}: {args.customers:,} customers, "
              f"{args.order_lines:,} order lines at revision {args.base_revision}", flush=True)
        result["template_build_s"] = round(await build_template(
            args.admin_dsn, args.template, customers=args.customers,
            order_lines=args.order_lines, revision=args.base_revision), 1)
        print(f"built in {result['template_build_s']} s", flush=True)

    name = f"reports_bench_{os.getpid()}"
    url = dsn_of(args.admin_dsn, name)
    rows: list[dict[str, Any]] = []
    failed = False
    try:
        t0 = time.monotonic()
        await copy_of(args.admin_dsn, args.template, name)
        result["copy_s"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        await asyncio.to_thread(upgrade, url)
        result["upgrade_to_head_s"] = round(time.monotonic() - t0, 2)
        result["data"] = await counts(url)
        print(f"copy {name}: {result['copy_s']} s, upgrade to head "
              f"{result['upgrade_to_head_s']} s; data {result['data']}", flush=True)
        for module in MODULES:
            status, figures = await run_module(module, url)
            target = TARGETS[module]
            row: dict[str, Any] = {"module": module, "status": status, "target_s": target,
                                   "figures": [{"name": n, "seconds": round(s, 4),
                                                "within_target": s <= target}
                                               for n, s in figures or []]}
            failed |= status.startswith("failed")
            rows.append(row)
            print(f"{module}: {status}", flush=True)
    finally:
        if args.keep_db:
            print(f"kept database {url}")
        else:
            await drop(args.admin_dsn, name)
    result["modules"] = rows
    result["missing"] = [r["module"] for r in rows if r["status"] == "missing"]
    result["all_within_target"] = all(f["within_target"] for r in rows for f in r["figures"])
    write_result("reports", result)
    print(table(rows))
    print(json.dumps(result, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
