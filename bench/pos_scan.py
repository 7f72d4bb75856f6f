"""Scan-to-line time in the till, in a real headless Chromium against a running server.

The till page is opened as the demo cashier; then `--scans` EANs from the till's own
catalogue snapshot are typed as a USB scanner types them (the digits and Enter), one
after another. In the page, a keydown listener notes `performance.now()` when Enter
reaches the code field and a MutationObserver on the cart notes when the line is in
the DOM; the difference is one scan's time. Prints p50/p95/max (ms) as JSON and
writes bench/results/pos_scan.json. Nothing is sold: the sale is left on the page.

If the store has no open drawer (the till redirects to its drawer page), pass `--dsn`
(PostgreSQL) to open one for the store's first register; on SQLite, open the drawer
at /pos/store-1/drawer first.

    python -m bench.pos_scan --url http://127.0.0.1:PORT [--dsn postgresql://...] \\
        [--store store-1] [--email kassa1@kaunisiho.fi] [--password demo-kassa-1] \\
        [--scans 200] [--distinct 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from playwright.async_api import Page, async_playwright

from bench.common import latency_summary, pg_fetch, write_result

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run"]

# Installed in the page before the scans: one entry per Enter in the code field.
PROBE = """() => {
  const code = document.getElementById("code");
  const lines = document.getElementById("lines");
  window.__scan = {t0: null, times: []};
  code.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") window.__scan.t0 = performance.now();
  }, {capture: true});
  new MutationObserver(() => {
    const s = window.__scan;
    if (s.t0 === null) return;
    s.times.push(performance.now() - s.t0);
    s.t0 = null;
  }).observe(lines, {childList: true, subtree: true, characterData: true});
}"""


async def open_drawer(dsn: str, store: str) -> None:
    [loc] = await pg_fetch(dsn, "SELECT id FROM locations WHERE code = $1", store)
    regs = await pg_fetch(dsn, "SELECT id FROM registers WHERE location_id = $1 AND active "
                          "ORDER BY id LIMIT 1", loc["id"])
    if regs:
        reg_id = regs[0]["id"]
    else:
        [reg] = await pg_fetch(dsn, "INSERT INTO registers (location_id, name, active, "
                               "created_at) VALUES ($1, 'Kassa 1', true, now()) RETURNING id",
                               loc["id"])
        reg_id = reg["id"]
    await pg_fetch(dsn, """INSERT INTO drawer_sessions (register_id, location_id, status,
        float_cents, opened_by, opened_at, closed_by, note)
        VALUES ($1, $2, 'open', 10000, 'bench', now(), '', '')""", reg_id, loc["id"])


async def open_till(page: Page, args: argparse.Namespace) -> None:
    await page.goto(f"{args.url}/staff/login?next=/pos/{args.store}")
    await page.fill("#email", args.email)
    await page.fill("#password", args.password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    if page.url.endswith("/drawer"):
        if not args.dsn:
            raise SystemExit("the store's drawer is closed: open it, or pass --dsn")
        await open_drawer(args.dsn, args.store)
        await page.goto(f"{args.url}/pos/{args.store}")
    await page.wait_for_selector("#till[data-ready='1']", state="attached")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = await browser.new_page()
        await open_till(page, args)
        eans: list[str] = await page.evaluate("""async (n) => {
          const r = await fetch(location.pathname + "/api/catalogue");
          return (await r.json()).variants.filter((v) => v.ean).slice(0, n).map((v) => v.ean);
        }""", args.distinct)
        size = await page.get_attribute("#till", "data-catalogue-size")
        if not eans:
            raise SystemExit("no variants with an EAN in the catalogue")
        await page.evaluate(PROBE)
        await page.focus("#code")
        for i in range(args.scans):
            await page.keyboard.type(eans[i % len(eans)] + "\n")
            await page.wait_for_function("(n) => window.__scan.times.length >= n", arg=i + 1)
        times: list[float] = await page.evaluate("window.__scan.times")
        lines = await page.locator("[data-testid=cart-line]").count()
        await browser.close()
    result = {"scans": len(times), "distinct_codes": len(eans), "cart_lines": lines,
              "catalogue_variants": int(size or 0), "scan_to_line_ms": latency_summary(times)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--dsn", default="")
    parser.add_argument("--store", default="store-1")
    parser.add_argument("--email", default="kassa1@kaunisiho.fi")
    parser.add_argument("--password", default="demo-kassa-1")
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--distinct", type=int, default=40)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    write_result("pos_scan", result)
    summary = result["scan_to_line_ms"]
    print(json.dumps({"p50_ms": summary.get("p50"), "p95_ms": summary.get("p95"),
                      "max_ms": summary.get("max"), **result}, indent=2))


if __name__ == "__main__":
    main()
