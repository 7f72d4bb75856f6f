// Scanning without losing a scan (stock counts, deliveries, transfers). A scanner types
// the code and Enter, often faster than a page can reload: each submitted code is taken
// out of the field at once (the next scan types into an empty field) and queued; the
// queue posts them one by one with the rest of the form and swaps in the parts of the
// answer named in the form's data-swap (the lines so far, the error under the field).
// Other buttons (post, send) submit the form as usual. Without this script every scan
// is one page load.
(function () {
  document.querySelectorAll("form[data-scan-queue]").forEach(function (form) {
    const input = form.querySelector("input[name=code]");
    const ids = (form.dataset.swap || "").split(" ").filter(Boolean);
    // Not form.action: the form's buttons are named "action" and would shadow it.
    const url = form.getAttribute("action");
    const queue = [];
    let busy = false;

    function showWaiting() {
      const feedback = document.getElementById("scan-feedback");
      if (!feedback) return;
      const p = document.createElement("p");
      p.className = "error";
      p.dataset.testid = "scan-waiting";
      p.textContent = form.dataset.waiting + " (" + queue.length + ")";
      feedback.replaceChildren(p);
    }

    async function pump() {
      if (busy) return;
      busy = true;
      form.setAttribute("aria-busy", "true");
      try {
        while (queue.length) {
          const code = queue[0];
          const body = new FormData(form);
          body.set("code", code);
          body.delete("action");
          let response;
          try {
            response = await fetch(url, { method: "POST", body: body,
                                                  credentials: "same-origin" });
          } catch (err) {
            showWaiting();  // offline or the server is away: the next Enter retries
            return;
          }
          queue.shift();
          const doc = new DOMParser().parseFromString(await response.text(), "text/html");
          ids.forEach(function (id) {
            const fresh = doc.getElementById(id);
            const old = document.getElementById(id);
            if (fresh && old) old.replaceWith(fresh);
          });
          if (doc.getElementById("code-error")) {
            input.setAttribute("aria-invalid", "true");
            input.setAttribute("aria-describedby", "code-error");
            if (!input.value) input.value = code;
          } else {
            input.removeAttribute("aria-invalid");
            input.removeAttribute("aria-describedby");
          }
        }
      } finally {
        busy = false;
        form.removeAttribute("aria-busy");
      }
    }

    form.addEventListener("submit", function (event) {
      const button = event.submitter;
      if (button && button.name === "action" && button.value !== "scan") return;
      event.preventDefault();
      const code = input.value.trim();
      input.value = "";
      input.focus();
      if (code) queue.push(code);
      pump();
    });
    // Until this runs, Enter submits the form as a page load and what the scanner types
    // meanwhile goes to the page being left; tests wait for this mark before scanning.
    form.dataset.scanReady = "true";
  });
})();
