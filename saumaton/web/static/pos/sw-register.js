// Registers the till's service worker (/pos/sw.js, scope /pos/) and asks it to save
// this till page and its catalogue snapshot, so the till starts without a network.
//
//   import { registerServiceWorker } from "/static/pos/sw-register.js";
//   registerServiceWorker("store-1");   // resolves when the till is saved offline
//
// When done, <html data-offline-ready="true"> (tests and the status panel use it).

const SCOPE = "/pos/";

function tillCode() {
  const m = location.pathname.match(/^\/pos\/([^/]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function activeWorker(registration) {
  if (registration.active) return registration.active;
  const worker = registration.installing || registration.waiting;
  if (!worker) return null;
  await new Promise((resolve) => {
    if (worker.state === "activated") return resolve();
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated" || worker.state === "redundant") resolve();
    });
  });
  return registration.active;
}

function ask(worker, message, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => reject(new Error("service worker did not answer")),
      timeoutMs);
    channel.port1.onmessage = (event) => { clearTimeout(timer); resolve(event.data); };
    worker.postMessage(message, [channel.port2]);
  });
}

/** Register the worker and save the till page + catalogue. Never throws: a till
 * without a service worker still sells online. Returns true when saved. */
export async function registerServiceWorker(code = tillCode()) {
  if (!("serviceWorker" in navigator) || !code) return false;
  try {
    const registration = await navigator.serviceWorker.register("/pos/sw.js", { scope: SCOPE });
    const worker = await activeWorker(registration);
    if (!worker || !navigator.onLine) return false;
    const base = "/pos/" + encodeURIComponent(code);
    const answer = await ask(worker, {
      type: "cache-till", urls: [base, base + "/api/catalogue"],
    });
    const saved = Object.values(answer.results || {}).every(Boolean);
    if (saved) {
      document.documentElement.dataset.offlineReady = "true";
      document.documentElement.dataset.offlineVersion = answer.version || "";
    }
    return saved;
  } catch (err) {
    console.warn("offline mode unavailable:", err);
    return false;
  }
}
