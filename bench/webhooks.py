"""Webhook delivery latency after commit (issue 14): events committed into the outbox at a
steady rate on PostgreSQL, one transaction each, delivered by the webhook worker running
in a process of its own to a local receiver that answers 200 at once.

Latency = the receiver's arrival time - the moment the producer's COMMIT returned (one
clock: producer and receiver share this process; the worker is the other process).

    PYTHONPATH=. python -m bench.webhooks [--rate 200] [--seconds 20] [--subscriptions 1]
        [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres] [--keep-db]

Every fifth event is a second event about the previous order, so ordering per resource
is exercised too. Prints p50/p95/p99/max and writes bench/results/webhooks.json.
Exit status 1 if an event is lost or delivered twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import time
import uuid
from typing import Any

import asyncpg

from bench.common import ROOT, latency_summary, write_result
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.outbound_webhooks import services as webhooks
from saumaton.outbound_webhooks.services import SubscriptionIn

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # "sub:order_id:topic" -> monotonic time
        self.duplicates = 0
        self.port = 0
        self.expected = 0
        self.all_in = asyncio.Event()

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.monotonic()
                length, path = 0, ""
                for i, line in enumerate(head.decode("latin-1").split("\r\n")):
                    if i == 0:
                        path = line.split(" ")[1]
                    elif line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = json.loads(await reader.readexactly(length))
                key = f"{path}:{body['data'].get('order_id')}:{body['type']}"
                if key in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[key] = now
                    if len(self.arrived) >= self.expected > 0:
                        self.all_in.set()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _produce(db: Database, rate: float, seconds: float,
                   committed: dict[str, float]) -> int:
    """`rate` transactions a second, each committing one outbox event."""
    n = int(rate * seconds)
    start = time.monotonic()
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        order_id, topic = (i - 1, "order.paid") if i % 5 == 4 else (i, "order.created")
        async with gate:
            async with db.uow() as uow:
                uow.emit(topic, {"order_id": order_id, "total_cents": 1990 + i})
                await uow.commit()
            committed[f"{order_id}:{topic}"] = time.monotonic()

    tasks = []
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # the producer's pacing, not a synchronisation
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return n


async def bench(args: argparse.Namespace) -> int:
    name = f"webhooks_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(args.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_dsn.rsplit("/", 1)[0] + "/" + name
    worker: asyncio.subprocess.Process | None = None
    db = Database(url, pool_size=10)
    try:
        await asyncio.to_thread(upgrade, url)
        receiver = Receiver()
        server = await receiver.start()
        settings = Settings(database_url=url, secret_key="b" * 40)
        async with db.uow() as uow:
            for s in range(args.subscriptions):
                await webhooks.create_subscription(uow, SYSTEM, SubscriptionIn(
                    url=f"http://127.0.0.1:{receiver.port}/s{s}", topics=["order.*"]),
                    settings)
            await uow.commit()
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.webhooks", "--worker", url, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        # The worker is ready once its first round has placed the outbox cursor.
        deadline = time.monotonic() + 30
        probe = await asyncpg.connect(url)
        while not await probe.fetchval("SELECT count(*) FROM webhook_cursor"):
            assert time.monotonic() < deadline, "the worker did not start"
            await asyncio.sleep(0.1)  # polling another process's state
        await probe.close()
        committed: dict[str, float] = {}
        receiver.expected = int(args.rate * args.seconds) * args.subscriptions
        cpu0 = os.times()
        t0 = time.monotonic()
        n = await _produce(db, args.rate, args.seconds, committed)
        produced_in = time.monotonic() - t0
        expected = n * args.subscriptions
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.all_in.wait(), 60)
        latencies = [
            (at - committed[key.split(":", 1)[1]]) * 1000
            for key, at in receiver.arrived.items()]
        summary = latency_summary(latencies)
        # The second event about an order waits until the first is recorded delivered.
        by_topic = {topic: latency_summary(
            (at - committed[key.split(":", 1)[1]]) * 1000
            for key, at in receiver.arrived.items() if key.endswith(":" + topic))
            for topic in ("order.created", "order.paid")}
        cpu1 = os.times()
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 30)
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        result: dict[str, Any] = {
            "rate_per_s": args.rate, "seconds": args.seconds, "events": n,
            "subscriptions": args.subscriptions, "produced_in_s": round(produced_in, 2),
            "achieved_rate_per_s": round(n / produced_in, 1),
            "delivered": len(receiver.arrived), "expected": expected,
            "duplicates": receiver.duplicates, "latency_ms": summary,
            "latency_ms_by_topic": by_topic,
            "bench_process_cpu_s": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
                                         2),
            "worker_process_cpu_s": round(child.ru_utime + child.ru_stime, 2),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "cpus": os.cpu_count()}
        print(json.dumps(result, indent=2))
        write_result("webhooks", result)
        server.close()
        return 0 if len(receiver.arrived) == expected and not receiver.duplicates else 1
    finally:
        if worker is not None and worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(worker.wait(), 20)
            except TimeoutError:
                worker.kill()
        await db.dispose()
        if not args.keep_db:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run_worker(url: str) -> None:
    from saumaton.outbound_webhooks.worker import run_webhook_worker

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    db = Database(url, pool_size=5)
    try:
        await run_webhook_worker(db, Settings(database_url=url, secret_key="b" * 40), stop)
    finally:
        await db.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--subscriptions", type=int, default=1)
    p.add_argument("--admin-dsn", default=os.environ.get("BENCH_PG", ADMIN))
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        profile = os.environ.get("BENCH_PROFILE")  # a file for the worker's cProfile stats
        if profile:
            import cProfile

            with cProfile.Profile(time.process_time) as prof:
                asyncio.run(run_worker(args.worker))
            prof.dump_stats(profile)
            return
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_worker(args.worker))
        return
    raise SystemExit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
