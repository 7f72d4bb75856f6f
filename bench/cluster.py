"""Till sales (bench/pos_till.py) against several server layouts on one PostgreSQL, in
interleaved rounds so that the machine's other load falls on every layout alike.

Layouts (`--configs`, comma-separated):

* one: one `saumaton serve` process (one uvicorn worker), the till talks to it directly;
* one-nginx: the same behind nginx (what the proxy costs);
* two-nginx: two `saumaton serve` processes behind nginx, round robin (docs/deployment.md);
  every till's requests alternate between the two, on one staff session;
* uncached / cookie: one process served by bench/session_serve.py with the session
  look-up uncached (read on every request) or never re-read (a signed-cookie-only
  session's cost); "one" is the shipped, cached look-up.

A fresh database with the demo shop is made and dropped; the servers and nginx are the
test suite's (tests/cluster.py). Results: bench/results/cluster.json.

    python -m bench.cluster [--configs one,two-nginx] [--rounds 2] [--duration 15] \
        [--warmup 3] [--tills 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import RESULTS, ROOT, write_result
from tests.cluster import AppServer, Nginx

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CONFIGS = ("one", "one-nginx", "two-nginx", "uncached", "cookie")


def saumaton(dsn: str, *args: str) -> None:
    env = dict(os.environ, SAUMATON_DATABASE_URL=dsn, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "saumaton", *args], env=env, check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def start(config: str, dsn: str, tmp: Path) -> tuple[str, list[AppServer], Nginx | None]:
    """The layout's servers (ready) and proxy; the URL the tills use."""
    command = None
    if config in ("uncached", "cookie"):
        command = [sys.executable, "-m", "bench.session_serve", "--mode", config]
    n = 2 if config == "two-nginx" else 1
    servers = [AppServer(f"{config}-{i + 1}", dsn, tmp / f"{config}-{i + 1}",
                         command=command) for i in range(n)]
    for s in servers:
        s.wait_ready()
    if config.endswith("nginx"):
        proxy = Nginx(tmp / config, [s.address for s in servers])
        return proxy.base_url, servers, proxy
    return servers[0].base_url, servers, None


def till_run(url: str, dsn: str, pids: list[int], args: argparse.Namespace
             ) -> dict[str, Any]:
    """bench.pos_till against `url`; the CPU of `pids` (their process trees: the app
    servers and nginx) per sale comes with it."""
    subprocess.run([sys.executable, "-m", "bench.pos_till", "--url", url, "--dsn", dsn,
                    "--tills", str(args.tills), "--duration", str(args.duration),
                    "--warmup", str(args.warmup),
                    *[a for pid in pids for a in ("--server-pid", str(pid))]],
                   check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads((RESULTS / "pos_till.json").read_text())
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="one,one-nginx,two-nginx,uncached,cookie")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=float, default=15)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--tills", type=int, default=16)
    args = p.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")

    name = f"saumaton_bench_cluster_{uuid.uuid4().hex[:8]}"
    dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    try:
        saumaton(dsn, "db", "upgrade")
        saumaton(dsn, "demo-data")
        with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
            for r in range(args.rounds):
                for config in configs:
                    print(f"== round {r + 1}: {config}", flush=True)
                    url, servers, proxy = start(config, dsn, Path(tmp) / f"r{r}")
                    pids = [s.proc.pid for s in servers if s.proc is not None]
                    if proxy is not None:
                        pids.append(proxy.proc.pid)
                    try:
                        result = till_run(url, dsn, pids, args)
                    finally:
                        if proxy is not None:
                            proxy.stop()
                        for s in servers:
                            s.stop()
                    assert result["passed"], f"{config}: the till benchmark failed"
                    runs[config].append({
                        part: {"sales_per_s": result[part]["sales_per_s"],
                               "p50_ms": result[part]["latency_ms"].get("p50"),
                               "p99_ms": result[part]["latency_ms"].get("p99"),
                               "server_cpu_ms_per_sale": result[part]["cpu"].get(
                                   "ms_per_sale", {}).get("server"),
                               "other_processes_pct": result[part]["cpu"].get(
                                   "share_of_machine_pct", {}).get("other_processes")}
                        for part in ("paced", "saturated")})
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    summary = {c: {"saturated_sales_per_s_median": statistics.median(
                       x["saturated"]["sales_per_s"] for x in rs),
                   "paced_p50_ms_median": statistics.median(
                       x["paced"]["p50_ms"] for x in rs),
                   "saturated_server_cpu_ms_per_sale_median": statistics.median(
                       x["saturated"]["server_cpu_ms_per_sale"] or 0 for x in rs),
                   "paced_server_cpu_ms_per_sale_median": statistics.median(
                       x["paced"]["server_cpu_ms_per_sale"] or 0 for x in rs),
                   "runs": rs} for c, rs in runs.items()}
    path = write_result("cluster", {"tills": args.tills, "duration_s": args.duration,
                                    "rounds": args.rounds, "configs": summary})
    print("layout: saturated sales/s median (each round) | server CPU ms/sale saturated, "
          "paced | paced p50 ms | other processes' share of the machine")
    for c, s in summary.items():
        each = ", ".join(f"{x['saturated']['sales_per_s']}" for x in s["runs"])
        other = ", ".join(f"{x['saturated']['other_processes_pct']}%" for x in s["runs"])
        print(f"{c:<10} {s['saturated_sales_per_s_median']:>7} ({each}) | "
              f"{s['saturated_server_cpu_ms_per_sale_median']}, "
              f"{s['paced_server_cpu_ms_per_sale_median']} | {s['paced_p50_ms_median']} | "
              f"{other}")
    print(path)


if __name__ == "__main__":
    main()
