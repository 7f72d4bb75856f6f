"""Transport security at the edge of the app (docs/security.md).

Two pure ASGI middlewares:

- `TrustedProxyMiddleware` (outermost): when the socket's peer is one of
  Settings.trusted_proxies, the request's scheme and client address come from
  `X-Forwarded-Proto` / `X-Forwarded-For`; from anyone else those headers are ignored,
  so a client cannot claim another address (login throttling counts per address) or
  pretend to be on HTTPS.
- `SecurityHeadersMiddleware`: every response gets the security headers
  (Content-Security-Policy, Referrer-Policy, nosniff, X-Frame-Options,
  Permissions-Policy, and Strict-Transport-Security over HTTPS), and over HTTPS every
  cookie the app sets gets `Secure`, whoever set it (the staff session, the cart, the
  chat, the language, consent...). A route may send its own Content-Security-Policy
  (the Swagger UI page does); it is kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """Settings.trusted_proxies: comma-separated IPs or networks (CIDR). Raises
    ValueError naming a bad entry."""
    nets: list[Network] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"SAUMATON_TRUSTED_PROXIES: {part!r} is not an IP address "
                             "or network") from exc
    return nets


def _is_in(host: str, nets: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in nets)


class TrustedProxyMiddleware:
    """Believe X-Forwarded-Proto/-For only from the configured proxies."""

    def __init__(self, app: ASGIApp, trusted_proxies: str) -> None:
        self.app = app
        self.nets = parse_networks(trusted_proxies)

    def client_of(self, peer: str, forwarded_for: str) -> str:
        """The client: walking X-Forwarded-For from the right (the nearest proxy's
        entry last), the first address that is not a trusted proxy. Entries left of it
        were written by the client itself and prove nothing."""
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not _is_in(hop, self.nets):
                return hop
        return hops[0] if hops else peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.nets:
            client = scope.get("client")
            if client and _is_in(client[0], self.nets):
                headers = {k.lower(): v for k, v in scope.get("headers", [])}
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1")
                # The nearest proxy's value is the last one when several were appended.
                proto = proto.split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope = dict(scope)
                    if scope["type"] == "websocket":
                        scope["scheme"] = "wss" if proto == "https" else "ws"
                    else:
                        scope["scheme"] = proto
                forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                if forwarded:
                    scope = dict(scope)
                    scope["client"] = (self.client_of(client[0], forwarded), 0)
        await self.app(scope, receive, send)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    """The site's policy: scripts and styles only from our own files (no inline code);
    forms may post to us and to the payment provider (`form_targets`: URLs whose
    origins are allowed, e.g. Paytrail's)."""
    targets = sorted({o for o in (_origin(u) for u in form_targets) if o})
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action " + " ".join(["'self'", *targets]),
        "object-src 'none'",
    ])


# The till's barcode scanning uses a keyboard-wedge scanner, not the camera
# (static/js/stock-scan.js and static/pos read key events): nothing needs the camera.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.fixed = [
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"permissions-policy", PERMISSIONS_POLICY.encode()),
        ]
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = []
                present: set[bytes] = set()
                for name, value in message.get("headers", []):
                    lname = name.lower()
                    present.add(lname)
                    if https and lname == b"set-cookie" and not _has_secure(value):
                        value = value + b"; Secure"
                    headers.append((name, value))
                for name, value in self.fixed:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", self.csp))
                if https and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", HSTS.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _has_secure(cookie: bytes) -> bool:
    return any(p.strip().lower() == b"secure" for p in cookie.split(b";")[1:])
