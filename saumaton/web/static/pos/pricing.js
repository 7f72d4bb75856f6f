// The till's pricing: a line-for-line mirror of saumaton/orders/quote.py
// (price_lines), saumaton/pricing/bundles.py (apply_bundles), saumaton/orders/discounts.py (apply_discounts) and
// saumaton/payments/services.py (plan_payments) with core/money.py's rounding.
// tests/test_till_pricing.py runs this file in Chromium on random carts and
// compares every figure with the Python functions, to the cent.
//
// All amounts are integer cents. Products that could pass 2^53 are done in BigInt.

/** numerator / denominator rounded half away from zero, exactly (money.div_round). */
export function divRound(numerator, denominator) {
  const n = BigInt(numerator);
  const d = BigInt(denominator);
  if (d <= 0n) throw new RangeError("denominator must be positive");
  const sign = n < 0n ? -1n : 1n;
  const a = n < 0n ? -n : n;
  let q = a / d;
  const r = a % d;
  if (2n * r >= d) q += 1n;
  return Number(sign * q);
}

/** VAT contained in a VAT-inclusive amount (money.vat_included). */
export function vatIncluded(grossCents, rateBp) {
  return divRound(BigInt(grossCents) * BigInt(rateBp), 10000 + rateBp);
}

/** A cash payment rounded to 5 cents, Act 890/2000 (money.round_cash). */
export function roundCash(cents) {
  if (cents < 0) return -roundCash(-cents);
  if (cents < 3) return cents;
  const r = cents % 5;
  return r <= 2 ? cents - r : cents + 5 - r;
}

/** `amount` split in proportion to `weights`: floor shares, the cents left over one
 * each to the largest remainders (ties: the earlier line) (discounts.spread). */
export function spread(amount, weights) {
  const total = weights.reduce((s, w) => s + BigInt(w), 0n);
  if (total <= 0n || amount <= 0) return weights.map(() => 0);
  const a = BigInt(amount);
  const shares = weights.map((w) => (a * BigInt(w)) / total);
  let left = a - shares.reduce((s, x) => s + x, 0n);
  const order = weights.map((w, i) => [(a * BigInt(w)) % total, i]);
  order.sort((x, y) => (x[0] === y[0] ? x[1] - y[1] : (x[0] > y[0] ? -1 : 1)));
  for (const [, i] of order) {
    if (left <= 0n) break;
    shares[i] += 1n;
    left -= 1n;
  }
  return shares.map(Number);
}

/** What a discount takes off `base` (discounts.discount_amount); null when a euro
 * discount is more than the base (the server's `discount_too_large`). */
export function discountAmount(d, base) {
  if (d.percent_bp != null) return divRound(BigInt(base) * BigInt(d.percent_bp), 10000);
  if (d.cents > base) return null;
  return d.cents;
}

/** True when a discount of `amount` on `base` is over `maxPct` per cent
 * (discounts.check_limit for a cashier; managers have maxPct 100). */
export function overLimit(amount, base, maxPct) {
  if (amount === 0) return false;
  return BigInt(amount) * 100n > BigInt(maxPct) * BigInt(base);
}

// --- bundle campaigns (pricing/bundles.py) -------------------------------------------

const TIERS = ["member", "silver", "gold"];

/** The snapshot's bundle campaigns that apply `now` for a buyer of loyalty `tier`
 * ("" for none): not ended, and member-only ones only for that tier or higher. */
export function bundlesFor(bundles, now = new Date(), tier = "") {
  const rank = TIERS.indexOf(tier || "");
  return (bundles || []).filter((b) => (!b.ends_at || new Date(b.ends_at) > now)
    && (!b.min_tier || (rank >= 0 && TIERS.indexOf(b.min_tier) <= rank)));
}

function bundleMatches(b, ln) {
  return b.variant_ids.includes(ln.variant_id) || b.product_ids.includes(ln.product_id)
    || (ln.category_id != null && b.category_ids.includes(ln.category_id));
}

