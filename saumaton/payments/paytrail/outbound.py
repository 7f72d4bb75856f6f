"""A lean HTTP/1.1 client for the Paytrail simulator's server-to-server calls.

The simulator calls the shop back once per payment (and POSTs settlement reports).
Under load that is one request per checkout; httpx costs about 1 ms of CPU each
(most of it its pool looking at every connection it keeps), this about a tenth. It
keeps connections alive per origin (the most recently used first), sends one request
at a time on each, and reads Content-Length, chunked or until-close bodies. A kept
connection the server closed meanwhile is noticed before use when it can be; when it
is not (the close crossed our request), the request goes once more on a new
connection, as it reached nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit, urlunsplit

USER_AGENT = "Saumaton Paytrail simulator"
# Kept connections are given up before the other end would close them (uvicorn's
# keep-alive timeout is 5 s).
IDLE_S = 4.0
MAX_IDLE = 64


class OutboundError(Exception):
    """The request did not get an HTTP answer."""


class _Stale(Exception):
    """A kept connection was closed before any of the answer came."""


# What quote_plus leaves as it is (and so urlencode): the signed parameters' names and
# nearly always their values (digits, hex, UUIDs, "ok", a provider's id).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_NOT_TARGET = re.compile(r"[\x00-\x20\x7f]")


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


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Outbound:
    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, str, int], list[tuple[float, Conn]]] = {}

    async def request(self, method: str, url: str, headers: Mapping[str, str] | None = None,
                      body: bytes = b"") -> int:
        """Send the request, read the whole answer; return its HTTP status."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise OutboundError(f"not an http(s) URL: {url!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if _NOT_TARGET.search(target):
            raise OutboundError(f"not a valid request target: {target!r}")
        key = (scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}",
                 f"User-Agent: {USER_AGENT}", "Accept: */*"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method not in ("GET", "HEAD"):
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        try:
            async with asyncio.timeout(self.timeout):
                conn = self._take(key)
                if conn is not None:
                    try:
                        return await self._exchange(key, conn, raw, method)
                    except _Stale:
                        pass  # closed by the other end while kept: a new connection
                return await self._exchange(key, await self._open(key), raw, method)
        except _Stale:
            raise OutboundError("connection closed without an answer") from None
        except TimeoutError:
            raise OutboundError(f"no answer in {self.timeout} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            raise OutboundError(f"{type(exc).__name__}: {exc}") from exc

    def _take(self, key: tuple[str, str, int]) -> Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            since, (reader, writer) = idle.pop()
            if now - since < IDLE_S and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _open(self, key: tuple[str, str, int]) -> Conn:
        scheme, host, port = key
        return await asyncio.open_connection(host, port, ssl=scheme == "https")

    def _keep(self, key: tuple[str, str, int], conn: Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_IDLE:
            conn[1].close()
        else:
            idle.append((time.monotonic(), conn))

    async def _exchange(self, key: tuple[str, str, int], conn: Conn, raw: bytes,
                        method: str) -> int:
        reader, writer = conn
        keep = done = False
        try:
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Stale from None
                raise
            except (ConnectionResetError, BrokenPipeError):
                raise _Stale from None
            first, *rest = head.decode("latin-1").split("\r\n")
            version, _, code = first.partition(" ")
            if not version.startswith("HTTP/1.") or len(code) < 3:
                raise ValueError(f"bad status line {first!r}")
            status = int(code[:3])
            fields: dict[str, str] = {}
            for line in rest:
                if line:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            connection = fields.get("connection", "").lower()
            keep = ("close" not in connection if version == "HTTP/1.1"
                    else "keep-alive" in connection)
            if status < 200:
                keep = False  # never asked for (no Expect): an answer to no request
            elif method == "HEAD" or status in (204, 304):
                pass
            elif "chunked" in fields.get("transfer-encoding", "").lower():
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass  # trailers
                        break
                    await reader.readexactly(size + 2)
            elif "content-length" in fields:
                await reader.readexactly(int(fields["content-length"]))
            else:
                await reader.read()
                keep = False
            done = True
            return status
        finally:
            if keep and done:
                self._keep(key, conn)
            else:
                writer.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for _, (_, writer) in conns:
                writer.close()
