"""A minimal HTTP/1.1 client: kept-alive connections per origin on asyncio protocols,
a request's head written in one piece, the answer parsed by httptools (llhttp, the
parser uvicorn serves with) as it arrives.

Used by the Paytrail client (`Http1Client`, one origin) and by the Paytrail
simulator for its callbacks and settlement reports (`Http1Pool`, any origin), where
httpx (and even httpcore under it) cost more CPU than the rest of the work (about
1 ms a request against about a tenth here; docs/performance.md). What it does: http
and https (certifi's CAs, as httpcore's default); Content-Length, chunked and
until-close answers; `Connection: close` and HTTP/1.0 keep-alive as llhttp reads
them; 1xx answers skipped; idle connections kept `keepalive_expiry` seconds, the most
recently used first, and never reused once the server closed them or sent something
unasked; connecting retried twice (after 0 and 0.5 s, as httpcore's `retries=2`); a
GET sent once more, on a new connection, when a kept-alive one closed before a byte
of its answer came (the server's idle close crossing the request), a POST never
resent once written. Every failure to get a whole answer is an `Unreachable`; a
timeout bounds the connecting and, separately, the wait for the whole answer. A path
or header that would not stay one request line or header is a ValueError.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import certifi
from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpResponseParser,
)

# Refuse answers bigger than this (Paytrail's are a few kilobytes; a settlement
# report's list of 100 is tens of kilobytes).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
_CONNECT_DELAYS = (0.0, 0.5)  # before the second and the third attempt to connect
# What would end a request line or header early (request splitting).
_BAD_PATH = re.compile(r"[\x00-\x20\x7f]")
_BAD_NAME = re.compile(r"[\x00-\x20\x7f:]")
_BAD_VALUE = re.compile(r"[\x00\r\n]")
_ssl_context: ssl.SSLContext | None = None


class Unreachable(Exception):
    """No whole answer: the connection could not be made, broke, timed out, or the
    answer was not HTTP/1.x."""


class _Unanswered(Unreachable):
    """The connection closed before a byte of the answer came."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]  # names in lower case; repeated ones joined with ", "
    content: bytes


class _Connection(asyncio.Protocol):
    """One connection; answers one request at a time. httptools calls the on_*
    methods from `feed_data`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head_request = False
        self._received = 0  # bytes of the current answer so far
        self._head_size = 0  # of its header lines
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._in_body = False  # the head of the (final) answer is parsed
        self._answer: Answer | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport instances, but work as ones)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self.closed = True  # nothing asked: the connection is not to be reused
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
            if not self._in_body and self._received > MAX_HEAD_BYTES:
                raise Unreachable("the answer's head is too long")
        except (HttpParserError, HttpParserUpgrade, Unreachable) as exc:
            self.closed = True
            if self._answer is None:  # (else: bytes after the answer; it stands)
                self._fail(exc)
                return
        self._deliver()

    def eof_received(self) -> bool | None:
        self._ended(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def _ended(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None:
            return
        why = f" ({exc})" if exc else ""
        if not self._received:
            self._fail(_Unanswered(f"the server closed the connection before answering{why}"))
        elif not self._in_body:
            self._fail(Unreachable(f"the server closed the connection before answering{why}"))
        elif (exc is not None or "content-length" in self._headers
              or "chunked" in self._headers.get("transfer-encoding", "").lower()):
            self._fail(Unreachable(f"the server closed the connection mid-answer{why}"))
        else:  # an answer delimited by the connection's close
            self.on_message_complete()
            self._deliver()

    # --- httptools' callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        if self._answer is not None:  # more than was asked for: not reused
            self.closed = True
            return
        if self._head_size > MAX_HEAD_BYTES:
            raise Unreachable("the answer's head is too long")
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                raise Unreachable("the server switched protocols")
            self._headers, self._head_size = {}, 0  # informational: the answer follows
            return
        self._in_body = True
        if self._head_request:  # llhttp would wait for a body: done, and not reused
            self.closed = True
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_ANSWER_BYTES:
            raise Unreachable("the answer is too big")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._in_body or self._answer is not None:
            return  # a 1xx answer's end, or the rest of a HEAD answer
        if not self._parser.should_keep_alive():
            self.closed = True
        self._answer = Answer(self._parser.get_status_code(), self._headers,
                              b"".join(self._body))
        self._headers, self._body = {}, []

    # --- the client's side --------------------------------------------------------------

    def usable(self, now: float, expiry: float) -> bool:
        return (not self.closed and self.transport is not None
                and not self.transport.is_closing() and now - self.idle_since < expiry)

    def send(self, data: bytes, *, head_request: bool, timeout: float,
             late: str) -> asyncio.Future[Answer]:
        """The answer's future; it fails with Unreachable(late) after `timeout` s."""
        assert self.transport is not None and self._waiter is None
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._timer = loop.call_later(timeout, self._late, late)
        self._head_request = head_request
        self._received = self._size = self._head_size = 0
        self._headers, self._body, self._in_body, self._answer = {}, [], False, None
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        self.closed = True
        self._waiter = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()

    def _late(self, message: str) -> None:
        self._timer = None
        self._fail(Unreachable(message))
        self.close()

    def _deliver(self) -> None:
        waiter = self._waiter
        if waiter is not None and self._answer is not None:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not waiter.done():
                waiter.set_result(self._answer)

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if isinstance(exc, HttpParserCallbackError) and isinstance(exc.__context__,
                                                                   Unreachable):
            exc = exc.__context__
        if not isinstance(exc, Unreachable):  # llhttp's refusal
            exc = Unreachable(f"not an HTTP/1 answer: {exc!r}")
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


