"""A PostgreSQL wire-protocol proxy that counts database round trips of a real server.

A server process pointed at it (its database URL naming the proxy's port) talks to
PostgreSQL exactly as before; the proxy forwards every byte both ways and counts, on
the way in, the frontend messages that end a round trip: Sync ('S', the end of an
extended-protocol exchange: prepare, bind+execute, close) and Query ('Q', a simple
query such as BEGIN or COMMIT sent as text). Each one makes the client wait for
ReadyForQuery, so their number is the number of times the server waited on
PostgreSQL. It also learns each connection's backend process id from BackendKeyData
('K'), so that the CPU of exactly those PostgreSQL backends can be read from /proc.

TLS is refused (an SSLRequest or GSSENCRequest is answered 'N'): a client in the
default `prefer` mode then goes on in plain text, which the proxy can read.
It runs on the benchmark's own event loop; its CPU is the benchmark's, not the
server's.

    proxy = CountingProxy("127.0.0.1", 5432)
    port = await proxy.start()
    ... proxy.round_trips ... proxy.backend_pids ...
    await proxy.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
ROUND_TRIP_ENDS = frozenset(b"SQ")
BACKEND_KEY_DATA = ord("K")
READY_FOR_QUERY = ord("Z")


class _Messages:
    """Splits one direction's byte stream into typed messages (type byte + int32
    length that counts itself), whatever the chunks it arrives in."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.skip = 0  # bytes of a message already seen whose body is still to come

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """(type, body) of each message completed by `data`; a body is kept only for
        the messages the proxy reads ('K'), others come back with an empty body."""
        if self.skip >= len(data):
            self.skip -= len(data)
            return []
        self.buf += memoryview(data)[self.skip:]
        self.skip = 0
        out: list[tuple[int, bytes]] = []
        pos = 0
        buf = self.buf
        while len(buf) - pos >= 5:
            kind = buf[pos]
            length = int.from_bytes(buf[pos + 1:pos + 5], "big")
            end = pos + 1 + length
            if kind == BACKEND_KEY_DATA:
                if end > len(buf):
                    break  # wait for the whole body
                out.append((kind, bytes(buf[pos + 5:end])))
            else:
                out.append((kind, b""))
            if end > len(buf):
                self.skip = end - len(buf)
                pos = len(buf)
                break
            pos = end
        del buf[:pos]
        return out


class CountingProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to PostgreSQL at host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.round_trips = 0
        self.messages: Counter[str] = Counter()  # frontend messages by type
        self.backend_pids: set[int] = set()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        self._writers.add(writer)
        up_w: asyncio.StreamWriter | None = None
        try:
            # The startup phase: untyped messages (int32 length, int32 code, ...).
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                rest = await reader.readexactly(length - 8)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")  # no encryption: the stream stays readable
                    await writer.drain()
                    continue
                break
            up_r, up_w = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_w)
            up_w.write(head + rest)
            if code == CANCEL_REQUEST:
                await up_w.drain()
                return
            self.connections += 1
            await asyncio.gather(self._frontend(reader, up_w), self._backend(up_r, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            for w in (writer, up_w):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _frontend(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter
                        ) -> None:
        parser = _Messages()
        try:
            while data := await reader.read(65536):
                up.write(data)
                for kind, _ in parser.feed(data):
                    self.messages[chr(kind)] += 1
                    if kind in ROUND_TRIP_ENDS:
                        self.round_trips += 1
                await up.drain()
        finally:
            up.close()

    async def _backend(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter
                       ) -> None:
        parser: _Messages | None = _Messages()  # read until the first ReadyForQuery
        try:
            while data := await up.read(65536):
                writer.write(data)
                if parser is not None:
                    for kind, body in parser.feed(data):
                        if kind == BACKEND_KEY_DATA:
                            self.backend_pids.add(int.from_bytes(body[:4], "big"))
                        elif kind == READY_FOR_QUERY:
                            parser = None
                            break
                await writer.drain()
        finally:
            writer.close()
