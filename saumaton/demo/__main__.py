"""python -m saumaton.demo [--url URL] [--migrate] [--customers N --lines M]

Loads the demo shop into an empty database and optionally adds benchmark data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from saumaton.config import get_settings
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.demo.scale import generate_scale
from saumaton.demo.shop import DemoAlreadyLoaded, load_demo


def _progress(stage: str, done: int, total: int) -> None:
    print(f"\r{stage}: {done:,}/{total:,}", end="\n" if done == total else "", flush=True)


async def _run(url: str, customers: int, lines: int, skip_load: bool) -> int:
    db = Database(url)
    try:
        if not skip_load:
            try:
                s = await load_demo(db)
            except DemoAlreadyLoaded as exc:
                print(exc.detail, file=sys.stderr)
                return 1
            print(f"Loaded demo shop: {s.locations} locations, {s.products} products, "
                  f"{s.variants} variants, {s.customers} customers, {s.orders} orders")
            print(f"Hero product: {s.hero_slug} (EAN {s.hero_ean})")
            for email, password, role in s.logins:
                print(f"  {email:32} {password:16} {role}")
        if customers or lines:
            t = time.perf_counter()
            await generate_scale(db, customers=customers, order_lines=lines,
                                 progress=_progress)
            print(f"Generated in {time.perf_counter() - t:.1f} s")
    finally:
        await db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m saumaton.demo", description=__doc__)
    p.add_argument("--url", help="database URL (default: SAUMATON_DATABASE_URL or ./var)")
    p.add_argument("--migrate", action="store_true", help="run migrations first")
    p.add_argument("--customers", type=int, default=0, help="extra generated customers")
    p.add_argument("--lines", type=int, default=0, help="generated order lines")
    p.add_argument("--skip-load", action="store_true",
                   help="the demo shop is already loaded; only generate")
    args = p.parse_args(argv)
    url = args.url or get_settings().resolved_database_url()
    if args.migrate:
        upgrade(url)
    return asyncio.run(_run(url, args.customers, args.lines, args.skip_load))


if __name__ == "__main__":
    raise SystemExit(main())