def _context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context(cafile=certifi.where())
    return _ssl_context


class Http1Client:
    """Requests to one origin (`base_url`'s scheme, host and port; its path prefixes
    every request's path)."""

    def __init__(self, base_url: str, *, timeout: float, keepalive_expiry: float = 30.0,
                 max_idle: int = 10) -> None:
        url = urlsplit(base_url)
        # A URL it cannot use fails each request, as an unreachable server does.
        self._invalid = "" if url.scheme in ("http", "https") and url.hostname else (
            f"not an http(s) URL: {base_url!r}")
        self._tls = url.scheme == "https"
        self._host = url.hostname or ""
        try:
            self._port = url.port or (443 if self._tls else 80)
        except ValueError:
            self._invalid, self._port = f"a bad port in {base_url!r}", 0
        self._prefix = url.path.rstrip("/")
        default = 443 if self._tls else 80
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if self._port == default else f"{host}:{self._port}"
        self._timeout = timeout
        self._late = f"no answer from {self._host_header} in {timeout:g} s"
        self._expiry = keepalive_expiry
        self._max_idle = max_idle
        self._idle: list[_Connection] = []

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        for attempt in range(len(_CONNECT_DELAYS) + 1):
            try:
                async with asyncio.timeout(self._timeout):
                    _, conn = await loop.create_connection(
                        _Connection, self._host, self._port,
                        ssl=_context() if self._tls else None,
                        server_hostname=self._host if self._tls else None)
                return conn
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                if attempt == len(_CONNECT_DELAYS):
                    raise Unreachable(f"cannot connect to {self._host_header}: "
                                      f"{exc or type(exc).__name__}") from exc
                await asyncio.sleep(_CONNECT_DELAYS[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now, self._expiry):
                return conn
            conn.close()
        return None

    async def request(self, method: str, path: str, headers: Iterable[tuple[str, str]],
                      body: bytes | None = None) -> Answer:
        """Send the request and wait for its whole answer (Unreachable otherwise).
        ValueError for a path or header that would not stay one request line or header."""
        if self._invalid:
            raise Unreachable(self._invalid)
        if _BAD_PATH.search(path):
            raise ValueError(f"a request path with spaces or controls: {path!r}")
        for k, v in headers:
            if _BAD_NAME.search(k) or _BAD_VALUE.search(v) or not k:
                raise ValueError(f"a malformed request header {k!r}")
        head = [f"{method} {self._prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}\r\n")
        head.append("\r\n")
        data = "".join(head).encode("utf-8")
        if body:
            data += body
        reused = self._idle_connection()
        conn = reused or await self._connect()
        try:
            answer = await self._exchange(conn, data, method)
        except _Unanswered:
            # A kept-alive connection the server closed as the request went out: only
            # a request that changes nothing is sent again (a POST may have been read).
            if reused is None or method not in ("GET", "HEAD"):
                raise
            conn = await self._connect()
            answer = await self._exchange(conn, data, method)
        if conn.closed or len(self._idle) >= self._max_idle:
            conn.close()
        else:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        return answer

    async def _exchange(self, conn: _Connection, data: bytes, method: str) -> Answer:
        try:
            return await conn.send(data, head_request=method == "HEAD",
                                   timeout=self._timeout, late=self._late)
        except BaseException:  # (cancelled too: the answer would come to no one)
            conn.close()
            raise


class Http1Pool:
    """Requests to any origin, by absolute URL: one `Http1Client` per origin."""

    def __init__(self, *, timeout: float, keepalive_expiry: float = 30.0,
                 max_idle: int = 10) -> None:
        self._timeout = timeout
        self._expiry = keepalive_expiry
        self._max_idle = max_idle
        self._clients: dict[str, Http1Client] = {}

    async def request(self, method: str, url: str, headers: Iterable[tuple[str, str]] = (),
                      body: bytes | None = None) -> Answer:
        """As `Http1Client.request`; a URL it cannot use is Unreachable."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        client = self._clients.get(origin)
        if client is None:
            client = self._clients[origin] = Http1Client(
                origin, timeout=self._timeout, keepalive_expiry=self._expiry,
                max_idle=self._max_idle)
        return await client.request(method, path, headers, body)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
