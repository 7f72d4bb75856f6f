// The till: a scanner-first sale on the catalogue snapshot held in memory.
//
// A scan (the scanner types the EAN and Enter into #code) adds the line at once from
// the snapshot; pricing.js works out the totals exactly as the server will; paying
// sends the sale once through the offline queue (queue.js), which answers "synced"
// (the server's receipt is shown) or "queued" (an offline receipt is drawn here).
// The current sale and the parked ones are kept in localStorage, so a reload (even
// offline) loses nothing.

import { Catalogue, priceNow } from "./search.js";
import { bundlesFor, overLimit, discountAmount, parseMoney, planPayments, priceSale, roundCash }
  from "./pricing.js";
import { offlineReceipt } from "./receipt.js";

const cfg = JSON.parse(document.getElementById("till-config").textContent);
const S = cfg.strings;
const $ = (id) => document.getElementById(id);
const root = $("till");
const codeInput = $("code");
const LOCALE = cfg.lang === "fi" ? "fi-FI" : "en-US";
const CURRENT_KEY = `saumaton.till.${cfg.code}.current`;
const PARKED_KEY = `saumaton.till.${cfg.code}.parked`;
const LOYALTY = /^9\d{11}$/;
const PICKUP = /^NT\d{10}$/i;
const PHONE = /^(\+\d[\d ()-]{6,17}|0\d[\d ()-]{5,10})$/;
// An order number ("000104", from the order e-mail) or a till receipt's number
// ("1-000042", "K1-000017"): offered for a return, not sold.
const ORDER_NO = /^(\d{1,12}|[A-Za-z]{0,3}\d{1,6}-\d{1,9})$/;
const MAX_QTY = 10000;  // the server's limit per line

// --- formatting -------------------------------------------------------------------------

const moneyFmt = new Intl.NumberFormat(LOCALE, {style: "currency", currency: "EUR"});
const rateFmt = new Intl.NumberFormat(LOCALE, {maximumFractionDigits: 2});
const qtyFmt = new Intl.NumberFormat(LOCALE, {maximumFractionDigits: 0});
const dateFmt = new Intl.DateTimeFormat(LOCALE, {
  timeZone: cfg.timezone, day: "numeric", month: "numeric", year: "numeric",
  hour: "numeric", minute: "2-digit", second: "2-digit"});
const dayFmt = new Intl.DateTimeFormat(LOCALE, {
  timeZone: cfg.timezone, day: "numeric", month: "numeric", year: "numeric"});
const fmt = {
  money: (c) => (c < 0 ? "−" : "") + moneyFmt.format(Math.abs(c) / 100),
  signed: (c) => (c > 0 ? "+" : c < 0 ? "−" : "") + moneyFmt.format(Math.abs(c) / 100),
  rate: (bp) => rateFmt.format(bp / 100),
  datetime: (d) => dateFmt.format(d).replace(" klo", "").replace(",", ""),
  date: (d) => dayFmt.format(d),
};
const tr = (text, values = {}) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));

// --- state ------------------------------------------------------------------------------

function newKey() {
  const raw = crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  return raw.replace(/-/g, "");
}

function newSale() {
  return {key: newKey(), startedAt: new Date().toISOString(), lines: [], order_discount: null,
          voids: [], customer: null, expected_total_cents: null, try_ids: []};
}

function load(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v ?? fallback;
  } catch { return fallback; }
}

let catalogue = null;
let sale = load(CURRENT_KEY, null) || newSale();
let parked = load(PARKED_KEY, []);
let editor = null;  // the open discount form: {target: "line"|"order", index, kind, amount, reason, other, errors}
let sending = false;
let justAdded = null;
let suggestions = [];
let active = -1;
const pending = [];  // codes scanned before the catalogue arrived
let queue = null;
let addons = [];  // the add-on suggestions for the sale's lines (server: orders.suggestions)
let addonKey = "";  // the lines and customer they were asked for
let qtyError = null;  // {variantId, message}: a quantity refused, shown at that line's box

function save() {
  try { localStorage.setItem(CURRENT_KEY, JSON.stringify(sale)); } catch { /* full: keep going */ }
}

function saveParked() {
  try { localStorage.setItem(PARKED_KEY, JSON.stringify(parked)); } catch { /* ignore */ }
}

// --- the offline queue (queue.js) ---------------------------------------------------------

async function postJson(url, body) {
  let r;
  try {
    r = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": cfg.csrfToken},
      body: JSON.stringify(body)});
  } catch (err) {
    throw {status: 0, body: {code: "network", detail: String(err)}};
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw {status: r.status, body: data};
  return {status: "synced", response: data};
}

// Used only if queue.js cannot be loaded: sends directly, keeps nothing.
const directQueue = {
  submitSale: (s) => postJson(`${cfg.base}/api/sales`, s),
  submitVoids: (v) => postJson(`${cfg.base}/api/voids`, v),
};

async function startQueue() {
  try {
    const q = await import("/static/pos/queue.js");
    await q.init({code: cfg.code, csrfToken: cfg.csrfToken, registerName: cfg.registerName,
                  sessionId: cfg.sessionId});
    queue = q;
    if (q.registerServiceWorker) q.registerServiceWorker(cfg.code).catch(() => {});
  } catch (err) {
    console.warn("till: offline queue unavailable, sending directly", err);
    queue = directQueue;
  }
  try {
    const status = await import("/static/pos/status.js");
    status.mountStatus($("sync-status"));
  } catch (err) { console.warn("till: no sync status", err); }
}
const queueReady = startQueue();

// --- the catalogue ----------------------------------------------------------------------

let catalogueAsked = 0;

async function loadCatalogue() {
  const ask = ++catalogueAsked;
  try {
    const r = await fetch(`${cfg.base}/api/catalogue`, {credentials: "same-origin"});
    if (!r.ok) throw new Error(`catalogue: ${r.status}`);
    const data = await r.json();
    if (ask !== catalogueAsked && catalogue) return;  // a newer snapshot is on its way
    catalogue = new Catalogue(data);
    root.dataset.ready = "1";
    root.dataset.catalogueSize = String(catalogue.size);
    root.dataset.catalogueCodes = String(catalogue.furtherCodes);
    while (pending.length) handleCode(pending.shift());
  } catch (err) {
    if (!catalogue) showError("general-error", S.network_error);
  }
}

// Products created, prices set and campaigns started or ended elsewhere (back office,
// API) reach the open till through the event stream: a fresh snapshot shortly after
// (a burst of price changes gives one reload). Every "ready" (also after a reconnect)
// reloads too, so nothing changed before the stream was live is missed.
const LIVE_TOPICS = ["product.created", "product.updated", "price.changed", "campaign.changed"];
let refreshTimer = null;

function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if (navigator.onLine) loadCatalogue(); }, 300);
}

function followCatalogue() {
  if (!window.EventSource) return;
  const topics = [...LIVE_TOPICS, "stock.changed"];
  const source = new EventSource("/api/v1/events?" + topics.map((t) => `topic=${t}`).join("&"));
  source.addEventListener("ready", () => { root.dataset.live = "1"; refreshSoon(); });
  for (const topic of LIVE_TOPICS) source.addEventListener(topic, refreshSoon);
  source.addEventListener("stock.changed", onStockEvent);
  source.addEventListener("error", () => { root.dataset.live = "0"; });
}

// --- the endless aisle: every location's stock, lines that ship from elsewhere -------------
// The snapshot's `stock` (units available per location: holds count) is kept current by
// stock.changed events; a line the store cannot hand over is sold with `ship_from` and
// the sale gets a delivery (home, or pickup here). Such a sale needs the network.

let stockDirty = false;
let stockFrame = 0;

function onStockEvent(ev) {
  let data;
  try { data = JSON.parse(ev.data).payload; } catch { return; }
  if (!catalogue || !data || !Number.isInteger(data.variant_id)) return;
  const v = catalogue.setStock(data.variant_id, data.location_id, Number(data.available) || 0);
  if (!v) return;
  root.dataset.stockEvents = String(Number(root.dataset.stockEvents || 0) + 1);
  const shown = sale.lines.some((l) => l.variant_id === v.id) || suggestions.some((x) => x.id === v.id);
  if (!shown) return;
  if (stockFrame) return;
  stockFrame = requestAnimationFrame(() => {
    stockFrame = 0;
    if (suggestions.length) refreshSuggestionStock();
    if ($("lines").contains(document.activeElement)) { stockDirty = true; return; }
    render();
  });
}

function stockText(v) {
  if (!catalogue || !v || v.gift_card) return "";
  const here = catalogue.available(v, cfg.locationId);
  const parts = [tr(S.stock_here, {units: qtyFmt.format(here)})];
  for (const o of catalogue.elsewhere(v, cfg.locationId)) parts.push(`${o.name} ${qtyFmt.format(o.units)}`);
  if (parts.length === 1 && !here) return S.stock_nowhere;
  return parts.join(" · ");
}

