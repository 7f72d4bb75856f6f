"""A minimal HTTP/1.1 client for one origin: kept-alive connections on asyncio
protocols, a request's head written in one piece, the answer parsed as it arrives.

For the Paytrail client's few small JSON requests, where httpcore (with h11, anyio
and its pool's bookkeeping) cost more CPU than the rest of creating a payment. What
it does: http and https (certifi's CAs, as httpcore's default), Content-Length and
chunked answers, answers delimited by the connection's close, `Connection: close`,
1xx answers skipped; idle connections kept `keepalive_expiry` seconds and never
reused once the server closed them or sent something unasked; connecting retried
twice (after 0 and 0.5 s, as httpcore's `retries=2`); a GET sent once more, on a new
connection, when a kept-alive one closed before a byte of its answer came (the
server's idle close crossing the request), a POST never resent once written. Every
failure to get a whole answer is an `Unreachable`; a timeout bounds the connecting
and, separately, the wait for the whole answer.
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

# Refuse answers bigger than this (Paytrail's are a few kilobytes; a settlement
# report's list of 100 is tens of kilobytes).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_MAX_HEAD_BYTES = 64 * 1024
_CONNECT_DELAYS = (0.0, 0.5)  # before the second and the third attempt to connect
# What would end a request line or header early (request splitting).
_BAD_PATH = re.compile(r"[\x00-\x20\x7f]")
_BAD_NAME = re.compile(r"[\x00-\x20\x7f:]")
_BAD_VALUE = re.compile(r"[\x00\r\n]")


class Unreachable(Exception):
    """No whole answer: the connection could not be made, broke, timed out, or the
    answer was not HTTP/1.x."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes


class _Unanswered(Unreachable):
    """The connection closed before a byte of the answer came."""


class _Connection(asyncio.Protocol):
    """One connection; answers one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Answer] | None = None
        self._head_request = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport instances, but are ones)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self._waiter is None:  # nothing asked: the connection is not to be reused
            self.closed = True
            return
        self._try_parse(eof=False)

    def eof_received(self) -> bool | None:
        self.closed = True
        if self._waiter is not None:
            self._try_parse(eof=True)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception((Unreachable if self.buffer else _Unanswered)(
                f"the connection was closed: {exc}" if exc else "the connection was closed"))

    # --- the client's side --------------------------------------------------------------

    def usable(self, now: float, expiry: float) -> bool:
        return (not self.closed and not self.buffer and self.transport is not None
                and not self.transport.is_closing() and now - self.idle_since < expiry)

    def send(self, data: bytes, *, head_request: bool) -> asyncio.Future[Answer]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._head_request = head_request
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        self._waiter = None
        if self.transport is not None:
            self.transport.close()

    def _try_parse(self, *, eof: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = self._parse(eof)
        except Unreachable as exc:
            self._waiter = None
            self.closed = True
            waiter.set_exception(exc)
            return
        if answer is not None:
            self._waiter = None
            waiter.set_result(answer)

    def _parse(self, eof: bool) -> Answer | None:
        """The answer once the buffer holds all of it (taken out of the buffer)."""
        buf = self.buffer
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD_BYTES:
                    raise Unreachable("the answer's head is too long")
                if eof:
                    raise (Unreachable if buf else _Unanswered)(
                        "the server closed the connection before answering")
                return None
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise Unreachable(f"not an HTTP/1 answer: {lines[0][:80]!r}")
            status = int(parts[1])
            if 100 <= status < 200 and status != 101:  # informational: the answer follows
                del buf[:end + 4]
                continue
            break
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise Unreachable(f"a malformed header line: {line[:80]!r}")
            key = name.strip().lower()
            value = value.strip()
            # Repeated headers joined as one value (as the Paytrail client reads them).
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        start = end + 4
        keep = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if self._head_request or status in (204, 304):
            content, used = b"", start
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            got = _dechunk(buf, start)
            if got is None:
                if eof:
                    raise Unreachable("the server closed the connection mid-answer")
                return None
            content, used = got
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise Unreachable("a malformed Content-Length") from None
            if length < 0 or length > MAX_ANSWER_BYTES:
                raise Unreachable(f"an answer of {length} bytes")
            if len(buf) - start < length:
                if eof:
                    raise Unreachable("the server closed the connection mid-answer")
                return None
            content, used = bytes(buf[start:start + length]), start + length
        else:  # delimited by the connection's close
            if len(buf) - start > MAX_ANSWER_BYTES:
                raise Unreachable("the answer is too big")
            if not eof:
                return None
            content, used, keep = bytes(buf[start:]), len(buf), False
        del buf[:used]
        if not keep or buf:  # more than was asked for: not reused either
            self.closed = True
        return Answer(status, headers, content)


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """A chunked body from `pos`: (content, where it ends), or None while incomplete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise Unreachable("a malformed chunk size") from None
        if size < 0 or len(out) + size > MAX_ANSWER_BYTES:
            raise Unreachable("the answer is too big")
        pos = eol + 2
        if size == 0:
            while True:  # trailers, up to the empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos:pos + size]
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise Unreachable("a malformed chunk")
        pos += size + 2


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
        self._expiry = keepalive_expiry
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._ssl: ssl.SSLContext | None = None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        for attempt in range(len(_CONNECT_DELAYS) + 1):
            try:
                async with asyncio.timeout(self._timeout):
                    _, conn = await loop.create_connection(
                        _Connection, self._host, self._port,
                        ssl=self._context() if self._tls else None,
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
        if conn.closed:
            conn.close()
        else:
            conn.idle_since = time.monotonic()
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                conn.close()
        return answer

    async def _exchange(self, conn: _Connection, data: bytes, method: str) -> Answer:
        try:
            async with asyncio.timeout(self._timeout):
                return await conn.send(data, head_request=method == "HEAD")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, TimeoutError):
                raise Unreachable(f"no answer from {self._host_header} in "
                                  f"{self._timeout:g} s") from exc
            raise
