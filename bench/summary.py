"""Print and save a summary of bench/results/*.json (written by bench/run.sh).

    python -m bench.summary [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from pathlib import Path
from typing import Any

from bench.common import RESULTS, pg_fetch, write_result


def machine(dsn: str | None) -> dict[str, Any]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    info: dict[str, Any] = {
        "nproc": os.cpu_count(), "cpu_model": model, "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(), "kernel": platform.release(),
        "loadavg_at_summary": Path("/proc/loadavg").read_text().split()[:3],
    }
    if dsn:
        rows = asyncio.run(pg_fetch(dsn, """
            SELECT version() AS v, current_setting('synchronous_commit') AS sc,
                   current_setting('shared_buffers') AS sb,
                   current_setting('max_connections') AS mc"""))
        info["postgresql"] = rows[0]["v"]
        info["postgresql_settings"] = {"synchronous_commit": rows[0]["sc"],
                                       "shared_buffers": rows[0]["sb"],
                                       "max_connections": rows[0]["mc"]}
    return info


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def lines(m: dict[str, Any]) -> list[str]:
    out = [f"machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
           f"Python {m['python']}", f"database: {m.get('postgresql', '?')}"]
    pos = load("pos_sale")
    if pos:
        lat = pos["latency_ms"]
        cpu = pos["cpu"]["share_of_machine_pct"]
        out.append(
            f"1. POS sale ({pos['connections']} clients, {pos['duration_s']:.0f} s): "
            f"{pos['orders_per_s']} orders/s (target 600), latency ms p50 {lat['p50']} "
            f"p95 {lat['p95']} p99 {lat['p99']} (target 50); CPU share: server "
            f"{cpu['server']}%, postgres {cpu['postgres']}%, wrk {cpu['load_generator']}%, "
            f"other processes {cpu['other_processes']}%; CPU ms/order "
            f"{pos['cpu_ms_per_order']} -> at most ~{pos['capacity_estimate_orders_per_s']} "
            f"orders/s on this machine alone; database check "
            f"{'OK' if pos['database_check']['consistent'] else 'FAILED'}")
    flash = load("flash_sale")
    if flash:
        out.append(
            f"2. Flash sale ({flash['buyers']} buyers, {flash['units_online']} units): "
            f"{flash['statuses']} {flash['error_codes']}; sold out after "
            f"{flash['sold_out_s']} s, all answered after {flash['total_s']} s; "
            f"{'PASSED' if flash['passed'] else 'FAILED'}")
    live = load("live_updates")
    if live:
        c = live["latency_ms_commit_to_receipt"]
        a = live["latency_ms_answer_to_receipt"]
        out.append(
            f"3. Live updates ({live['sales']} sales x {live['subscribers']} subscribers): "
            f"commit->SSE receipt ms p50 {c.get('p50')} p95 {c.get('p95')} p99 "
            f"{c.get('p99')} (target 50); after the POST answer: p50 {a.get('p50')} p99 "
            f"{a.get('p99')}; {live['events_missing']} events missing")
    for name, what in (("pgbench", "the app's statements now"),
                       ("pgbench_orig", "the statements before the hot-path work")):
        pgb = load(name)
        if pgb:
            lat = pgb["latency_ms"]
            out.append(
                f"4. pgbench, {what} ({pgb['clients']} clients): {pgb['tps']} tps, latency "
                f"ms p50 {lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')}; "
                f"postgres CPU {pgb['cpu_ms_per_transaction']['postgres']} ms/transaction; "
                f"other processes {pgb['cpu']['share_of_machine_pct']['other_processes']}%")
    out.extend(floor_lines())
    out.extend(web_lines())
    out.extend(till_lines())
    imp = load("import_products")
    if imp:
        out.append(
            f"8. CSV import ({imp['rows']} rows: {imp['products']} products × "
            f"{imp['variants']} variants): dry run {imp['dry_run_s']} s, import "
            f"{imp['import_s']} s (target 60), re-import unchanged "
            f"{imp['reimport_unchanged_s']} s; peak RSS {imp['peak_rss_mb']} MB (target 300)")
    out.extend(report_lines())
    for name in ("check_after_flash", "check_after_web", "check_after_till", "check_final"):
        path = RESULTS / f"{name}.txt"
        if path.exists():
            last = (path.read_text().strip().splitlines() or ["?"])[-1]
            out.append(f"saumaton check ({name.removeprefix('check_').replace('_', ' ')}): "
                       f"{last}")
    return out


def floor_lines() -> list[str]:
    """The floor of the stack (bench/floor.py): a minimal app's server CPU per request."""
    floor = load("floor")
    if not floor:
        return []
    cases = ", ".join(f"{name} {c['server_ms']:.3f}" for name, c in floor["cases"].items())
    further = ", ".join(f"{name} +{f['server_ms']:.3f}"
                        for name, f in floor["further_query"].items())
    return [f"Floor of the stack (minimal FastAPI app, same uvicorn settings; server CPU "
            f"ms/request, least of {floor['repeats']} windows of {floor['requests']}): "
            f"{cases}; per further query {further or '-'}; median ratio to issue 15's "
            f"figures {floor.get('ratio_to_issue', '-')}"]