function hasAisle() {
  return sale.lines.some((l) => l.ship_from);
}

function locationName(id) {
  const loc = catalogue && catalogue.locationById.get(id);
  return loc ? loc.name : String(id);
}

function shipFromSelect(line, i, v) {
  const others = catalogue ? catalogue.elsewhere(v, cfg.locationId) : [];
  if (!line.ship_from && (!others.length || !navigator.onLine || v.gift_card)) return null;
  const select = node("select", {class: "ship-from", testid: "ship-from", "data-index": String(i),
    "aria-label": tr(S.ship_from_for, {name: line.name})},
    node("option", {value: "", text: S.take_now}));
  for (const o of others) {
    select.append(node("option", {value: String(o.id),
      text: tr(S.ship_option, {name: o.name, units: qtyFmt.format(o.units)})}));
  }
  if (line.ship_from && !others.some((o) => o.id === line.ship_from)) {
    select.append(node("option", {value: String(line.ship_from),
      text: tr(S.ship_option, {name: locationName(line.ship_from), units: "0"})}));
  }
  select.value = line.ship_from ? String(line.ship_from) : "";
  return select;
}

function readDelivery() {
  const d = sale.delivery || (sale.delivery = {method: "home"});
  const checked = root.querySelector("input[name=aisle-method]:checked");
  if (checked) d.method = checked.value;
  for (const f of ["email", "phone", "name", "street", "postcode", "city"]) d[f] = $(`aisle-${f}`).value;
  return d;
}

function renderDelivery() {
  const panel = $("aisle-delivery");
  const show = hasAisle();
  panel.hidden = !show;
  if (!show) return;
  const d = sale.delivery || (sale.delivery = {method: "home"});
  for (const r of root.querySelectorAll("input[name=aisle-method]")) r.checked = r.value === d.method;
  for (const f of ["email", "phone", "name", "street", "postcode", "city"]) {
    const input = $(`aisle-${f}`);
    if (document.activeElement !== input) input.value = d[f] || "";
  }
  $("aisle-address").hidden = d.method !== "home";
  $("aisle-offline").hidden = navigator.onLine;
  $("aisle-summary").textContent = sale.lines.filter((l) => l.ship_from)
    .map((l) => tr(S.to_come_from, {quantity: qtyFmt.format(l.quantity), name: l.name,
                                     location: locationName(l.ship_from)})).join("; ");
  if (sale.customer && d.prefilled !== sale.customer.id) prefillDelivery(sale.customer.id);
}

/** Empty delivery fields from the attached customer's register entry. */
async function prefillDelivery(customerId) {
  const d = sale.delivery;
  d.prefilled = customerId;
  let data;
  try {
    const r = await fetch(`${cfg.base}/api/customers/${customerId}/delivery`, {credentials: "same-origin"});
    if (!r.ok) return;
    data = await r.json();
  } catch { return; }
  if (!sale.customer || sale.customer.id !== customerId || sale.delivery !== d) return;
  for (const f of ["email", "phone", "name", "street", "postcode", "city"]) {
    if (!d[f] && data[f]) d[f] = data[f];
  }
  save();
  renderDelivery();
}

function deliveryBody() {
  const d = readDelivery();
  const body = {method: d.method};
  for (const f of ["email", "phone", "name", "street", "postcode", "city"]) {
    if ((d[f] || "").trim()) body[f] = d[f].trim();
  }
  if (cfg.lang === "en" || cfg.lang === "fi") body.language = cfg.lang;
  return body;
}

const DELIVERY_MESSAGES = {
  delivery_required: "aisle_choose", email_required: "aisle_email", invalid_email: "aisle_email_bad",
  address_required: "aisle_address", invalid_postcode: "aisle_postcode", invalid_phone: "aisle_phone",
};

function deliveryError(body) {
  const field = (body.field || "").replace(/^delivery\./, "");
  const key = DELIVERY_MESSAGES[body.code];
  const input = $(`aisle-${field}`);
  for (const el of $("aisle-delivery").querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  showError("aisle-error", key ? S[key] : tr(S.sale_error, {detail: body.detail || ""}));
}

// --- pricing ------------------------------------------------------------------------------

function priceInput() {
  return sale.lines.map((l) => {
    const v = catalogue && catalogue.byId.get(l.variant_id);
    return {
      unit_price_cents: l.unit_price_cents, campaign_discount_cents: l.campaign_discount_cents,
      vat_rate_bp: l.vat_rate_bp, quantity: l.quantity, discount: l.discount,
      variant_id: l.variant_id, product_id: v ? v.product_id : l.product_id,
      category_id: v ? v.category_id : l.category_id, gift_card: !!l.gift_card,
    };
  });
}

/** The bundle campaigns ("3 for 2") that apply now for the attached customer. */
function activeBundles() {
  return catalogue ? bundlesFor(catalogue.bundles, new Date(), tierNow()) : [];
}

function priced() {
  return priceSale(priceInput(), sale.order_discount, cfg.maxDiscountPct, activeBundles());
}

/** The segments the attached customer belongs to: their segment prices apply. */
function segmentsNow() {
  return (sale.customer && sale.customer.segments) || [];
}

/** The attached customer's loyalty tier ("" for none): their member prices apply. */
function tierNow() {
  return (sale.customer && sale.customer.tier) || "";
}

/** Every line priced again from the snapshot for the attached customer (or none). */
function repriceLines() {
  const now = new Date();
  for (const line of sale.lines) {
    const v = catalogue && catalogue.byId.get(line.variant_id);
    if (v) Object.assign(line, priceNow(v, now, tierNow(), segmentsNow()));
  }
}

function unitNet(line) {
  return line.unit_price_cents - (line.campaign_discount_cents || 0);
}

// --- changing the sale --------------------------------------------------------------------

function addVariant(v, quantity = 1) {
  if (v.gift_card && !navigator.onLine) {  // its code comes from the server
    showError("code-error", S.gift_offline_sell, "code");
    return;
  }
  const existing = sale.lines.find((l) => l.variant_id === v.id);
  qtyError = null;
  if (existing && existing.quantity + quantity > MAX_QTY) {
    qtyError = {variantId: v.id, message: tr(S.qty_too_many, {max: qtyFmt.format(MAX_QTY)})};
    render();
    return;
  }
  if (existing) {
    existing.quantity += quantity;
  } else {
    const p = priceNow(v, new Date(), tierNow(), segmentsNow());
    sale.lines.push({variant_id: v.id, product_id: v.product_id, category_id: v.category_id,
                     quantity, name: v.name, sku: v.sku,
                     vat_rate_bp: v.vat_rate_bp, discount: null, gift_card: !!v.gift_card, ...p});
  }
  justAdded = v.id;
  sale.expected_total_cents = null;
  changed();
}

function voidUnits(line, quantity, reason = "") {
  if (quantity <= 0) return;
  sale.voids.push({variant_id: line.variant_id, quantity,
                   amount_cents: unitNet(line) * quantity, reason});
}

/** What the cashier typed in a line's quantity box: a whole number 0..MAX_QTY (0 takes
 * the line off the sale, like ✕), else an error message and the line stays as it was. */
function parseQuantity(text) {
  const raw = String(text).trim().replace(/\s/g, "");
  if (!/^\d+$/.test(raw)) return {error: tr(S.qty_invalid, {max: qtyFmt.format(MAX_QTY)})};
  const n = Number(raw);
  if (n > MAX_QTY) return {error: tr(S.qty_too_many, {max: qtyFmt.format(MAX_QTY)})};
  return {quantity: n};
}

function setQuantity(index, quantity) {
  const line = sale.lines[index];
  if (!line) return;
  if (quantity > MAX_QTY) {
    qtyError = {variantId: line.variant_id, message: tr(S.qty_too_many, {max: qtyFmt.format(MAX_QTY)})};
    render();
    return;
  }
  qtyError = null;
  quantity = Math.max(0, quantity);
  if (quantity < line.quantity) voidUnits(line, line.quantity - quantity);
  if (quantity === 0) {
    sale.lines.splice(index, 1);
    if (editor && editor.target === "line") editor = null;
  } else {
    line.quantity = quantity;
  }
  justAdded = null;
  sale.expected_total_cents = null;
  changed();
}

function changed() {
  save();
  render();
}

function startNewSale() {
  sale = newSale();
  editor = null;
  qtyError = null;
  $("tendered").value = "";
  $("card-amount").value = "";
  hideCustomerPanel();
  changed();
  showSaleView();
}

async function clearSale() {
  for (const line of sale.lines) voidUnits(line, line.quantity);
  const voids = sale.voids;
  const key = sale.key;
  startNewSale();
  if (voids.length) {
    await queueReady;
    try {
      await queue.submitVoids({key, session_id: cfg.sessionId, voids});
    } catch (err) {
      showError("general-error", tr(S.sale_error, {detail: detailOf(err)}));
    }
  }
}

// --- scanning and searching -----------------------------------------------------------------

function handleCode(raw) {
  const code = raw.trim();
  hideError("code-error");
  $("return-offer").hidden = true;
  if (!code) { showError("code-error", S.scan_first, "code"); return; }
  if (PICKUP.test(code)) {
    location.href = `${cfg.base}/pickups/find?q=${encodeURIComponent(code.toUpperCase())}`;
    return;
  }
  if (GIFT_CODE.test(code.replace(/ /g, ""))) {  // a gift card scanned into the code field
    codeInput.value = "";
    $("gift-code").value = code;
    checkGiftCard(code);
    return;
  }
  if (!catalogue) { pending.push(code); return; }
  const v = catalogue.find(code);
  if (v) { addVariant(v); return; }
  if (LOYALTY.test(code) || code.includes("@") || PHONE.test(code)) {
    $("customer-q").value = code;
    openCustomerPanel(code);
    return;
  }
  showError("code-error", tr(S.unknown_code, {code}), "code");
  if (ORDER_NO.test(code)) offerReturn(code);
  codeInput.value = code;
  codeInput.select();
}

function offerReturn(code) {
  const offer = $("return-offer");
  const link = offer.querySelector("a");
  link.textContent = tr(S.open_return, {number: code});
  link.href = `${cfg.base}/returns?q=${encodeURIComponent(code)}`;
  offer.querySelector("small").hidden = navigator.onLine;
  offer.hidden = false;
}

function showSuggestions() {
  const text = codeInput.value.trim();
  const list = $("suggestions");
  suggestions = (catalogue && text.length >= 2 && !/^\d+$/.test(text)) ? catalogue.search(text) : [];
  active = -1;
  list.replaceChildren();
  suggestions.forEach((v, i) => {
    const li = document.createElement("li");
    li.id = `suggestion-${i}`;
    li.setAttribute("role", "option");
    li.dataset.testid = "suggestion";
    li.dataset.index = String(i);
    const p = priceNow(v, new Date(), tierNow(), segmentsNow());
    li.innerHTML = "<span class=\"s-name\"></span><small></small><span class=\"s-price\"></span>";
    li.children[0].textContent = v.name;
    li.children[1].textContent = [v.brand, v.sku].filter(Boolean).join(" · ");
    li.children[1].append(node("span", {class: "s-stock", testid: "suggestion-stock", text: stockText(v)}));
    li.children[2].textContent = fmt.money(p.unit_price_cents - p.campaign_discount_cents);
    list.append(li);
  });
  list.hidden = !suggestions.length;
  codeInput.setAttribute("aria-expanded", suggestions.length ? "true" : "false");
  codeInput.removeAttribute("aria-activedescendant");
}

function refreshSuggestionStock() {
  for (const li of $("suggestions").children) {
    const v = suggestions[Number(li.dataset.index)];
    const el = li.querySelector(".s-stock");
    if (v && el) el.textContent = stockText(v);
  }
}

function hideSuggestions() {
  suggestions = [];
  active = -1;
  $("suggestions").hidden = true;
  $("suggestions").replaceChildren();
  codeInput.setAttribute("aria-expanded", "false");
  codeInput.removeAttribute("aria-activedescendant");
}

function moveActive(delta) {
  if (!suggestions.length) return;
  active = (active + delta + suggestions.length) % suggestions.length;
  [...$("suggestions").children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
  codeInput.setAttribute("aria-activedescendant", `suggestion-${active}`);
}

function pickSuggestion(i) {
  const v = suggestions[i];
  hideSuggestions();
  codeInput.value = "";
  if (v) addVariant(v);
  focusCode();
}

// --- rendering ------------------------------------------------------------------------------

function node(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "testid") n.dataset.testid = v;
    else if (k === "act") n.dataset.act = v;
    else if (k === "class") n.className = v;
    else if (k === "text") n.textContent = v;
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) n.append(c);
  return n;
}

