"""The till's service worker and offline files, served under /pos/ (the worker's scope).

`GET /pos/sw.js` serves `static/pos/sw.js` with two things filled in by the
server: the cache version (a hash of every file the till caches, so a deploy
that changes any of them installs a new worker and drops the old cache) and the
list of static files to cache at install. The worker itself lives at
/pos/sw.js, not under /static/, because a worker only controls pages under its
own path: the till pages are /pos/{store}.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from fastapi.responses import Response

from saumaton.web.pages import page_router
from saumaton.web.route_access import public

router = page_router("/pos", dependencies=[public(
    "the till's service worker script: code, no data")])

STATIC = Path(__file__).resolve().parent.parent / "static"
WORKER = STATIC / "pos" / "sw.js"
# What the till needs to start without a network (relative to /static/).
CACHED_GLOBS = ("pos/*", "css/*", "vendor/htmx.min.js", "js/page.js")
NOT_CACHED = frozenset({"pos/sw.js"})  # the worker is fetched by the browser itself


def cached_files(static: Path = STATIC) -> list[Path]:
    """The static files the till caches, in a stable order."""
    found = {p for pattern in CACHED_GLOBS for p in static.glob(pattern) if p.is_file()}
    return sorted((p for p in found
                   if p.relative_to(static).as_posix() not in NOT_CACHED),
                  key=lambda p: p.relative_to(static).as_posix())


def cache_version(static: Path = STATIC) -> str:
    """A hash of the worker and every cached file: any change gives a new version."""
    digest = hashlib.sha256()
    for path in [static / "pos" / "sw.js", *cached_files(static)]:
        digest.update(path.relative_to(static).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def worker_source() -> str:
    """sw.js with the version and the precache list filled in (once per process:
    a deploy restarts the processes)."""
    urls = ["/static/" + p.relative_to(STATIC).as_posix() for p in cached_files()]
    return (WORKER.read_text(encoding="utf-8")
            .replace('"__CACHE_VERSION__"', json.dumps(cache_version()))
            .replace('["__PRECACHE__"]', json.dumps(urls)))


@router.get("/sw.js")
async def service_worker() -> Response:
    return Response(worker_source(), media_type="application/javascript", headers={
        "Cache-Control": "no-cache",
        "Service-Worker-Allowed": "/pos/",
    })
