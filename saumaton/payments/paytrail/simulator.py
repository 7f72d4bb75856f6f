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

It is a plain ASGI app, no framework (its CPU counts in the web benchmark, which runs
it beside the shop): the path is split and dispatched, each answer is built whole, and
the server-to-server calls go through its own kept-alive HTTP/1.1 connections
(`http1.Http1Pool`, shared with the Paytrail client), or through `http_client` when
one is given (tests).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeGuard
from urllib.parse import parse_qs, parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import httpx
from starlette.datastructures import State
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from saumaton.payments.paytrail.http1 import Http1Pool, Unreachable
from saumaton.payments.paytrail.signing import ALGORITHMS, sign, verify

log = logging.getLogger(__name__)

LANGUAGES = ("FI", "SV", "EN")
OUTCOMES = {"success": "ok", "fail": "fail", "cancel": "fail"}
PROVIDERS = (("nordea", "Nordea", "bank"), ("osuuspankki", "OP", "bank"),
             ("creditcard", "Visa", "creditcard"))
PROVIDER_IDS = frozenset(pid for pid, _, _ in PROVIDERS)
# Per payment method: (fixed paymentMethodFee in cents, paymentMethodCommission in bp).
DEFAULT_FEES: dict[str, tuple[int, int]] = {
    "nordea": (25, 0), "osuuspankki": (25, 0), "creditcard": (0, 150)}
REPORT_TRIES = 3
# Sent with each server-to-server call.
HEADERS = (("User-Agent", "Saumaton Paytrail simulator"), ("Accept", "*/*"))
# Kept connections are given up before the other end would close them (uvicorn's
# keep-alive timeout is 5 s).
IDLE_S = 4.0
MAX_IDLE = 64
# What quote_plus leaves as it is (and so urlencode): the signed parameters' names and
# nearly always their values (digits, hex, UUIDs, "ok", a provider's id).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def encode_query(params: Mapping[str, str]) -> str:
    """urlencode(params), without quoting what needs none."""
    return "&".join(
        f"{k if _UNRESERVED.fullmatch(k) else quote_plus(k)}="
        f"{v if _UNRESERVED.fullmatch(v) else quote_plus(v)}" for k, v in params.items())


def with_params(url: str, params: Mapping[str, str], encoded: str | None = None) -> str:
    """`url` with `params` merged into its query: a parameter already there is
    replaced, the rest kept in order, as httpx's `copy_merge_params` does.
    `encoded`: encode_query(params), when the caller has it already."""
    if not params:
        return url
    if "?" not in url and "#" not in url:
        return f"{url}?{encode_query(params) if encoded is None else encoded}"
    parts = urlsplit(url)
    if not parts.query:
        query = encode_query(params) if encoded is None else encoded
    else:
        merged = {**parse_qs(parts.query, keep_blank_values=True),
                  **{k: [v] for k, v in params.items()}}
        query = urlencode([(k, v) for k, values in merged.items() for v in values])
    return urlunsplit(parts._replace(query=query))


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


class _Second:
    """The last whole second _now() wrote, and its text up to the milliseconds."""

    whole = -1
    text = ""


def _now() -> str:
    """UTC now as Paytrail writes it: 2026-12-06T10:00:00.123Z."""
    t = time.time()
    whole = int(t)
    if whole != _Second.whole:
        _Second.text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole))
        _Second.whole = whole
    return f"{_Second.text}{int((t - whole) * 1000):03d}Z"


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


Headers = list[tuple[bytes, bytes]]
DOCS = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>Paytrail simulator</title></head><body><h1>Paytrail simulator</h1>"
        "<p>Paytrail's Payment API, signed as Paytrail signs it:</p><ul>"
        "<li>POST /payments</li><li>GET /payments/{transactionId}</li>"
        "<li>POST /payments/{transactionId}/refund</li><li>GET /settlements</li>"
        "<li>POST /settlements/{id}/payments/report</li></ul>"
        "<p>The shopper's page GET /pay/{transactionId} and its actions "
        "POST /pay/{transactionId}/success|fail|cancel; the demo hook "
        "POST /settlements/close.</p></body></html>")


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: Headers


@dataclass(slots=True)
class Call:
    """One request: method, path segments after the mount point, lower-case header
    names (the last of repeated ones), query parameters and the raw body."""

    scope: Scope
    method: str
    parts: list[str]
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes


JSON = b"application/json"
JSON_UTF8 = b"application/json; charset=utf-8"
HTML = b"text/html; charset=utf-8"
MAX_BODY = 1024 * 1024