// --- add-on suggestions ------------------------------------------------------------------

/** Ask the server (online only) for add-ons to the sale's lines, once per set of lines and
 * customer; a line added from them goes to the sale as `source: "upsell"`. */
async function loadAddons() {
  const ids = sale.lines.map((l) => l.variant_id);
  const key = ids.join(",") + "|" + (sale.customer ? sale.customer.id : "");
  if (key === addonKey) return;
  addonKey = key;
  if (!ids.length || !navigator.onLine) { addons = []; renderAddons(); return; }
  const q = new URLSearchParams(ids.map((id) => ["variant", String(id)]));
  if (sale.customer) q.set("customer", String(sale.customer.id));
  let body = null;
  try {
    const r = await fetch(`${cfg.base}/api/suggestions?${q}`, {credentials: "same-origin"});
    if (r.ok) body = await r.json();
  } catch (e) {
    body = null;
  }
  if (key !== addonKey) return;  // the sale changed meanwhile: that answer is coming
  if (body === null) { addonKey = ""; return; }
  addons = body.suggestions;
  renderAddons();
}

function renderAddons() {
  const shown = addons.filter((a) => catalogue && catalogue.byId.get(a.variant_id)
    && !sale.lines.some((l) => l.variant_id === a.variant_id));
  $("addons").hidden = !shown.length;
  $("addon-list").replaceChildren(...shown.map((a) => node("li", {class: "addon",
      testid: "till-addon", "data-variant-id": String(a.variant_id)},
    node("span", {class: "addon-name", text: a.name}),
    node("small", {class: "addon-why", text: S["addon_" + a.reason] || ""}),
    node("span", {class: "addon-price", text: fmt.money(a.price_cents)}),
    node("button", {type: "button", class: "button secondary", act: "addon",
      "data-id": String(a.variant_id), testid: "till-addon-add",
      "aria-label": tr(S.addon_add, {name: a.name}), text: "+"}))));
}

function addAddon(variantId) {
  const v = catalogue && catalogue.byId.get(variantId);
  if (!v) return;
  addVariant(v);
  const line = sale.lines.find((l) => l.variant_id === variantId);
  if (line && !line.source) {
    line.source = "upsell";
    save();
  }
}

