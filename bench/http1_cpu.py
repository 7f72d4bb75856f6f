"""CPU per request of saumaton/payments/paytrail/http1.py (the Paytrail client's and
the simulator's HTTP/1.1 connections) against a local uvicorn app in another process.

    python -m bench.http1_cpu [--loop uvloop|asyncio] [--against REV]

`--against REV`: the same requests, alternated round by round in this process, through
the clients of git revision REV as well (c62cece: the two hand-parsing ones,
http1.Http1Client and outbound.Outbound), so both see the same load. CPU is
time.process_time of this process only; the app's is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import uvloop

from bench.common import ROOT
from saumaton.payments.paytrail.http1 import Http1Client, Http1Pool

APP = '''
BODY = b'{"transactionId":"t-1","href":"https://x/pay/t-1","n":[' + b",".join(
    str(i).encode() for i in range(20)) + b"]}"
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
        (b"checkout-account", b"375917"), (b"checkout-algorithm", b"sha256"),
        (b"signature", b"ab" * 32)]})
    await send({"type": "http.response.body", "body": BODY})
'''
UA = [("User-Agent", "Saumaton Paytrail simulator"), ("Accept", "*/*")]
SIG = [("checkout-account", "375917"), ("signature", "ab" * 32)]


def old_module(rev: str, path: str, tmp: Path) -> ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    file = tmp / f"old_{Path(path).name}"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


async def run(url: str, against: str | None, tmp: Path, n: int, rounds: int) -> None:
    cb = f"{url}/cb?checkout-status=ok&signature={'ab' * 32}"
    client = Http1Client(url, timeout=5)
    pool = Http1Pool(timeout=10, keepalive_expiry=4, max_idle=64)
    closers: list[Any] = [client, pool]
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "client POST new": lambda: client.request("POST", "/payments", SIG, b'{"a":1}'),
        "client GET  new": lambda: client.request("GET", "/payments/t-1", SIG[:1]),
        "sim GET cb  new": lambda: pool.request("GET", cb, UA),
        "sim POST    new": lambda: pool.request("POST", f"{url}/report", UA + SIG, b'{"a":1}'),
    }
    if against:
        old = old_module(against, "saumaton/payments/paytrail/http1.py", tmp)
        out = old_module(against, "saumaton/payments/paytrail/outbound.py", tmp)
        oc, ob = old.Http1Client(url, timeout=5), out.Outbound()
        closers += [oc, ob]
        cases |= {
            "client POST old": lambda: oc.request("POST", "/payments", SIG, b'{"a":1}'),
            "client GET  old": lambda: oc.request("GET", "/payments/t-1", SIG[:1]),
            "sim GET cb  old": lambda: ob.request("GET", cb),
            "sim POST    old": lambda: ob.request("POST", f"{url}/report", dict(SIG),
                                                  b'{"a":1}'),
        }
    got: dict[str, list[float]] = {k: [] for k in sorted(cases)}
    for f in cases.values():
        for _ in range(200):
            await f()
    for _ in range(rounds):
        for k in got:
            t = time.process_time()
            for _ in range(n):
                await cases[k]()
            got[k].append((time.process_time() - t) / n * 1e6)
    for k, v in got.items():
        print(f"{k}: min {min(v):6.1f} µs  median {statistics.median(v):6.1f} µs per request")
    for c in closers:
        await c.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--against", help="a git revision whose clients to compare with")
    ap.add_argument("-n", type=int, default=1000, help="requests per round and case")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "http1_bench_app.py").write_text(APP)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "http1_bench_app:app", "--port", str(port),
             "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"], cwd=tmp)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the app did not start"
                    time.sleep(0.1)
            coro = run(f"http://127.0.0.1:{port}", args.against, tmp, args.n, args.rounds)
            (uvloop.run if args.loop == "uvloop" else asyncio.run)(coro)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
