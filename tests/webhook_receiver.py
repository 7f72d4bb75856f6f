"""A real HTTP receiver for webhook tests: an asyncio server on 127.0.0.1 whose answer
the test sets (200, 500, or never answering), recording every request it gets and
de-duplicating by webhook-id as a careful receiver does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None  # None: left hanging

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    mode: str = "ok"  # ok | fail | hang
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # webhook-id -> times taken
    got_one: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def delivered_ids(self) -> list[str]:
        """webhook-ids in the order the receiver accepted them (first time each)."""
        return list(self.accepted)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                mode = self.mode
                if mode == "hang":
                    self.requests.append(Received(headers, body, None))
                    self.got_one.set()
                    await self._release.wait()
                    return
                code = 200 if mode == "ok" else 500
                self.requests.append(Received(headers, body, code))
                if code == 200:
                    wid = headers.get("webhook-id", "")
                    self.accepted[wid] = self.accepted.get(wid, 0) + 1
                self.got_one.set()
                writer.write(f"HTTP/1.1 {code} X\r\ncontent-length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
