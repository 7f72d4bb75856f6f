"""The HTTP/1.1 connections of the Paytrail client and of the simulator's callbacks
(payments/paytrail/http1.py: Http1Client, Http1Pool) against a scripted server: the
answer's framings, keep-alive and when a connection is not reused, and every failure
to get an answer said as Unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from saumaton.payments.paytrail import http1
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig, PaytrailError
from saumaton.payments.paytrail.http1 import Http1Client, Http1Pool, Unreachable
from saumaton.payments.paytrail.signing import sign
from tests.support import Script, Scripted, eventually, free_port, scripted_servers


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[Scripted]]]:
    async with scripted_servers() as start:
        yield start


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def ok(body: bytes = b'{"a":1}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def test_keeps_the_connection_and_frames_the_request(serve: Any) -> None:
    state = await serve(lambda n, req: (ok(b'{"n":%d}' % n), False))
    client = Http1Client(state.url, timeout=5)
    try:
        first = await client.request("POST", "/payments", [("x-one", "1")], b'{"q":"\xc3\xa4"}')
        second = await client.request("GET", "/payments/abc", [])
    finally:
        await client.aclose()
    assert (first.status_code, first.content, second.content) == (200, b'{"n":1}', b'{"n":2}')
    assert first.headers["content-type"] == "application/json"
    assert state.connections == 1  # kept alive
    post = state.requests[0]
    assert post.startswith(b"POST /base/payments HTTP/1.1\r\n")
    assert f"Host: {state.url.split('/')[2]}\r\n".encode() in post
    assert b"x-one: 1\r\n" in post and b"Content-Length: 10\r\n" in post
    assert post.endswith(b'\r\n\r\n{"q":"\xc3\xa4"}')
    assert state.requests[1].startswith(b"GET /base/payments/abc HTTP/1.1\r\n")
    assert b"Content-Length" not in state.requests[1]


async def test_chunked_answers_and_informational_ones(serve: Any) -> None:
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
               b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nTrailer: x\r\n\r\n")
    state = await serve(lambda n, req: (chunked, False))
    client = Http1Client(state.url, timeout=5)
    try:
        for _ in range(2):
            got = await client.request("GET", "/x", [])
            assert (got.status_code, got.content) == (201, b'{"a":1}')
            assert got.headers["x-a"] == "1, 2"
    finally:
        await client.aclose()
    assert state.connections == 1


async def test_a_connection_closed_or_said_closing_is_not_reused(serve: Any) -> None:
    def script(n: int, req: bytes) -> tuple[bytes, bool]:
        if n == 1:
            return ok(extra="Connection: close\r\n"), False  # said, the server keeps it
        if n == 2:
            return ok(), True  # closed by the server after answering
        if n == 3:  # no length: the body ends with the connection
            return b"HTTP/1.1 200 OK\r\n\r\nuntil-close", True
        return ok(), False

    state = await serve(script)
    client = Http1Client(state.url, timeout=5)
    try:
        assert (await client.request("GET", "/1", [])).content == b'{"a":1}'
        assert (await client.request("GET", "/2", [])).content == b'{"a":1}'

        async def noticed() -> bool:  # the server's close, seen while the connection idles
            return all(not c.usable(0, 30) for c in client._idle)
        await eventually(noticed, within=5, what="the client saw the server close")
        assert (await client.request("GET", "/3", [])).content == b"until-close"
        assert (await client.request("GET", "/4", [])).status_code == 200
    finally:
        await client.aclose()
    assert state.connections == 4


async def test_a_get_is_sent_again_when_a_kept_connection_closes_unanswered(
        serve: Any) -> None:
    """The server's idle close crossing the request: a GET goes again on a new
    connection; a POST, which the server may have read, is not resent."""
    def script(n: int, req: bytes) -> tuple[bytes, bool]:
        return (b"", True) if n in (2, 5) else (ok(b'{"n":%d}' % n), False)

    state = await serve(script)
    client = Http1Client(state.url, timeout=5)
    try:
        assert (await client.request("GET", "/1", [])).content == b'{"n":1}'
        assert (await client.request("GET", "/2", [])).content == b'{"n":3}'
        assert (await client.request("GET", "/4", [])).content == b'{"n":4}'
        with pytest.raises(Unreachable, match=r"before answering|was closed"):
            await client.request("POST", "/5", [], b"{}")
    finally:
        await client.aclose()
    assert len(state.requests) == 5 and state.connections == 2


async def test_failures_are_unreachable(serve: Any) -> None:
    silent = await serve(lambda n, req: None)
    client = Http1Client(silent.url, timeout=0.2)
    with pytest.raises(Unreachable, match="no answer"):
        await client.request("GET", "/x", [])
    await client.aclose()

    cut = await serve(lambda n, req: (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True))
    client = Http1Client(cut.url, timeout=5)
    with pytest.raises(Unreachable, match="mid-answer"):
        await client.request("GET", "/x", [])
    await client.aclose()

    garbage = await serve(lambda n, req: (b"SSH-2.0-OpenSSH\r\n\r\n", True))
    client = Http1Client(garbage.url, timeout=5)
    with pytest.raises(Unreachable, match="not an HTTP/1 answer"):
        await client.request("GET", "/x", [])
    await client.aclose()

    client = Http1Client(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(Unreachable, match="cannot connect"):
        await client.request("GET", "/x", [])
    with pytest.raises(Unreachable, match="not an http"):
        await Http1Client("ftp://x", timeout=5).request("GET", "/x", [])
    with pytest.raises(ValueError):
        await client.request("GET", "/x HTTP/1.1\r\nX: y", [])
    with pytest.raises(ValueError):
        await client.request("GET", "/x", [("x", "a\r\nInjected: 1")])


async def test_the_pool_keeps_a_connection_per_origin_and_frames_them(serve: Any) -> None:
    """The simulator's pool, by absolute URL: framings, an HTTP/1.0 answer read to
    the end, a peer's close seen or crossing the request."""
    answers = [
        OK,
        b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\ntrailer: 1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        OK,  # then the server closes without saying so
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        OK,
    ]
    state = await serve(lambda n, req: (answers[n - 1], n - 1 in (3, 4, 5)))
    base = state.url.removesuffix("/base")
    other = await serve(lambda n, req: (OK, False))
    pool = Http1Pool(timeout=10)

    async def status(method: str, url: str, headers: Any = (), body: Any = None) -> int:
        return (await pool.request(method, url, headers, body)).status_code
    try:
        assert await status("GET", f"{base}/a?x=1#frag") == 200
        assert await status("POST", f"{base}/b", [("content-type", "text/csv")],
                            b"a;b\r\n") == 201
        c = await pool.request("GET", f"{base}/c")
        assert (c.status_code, c.content) == (204, b"")
        assert state.connections == 1  # one kept connection so far
        assert await status("GET", f"{other.url}?y=2") == 200  # another origin
        assert await status("GET", f"{base}/d") == 404
        assert await status("GET", f"{base}/e") == 200  # a new one
        assert state.connections == 2
        # The peer closed that one: a new connection, whether or not the close was seen.
        assert (await pool.request("GET", f"{base}/f")).content == b"until the end"
        assert await status("GET", f"{base}/g") == 200  # after a read-to-end body
        assert state.connections == 4 and other.connections == 1
    finally:
        await pool.aclose()
    first = state.requests[0].decode()
    assert first.startswith("GET /a?x=1 HTTP/1.1\r\n")
    assert f"Host: {urlsplit(base).netloc}\r\n" in first
    assert state.requests[1].endswith(b"Content-Length: 5\r\n\r\na;b\r\n")
    assert b"content-type: text/csv" in state.requests[1]
    assert other.requests[0].startswith(b"GET /base?y=2 HTTP/1.1\r\n")


