"""Schemathesis over the whole OpenAPI document, against a real server (uvicorn) on
each database, signed in as the owner (issue 14).

Every operation the document holds is tried (new routes are covered without being
listed here) with a few examples each, in every phase (examples, coverage, fuzzing,
stateful) and with every check: no 5xx, every status, content type, header and body as
documented, schema-violating input refused, a wrong method answered 405 with Allow.

One check is told what the schema cannot say: `positive_data_acceptance` takes 404, 409
and 422 for a schema-valid request too, since a shop's rules refuse some well-formed
requests (an opaque cursor the server did not make, a gift card code whose check digit
is wrong, a location code that does not exist, stock that ran out); those answers must
still be documented problem+json, which the other checks verify.

Left out, with the reason printed: /api/v1/events, a server-sent-events stream that
stays open until the client leaves.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from saumaton.db.uow import Database
from tests.support import (
    Server,
    Shop,
    build_shop,
    drop_pg_database,
    fresh_database,
    make_variants,
)

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""
EXCLUDED = {"/api/v1/events": "a server-sent-events stream: it never ends by itself"}
EXAMPLES = 3  # per operation and phase; the seed makes a run repeatable
SEED = 14


@pytest.fixture
async def fuzzed(backend: str, tmp_path: Path) -> AsyncIterator[tuple[Server, Shop]]:
    """A server of its own on a fresh database (the fuzzing changes a lot of data)."""
    url = await fresh_database(backend, tmp_path)
    db = Database(url)
    try:
        shop = await build_shop(db)
        await make_variants(db, [1990, 4500, 0], stock={shop.store1: 20, shop.warehouse: 20})
    finally:
        await db.dispose()
    # No background jobs: a fuzzed webhook subscription may name any address, and its
    # deliveries must not leave this machine (nor mail, nor Paytrail polls).
    server = Server(url, tmp_path / "server", extra_env={"SAUMATON_RUN_JOBS": "false"})
    try:
        yield server, shop
    finally:
        server.stop()
        if backend == "postgresql":
            await drop_pg_database(url)


async def test_schemathesis_finds_nothing(fuzzed: tuple[Server, Shop], tmp_path: Path
                                          ) -> None:
    server, shop = fuzzed
    config = tmp_path / "schemathesis.toml"
    await asyncio.to_thread(config.write_text, CONFIG)
    for path, why in EXCLUDED.items():
        print(f"schemathesis leaves out {path}: {why}")
    cmd = [SCHEMATHESIS, "--config-file", str(config), "run",
           f"{server.base_url}/api/v1/openapi.json", "--checks", "all",
           "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1",
           "--request-timeout", "20", "--no-shrink", "--output-sanitize", "true",
           "-H", f"Authorization: Bearer {shop.tokens['owner']}",
           *[a for path in EXCLUDED for a in ("--exclude-path", path)]]
    env = dict(os.environ, NO_COLOR="1", SCHEMATHESIS_HOOKS="")
    run = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True,
                                  env=env, timeout=900, cwd=tmp_path)
    out = run.stdout + run.stderr
    log = await asyncio.to_thread(Path(server.log.name).read_text)
    print(out[-3000:])  # the summary: operations, cases and checks run
    assert run.returncode == 0, f"{out[-20000:]}\n--- server log ---\n{log[-5000:]}"
    assert "Traceback" not in log, log[-5000:]