def web_lines() -> list[str]:
    """Benchmark 5 (bench/web_checkout.py): four result files."""
    out = []
    one = load("web_checkout_one")
    if one:
        t = one["per_checkout"]
        steps = ", ".join(f"{s['label']} {s['server_cpu_ms']} ms/{s['round_trips']:g} rt"
                          for s in one["steps"].values() if "not ours" not in s["label"])
        out.append(
            f"5. Web checkout, one shopper ({one['checkouts']} checkouts, 1 worker): server "
            f"CPU {t['server_cpu_ms_whole_run']} ms/checkout (target 10; in requests "
            f"{t['server_cpu_ms_in_requests']}, background {t['server_cpu_ms_background']}), "
            f"PostgreSQL CPU {t['postgres_cpu_ms_whole_run']} ms (target 4), "
            f"{t['round_trips_whole_run']} round trips (target 30); per request: {steps}")
        ratio = (load("floor") or {}).get("ratio_to_issue")
        if ratio:  # the floor measured in the same run: this machine's speed that hour
            out.append(
                f"5. Web checkout, one shopper, read against this run's floor (this machine "
                f"{ratio}x the issue's): server CPU "
                f"{t['server_cpu_ms_whole_run'] / ratio:.1f} ms/checkout at the issue's "
                f"machine's speed (target 10)")
    wc = load("web_checkout")
    if wc:
        lat = wc["latency_ms"]
        cpu = wc["cpu"]["share_of_machine_pct"]
        out.append(
            f"5. Web checkout ({wc['shoppers']} shoppers, {wc['duration_s']:.0f} s): "
            f"{wc['checkouts_per_s']} paid checkouts/s (target 100), whole flow ms p50 "
            f"{lat.get('p50')} p95 {lat.get('p95')} p99 {lat.get('p99')} (target 400); CPU "
            f"ms/checkout {wc['cpu_ms_per_checkout']} -> at most "
            f"~{wc['capacity_estimate_checkouts_per_s']}/s on this machine alone; CPU share: "
            f"server {cpu['server']}%, postgres {cpu['postgres']}%, simulator "
            f"{cpu['paytrail_simulator']}%, client {cpu['load_generator']}%, other "
            f"{cpu['other_processes']}%; failures {wc['failures'] or 0}; database check "
            f"{'OK' if wc['database_check']['consistent'] else 'FAILED'}")
    page = load("product_page")
    if page:
        lat = page["latency_ms"]
        out.append(
            f"5. Product page ({page['clients']} clients, {page['duration_s']:.0f} s): "
            f"{page['requests_per_s']} req/s, ms p50 {lat.get('p50')} p95 {lat.get('p95')} "
            f"(target 20) p99 {lat.get('p99')}; server CPU "
            f"{page['server_cpu_ms_per_request']} ms/request; statuses {page['statuses']}")
    over = load("web_oversell")
    if over:
        out.append(
            f"5. Web oversell ({over['buyers']} buyers, {over['units_online']} units, whole "
            f"flow each): {over['outcomes']}; stock left {over['database_check']}; all "
            f"answered after {over['total_s']} s; {'PASSED' if over['passed'] else 'FAILED'}; "
            f"oversold: {'no' if over.get('no_oversell') else 'YES'}")
    return out


def report_lines() -> list[str]:
    """Benchmark 9 (bench/reports.py): the reports on the scaled data set."""
    rep = load("reports")
    if not rep:
        return []
    if "skipped" in rep:
        return [f"9. Reports on the scaled data: skipped ({rep['skipped']})"]
    data = rep.get("data", {})
    out = [f"9. Reports on the scaled data ({data.get('order_lines', 0):,} order lines, "
           f"{data.get('returns', 0):,} returns): copy {rep.get('copy_s')} s, upgrade to "
           f"head {rep.get('upgrade_to_head_s')} s"
           + (f", template built in {rep['template_build_s']} s"
              if "template_build_s" in rep else "")
           + (f"; missing modules: {', '.join(rep['missing'])}" if rep.get("missing") else "")]
    for m in rep.get("modules", []):
        if m["status"] != "ok":
            if m["status"] != "missing":
                out.append(f"9. {m['module']}: {m['status']}")
            continue
        figs = ", ".join(f"{f['name']} {f['seconds']:.3f} s"
                         + ("" if f["within_target"] else " (over target)")
                         for f in m["figures"])
        out.append(f"9. {m['module']} (target {m['target_s']} s each): {figs}")
    return out


def till_lines() -> list[str]:
    """Benchmark 6 (bench/pos_till.py)."""
    till = load("pos_till")
    if not till:
        return []
    out = []
    for name in ("paced", "saturated"):
        part = till[name]
        lat = part["latency_ms"]
        per = part["cpu"].get("ms_per_sale", {})
        pace = f", one sale per {part['interval_s']} s each" if part["interval_s"] else ""
        out.append(
            f"6. Till sales, {name} ({till['tills']} tills{pace}): "
            f"{part['sales_per_s']} sales/s, ms p50 {lat.get('p50')} p95 {lat.get('p95')} "
            f"p99 {lat.get('p99')} (target p99 50); CPU ms/sale server {per.get('server')} "
            f"postgres {per.get('postgres')}; statuses {part['statuses']}")
    out.append(f"6. Till sales in the database: {till['database']}; "
               f"{'PASSED' if till['passed'] else 'FAILED'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dsn")
    args = ap.parse_args()
    m = machine(args.dsn)
    write_result("machine", m)
    text = "\n".join(lines(m))
    (RESULTS / "summary.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