function render() {
  const p = priced();
  const list = $("lines");
  const items = sale.lines.map((line, i) => {
    const pl = p.lines[i];
    const price = node("div", {class: "line-price"},
      node("span", {testid: "line-unit", text: `${line.quantity} × ${fmt.money(line.unit_price_cents)}`}));
    if (pl.campaign_cents) {
      price.append(node("span", {class: "discount", testid: "line-campaign",
        text: `−${fmt.money(pl.campaign_cents)}${pl.bundled ? " · " + pl.campaign_name
          : (line.campaign_name ? " · " + line.campaign_name : "")}`
          + (line.member_price && !pl.bundled ? ` · ${S.member_price}` : "")
          + (line.campaign_limited && !pl.bundled ? ` · ${S.campaign_limited}` : "")}));
    }
    const lineManual = pl.manual_cents - (pl.order_share_cents || 0);
    if (line.discount && lineManual) {
      price.append(node("span", {class: "discount manual", testid: "line-manual",
        text: `−${fmt.money(lineManual)} · ${line.discount.reason}`}));
    }
    const badQty = qtyError && qtyError.variantId === line.variant_id ? qtyError.message : null;
    const qty = node("input", {type: "text", inputmode: "numeric", maxlength: "12",
      autocomplete: "off", class: "qty", value: String(line.quantity), testid: "line-qty",
      "data-index": String(i), "aria-label": `${S.quantity}: ${line.name}`,
      "aria-invalid": badQty ? "true" : null,
      "aria-describedby": badQty ? `qty-error-${i}` : null});
    qty.value = String(line.quantity);
    const err = p.errors.find((e) => e.field === `lines.${i}.discount`);
    const v = catalogue && catalogue.byId.get(line.variant_id);
    const stock = v && !v.gift_card ? node("div", {class: "line-stock"},
      node("small", {testid: "line-stock", text: stockText(v)}), shipFromSelect(line, i, v)) : null;
    if (stock && line.ship_from) {
      stock.append(node("span", {class: "aisle-badge", testid: "line-to-come",
        text: tr(S.to_come, {location: locationName(line.ship_from)})}));
    }
    const li = node("li", {class: "line" + (justAdded === line.variant_id ? " just-added" : ""),
      testid: "cart-line", "data-variant-id": String(line.variant_id), "data-index": String(i)},
      node("div", {class: "line-name"}, line.name, node("small", {text: line.sku})),
      price,
      node("div", {class: "line-qty"},
        node("button", {type: "button", class: "qty-btn", act: "dec", testid: "dec", "aria-label": `${S.one_less}: ${line.name}`, text: "−"}),
        qty,
        node("button", {type: "button", class: "qty-btn", act: "inc", testid: "inc", "aria-label": `${S.one_more}: ${line.name}`, text: "+"})),
      node("div", {class: "line-total", testid: "line-total", text: fmt.money(pl.total_cents)}),
      node("div", {class: "line-actions"},
        node("button", {type: "button", class: "icon-btn", act: "line-discount", testid: "line-discount-button",
          "aria-label": tr(S.discount_for, {name: line.name}), title: S.discount, text: "%"}),
        node("button", {type: "button", class: "icon-btn remove", act: "void", testid: "remove",
          "aria-label": `${S.remove}: ${line.name}`, title: S.remove, text: "✕"})),
      stock,
      node("div", {class: "line-editor"}),
      badQty ? node("p", {class: "error line-error", testid: "qty-error", id: `qty-error-${i}`,
        role: "alert", text: badQty})
      : err ? node("p", {class: "error line-error", testid: "line-error",
        text: err.code === "discount_over_limit" ? tr(S.over_limit, {pct: cfg.maxDiscountPct}) : S.too_large}) : null);
    return li;
  });
  list.replaceChildren(...items);
  $("cart-empty").hidden = sale.lines.length > 0;
  root.classList.toggle("has-lines", sale.lines.length > 0);

  $("subtotal").textContent = fmt.money(p.subtotal_cents);
  $("discounts").textContent = p.discount_cents ? fmt.money(-p.discount_cents) : fmt.money(0);
  $("total").textContent = fmt.money(p.total_cents);
  $("vat-rows").replaceChildren(...p.vat.map((v) => node("tr", {testid: "vat-line"},
    node("td", {text: `${fmt.rate(v.rate_bp)} %`}), node("td", {class: "num", text: fmt.money(v.vat_cents)}),
    node("td", {class: "num", text: fmt.money(v.gross_cents)}))));
  const note = $("order-discount-note");
  if (sale.order_discount && p.order_discount_cents) {
    note.hidden = false;
    note.textContent = `−${fmt.money(p.order_discount_cents)} · ${sale.order_discount.reason}`;
  } else {
    note.hidden = true;
  }
  renderEditor(p);
  renderDelivery();
  renderPayment(p);
  renderCustomer();
  $("parked-count").textContent = String(parked.length);
  renderAddons();
  loadAddons();
}

// --- loyalty points ---------------------------------------------------------------------

/** The total the server will charge: its own figure after a 409 price_changed (a
 * campaign started or ended since the snapshot), else the till's. */
function dueTotal(p) {
  return sale.expected_total_cents ?? p.total_cents;
}

/** The attached customer's points that can pay (whole points, at most the total). */
function pointsAvailable(p) {
  const c = sale.customer;
  if (!c || !c.points || !navigator.onLine) return 0;
  const value = c.pointValue || 1;
  const cents = Math.min(c.points * value, dueTotal(p));
  return cents - (cents % value);
}

/** The part of the sale paid with points (cents); 0 unless the cashier chose it. */
function pointsPart(p) {
  if (!sale.points_cents) return 0;
  return Math.min(sale.points_cents, pointsAvailable(p));
}

function renderPoints(p) {
  const pay = root.querySelector("[data-testid=pay]");
  let box = $("points-box");
  const c = sale.customer;
  const available = pointsAvailable(p);
  if (!c || !c.points || !p.lines.length || !navigator.onLine) {
    if (box) box.hidden = true;
    return;
  }
  const labels = c.labels || {};
  if (!box) {
    box = node("div", {id: "points-box", class: "points-box", testid: "points-box"});
    pay.prepend(box);
  }
  box.hidden = false;
  const used = pointsPart(p);
  const info = node("p", {class: "points-info", testid: "points-balance",
    text: tr(labels.balance || "{points}", {points: String(c.points),
                                            value: fmt.money(c.points * (c.pointValue || 1))})});
  const button = node("button", {type: "button", class: "button secondary", act: "use-points",
    testid: "pay-points", text: used ? (labels.remove || "−") : (labels.use || "Points")});
  button.disabled = sending || (!used && available <= 0);
  button.setAttribute("aria-pressed", used ? "true" : "false");
  const kids = [info, button];
  if (used) {
    kids.push(node("p", {class: "points-used", testid: "points-used",
      text: tr(labels.used || "{amount}", {amount: fmt.money(used),
                                           points: String(used / (c.pointValue || 1))})}));
  }
  box.replaceChildren(...kids);
}

function togglePoints() {
  const p = priced();
  if (sale.points_cents) {
    sale.points_cents = 0;
  } else {
    sale.points_cents = pointsAvailable(p);
    if (sale.points_cents >= dueTotal(p)) {  // the points pay it all
      save();
      pay("points");
      return;
    }
  }
  changed();
}

// --- gift cards -------------------------------------------------------------------------
// A card is checked with the server when scanned or typed (its balance and expiry); it
// then pays min(balance, what is still due). Offline the till cannot see a balance: it
// says so and keeps taking cash and cards.

const GIFT_CODE = /^\d{16}$/;

/** The part of the sale the attached gift card pays (cents). */
function giftPart(p) {
  const g = sale.gift;
  if (!g || !navigator.onLine) return 0;
  return Math.max(0, Math.min(g.usable_cents, dueTotal(p) - pointsPart(p)));
}

async function checkGiftCard(raw) {
  hideError("gift-error");
  const code = String(raw || "").replace(/[\s-]/g, "");
  if (!navigator.onLine) { showError("gift-error", S.gift_offline, "gift-code"); return; }
  if (!GIFT_CODE.test(code)) { showError("gift-error", S.gift_bad_code, "gift-code"); return; }
  let r;
  try {
    r = await fetch(`${cfg.base}/api/gift-cards/${code}`, {credentials: "same-origin"});
  } catch {
    showError("gift-error", S.gift_offline, "gift-code");
    return;
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    showError("gift-error", r.status === 404 ? S.gift_not_found
      : data.code === "invalid_gift_card_code" ? S.gift_bad_code
      : tr(S.sale_error, {detail: data.detail || r.status}), "gift-code");
    return;
  }
  const expires = data.expires_at ? fmt.date(new Date(data.expires_at)) : "";
  if (data.status === "expired") { showError("gift-error", tr(S.gift_expired, {expires}), "gift-code"); return; }
  if (data.status !== "active") { showError("gift-error", S.gift_void, "gift-code"); return; }
  if (data.usable_cents <= 0) { showError("gift-error", S.gift_empty, "gift-code"); return; }
  sale.gift = {code, usable_cents: data.usable_cents, expires};
  $("gift-code").value = data.display_code;
  changed();
}

/** The part the attached customer's store credit pays, after points and a gift card. */
function creditPart(p) {
  const c = sale.customer;
  if (!sale.use_credit || !c || !c.storeCredit || !navigator.onLine) return 0;
  return Math.max(0, Math.min(c.storeCredit, dueTotal(p) - pointsPart(p) - giftPart(p)));
}

function toggleCredit() {
  sale.use_credit = !sale.use_credit;
  changed();
}

function removeGiftCard() {
  sale.gift = null;
  $("gift-code").value = "";
  hideError("gift-error");
  changed();
}

function renderGift(p) {
  const offline = !navigator.onLine;
  const g = sale.gift;
  const part = giftPart(p);
  $("gift-code").disabled = offline || !!g;
  root.querySelector("[data-act=gift-check]").disabled = offline || !!g || sending;
  root.querySelector("[data-act=gift-remove]").hidden = !g;
  const info = $("gift-info");
  if (offline) {
    info.hidden = false;
    info.textContent = S.gift_offline;
  } else if (g) {
    info.hidden = false;
    info.textContent = `${tr(S.gift_balance, {balance: fmt.money(g.usable_cents), expires: g.expires})} · ${tr(S.gift_takes, {amount: fmt.money(part)})}`;
  } else {
    info.hidden = true;
    info.textContent = "";
  }
  const c = sale.customer;
  const credit = creditPart(p);
  const useCredit = root.querySelector("[data-act=use-credit]");
  useCredit.hidden = offline || !c || !c.storeCredit || !p.lines.length;
  useCredit.disabled = sending;
  useCredit.setAttribute("aria-pressed", sale.use_credit ? "true" : "false");
  useCredit.textContent = sale.use_credit ? S.no_credit : `${S.use_credit} (${fmt.money(c && c.storeCredit || 0)})`;
  const creditInfo = $("credit-info");
  creditInfo.hidden = !credit;
  creditInfo.textContent = credit ? tr(S.credit_takes, {amount: fmt.money(credit)}) : "";
  const payGift = root.querySelector("[data-act=pay-gift]");
  payGift.hidden = (!g && !credit) || offline || !p.lines.length
    || part + credit < dueTotal(p) - pointsPart(p);
  payGift.disabled = sending;
}