function setSize(b) {
  return b.kind === "buy_x_get_y" ? b.buy_quantity + (b.get_quantity || 0) : b.buy_quantity;
}

/** The discount on one set; `prices` its units' list prices, dearest first. */
function setDiscount(b, prices) {
  const sum = (xs) => xs.reduce((s, x) => s + x, 0);
  if (b.kind === "x_for_y") {
    const free = b.buy_quantity - (b.pay_quantity || b.buy_quantity);
    return free > 0 ? sum(prices.slice(prices.length - free)) : 0;
  }
  if (b.kind === "buy_x_get_y") {
    const got = b.get_quantity || 0;
    return sum(prices.slice(prices.length - got).map((p) => divRound(BigInt(p) * BigInt(b.value), 10000)));
  }
  return Math.max(0, sum(prices) - b.value);  // set_price
}

function tryBundle(b, lines, free) {
  const order = [];
  lines.forEach((ln, i) => {
    if (free[i] > 0 && !ln.gift_card && bundleMatches(b, ln)) order.push(i);
  });
  order.sort((x, y) => (lines[y].unit_price_cents - lines[x].unit_price_cents) || (x - y));
  const units = [];
  for (const i of order) for (let k = 0; k < free[i]; k++) units.push(i);
  const size = setSize(b);
  const trial = {saving: 0, sets: []};
  for (let start = 0; start + size <= units.length; start += size) {
    const members = units.slice(start, start + size);
    const d = setDiscount(b, members.map((i) => lines[i].unit_price_cents));
    const replaced = members.reduce((s, i) => s + Math.min(
      lines[i].campaign_discount_cents || 0, lines[i].unit_price_cents), 0);
    if (d > replaced) {
      trial.sets.push([members, d]);
      trial.saving += d - replaced;
    }
  }
  return trial;
}

/**
 * The bundle campaigns over a sale (pricing.bundles.apply_bundles): for each line null
 * (not in a set) or {discount_cents (the line's whole campaign discount), bundle_cents,
 * campaign_id, campaign_name}. `lines`: [{variant_id, product_id, category_id, quantity,
 * unit_price_cents, campaign_discount_cents (per unit), gift_card}].
 */
export function applyBundles(lines, bundles) {
  const free = lines.map((ln) => ln.quantity);
  const bundled = lines.map(() => 0);
  const shares = lines.map(() => new Map());
  const left = [...(bundles || [])].sort((a, b) => a.campaign_id - b.campaign_id);
  while (left.length) {
    let best = null;
    for (const b of left) {
      const t = tryBundle(b, lines, free);
      if (t.saving > 0 && (best === null || t.saving > best[1].saving)) best = [b, t];
    }
    if (best === null) break;
    const [bundle, trial] = best;
    left.splice(left.indexOf(bundle), 1);
    const weights = lines.map(() => 0);
    const touched = lines.map(() => false);
    for (const [members] of trial.sets) {
      for (const i of members) {
        free[i] -= 1;
        bundled[i] += 1;
        weights[i] += lines[i].unit_price_cents;
        touched[i] = true;
      }
    }
    const total = trial.sets.reduce((s, [, d]) => s + d, 0);
    spread(total, weights).forEach((share, i) => {
      if (touched[i]) shares[i].set(bundle.campaign_id, share);
    });
  }
  const byId = new Map((bundles || []).map((b) => [b.campaign_id, b]));
  return lines.map((ln, i) => {
    if (!bundled[i]) return null;
    let top = null;
    let own = 0;
    for (const [id, share] of shares[i]) {
      own += share;
      if (top === null || share > shares[i].get(top) || (share === shares[i].get(top) && id < top)) top = id;
    }
    const unit = Math.min(ln.campaign_discount_cents || 0, ln.unit_price_cents) * (ln.quantity - bundled[i]);
    return {discount_cents: unit + own, bundle_cents: own, campaign_id: top,
            campaign_name: byId.get(top).name};
  });
}

