"""Included routers turn away the paths they cannot match (saumaton/web/route_gates.py):
every route of the app is still reached exactly as without the gates, and a till sale's
path is no longer tried against the API's and the shop's routes."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import BaseRoute, Match

from saumaton.config import Settings
from saumaton.web.app import create_app


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def _chosen(routes: list[BaseRoute], scope: dict[str, Any], gated: bool) -> tuple[int, Match]:
    """Which of the app's routes FastAPI hands the request to: the first FULL match,
    else the first PARTIAL one (as APIRouter.app decides)."""
    partial = None
    for i, route in enumerate(routes):
        matches = route.matches if gated else getattr(route.matches, "ungated", route.matches)
        match, _ = matches(dict(scope))
        if match == Match.FULL:
            return i, match
        if match == Match.PARTIAL and partial is None:
            partial = (i, match)
    return partial or (-1, Match.NONE)


def test_every_route_is_reached_as_without_gates(settings: Settings) -> None:
    app = create_app(settings)
    routes = app.router.routes
    gated = [r for r in routes if hasattr(r.matches, "ungated")]
    assert len(gated) >= 40  # the API's routers, the back office's, the till's, the shop's
    checked = 0
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            continue
        for ctx in contexts():
            for method in sorted(getattr(ctx, "methods", None) or {"GET"}):
                for root in ("", "/prefix"):
                    scope = {"type": "http", "method": method, "root_path": root,
                             "path": root + _sample(ctx.path), "headers": [],
                             "query_string": b""}
                    assert _chosen(routes, scope, True) == _chosen(routes, scope, False), \
                        (method, ctx.path, root)
                    checked += 1
    assert checked > 500


def _gate(route: Any) -> str | None:
    """The literal start a router's gate lets through (None: no gate)."""
    start = getattr(route.matches, "start", None)
    return start if isinstance(start, str) else None


def _size(route: Any) -> int:
    contexts = getattr(route, "effective_route_contexts", None)
    return len(list(contexts())) if contexts is not None else 1


def test_a_till_sale_is_tried_only_by_routers_it_could_match(settings: Settings) -> None:
    app = create_app(settings)
    path = "/pos/store-1/api/sales"
    scope = {"type": "http", "method": "POST", "path": path, "root_path": "",
             "headers": [], "query_string": b""}
    routes = app.router.routes
    chosen, match = _chosen(routes, scope, True)
    assert match == Match.FULL
    before = routes[:chosen]
    # Without gates every router before it would try each of its routes on this path.
    tried_without = sum(_size(r) for r in before)
    assert tried_without > 200
    # With them, only routers whose routes start like the till's paths get past their gate.
    starts = [g for g in map(_gate, before) if g is not None]
    assert any(s.startswith("/api/") for s in starts)
    passed = [s for s in starts if path.startswith(s)]
    assert all(s.startswith("/pos") for s in passed), passed
    tried_with = sum(_size(r) for r in before if (_gate(r) or "") == "" or
                     path.startswith(_gate(r) or ""))
    assert tried_with < tried_without / 5, (tried_with, tried_without)
