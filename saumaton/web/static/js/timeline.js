/* The customer timeline, live: each [data-timeline] listens to its customer's event
 * stream (data-events) and reloads itself from the server (data-url) when anything
 * happens with the customer in any channel. No rules here: the server renders it all.
 * Loaded by every copy of templates/_timeline.html (also inside htmx swaps): the first
 * load sets things up, later loads only look for new timelines. */
(function () {
  "use strict";

  if (window.saumatonTimeline) { window.saumatonTimeline.scan(); return; }

  function reloader(el) {
    // One request at a time; a change during a fetch fetches again, so what is shown is
    // never older than the last event.
    var busy = false;
    var again = false;
    function run() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(el.dataset.url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("[data-timeline]");
          if (fresh) {
            // A chat opened on the timeline stays open: its fresh copy opens (which reads
            // its messages again), showing what was there meanwhile.
            var opened = [];
            el.querySelectorAll("details[data-tl-chat][open]").forEach(function (d) {
              opened.push([d.id, d.querySelector("[data-tl-chat-body]").innerHTML]);
            });
            el.innerHTML = fresh.innerHTML;
            if (window.htmx) { window.htmx.process(el); }
            opened.forEach(function (o) {
              var d = el.querySelector('details[id="' + o[0] + '"]');
              if (d) { d.querySelector("[data-tl-chat-body]").innerHTML = o[1]; d.open = true; }
            });
            el.dataset.loads = String((Number(el.dataset.loads) || 0) + 1);
          }
        })
        .catch(function () { /* the next event or reconnect tries again */ })
        .then(function () {
          busy = false;
          if (again) { again = false; run(); }
        });
    }
    return run;
  }

  function live(el) {
    if (el.dataset.live || !window.EventSource || !el.dataset.events) { return; }
    el.dataset.live = "connecting";
    var reload = reloader(el);
    var source = new EventSource(el.dataset.events);
    var first = true;
    // "ready" comes first on every (re)connection: after a reconnect, catch up.
    source.addEventListener("ready", function () {
      el.dataset.live = "ready";
      if (!first) { reload(); }
      first = false;
    });
    source.addEventListener("changed", reload);
    source.onerror = function () { el.dataset.live = "reconnecting"; };
    // A timeline swapped out of the page (another customer opened) stops listening.
    var watch = window.setInterval(function () {
      if (!document.documentElement.contains(el)) {
        source.close();
        window.clearInterval(watch);
      }
    }, 5000);
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function scan() {
    document.querySelectorAll("[data-timeline]").forEach(live);
  }

  window.saumatonTimeline = { scan: scan };
  document.addEventListener("htmx:load", scan);
  scan();
})();
