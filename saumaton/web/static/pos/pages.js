// The till's other pages (drawer, pickups, customers, receipts): the same sync status
// in the header and the same outbox syncing in the background as on the sale screen,
// so sales made offline keep reaching the server wherever the cashier is. The sale
// screen itself (till.js) sets all this up on its own.
import * as queue from "/static/pos/queue.js";
import { mountStatus } from "/static/pos/status.js";

const el = document.getElementById("sync-status");
if (el && !document.getElementById("till-config") && el.dataset.code) {
  await queue.init({ code: el.dataset.code, csrfToken: el.dataset.csrf || "" });
  mountStatus(el);
  // The close page warns only while something on this device has not reached the
  // server (a sale not on the server is not in the Z report).
  const warning = document.querySelector("[data-testid=unsynced-warning]");
  if (warning) {
    const show = (s) => { warning.hidden = !(s.pending > 0 || s.needsAttention > 0); };
    show(queue.status());
    queue.onChange(show);
  }
}
