"""Several `saumaton serve` processes on one PostgreSQL behind a round-robin nginx, as
docs/deployment.md lays them out: real subprocesses on their own ports, each with its
own var dir (so a mail file or a media file tells which process wrote it) and the same
secret key.

The fixture `two_servers` (module scope) gives a `Cluster` on a fresh PostgreSQL
database with the test shop (tests.support.build_shop); conftest.py registers it, so a
test only names it (`two_servers: Cluster`). `start_cluster` builds other shapes (more
servers, other settings) for a test's own fixture.

Every response through the proxy carries `X-Upstream: 127.0.0.1:<port>` (nginx's
$upstream_addr), naming the process that answered; no app change is needed for that.
Only the test's own processes are ever stopped or killed, by their PIDs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from saumaton.db.uow import Database
from tests.support import (
    ROOT,
    Shop,
    build_shop,
    create_pg_database,
    drop_pg_database,
    free_port,
)

NGINX = "/usr/sbin/nginx"
SECRET = "cluster-test-secret-key-0123456789abcdef"


class AppServer:
    """One `saumaton serve` process (one uvicorn worker: kill -9 of its PID kills it)."""

    def __init__(self, name: str, database_url: str, var_dir: Path,
                 env: dict[str, str] | None = None, command: list[str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.address = f"127.0.0.1:{self.port}"
        self.var_dir = var_dir
        var_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, SAUMATON_DATABASE_URL=database_url,
                        SAUMATON_VAR_DIR=str(var_dir), SAUMATON_SECRET_KEY=SECRET,
                        SAUMATON_RUN_JOBS="true", SAUMATON_TRUSTED_PROXIES="127.0.0.1",
                        PYTHONPATH=str(ROOT), **(env or {}))
        self.env.pop("PORT", None)
        # Another way to serve the app (a benchmark's variant); `--port N` is appended.
        self.command = command or [sys.executable, "-m", "saumaton", "serve", "--host",
                                   "127.0.0.1", "--workers", "1"]
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = var_dir / f"{name}.log"
        self.start()

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.proc = subprocess.Popen(
                [*self.command, "--port", str(self.port)], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            try:  # a moment for the process to die; if it does, say why
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()}")
        raise RuntimeError(f"{self.name} did not become ready: {self.log_path.read_text()}")

    async def wait_ready_async(self) -> None:
        await asyncio.to_thread(self.wait_ready)

    def kill9(self) -> None:
        """SIGKILL: no shutdown, no flush, open transactions cut off mid-way."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Nginx:
    """Debian's nginx as a non-daemon child: round robin over the app servers, the
    config of docs/deployment.md in small (SSE unbuffered, forwarded headers)."""

    def __init__(self, tmp: Path, upstreams: list[str]) -> None:
        if not Path(NGINX).exists():
            pytest.fail(f"{NGINX} is missing: apt-get install nginx-light")
        self.dir = tmp / "nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(nginx_conf(self.dir, self.port, upstreams))
        self.access_log = self.dir / "access.log"
        self.log = open(self.dir / "stderr.log", "w")
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-p", str(self.dir),
             "-g", f"daemon off; pid {self.dir / 'nginx.pid'};"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(self.base_url + "/nginx-alive", timeout=1.0)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: "
                                       + (self.dir / "error.log").read_text()) from None
                try:  # the next try in 50 ms, at once if nginx exits meanwhile
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise RuntimeError("nginx exited: "
                                   + (self.dir / "error.log").read_text()) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def nginx_conf(prefix: Path, port: int, upstreams: list[str]) -> str:
    # As root, nginx would hand its workers to "nobody", who may not enter the test's
    # tmp dir.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    servers = "\n".join(f"        server {u} max_fails=0;" for u in upstreams)
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}worker_processes 1;
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix / 'access.log'};
{temp}
    upstream saumaton {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        add_header X-Upstream $upstream_addr always;
        location = /nginx-alive {{ return 204; }}
        location /api/v1/events {{
            proxy_pass http://saumaton;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
        }}
        location / {{
            proxy_pass http://saumaton;
        }}
    }}
}}
"""


@dataclass
class Cluster:
    """Two (or more) app servers on one database behind one proxy."""

    database_url: str
    db: Database
    shop: Shop
    servers: list[AppServer]
    proxy: Nginx
    tmp: Path
    by_address: dict[str, AppServer] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.proxy.base_url

    def answered_by(self, response: httpx.Response) -> AppServer:
        """The app server that answered a request made through the proxy."""
        upstream = response.headers.get("x-upstream", "")
        assert upstream in self.by_address, f"no upstream in {dict(response.headers)}"
        return self.by_address[upstream]

    def stop(self) -> None:
        self.proxy.stop()
        for s in self.servers:
            s.stop()


async def start_cluster(tmp: Path, n: int = 2, env: dict[str, str] | None = None
                        ) -> Cluster:
    """A fresh migrated PostgreSQL database with the test shop, `n` app servers (all
    running the background jobs) and nginx in front."""
    if not shutil.which(NGINX):
        pytest.fail(f"{NGINX} is missing: apt-get install nginx-light")
    url = await create_pg_database()
    from saumaton.db.migrate import upgrade
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    shop = await build_shop(db)
    servers = [AppServer(f"app{i + 1}", url, tmp / f"app{i + 1}", env) for i in range(n)]
    for s in servers:
        await s.wait_ready_async()
    proxy = Nginx(tmp, [s.address for s in servers])
    cluster = Cluster(url, db, shop, servers, proxy, tmp)
    cluster.by_address = {s.address: s for s in servers}
    return cluster


async def stop_cluster(cluster: Cluster) -> None:
    cluster.stop()
    await cluster.db.dispose()
    await drop_pg_database(cluster.database_url)


# Fast job rounds: the tests wait for jobs to run in both processes.
FAST_JOBS = {"SAUMATON_PRICE_JOB_INTERVAL_SECONDS": "0.3"}


@pytest.fixture(scope="module")
async def two_servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Two `saumaton serve` processes (jobs on in both) on one fresh PostgreSQL database,
    behind nginx round robin."""
    cluster = await start_cluster(tmp_path_factory.mktemp("cluster"), 2, FAST_JOBS)
    try:
        yield cluster
    finally:
        await stop_cluster(cluster)
