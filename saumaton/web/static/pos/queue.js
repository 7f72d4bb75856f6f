// The till's durable outbox: sales and voids that could not reach the server are kept
// in IndexedDB and sent later, exactly once and in the order they were made.
//
//   import * as queue from "/static/pos/queue.js";
//   await queue.init({code: "store-1", csrfToken, registerName: "Kassa 1", sessionId: 12});
//   const r = await queue.submitSale(sale);  // {status: "synced", response} or
//                                            // {status: "queued", clientRef: "K1-000017"}
//   queue.onChange(() => render(queue.status()));
//
// Exactly once: every sale carries the till's idempotency `key` and keeps it when it is
// queued; the server answers a repeated key with the first sale. A queued entry is
// deleted only after a 2xx answer. Only one tab sends at a time (Web Locks), the others
// hear about changes on a BroadcastChannel.

export { registerServiceWorker } from "/static/pos/sw-register.js";

const DB_NAME = "saumaton-pos";
const DB_VERSION = 1;
const OUTBOX = "outbox";   // {seq, kind, code, key, body, state, error, clientRef, totalCents, createdAt}
const META = "meta";       // {name, value}: receipt counters per register
const LOCK = "saumaton-pos-sync";
const CHANNEL = "saumaton-pos-queue";
const TIMEOUT_MS = 8000;
const EVERY_MS = 15000;
const BACKOFF_MIN_MS = 2000;
const BACKOFF_MAX_MS = 60000;
const OFFLINE_ONLY_LINE_FIELDS = ["unit_price_cents", "campaign_discount_cents", "campaign_id",
                                  "campaign_total_cents"];

const config = { code: "", csrfToken: "", registerName: "", sessionId: null };
const listeners = new Set();
const state = {
  pending: 0, needsAttention: 0, syncing: false, progress: { current: 0, total: 0 },
  lastSyncedAt: null, lastError: null, loginNeeded: false,
};
let dbPromise = null;
let channel = null;
let started = false;
let backoffMs = 0;
let retryTimer = null;
let syncRun = null;

// --- IndexedDB -----------------------------------------------------------------------

function openDb() {
  if (dbPromise) return dbPromise;
  dbPromise = new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(OUTBOX)) {
        db.createObjectStore(OUTBOX, { keyPath: "seq", autoIncrement: true });
      }
      if (!db.objectStoreNames.contains(META)) {
        db.createObjectStore(META, { keyPath: "name" });
      }
    };
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => { db.close(); dbPromise = null; };
      resolve(db);
    };
    req.onerror = () => { dbPromise = null; reject(req.error); };
    req.onblocked = () => console.warn("saumaton-pos database is blocked by another tab");
  });
  return dbPromise;
}

/** Run `work(stores)` in one transaction; resolves with its result once committed
 * (durably: "strict" asks the browser to flush before answering). */
async function tx(names, mode, work) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const t = db.transaction(names, mode, { durability: "strict" });
    let result;
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("transaction aborted"));
    const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
    Promise.resolve(work(stores, t)).then((r) => { result = r; }, (err) => {
      try { t.abort(); } catch (e) { /* already done */ }
      reject(err);
    });
  });
}

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function allEntries() {
  return tx([OUTBOX], "readonly", (s) => req(s[OUTBOX].getAll()));
}

async function nextPending(afterSeq) {
  return tx([OUTBOX], "readonly", (s) => new Promise((resolve, reject) => {
    const cursor = s[OUTBOX].openCursor(IDBKeyRange.lowerBound(afterSeq, true));
    cursor.onerror = () => reject(cursor.error);
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c) return resolve(null);
      if (c.value.state === "pending") return resolve(c.value);
      c.continue();
    };
  }));
}

function registerPrefix(name) {
  // "Kassa 1" -> "K1", "Till B 2" -> "TB2": initials of words, digits kept whole.
  const parts = String(name || "").trim().split(/\s+/).filter(Boolean);
  const prefix = parts.map((w) => (/^\d+$/.test(w) ? w : w[0])).join("")
    .normalize("NFD").replace(/[^A-Za-z0-9]/g, "").toUpperCase().slice(0, 8);
  return prefix || "T";
}

async function enqueue(kind, body, totalCents) {
  const prefix = registerPrefix(config.registerName);
  return tx([OUTBOX, META], "readwrite", async (s) => {
    let clientRef = "";
    if (kind === "sale") {
      const name = "receipt-counter:" + prefix;
      const row = await req(s[META].get(name));
      const next = ((row && row.value) || 0) + 1;
      s[META].put({ name, value: next });
      clientRef = `${prefix}-${String(next).padStart(6, "0")}`;
      body.client_ref = clientRef;
    }
    const entry = {
      kind, code: config.code, key: body.key, body, state: "pending", error: null,
      clientRef, totalCents, createdAt: new Date().toISOString(),
    };
    entry.seq = await req(s[OUTBOX].add(entry));
    return entry;
  });
}

