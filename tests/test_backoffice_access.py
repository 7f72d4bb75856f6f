"""Every back-office route declares the permission it needs, and answers each role as that
permission says: the login page for a signed-out browser, the HTML 403 page for a role
without it, the page for a role with it. The walk finds the routes from the app itself,
so a new page is checked without being listed here (only its path values are)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from saumaton.core.actor import Actor, RoleGrant
from saumaton.web.backoffice.access import Permission
from tests.support import Shop, staff_login

ROLES: dict[str, tuple[RoleGrant, ...]] = {}  # filled from the shop: role -> grants

# Values for path parameters: a route whose parameter is not here fails the walk, so a
# new route with a new parameter names a value (an id that need not exist: a missing
# object answers 404 after the permission check). Ids name no object at all: an
# object that exists may sit at another store, which a store's role is refused
# (rightly) by the handler, so the walk would depend on which tests made it.
MISSING = "2147483000"  # an id no test makes
PATH_VALUES: dict[str, str] = {
    "customer_id": MISSING, "merge_id": MISSING, "key": "skin_type", "action": "verify",
    "order_id": MISSING, "step": "picking", "return_id": MISSING, "notice_id": MISSING,
    "product_id": MISSING, "variant_id": MISSING, "category_id": MISSING, "campaign_id": MISSING,
    "change_id": MISSING, "transfer_id": MISSING, "count_id": MISSING, "staff_id": MISSING,
    "token_id": MISSING, "job_id": MISSING, "kind": "products", "location_code": "store-1",
    "image_id": MISSING, "code": "store-1", "settlement_id": MISSING, "webhook_id": MISSING,
    "delivery_id": MISSING, "segment_id": MISSING, "sequence_id": MISSING,
    "mailing_id": MISSING,
}
# Query strings for pages that need one to show anything.
QUERIES: dict[str, str] = {"/backoffice/customers/merge": "?kept=1&merged=2"}
WHO = ("owner", "manager", "manager1", "cashier1", "service", "finance")


def _backoffice_routes(app: Any) -> list[RouteContext]:
    """Every route under /backoffice, with its full path (routers are included lazily)."""
    return [r for r in iter_route_contexts(app.routes)
            if isinstance(r.original_route, APIRoute) and (r.path or "").startswith(
                "/backoffice")]


def _permission(route: RouteContext) -> Permission | None:
    original = route.original_route
    assert isinstance(original, APIRoute)
    for dep in original.dependant.dependencies:
        if isinstance(dep.call, Permission):
            return dep.call
    return None


def _path(route: RouteContext) -> str:
    def value(m: re.Match[str]) -> str:
        name = m[1].split(":")[0]
        assert name in PATH_VALUES, f"{route.path}: add a value for {name!r} to PATH_VALUES"
        return PATH_VALUES[name]
    return re.sub(r"\{([^}]+)\}", value, route.path or "")


async def test_every_backoffice_route_declares_a_permission(client: httpx.AsyncClient) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    routes = _backoffice_routes(app)
    assert len(routes) > 10
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in routes if _permission(r) is None]
    assert undeclared == []


@pytest.mark.parametrize("who", ("anonymous", *WHO))
async def test_each_role_gets_what_its_permission_says(
        client: httpx.AsyncClient, shop: Shop, who: str) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        actor: Actor | None = None
        csrf = ""
        if who != "anonymous":
            csrf = await staff_login(c, shop, who)
            actor = await _actor_of(c)
        wrong = []
        for route in _backoffice_routes(app):
            need = _permission(route)
            assert need is not None, route.path
            path = _path(route)
            if route.path in QUERIES and "GET" in (route.methods or ()):
                path += QUERIES[route.path]
            allowed = actor is not None and actor.can(need.permission,
                                                      everywhere=need.everywhere)
            for method in sorted(route.methods or ()):
                if method not in ("GET", "POST"):
                    continue
                if method == "POST" and allowed:
                    continue  # a permitted write would change data; its own tests cover it
                r = await c.request(method, path, data={"csrf_token": csrf},
                                    headers={"X-CSRF-Token": csrf} if csrf else {})
                got = r.status_code
                if actor is None:
                    ok = got == 303 and r.headers["location"].startswith("/staff/login")
                elif not allowed:
                    ok = got == 403 and 'data-testid="error-page"' in r.text
                else:
                    # The page, or its answer about the object (missing, in another
                    # state): never a refusal, a login page, a server error or JSON.
                    kind = r.headers.get("content-type", "text/html")
                    ok = got < 500 and got not in (401, 403) and (
                        "text/html" in kind or ("text/csv" in kind and "/export/" in path))
                    if got == 303:
                        ok = not r.headers["location"].startswith("/staff/login")
                    if got == 404:  # only for a missing object, never a missing page
                        ok = 'data-testid="error-page"' in r.text
                if not ok:
                    wrong.append(f"{method} {path} as {who} ({need.permission}): {got}")
        assert wrong == []


async def _actor_of(c: httpx.AsyncClient) -> Actor:
    """The logged-in person's grants, read back from the staff home's data attribute."""
    r = await c.get("/staff/")
    assert r.status_code == 200
    grants = re.findall(r'data-grant="([a-z]+):(\d*)"', r.text)
    return Actor(label="walk", grants=tuple(
        RoleGrant(role, int(loc) if loc else None) for role, loc in grants))


async def test_backoffice_home_and_unknown_pages_are_html(client: httpx.AsyncClient,
                                                          shop: Shop) -> None:
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        r = await c.get("/backoffice/")
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
        await staff_login(c, shop, "owner")
        r = await c.get("/backoffice/")
        assert r.status_code == 200 and 'data-testid="bo-nav"' in r.text
        r = await c.get("/backoffice/no-such-page")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
        assert 'data-testid="error-page"' in r.text
        # the API keeps its problem documents
        r = await c.get("/api/v1/no-such-thing")
        assert r.status_code == 404 and r.headers["content-type"].startswith(
            "application/problem+json")


async def test_login_lands_on_the_staff_home_by_role(client: httpx.AsyncClient,
                                                     shop: Shop) -> None:
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        page = (await c.get("/staff/login")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        email, pw = shop.logins["cashier1"]
        r = await c.post("/staff/login", data={"email": email, "password": pw,
                                               "csrf_token": token[1]})
        assert r.status_code == 303 and r.headers["location"] == "/staff/"
        home = (await c.get("/staff/", headers={"Accept-Language": "fi"})).text
        assert 'data-testid="home-till-store-1"' in home
        assert 'data-testid="home-till-store-2"' not in home  # not her store
        assert 'data-testid="home-backoffice"' in home  # orders and returns of her store
        assert 'data-testid="home-reports"' not in home
        assert "Kassa: Store Helsinki" in home
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        await staff_login(c, shop, "owner")
        home = (await c.get("/staff/?lang=en")).text
        for tile in ("till-store-1", "till-store-2", "service", "backoffice", "reports"):
            assert f'data-testid="home-{tile}"' in home
        assert "Till: Store Tampere" in home
