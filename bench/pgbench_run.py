"""Benchmark 4: the raw-SQL ceiling. pgbench runs the statements of one POS sale
(one-line and two-line sales, half each, as in the HTTP benchmark) at the same
concurrency, with prepared statements, and no Python in the way. Latency
percentiles come from pgbench's per-transaction log.

--variant current: bench/pgbench/sale_*.sql, the 8 round trips the app makes now;
--variant orig:    bench/pgbench/orig_sale_*.sql, the 19 it made before the
                   hot-path work (for comparison).

    python -m bench.pgbench_run --dsn postgresql://... [--variant current] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import CpuSampler, latency_summary, pg_fetch, write_result

HERE = Path(__file__).resolve().parent / "pgbench"
SCRIPTS = {"current": [HERE / "sale_1line.sql", HERE / "sale_2lines.sql"],
           "orig": [HERE / "orig_sale_1line.sql", HERE / "orig_sale_2lines.sql"]}


def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(cand)
    raise SystemExit("pgbench not found (apt-get install postgresql-client)")


def run_pgbench(scripts: list[Path], dsn: str, clients: int, threads: int, seconds: float,
                nvar: int, log_dir: Path | None) -> tuple[str, float]:
    cmd = [pgbench_binary(), "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads),
           "-T", str(int(seconds)), "-D", f"nvar={nvar}"]
    for s in scripts:
        cmd += ["-f", f"{s}@1"]
    if log_dir is not None:
        cmd += ["-l", "--log-prefix", str(log_dir / "pgbench_log")]
    cmd.append(dsn)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"pgbench failed:\n{out}")
    return out, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="pgbench -j")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--variant", choices=sorted(SCRIPTS), default="current")
    ap.add_argument("--name")
    args = ap.parse_args()
    name = args.name or ("pgbench" if args.variant == "current" else f"pgbench_{args.variant}")
    scripts = SCRIPTS[args.variant]

    [row] = asyncio.run(pg_fetch(args.dsn, """
        SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM variants
        WHERE ean = '6409876' || lpad(id::text, 5, '0') || ((10 - (80 + 3 * (id / 10000)
              + (id / 1000) % 10 + 3 * ((id / 100) % 10) + (id / 10) % 10 + 3 * (id % 10))
              % 10) % 10)::text"""))
    nvar = int(row["n"])
    [pos] = asyncio.run(pg_fetch(args.dsn, "SELECT id, location_id FROM channels "
                                           "WHERE code = 'pos-1'"))
    if (nvar < 2 or int(row["lo"]) != 1 or int(row["hi"]) != nvar
            or (int(pos["id"]), pos["location_id"]) != (2, 1)):
        raise SystemExit("the pgbench scripts expect the demo shop (variant n has the demo "
                         "EAN n; channel pos-1 is 2 and sells at location 1)")
    if args.warmup > 0:
        run_pgbench(scripts, args.dsn, args.clients, args.threads, args.warmup, nvar, None)
    with tempfile.TemporaryDirectory() as tmp:
        with CpuSampler(None) as cpu:
            out, client_cpu = run_pgbench(scripts, args.dsn, args.clients, args.threads,
                                          args.duration, nvar, Path(tmp))
        latencies: list[float] = []
        for f in Path(tmp).glob("pgbench_log*"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]) / 1000.0)
    tps_m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    done_m = re.search(r"number of transactions actually processed: (\d+)", out)
    failed_m = re.search(r"number of failed transactions: (\d+)", out)
    result: dict[str, Any] = {
        "benchmark": "pgbench", "variant": args.variant,
        "client": f"pgbench -M prepared -c {args.clients} -j {args.threads}",
        "scripts": [str(s.relative_to(HERE.parent.parent)) for s in scripts],
        "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
        "transactions": int(done_m.group(1)) if done_m else None,
        "failed": int(failed_m.group(1)) if failed_m else None,
        "tps": float(tps_m.group(1)) if tps_m else None,
        "latency_ms": latency_summary(latencies),
        "cpu": cpu.report(client_cpu),
        "pgbench_output": out.strip().splitlines()[-12:],
    }
    result["cpu_ms_per_transaction"] = {
        k: round(1000.0 * result["cpu"]["core_seconds"][k] / max(result["transactions"] or 0, 1),
                 3) for k in ("postgres", "load_generator")}
    write_result(name, result)
    lat = result["latency_ms"]
    print(f"pgbench ({args.variant}: raw SQL of a POS sale): {result['tps']} tps, latency ms p50 "
          f"{lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')}; pgbench CPU "
          f"{result['cpu']['share_of_machine_pct']['load_generator']}% of the machine; CPU "
          f"ms/transaction {result['cpu_ms_per_transaction']}; other processes "
          f"{result['cpu']['share_of_machine_pct']['other_processes']}% of the machine")
    sys.exit(0 if result["tps"] else 1)


if __name__ == "__main__":
    main()
