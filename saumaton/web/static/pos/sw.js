/* The till's service worker (scope /pos/), served by GET /pos/sw.js.
 *
 * What it keeps so the till starts without a network:
 *  - the till page /pos/{store}: network first, the cached copy when offline;
 *  - the till's static files (/static/pos/*, /static/css/*, htmx): cached at install,
 *    then cache first (the cache is versioned by a hash of these files, filled in by
 *    the server, so a deploy installs a new worker and a fresh cache);
 *  - the catalogue snapshot /pos/{store}/api/catalogue: network first with a short
 *    timeout, the cached copy when offline.
 * It never touches anything but GET: sales and voids (POST) go straight to the
 * network, and queue.js keeps them in IndexedDB when that fails.
 */
"use strict";

const VERSION = "__CACHE_VERSION__";
const PRECACHE = ["__PRECACHE__"];
const PREFIX = "saumaton-pos-";
const CACHE = PREFIX + VERSION;
const PAGE_TIMEOUT_MS = 5000;
const CATALOGUE_TIMEOUT_MS = 3000;

const TILL_PAGE = /^\/pos\/(?!sw\.js$)[^/]+\/?$/;
const CATALOGUE = /^\/pos\/[^/]+\/api\/catalogue$/;
const STATIC = /^\/static\/(pos\/|css\/|vendor\/htmx\.min\.js$)/;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = (await caches.keys()).filter((n) => n.startsWith(PREFIX) && n !== CACHE);
    // A new version keeps the saved till pages and catalogues of the old one (they are
    // data, not code), so a deploy followed by a network drop still opens the till.
    const cache = await caches.open(CACHE);
    for (const name of names) {
      const old = await caches.open(name);
      for (const request of await old.keys()) {
        const path = new URL(request.url).pathname;
        if (!(TILL_PAGE.test(path) || CATALOGUE.test(path))) continue;
        if (await cache.match(request)) continue;
        const response = await old.match(request);
        if (response) await cache.put(request, response);
      }
    }
    await Promise.all(names.map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

function cacheKey(url) {
  // One copy per path: /pos/store-1?x=1 is the same page as /pos/store-1.
  const u = new URL(url, self.location.origin);
  return u.origin + u.pathname.replace(/\/$/, "");
}

function cacheable(response) {
  // Not a login redirect, not an error page.
  return response && response.ok && !response.redirected && response.type === "basic";
}

async function networkFirst(request, timeoutMs) {
  const cache = await caches.open(CACHE);
  const key = cacheKey(request.url);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(request.url, {
      credentials: "same-origin", signal: controller.signal, cache: "no-store",
      headers: request.headers,
      // A navigation must get the redirect itself (e.g. to the login page), not
      // the page it leads to.
      redirect: request.mode === "navigate" ? "manual" : "follow",
    });
    if (cacheable(response)) {
      await cache.put(key, response.clone());
    } else if (response.status >= 500) {
      const cached = await cache.match(key); // the server is down: use the saved copy
      if (cached) return cached;
    }
    return response;
  } catch (err) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (cacheable(response)) await cache.put(request, response.clone());
  return response;
}

function offlinePage() {
  return new Response(
    "<!doctype html><meta charset=utf-8><title>Offline</title>" +
    "<p>Ei verkkoyhteyttä eikä tallennettua kassaa. / Offline, and this till was not " +
    "saved on this device yet.</p>",
    { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // never cache or answer a POST
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (TILL_PAGE.test(url.pathname) && url.pathname !== "/pos/" && request.mode === "navigate") {
    event.respondWith(networkFirst(request, PAGE_TIMEOUT_MS).catch(offlinePage));
  } else if (CATALOGUE.test(url.pathname)) {
    event.respondWith(networkFirst(request, CATALOGUE_TIMEOUT_MS));
  } else if (STATIC.test(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
});

// The page asks for its own URL and catalogue to be saved right after registering
// (the first load happened before the worker existed). Answers on the port given.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "cache-till") return;
  const port = event.ports && event.ports[0];
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const results = {};
    for (const url of data.urls || []) {
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (cacheable(response)) {
          await cache.put(cacheKey(url), response.clone());
          results[url] = true;
        } else {
          results[url] = false;
        }
      } catch (err) {
        results[url] = false;
      }
    }
    if (port) port.postMessage({ type: "cached", version: VERSION, results });
  })());
});