/**
 * Price a sale. `lines`: [{unit_price_cents, campaign_discount_cents (per unit),
 * vat_rate_bp, quantity, discount: {percent_bp | cents, reason} | null, and for the
 * bundles variant_id, product_id, category_id, gift_card}];
 * `orderDiscount`: {percent_bp | cents, reason} | null; `maxPct`: the cashier's limit;
 * `bundles`: the bundle campaigns that apply (bundlesFor).
 * Returns the lines and totals as the order will record them, the VAT per rate and
 * `errors`: [{field: "lines.0.discount" | "order_discount", code}] (a discount with an
 * error is left out of the figures). A line in a bundle set has `bundled`, its
 * `bundle_cents` and the bundle's `campaign_id` and `campaign_name`.
 */
export function priceSale(lines, orderDiscount = null, maxPct = 100, bundles = []) {
  const errors = [];
  const byBundle = bundles && bundles.length ? applyBundles(lines, bundles) : lines.map(() => null);
  const out = lines.map((ln, i) => {
    const listTotal = ln.unit_price_cents * ln.quantity;
    const b = ln.gift_card ? null : byBundle[i];
    const campaign = b ? b.discount_cents : (ln.campaign_discount_cents || 0) * ln.quantity;
    const line = {
      quantity: ln.quantity, unit_price_cents: ln.unit_price_cents,
      vat_rate_bp: ln.vat_rate_bp, list_total_cents: listTotal, campaign_cents: campaign,
      after_campaign_cents: listTotal - campaign, manual_cents: 0, reason: "",
      bundle_cents: b ? b.bundle_cents : 0,
    };
    if (b) {  // in a bundle set: named by the bundle campaign
      line.bundled = true;
      line.campaign_id = b.campaign_id;
      line.campaign_name = b.campaign_name;
    }
    return line;
  });
  out.forEach((ln, i) => {
    const d = lines[i].discount;
    if (!d) return;
    const field = `lines.${i}.discount`;
    const amount = discountAmount(d, ln.after_campaign_cents);
    if (amount === null) { errors.push({field, code: "discount_too_large"}); return; }
    if (overLimit(amount, ln.after_campaign_cents, maxPct)) {
      errors.push({field, code: "discount_over_limit"});
      return;
    }
    ln.manual_cents = amount;
    ln.reason = (d.reason || "").trim();
  });
  let orderDiscountCents = 0;
  if (orderDiscount) {
    const nets = out.map((ln) => ln.after_campaign_cents - ln.manual_cents);
    const base = nets.reduce((s, x) => s + x, 0);
    const amount = discountAmount(orderDiscount, base);
    if (amount === null) {
      errors.push({field: "order_discount", code: "discount_too_large"});
    } else if (overLimit(amount, base, maxPct)) {
      errors.push({field: "order_discount", code: "discount_over_limit"});
    } else {
      orderDiscountCents = amount;
      spread(amount, nets).forEach((share, i) => {
        out[i].manual_cents += share;
        out[i].order_share_cents = share;
        if (share && !out[i].reason) out[i].reason = (orderDiscount.reason || "").trim();
      });
    }
  }
  const totals = {subtotal_cents: 0, discount_cents: 0, total_cents: 0, vat_cents: 0};
  const byRate = new Map();
  for (const ln of out) {
    ln.discount_cents = ln.campaign_cents + ln.manual_cents;
    ln.total_cents = ln.after_campaign_cents - ln.manual_cents;
    ln.vat_cents = vatIncluded(ln.total_cents, ln.vat_rate_bp);
    totals.subtotal_cents += ln.list_total_cents;
    totals.discount_cents += ln.discount_cents;
    totals.total_cents += ln.total_cents;
    totals.vat_cents += ln.vat_cents;
    const r = byRate.get(ln.vat_rate_bp) || [0, 0];
    r[0] += ln.total_cents;
    r[1] += ln.vat_cents;
    byRate.set(ln.vat_rate_bp, r);
  }
  const vat = [...byRate.entries()].sort((a, b) => b[0] - a[0]).map(([rate, [g, v]]) => (
    {rate_bp: rate, gross_cents: g, vat_cents: v, net_cents: g - v}));
  return {lines: out, ...totals, order_discount_cents: orderDiscountCents, vat, errors,
          cash_due_cents: roundCash(totals.total_cents),
          cash_rounding_cents: roundCash(totals.total_cents) - totals.total_cents};
}

