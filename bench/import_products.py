"""Benchmark 8 (issue 12): importing a product CSV of 10,000 products × 5 variants
(50,000 rows: names fi/en, brand, category, EAN, a second barcode, attributes, price,
cost price) into a fresh PostgreSQL database, in-process as `saumaton import` does it:
the dry run (every row validated), the import (batches of 500 rows per transaction),
then the same file again (every row unchanged, nothing written). Prints the time of
each and the process's peak RSS (ru_maxrss) as JSON and writes
bench/results/import_products.json. Target: import ≤ 60 s, peak ≤ 300 MB.

    python -m bench.import_products [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres]
        [--products 10000] [--variants 5] [--keep-db]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from stdnum import ean as stdnum_ean

from bench.common import write_result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_ean(n: int) -> str:
    body = f"64{n:010d}"
    return body + stdnum_ean.calc_check_digit(body)


def generate(path: Path, products: int, variants: int) -> int:
    """The file, written row by row (never held in memory); returns the row count."""
    shades = ["Ruby", "Rose", "Coral", "Nude", "Plum", "Berry", "Sand", "Mocha"]
    rows = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, delimiter=";", lineterminator="\r\n")
        w.writerow(["product", "name", "name_en", "brand", "category", "vat_class",
                    "description", "description_en", "active", "sku", "ean", "barcodes",
                    "variant_name", "variant_name_en", "attributes", "price", "cost_price",
                    "variant_active"])
        for p in range(products):
            for v in range(variants):
                n = p * variants + v
                shade = shades[v % len(shades)]
                w.writerow([
                    f"tuote-{p:05d}", f"Huulipuna {p}", f"Lipstick {p}", f"Merkki {p % 50}",
                    f"bench-cat-{p % 20}", "standard",
                    f"Kestävä huulipuna. Tuote {p}.",
                    f"Long-lasting lipstick. Product {p}.", "yes",
                    f"B{p:05d}-{v}", make_ean(n), make_ean(10_000_000 + n), shade, shade,
                    f"shade={shade}|size=4 g", f"{19 + v},{(p % 100):02d}",
                    f"{6 + v},50", "yes"])
                rows += 1
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-dsn", default=os.environ.get(
        "BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--variants", type=int, default=5)
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    from saumaton.catalogue.models import Category
    from saumaton.core.actor import SYSTEM
    from saumaton.csvio import jobs
    from saumaton.db.migrate import upgrade
    from saumaton.db.uow import Database

    name = f"saumaton_import_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{args.admin_dsn.rsplit('/', 1)[0]}/{name}"
    result: dict[str, Any] = {"products": args.products, "variants": args.variants,
                              "loadavg_before": os.getloadavg(), "nproc": os.cpu_count()}
    db = None
    try:
        await asyncio.to_thread(upgrade, dsn)
        db = Database(dsn)
        async with db.uow() as uow:
            uow.session.add_all(Category(slug=f"bench-cat-{i}", name=f"Kategoria {i}")
                                for i in range(20))
            await uow.commit()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "products.csv"
            t0 = time.perf_counter()
            rows = generate(path, args.products, args.variants)
            result.update(rows=rows, file_mb=round(path.stat().st_size / 1e6, 1),
                          generate_s=round(time.perf_counter() - t0, 2))
            rss_start = peak_rss_mb()

            job_id = await jobs.create_job(db, SYSTEM, "products", path.name, path)
            t0 = time.perf_counter()
            job = await jobs.preview(db, SYSTEM, job_id)
            result["dry_run_s"] = round(time.perf_counter() - t0, 2)
            assert job.error_count == 0, job.errors[:5]
            result["peak_rss_after_dry_run_mb"] = round(peak_rss_mb(), 1)

            await jobs.start(db, SYSTEM, job_id)
            t0 = time.perf_counter()
            job = await jobs.run(db, SYSTEM, job_id)
            result["import_s"] = round(time.perf_counter() - t0, 2)
            result["import_counts"] = {k: job.summary[k] for k in ("new", "updated",
                                                                    "unchanged", "errors")}
            result["peak_rss_after_import_mb"] = round(peak_rss_mb(), 1)

            job_id = await jobs.create_job(db, SYSTEM, "products", path.name, path)
            await jobs.preview(db, SYSTEM, job_id)
            await jobs.start(db, SYSTEM, job_id)
            t0 = time.perf_counter()
            job = await jobs.run(db, SYSTEM, job_id)
            result["reimport_unchanged_s"] = round(time.perf_counter() - t0, 2)
            result["reimport_counts"] = {k: job.summary[k] for k in ("new", "updated",
                                                                      "unchanged", "errors")}
            result["peak_rss_mb"] = round(peak_rss_mb(), 1)
            result["rss_before_import_mb"] = round(rss_start, 1)
        result["loadavg_after"] = os.getloadavg()
        result["rows_per_s"] = round(result["rows"] / result["import_s"])
    finally:
        if db is not None:
            await db.dispose()
        if not args.keep_db:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(write_result("import_products", result))
    import json
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
