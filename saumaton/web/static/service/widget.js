// The webshop's chat widget (templates/service/_widget.html). The chat lives on the
// server: every page load asks /service/chat/state for the open chat and its messages,
// and /service/chat/stream (server-sent events, scoped to this visitor's cookie) says
// when something new arrived. A message carries a random client_key, so sending it again
// after a network error never makes two.
(function () {
  "use strict";
  const root = document.getElementById("chat-widget");
  if (!root) return;
  const strings = JSON.parse(root.dataset.strings || "{}");
  const csrf = root.dataset.csrf || "";
  const toggle = root.querySelector(".chat-toggle");
  const panel = root.querySelector(".chat-panel");
  // Built on first open from the <template> (see build()).
  let log, status, sendForm, input, identifyForm, offlineForm;
  const OPEN_KEY = "saumaton-chat-open";
  let lastId = 0;
  let source = null;
  let pendingKey = null;
  let conversation = null;
  let signedIn = false;

  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function show(view) {
    root.querySelectorAll("[data-view]").forEach((el) => { el.hidden = el.dataset.view !== view; });
    root.dataset.state = view;
  }

  function setError(form, field, message) {
    form.querySelectorAll("[data-error-for]").forEach((p) => {
      const on = p.dataset.errorFor === field && message;
      p.hidden = !on;
      p.textContent = on ? message : "";
      const control = form.querySelector(`[name="${p.dataset.errorFor}"]`);
      if (!control) return;
      if (on) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", p.id);
      } else {
        control.removeAttribute("aria-invalid");
        control.removeAttribute("aria-describedby");
      }
    });
  }

  function clearErrors(form) { setError(form, "", ""); }

  function addMessage(m) {
    if (m.id <= lastId && log.querySelector(`[data-message-id="${m.id}"]`)) return;
    if (log.querySelector(`[data-message-id="${m.id}"]`)) return;
    const li = document.createElement("li");
    li.className = `chat-msg ${m.sender}`;
    li.setAttribute("data-testid", "chat-message");
    li.dataset.sender = m.sender;
    li.dataset.messageId = String(m.id);
    const who = document.createElement("span");
    who.className = "chat-who";
    who.textContent = (m.sender === "visitor" ? strings.you : (m.author || strings.agent)) + ": ";
    const body = document.createElement("span");
    body.className = "chat-body";
    body.setAttribute("data-testid", "chat-message-body");
    body.textContent = m.body;
    li.append(who, body);
    log.append(li);
    lastId = Math.max(lastId, m.id);
    log.scrollTop = log.scrollHeight;
  }

  function applyConversation(c) {
    conversation = c;
    const identified = signedIn || (c && c.identified);
    identifyForm.hidden = !(c && c.status === "open" && !identified);
    if (c && c.status === "closed") status.textContent = strings.closed;
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const json = await r.json();
    // An error ({code, field, message}) is no state of the chat: keep what is shown.
    if (!r.ok) throw new Error(json.message || String(r.status));
    return json;
  }

  async function post(url, data) {
    const body = new URLSearchParams(data);
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin", body,
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    });
    let json = {};
    try { json = await r.json(); } catch (e) { json = {}; }
    return { ok: r.ok, status: r.status, json };
  }

  async function catchUp() {
    let data;
    try {
      data = await getJSON(`/service/chat/messages?after=${lastId}`);
    } catch (e) {
      return; // the next event (or a reload) catches up
    }
    (data.messages || []).forEach(addMessage);
    if (data.conversation) applyConversation(data.conversation);
    else if (conversation) { // closed by the agent: the next message starts a new chat
      applyConversation({ ...conversation, status: "closed" });
    }
  }

  function listen() {
    if (source) return;
    source = new EventSource("/service/chat/stream");
    source.addEventListener("ready", () => { root.dataset.live = "1"; catchUp(); });
    source.addEventListener("chat.message", () => { catchUp(); });
    source.addEventListener("chat.updated", () => { catchUp(); });
    source.onerror = () => { root.dataset.live = "0"; };
  }

  async function load() {
    show("loading");
    let data;
    try {
      data = await getJSON("/service/chat/state");
    } catch (e) {
      show("live");
      status.textContent = strings.failed;
      return;
    }
    signedIn = !!data.signed_in;
    log.replaceChildren();
    lastId = 0;
    (data.messages || []).forEach(addMessage);
    applyConversation(data.conversation);
    if (data.conversation || data.online) {
      show("live");
      if (!data.conversation) status.textContent = strings.welcome;
      if (data.conversation) listen();
    } else {
      // A message just left stays thanked for: a late answer to an earlier load (a slow
      // server) must not bring the empty form back over the thank-you.
      show(root.dataset.state === "sent" ? "sent" : "offline");
    }
    root.dataset.ready = "1";
  }

  function open(focus) {
    build();
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    sessionStorage.setItem(OPEN_KEY, "1");
    load().then(() => {
      if (!focus) return;
      const first = root.dataset.state === "live" ? input
        : panel.querySelector("[data-view]:not([hidden]) input, [data-view]:not([hidden]) textarea");
      if (first) first.focus();
    });
  }

  function close() {
    panel.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    sessionStorage.removeItem(OPEN_KEY);
    if (source) { source.close(); source = null; }
    toggle.focus();
  }

  toggle.addEventListener("click", () => (panel.hidden ? open(true) : close()));
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });

  function build() {
    if (log) return;
    const template = root.querySelector("#chat-panel-template");
    panel.append(template.content.cloneNode(true));
    log = panel.querySelector(".chat-log");
    status = panel.querySelector(".chat-status");
    sendForm = panel.querySelector(".chat-send");
    input = sendForm.querySelector("textarea");
    identifyForm = panel.querySelector(".chat-identify");
    offlineForm = panel.querySelector(".chat-offline-form");
    panel.querySelector(".chat-close").addEventListener("click", close);
    wire();
  }

  function wire() {
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        sendForm.requestSubmit();
      }
    });

    sendForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(sendForm);
      const text = input.value.trim();
      if (!text) return;
      pendingKey = pendingKey || newKey();
      status.textContent = strings.sending;
      let res;
      try {
        res = await post("/service/chat/messages", { body: text, client_key: pendingKey, page: location.pathname });
      } catch (err) {
        status.textContent = strings.failed; // the same key is sent again next time
        return;
      }
      if (!res.ok) {
        status.textContent = "";
        setError(sendForm, res.json.field === "body" ? "body" : "body", res.json.message || strings.failed);
        return;
      }
      pendingKey = null;
      input.value = "";
      status.textContent = "";
      addMessage(res.json.message);
      if (!conversation || conversation.status !== "open") await catchUp();
      listen();
    });

    identifyForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(identifyForm);
      const res = await post("/service/chat/identify", { email: identifyForm.elements.email.value });
      if (!res.ok) {
        setError(identifyForm, "email", res.json.message || strings.failed);
        return;
      }
      applyConversation(res.json.conversation);
      status.textContent = strings.thanks;
    });

    offlineForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(offlineForm);
      const f = offlineForm.elements;
      const res = await post("/service/chat/offline", {
        name: f.name.value, email: f.email.value, message: f.message.value, page: location.pathname,
      });
      if (!res.ok) {
        const field = ["name", "email", "message"].includes(res.json.field) ? res.json.field : "message";
        setError(offlineForm, field, res.json.message || strings.failed);
        const control = offlineForm.querySelector(`[name="${field}"]`);
        if (control) control.focus();
        return;
      }
      offlineForm.reset();
      show("sent");
    });
  }

  // While the cookie banner is at the bottom of the screen the widget stands on top of it
  // (service.css): on a phone the button would otherwise cover the banner's choices. The
  // banner's height, measured here, replaces the CSS's estimate.
  const banner = document.querySelector(".consent-banner");
  if (banner && window.ResizeObserver) {
    new ResizeObserver(() => {
      document.documentElement.style.setProperty("--consent-height", banner.offsetHeight + "px");
    }).observe(banner);
  }

  if (sessionStorage.getItem(OPEN_KEY) === "1") open(false);
})();