async function removeEntry(seq) {
  await tx([OUTBOX], "readwrite", (s) => req(s[OUTBOX].delete(seq)));
}

async function markAttention(seq, message, status) {
  await tx([OUTBOX], "readwrite", async (s) => {
    const entry = await req(s[OUTBOX].get(seq));
    if (!entry) return;
    entry.state = "attention";
    entry.error = { status, message };
    s[OUTBOX].put(entry);
  });
}

// --- state and listeners -------------------------------------------------------------

export function status() {
  return {
    online: navigator.onLine, pending: state.pending, needsAttention: state.needsAttention,
    syncing: state.syncing, progress: { ...state.progress }, lastSyncedAt: state.lastSyncedAt,
    lastError: state.lastError, loginNeeded: state.loginNeeded,
  };
}

export function onChange(callback) {
  listeners.add(callback);
  return () => listeners.delete(callback);
}

function emit() {
  const now = status();
  for (const callback of listeners) {
    try { callback(now); } catch (err) { console.error(err); }
  }
}

/** The waiting and problem entries, oldest first (for the status panel). */
export async function entries() {
  const all = await allEntries();
  return all.map((e) => ({
    seq: e.seq, kind: e.kind, code: e.code, key: e.key, clientRef: e.clientRef,
    totalCents: e.totalCents, state: e.state, error: e.error, createdAt: e.createdAt,
  }));
}

async function refresh() {
  const all = await allEntries();
  state.pending = all.filter((e) => e.state === "pending").length;
  state.needsAttention = all.filter((e) => e.state === "attention").length;
  emit();
}

function broadcast() {
  if (channel) channel.postMessage({ type: "changed" });
}

// --- HTTP ----------------------------------------------------------------------------

/** POST JSON; resolves {status, ok, login, body} or rejects on a network error/timeout. */
async function post(url, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", redirect: "manual", cache: "no-store",
      signal: controller.signal, body: JSON.stringify(body),
      headers: {
        "Content-Type": "application/json", Accept: "application/json",
        "X-CSRF-Token": config.csrfToken,
      },
    });
    if (response.type === "opaqueredirect") {  // the session ended: a redirect to log in
      return { status: 401, ok: false, login: true, body: { code: "not_authenticated" } };
    }
    const text = await response.text();
    let parsed = text;
    try { parsed = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
    const login = response.status === 401 || response.status === 403;
    return { status: response.status, ok: response.ok, login, body: parsed };
  } finally {
    clearTimeout(timer);
  }
}

function transient(status) {
  return status >= 500 || status === 408 || status === 425 || status === 429;
}

function messageOf(result) {
  const b = result.body;
  if (b && typeof b === "object") {
    return String(b.message || b.detail || b.title || b.code || `HTTP ${result.status}`);
  }
  return (typeof b === "string" && b.trim()) ? b.trim().slice(0, 300) : `HTTP ${result.status}`;
}

