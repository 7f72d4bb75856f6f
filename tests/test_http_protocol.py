"""The served app's transport (saumaton/web/http_protocol.py): the writes of one turn of
the event loop leave in one write (a page's headers and body in one segment), nothing
written is lost or reordered, and a close sends what was written before it."""

from __future__ import annotations

import asyncio
from typing import Any

from saumaton.web.http_protocol import CoalescingTransport


class Recorder:
    """Stands in for the socket's transport: records what reaches it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 5555)}.get(name)


async def _turn_over() -> None:
    """Wait until every callback scheduled so far with call_soon has run (they run in
    order: this one's comes after them)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.call_soon(done.set_result, None)
    await done


def _wrap() -> tuple[Recorder, CoalescingTransport]:
    raw = Recorder()
    return raw, CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_writes_of_one_turn_leave_together() -> None:
    raw, t = _wrap()
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    t.write(memoryview(b"hello"))
    assert raw.calls == []  # nothing yet: the turn is not over
    await _turn_over()
    assert raw.calls == [("write", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")]


async def test_later_writes_leave_in_order_each_turn() -> None:
    raw, t = _wrap()
    for chunk in (b"data: 1\n\n", b"data: 2\n\n"):  # an event stream, chunk by chunk
        t.write(chunk)
        await _turn_over()
    t.writelines([b"a", b"b"])
    await _turn_over()
    assert raw.calls == [("write", b"data: 1\n\n"), ("write", b"data: 2\n\n"),
                         ("write", b"ab")]


async def test_close_sends_what_was_written_first() -> None:
    raw, t = _wrap()
    t.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    t.close()
    assert raw.calls == [("write", b"HTTP/1.1 400 Bad Request\r\n\r\n"), ("close", None)]
    await _turn_over()  # the scheduled flush finds nothing more to send
    assert len(raw.calls) == 2


async def test_abort_drops_what_was_not_sent_and_the_rest_passes_through() -> None:
    raw, t = _wrap()
    assert t.get_extra_info("peername") == ("127.0.0.1", 5555)
    t.write(b"partial")
    t.abort()
    await _turn_over()
    assert raw.calls == [("abort", None)]
    assert t.is_closing()