function renderPayment(p = priced()) {
  renderPoints(p);
  renderGift(p);
  const total = dueTotal(p) - pointsPart(p) - giftPart(p) - creditPart(p);
  const card = parseMoney($("card-amount").value);
  const split = Number.isInteger(card) && card > 0 && card < total;
  const cashPart = split ? total - card : total;
  const due = roundCash(cashPart);
  $("cash-due").textContent = fmt.money(due);
  const rounding = $("cash-rounding");
  rounding.hidden = due === cashPart;
  rounding.textContent = due === cashPart ? "" : `${S.rounding} ${fmt.signed(due - cashPart)}`;
  hideError("card-amount-error");
  if (Number.isNaN(card)) showError("card-amount-error", S.bad_amount, "card-amount");
  else if (card !== null && card > total && total > 0) showError("card-amount-error", S.card_too_much, "card-amount");
  const payCash = root.querySelector("[data-act=pay-cash]");
  payCash.textContent = split ? S.pay_split : S.pay_cash;
  const tendered = parseMoney($("tendered").value);
  hideError("tendered-error");
  const changeRow = $("change-row");
  if (Number.isNaN(tendered)) {
    showError("tendered-error", S.bad_amount, "tendered");
    changeRow.hidden = true;
  } else if (tendered !== null && tendered >= due && p.lines.length) {
    changeRow.hidden = false;
    $("change").textContent = fmt.money(tendered - due);
  } else {
    changeRow.hidden = true;
  }
  const noCard = !navigator.onLine && cfg.offlineCard === "refuse";
  const payCard = root.querySelector("[data-act=pay-card]");
  payCard.disabled = noCard || sending;
  payCard.hidden = split;  // with a card part entered, the main button takes card + cash
  $("card-amount").disabled = noCard;
  $("card-note").hidden = !noCard;
  $("card-note").textContent = noCard ? S.card_disabled : "";
  payCash.disabled = sending;
  root.setAttribute("aria-busy", sending ? "true" : "false");
}

function renderCustomer() {
  const chip = $("customer-chip");
  const c = sale.customer;
  chip.hidden = !c;
  $("customer-name").textContent = c ? c.name : "";
  const from = $("customer-from");  // attached because she made the reservation to try
  from.hidden = !(c && c.fromTry);
  from.textContent = c && c.fromTry ? tr(S.try_customer_from, {code: c.fromTry}) : "";
  const kept = $("try-customer-note");  // someone else reserved: the cashier's choice stays
  const other = c && sale.try_other && sale.try_other.id !== c.id ? sale.try_other : null;
  kept.hidden = !other;
  kept.textContent = other ? tr(S.try_customer_kept, {code: other.code, name: other.name}) : "";
}

/** Put a customer on the sale: `c` as the customer card's "Add to sale" button or the
 * reservation's answer gives her; `fromTry`: the code of the reservation she made. */
function attachCustomer(c, fromTry = "") {
  sale.customer = {id: c.id, name: c.name, points: c.points, pointValue: c.pointValue,
                   tier: c.tier, segments: c.segments, storeCredit: c.storeCredit,
                   labels: c.labels, fromTry};
  sale.anonymous = false;
  sale.try_other = null;
  sale.points_cents = 0;
  sale.expected_total_cents = null;
  repriceLines();  // the customer's member prices
}

/** A reservation to try put on the sale: its shopper becomes the sale's customer when
 * the cashier has chosen nobody (and did not take the customer off) — the rule the
 * server applies to the sale anyway (tryon.services.reserved_for), here so the chip
 * and the prices show her before paying. A customer the cashier chose stays; the note
 * says who reserved. Offline (or no answer) the server attaches her when the sale syncs. */
async function attachReserver(tryId) {
  if (!navigator.onLine) return;
  let body;
  try {
    const r = await fetch(`${cfg.base}/api/tries/${tryId}/customer`, {credentials: "same-origin"});
    if (!r.ok) return;
    body = await r.json();
  } catch { return; }
  const c = body && body.customer;
  if (!c || !(sale.try_ids || []).includes(tryId)) return;
  if (!sale.customer && !sale.anonymous) {
    attachCustomer({id: c.id, name: c.name, points: Number(c.points) || 0,
                    pointValue: Number(c.point_value_cents) || 1, tier: c.tier || "",
                    segments: (c.segments || []).map(Number),
                    storeCredit: Number(c.store_credit_cents) || 0, labels: c.labels || {}},
                   body.code);
  } else if (sale.customer && sale.customer.id !== c.id) {
    sale.try_other = {id: c.id, code: body.code, name: c.name};
  }
  changed();
}

// --- discounts --------------------------------------------------------------------------

function openEditor(target, index) {
  const d = target === "order" ? sale.order_discount : sale.lines[index].discount;
  const known = d && S.reasons.includes(d.reason);
  editor = {target, index,
    kind: d && d.cents != null ? "cents" : "percent",
    amount: d ? (d.cents != null ? (d.cents / 100).toFixed(2).replace(".", cfg.lang === "fi" ? "," : ".")
                                 : String(d.percent_bp / 100).replace(".", cfg.lang === "fi" ? "," : ".")) : "",
    reason: d ? (known ? d.reason : "__other") : "", other: d && !known ? d.reason : "", errors: {}};
  render();
  const amount = $("discount-amount");
  if (amount) amount.focus();
}

function editorBase(p) {
  if (editor.target === "order") {
    return p.lines.reduce((s, ln) => s + ln.after_campaign_cents - (ln.manual_cents - (ln.order_share_cents || 0)), 0);
  }
  return p.lines[editor.index].after_campaign_cents;
}

function renderEditor(p) {
  document.querySelectorAll(".discount-form").forEach((f) => f.remove());
  if (!editor) return;
  const host = editor.target === "order" ? $("order-discount-form")
    : $("lines").children[editor.index]?.querySelector(".line-editor");
  if (!host) { editor = null; return; }
  const e = editor.errors;
  const hasDiscount = Boolean(editor.target === "order" ? sale.order_discount
    : sale.lines[editor.index] && sale.lines[editor.index].discount);
  const reasons = node("select", {id: "discount-reason", testid: "discount-reason",
    "aria-describedby": "discount-reason-error", "aria-invalid": e.reason ? "true" : null},
    node("option", {value: "", text: S.choose_reason}),
    ...S.reasons.map((r) => node("option", {value: r, text: r})),
    node("option", {value: "__other", text: S.other}));
  reasons.value = editor.reason;
  const other = node("input", {id: "discount-reason-other", testid: "discount-reason-other", maxlength: "200",
    placeholder: S.other_reason, "aria-label": S.other_reason});
  other.value = editor.other;
  other.hidden = editor.reason !== "__other";
  const amount = node("input", {id: "discount-amount", testid: "discount-amount", inputmode: "decimal",
    maxlength: "10", autocomplete: "off", "aria-describedby": "discount-limit discount-amount-error",
    "aria-invalid": e.amount ? "true" : null});
  amount.value = editor.amount;
  const kind = (value, label) => node("label", {class: "kind"},
    node("input", {type: "radio", name: "discount-kind", value, testid: `discount-kind-${value}`,
      checked: editor.kind === value}), label);
  const form = node("form", {class: "discount-form", testid: "discount-form", novalidate: true},
    node("fieldset", {class: "kinds"}, node("legend", {text: S.discount}),
      kind("percent", "%"), kind("cents", "€")),
    node("label", {for: "discount-amount", text: S.amount}), amount,
    node("small", {id: "discount-limit", testid: "discount-limit", text: tr(S.limit, {pct: cfg.maxDiscountPct})}),
    node("p", {class: "error", id: "discount-amount-error", testid: "error-discount-amount",
      role: "alert", hidden: !e.amount, text: e.amount || ""}),
    node("label", {for: "discount-reason", text: S.reason}), reasons, other,
    node("p", {class: "error", id: "discount-reason-error", testid: "error-discount-reason",
      role: "alert", hidden: !e.reason, text: e.reason || ""}),
    node("div", {class: "row"},
      node("button", {type: "submit", class: "button", testid: "discount-apply", text: S.apply}),
      hasDiscount ? node("button", {type: "button", class: "button secondary", act: "discount-remove",
        testid: "discount-remove", text: S.remove_discount}) : null,
      node("button", {type: "button", class: "linkish", act: "discount-cancel", text: S.cancel})));
  host.append(form);
}

