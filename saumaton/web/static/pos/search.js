// The catalogue snapshot in memory: lookup by scanned code and search as you type.

export class Catalogue {
  constructor(snapshot) {
    this.generatedAt = snapshot.generated_at;
    this.variants = snapshot.variants || [];
    this.bundles = snapshot.bundles || [];  // bundle campaigns (pricing.js applyBundles)
    // Every location, and each variant's units available per location (`stock`, kept
    // current from stock.changed events): the endless aisle (tills.aisle).
    this.locations = snapshot.locations || [];
    this.locationById = new Map(this.locations.map((l) => [l.id, l]));
    this.byId = new Map();
    this.byEan = new Map();
    this.bySku = new Map();
    this.furtherCodes = 0;  // further barcodes (a supplier's code, an old packaging's EAN)
    for (const v of this.variants) {
      this.byId.set(v.id, v);
      if (v.ean) this.byEan.set(v.ean, v);
      for (const code of v.codes || []) {
        this.byEan.set(code, v);
        this.furtherCodes += 1;
      }
      this.bySku.set(v.sku.toLowerCase(), v);
    }
  }

  get size() { return this.variants.length; }

  /** Units of a variant available at a location (on hand − held). */
  available(v, locationId) {
    return Number(((v && v.stock) || {})[String(locationId)] || 0);
  }

  /** A stock.changed event's figure: the variant's units available there now. */
  setStock(variantId, locationId, units) {
    const v = this.byId.get(variantId);
    if (!v || v.gift_card) return null;
    v.stock = v.stock || {};
    if (units > 0) v.stock[String(locationId)] = units;
    else delete v.stock[String(locationId)];
    return v;
  }

  /** The other locations that have the variant: [{id, name, units}], most first. */
  elsewhere(v, here) {
    const out = [];
    for (const [id, units] of Object.entries((v && v.stock) || {})) {
      const loc = this.locationById.get(Number(id));
      if (loc && loc.id !== here && units > 0) out.push({id: loc.id, name: loc.name, units});
    }
    return out.sort((a, b) => b.units - a.units || a.name.localeCompare(b.name));
  }

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

/** The price of a variant now for a buyer of loyalty `tier` ("member" | "silver" |
 * "gold" | "" for none) who belongs to the customer segments `segments` (ids): the
 * biggest of the tier's member price and the segments' prices when the snapshot has
 * them, else everyone's. A campaign that has ended (the till may be offline past its
 * end) no longer applies. */
export function priceNow(v, now = new Date(), tier = "", segments = []) {
  const ended = (ends) => Boolean(ends) && new Date(ends) <= now;
  const offers = [];
  if (tier && v.member_prices && v.member_prices[tier]) offers.push(v.member_prices[tier]);
  for (const s of segments) {
    if (v.segment_prices && v.segment_prices[String(s)]) offers.push(v.segment_prices[String(s)]);
  }
  let member = null;
  for (const o of offers) {
    if (ended(o.campaign_ends_at)) continue;
    if (!member || o.campaign_discount_cents > member.campaign_discount_cents
        || (o.campaign_discount_cents === member.campaign_discount_cents
            && o.campaign_id < member.campaign_id)) member = o;
  }
  if (member) {
    return {
      unit_price_cents: v.unit_price_cents,
      campaign_discount_cents: member.campaign_discount_cents,
      campaign_id: member.campaign_id,
      campaign_name: member.campaign_name,
      campaign_limited: Boolean(member.campaign_limited),
      member_price: true,
    };
  }
  const gone = ended(v.campaign_ends_at);
  return {
    unit_price_cents: v.unit_price_cents,
    campaign_discount_cents: gone ? 0 : v.campaign_discount_cents,
    campaign_id: gone ? null : v.campaign_id,
    campaign_name: gone ? null : v.campaign_name,
    campaign_limited: !gone && Boolean(v.campaign_limited),
    member_price: false,
  };
}
