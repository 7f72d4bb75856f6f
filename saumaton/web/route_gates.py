"""Each included router turns away, at once, a request whose path it cannot match.

The app tries its included routers in order for every request, and FastAPI tries an
included router by trying each of its routes (about 1 µs each here). A till sale
(`/pos/...`) came after every API router and most back-office pages: about 300 µs of
route matching per sale, more than a quarter of the sale's own server time. A route
can only match a path that starts with the literal part of its own path (what comes
before its first `{parameter}`), so a router whose routes all share a literal start
(`/api/v1/orders`, `/backoffice/stock/`, `/pos/`) cannot match any other path: its
`matches` is wrapped with that check (`gate_included_routers`, after all routers are
included). Routers without such a start (their routes begin differently) are left as
they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

Matcher = Callable[[Scope], tuple[Match, Scope]]


def literal_start(path: str) -> str:
    """The part of a route path before its first parameter."""
    return path.split("{", 1)[0]


def common_start(route: BaseRoute) -> str:
    """What every path an included router can match starts with ("" when nothing is
    common beyond "/", or when its routes cannot be listed)."""
    contexts = getattr(route, "effective_route_contexts", None)
    if contexts is None:
        return ""
    paths = [getattr(c, "path", None) for c in contexts()]
    if not paths or not all(isinstance(p, str) and p for p in paths):
        return ""
    start = literal_start(str(paths[0]))
    for p in paths[1:]:  # character by character: "/shop/p" is common to /shop/p/… and /shop/pickup
        lit = literal_start(str(p))
        n = 0
        while n < min(len(start), len(lit)) and start[n] == lit[n]:
            n += 1
        start = start[:n]
    return start if len(start) > 1 else ""


def route_path(scope: Scope) -> str:
    """The path routes match against (the path without the app's root path), as
    Starlette's routes compute it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):]
    return path


def gated(matches: Matcher, start: str) -> Matcher:
    def gate(scope: Scope) -> tuple[Match, Scope]:
        if not route_path(scope).startswith(start):
            return Match.NONE, {}
        return matches(scope)
    gate.ungated = matches  # type: ignore[attr-defined]
    gate.start = start  # type: ignore[attr-defined]
    return gate


def gate_included_routers(app: FastAPI) -> int:
    """Give every included router of the app whose routes share a literal start a gate
    on it; returns how many were gated."""
    count = 0
    for route in app.router.routes:
        if getattr(route, "original_router", None) is None:
            continue  # a route of the app itself, not an included router
        start = common_start(route)
        if not start or hasattr(route.matches, "ungated"):
            continue
        wrapped: Any = route
        wrapped.matches = gated(route.matches, start)
        count += 1
    return count
