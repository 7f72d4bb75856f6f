"""Recording first-party analytics events from web requests.

`track(request, kind, ...)` is what pages call: synchronous, never raises, never
waits for the database - it hands the event to the process's buffer
(`app.state.analytics`, see saumaton/analytics/buffer.py). The visitor id cookie
is read only if the shopper allowed analytics (docs/analytics.md).

Visits are recorded by `VisitMiddleware` on any shop page, see `track_visit`.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saumaton.analytics import KINDS
from saumaton.analytics.device import device_of
from saumaton.core.clock import utcnow
from saumaton.web.shopper import current_customer_id

log = logging.getLogger(__name__)

CONSENT_COOKIE = "saumaton_consent"
VISITOR_COOKIE = "saumaton_vid"
CONSENT_ANALYTICS = "analytics"
CONSENT_NECESSARY = "necessary"
VISIT_FLAG = "analytics_visit"
_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_PATH_MAX = 300
_DATA_MAX = 2000  # characters of JSON; an event's data is a few small facts


def consent_of(request: Request) -> str | None:
    """The shopper's recorded choice: "analytics", "necessary" or None (not asked yet)."""
    value = request.cookies.get(CONSENT_COOKIE)
    return value if value in (CONSENT_ANALYTICS, CONSENT_NECESSARY) else None


def visitor_cookie(request: Request) -> str | None:
    """The visitor id cookie if well formed, whatever the consent (to renew or forget it)."""
    vid = request.cookies.get(VISITOR_COOKIE)
    return vid if vid is not None and _VISITOR_ID.fullmatch(vid) else None


def visitor_id(request: Request) -> str | None:
    """The visitor id to record: only if analytics is allowed."""
    return visitor_cookie(request) if consent_of(request) == CONSENT_ANALYTICS else None


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    number = int(value)
    return number if -(2**63) < number < 2**63 else None


def _session_customer(request: Request) -> int | None:
    """The signed-in shopper, as ShopperMiddleware resolved the server-side session."""
    return current_customer_id(request)


_PLAIN = (str, int)  # JSON as they are (exactly these types: not bool, not a subclass)


def _data(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise TypeError("data must be a dict")
    # A few plain facts (what the pages send): the same dict the round trip gives, no
    # JSON work. A JSON character takes at most 6 characters of text (a backslash-u escape).
    if len(value) <= 8 and all(type(k) is str and type(v) in _PLAIN and (
            type(v) is not str or len(v) <= 100) for k, v in value.items()) and (
            6 * sum(len(k) + len(str(v)) + 4 for k, v in value.items()) < _DATA_MAX):
        return dict(value)
    # Round-trip now: a value the database cannot store must fail here, not in a batch.
    text = json.dumps(value, default=str, separators=(",", ":"))
    if len(text) > _DATA_MAX:
        raise ValueError("analytics data too large")
    data: dict[str, Any] = json.loads(text)
    return data


# The device of a User-Agent header: a browser sends the same one on every request.
_device = lru_cache(maxsize=1024)(device_of)


def _path(request: Request) -> str:
    """`request.url.path` without building the URL (the same text: the scope's path,
    '?', '#' and '\\' escaped as Starlette's URL escapes them)."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def track(request: Request, kind: str, **fields: Any) -> None:
    """Record one funnel event (kind in KINDS). Fields: variant_id, order_id, data
    (a small JSON-able dict), customer_id (defaults to the session's customer).
    Synchronous and never raises: analytics must not break or slow a page."""
    try:
        if kind not in KINDS:
            raise ValueError(f"unknown analytics event kind {kind!r}")
        unknown = set(fields) - {"variant_id", "order_id", "data", "customer_id"}
        if unknown:
            raise ValueError(f"unknown analytics fields {sorted(unknown)}")
        buffer = getattr(request.app.state, "analytics", None)
        if buffer is None:  # app started without its lifespan (some tests)
            return
        customer = fields.get("customer_id")
        buffer.add({
            "at": utcnow(),
            "kind": kind,
            "channel": "web",
            "visitor_id": visitor_id(request),
            "customer_id": (_int_or_none(customer) if customer is not None
                            else _session_customer(request)),
            "order_id": _int_or_none(fields.get("order_id")),
            "variant_id": _int_or_none(fields.get("variant_id")),
            "path": _path(request)[:_PATH_MAX],
            "data": _data(fields.get("data")),
            "device": _device(request.headers.get("user-agent")),
        })
    except Exception:  # a bug in a caller must show in the log, not to the shopper
        log.exception("analytics event %r not recorded", kind)


def _own_hosts(request: Request) -> set[str]:
    hosts = {request.headers.get("host", "").lower()}
    settings = getattr(request.app.state, "settings", None)
    if settings is not None:
        hosts.add(urlsplit(settings.resolved_public_url()).netloc.lower())
    return hosts - {""}


def is_arrival(request: Request) -> bool:
    """The page was not reached by a link or form inside the shop (no Referer, or one
    from another site). The Referer is only looked at here, never stored."""
    referer = request.headers.get("referer")
    if not referer:
        return True
    return urlsplit(referer).netloc.lower() not in _own_hosts(request)


def track_visit(request: Request) -> bool:
    """Record a visit, at most once per request; True if this call recorded it.

    With analytics consent: the first shop page of the browser session (a flag in
    the session). Without: a page the shopper arrives at from outside the shop -
    nothing may be stored on the device for analytics, so there is no flag and a
    second arrival in the same session counts again (docs/analytics.md)."""
    try:
        if getattr(request.state, "analytics_visit", False):
            return False
        request.state.analytics_visit = True
        if consent_of(request) == CONSENT_ANALYTICS and "session" in request.scope:
            if request.session.get(VISIT_FLAG):
                return False
            request.session[VISIT_FLAG] = True
        elif not is_arrival(request):
            return False
    except Exception:
        log.exception("analytics visit not recorded")
        return False
    track(request, "visit")
    return True


def mark_visited(request: Request, consented: bool) -> None:
    """On a consent choice: the visit of this session was already counted (anonymously,
    on arrival), so with consent set the flag now; without, keep no flag."""
    if "session" not in request.scope:
        return
    if consented:
        request.session[VISIT_FLAG] = True
    else:
        request.session.pop(VISIT_FLAG, None)


# Not where a visit begins: the shopper comes back from the payment provider here.
_NOT_ENTRIES = ("/shop/checkout/",)


def _is_page_load(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path: str = scope["path"]
    if not (path == "/shop" or path.startswith("/shop/")) or path.startswith(_NOT_ENTRIES):
        return False
    headers = dict(scope["headers"])
    # A full page in a browser, not an htmx fragment, a feed or an API client.
    return b"text/html" in headers.get(b"accept", b"") and b"hx-request" not in headers


class VisitMiddleware:
    """Offers every successful (status < 400) shop page load to `track_visit`.

    Must sit inside SessionMiddleware (added before it), so that the session flag
    set when the response starts is saved with the session cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_page_load(scope):
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                track_visit(Request(scope))
            await send(message)

        await self.app(scope, receive, send_wrapper)