/**
 * The payments as the server will plan them (tills.sales._plan + payments.plan_payments):
 * `payments` = [{method: "cash"|"card"|"points", amount_cents?, tendered_cents?}]; the
 * last cash or card one without an amount pays the rest. Loyalty points ("points")
 * always state their value and are taken off first; cash and card settle what is left.
 * Returns {planned: [{method, amount_cents, rounding_cents, tendered_cents,
 * change_cents, to_collect_cents}], error: {code, index} | null}.
 */
export function planPayments(totalCents, payments) {
  let byPoints = 0;
  for (let i = 0; i < payments.length; i++) {
    const p = payments[i];
    if (p.method !== "points") continue;
    if (!Number.isInteger(p.amount_cents) || p.amount_cents <= 0) {
      return {planned: [], error: {code: "invalid_points", index: i}};
    }
    byPoints += p.amount_cents;
  }
  if (byPoints > totalCents) return {planned: [], error: {code: "overpayment", index: -1}};
  if (!byPoints) return planTender(totalCents, payments);
  const others = payments.filter((p) => p.method !== "points");
  const rest = planTender(totalCents - byPoints, others);
  if (!rest.error && !others.length && byPoints !== totalCents) {
    rest.error = {code: "payment_incomplete", index: -1};
  }
  const tender = rest.planned[Symbol.iterator]();
  const planned = [];
  for (const p of payments) {
    if (p.method === "points") {
      planned.push({method: "points", amount_cents: p.amount_cents, rounding_cents: 0,
                    tendered_cents: null, change_cents: 0, to_collect_cents: 0});
    } else {
      const next = tender.next();
      if (next.done) break;
      planned.push(next.value);
    }
  }
  return {planned, error: rest.error};
}

/** Cash and card (payments.plan_payments). */
function planTender(totalCents, payments) {
  const planned = [];
  let due = totalCents;
  for (let i = 0; i < payments.length; i++) {
    const p = payments[i];
    if (due <= 0) return {planned, error: {code: "overpayment", index: i}};
    const amount = p.amount_cents != null ? p.amount_cents : due;
    if (amount > due) return {planned, error: {code: "overpayment", index: i}};
    if (p.method === "card") {
      planned.push({method: "card", amount_cents: amount, rounding_cents: 0,
                    tendered_cents: null, change_cents: 0, to_collect_cents: amount});
    } else {
      const toCollect = amount === due ? roundCash(amount) : amount;
      const tendered = p.tendered_cents != null ? p.tendered_cents : toCollect;
      const entry = {method: "cash", amount_cents: amount, rounding_cents: toCollect - amount,
                     tendered_cents: tendered, change_cents: tendered - toCollect,
                     to_collect_cents: toCollect};
      planned.push(entry);
      if (tendered < toCollect) return {planned, error: {code: "insufficient_cash", index: i}};
    }
    due -= amount;
  }
  if (payments.length && due !== 0) return {planned, error: {code: "payment_incomplete", index: -1}};
  return {planned, error: null};
}

/** What a cashier types ("20", "20,5", "20.50 €") in cents; null when empty,
 * NaN when it is not an amount (web/i18n.parse_money). */
export function parseMoney(text) {
  const t = String(text).trim().replace(/€/g, "").replace(/[\u00a0 ]/g, "").replace(/,/g, ".");
  if (!t) return null;
  const m = /^([0-9]{0,6})(?:\.([0-9]{0,2}))?$/.exec(t);
  if (!m || t === ".") return NaN;
  return Number(m[1] || "0") * 100 + Number(((m[2] || "") + "00").slice(0, 2));
}
