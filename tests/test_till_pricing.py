"""The till's pricing.js, run in Chromium, against the core's Python pricing on a few
hundred seeded random carts: `orders.quote.price_lines` + `orders.discounts.apply_discounts`
(with a cashier's limit) and `payments.plan_payments` must agree to the cent, errors
included; with bundle campaigns too (`pricing.bundles.apply_bundles`)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from saumaton.catalogue.services import VariantInfo
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.errors import DomainError
from saumaton.core.money import round_cash
from saumaton.orders.discounts import DiscountIn, apply_discounts
from saumaton.orders.quote import price_lines
from saumaton.payments.services import PaymentIn, plan_payments
from saumaton.pricing.bundles import Bundle
from saumaton.pricing.services import PriceQuote, tiers_up_to
from tests.browser import ARGS, CHROMIUM

STATIC = Path(__file__).resolve().parent.parent / "saumaton" / "web" / "static"
ORIGIN = "http://till.test"
CARTS = 400
LOCATION = 1
CASHIER = Actor(label="staff:1 cashier", staff_id=1, name="Cashier",
                grants=(RoleGrant("cashier", LOCATION),))
MANAGER = Actor(label="staff:2 manager", staff_id=2, name="Manager",
                grants=(RoleGrant("manager", None),))
MAX_PCT = 20


@pytest.fixture(scope="module")
async def page() -> AsyncIterator[Page]:
    """A page on a made-up origin that serves the static files from the source tree."""
    async with async_playwright() as pw:
        browser: Browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                    args=ARGS)

        async def serve(route: Route) -> None:
            path = route.request.url.removeprefix(ORIGIN)
            if path.startswith("/static/"):
                file = STATIC / path.removeprefix("/static/").split("?")[0]
                await route.fulfill(body=file.read_bytes(),
                                    content_type="text/javascript; charset=utf-8")
            else:
                await route.fulfill(body="<!doctype html><title>pricing</title>",
                                    content_type="text/html")

        context = await browser.new_context()
        await context.route(f"{ORIGIN}/**", serve)
        p = await context.new_page()
        await p.goto(f"{ORIGIN}/")
        yield p
        await browser.close()


def random_discount(rng: random.Random, base: int) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.45:
        return None
    if roll < 0.75:
        bp = rng.choice([MAX_PCT * 100, MAX_PCT * 100 + 1, 10000, 1, 50,
                         rng.randint(1, 10000), rng.randint(1, 2500)])
        return {"percent_bp": bp, "reason": rng.choice(["Kanta-asiakas", " Vaurio ", "x"])}
    top = max(1, base)
    cents = min(100_000_000, rng.choice([1, top, top + 1, rng.randint(1, top),
                                         rng.randint(1, max(1, top // 5))]))
    return {"cents": cents, "reason": "Hintalupaus"}


def random_cart(rng: random.Random) -> dict[str, Any]:
    lines = []
    for _ in range(rng.randint(1, 7)):
        unit = rng.choice([rng.randint(0, 500), rng.randint(1, 20000), rng.randint(1, 1_000_000),
                           1999, 995, 1])
        campaign = rng.choice([0, 0, rng.randint(0, unit), unit // 5, unit])
        qty = rng.choice([1, 1, 2, 3, rng.randint(1, 60), 10_000])
        lines.append({"unit_price_cents": unit, "campaign_discount_cents": campaign,
                      "vat_rate_bp": rng.choice([2550, 2550, 1400, 1000, 0]), "quantity": qty,
                      "discount": random_discount(rng, (unit - campaign) * qty)})
    total_guess = sum((ln["unit_price_cents"] - ln["campaign_discount_cents"]) * ln["quantity"]
                      for ln in lines)
    cart = {"lines": lines, "order_discount": random_discount(rng, total_guess),
            "manager": rng.random() < 0.25}
    cash = rng.random() < 0.7
    cap = 100_000_000  # the largest amount a payment may have
    card = rng.choice([None, None, rng.randint(1, max(1, min(cap, total_guess))),
                       min(cap, total_guess + 1)])
    payments: list[dict[str, Any]] = []
    if card is not None:
        payments.append({"method": "card", "amount_cents": card})
    if cash or not payments:
        tendered = rng.choice([None, min(cap, round_cash(total_guess)),
                               rng.randint(0, min(cap, total_guess + 5000))])
        payments.append({"method": "cash", "tendered_cents": tendered})
    cart["payments"] = payments
    return cart


def python_price(cart: dict[str, Any]) -> dict[str, Any]:
    lines = cart["lines"]
    infos = [VariantInfo(id=i + 1, product_id=1, category_id=None, sku=f"S{i}", ean=None,
                         name=f"V{i}", price_cents=ln["unit_price_cents"],
                         vat_rate_bp=ln["vat_rate_bp"], active=True)
             for i, ln in enumerate(lines)]
    quotes = {i + 1: PriceQuote(i + 1, ln["unit_price_cents"], ln["campaign_discount_cents"])
              for i, ln in enumerate(lines)}
    priced = price_lines("pos-1", infos, [ln["quantity"] for ln in lines], quotes)
    actor = MANAGER if cart["manager"] else CASHIER
    try:
        quote, manual, reasons = apply_discounts(
            priced, [DiscountIn(**ln["discount"]) if ln["discount"] else None for ln in lines],
            DiscountIn(**cart["order_discount"]) if cart["order_discount"] else None,
            actor=actor, location_id=LOCATION, max_pct=MAX_PCT)
    except DomainError as exc:
        return {"error": {"code": exc.code, "field": exc.field}}
    out: dict[str, Any] = {
        "lines": [{"discount_cents": ln.discount_cents, "total_cents": ln.total_cents,
                   "vat_cents": ln.vat_cents, "manual_cents": m, "reason": r}
                  for ln, m, r in zip(quote.lines, manual, reasons, strict=True)],
        "subtotal_cents": quote.subtotal_cents, "discount_cents": quote.discount_cents,
        "total_cents": quote.total_cents, "vat_cents": quote.vat_cents,
        "vat": [v.model_dump() for v in quote.vat_breakdown],
        "cash_due_cents": quote.cash_due_cents,
    }
    try:
        planned = plan_payments(quote.total_cents, [
            PaymentIn(method=p["method"], amount_cents=p.get("amount_cents"),
                      tendered_cents=p.get("tendered_cents"), terminal_confirmed=True)
            for p in cart["payments"]])
        out["payments"] = {"planned": [
            {"method": p.method, "amount_cents": p.amount_cents, "rounding_cents": p.rounding_cents,
             "change_cents": p.change_cents} for p in planned], "error": None}
    except DomainError as exc:
        out["payments"] = {"planned": None, "error": exc.code}
    return out


JS = """async (carts) => {
  const m = await import("/static/pos/pricing.js");
  return carts.map((c) => {
    const p = m.priceSale(c.lines, c.order_discount, c.manager ? 100 : MAX_PCT);
    if (p.errors.length) return {error: p.errors[0]};
    const pay = m.planPayments(p.total_cents, c.payments);
    return {
      lines: p.lines.map((ln) => ({discount_cents: ln.discount_cents, total_cents: ln.total_cents,
        vat_cents: ln.vat_cents, manual_cents: ln.manual_cents, reason: ln.reason})),
      subtotal_cents: p.subtotal_cents, discount_cents: p.discount_cents,
      total_cents: p.total_cents, vat_cents: p.vat_cents, vat: p.vat,
      cash_due_cents: p.cash_due_cents,
      payments: pay.error ? {planned: null, error: pay.error.code} : {planned: pay.planned.map(
        (x) => ({method: x.method, amount_cents: x.amount_cents, rounding_cents: x.rounding_cents,
                 change_cents: x.change_cents})), error: null},
    };
  });
}""".replace("MAX_PCT", str(MAX_PCT))


async def test_pricing_js_equals_the_core_on_random_carts(page: Page) -> None:
    rng = random.Random(20261122)
    carts = [random_cart(rng) for _ in range(CARTS)]
    expected = [python_price(c) for c in carts]
    got = await page.evaluate(JS, carts)
    for cart, want, have in zip(carts, expected, got, strict=True):
        assert have == want, f"cart {cart}"
    errors = [e["error"]["code"] for e in expected if "error" in e]
    # the carts cover every case: valid, over the limit, too large, split and cash errors
    assert 100 < len(carts) - len(errors)
    assert errors.count("discount_over_limit") > 10 and errors.count("discount_too_large") > 5
    pays = [e["payments"] for e in expected if "payments" in e]
    assert sum(1 for p in pays if p["error"] is None and len(p["planned"]) == 2) > 10
    assert sum(1 for p in pays if p["error"] == "insufficient_cash") > 5
    assert sum(1 for p in pays if p["error"] is None and p["planned"][-1]["rounding_cents"]) > 10


async def test_small_cases_by_hand(page: Page) -> None:
    got = await page.evaluate("""async () => {
      const m = await import("/static/pos/pricing.js");
      return [m.divRound(5, 10), m.divRound(-5, 10), m.divRound(4, 10), m.vatIncluded(1999, 2550),
              m.roundCash(2903), m.roundCash(2), m.roundCash(1997), m.roundCash(-1998),
              m.spread(10, [1, 1, 1]), m.spread(7, [0, 0]), m.parseMoney("150,5"),
              m.parseMoney(" 20.50 € "), Number.isNaN(m.parseMoney("1,234")), m.parseMoney("")];
    }""")
    assert got == [1, -1, 0, 406, 2905, 2, 1995, -2000, [4, 3, 3], [0, 0], 15050, 2050, True,
                   None]


# --- bundle campaigns (pricing.bundles / pricing.js applyBundles) ----------------------------

BUNDLE_CARTS = 300


def random_bundles(rng: random.Random) -> list[dict[str, Any]]:
    """A few bundle campaigns on products 1..3, variants 1..7 and category 9."""
    out = []
    for cid in rng.sample(range(1, 40), rng.randint(1, 4)):
        kind = rng.choice(["x_for_y", "buy_x_get_y", "set_price"])
        buy = rng.choice([2, 3, 3, 4, rng.randint(2, 10)])
        out.append({
            "campaign_id": cid, "name": f"Bundle {cid}", "kind": kind,
            "value": (rng.choice([10000, 5000, rng.randint(1, 10000)]) if kind == "buy_x_get_y"
                      else rng.choice([1, 999, rng.randint(1, 50000)]) if kind == "set_price"
                      else 0),
            "buy_quantity": buy,
            "pay_quantity": rng.randint(1, buy - 1) if kind == "x_for_y" else None,
            "get_quantity": rng.randint(1, 3) if kind == "buy_x_get_y" else None,
            "variant_ids": rng.sample(range(1, 8), rng.choice([0, 0, 1, 3])),
            "product_ids": rng.sample([1, 2, 3], rng.choice([0, 1, 2])),
            "category_ids": [9] if rng.random() < 0.3 else [],
            "min_tier": None, "ends_at": None,
        })
    return out


def random_bundle_cart(rng: random.Random) -> dict[str, Any]:
    cart = random_cart(rng)
    for i, ln in enumerate(cart["lines"]):
        if ln["quantity"] > 60 and rng.random() < 0.9:
            ln["quantity"] = rng.randint(1, 12)
        if rng.random() < 0.4:
            ln["quantity"] = rng.randint(2, 9)
        gift = rng.random() < 0.05  # never a campaign discount on a card (price_lines)
        ln.update(variant_id=i + 1, product_id=rng.choice([1, 2, 3, 4]),
                  category_id=rng.choice([None, 9, 8]), gift_card=gift,
                  campaign_discount_cents=0 if gift else ln["campaign_discount_cents"])
        ln["campaign_id"] = (100 + i) if ln["campaign_discount_cents"] else None
    cart["bundles"] = random_bundles(rng)
    cart["manager"] = rng.random() < 0.8  # fewer refused discounts: more carts priced
    return cart


def python_price_bundles(cart: dict[str, Any]) -> dict[str, Any]:
    lines = cart["lines"]
    infos = [VariantInfo(id=ln["variant_id"], product_id=ln["product_id"],
                         category_id=ln["category_id"], sku=f"S{i}", ean=None, name=f"V{i}",
                         price_cents=ln["unit_price_cents"], vat_rate_bp=ln["vat_rate_bp"],
                         active=True, gift_card=ln["gift_card"])
             for i, ln in enumerate(lines)]
    quotes = {ln["variant_id"]: PriceQuote(
        ln["variant_id"], ln["unit_price_cents"], ln["campaign_discount_cents"],
        ln["campaign_id"], f"Unit {ln['campaign_id']}" if ln["campaign_id"] else None)
        for ln in lines}
    bundles = [Bundle(
        campaign_id=b["campaign_id"], name=b["name"], kind=b["kind"], value=b["value"],
        buy_quantity=b["buy_quantity"], pay_quantity=b["pay_quantity"],
        get_quantity=b["get_quantity"], variant_ids=frozenset(b["variant_ids"]),
        product_ids=frozenset(b["product_ids"]), category_ids=frozenset(b["category_ids"]))
        for b in cart["bundles"]]
    priced = price_lines("pos-1", infos, [ln["quantity"] for ln in lines], quotes, bundles)
    actor = MANAGER if cart["manager"] else CASHIER
    try:
        quote, manual, _ = apply_discounts(
            priced, [DiscountIn(**ln["discount"]) if ln["discount"] else None for ln in lines],
            DiscountIn(**cart["order_discount"]) if cart["order_discount"] else None,
            actor=actor, location_id=LOCATION, max_pct=MAX_PCT)
    except DomainError as exc:
        return {"error": {"code": exc.code, "field": exc.field}}
    return {
        "lines": [{"discount_cents": ln.discount_cents, "total_cents": ln.total_cents,
                   "vat_cents": ln.vat_cents, "manual_cents": m, "bundle_cents": ln.bundle_cents,
                   "campaign_id": ln.campaign_id, "campaign_name": ln.campaign_name}
                  for ln, m in zip(quote.lines, manual, strict=True)],
        "subtotal_cents": quote.subtotal_cents, "discount_cents": quote.discount_cents,
        "total_cents": quote.total_cents, "vat_cents": quote.vat_cents,
        "vat": [v.model_dump() for v in quote.vat_breakdown],
    }


JS_BUNDLES = """async (carts) => {
  const m = await import("/static/pos/pricing.js");
  return carts.map((c) => {
    const p = m.priceSale(c.lines, c.order_discount, c.manager ? 100 : MAX_PCT, c.bundles);
    if (p.errors.length) return {error: p.errors[0]};
    return {
      lines: p.lines.map((ln, i) => ({discount_cents: ln.discount_cents,
        total_cents: ln.total_cents, vat_cents: ln.vat_cents, manual_cents: ln.manual_cents,
        bundle_cents: ln.bundle_cents,
        campaign_id: ln.bundled ? ln.campaign_id
          : (c.lines[i].gift_card ? null : c.lines[i].campaign_id),
        campaign_name: ln.bundled ? ln.campaign_name
          : (c.lines[i].campaign_id && !c.lines[i].gift_card
             ? `Unit ${c.lines[i].campaign_id}` : null)})),
      subtotal_cents: p.subtotal_cents, discount_cents: p.discount_cents,
      total_cents: p.total_cents, vat_cents: p.vat_cents, vat: p.vat,
    };
  });
}""".replace("MAX_PCT", str(MAX_PCT))


async def test_pricing_js_bundles_equal_the_core_on_random_carts(page: Page) -> None:
    rng = random.Random(20261206)
    carts = [random_bundle_cart(rng) for _ in range(BUNDLE_CARTS)]
    expected = [python_price_bundles(c) for c in carts]
    got = await page.evaluate(JS_BUNDLES, carts)
    for cart, want, have in zip(carts, expected, got, strict=True):
        assert have.get("lines") == want.get("lines"), f"cart {cart}"
        assert have == want, f"cart {cart}"
    priced = [e for e in expected if "lines" in e]
    bundled = [ln for e in priced for ln in e["lines"] if ln["bundle_cents"]]
    assert all(ln["campaign_name"].startswith("Bundle") for ln in bundled)
    # the carts cover bundles that apply, several in one cart, and ones a unit campaign beats
    assert len(bundled) > 100
    assert sum(1 for e in priced
               if len({ln["campaign_id"] for ln in e["lines"] if ln["bundle_cents"]}) > 1) > 5
    assert sum(1 for e in priced for ln in e["lines"]
               if ln["campaign_name"] and ln["campaign_name"].startswith("Unit")) > 50


async def test_bundles_for_a_tier_and_a_time(page: Page) -> None:
    bundles = [{"campaign_id": 1, "min_tier": None, "ends_at": None},
               {"campaign_id": 2, "min_tier": "silver", "ends_at": None},
               {"campaign_id": 3, "min_tier": None, "ends_at": "2026-12-06T10:00:00Z"}]
    got = await page.evaluate("""async (bundles) => {
      const m = await import("/static/pos/pricing.js");
      const ids = (t, at) => m.bundlesFor(bundles, new Date(at), t).map((b) => b.campaign_id);
      return [ids("", "2026-12-06T09:59:59Z"), ids("member", "2026-12-06T10:00:00Z"),
              ids("silver", "2026-12-06T11:00:00Z"), ids("gold", "2026-12-06T09:00:00Z")];
    }""", bundles)
    # the same tiers as pricing.services.tiers_up_to; a campaign ends at its end time
    assert got == [[1, 3], [1], [1, 2], [1, 2, 3]]
    assert tiers_up_to("gold") == ["member", "silver", "gold"] and tiers_up_to(None) == []
