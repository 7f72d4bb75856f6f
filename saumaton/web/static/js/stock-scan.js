// Counting by scanning without losing a scan. A scanner types the code and Enter,
// often faster than a page can reload: each submitted code is taken out of the field at
// once (the next scan types into an empty field) and queued; the queue posts them one
// by one and swaps in the fresh "counted so far" table and any error. Without this
// script the form still works, one page load per scan.
(function () {
  const form = document.querySelector("form[data-scan-queue]");
  if (!form) return;
  const input = form.querySelector("input[name=code]");
  const queue = [];
  let busy = false;

  function swap(doc, id) {
    const fresh = doc.getElementById(id);
    const old = document.getElementById(id);
    if (fresh && old) old.replaceWith(fresh);
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
        let response;
        try {
          response = await fetch(form.action, { method: "POST", body: body,
                                                credentials: "same-origin" });
        } catch (err) {
          // Offline or the server is away: the scans wait in the queue (shown under the
          // field); the next Enter sends them again.
          const feedback = document.getElementById("scan-feedback");
          if (feedback) {
            const p = document.createElement("p");
            p.className = "error";
            p.dataset.testid = "scan-waiting";
            p.textContent = form.dataset.waiting + " (" + queue.length + ")";
            feedback.replaceChildren(p);
          }
          return;
        }
        queue.shift();
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        swap(doc, "count-live");
        swap(doc, "scan-feedback");
        const invalid = response.status === 422;
        if (invalid) {
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
    event.preventDefault();
    const code = input.value.trim();
    input.value = "";
    input.focus();
    if (code) queue.push(code);
    pump();
  });
})();
