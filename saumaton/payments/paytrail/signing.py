"""Paytrail's HMAC signatures (Payment API, `checkout-*` headers).

The string to sign is every `checkout-*` key (lower-case, sorted) as `key:value`
lines, then the exact body (empty for GET and for redirect/callback query
strings), joined with LF. The same rule signs our requests and checks Paytrail's
responses, redirects and callbacks; parameters are never picked by a fixed list,
since Paytrail may add new ones.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def signing_string(params: Mapping[str, str], body: str) -> str:
    lines = sorted((k.lower(), v) for k, v in params.items()
                   if k.lower().startswith("checkout-"))
    return "\n".join([*(f"{k}:{v}" for k, v in lines), body])


def sign(params: Mapping[str, str], body: str, secret: str,
         algorithm: str = "sha256") -> str:
    """Lower-case hex HMAC of the `checkout-*` params and `body`."""
    digest = ALGORITHMS.get(algorithm)
    if digest is None:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    return hmac.new(secret.encode(), signing_string(params, body).encode(),
                    digest).hexdigest()


def verify(params: Mapping[str, str], body: str, signature: str | None,
           secret: str) -> bool:
    """True when `signature` is Paytrail's signature of `params` + `body`, using the
    algorithm the params name. Constant-time; any malformed input is simply False."""
    if not signature:
        return False
    lowered = {k.lower(): v for k, v in params.items()}
    algorithm = lowered.get("checkout-algorithm", "")
    if algorithm not in ALGORITHMS:
        return False
    expected = sign(lowered, body, secret, algorithm)
    # Bytes: compare_digest refuses non-ASCII str, and a forged value may contain any.
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def request_headers(account: str, secret: str, method: str, body: str = "", *,
                    transaction_id: str | None = None, nonce: str | None = None,
                    timestamp: datetime | None = None,
                    algorithm: str = "sha256") -> dict[str, str]:
    """Headers of a signed request to the Payment API (send `body` byte for byte)."""
    ts = (timestamp or datetime.now(UTC)).astimezone(UTC)
    headers = {
        "checkout-account": account,
        "checkout-algorithm": algorithm,
        "checkout-method": method.upper(),
        "checkout-nonce": nonce or uuid.uuid4().hex,
        "checkout-timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
    }
    if transaction_id:
        headers["checkout-transaction-id"] = transaction_id
    headers["signature"] = sign(headers, body, secret, algorithm)
    if body:
        headers["content-type"] = "application/json; charset=utf-8"
    return headers
