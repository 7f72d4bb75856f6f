"""A small client for Paytrail's Payment API: signed requests, verified answers.

The same code talks to https://services.paytrail.com and to the local simulator;
only `base_url` differs. Every response's signature is checked before its body is
trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from saumaton.core.errors import DomainError
from saumaton.payments.paytrail.http1 import Http1Client, Unreachable
from saumaton.payments.paytrail.signing import request_headers, verify

PAYTRAIL_URL = "https://services.paytrail.com"


class PaytrailError(DomainError):
    status = 502
    code = "paytrail_error"


@dataclass(frozen=True)
class PaytrailConfig:
    account: str
    secret: str
    base_url: str = PAYTRAIL_URL
    platform_name: str = "saumaton"


TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class _Answer:
    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class PaytrailClient:
    """Given an httpx client (tests, the in-process simulator), requests go through
    it; otherwise through kept-alive connections of its own (`http1.Http1Client`):
    httpx, and even httpcore under it, cost more CPU than the rest of a payment's
    creation (docs/performance.md)."""

    def __init__(self, config: PaytrailConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http
        self._pool = None if http is not None else Http1Client(
            config.base_url, timeout=TIMEOUT_SECONDS, keepalive_expiry=30.0)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._pool is not None:
            await self._pool.aclose()

    async def _send(self, method: str, path: str, raw: bytes | None,
                    headers: dict[str, str]) -> _Answer:
        if self._http is not None:
            r = await self._http.request(method, path, content=raw, headers=headers)
            return _Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()},
                           r.content)
        assert self._pool is not None
        # (Host and Content-Length are added; no Accept-Encoding: bodies come plain)
        got = await self._pool.request(method, path, headers.items(), raw)
        return _Answer(got.status_code, got.headers, got.content)

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                    transaction_id: str | None = None) -> Any:
        # Serialise once; sign and send exactly these bytes.
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False) if body else ""
        headers = request_headers(self.config.account, self.config.secret, method, raw,
                                  transaction_id=transaction_id)
        headers["platform-name"] = self.config.platform_name
        try:
            r = await self._send(method, path, raw.encode() or None, headers)
        except (httpx.HTTPError, Unreachable) as exc:
            raise PaytrailError(f"Paytrail is unreachable: {exc}",
                                code="paytrail_unreachable") from exc
        if not verify(r.headers, r.text, r.headers.get("signature"), self.config.secret):
            raise PaytrailError(f"Paytrail's answer to {method} {path} is not signed "
                                f"correctly (HTTP {r.status_code})",
                                code="paytrail_bad_signature")
        data = json.loads(r.content) if r.content else None
        if r.status_code >= 400:
            message = data.get("message") if isinstance(data, dict) else r.text
            raise PaytrailError(f"Paytrail refused {method} {path}: {message}",
                                code="paytrail_refused",
                                extra={"paytrail_status": r.status_code})
        return data

    async def create_payment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        data = await self._call("POST", "/payments", body)
        if not isinstance(data, dict) or "transactionId" not in data:
            raise PaytrailError("Paytrail's payment answer has no transactionId")
        return data

    async def get_payment(self, transaction_id: str) -> dict[str, Any]:
        data = await self._call("GET", f"/payments/{quote(transaction_id, safe='')}",
                                transaction_id=transaction_id)
        if not isinstance(data, dict):
            raise PaytrailError("Paytrail's payment status is not an object")
        return data

    async def refund(self, transaction_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        data = await self._call("POST", f"/payments/{quote(transaction_id, safe='')}/refund",
                                body,
                                transaction_id=transaction_id)
        if not isinstance(data, dict):
            raise PaytrailError("Paytrail's refund answer is not an object")
        return data

    async def list_settlements(self, start: date | None = None, end: date | None = None, *,
                               bank_reference: str | None = None,
                               limit: int = 100) -> list[dict[str, Any]]:
        """`GET /settlements`: the settlements (id, createdAt, settledAt,
        settlementReference) of the period, newest first, at most `limit` (≤ 100)."""
        query: dict[str, str] = {"limit": str(min(max(limit, 1), 100))}
        if start is not None:
            query["startDate"] = start.isoformat()
        if end is not None:
            query["endDate"] = end.isoformat()
        if bank_reference:
            query["bankReference"] = bank_reference[:20]
        data = await self._call("GET", f"/settlements?{urlencode(query)}")
        if not isinstance(data, list) or not all(isinstance(x, dict) and "id" in x
                                                 for x in data):
            raise PaytrailError("Paytrail's settlement list is not a list of settlements")
        return data

    async def request_settlement_report(self, settlement_id: str, body: Mapping[str, Any]
                                        ) -> dict[str, Any]:
        """`POST /settlements/{id}/payments/report`: Paytrail answers with a `requestId`
        and later POSTs the report to `body["callbackUrl"]`."""
        data = await self._call("POST", f"/settlements/{quote(settlement_id, safe='')}"
                                        "/payments/report", body)
        if not isinstance(data, dict) or "requestId" not in data:
            raise PaytrailError("Paytrail's report answer has no requestId")
        return data

    def verify_return(self, params: Mapping[str, str]) -> bool:
        """A redirect's or callback's query parameters carry Paytrail's signature
        for this merchant."""
        if params.get("checkout-account") != self.config.account:
            return False
        return verify(params, "", params.get("signature"), self.config.secret)