function clearEditorError(input) {
  const field = input.id === "discount-amount" ? "amount"
    : input.id.startsWith("discount-reason") ? "reason" : null;
  if (!field || !editor || !editor.errors[field]) return;
  delete editor.errors[field];
  const p = $(`discount-${field}-error`);
  p.hidden = true;
  p.textContent = "";
  $(field === "amount" ? "discount-amount" : "discount-reason").removeAttribute("aria-invalid");
}

function readEditor() {
  const form = document.querySelector(".discount-form");
  if (!form || !editor) return;
  editor.amount = $("discount-amount").value;
  editor.reason = $("discount-reason").value;
  editor.other = $("discount-reason-other").value;
  const k = form.querySelector("input[name=discount-kind]:checked");
  editor.kind = k ? k.value : "percent";
}

function applyEditor() {
  readEditor();
  const e = {};
  let d = null;
  const text = editor.amount.trim();
  if (editor.kind === "percent") {
    const x = Number(text.replace(",", "."));
    if (!text || !Number.isFinite(x) || x <= 0 || x > 100) e.amount = S.need_amount;
    else d = {percent_bp: Math.round(x * 100)};
  } else {
    const c = parseMoney(text);
    if (c === null || Number.isNaN(c) || c <= 0) e.amount = S.need_amount;
    else d = {cents: c};
  }
  const reason = (editor.reason === "__other" ? editor.other : editor.reason).trim();
  if (!reason) e.reason = S.need_reason;
  if (d && !e.amount) {
    const base = editorBase(priced());
    const amount = discountAmount(d, base);
    if (amount === null) e.amount = S.too_large;
    else if (overLimit(amount, base, cfg.maxDiscountPct)) e.amount = tr(S.over_limit, {pct: cfg.maxDiscountPct});
  }
  if (Object.keys(e).length) {
    editor.errors = e;
    render();
    (e.amount ? $("discount-amount") : $("discount-reason")).focus();
    return;
  }
  d.reason = reason.slice(0, 200);
  if (editor.target === "order") sale.order_discount = d;
  else sale.lines[editor.index].discount = d;
  editor = null;
  sale.expected_total_cents = null;
  changed();
  focusCode();
}

function removeDiscount() {
  if (!editor) return;
  if (editor.target === "order") sale.order_discount = null;
  else if (sale.lines[editor.index]) sale.lines[editor.index].discount = null;
  editor = null;
  changed();
}

// --- customer ---------------------------------------------------------------------------

function hideCustomerPanel() {
  const panel = $("customer-panel");
  panel.hidden = true;
  panel.replaceChildren();
}

async function openCustomerPanel(q) {
  const panel = $("customer-panel");
  panel.hidden = false;
  if (!navigator.onLine) {
    panel.replaceChildren(node("p", {class: "note", testid: "customer-offline", text: S.customer_offline}));
    return;
  }
  panel.replaceChildren(node("p", {class: "note", text: S.customer_loading}));
  try {
    const r = await fetch(`${cfg.base}/customers/find?q=${encodeURIComponent(q)}`, {
      credentials: "same-origin", headers: {"HX-Request": "true"}});
    panel.innerHTML = await r.text();
    if (window.htmx) window.htmx.process(panel);
    panel.prepend(closeButton());
    focusInPanel(panel);
  } catch {
    panel.replaceChildren(node("p", {class: "note", testid: "customer-offline", text: S.customer_offline}));
  }
}

function closeButton() {
  return node("button", {type: "button", class: "linkish panel-close", act: "close-customer",
    testid: "close-customer", text: `✕ ${S.close}`});
}

/** A form with an error: its first invalid field; a card: its "Add to sale" button; a
 * customer create form: its first empty field. The code field otherwise (a scan of a
 * phone number keeps the cashier scanning). */
function focusInPanel(panel) {
  const target = panel.querySelector("[aria-invalid=true]")
    || panel.querySelector("[data-action=attach-customer]")
    || [...panel.querySelectorAll(".customer-create input:not([type=hidden]):not([type=checkbox])")]
      .find((input) => !input.value);
  if (target && document.activeElement !== codeInput) target.focus();
}

// --- parking ----------------------------------------------------------------------------

function park() {
  if (!sale.lines.length) return;
  const p = priced();
  const count = sale.lines.reduce((s, l) => s + l.quantity, 0);
  const label = tr(S.parked_label, {count, total: fmt.money(p.total_cents)})
    + (sale.customer ? ` · ${sale.customer.name}` : "");
  parked.push({id: sale.key, at: new Date().toISOString(), label, sale});
  saveParked();
  startNewSale();
}

function showParked() {
  const panel = $("parked-panel");
  if (!panel.hidden) { panel.hidden = true; return; }
  panel.hidden = false;
  if (!parked.length) {
    panel.replaceChildren(node("p", {class: "note", text: S.parked_none}));
    return;
  }
  panel.replaceChildren(node("ul", {class: "parked"}, ...parked.map((entry) => node("li",
    {testid: "parked-sale", "data-id": entry.id},
    node("span", {class: "when", text: fmt.datetime(new Date(entry.at))}),
    node("span", {class: "label", text: entry.label}),
    node("button", {type: "button", class: "button secondary", act: "recall", "data-id": entry.id,
      testid: "recall", text: S.recall}),
    node("button", {type: "button", class: "linkish", act: "drop-parked", "data-id": entry.id,
      testid: "drop-parked", text: S.delete})))));
}

function recall(id) {
  const i = parked.findIndex((e) => e.id === id);
  if (i < 0) return;
  const [entry] = parked.splice(i, 1);
  if (sale.lines.length) {  // the sale on screen is parked in its place
    const count = sale.lines.reduce((s, l) => s + l.quantity, 0);
    parked.push({id: sale.key, at: new Date().toISOString(), sale,
                 label: tr(S.parked_label, {count, total: fmt.money(priced().total_cents)})});
  }
  saveParked();
  sale = entry.sale;
  editor = null;
  $("parked-panel").hidden = true;
  changed();
}

// --- paying -----------------------------------------------------------------------------

function detailOf(err) {
  if (err && err.body && err.body.detail) return err.body.detail;
  if (err && err.status === 0) return S.network_error;
  return String(err && err.message || err);
}

function saleBody(payments) {
  const p = priced();
  return {
    key: sale.key, session_id: cfg.sessionId,
    customer_id: sale.customer ? sale.customer.id : null,
    lines: sale.lines.map((l, i) => ({
      variant_id: l.variant_id, quantity: l.quantity, discount: l.discount,
      unit_price_cents: l.unit_price_cents, campaign_discount_cents: l.campaign_discount_cents,
      campaign_id: p.lines[i].bundled ? p.lines[i].campaign_id : l.campaign_id,
      campaign_total_cents: p.lines[i].campaign_cents,
      ...(l.ship_from ? {ship_from: l.ship_from} : {}),
      ...(l.source ? {source: l.source} : {}),
    })),
    order_discount: sale.order_discount,
    payments, voids: sale.voids,
    expected_total_cents: sale.expected_total_cents ?? p.total_cents,
    ...(hasAisle() ? {delivery: deliveryBody()} : {}),
    // reserve to try (docs/reserve-to-try.md): the held units this sale completes
    ...(sale.try_ids && sale.try_ids.length ? {try_ids: sale.try_ids} : {}),
    ...(sale.try_ids && sale.try_ids.length && !sale.customer && sale.anonymous
      ? {anonymous: true} : {}),
  };
}

function clearPayErrors() {
  ["payment-error", "tendered-error", "card-amount-error", "general-error", "aisle-error"].forEach(hideError);
  $("price-changed").hidden = true;
}