function urlFor(kind, code) {
  return `/pos/${encodeURIComponent(code)}/api/${kind === "sale" ? "sales" : "voids"}`;
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return "t" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function totalOf(sale) {
  if (Number.isInteger(sale.expected_total_cents)) return sale.expected_total_cents;
  let total = 0;
  for (const line of sale.lines || []) {
    const unit = (line.unit_price_cents || 0) - (line.campaign_discount_cents || 0);
    total += unit * (line.quantity || 0);
  }
  return total;
}

function onlineBody(sale) {
  const body = { ...sale, lines: (sale.lines || []).map((line) => {
    const copy = { ...line };
    for (const f of OFFLINE_ONLY_LINE_FIELDS) delete copy[f];
    return copy;
  }) };
  delete body.offline;
  delete body.sold_at;
  delete body.client_ref;
  return body;
}

// --- the commands the till calls -----------------------------------------------------

function ready() {
  if (!started) throw new Error("queue.init() first");
}

async function submit(kind, body, totalCents) {
  if (navigator.onLine) {
    let result = null;
    try {
      result = await post(urlFor(kind, config.code),
        kind === "sale" ? onlineBody(body) : body);
    } catch (err) {
      result = null;  // no answer: maybe it arrived, maybe not; the key makes it safe
    }
    if (result && result.ok) {
      state.lastSyncedAt = new Date().toISOString();
      state.loginNeeded = false;
      emit();
      return { status: "synced", response: result.body, key: body.key };
    }
    if (result && !transient(result.status)) {
      if (result.login) { state.loginNeeded = true; emit(); }
      throw { status: result.status, body: result.body };
    }
  }
  if (kind === "sale") {
    body.offline = true;
    body.sold_at = new Date().toISOString();
  }
  const entry = await enqueue(kind, body, totalCents);  // stored before we answer
  broadcast();
  await refresh();
  scheduleRetry(true);
  return { status: "queued", clientRef: entry.clientRef, key: entry.key };
}

/** Sell: sent now when online, else kept and sent later. Rejects with {status, body}
 * on 4xx (nothing kept: the cashier fixes the sale). */
export async function submitSale(sale) {
  ready();
  const body = JSON.parse(JSON.stringify(sale));
  if (!body.key) body.key = newKey();
  if (body.session_id == null && config.sessionId != null) body.session_id = config.sessionId;
  return submit("sale", body, totalOf(body));
}

/** The voided lines of a cancelled sale, sent or kept the same way. */
export async function submitVoids(voidsIn) {
  ready();
  const body = JSON.parse(JSON.stringify(voidsIn));
  if (!body.key) body.key = newKey();
  if (body.session_id == null && config.sessionId != null) body.session_id = config.sessionId;
  const total = (body.voids || []).reduce((sum, v) => sum + (v.amount_cents || 0), 0);
  return submit("voids", body, total);
}

// --- the sync loop -------------------------------------------------------------------

function scheduleRetry(soon = false) {
  if (retryTimer) clearTimeout(retryTimer);
  backoffMs = soon ? BACKOFF_MIN_MS
    : Math.min(BACKOFF_MAX_MS, backoffMs ? backoffMs * 2 : BACKOFF_MIN_MS);
  retryTimer = setTimeout(() => { retryTimer = null; syncNow(); }, backoffMs);
}

async function drain() {
  let after = 0;
  let done = 0;
  while (navigator.onLine) {
    const entry = await nextPending(after);
    if (!entry) break;
    after = entry.seq;
    await refresh();
    state.progress = { current: done + 1, total: done + state.pending };
    emit();
    let result;
    try {
      result = await post(urlFor(entry.kind, entry.code), entry.body);
    } catch (err) {
      state.lastError = "network";
      scheduleRetry();
      return;
    }
    if (result.ok) {
      await removeEntry(entry.seq);  // only now: the server has recorded it
      done += 1;
      backoffMs = 0;
      state.lastSyncedAt = new Date().toISOString();
      state.lastError = null;
      state.loginNeeded = false;
      broadcast();
      continue;
    }
    if (result.login) {  // 401/403: the cashier must log in again; keep everything
      state.loginNeeded = true;
      state.lastError = messageOf(result);
      return;
    }
    if (transient(result.status)) {
      state.lastError = messageOf(result);
      scheduleRetry();
      return;
    }
    // The server refused this one for good: keep it for a person, go on with the next.
    await markAttention(entry.seq, messageOf(result), result.status);
    state.lastError = null;
    broadcast();
  }
}

/** Send what is waiting, now (also called on load, on `online` and every 15 s). */
export async function syncNow() {
  if (!started) return;
  if (syncRun) return syncRun;
  if (!navigator.onLine) { emit(); return; }
  syncRun = (async () => {
    state.syncing = true;
    emit();
    try {
      if (navigator.locks && navigator.locks.request) {
        // Another tab sending? Leave it to that tab; its changes reach us by broadcast.
        await navigator.locks.request(LOCK, { ifAvailable: true }, async (lock) => {
          if (lock) await drain();
        });
      } else {
        await drain();
      }
    } catch (err) {
      console.error("sync failed", err);
      state.lastError = String(err && err.message || err);
      scheduleRetry();
    } finally {
      state.syncing = false;
      state.progress = { current: 0, total: 0 };
      syncRun = null;
      await refresh();
    }
  })();
  return syncRun;
}

/** Set the till up once per page: which store, the session's CSRF token, the register
 * (receipt numbers "K1-000017" offline) and the open drawer session. */
export async function init({ code, csrfToken, registerName = "", sessionId = null } = {}) {
  config.code = code;
  config.csrfToken = csrfToken || "";
  config.registerName = registerName || "";
  config.sessionId = sessionId == null ? null : Number(sessionId);
  if (started) { await refresh(); return status(); }
  started = true;
  if ("BroadcastChannel" in self) {
    channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = () => { refresh(); };
  }
  addEventListener("online", () => { backoffMs = 0; syncNow(); });
  addEventListener("offline", () => emit());
  setInterval(() => {
    if (state.pending > 0 && !retryTimer) syncNow();
  }, EVERY_MS);
  await refresh();
  syncNow();
  return status();
}