async def test_the_pool_says_no_answer_as_unreachable(serve: Any) -> None:
    cut = await serve(lambda n, req: (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
                                      True))
    pool = Http1Pool(timeout=5)
    with pytest.raises(Unreachable):
        await pool.request("GET", f"{cut.url}/cut")  # the body ends early
    with pytest.raises(Unreachable):
        await pool.request("GET", f"http://127.0.0.1:{free_port()}/nobody")
    with pytest.raises(ValueError):
        await pool.request("GET", f"{cut.url}/bad path")
    with pytest.raises(Unreachable):
        await pool.request("GET", "ftp://127.0.0.1/x")
    await pool.aclose()


async def test_limits_head_requests_and_protocol_switches(
        serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_ANSWER_BYTES", 50)
    monkeypatch.setattr(http1, "MAX_HEAD_BYTES", 200)
    answers = {
        "/big": ok(b"x" * 51),
        "/long-head": ok(extra="X-Pad: " + "p" * 300 + "\r\n"),
        "/chunked-big": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"20\r\n" + b"y" * 32 + b"\r\n20\r\n" + b"y" * 32 + b"\r\n0\r\n\r\n",
        "/switch": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        "/after": ok(b"{}"),
    }
    state = await serve(lambda n, req: (answers[req.split(b" ")[1].decode()[5:]], False))
    client = Http1Client(state.url, timeout=5)
    try:
        for path, error in (("/big", "too big"), ("/long-head", "too long"),
                            ("/chunked-big", "too big"), ("/switch", "switched")):
            with pytest.raises(Unreachable, match=error):
                await client.request("GET", path, [])
        got = await client.request("HEAD", "/head", [])
        assert (got.status_code, got.headers["content-length"], got.content) == (200, "5", b"")
        assert (await client.request("GET", "/after", [])).content == b"{}"
    finally:
        await client.aclose()
    assert state.connections == 6  # none reused after a failure or a HEAD


async def test_the_paytrail_client_maps_them_as_before(serve: Any) -> None:
    """Unreachable -> paytrail_unreachable; a signed refusal -> paytrail_refused; the
    answer's signature checked over the exact bytes received."""
    secret = "SAIPPUAKAUPPIAS"

    def signed(status: int, body: bytes) -> bytes:
        params = {"checkout-algorithm": "sha256", "checkout-account": "375917"}
        sig = sign(params, body.decode(), secret)
        head = "".join(f"{k}: {v}\r\n" for k, v in params.items())
        return (f"HTTP/1.1 {status} X\r\n{head}signature: {sig}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def script(n: int, req: bytes) -> tuple[bytes, bool] | None:
        if n == 1:
            return signed(201, b'{"transactionId":"t-1","href":"h"}'), False
        if n == 2:
            return signed(400, b'{"message":"nope"}'), False
        return None

    state = await serve(script)
    client = PaytrailClient(PaytrailConfig("375917", secret, state.url))
    try:
        assert (await client.create_payment({"a": 1}))["transactionId"] == "t-1"
        with pytest.raises(PaytrailError) as exc:
            await client.get_payment("t-1")
        assert exc.value.code == "paytrail_refused"
        assert state.requests[1].startswith(b"GET /base/payments/t-1 HTTP/1.1\r\n")
        assert b"checkout-transaction-id: t-1\r\n" in state.requests[1]
    finally:
        await client.aclose()



def test_on_uvloop_as_the_server_runs() -> None:
    """The app serves on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    async def scenario() -> None:
        server = await asyncio.start_server(_answer_twice, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Http1Client(f"http://127.0.0.1:{port}", timeout=5)
        try:
            for n in range(2):
                got = await client.request("POST", "/p", [("a", "b")], b"{}")
                assert (got.status_code, got.content) == (200, b'{"a":1}'), n
        finally:
            await client.aclose()
            server.close()

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


async def _answer_twice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(2):
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(ok())
        await writer.drain()
    writer.close()
