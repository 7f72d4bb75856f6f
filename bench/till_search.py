"""The till's search as you type with every location's stock, in a real headless
Chromium (the endless aisle, docs/endless-aisle.md).

The page loads the till's own `static/pos/search.js` (the Catalogue the till keeps in
memory) with a synthetic snapshot of `--variants` variants stocked at `--locations`
locations, then types `--words` product names one key at a time as a cashier does. Each
keystroke is timed from the input to the suggestion list drawn and laid out: the
search over the snapshot, each suggestion's price line and its stock line (here and
at every other location, as till.js `stockText` builds it) and the DOM. Then
`--events` stock.changed payloads are applied (`Catalogue.setStock`) while a list is
shown, each followed by the shown list's stock lines redrawn. Prints p50/p95/max (ms)
as JSON and writes bench/results/till_search.json. No server is needed.

    python -m bench.till_search [--variants 5000] [--locations 10] [--words 100] \\
        [--events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from playwright.async_api import Route, async_playwright

from bench.common import latency_summary, write_result

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run"]
ORIGIN = "http://till.bench"
SEARCH_JS = Path(__file__).resolve().parent.parent / "saumaton/web/static/pos/search.js"
PAGE = """<!doctype html><meta charset="utf-8"><title>till search</title>
<input id="code"><ul id="suggestions"></ul>"""

RUN = """async ([nVariants, nLocations, nWords, nEvents]) => {
  const {Catalogue} = await import("/search.js");
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const brands = ["Kaunis", "Lumo", "Silk", "Aurora", "Pohjola", "Sointu", "Usva", "Talvi"];
  const kinds = ["Foundation", "Lipstick", "Serum", "Cream", "Mascara", "Concealer", "Toner",
                 "Powder", "Blush", "Balm"];
  const shades = ["1C Lumi", "2N Hiekka", "3W Kulta", "Ruusu", "Marja", "Kaneli", "Sade",
                  "Kuura", "Sammal", "Meri"];
  const locations = Array.from({length: nLocations}, (_, i) => ({
    id: i + 1, code: `l${i + 1}`, name: i ? `Store ${i}` : "Warehouse",
    kind: i ? "store" : "warehouse"}));
  const variants = [];
  for (let i = 0; i < nVariants; i++) {
    const brand = pick(brands);
    const name = `${pick(kinds)} ${pick(shades)} ${i}`;
    const stock = {};
    for (const loc of locations) {
      if (rnd() < 0.7) stock[String(loc.id)] = 1 + Math.floor(rnd() * 20);
    }
    variants.push({id: i + 1, ean: String(2000000000000 + i), sku: `SKU-${i}`, name, brand,
                   search: `${name} ${brand} sku-${i}`.toLowerCase(), unit_price_cents: 1990,
                   campaign_discount_cents: 0, vat_rate_bp: 2550, stock});
  }
  const cat = new Catalogue({variants, bundles: [], locations});
  const here = 2;
  const money = new Intl.NumberFormat("fi-FI", {style: "currency", currency: "EUR"});
  const qty = new Intl.NumberFormat("fi-FI", {maximumFractionDigits: 0});
  const stockText = (v) => {  // till.js stockText
    const parts = [`Täällä ${qty.format(cat.available(v, here))}`];
    for (const o of cat.elsewhere(v, here)) parts.push(`${o.name} ${qty.format(o.units)}`);
    return parts.join(" · ");
  };
  const list = document.getElementById("suggestions");
  let shown = [];
  const draw = (text) => {  // till.js showSuggestions
    shown = text.length >= 2 ? cat.search(text) : [];
    list.replaceChildren(...shown.map((v, i) => {
      const li = document.createElement("li");
      li.dataset.index = String(i);
      li.innerHTML = '<span class="s-name"></span><small></small><span class="s-price"></span>';
      li.children[0].textContent = v.name;
      li.children[1].textContent = [v.brand, v.sku].filter(Boolean).join(" · ");
      const s = document.createElement("span");
      s.className = "s-stock";
      s.textContent = stockText(v);
      li.children[1].append(s);
      li.children[2].textContent = money.format(v.unit_price_cents / 100);
      return li;
    }));
    return list.offsetHeight;  // laid out
  };
  const keys = [];
  for (let w = 0; w < nWords; w++) {
    const word = pick(variants).name.toLowerCase().slice(0, 12);
    for (let n = 1; n <= word.length; n++) {
      const t0 = performance.now();
      draw(word.slice(0, n));
      keys.push(performance.now() - t0);
    }
  }
  draw(pick(variants).name.toLowerCase().slice(0, 6));
  const events = [];
  for (let e = 0; e < nEvents; e++) {  // till.js onStockEvent + refreshSuggestionStock
    const v = shown.length && rnd() < 0.5 ? pick(shown) : pick(variants);
    const t0 = performance.now();
    cat.setStock(v.id, pick(locations).id, Math.floor(rnd() * 10));
    if (shown.some((x) => x.id === v.id)) {
      for (const li of list.children) {
        li.querySelector(".s-stock").textContent = stockText(shown[Number(li.dataset.index)]);
      }
      void list.offsetHeight;
    }
    events.push(performance.now() - t0);
  }
  return {keys, events, results: shown.length};
}"""


async def run(variants: int, locations: int, words: int, events: int) -> dict[str, Any]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = await browser.new_page()

        async def serve(route: Route) -> None:
            if route.request.url.endswith("/search.js"):
                await route.fulfill(body=SEARCH_JS.read_text(),
                                    content_type="text/javascript")
            else:
                await route.fulfill(body=PAGE, content_type="text/html")

        await page.route(f"{ORIGIN}/**", serve)
        await page.goto(f"{ORIGIN}/")
        out = await page.evaluate(RUN, [variants, locations, words, events])
        await browser.close()
    return {"variants": variants, "locations": locations,
            "keystroke_ms": latency_summary(out["keys"]),
            "stock_event_ms": latency_summary(out["events"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", type=int, default=5000)
    ap.add_argument("--locations", type=int, default=10)
    ap.add_argument("--words", type=int, default=100)
    ap.add_argument("--events", type=int, default=2000)
    a = ap.parse_args()
    result = asyncio.run(run(a.variants, a.locations, a.words, a.events))
    write_result("till_search", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