async function pay(method) {
  if (sending) return;
  clearPayErrors();
  const p = priced();
  if (!sale.lines.length) { showError("general-error", S.cart_empty); return; }
  if (p.errors.length) { showError("payment-error", S.too_large); return; }
  if (!navigator.onLine && sale.lines.some((l) => l.gift_card)) {
    showError("payment-error", S.gift_offline_sell);
    return;
  }
  if (!navigator.onLine && hasAisle()) {  // another location's stock: only the server
    showError("payment-error", S.aisle_offline);
    return;
  }
  let payments;
  const byPoints = pointsPart(p);
  const byGift = giftPart(p);
  const byCredit = creditPart(p);
  const total = dueTotal(p) - byPoints - byGift - byCredit;
  if (method === "points" || method === "gift") {
    payments = [];
  } else if (method === "card") {
    payments = [{method: "card", terminal_confirmed: true}];
  } else {
    const tendered = parseMoney($("tendered").value);
    const card = parseMoney($("card-amount").value);
    if (Number.isNaN(tendered)) { showError("tendered-error", S.bad_amount, "tendered"); return; }
    if (Number.isNaN(card)) { showError("card-amount-error", S.bad_amount, "card-amount"); return; }
    if (card !== null && card > total) {
      showError("card-amount-error", S.card_too_much, "card-amount");
      return;
    }
    const cash = {method: "cash"};
    if (tendered !== null) cash.tendered_cents = tendered;
    payments = card ? [{method: "card", amount_cents: card, terminal_confirmed: true}] : [];
    if (!card || card < total) payments.push(cash);
  }
  if (byPoints) payments.unshift({method: "points", amount_cents: byPoints});
  const plan = planPayments(dueTotal(p) - byGift - byCredit, payments);
  const held = [];  // balances kept by the shop, after any points
  if (byGift) held.push({method: "gift_card", code: sale.gift.code, amount_cents: byGift});
  if (byCredit) held.push({method: "store_credit", amount_cents: byCredit});
  payments.splice(byPoints ? 1 : 0, 0, ...held);
  if (plan.error && plan.error.code === "insufficient_cash") {
    showError("tendered-error", S.insufficient_cash, "tendered");
    return;
  }
  lastPayments = payments;
  const body = saleBody(payments);
  const snapshot = {sale: JSON.parse(JSON.stringify(sale)), input: priceInput(),
                    bundles: activeBundles(), names: sale.lines.map((l) => l.name)};
  sending = true;
  renderPayment(p);
  const button = root.querySelector(method === "points" ? "[data-act=use-points]"
    : `[data-act=pay-${method}]`);
  const label = button.textContent;
  button.textContent = S.sending;
  try {
    await queueReady;
    // An endless-aisle sale is never queued for later: it goes now or is refused.
    const result = body.delivery ? await postJson(`${cfg.base}/api/sales`, body)
      : await queue.submitSale(body);
    if (result.status === "synced") await showServerReceipt(result.response);
    else showOfflineReceipt(body, snapshot, result.clientRef);
    sale = newSale();
    editor = null;
    $("tendered").value = "";
    $("card-amount").value = "";
    $("gift-code").value = "";
    save();
  } catch (err) {
    saleError(err);
  } finally {
    sending = false;
    button.textContent = label;
    render();
  }
}

let lastPayments = [];  // what the last Pay sent: which tender a refusal is about

const LINE_FIELD = /^lines\.(\d+)\.discount/;

/** The server priced the sale differently (a campaign started or ended, a price
 * changed): take the new prices from a fresh snapshot, show the new total and let the
 * cashier check the sale and press Pay again (with that total as the expected one). */
async function priceChanged(body) {
  const quote = body.quote || {};
  const total = quote.total_cents;
  await loadCatalogue();
  repriceLines();
  if (Number.isInteger(total)) sale.expected_total_cents = total;
  save();
  render();
  const box = $("price-changed");
  box.hidden = false;
  box.textContent = tr(S.price_changed, {total: Number.isInteger(total) ? fmt.money(total) : "?"});
}

function saleError(err) {
  const body = (err && err.body) || {};
  const field = body.field || "";
  if (err && err.status === 409 && body.code === "price_changed") {
    priceChanged(body);
    return;
  }
  if (body.code === "aisle_sold_out") {  // another till took the units first
    const m = /^lines\.(\d+)/.exec(field);
    const line = m ? sale.lines[Number(m[1])] : null;
    if (line && catalogue && Number.isInteger(body.location_id)) {
      catalogue.setStock(line.variant_id, body.location_id, 0);
    }
    if (line) line.ship_from = null;
    save();
    render();
    showError("payment-error", tr(S.aisle_sold_out, {name: line ? line.name : "",
                                                     location: body.location_name || ""}));
    return;
  }
  if (body.code === "try_held") {  // the unit is held for a shopper who reserved it
    const m = /^lines\.(\d+)/.exec(field);
    const line = m ? sale.lines[Number(m[1])] : null;
    showError("payment-error", tr(S.try_held, {name: line ? line.name : "",
                                               codes: (body.codes || []).join(", ")}));
    return;
  }
  if (body.code === "aisle_needs_network") { showError("payment-error", S.aisle_offline); return; }
  if (field.startsWith("delivery")) { deliveryError(body); return; }
  const message = body.detail ? tr(S.sale_error, {detail: body.detail}) : detailOf(err);
  const m = LINE_FIELD.exec(field);
  if (m && sale.lines[Number(m[1])]) {
    openEditor("line", Number(m[1]));
    editor.errors = {amount: body.code === "discount_over_limit"
      ? tr(S.over_limit, {pct: (body.max_pct ?? cfg.maxDiscountPct)}) : message};
    render();
    return;
  }
  if (field === "order_discount") {
    openEditor("order", 0);
    editor.errors = {amount: body.code === "discount_over_limit"
      ? tr(S.over_limit, {pct: (body.max_pct ?? cfg.maxDiscountPct)}) : message};
    render();
    return;
  }
  const payment = /^payments\.(\d+)/.exec(field);
  const method = payment && lastPayments[Number(payment[1])]
    ? lastPayments[Number(payment[1])].method : "";
  if (method === "store_credit") {  // spent meanwhile elsewhere: take it off the sale
    sale.use_credit = false;
    if (sale.customer) sale.customer.storeCredit = Number(body.balance_cents) || 0;
    save();
    render();
    showError("gift-error", message);
    return;
  }
  if (method === "gift_card" || /^gift_card/.test(body.code || "")) {
    giftError(body, message);
    return;
  }
  if (/tendered_cents$/.test(field)) { showError("tendered-error", message, "tendered"); return; }
  if (/^payments\.\d+\.amount_cents$/.test(field)) { showError("card-amount-error", message, "card-amount"); return; }
  if (body.code === "not_enough_points" && sale.customer) {
    // The balance changed since the card was opened (spent at another till).
    sale.customer.points = Number.isInteger(body.balance) ? body.balance : 0;
    sale.points_cents = 0;
    save();
    render();
  }
  if (field.startsWith("payments")) { showError("payment-error", message); return; }
  showError("general-error", message);
}

/** The server refused the card (spent meanwhile at another till, expired): the card is
 * taken off the sale with the reason next to its field. */
function giftError(body, message) {
  const g = sale.gift;
  sale.gift = null;
  if (g) $("gift-code").value = g.code;
  save();
  render();
  const text = body.code === "insufficient_gift_card_balance"
    ? tr(S.gift_short, {balance: fmt.money(body.balance_cents || 0)})
    : body.code === "gift_card_expired" ? tr(S.gift_expired, {expires: g ? g.expires : ""})
    : body.code === "gift_card_void" ? S.gift_void
    : body.code === "gift_card_not_found" ? S.gift_not_found
    : body.code === "gift_card_offline" ? S.gift_offline : message;
  showError("gift-error", text, "gift-code");
}

function showSaleView() {
  $("sale-view").hidden = false;
  $("side-view").hidden = false;
  $("receipt-view").hidden = true;
  $("receipt-view").replaceChildren();
  focusCode();
}

function showReceiptView() {
  $("sale-view").hidden = true;
  $("side-view").hidden = true;
  $("receipt-view").hidden = false;
  const next = $("receipt-view").querySelector("[data-testid=new-sale]");
  if (next) next.focus();
}

async function showServerReceipt(response) {
  const view = $("receipt-view");
  const url = response.receipt_url;
  root.dataset.lastOrder = String(response.order.id);
  try {
    const r = await fetch(url, {credentials: "same-origin", headers: {"HX-Request": "true"}});
    if (!r.ok) throw new Error(String(r.status));
    view.innerHTML = await r.text();
    if (window.htmx) window.htmx.process(view);
  } catch {
    view.replaceChildren(node("p", {class: "paid-banner", testid: "paid", text: String(response.order.number)}),
      node("p", {class: "actions"}, node("a", {class: "button big block", href: cfg.base,
        testid: "new-sale", text: S.new_sale})));
  }
  showReceiptView();
}

function showOfflineReceipt(body, snapshot, clientRef) {
  const view = $("receipt-view");
  const article = offlineReceipt({sale: body, priceInput: snapshot.input, names: snapshot.names,
    bundles: snapshot.bundles,
    fmt, cfg, S, clientRef, soldAt: new Date(), cardRefused: false});
  view.replaceChildren(node("div", {class: "sale-screen done"}, article,
    node("p", {class: "actions no-print"},
      node("button", {type: "button", class: "button", act: "print", testid: "print-receipt", text: S.print}),
      node("a", {class: "button big block", href: cfg.base, testid: "new-sale", text: S.new_sale}))));
  showReceiptView();
}

// --- errors and focus -------------------------------------------------------------------

function showError(id, message, inputId) {
  const p = $(id);
  if (!p) return;
  p.textContent = message;
  p.hidden = false;
  if (inputId) $(inputId).setAttribute("aria-invalid", "true");
}

