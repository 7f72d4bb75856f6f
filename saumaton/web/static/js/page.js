// Small behaviours of the server-rendered pages, loaded on every page (base.html).
// They live here, not in the templates, because the Content-Security-Policy allows no
// inline script or on*= handler (docs/security.md). Values come from data attributes.
"use strict";
(function () {
  // <button data-print>: print the page (receipts, pick lists, return slips).
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("[data-print]");
    if (button) {
      event.preventDefault();
      window.print();
    }
  });

  // <form data-confirm="Question?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <input data-select-on-focus>: a value to copy (a new API token) is selected at once.
  document.addEventListener("focusin", function (event) {
    const input = event.target;
    if (input.matches && input.matches("[data-select-on-focus]")) input.select();
  });

  function init(root) {
    // Wide screens show the shop's filters beside the results; phones keep them folded.
    if (window.matchMedia("(min-width: 56rem)").matches) {
      root.querySelectorAll("details.filters-panel").forEach(function (d) { d.open = true; });
    }
    // Wide screens keep the back office's menu open; a phone starts with it folded.
    if (window.matchMedia("(max-width: 40rem)").matches) {
      root.querySelectorAll("details.bo-menu").forEach(function (d) { d.open = false; });
    }
    // A campaign form shows only the fields the chosen kind uses (all without JS).
    root.querySelectorAll("select[data-kind-switch]").forEach(function (kind) {
      if (kind.dataset.bound) return;
      kind.dataset.bound = "1";
      const form = kind.form || document;
      function show() {
        for (const el of form.querySelectorAll("[data-kinds]")) {
          el.hidden = !el.dataset.kinds.split(" ").includes(kind.value);
        }
      }
      kind.addEventListener("change", show);
      show();
    });
    // A received quantity that differs from what was sent is highlighted as typed.
    root.querySelectorAll("input[data-sent]").forEach(function (input) {
      if (input.dataset.bound) return;
      input.dataset.bound = "1";
      function mark() {
        input.closest("tr").classList.toggle("difference", input.value !== input.dataset.sent);
      }
      input.addEventListener("input", mark);
      mark();
    });
    // Closing the till: the counted notes and coins add up into the counted cash.
    root.querySelectorAll("form[data-cash-count]").forEach(function (form) {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      const inputs = form.querySelectorAll(".count-n");
      const counted = form.querySelector("#counted");
      const lang = document.documentElement.lang;
      function sum() {
        let cents = 0, any = false;
        for (const el of inputs) {
          const n = parseInt(el.value, 10);
          if (Number.isFinite(n) && n > 0) { cents += n * Number(el.dataset.cents); any = true; }
        }
        if (!any || !counted) return;
        const euros = (cents / 100).toFixed(2);
        counted.value = lang === "fi" ? euros.replace(".", ",") : euros;
      }
      for (const el of inputs) el.addEventListener("input", sum);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
})();

/* A page answered at another address than its own (the order status page is the
 * answer to the return from Paytrail): the address bar shows its own link, the one
 * to bookmark, and reloading it does not repeat the return. */
(function () {
  "use strict";
  function canonical() {
    const el = document.querySelector("[data-canonical-url]");
    if (!el || !window.history || !history.replaceState) return;
    const url = el.getAttribute("data-canonical-url");
    if (url && location.pathname + location.search !== url) {
      history.replaceState(null, "", url);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", canonical);
  } else {
    canonical();
  }
})();
