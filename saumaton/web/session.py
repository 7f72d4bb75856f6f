"""The signed session cookie: Starlette's `SessionMiddleware`, the same cookie signed the
same way, the same Set-Cookie and Vary, with one difference: a cookie it has verified
is remembered (its signed time and its decoded text), so the browser's next request
with the same cookie costs no HMAC and no base64. Its age is checked against `max_age`
on every request, as the signer does; the session itself is decoded from the JSON text
afresh each time (a request may change it).

The cookie is still signed only when the session changed (Starlette's rule): a page
that only reads the session sends no Set-Cookie.
"""

from __future__ import annotations

import json
import time
from base64 import b64decode, b64encode
from typing import Literal

import itsdangerous
from itsdangerous.exc import BadSignature
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import Session
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Verified cookies: the cookie's value -> (signed at, unix seconds; the session's JSON).
_VERIFIED_MAX = 10_000


class SessionMiddleware:
    def __init__(self, app: ASGIApp, secret_key: str, session_cookie: str = "session",
                 max_age: int | None = 14 * 24 * 60 * 60, path: str = "/",
                 same_site: Literal["lax", "strict", "none"] = "lax") -> None:
        self.app = app
        self.signer = itsdangerous.TimestampSigner(str(secret_key))
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.path = path
        self.security_flags = "httponly; samesite=" + same_site
        self.verified: dict[str, tuple[int, bytes]] = {}

    def _cookie(self, scope: Scope) -> str | None:
        """The session cookie's value, read as Starlette's `request.cookies` reads it
        (every Cookie header, a later one's value winning)."""
        found = None
        for key, value in scope["headers"]:
            if key == b"cookie":
                found = cookie_parser(value.decode("latin-1")).get(self.session_cookie, found)
        return found

    def _decoded(self, cookie: str) -> bytes | None:
        """The session's JSON text if the cookie's signature checks and it is not older
        than `max_age` (nor signed in the future), else None."""
        hit = self.verified.get(cookie)
        if hit is None:
            try:
                value, signed = self.signer.unsign(cookie.encode("utf-8"),
                                                   return_timestamp=True)
            except BadSignature:
                return None
            hit = (int(signed.timestamp()), b64decode(value))
            if len(self.verified) >= _VERIFIED_MAX:
                self.verified.clear()
            self.verified[cookie] = hit
        if self.max_age is not None:
            age = int(time.time()) - hit[0]
            if age > self.max_age or age < 0:
                return None
        return hit[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # pragma: no cover
            await self.app(scope, receive, send)
            return

        initial_session_was_empty = True
        cookie = self._cookie(scope)
        data = self._decoded(cookie) if cookie is not None else None
        if data is not None:
            scope["session"] = Session(json.loads(data))
            initial_session_was_empty = False
        else:
            scope["session"] = Session()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                session: Session = scope["session"]
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if session.accessed:
                    headers.add_vary_header("Cookie")
                if session.modified and session:
                    # We have session data to persist.
                    signed = self.signer.sign(b64encode(json.dumps(session).encode("utf-8")))
                    max_age = f"Max-Age={self.max_age}; " if self.max_age is not None else ""
                    headers.append("Set-Cookie", f"{self.session_cookie}={signed.decode()}; "
                                   f"path={self.path}; {max_age}{self.security_flags}")
                elif session.modified and not initial_session_was_empty:
                    # The session has been cleared.
                    headers.append("Set-Cookie", f"{self.session_cookie}=null; "
                                   f"path={self.path}; expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                                   f"{self.security_flags}")
            await send(message)

        await self.app(scope, receive, send_wrapper)