function hideError(id) {
  const p = $(id);
  if (!p || p.hidden) return;
  p.hidden = true;
  p.textContent = "";
  const input = document.querySelector(`[aria-describedby~="${id}"]`);
  if (input) input.removeAttribute("aria-invalid");
}

function focusCode() {
  if (!$("sale-view").hidden) codeInput.focus({preventScroll: true});
}

const TYPING = new Set(["INPUT", "SELECT", "TEXTAREA"]);

// --- events -----------------------------------------------------------------------------

$("scan-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (active >= 0 && suggestions[active]) { pickSuggestion(active); return; }
  const value = codeInput.value;
  codeInput.value = "";
  hideSuggestions();
  handleCode(value);
});

codeInput.addEventListener("input", () => {
  hideError("code-error");
  showSuggestions();
});

codeInput.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowDown") { ev.preventDefault(); moveActive(1); }
  else if (ev.key === "ArrowUp") { ev.preventDefault(); moveActive(-1); }
  else if (ev.key === "Escape") { hideSuggestions(); }
});

$("suggestions").addEventListener("pointerdown", (ev) => {
  const li = ev.target.closest("[data-index]");
  if (!li) return;
  ev.preventDefault();  // keep the focus in the code field
  pickSuggestion(Number(li.dataset.index));
});

$("customer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("customer-q").value.trim();
  if (!q) { $("customer-q").focus(); return; }
  openCustomerPanel(q);
});

// After a form inside the panel is answered (create, note, preferences), keep the focus
// in the panel instead of losing it to the page.
$("customer-panel").addEventListener("htmx:afterSwap", () => {
  const panel = $("customer-panel");
  const target = panel.querySelector("[aria-invalid=true]")
    || panel.querySelector("[data-testid=customer-saved]") && panel.querySelector("[data-action=attach-customer]");
  if (target) target.focus();
});

$("customer-panel").addEventListener("click", (ev) => {
  const a = ev.target.closest("[data-action=attach-customer]");
  if (!a) return;
  ev.preventDefault();
  attachCustomer({id: Number(a.dataset.customerId), name: a.dataset.customerName || "",
                  points: Number(a.dataset.points) || 0,
                  pointValue: Number(a.dataset.pointValue) || 1, tier: a.dataset.tier || "",
                  segments: (a.dataset.segments || "").split(",").filter(Boolean).map(Number),
                  storeCredit: Number(a.dataset.storeCredit) || 0,
                  labels: {use: a.dataset.labelUse, remove: a.dataset.labelRemove,
                           balance: a.dataset.labelBalance, used: a.dataset.labelUsed}});
  hideCustomerPanel();
  $("customer-q").value = "";
  changed();
  focusCode();
});

$("tendered").addEventListener("input", () => renderPayment());
$("gift-code").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") { ev.preventDefault(); checkGiftCard($("gift-code").value); }
});
$("card-amount").addEventListener("input", () => renderPayment());
for (const id of ["tendered", "card-amount"]) {
  $(id).addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); pay("cash"); }
  });
}

$("lines").addEventListener("change", (ev) => {
  const select = ev.target.closest("select.ship-from");
  if (select) {
    const line = sale.lines[Number(select.dataset.index)];
    if (!line) return;
    line.ship_from = select.value ? Number(select.value) : null;
    hideError("aisle-error");
    changed();
    return;
  }
  const input = ev.target.closest("input.qty");
  if (!input) return;
  const index = Number(input.dataset.index);
  const line = sale.lines[index];
  if (!line) return;
  const typed = parseQuantity(input.value);
  if (typed.error) {  // the line keeps its quantity; the message stays at the box
    qtyError = {variantId: line.variant_id, message: typed.error};
    render();
    const box = $("lines").querySelector(`input.qty[data-index="${index}"]`);
    if (box) box.focus();
    return;
  }
  setQuantity(index, typed.quantity);
  focusCode();
});

$("lines").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && ev.target.matches("input.qty")) { ev.preventDefault(); ev.target.blur(); }
});

root.addEventListener("submit", (ev) => {
  if (!ev.target.matches(".discount-form")) return;
  ev.preventDefault();
  applyEditor();
});

$("lines").addEventListener("focusout", () => {
  if (stockDirty) {
    stockDirty = false;
    setTimeout(() => { if (!$("lines").contains(document.activeElement)) render(); }, 0);
  }
});
$("aisle-delivery").addEventListener("input", () => { readDelivery(); save(); });
$("aisle-delivery").addEventListener("change", (ev) => {
  readDelivery();
  save();
  if (ev.target.name === "aisle-method") renderDelivery();
});

root.addEventListener("input", (ev) => {
  if (ev.target.closest(".discount-form")) {
    readEditor();
    $("discount-reason-other").hidden = editor.reason !== "__other";
    clearEditorError(ev.target);
  }
});
root.addEventListener("change", (ev) => {
  if (ev.target.closest(".discount-form")) {
    readEditor();
    const other = $("discount-reason-other");
    other.hidden = editor.reason !== "__other";
    if (!other.hidden && ev.target.id === "discount-reason") other.focus();
    clearEditorError(ev.target);
  }
});

root.addEventListener("click", (ev) => {
  const t = ev.target.closest("[data-act], [data-testid=new-sale]");
  if (!t) {
    if (!TYPING.has(ev.target.tagName) && !ev.target.closest("a, button, label, .panel, .discount-form")) focusCode();
    return;
  }
  if (t.dataset.testid === "new-sale" && !t.dataset.act) {
    ev.preventDefault();
    startNewSale();
    return;
  }
  const li = t.closest("li[data-index]");
  const index = li ? Number(li.dataset.index) : -1;
  const line = sale.lines[index];
  let refocus = true;
  switch (t.dataset.act) {
    case "inc": if (line) setQuantity(index, line.quantity + 1); break;
    case "dec": if (line) setQuantity(index, line.quantity - 1); break;
    case "void": if (line) setQuantity(index, 0); break;
    case "line-discount": if (line) { openEditor("line", index); refocus = false; } break;
    case "order-discount": if (sale.lines.length) { openEditor("order", 0); refocus = false; } break;
    case "discount-remove": removeDiscount(); break;
    case "discount-cancel": editor = null; render(); break;
    case "clear": clearSale(); break;
    case "addon": addAddon(Number(t.dataset.id)); break;
    case "park": park(); break;
    case "show-parked": showParked(); break;
    case "recall": recall(t.dataset.id); break;
    case "drop-parked":
      parked = parked.filter((e) => e.id !== t.dataset.id);
      saveParked();
      $("parked-panel").hidden = true;
      showParked();
      render();
      break;
    case "detach-customer":
      sale.customer = null;
      // Taken off a sale of a reservation to try: the server attaches nobody either.
      sale.anonymous = Boolean(sale.try_ids && sale.try_ids.length);
      sale.try_other = null;
      sale.points_cents = 0;
      if (sale.delivery && sale.delivery.prefilled) sale.delivery = null;  // their details
      sale.expected_total_cents = null;
      repriceLines();
      changed();
      break;
    case "use-points": togglePoints(); refocus = false; break;
    case "close-customer": hideCustomerPanel(); break;
    case "pay-cash": pay("cash"); refocus = false; break;
    case "pay-card": pay("card"); refocus = false; break;
    case "pay-gift": pay("gift"); refocus = false; break;
    case "gift-check": checkGiftCard($("gift-code").value); refocus = false; break;
    case "gift-remove": removeGiftCard(); break;
    case "use-credit": toggleCredit(); refocus = false; break;
    case "print": window.print(); break;
    default: break;
  }
  if (refocus) focusCode();
});

document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") {
    if (editor) { editor = null; render(); }
    hideCustomerPanel();
    $("parked-panel").hidden = true;
    focusCode();
    return;
  }
  // A scan while nothing is focused goes to the code field.
  if (document.activeElement === document.body && ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey) {
    focusCode();
  }
});

addEventListener("online", () => { render(); loadCatalogue(); });
addEventListener("offline", () => render());
// Campaigns start and end on the clock without an event: a fresh snapshot every 5 minutes.
setInterval(() => { if (navigator.onLine) loadCatalogue(); }, 5 * 60 * 1000);

const addParam = new URLSearchParams(location.search).get("add");
const tryParam = Number(new URLSearchParams(location.search).get("try"));
if (addParam) {
  pending.push(addParam);
  if (Number.isInteger(tryParam) && tryParam > 0) {  // a reservation to try, sold now
    sale.try_ids = [...new Set([...(sale.try_ids || []), tryParam])];
    attachReserver(tryParam);
  }
  history.replaceState(null, "", location.pathname);
}

render();
focusCode();
loadCatalogue();
followCatalogue();
