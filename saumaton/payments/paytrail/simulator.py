"""A local stand-in for https://services.paytrail.com (Payment API).

Same HTTP contract as the real service, and signatures are checked the same way:
every request must carry the `checkout-*` headers and a `signature` over them plus
the raw body bytes; every successful response is signed over its `checkout-*`
headers plus the raw response body. The shopper's page `/pay/{id}` offers Pay,
Fail and Cancel; each redirects the browser to `redirectUrls` with signed query
parameters and (when `callbackUrls` were given) calls the callback URL with HTTP
GET, after `callbackDelay` seconds, in the background.

Test hook: `POST /pay/{id}/{outcome}?callbacks=N` sends the callback N times
(`GET /pay/{id}?callbacks=N` makes the page's buttons do that).
State lives in memory on `app.state.simulator`.

Settlements: paid payments and their refunds are paid out in settlements, each line
with Paytrail's fees (`fees`: per payment method a fixed fee in cents and a commission
in basis points, configurable). `GET /settlements` first closes a settlement of
everything paid and not yet settled (a settlement cycle "whenever asked"; the demo
hook `POST /settlements/close` does only that), then lists them like Paytrail.
`POST /settlements/{id}/payments/report` answers `{requestId}` and then POSTs the
report (JSON: a list of rows; CSV: `;`-separated, decimal comma) to the
`callbackUrl`, with `checkout-*` headers and a signature over the raw body, retrying
until it gets HTTP 200 (3 tries).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeGuard

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from saumaton.payments.paytrail.signing import ALGORITHMS, sign, verify

log = logging.getLogger(__name__)

LANGUAGES = ("FI", "SV", "EN")
OUTCOMES = {"success": "ok", "fail": "fail", "cancel": "fail"}
PROVIDERS = (("nordea", "Nordea", "bank"), ("osuuspankki", "OP", "bank"),
             ("creditcard", "Visa", "creditcard"))
# Per payment method: (fixed paymentMethodFee in cents, paymentMethodCommission in bp).
DEFAULT_FEES: dict[str, tuple[int, int]] = {
    "nordea": (25, 0), "osuuspankki": (25, 0), "creditcard": (0, 150)}
REPORT_TRIES = 3
TERMS = ('By continuing with your payment, you agree to our '
         '<a href="https://www.paytrail.com/en/payment-terms" target="_blank">payment terms</a>')


class SimulatorError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass
class Payment:
    transaction_id: str
    account: str
    algorithm: str
    stamp: str
    reference: str
    amount: int
    currency: str
    created_at: str
    href: str
    redirect_urls: dict[str, str]
    callback_urls: dict[str, str] | None
    callback_delay: int
    status: str = "new"
    provider: str | None = None
    paid_at: str | None = None
    refunded: int = 0
    refunds: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SimulatorState:
    accounts: dict[str, str]
    public_url: str
    http_client: httpx.AsyncClient | None
    payments: dict[str, Payment] = field(default_factory=dict)
    stamps: set[tuple[str, str]] = field(default_factory=set)
    nonces: set[tuple[str, str]] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    callback_log: list[tuple[str, int | str]] = field(default_factory=list)
    # How many times each refund's callback is sent (test hook; 0: none).
    refund_callbacks: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fees: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_FEES))
    settlements: list[Settlement] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)  # transaction ids of payments, refunds
    next_settlement: int = 1001
    report_log: list[tuple[str, int | str]] = field(default_factory=list)


@dataclass
class Settlement:
    id: int
    account: str
    created_at: str
    settled_at: str  # YYYY-MM-DD
    reference: str
    rows: list[dict[str, Any]]  # money in cents here; euros in the report


def _now() -> str:
    ts = datetime.now(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message, "meta": []},
                        status_code=status_code,
                        headers={"request-id": str(uuid.uuid4())})


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object, max_len: int | None = None) -> bool:
    return isinstance(value, str) and bool(value) and (max_len is None or len(value) <= max_len)


def _url_pair(value: object, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(_is_str(value.get(k)) for k in ("success", "cancel")):
        raise SimulatorError(400, f"{name} must have success and cancel URLs")
    return {"success": str(value["success"]), "cancel": str(value["cancel"])}


def _euros(cents: int) -> float:
    return cents / 100  # its repr is the exact two-decimal text, as Paytrail writes it


def _comma(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


def _day(iso: str) -> str:
    """'2026-12-06T10:00:00.000Z' → '06-12-2026' (the report's DD-MM-YYYY)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%d-%m-%Y")


def _hhmm(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%H:%M")


MONEY_FIELDS = ("amount", "paymentMethodFee", "paymentMethodCommission", "shopInShopCommission")


def report_rows(settlement: Settlement, fields: list[str] | None) -> list[dict[str, Any]]:
    """The settlement's rows as the report gives them: euros at the top level."""
    out = []
    for row in settlement.rows:
        item = {k: (_euros(v) if k in MONEY_FIELDS else v) for k, v in row.items()}
        out.append({k: v for k, v in item.items() if not fields or k in fields})
    return out


def report_csv(settlement: Settlement, fields: list[str] | None) -> str:
    rows = [{k: (_comma(v) if k in MONEY_FIELDS else v) for k, v in row.items()
             if not fields or k in fields} for row in settlement.rows]
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=";",
                                lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def _validate_create(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SimulatorError(400, "body must be a JSON object")
    for key in ("stamp", "reference"):
        if not _is_str(body.get(key), 200):
            raise SimulatorError(400, f"{key} is required (string, at most 200 characters)")
    amount = body.get("amount")
    if not _is_int(amount) or not 0 < amount <= 99999998:
        raise SimulatorError(400, "amount must be an integer between 1 and 99999998")
    if body.get("currency") != "EUR":
        raise SimulatorError(400, "currency must be EUR")
    if body.get("language") not in LANGUAGES:
        raise SimulatorError(400, "language must be FI, SV or EN")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise SimulatorError(400, "items are required")
    total = 0
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise SimulatorError(400, f"items[{n}] must be an object")
        unit_price, units, vat = item.get("unitPrice"), item.get("units"), item.get("vatPercentage")
        if not _is_int(unit_price):
            raise SimulatorError(400, f"items[{n}].unitPrice must be an integer")
        if not _is_int(units) or not 0 <= units <= 99999998:
            raise SimulatorError(400, f"items[{n}].units must be a non-negative integer")
        if (not isinstance(vat, int | float) or isinstance(vat, bool)
                or not 0 <= vat <= 100):
            raise SimulatorError(400, f"items[{n}].vatPercentage must be a number 0..100")
        if not _is_str(item.get("productCode"), 100):
            raise SimulatorError(400, f"items[{n}].productCode is required")
        total += unit_price * units
    if total != amount:
        raise SimulatorError(400, f"amount {amount} does not match the items' total {total}")
    customer = body.get("customer")
    if not isinstance(customer, dict) or not _is_str(customer.get("email"), 200):
        raise SimulatorError(400, "customer.email is required")
    _url_pair(body.get("redirectUrls"), "redirectUrls")
    if body.get("callbackUrls") is not None:
        _url_pair(body["callbackUrls"], "callbackUrls")
    delay = body.get("callbackDelay", 0)
    if not _is_int(delay) or not 0 <= delay <= 900:
        raise SimulatorError(400, "callbackDelay must be an integer 0..900")
    return body


def create_simulator(accounts: dict[str, str], public_url: str, *,
                     http_client: httpx.AsyncClient | None = None) -> FastAPI:
    """`accounts` maps merchant id -> secret; `public_url` is where this app is served.
    `http_client` (optional) is used for server-to-server callbacks."""
    state = SimulatorState(dict(accounts), public_url.rstrip("/"), http_client)
    app = FastAPI(title="Paytrail simulator")
    app.state.simulator = state

    @app.exception_handler(SimulatorError)
    async def _on_error(request: Request, exc: SimulatorError) -> JSONResponse:
        return _error(exc.status_code, exc.message)

    async def authenticate(request: Request, transaction_id: str | None = None
                           ) -> tuple[str, str, str, bytes]:
        """Check the signed headers; return (account, secret, algorithm, raw body)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        account = headers.get("checkout-account", "")
        secret = state.accounts.get(account)
        if secret is None:
            raise SimulatorError(401, "unknown checkout-account")
        algorithm = headers.get("checkout-algorithm", "")
        if algorithm not in ALGORITHMS:
            raise SimulatorError(401, "checkout-algorithm must be sha256 or sha512")
        if headers.get("checkout-method") != request.method:
            raise SimulatorError(401, "checkout-method does not match the request method")
        nonce = headers.get("checkout-nonce")
        if not nonce:
            raise SimulatorError(401, "checkout-nonce is required")
        try:
            datetime.fromisoformat(headers.get("checkout-timestamp", ""))
        except ValueError:
            raise SimulatorError(401, "checkout-timestamp must be ISO 8601") from None
        if transaction_id is not None and headers.get("checkout-transaction-id") != transaction_id:
            raise SimulatorError(401, "checkout-transaction-id does not match the URL")
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SimulatorError(400, "body is not UTF-8") from None
        params = {k: v for k, v in headers.items() if k.startswith("checkout-")}
        if not verify(params, text, headers.get("signature"), secret):
            raise SimulatorError(401, "HMAC signature mismatch")
        async with state.lock:
            if (account, nonce) in state.nonces:
                raise SimulatorError(401, "duplicate checkout-nonce")
            state.nonces.add((account, nonce))
        return account, secret, algorithm, raw

    def signed(status_code: int, payload: dict[str, Any] | list[Any], account: str,
               secret: str, algorithm: str, transaction_id: str | None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        headers = {"checkout-account": account, "checkout-algorithm": algorithm}
        if transaction_id is not None:
            headers["checkout-transaction-id"] = transaction_id
        headers["signature"] = sign(headers, body, secret, algorithm)
        headers["request-id"] = str(uuid.uuid4())
        return Response(body.encode(), status_code=status_code, headers=headers,
                        media_type="application/json; charset=utf-8")

    def find(transaction_id: str, account: str) -> Payment:
        payment = state.payments.get(transaction_id)
        if payment is None or payment.account != account:
            raise SimulatorError(404, "payment not found")
        return payment

    @app.post("/payments")
    async def create_payment(request: Request) -> Response:
        account, secret, algorithm, raw = await authenticate(request)
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise SimulatorError(400, "body is not valid JSON") from None
        body = _validate_create(parsed)
        transaction_id = str(uuid.uuid4())
        href = f"{state.public_url}/pay/{transaction_id}"
        async with state.lock:
            if (account, body["stamp"]) in state.stamps:
                raise SimulatorError(400, "duplicate stamp")
            state.stamps.add((account, body["stamp"]))
            callback_urls = body.get("callbackUrls")
            state.payments[transaction_id] = Payment(
                transaction_id=transaction_id, account=account, algorithm=algorithm,
                stamp=body["stamp"], reference=body["reference"], amount=body["amount"],
                currency="EUR", created_at=_now(), href=href,
                redirect_urls=_url_pair(body["redirectUrls"], "redirectUrls"),
                callback_urls=(None if callback_urls is None
                               else _url_pair(callback_urls, "callbackUrls")),
                callback_delay=int(body.get("callbackDelay", 0)))
        providers = [{"url": href, "name": name, "id": pid, "group": group, "parameters": []}
                     for pid, name, group in PROVIDERS]
        return signed(201, {"transactionId": transaction_id, "href": href,
                            "reference": body["reference"], "terms": TERMS, "groups": [],
                            "providers": providers, "customProviders": {}},
                      account, secret, algorithm, transaction_id)

    @app.get("/payments/{transaction_id}")
    async def get_payment(transaction_id: str, request: Request) -> Response:
        account, secret, algorithm, _ = await authenticate(request, transaction_id)
        p = find(transaction_id, account)
        payload: dict[str, Any] = {
            "id": p.transaction_id, "status": p.status, "amount": p.amount,
            "currency": p.currency, "stamp": p.stamp, "reference": p.reference,
            "createdAt": p.created_at, "href": p.href}
        if p.status == "ok":
            payload.update(provider=p.provider, paidAt=p.paid_at)
        return signed(200, payload, account, secret, algorithm, transaction_id)

    @app.post("/payments/{transaction_id}/refund")
    async def refund(transaction_id: str, request: Request) -> Response:
        account, secret, algorithm, raw = await authenticate(request, transaction_id)
        p = find(transaction_id, account)
        try:
            body = json.loads(raw)
        except ValueError:
            raise SimulatorError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise SimulatorError(400, "body must be a JSON object")
        amount = body.get("amount")
        if not _is_int(amount) or amount <= 0:
            raise SimulatorError(400, "amount must be a positive integer")
        for key in ("refundStamp", "refundReference"):
            if key in body and not _is_str(body[key], 200):
                raise SimulatorError(400, f"{key} must be a string")
        urls = _url_pair(body.get("callbackUrls"), "callbackUrls")
        stamp = body.get("refundStamp")
        async with state.lock:
            if p.status != "ok":
                raise SimulatorError(400, f"payment is {p.status}, only paid payments refund")
            seen = next((r for r in p.refunds if stamp and r["refundStamp"] == stamp), None)
            if seen is not None:
                # The same refund asked again (its answer was lost): still one refund.
                if seen["amount"] != amount:
                    raise SimulatorError(400, "duplicate refundStamp with another amount")
                return signed(201, {"provider": p.provider, "status": "ok",
                                    "transactionId": seen["transactionId"]},
                              account, secret, algorithm, transaction_id)
            if amount > p.amount - p.refunded:
                raise SimulatorError(400, f"refund {amount} exceeds the refundable "
                                          f"{p.amount - p.refunded}")
            refund_id = str(uuid.uuid4())
            p.refunded += amount
            refund = {"transactionId": refund_id, "amount": amount, "refundStamp": stamp,
                      "refundReference": body.get("refundReference")}
            p.refunds.append(refund)
        # Like Paytrail, the refund's outcome is also reported to its callback URL.
        times = state.refund_callbacks
        if times:
            task = asyncio.create_task(call_back(
                urls["success"], refund_params(p, refund), times, p.callback_delay))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        return signed(201, {"provider": p.provider, "status": "ok", "transactionId": refund_id},
                      account, secret, algorithm, transaction_id)

    def refund_params(p: Payment, refund: dict[str, Any]) -> dict[str, str]:
        """A refund callback's query: the payment callback's parameters, naming the
        refund (its stamp, reference, amount and Paytrail's id for it)."""
        params = {
            "checkout-account": p.account, "checkout-algorithm": p.algorithm,
            "checkout-amount": str(refund["amount"]),
            "checkout-stamp": str(refund["refundStamp"] or ""),
            "checkout-reference": str(refund["refundReference"] or ""),
            "checkout-transaction-id": str(refund["transactionId"]),
            "checkout-status": "ok", "checkout-provider": p.provider or "nordea"}
        params["signature"] = sign(params, "", state.accounts[p.account], p.algorithm)
        return params

    @app.get("/pay/{transaction_id}", response_class=HTMLResponse)
    async def pay_page(transaction_id: str, callbacks: int = 1) -> HTMLResponse:
        p = state.payments.get(transaction_id)
        if p is None:
            return HTMLResponse("<h1>Payment not found</h1>", status_code=404)
        tid = html.escape(transaction_id)
        euros = f"{p.amount // 100},{p.amount % 100:02d} €"
        # Relative actions: the simulator may be mounted under a path (/paytrail-sim).
        banks = "".join(
            f'<p><input type="radio" name="provider" id="bank-{pid}" value="{pid}"'
            f'{" checked" if i == 0 else ""}><label for="bank-{pid}">{name}</label></p>'
            for i, (pid, name, _) in enumerate(PROVIDERS))
        # ?callbacks=N on the page is passed on (test hook: repeated callbacks).
        more = f"?callbacks={min(max(callbacks, 0), 100)}" if callbacks != 1 else ""
        buttons = "".join(
            f'<button type="submit" id="{outcome}" formaction="{tid}/{outcome}{more}">'
            f'{label}</button> '
            for outcome, label in (("success", "Pay"), ("fail", "Fail"), ("cancel", "Cancel")))
        return HTMLResponse(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Paytrail simulator</title></head><body>"
            f"<h1>Paytrail simulator</h1><p>Reference {html.escape(p.reference)}</p>"
            f'<p>Amount <strong id="amount">{euros}</strong></p>'
            f'<form method="post" action="{tid}/success"><fieldset><legend>Choose your bank'
            f"</legend>{banks}</fieldset>"
            f"<p>Status {html.escape(p.status)}</p>{buttons}</form></body></html>")

    def outcome_params(p: Payment) -> dict[str, str]:
        params = {
            "checkout-account": p.account, "checkout-algorithm": p.algorithm,
            "checkout-amount": str(p.amount), "checkout-stamp": p.stamp,
            "checkout-reference": p.reference, "checkout-transaction-id": p.transaction_id,
            "checkout-status": p.status, "checkout-provider": p.provider or "nordea"}
        params["signature"] = sign(params, "", state.accounts[p.account], p.algorithm)
        return params

    async def call_back(url: str, params: dict[str, str], times: int, delay: int) -> None:
        if delay:
            await asyncio.sleep(delay)
        for _ in range(times):
            try:
                if state.http_client is None:
                    # One client for all callbacks (a new one per call costs ~40 ms CPU).
                    state.http_client = httpx.AsyncClient(timeout=10.0)
                r = await state.http_client.get(url, params=params)
                state.callback_log.append((url, r.status_code))
            except httpx.HTTPError as exc:
                log.warning("paytrail simulator: callback %s failed: %s", url, exc)
                state.callback_log.append((url, repr(exc)))

    @app.post("/pay/{transaction_id}/{outcome}")
    async def pay(request: Request, transaction_id: str, outcome: str,
                  callbacks: int = 1) -> Response:
        p = state.payments.get(transaction_id)
        form = await request.form()
        chosen = str(form.get("provider") or "nordea")
        provider = chosen if chosen in {pid for pid, _, _ in PROVIDERS} else "nordea"
        if p is None or outcome not in OUTCOMES:
            raise SimulatorError(404, "payment not found")
        if not 0 <= callbacks <= 100:
            raise SimulatorError(400, "callbacks must be 0..100")
        status = OUTCOMES[outcome]
        async with state.lock:
            if p.status != "new" and p.status != status:
                raise SimulatorError(409, f"payment is already {p.status}")
            if p.status == "new":
                p.status = status
                p.provider = provider
                if status == "ok":
                    p.paid_at = _now()
        params = outcome_params(p)
        kind = "success" if status == "ok" else "cancel"
        if p.callback_urls is not None and callbacks:
            task = asyncio.create_task(
                call_back(p.callback_urls[kind], params, callbacks, p.callback_delay))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        location = str(httpx.URL(p.redirect_urls[kind]).copy_merge_params(params))
        return RedirectResponse(location, status_code=303)

    def fee_of(provider: str | None, amount: int) -> tuple[int, int]:
        fixed, bp = state.fees.get(provider or "", (0, 0))
        return fixed, (amount * bp + 5000) // 10000

    async def close_settlements() -> list[Settlement]:
        """Pay out everything paid (and every refund) not yet settled: one settlement
        per merchant account."""
        created = []
        async with state.lock:
            now = _now()
            today = date.today()
            by_account: dict[str, list[dict[str, Any]]] = {}
            for p in state.payments.values():
                if p.status != "ok":
                    continue
                rows = by_account.setdefault(p.account, [])
                if p.transaction_id not in state.settled:
                    state.settled.add(p.transaction_id)
                    fixed, commission = fee_of(p.provider, p.amount)
                    rows.append({
                        "entryDate": _day(p.paid_at or now), "created": _hhmm(p.paid_at or now),
                        "amount": p.amount, "status": "Paid and settled",
                        "reference": p.reference, "stamp": p.stamp,
                        "archiveNumber": p.transaction_id, "paymentMethod": p.provider or "",
                        "paymentMethodFee": fixed, "paymentMethodCommission": commission,
                        "shopInShopCommission": 0, "originalTradeReference": ""})
                for r in p.refunds:
                    if r["transactionId"] in state.settled:
                        continue
                    state.settled.add(r["transactionId"])
                    rows.append({
                        "entryDate": today.strftime("%d-%m-%Y"), "created": _hhmm(now),
                        "amount": -int(r["amount"]), "status": "Paid and settled",
                        "reference": str(r["refundReference"] or ""),
                        "stamp": str(r["refundStamp"] or ""),
                        "archiveNumber": r["transactionId"], "paymentMethod": p.provider or "",
                        "paymentMethodFee": 0, "paymentMethodCommission": 0,
                        "shopInShopCommission": 0, "originalTradeReference": p.reference})
            for account, rows in by_account.items():
                if not rows:
                    continue
                sid = state.next_settlement
                state.next_settlement += 1
                reference = f"{9000000 + sid}"
                for row in rows:
                    row.update(settlementId=sid, settlementDate=today.strftime("%d-%m-%Y"),
                               settlementReference=reference)
                settlement = Settlement(sid, account, now, today.isoformat(), reference, rows)
                state.settlements.append(settlement)
                created.append(settlement)
        return created

    @app.post("/settlements/close")
    async def close_now() -> JSONResponse:
        """Demo and test hook (not Paytrail's API): run a settlement cycle now."""
        return JSONResponse({"settlements": [x.id for x in await close_settlements()]})

    @app.get("/settlements")
    async def list_settlements(request: Request, startDate: str | None = None,
                               endDate: str | None = None, bankReference: str | None = None,
                               limit: int = 100) -> Response:
        account, secret, algorithm, _ = await authenticate(request)
        try:
            start = date.fromisoformat(startDate) if startDate else None
            end = date.fromisoformat(endDate) if endDate else None
        except ValueError:
            raise SimulatorError(400, "startDate and endDate are YYYY-MM-DD") from None
        if not 1 <= limit <= 100:
            raise SimulatorError(400, "limit must be 1..100")
        await close_settlements()
        found = [x for x in state.settlements if x.account == account
                 and (start is None or x.settled_at >= start.isoformat())
                 and (end is None or x.settled_at <= end.isoformat())
                 and (not bankReference or x.reference == bankReference)]
        found.sort(key=lambda x: x.id, reverse=True)
        return signed(200, [{"id": x.id, "createdAt": x.created_at, "settledAt": x.settled_at,
                             "settlementReference": x.reference} for x in found[:limit]],
                      account, secret, algorithm, None)

    @app.post("/settlements/{settlement_id}/payments/report")
    async def settlement_report(settlement_id: str, request: Request) -> Response:
        account, secret, algorithm, raw = await authenticate(request)
        try:
            body = json.loads(raw)
        except ValueError:
            raise SimulatorError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise SimulatorError(400, "body must be a JSON object")
        if body.get("requestType") not in ("json", "csv"):
            raise SimulatorError(400, "requestType must be json or csv")
        if not _is_str(body.get("callbackUrl"), 2000):
            raise SimulatorError(400, "callbackUrl is required")
        fields = body.get("reportFields")
        if fields is not None and (not isinstance(fields, list)
                                   or not all(isinstance(f, str) for f in fields)):
            raise SimulatorError(400, "reportFields must be a list of field names")
        settlement = next((x for x in state.settlements
                           if str(x.id) == settlement_id and x.account == account), None)
        if settlement is None:
            raise SimulatorError(404, "settlement not found")
        request_id = str(uuid.uuid4())
        task = asyncio.create_task(deliver_report(
            settlement, str(body["callbackUrl"]), body["requestType"], fields, secret,
            algorithm))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        return signed(200, {"requestId": request_id}, account, secret, algorithm, None)

    async def deliver_report(settlement: Settlement, url: str, kind: str,
                             fields: list[str] | None, secret: str, algorithm: str) -> None:
        if kind == "json":
            body = json.dumps(report_rows(settlement, fields), ensure_ascii=False)
            content_type = "application/json; charset=utf-8"
        else:
            body = report_csv(settlement, fields)
            content_type = "text/csv; charset=utf-8"
        for attempt in range(REPORT_TRIES):
            headers = {"checkout-account": settlement.account, "checkout-algorithm": algorithm,
                       "checkout-method": "POST", "checkout-nonce": uuid.uuid4().hex,
                       "checkout-timestamp": _now()}
            headers["signature"] = sign(headers, body, secret, algorithm)
            headers["content-type"] = content_type
            try:
                if state.http_client is None:
                    state.http_client = httpx.AsyncClient(timeout=10.0)
                r = await state.http_client.post(url, content=body.encode(), headers=headers)
                state.report_log.append((url, r.status_code))
                if r.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                log.warning("paytrail simulator: report to %s failed: %s", url, exc)
                state.report_log.append((url, repr(exc)))
            await asyncio.sleep(1.0 * (attempt + 1))

    return app
