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
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.cluster import PG_ADMIN, admin, saumaton
from bench.common import ROOT, write_result
from tests.cluster import AppServer

# Part -> (function name, file) of a frame that puts a sample in it.
PARTS = {
    "session look-up (session_actor)": ("session_actor", "saumaton/web/auth.py"),
    "signed cookie (SessionMiddleware)": ("", "starlette/middleware/sessions.py"),
}


def shares(collapsed: Path) -> dict[str, object]:
    """Per part, the share of the samples in which it is on the stack."""
    total = 0
    hits = dict.fromkeys(PARTS, 0)
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for part, (function, file) in PARTS.items():
            if any(f.startswith(function) and file in f for f in frames):
                hits[part] += n
    return {"samples": total, "share_pct": {
        part: round(100.0 * n / total, 2) if total else 0.0 for part, n in hits.items()}}


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
                                        "--rate", "250", "--format", "raw", "--output",
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
            finally:
                server.stop()
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    path = write_result("session_profile", result)
    print(json.dumps(result, indent=1))
    print(path)


if __name__ == "__main__":
    main()
