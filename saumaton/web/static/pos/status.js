// The till's sync status, always visible in #sync-status:
//   "Online, everything synced" / "Offline — 3 sales waiting to sync" /
//   "Syncing 2 of 5…" / "1 sale needs attention"
// with a button that lists the waiting and problem sales (receipt number, total, problem).
// Texts come from <script type="application/json" id="pos-offline-strings">
// (templates/pos/_offline_strings.html), in the page's language.
//
//   import { mountStatus } from "/static/pos/status.js";
//   mountStatus(document.getElementById("sync-status"));

import * as queue from "/static/pos/queue.js";

const FALLBACK = {
  synced: "Online, everything synced",
  offline_none: "Offline — no sales waiting",
  offline_one: "Offline — 1 sale waiting to sync",
  offline_many: "Offline — {n} sales waiting to sync",
  waiting_one: "1 sale waiting to sync",
  waiting_many: "{n} sales waiting to sync",
  syncing: "Syncing {i} of {n}…",
  attention_one: "1 sale needs attention",
  attention_many: "{n} sales need attention",
  login: "Log in again to sync the waiting sales",
  last_synced: "Last synced {time}",
  show: "Show sales",
  hide: "Hide",
  waiting_title: "Waiting to sync",
  attention_title: "Needs attention",
  nothing: "Nothing is waiting.",
  receipt: "Receipt",
  total: "Total",
  made: "Made",
  problem: "Problem",
  voids: "Voided lines",
  offline_ready: "This till works offline on this device.",
};


function loadStrings() {
  const el = document.getElementById("pos-offline-strings");
  if (!el) return { ...FALLBACK };
  try {
    return { ...FALLBACK, ...JSON.parse(el.textContent) };
  } catch (err) {
    return { ...FALLBACK };
  }
}

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

function lang() {
  return (document.documentElement.lang || "fi").slice(0, 2);
}

function money(cents) {
  if (!Number.isFinite(cents)) return "";
  return new Intl.NumberFormat(lang() === "fi" ? "fi-FI" : "en-IE",
    { style: "currency", currency: "EUR" }).format(cents / 100);
}

function time(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang() === "fi" ? "fi-FI" : "en-IE",
    { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

/** The state word and the sentence for a status(). */
export function describe(s, t = FALLBACK) {
  const many = (one, other, n) => (n === 1 ? t[one] : fill(t[other], { n }));
  let key;
  let text;
  if (s.syncing && s.progress && s.progress.total > 0) {
    key = "syncing";
    text = fill(t.syncing, { i: s.progress.current, n: s.progress.total });
  } else if (s.needsAttention > 0) {
    key = "attention";
    text = many("attention_one", "attention_many", s.needsAttention);
    if (s.pending > 0) {
      const waiting = s.online ? many("waiting_one", "waiting_many", s.pending)
        : many("offline_one", "offline_many", s.pending);
      text += " · " + waiting;
    }
  } else if (s.loginNeeded && s.pending > 0) {
    key = "login";
    text = t.login + " (" + many("waiting_one", "waiting_many", s.pending) + ")";
  } else if (!s.online) {
    key = "offline";
    text = s.pending > 0 ? many("offline_one", "offline_many", s.pending) : t.offline_none;
  } else if (s.pending > 0) {
    key = "pending";
    text = many("waiting_one", "waiting_many", s.pending);
  } else {
    key = "synced";
    text = t.synced;
  }
  return { key, text };
}

// A stylesheet file, not a <style> element: the Content-Security-Policy allows styles
// only from the site's files.
function ensureStyle() {
  if (document.getElementById("sync-status-style")) return;
  const link = document.createElement("link");
  link.id = "sync-status-style";
  link.rel = "stylesheet";
  link.href = "/static/css/pos-sync.css";
  document.head.appendChild(link);
}

function cell(tag, text, className) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

function table(rows, t, withProblem) {
  const tbl = document.createElement("table");
  const head = tbl.createTHead().insertRow();
  for (const h of [t.receipt, t.made, t.total, ...(withProblem ? [t.problem] : [])]) {
    head.appendChild(cell("th", h));
  }
  const body = tbl.createTBody();
  for (const e of rows) {
    const tr = body.insertRow();
    tr.dataset.testid = "sync-entry";
    tr.dataset.state = e.state;
    tr.dataset.ref = e.clientRef || "";
    tr.appendChild(cell("td", e.kind === "voids" ? t.voids : (e.clientRef || e.key)));
    tr.appendChild(cell("td", time(e.createdAt)));
    tr.appendChild(cell("td", money(e.totalCents), "money"));
    if (withProblem) {
      tr.appendChild(cell("td", e.error ? e.error.message : "", "problem"));
    }
  }
  return tbl;
}

/** Render the status into `el` and keep it current. Returns a function that stops. */
export function mountStatus(el) {
  if (!el) return () => {};
  ensureStyle();
  const t = loadStrings();
  el.classList.add("sync-status");
  el.replaceChildren();
  const dot = document.createElement("span");
  dot.className = "sync-dot";
  dot.setAttribute("aria-hidden", "true");
  const text = document.createElement("span");
  text.className = "sync-text";
  text.setAttribute("role", "status");
  text.setAttribute("aria-live", "polite");
  text.dataset.testid = "sync-status-text";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "sync-toggle";
  toggle.dataset.testid = "sync-details-toggle";
  toggle.setAttribute("aria-expanded", "false");
  const details = document.createElement("div");
  details.className = "sync-details";
  details.id = (el.id || "sync-status") + "-details";
  details.dataset.testid = "sync-details";
  details.hidden = true;
  toggle.setAttribute("aria-controls", details.id);
  el.append(dot, text, toggle, details);

  let open = false;
  let drawing = null;

  async function drawDetails() {
    const all = await queue.entries();
    const waiting = all.filter((e) => e.state === "pending");
    const problems = all.filter((e) => e.state === "attention");
    details.replaceChildren();
    if (!waiting.length && !problems.length) {
      details.appendChild(cell("p", t.nothing));
      return;
    }
    if (problems.length) {
      details.appendChild(cell("h3", t.attention_title));
      details.appendChild(table(problems, t, true));
    }
    if (waiting.length) {
      details.appendChild(cell("h3", t.waiting_title));
      details.appendChild(table(waiting, t, false));
    }
  }

  function draw(s) {
    const { key, text: sentence } = describe(s, t);
    el.dataset.state = key;
    el.dataset.pending = String(s.pending);
    el.dataset.attention = String(s.needsAttention);
    text.textContent = sentence;
    text.title = s.lastSyncedAt ? fill(t.last_synced, { time: time(s.lastSyncedAt) }) : "";
    const any = s.pending + s.needsAttention > 0;
    toggle.hidden = !any && !open;
    toggle.textContent = open ? t.hide : t.show;
    toggle.setAttribute("aria-expanded", String(open));
    details.hidden = !open;
    if (open && !drawing) {
      drawing = drawDetails().finally(() => { drawing = null; });
    }
  }

  toggle.addEventListener("click", () => {
    open = !open;
    draw(queue.status());
  });
  const stop = queue.onChange(draw);
  draw(queue.status());
  return stop;
}
