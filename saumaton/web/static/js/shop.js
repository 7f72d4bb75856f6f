/* Live product page: when stock or a price changes anywhere (a store sale, a
 * web order, a new campaign), re-fetch the server-rendered fragments; when the
 * product itself was edited in the back office, load the page again.
 * No rules here: the server renders every number. */
(function () {
  "use strict";

  function refresher(url, target) {
    // One request at a time per fragment; a change during a fetch fetches again,
    // so the last thing shown is never older than the last event.
    var busy = false;
    var again = false;
    function run() {
      if (busy) { again = true; return; }
      busy = true;
      var done = function () {
        busy = false;
        if (again) { again = false; run(); }
      };
      htmx.ajax("GET", url, { target: target, swap: "innerHTML" }).then(done, done);
    }
    return run;
  }

  function live(el) {
    if (!window.EventSource) { return; }
    var stock = refresher(el.dataset.availabilityUrl, "#availability");
    var price = refresher(el.dataset.priceUrl, "#price");
    var source = new EventSource(el.dataset.liveEvents);
    // "ready" comes first on every (re)connection: catch up on anything missed.
    source.addEventListener("ready", function () {
      el.dataset.live = "ready";
      el.dataset.connects = String((Number(el.dataset.connects) || 0) + 1);
      stock();
      price();
    });
    source.addEventListener("stock.changed", stock);
    source.addEventListener("price.changed", price);
    source.addEventListener("campaign.changed", price);
    // Its names, pictures or being on sale changed in the back office: show it anew.
    source.addEventListener("product.updated", function () { window.location.reload(); });
    source.onerror = function () { el.dataset.live = "reconnecting"; };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.querySelectorAll("[data-live-events]").forEach(live);
})();
