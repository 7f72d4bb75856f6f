// The service desk (templates/service/desk.html): live through /service/stream, the
// presence heartbeat, and canned answers into the reply box.
(function () {
  "use strict";
  const desk = document.getElementById("svc");
  if (!desk) return;
  const csrf = desk.dataset.csrf || "";
  const current = Number(desk.dataset.conversationId || 0);

  function refresh(selector) {
    const el = document.querySelector(selector);
    if (el && window.htmx) window.htmx.trigger(el, "refresh");
  }

  const source = new EventSource("/service/stream");
  source.addEventListener("ready", () => { desk.dataset.live = "1"; refresh("#conv-list"); if (current) refresh("#conv-messages"); });
  function onEvent(e) {
    let id = 0;
    try { id = Number(JSON.parse(e.data).payload.conversation_id); } catch (err) { id = 0; }
    refresh("#conv-list");
    if (current && id === current) {
      if (e.type === "chat.message") refresh("#conv-messages");
      else {
        refresh("#conv-head");
        // The visitor may have been recognised: show their card, unless a note is being written.
        const note = document.querySelector("#svc-customer textarea");
        const search = document.querySelector("#svc-customer input[name=q]");
        const busy = (note && (note.value || document.activeElement === note)) ||
                     (search && document.activeElement === search);
        if (!busy) refresh("#svc-customer");
      }
    }
  }
  source.addEventListener("chat.message", onEvent);
  source.addEventListener("chat.updated", onEvent);
  source.onerror = () => { desk.dataset.live = "0"; };

  function beat(away) {
    const body = new URLSearchParams({ csrf_token: csrf });
    if (away) {
      body.set("away", "1");
      navigator.sendBeacon("/service/heartbeat", body);
      return;
    }
    fetch("/service/heartbeat", { method: "POST", body, credentials: "same-origin",
                                   headers: { "X-CSRF-Token": csrf } })
      .then((r) => { desk.dataset.present = r.ok ? "1" : "0"; })
      .catch(() => { desk.dataset.present = "0"; });
  }
  beat(false);
  setInterval(() => beat(false), 20000);
  window.addEventListener("pagehide", (e) => { if (!e.persisted) beat(true); });

  document.addEventListener("change", (e) => {
    const select = e.target.closest && e.target.closest(".svc-canned");
    if (!select) return;
    const option = select.selectedOptions[0];
    const box = document.getElementById(select.dataset.target);
    if (!option || !option.value || !box) return;
    const text = option.dataset.body || "";
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.focus();
    box.selectionStart = box.selectionEnd = start + text.length;
    select.value = "";
  });

  // The reply box: Enter sends, Shift+Enter makes a new line.
  document.addEventListener("keydown", (e) => {
    const box = e.target.closest && e.target.closest(".svc-reply textarea");
    if (box && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      box.form.requestSubmit();
    }
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "conv-reply") {
      const box = document.querySelector("#conv-reply textarea");
      if (box && !box.value) box.focus();
    }
  });
})();
