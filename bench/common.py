"""Shared bench helpers: a lean HTTP/1.1 client on asyncio streams, percentiles,
CPU accounting from /proc, and where results go.

The client is deliberately minimal (keep-alive, Content-Length and chunked
bodies, no TLS, no redirects): the load generator shares the machine's two
cores with the server and PostgreSQL, so it has to be cheap.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"set {name}")
    return value


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, CPU model, load average, Python."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "python": sys.version.split()[0]}


def keep_cookies(cookies: dict[str, str], set_cookies: Iterable[str]) -> None:
    """Update a client's cookie jar from Set-Cookie values, as a browser would (an
    expired cookie is dropped)."""
    for raw in set_cookies:
        name, _, rest = raw.partition("=")
        value, _, attrs = rest.partition(";")
        attrs = attrs.lower()
        if "max-age=0" in attrs or "01 jan 1970" in attrs:
            cookies.pop(name.strip(), None)
        else:
            cookies[name.strip()] = value.strip()


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks; `sorted_values` must be sorted."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_summary(values_ms: Iterable[float]) -> dict[str, float]:
    v = sorted(values_ms)
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": round(v[0], 3), "p50": round(percentile(v, 50), 3),
            "p95": round(percentile(v, 95), 3), "p99": round(percentile(v, 99), 3),
            "max": round(v[-1], 3), "mean": round(sum(v) / len(v), 3)}


# --- CPU accounting -----------------------------------------------------------------------


def _proc_ticks(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, utime+stime ticks) of a live process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1: raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    return comm, int(rest[1]), int(rest[11]) + int(rest[12])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _system_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])
    return total - idle, total


def _server_tree(info: dict[int, tuple[str, int, int]], root: int | None) -> set[int]:
    tree: set[int] = set()
    if root is None or root not in info:
        return tree
    tree.add(root)
    grew = True
    while grew:
        grew = False
        for pid, (_c, ppid, _t) in info.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def _scan() -> dict[int, tuple[str, int, int]]:
    info: dict[int, tuple[str, int, int]] = {}
    for pid in _all_pids():
        t = _proc_ticks(pid)
        if t is not None:
            info[pid] = t
    return info


class CpuSampler:
    """CPU used by the server's process tree, by PostgreSQL's processes and by the
    whole machine while a benchmark runs. Polls /proc a few times a second so that
    processes that come and go (pgbench's backends) are counted too; at most the
    last poll interval of a short-lived process is lost.

        with CpuSampler(server_pid) as cpu:
            ...
        report = cpu.report(load_generator_cpu_seconds)
    """

    def __init__(self, server_pid: int | Sequence[int] | None, interval: float = 0.25
                 ) -> None:
        # Several roots: several server processes (and a proxy) counted as "server".
        self.server_pids = ([] if server_pid is None else [server_pid]
                            if isinstance(server_pid, int) else list(server_pid))
        self.interval = interval
        self.base: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.kind: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = self.t1 = 0.0
        self.sys0 = self.sys1 = (0, 0)

    def _sample(self) -> None:
        info = _scan()
        tree: set[int] = set()
        for root in self.server_pids:
            tree |= _server_tree(info, root)
        for pid, (comm, _ppid, ticks) in info.items():
            self.last[pid] = ticks
            if pid in tree:
                self.kind[pid] = "server"
            elif pid not in self.kind:
                self.kind[pid] = ("postgres" if comm.startswith(("postgres", "postmaster"))
                                  else "other")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        info = _scan()
        self.base = {pid: t for pid, (_c, _p, t) in info.items()}
        self.t0, self.sys0 = time.monotonic(), _system_ticks()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.t1, self.sys1 = time.monotonic(), _system_ticks()

    def seconds(self, kind: str) -> float:
        return sum(t - self.base.get(pid, 0) for pid, t in self.last.items()
                   if self.kind.get(pid) == kind) / CLK_TCK

    def report(self, client_seconds: float) -> dict[str, Any]:
        """Core-seconds used by each party, and their shares of the machine."""
        wall = self.t1 - self.t0
        cores = os.cpu_count() or 1
        server, postgres = self.seconds("server"), self.seconds("postgres")
        busy = (self.sys1[0] - self.sys0[0]) / CLK_TCK
        capacity = wall * cores
        other = max(0.0, busy - server - postgres - client_seconds)

        def share(x: float) -> float:
            return round(100.0 * x / capacity, 1) if capacity else 0.0

        per_process = sorted(
            (round((t - self.base.get(pid, 0)) / CLK_TCK, 2) for pid, t in self.last.items()
             if self.kind.get(pid) == "server"), reverse=True)
        return {
            "wall_s": round(wall, 2), "cores": cores,
            "server_processes_core_seconds": [x for x in per_process if x > 0],
            "core_seconds": {"server": round(server, 2), "postgres": round(postgres, 2),
                             "load_generator": round(client_seconds, 2),
                             "other_processes": round(other, 2),
                             "machine_busy": round(busy, 2)},
            "share_of_machine_pct": {"server": share(server), "postgres": share(postgres),
                                     "load_generator": share(client_seconds),
                                     "other_processes": share(other),
                                     "machine_busy": share(busy)},
        }


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


# --- PostgreSQL -------------------------------------------------------------------------


async def pg_fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# --- HTTP/1.1 client --------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    def encode(self, method: str, path: str, headers: dict[str, str] | None = None,
               body: bytes | None = None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")

    async def send(self, raw: bytes) -> None:
        if self.writer is None:
            await self.open()
        assert self.writer is not None
        self.writer.write(raw)

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        first, *rest = head.decode("latin-1").split("\r\n")
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {first!r}")
        headers: dict[str, str] = {}
        for line in rest:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        return int(parts[1]), headers

    async def read_body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            async for chunk in self.chunks():
                out += chunk
            return bytes(out)
        return await self.reader.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self.reader is not None
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return
            data = await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            yield data

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> Response:
        await self.send(self.encode(method, path, headers, body))
        status, h = await self.read_head()
        data = await self.read_body(h)
        if h.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, h, data)


def json_body(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


# One till's next request: (HTTP status, idempotency key), or None when it has nothing
# left to send.
TillStep = Callable[[], Awaitable["tuple[int, str] | None"]]


async def drive_tills(steps: list[TillStep], duration: float, warmup: float,
                      interval: float | None, server_pid: int | Sequence[int] | None,
                      unit: str
                      ) -> dict[str, Any]:
    """Run each till's step over and over: every `interval` seconds (staggered across
    the tills), or back to back when `interval` is None. Latencies and statuses count
    after `warmup`, for `duration` seconds; the server's CPU is sampled over the same
    window. `unit` names the work in the result ("sale": `sales`, `sales_per_s`,
    `ms_per_sale`); `keys` are the idempotency keys answered 200/201."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    keys: list[str] = []
    start = time.monotonic()
    measure_from = start + warmup
    stop = measure_from + duration
    cpu = CpuSampler(server_pid)
    usage: dict[str, Any] = {}

    async def account() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))  # the schedule
        client0 = own_cpu_seconds()
        with cpu:
            await asyncio.sleep(max(0.0, stop - time.monotonic()))
        usage.update(cpu.report(own_cpu_seconds() - client0))

    async def one(step: TillStep, index: int) -> None:
        due = start + (index / len(steps)) * (interval or 0)
        while True:
            now = time.monotonic()
            if interval is not None:
                if due > now:
                    await asyncio.sleep(due - now)  # the schedule, not synchronisation
                sent = due
                due += interval
            else:
                sent = now
            if sent >= stop:
                return
            answer = await step()
            if answer is None:
                return
            status, key = answer
            done = time.monotonic()
            if sent >= measure_from:
                latencies.append((done - sent) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
            if status in (200, 201):
                keys.append(key)

    await asyncio.gather(account(), *(one(step, i) for i, step in enumerate(steps)))
    n = sum(statuses.values())
    server_s = usage.get("core_seconds", {}).get("server", 0.0)
    pg_s = usage.get("core_seconds", {}).get("postgres", 0.0)
    if n:
        usage[f"ms_per_{unit}"] = {"server": round(1000 * server_s / n, 2),
                                   "postgres": round(1000 * pg_s / n, 2)}
    return {"interval_s": interval, f"{unit}s": n, "statuses": statuses,
            f"{unit}s_per_s": round(n / duration, 1), "latency_ms": latency_summary(latencies),
            "cpu": usage, "keys": keys}


def report_tills(name: str, unit: str, tills: int, store: str, paced: dict[str, Any],
                 saturated: dict[str, Any], facts: dict[str, Any], answered_ok: int,
                 database_ok: bool) -> int:
    """Write and print a till benchmark's result (its paced and saturated parts, what the
    database holds); exit status 0 when the database agrees and every answer was 2xx."""
    ok = database_ok and all(
        s in (200, 201) for part in (paced, saturated) for s in part["statuses"])
    result = {"tills": tills, "store": store, "paced": paced, "saturated": saturated,
              "database": facts, "answered_ok": answered_ok, "passed": ok,
              "target": "p99 <= 50 ms at 16 concurrent tills"}
    path = write_result(name, result)
    for part_name, part in (("paced", paced), ("saturated", saturated)):
        lat = part["latency_ms"]
        print(f"{part_name}: {part[f'{unit}s_per_s']} {unit}s/s, p50 {lat.get('p50')} ms, "
              f"p99 {lat.get('p99')} ms, statuses {part['statuses']}")
    print(f"database: {facts}; passed: {ok}; {path}")
    return 0 if ok else 1
