// The receipt of a sale the till made offline, drawn from the sale itself with the
// same content as the server's receipt (templates/pos/_receipt.html), marked
// "offline — waiting to sync". The receipt number is the queue's client_ref.

import { priceSale, planPayments } from "./pricing.js";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "testid") node.dataset.testid = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function row(label, value, testid, cls) {
  return el("tr", {class: cls}, el("th", {scope: "row"}, label),
            el("td", {class: "num", testid}, value));
}

/**
 * `sale`: the TillSaleIn sent, `priceInput`: its lines as priceSale takes them
 * (with the VAT rate), `names`: line names, `fmt`: {money(cents), signed(cents), rate(bp), datetime(Date)}, `cfg`: the
 * till config (seller, store), `S`: the strings, `clientRef`: the receipt number.
 */
export function offlineReceipt({sale, priceInput, names, fmt, cfg, S, clientRef, soldAt,
                                cardRefused, bundles = []}) {
  const priced = priceSale(priceInput, sale.order_discount, 100, bundles);
  const plan = planPayments(priced.total_cents, sale.payments);
  const lines = el("tbody");
  priced.lines.forEach((ln, i) => {
    const small = el("small", {}, `${ln.quantity} × ${fmt.money(ln.unit_price_cents)}`);
    if (ln.campaign_cents > 0) {
      small.append(` · ${ln.bundled ? ln.campaign_name + ":" : S.manual_discount} −${fmt.money(ln.campaign_cents)}`);
    }
    const cellName = el("td", {}, names[i], el("br"), small);
    if (ln.manual_cents) {
      cellName.append(el("br"), el("small", {testid: "manual-discount"},
        `${S.discount} −${fmt.money(ln.manual_cents)}${ln.reason ? ": " + ln.reason : ""}`));
    }
    lines.append(el("tr", {testid: "receipt-line"}, cellName,
                    el("td", {class: "num"}, fmt.money(ln.total_cents))));
  });
  const payments = el("table", {class: "payments", testid: "payments"});
  for (const p of plan.planned) {
    if (p.method === "cash") {
      if (p.rounding_cents) payments.append(row(S.rounding, fmt.signed(p.rounding_cents), "rounding"));
      payments.append(row(S.paid_cash, fmt.money(p.to_collect_cents), "cash-paid", "grand"));
      payments.append(row(S.tendered, fmt.money(p.tendered_cents), "tendered"));
      payments.append(row(S.change, fmt.money(p.change_cents), "change"));
    } else {
      const label = cardRefused ? S.paid_card : `${S.paid_card} (${S.card_to_confirm})`;
      payments.append(row(label, fmt.money(p.amount_cents), "card-paid", "grand"));
    }
  }
  const vat = el("tbody");
  for (const v of priced.vat) {
    vat.append(el("tr", {testid: "vat-row"}, el("td", {}, `${fmt.rate(v.rate_bp)} %`),
      el("td", {class: "num"}, fmt.money(v.net_cents)), el("td", {class: "num"}, fmt.money(v.vat_cents)),
      el("td", {class: "num"}, fmt.money(v.gross_cents))));
  }
  const store = cfg.storeAddress ? `${cfg.storeName}, ${cfg.storeAddress}` : cfg.storeName;
  return el("article", {class: "receipt offline", testid: "receipt"},
    el("p", {class: "offline-mark", testid: "offline-receipt", role: "status"}, S.offline_receipt),
    el("header", {},
      el("h2", {testid: "business-name"}, cfg.seller.name),
      el("p", {}, cfg.seller.address),
      el("p", {}, `${S.business_id} `, el("span", {testid: "business-id"}, cfg.seller.id)),
      el("p", {}, store)),
    el("dl", {class: "meta"},
      el("dt", {}, S.receipt_no), el("dd", {testid: "receipt-number"}, clientRef),
      el("dt", {}, S.date), el("dd", {testid: "receipt-time"}, fmt.datetime(soldAt))),
    el("table", {class: "receipt-lines"}, lines,
      el("tfoot", {}, row(S.total, fmt.money(priced.total_cents), "receipt-total", "grand"))),
    payments,
    el("table", {class: "vat", testid: "vat-breakdown"},
      el("thead", {}, el("tr", {}, el("th", {scope: "col"}, S.vat_rate),
        el("th", {scope: "col", class: "num"}, S.net), el("th", {scope: "col", class: "num"}, S.vat),
        el("th", {scope: "col", class: "num"}, S.gross))),
      vat),
    el("p", {class: "thanks"}, S.thanks));
}
