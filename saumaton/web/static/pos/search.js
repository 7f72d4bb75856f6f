// The catalogue snapshot in memory: lookup by scanned code and search as you type.

export class Catalogue {
  constructor(snapshot) {
    this.generatedAt = snapshot.generated_at;
    this.variants = snapshot.variants || [];
    this.byId = new Map();
    this.byEan = new Map();
    this.bySku = new Map();
    for (const v of this.variants) {
      this.byId.set(v.id, v);
      if (v.ean) this.byEan.set(v.ean, v);
      this.bySku.set(v.sku.toLowerCase(), v);
    }
  }

  get size() { return this.variants.length; }

  /** A scanned or typed code: EAN first, then SKU (any case). */
  find(code) {
    const c = code.trim();
    return this.byEan.get(c) || this.bySku.get(c.toLowerCase()) || null;
  }

  /** Products whose name, brand, SKU or EAN contain every word typed; names that start
   * with the first word come first. */
  search(text, limit = 8) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    const first = [];
    const rest = [];
    for (const v of this.variants) {
      const s = v.search;
      if (!words.every((w) => s.includes(w))) continue;
      (s.startsWith(words[0]) || v.name.toLowerCase().startsWith(words[0]) ? first : rest).push(v);
      if (first.length >= limit) break;
    }
    return first.concat(rest).slice(0, limit);
  }
}

/** The price of a variant now: a campaign that has ended (the till may be offline
 * past its end) no longer applies. */
export function priceNow(v, now = new Date()) {
  const ended = v.campaign_ends_at && new Date(v.campaign_ends_at) <= now;
  return {
    unit_price_cents: v.unit_price_cents,
    campaign_discount_cents: ended ? 0 : v.campaign_discount_cents,
    campaign_id: ended ? null : v.campaign_id,
    campaign_name: ended ? null : v.campaign_name,
  };
}