def _request_id() -> bytes:
    return str(uuid.uuid4()).encode()


def json_reply(status: int, payload: object) -> Reply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Reply(status, body, [(b"content-type", JSON)])


def _error_reply(status: int, message: str) -> Reply:
    reply = json_reply(status, {"status": "error", "message": message, "meta": []})
    reply.headers.append((b"request-id", _request_id()))
    return reply


def html_reply(text: str, status: int = 200) -> Reply:
    return Reply(status, text.encode(), [(b"content-type", HTML)])


def redirect_reply(location: str) -> Reply:
    # Quoted as Starlette's RedirectResponse does (a no-op on an encoded query).
    return Reply(303, b"", [(b"location",
                             quote(location, safe=":/%#?=@[]!$&'()*+,;").encode("latin-1"))])


def signed_reply(status: int, payload: dict[str, Any] | list[Any], account: str,
                 secret: str, algorithm: str, transaction_id: str | None) -> Reply:
    """Paytrail's answer: signed over its `checkout-*` headers and the exact body."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    params = {"checkout-account": account, "checkout-algorithm": algorithm}
    if transaction_id is not None:
        params["checkout-transaction-id"] = transaction_id
    signature = sign(params, body, secret, algorithm)
    headers = [(k.encode(), v.encode()) for k, v in params.items()]
    headers += [(b"signature", signature.encode()), (b"request-id", _request_id()),
                (b"content-type", JSON_UTF8)]
    return Reply(status, body.encode(), headers)


def _int_param(call: Call, name: str, default: int) -> int:
    value = call.query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SimulatorError(400, f"{name} must be an integer") from None


class PaytrailSimulator:
    """The simulator as a plain ASGI app (served by uvicorn, or mounted in the shop).

    No framework: routing is a split of the path, and each answer goes out in one
    `send` of the head and one of the body. State is `state.simulator`."""

    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim
        self.state = State({"simulator": sim})
        self.outbound = Http1Pool(timeout=10.0, keepalive_expiry=IDLE_S, max_idle=MAX_IDLE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def aclose(self) -> None:
        """Close the kept callback connections (served alone: at lifespan shutdown;
        mounted in the shop: by the shop's lifespan)."""
        await self.outbound.aclose()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root + "/"):  # mounted under a path (/paytrail-sim)
            path = path[len(root):]
        try:
            body = await self.read_body(receive)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            raw_query: bytes = scope.get("query_string", b"")
            query = (dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
                     if raw_query else {})
            call = Call(scope, scope["method"], path.split("/")[1:], headers, query, body)
            reply = await self.route(call)
        except SimulatorError as exc:
            reply = _error_reply(exc.status_code, exc.message)
        reply.headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": reply.headers})
        await send({"type": "http.response.body", "body": reply.body})

    @staticmethod
    async def read_body(receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > MAX_BODY:
                    raise SimulatorError(413, "request body too large")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def route(self, call: Call) -> Reply:
        parts, method = call.parts, call.method
        n = len(parts)
        allowed: tuple[str, ...] = ()
        if parts[0] == "pay" and n in (2, 3) and parts[1]:
            if n == 3 and parts[2]:
                allowed = ("POST",)
                if method == "POST":
                    return await self.pay(call, parts[1], parts[2])
            elif n == 2:
                allowed = ("GET", "HEAD")
                if method in allowed:
                    return self.pay_page(call, parts[1])
        elif parts[0] == "payments":
            if n == 1:
                allowed = ("POST",)
                if method == "POST":
                    return self.create_payment(call)
            elif n == 2 and parts[1]:
                allowed = ("GET",)
                if method == "GET":
                    return self.get_payment(call, parts[1])
            elif n == 3 and parts[1] and parts[2] == "refund":
                allowed = ("POST",)
                if method == "POST":
                    return self.refund(call, parts[1])
        elif parts == ["docs"]:  # what scripts poll for readiness (bench/run.sh)
            allowed = ("GET", "HEAD")
            if method in allowed:
                return html_reply(DOCS)
        elif parts[0] == "settlements":
            if n == 1:
                allowed = ("GET",)
                if method == "GET":
                    return self.list_settlements(call)
            elif n == 2 and parts[1] == "close":
                allowed = ("POST",)
                if method == "POST":
                    return json_reply(200, {"settlements": [
                        x.id for x in self.close_settlements()]})
            elif n == 4 and parts[1] and parts[2:] == ["payments", "report"]:
                allowed = ("POST",)
                if method == "POST":
                    return self.settlement_report(call, parts[1])
        if allowed:
            reply = json_reply(405, {"detail": "Method Not Allowed"})
            reply.headers.append((b"allow", ", ".join(allowed).encode()))
            return reply
        return json_reply(404, {"detail": "Not Found"})

    # --- the Payment API (signed) ---------------------------------------------------------

    def authenticate(self, call: Call, transaction_id: str | None = None
                     ) -> tuple[str, str, str]:
        """Check the signed headers; return (account, secret, algorithm)."""
        headers = call.headers
        account = headers.get("checkout-account", "")
        secret = self.sim.accounts.get(account)
        if secret is None:
            raise SimulatorError(401, "unknown checkout-account")
        algorithm = headers.get("checkout-algorithm", "")
        if algorithm not in ALGORITHMS:
            raise SimulatorError(401, "checkout-algorithm must be sha256 or sha512")
        if headers.get("checkout-method") != call.method:
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
        try:
            text = call.body.decode("utf-8")
        except UnicodeDecodeError:
            raise SimulatorError(400, "body is not UTF-8") from None
        params = {k: v for k, v in headers.items() if k.startswith("checkout-")}
        if not verify(params, text, headers.get("signature"), secret):
            raise SimulatorError(401, "HMAC signature mismatch")
        if (account, nonce) in self.sim.nonces:
            raise SimulatorError(401, "duplicate checkout-nonce")
        self.sim.nonces.add((account, nonce))
        return account, secret, algorithm

    @staticmethod
    def json_body(call: Call) -> dict[str, Any]:
        try:
            body = json.loads(call.body)
        except ValueError:
            raise SimulatorError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise SimulatorError(400, "body must be a JSON object")
        return body

    def find(self, transaction_id: str, account: str) -> Payment:
        payment = self.sim.payments.get(transaction_id)
        if payment is None or payment.account != account:
            raise SimulatorError(404, "payment not found")
        return payment

    def create_payment(self, call: Call) -> Reply:
        state = self.sim
        account, secret, algorithm = self.authenticate(call)
        try:
            parsed = json.loads(call.body)
        except ValueError:
            raise SimulatorError(400, "body is not valid JSON") from None
        body = _validate_create(parsed)
        transaction_id = str(uuid.uuid4())
        href = f"{state.public_url}/pay/{transaction_id}"
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
        return signed_reply(201, {"transactionId": transaction_id, "href": href,
                                  "reference": body["reference"], "terms": TERMS,
                                  "groups": [], "providers": providers,
                                  "customProviders": {}},
                            account, secret, algorithm, transaction_id)

    def get_payment(self, call: Call, transaction_id: str) -> Reply:
        account, secret, algorithm = self.authenticate(call, transaction_id)
        p = self.find(transaction_id, account)
        payload: dict[str, Any] = {
            "id": p.transaction_id, "status": p.status, "amount": p.amount,
            "currency": p.currency, "stamp": p.stamp, "reference": p.reference,
            "createdAt": p.created_at, "href": p.href}
        if p.status == "ok":
            payload.update(provider=p.provider, paidAt=p.paid_at)
        return signed_reply(200, payload, account, secret, algorithm, transaction_id)

    def refund(self, call: Call, transaction_id: str) -> Reply:
        state = self.sim
        account, secret, algorithm = self.authenticate(call, transaction_id)
        p = self.find(transaction_id, account)
        body = self.json_body(call)
        amount = body.get("amount")
        if not _is_int(amount) or amount <= 0:
            raise SimulatorError(400, "amount must be a positive integer")
        for key in ("refundStamp", "refundReference"):
            if key in body and not _is_str(body[key], 200):
                raise SimulatorError(400, f"{key} must be a string")
        urls = _url_pair(body.get("callbackUrls"), "callbackUrls")
        stamp = body.get("refundStamp")
        if p.status != "ok":
            raise SimulatorError(400, f"payment is {p.status}, only paid payments refund")
        seen = next((r for r in p.refunds if stamp and r["refundStamp"] == stamp), None)
        if seen is not None:
            # The same refund asked again (its answer was lost): still one refund.
            if seen["amount"] != amount:
                raise SimulatorError(400, "duplicate refundStamp with another amount")
            return signed_reply(201, {"provider": p.provider, "status": "ok",
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
            self.spawn(self.call_back(urls["success"], self.refund_params(p, refund), times,
                                      p.callback_delay))
        return signed_reply(201, {"provider": p.provider, "status": "ok",
                                  "transactionId": refund_id},
                            account, secret, algorithm, transaction_id)

    def refund_params(self, p: Payment, refund: dict[str, Any]) -> dict[str, str]:
        """A refund callback's query: the payment callback's parameters, naming the
        refund (its stamp, reference, amount and Paytrail's id for it)."""
        params = {
            "checkout-account": p.account, "checkout-algorithm": p.algorithm,
            "checkout-amount": str(refund["amount"]),
            "checkout-stamp": str(refund["refundStamp"] or ""),
            "checkout-reference": str(refund["refundReference"] or ""),
            "checkout-transaction-id": str(refund["transactionId"]),
            "checkout-status": "ok", "checkout-provider": p.provider or "nordea"}
        params["signature"] = sign(params, "", self.sim.accounts[p.account], p.algorithm)
        return params

    # --- the shopper's payment page -------------------------------------------------------

    def pay_page(self, call: Call, transaction_id: str) -> Reply:
        callbacks = _int_param(call, "callbacks", 1)
        p = self.sim.payments.get(transaction_id)
        if p is None:
            return html_reply("<h1>Payment not found</h1>", 404)
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
        return html_reply(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Paytrail simulator</title></head><body>"
            f"<h1>Paytrail simulator</h1><p>Reference {html.escape(p.reference)}</p>"
            f'<p>Amount <strong id="amount">{euros}</strong></p>'
            f'<form method="post" action="{tid}/success"><fieldset><legend>Choose your bank'
            f"</legend>{banks}</fieldset>"
            f"<p>Status {html.escape(p.status)}</p>{buttons}</form></body></html>")

    def outcome_params(self, p: Payment) -> dict[str, str]:
        params = {
            "checkout-account": p.account, "checkout-algorithm": p.algorithm,
            "checkout-amount": str(p.amount), "checkout-stamp": p.stamp,
            "checkout-reference": p.reference, "checkout-transaction-id": p.transaction_id,
            "checkout-status": p.status, "checkout-provider": p.provider or "nordea"}
        params["signature"] = sign(params, "", self.sim.accounts[p.account], p.algorithm)
        return params

    @staticmethod
    async def form(call: Call) -> Mapping[str, Any]:
        """The submitted form: URL-encoded as browsers send it, else through Starlette."""
        kind = call.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "multipart/form-data":
            body = call.body

            async def replay() -> Message:
                return {"type": "http.request", "body": body, "more_body": False}

            return await Request(call.scope, replay).form()
        if kind != "application/x-www-form-urlencoded" or not call.body:
            return {}
        return dict(parse_qsl(call.body.decode("utf-8", "replace"), keep_blank_values=True))

    async def pay(self, call: Call, transaction_id: str, outcome: str) -> Reply:
        state = self.sim
        callbacks = _int_param(call, "callbacks", 1)
        p = state.payments.get(transaction_id)
        form = await self.form(call)
        chosen = str(form.get("provider") or "nordea")
        provider = chosen if chosen in PROVIDER_IDS else "nordea"
        if p is None or outcome not in OUTCOMES:
            raise SimulatorError(404, "payment not found")
        if not 0 <= callbacks <= 100:
            raise SimulatorError(400, "callbacks must be 0..100")
        status = OUTCOMES[outcome]
        if p.status != "new" and p.status != status:
            raise SimulatorError(409, f"payment is already {p.status}")
        if p.status == "new":
            p.status = status
            p.provider = provider
            if status == "ok":
                p.paid_at = _now()
        params = self.outcome_params(p)
        encoded = encode_query(params)
        kind = "success" if status == "ok" else "cancel"
        if p.callback_urls is not None and callbacks:
            self.spawn(self.call_back(p.callback_urls[kind], params, callbacks,
                                      p.callback_delay, encoded))
        return redirect_reply(with_params(p.redirect_urls[kind], params, encoded))

    # --- server-to-server calls -----------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.sim.tasks.add(task)
        task.add_done_callback(self.sim.tasks.discard)

    async def call_back(self, url: str, params: dict[str, str], times: int,
                        delay: int, encoded: str | None = None) -> None:
        """GET `url` with the signed `params` `times` times, after `delay` seconds."""
        state = self.sim
        if delay:
            await asyncio.sleep(delay)
        target = with_params(url, params, encoded)
        for _ in range(times):
            try:
                if state.http_client is not None:
                    r = await state.http_client.get(url, params=params)
                    status = r.status_code
                else:
                    status = (await self.outbound.request("GET", target, HEADERS)).status_code
                state.callback_log.append((url, status))
            except (httpx.HTTPError, Unreachable, ValueError) as exc:
                log.warning("paytrail simulator: callback %s failed: %s", url, exc)
                state.callback_log.append((url, repr(exc)))

    # --- settlements ----------------------------------------------------------------------

    def fee_of(self, provider: str | None, amount: int) -> tuple[int, int]:
        fixed, bp = self.sim.fees.get(provider or "", (0, 0))
        return fixed, (amount * bp + 5000) // 10000

    def close_settlements(self) -> list[Settlement]:
        """Pay out everything paid (and every refund) not yet settled: one settlement
        per merchant account."""
        state = self.sim
        created = []
        now = _now()
        today = date.today()
        by_account: dict[str, list[dict[str, Any]]] = {}
        for p in state.payments.values():
            if p.status != "ok":
                continue
            rows = by_account.setdefault(p.account, [])
            if p.transaction_id not in state.settled:
                state.settled.add(p.transaction_id)
                fixed, commission = self.fee_of(p.provider, p.amount)
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

    def list_settlements(self, call: Call) -> Reply:
        account, secret, algorithm = self.authenticate(call)
        start_date, end_date = call.query.get("startDate"), call.query.get("endDate")
        bank_reference = call.query.get("bankReference")
        limit = _int_param(call, "limit", 100)
        try:
            start = date.fromisoformat(start_date) if start_date else None
            end = date.fromisoformat(end_date) if end_date else None
        except ValueError:
            raise SimulatorError(400, "startDate and endDate are YYYY-MM-DD") from None
        if not 1 <= limit <= 100:
            raise SimulatorError(400, "limit must be 1..100")
        self.close_settlements()
        found = [x for x in self.sim.settlements if x.account == account
                 and (start is None or x.settled_at >= start.isoformat())
                 and (end is None or x.settled_at <= end.isoformat())
                 and (not bank_reference or x.reference == bank_reference)]
        found.sort(key=lambda x: x.id, reverse=True)
        return signed_reply(200, [{"id": x.id, "createdAt": x.created_at,
                                   "settledAt": x.settled_at,
                                   "settlementReference": x.reference} for x in found[:limit]],
                            account, secret, algorithm, None)

    def settlement_report(self, call: Call, settlement_id: str) -> Reply:
        account, secret, algorithm = self.authenticate(call)
        body = self.json_body(call)
        if body.get("requestType") not in ("json", "csv"):
            raise SimulatorError(400, "requestType must be json or csv")
        if not _is_str(body.get("callbackUrl"), 2000):
            raise SimulatorError(400, "callbackUrl is required")
        fields = body.get("reportFields")
        if fields is not None and (not isinstance(fields, list)
                                   or not all(isinstance(f, str) for f in fields)):
            raise SimulatorError(400, "reportFields must be a list of field names")
        settlement = next((x for x in self.sim.settlements
                           if str(x.id) == settlement_id and x.account == account), None)
        if settlement is None:
            raise SimulatorError(404, "settlement not found")
        request_id = str(uuid.uuid4())
        self.spawn(self.deliver_report(settlement, str(body["callbackUrl"]),
                                       body["requestType"], fields, secret, algorithm))
        return signed_reply(200, {"requestId": request_id}, account, secret, algorithm, None)

    async def deliver_report(self, settlement: Settlement, url: str, kind: str,
                             fields: list[str] | None, secret: str, algorithm: str) -> None:
        state = self.sim
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
                if state.http_client is not None:
                    r = await state.http_client.post(url, content=body.encode(),
                                                     headers=headers)
                    status = r.status_code
                else:
                    status = (await self.outbound.request(
                        "POST", url, [*HEADERS, *headers.items()], body.encode())).status_code
                state.report_log.append((url, status))
                if status == 200:
                    return
            except (httpx.HTTPError, Unreachable, ValueError) as exc:
                log.warning("paytrail simulator: report to %s failed: %s", url, exc)
                state.report_log.append((url, repr(exc)))
            await asyncio.sleep(1.0 * (attempt + 1))


def create_simulator(accounts: dict[str, str], public_url: str, *,
                     http_client: httpx.AsyncClient | None = None) -> PaytrailSimulator:
    """`accounts` maps merchant id -> secret; `public_url` is where this app is served.
    `http_client` (optional) is used for server-to-server callbacks; without it they go
    through the simulator's own kept-alive connections."""
    return PaytrailSimulator(SimulatorState(dict(accounts), public_url.rstrip("/"),
                                            http_client))
