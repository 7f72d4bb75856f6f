"""What share of a till sale's server time goes to the staff session: py-spy samples one
`saumaton serve` process while bench/pos_till.py rings up sales (paced, then
saturated), and the samples are split by what is on the stack:

* the server-side session look-up (`session_actor` in saumaton/web/auth.py: the cache,
  and the database read when the cache has no live entry);
* the signed cookie (Starlette's SessionMiddleware: verifying and re-signing the
  cookie), which a signed-cookie-only session costs too.

A fresh database with the demo shop is made and dropped. py-spy is not a dependency:
point --py-spy at one (`pip install --target /tmp/pyspy py-spy`).

    python -m bench.session_profile --py-spy /tmp/pyspy/bin/py-spy [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.cluster import PG_ADMIN, admin, saumaton
from bench.common import RESULTS, ROOT, write_result
from tests.cluster import AppServer

SESSION_LOOKUP = ("session_actor", "saumaton/web/auth.py")
COOKIE_FILE = "starlette/middleware/sessions.py"
# What the middleware calls to read and write the cookie (not the app it wraps).
COOKIE_WORK = ("itsdangerous/", "/base64.py", "/json/", "/hmac.py", "/hashlib.py")


def shares(collapsed: Path) -> dict[str, object]:
    """The share of the samples in the session look-up (its frame anywhere on the stack)
    and in the cookie's own work (the middleware's frame the deepest but for the
    signing, encoding and JSON it calls: the app it wraps is not counted)."""
    total = lookup = cookie = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if any(f.startswith(SESSION_LOOKUP[0]) and SESSION_LOOKUP[1] in f for f in frames):
            lookup += n
        inside = [i for i, f in enumerate(frames) if COOKIE_FILE in f]
        if inside and all(any(w in f for w in COOKIE_WORK)
                          for f in frames[inside[-1] + 1:]):
            cookie += n

    def pct(x: int) -> float:
        return round(100.0 * x / total, 2) if total else 0.0

    return {"samples": total, "share_pct": {
        "session look-up (session_actor: cache, and the database when not cached)":
            pct(lookup),
        "signed cookie (SessionMiddleware: verify, decode, encode, sign)": pct(cookie)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--py-spy", required=True)
    p.add_argument("--duration", type=float, default=15)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--tills", type=int, default=16)
    args = p.parse_args()

    name = f"saumaton_bench_session_{uuid.uuid4().hex[:8]}"
    dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        saumaton(dsn, "db", "upgrade")
        saumaton(dsn, "demo-data")
        with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
            server = AppServer("profiled", dsn, Path(tmp) / "app")
            try:
                server.wait_ready()
                assert server.proc is not None
                out = Path(tmp) / "profile.txt"
                spy = subprocess.Popen([args.py_spy, "record", "--pid", str(server.proc.pid),
                                        "--rate", "100", "--format", "raw", "--output",
                                        str(out), "--nonblocking"])
                try:
                    subprocess.run([sys.executable, "-m", "bench.pos_till", "--url",
                                    server.base_url, "--dsn", dsn, "--tills",
                                    str(args.tills), "--duration", str(args.duration),
                                    "--warmup", str(args.warmup)], check=True, cwd=ROOT)
                finally:
                    spy.send_signal(2)  # SIGINT: py-spy writes what it has
                    spy.wait(60)
                result = shares(out)
                RESULTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(out, RESULTS / "session_profile.txt")
            finally:
                server.stop()
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    path = write_result("session_profile", result)
    print(json.dumps(result, indent=1))
    print(path)


if __name__ == "__main__":
    main()
