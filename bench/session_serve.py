"""Serve the app on one process with the staff session look-up made cheaper or dearer,
to measure what server-side sessions cost the till (docs/performance.md). Bench only.

    python -m bench.session_serve --mode cached|uncached|cookie --port N

* cached: as shipped: a session is read from the database once per cache TTL (30 s) per
  process and dropped at once when revoked (saumaton/web/auth.py);
* uncached: the cache's TTL = 0: the session row is read on every request;
* cookie: the cache never expires, so after a session's first request nothing but the
  signed cookie is looked at: the cost of a signed-cookie-only session.
"""

from __future__ import annotations

import argparse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("cached", "uncached", "cookie"), required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()

    import uvicorn

    from saumaton.web import auth

    if args.mode == "uncached":
        auth.session_cache.ttl = 0.0
    elif args.mode == "cookie":
        auth.session_cache.ttl = float("inf")
    # As `saumaton serve` runs one worker.
    uvicorn.run("saumaton.web.asgi:app", host=args.host, port=args.port, workers=1,
                log_level="warning", access_log=False, loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
