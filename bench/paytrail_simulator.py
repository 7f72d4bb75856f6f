"""CPU of the Paytrail simulator per checkout, on its own.

Starts `saumaton paytrail-simulator` (of this tree, or of --src) and a callback
receiver, then runs checkouts as the web benchmark makes the simulator work: the
shop's signed `POST /payments` (two items and callback URLs), the shopper's
`POST /pay/{id}/success?callbacks=1` (a form, as the browser sends it), and the
simulator's server-to-server callback to the receiver. Prints the simulator's CPU
(utime + stime from /proc) per checkout over the measured run.

    PYTHONPATH=$PWD .venv/bin/python -m bench.paytrail_simulator [--checkouts 3000]
        [--concurrency 16] [--warmup 300] [--callbacks 1] [--uvloop] [--py-spy PATH]
        [--src /path/to/another/tree]

--concurrency 1 is closest to the web benchmark, where the simulator's requests
seldom meet; --callbacks 0 is its part `one` (the flow sends the callback itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench.common import CLK_TCK, Connection
from saumaton.config import TEST_MERCHANT
from saumaton.payments.paytrail.signing import request_headers, verify

ACCOUNT, SECRET = TEST_MERCHANT
ROOT = Path(__file__).resolve().parent.parent
FORM = "application/x-www-form-urlencoded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ticks(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


class Receiver:
    """The shop's callback endpoint: counts signed callbacks, answers 200."""

    def __init__(self) -> None:
        self.count = 0
        self.bad = 0
        self.waiting: dict[str, asyncio.Future[None]] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                params = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
                if not verify(params, "", params.get("signature"), SECRET):
                    self.bad += 1
                self.count += 1
                waiter = self.waiting.pop(urlsplit(target).path, None)
                if waiter is not None:
                    waiter.set_result(None)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                             b"content-type: text/plain\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def create_body(n: int, callback: str) -> bytes:
    body: dict[str, Any] = {
        "stamp": f"bench-{os.getpid()}-{n}", "reference": f"{1000 + n}", "amount": 2890,
        "currency": "EUR", "language": "FI",
        "items": [{"unitPrice": 1900, "units": 1, "vatPercentage": 25.5,
                   "productCode": "SKU-1", "description": "Penkki", "stamp": f"{n}-1"},
                  {"unitPrice": 990, "units": 1, "vatPercentage": 25.5,
                   "productCode": "delivery", "description": "Delivery",
                   "stamp": f"{n}-delivery"}],
        "customer": {"email": f"shopper{n}@example.com"},
        "redirectUrls": {"success": f"http://127.0.0.1:1/shop/return/{n}/x",
                         "cancel": f"http://127.0.0.1:1/shop/return/{n}/x"},
        "callbackUrls": {"success": f"{callback}/shop/callback/{n}/x",
                         "cancel": f"{callback}/shop/callback/{n}/x"},
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def checkout(shop: Connection, browser: Connection, n: int, callback: str,
                   callbacks: int, receiver: Receiver) -> None:
    """One checkout; with callbacks, it ends when the shop has had its callback."""
    raw = create_body(n, callback)
    waiter = asyncio.get_running_loop().create_future()
    if callbacks:
        receiver.waiting[f"/shop/callback/{n}/x"] = waiter
    headers = request_headers(ACCOUNT, SECRET, "POST", raw.decode())
    r = await shop.request("POST", "/payments", headers, raw)
    if r.status != 201:
        raise SystemExit(f"create: {r.status} {r.body[:200]!r}")
    href = urlsplit(json.loads(r.body)["href"]).path
    r = await browser.request("POST", f"{href}/success?callbacks={callbacks}",
                              {"Content-Type": FORM},
                              urlencode({"provider": "osuuspankki"}).encode())
    if r.status != 303:
        raise SystemExit(f"pay: {r.status} {r.body[:200]!r}")
    if callbacks:
        await asyncio.wait_for(waiter, 30)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkouts", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--callbacks", type=int, default=1)
    p.add_argument("--uvloop", action="store_true", help="drive on uvloop")
    p.add_argument("--src", default=str(ROOT),
                   help="the tree whose simulator is served (another checkout: before/after)")
    p.add_argument("--py-spy", help="record the measured run with this py-spy binary "
                   "(raw folded stacks to paytrail_simulator.spy)")
    args = p.parse_args()

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from saumaton.cli import app; app()",
        "paytrail-simulator", "--host", "127.0.0.1", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        cwd=args.src, env={**os.environ, "PYTHONPATH": args.src})
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    callback = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        for _ in range(200):
            try:
                await Connection("127.0.0.1", port).open()
                break
            except OSError:
                await asyncio.sleep(0.05)
        counter = iter(range(10**9))

        async def run(total: int) -> None:
            left = [total]

            async def worker() -> None:
                shop, browser = Connection("127.0.0.1", port), Connection("127.0.0.1", port)
                while left[0] > 0:
                    left[0] -= 1
                    await checkout(shop, browser, next(counter), callback, args.callbacks,
                                   receiver)
                await shop.close()
                await browser.close()

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))

        await run(args.warmup)
        spy = None
        if args.py_spy:
            spy = await asyncio.create_subprocess_exec(
                args.py_spy, "record", "-p", str(proc.pid), "-f", "raw", "-r", "250",
                "-o", "paytrail_simulator.spy", stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(1)
        t0, w0, c0 = cpu_ticks(proc.pid), time.perf_counter(), time.process_time()
        await run(args.checkouts)
        t1, w1, c1 = cpu_ticks(proc.pid), time.perf_counter(), time.process_time()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        sim_ms = (t1 - t0) / CLK_TCK * 1000 / args.checkouts
        print(json.dumps({
            "checkouts": args.checkouts, "concurrency": args.concurrency,
            "callbacks": args.callbacks, "callbacks_received": receiver.count,
            "bad_signatures": receiver.bad,
            "simulator_cpu_ms_per_checkout": round(sim_ms, 3),
            "driver_cpu_ms_per_checkout": round((c1 - c0) * 1000 / args.checkouts, 3),
            "wall_s": round(w1 - w0, 2)}))
    finally:
        server.close()
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
