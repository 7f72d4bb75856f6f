"""Route × role matrix: every route of the app (pages, their JSON, the till's JSON, the
API) declares who may call it, and answers every role as its declaration says.

The routes come from the app itself (`iter_route_contexts`: routers are included
lazily), so a new route is checked without being listed here; only its path values
are (PATH_VALUES fails on a parameter it does not know).

A route's declaration is the one dependency of a class in DECLARATIONS it names, first
among its dependencies (see web/route_access.py): `requires` (back office),
`till_requires` (the till, at the store in the path), `service_agent` (the service
desk), `staff_session` (any staff member), `customer_session` (the shopper's own account
pages), `api_requires` (API), `public("why")`. Mounts and FastAPI's own OpenAPI route
cannot name a dependency: they must be in `PUBLIC_MOUNTS` with their reason.

Expected answers, per declaration and role:
- anonymous (or a bearer token on a page: pages read only the session): staff pages
  redirect to the staff login, account pages to the shopper's sign-in, the till's and
  the API's JSON answer 401;
- a staff member without the permission (at the path's store for the till): 403, an
  HTML error page or a problem document;
- with it: anything but 401/403, a login redirect or a server error (a missing object
  is 404, a refused body 422);
- public routes: never 401/403 nor a login redirect.

Writes and the order of checks. FastAPI resolves a route's dependencies before it
validates path, query and body values, and a dependency that raises stops the request
there (fastapi.dependencies.utils.solve_dependencies): the declaration runs first, so a
refused role gets its 401/403 even for a body that would be invalid, and the walk
sends every write to every refused role with an empty body (and the session's CSRF
token, so CSRF is not what refuses it). (A body that is not JSON at all is decoded
before the dependencies: the walk never sends one.) The database is the test session's
shared shop, so writes a role may make are only sent where they cannot change
anything: API routes whose JSON body is required get an empty one (422 after the
permission check: proving the check let the role through); other permitted writes
and public writes of signed-in roles (logging out!) are left to their own tests;
public writes are sent anonymously. Server-sent event streams never end, so they are
called only by roles that must be refused (and each call is bounded by a timeout that
names the route, should one open).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sse_starlette.sse import EventSourceResponse
from starlette.routing import Mount, Route

from saumaton.config import SIMULATOR_PATH
from saumaton.core.actor import Actor
from saumaton.db.uow import Database
from saumaton.service.chat import is_agent
from saumaton.staff.services import actor_for_token
from saumaton.web.backoffice.access import Permission, StaffSession
from saumaton.web.pages import PageRoute
from saumaton.web.pos.routes import TillPermission
from saumaton.web.route_access import PUBLIC_MOUNTS, ApiPermission, CustomerSession, Public
from saumaton.web.service.common import ServiceAgent
from tests.support import Shop, staff_login

DECLARATIONS = (Permission, ApiPermission, Public, CustomerSession, StaffSession,
                TillPermission, ServiceAgent)

# Values for path parameters: a route whose parameter is not here fails the walk, so a
# new route with a new parameter names a value (an id that need not exist: a missing
# object answers 404 after the permission check). Ids name no object at all: an
# object that exists may sit at another store, which a store's role is refused
# (rightly) by the handler, so the walk would depend on which tests made it. `code`
# is a store for the till.
MISSING = "2147483000"  # an id no test makes
PATH_VALUES: dict[str, str] = {
    "customer_id": MISSING, "merge_id": MISSING, "key": "skin_type", "action": "name",
    "order_id": MISSING, "step": "picking", "return_id": MISSING, "notice_id": MISSING,
    "product_id": MISSING, "variant_id": MISSING, "category_id": MISSING, "campaign_id": MISSING,
    "change_id": MISSING, "transfer_id": MISSING, "count_id": MISSING, "staff_id": MISSING,
    "token_id": MISSING, "job_id": MISSING, "kind": "products", "location_code": "store-1",
    "image_id": MISSING, "code": "store-1", "settlement_id": MISSING, "slug": "no-such-product",
    "result": "success", "number": "W-0", "token": "no-such-token",
    "conversation_id": MISSING, "canned_id": MISSING, "address_id": MISSING,
    "z_number": MISSING, "card": "0000000000000000", "webhook_id": MISSING,
    "delivery_id": MISSING, "barcode_id": MISSING,
    "session_id": MISSING, "grant_id": MISSING, "identity_id": MISSING, "tag": "no-such-tag",
    "segment_id": MISSING, "sequence_id": MISSING, "try_id": MISSING, "try_code": "KTNOSUCH",
    "mailing_id": MISSING, "category": "no-such-category",
}
# Query strings for pages that need one to show anything.
# A location-scoped list asks for store 1 (where the store roles work): without one it
# is a list of every location, refused to a role of one store by the handler.
QUERIES: dict[str, str] = {"/backoffice/customers/merge": "?kept=1&merged=2",
                           "/api/v1/stock/movements": "?location_id=1"}
# A path under each mount to ask for (a missing file is fine: it must not be refused).
MOUNT_PROBES: dict[str, str] = {
    "/static": "/static/favicon.svg", "/media": "/media/no-such-picture.jpg",
    SIMULATOR_PATH: f"{SIMULATOR_PATH}/no-such-page",
    "/api/v1/openapi.json": "/api/v1/openapi.json",
}
# The roles: a staff member's session (who logs in), the cashier's API token, and a
# shopper signed in to their account (a staff route treats them as anonymous).
STAFF = ("owner", "manager1", "manager", "cashier1", "service", "finance")
TOKEN = "cashier1-token"
SHOPPER = "shopper"
WHO = ("anonymous", *STAFF, TOKEN, SHOPPER)
WRITES = ("POST", "PUT", "PATCH", "DELETE")
STREAM_TIMEOUT = 20.0  # seconds; an answer to a refused role comes in milliseconds


@dataclass(frozen=True)
class Entry:
    route: RouteContext
    original: APIRoute
    declaration: object | None
    problems: tuple[str, ...]  # more than one declaration, …


def _entries(app: Any) -> list[Entry]:
    out = []
    for r in iter_route_contexts(app.routes):
        original = r.original_route
        if not isinstance(original, APIRoute):
            continue
        dependant = getattr(r, "dependant", None) or original.dependant
        found = [d.call for d in dependant.dependencies if isinstance(d.call, DECLARATIONS)]
        problems: tuple[str, ...] = ()
        if len(found) > 1:
            problems = (f"{len(found)} declarations: "
                        + ", ".join(type(f).__name__ for f in found),)
        elif found and dependant.dependencies[0].call is not found[0]:
            # dependencies run in order: another one first could act for a caller the
            # declaration refuses
            problems = ("the declaration is not the route's first dependency",)
        out.append(Entry(r, original, found[0] if found else None, problems))
    return out


def _others(app: Any) -> list[str]:
    """Mounts and plain routes (FastAPI's OpenAPI document): no dependencies."""
    out = []
    for r in iter_route_contexts(app.routes):
        if isinstance(r.original_route, APIRoute):
            continue
        assert isinstance(r.original_route, Mount | Route), r.original_route
        out.append(r.path or "")
    return out


def _label(e: Entry) -> str:
    return f"{','.join(sorted(e.route.methods or ()))} {e.route.path}"


def _path(route: RouteContext) -> str:
    def value(m: re.Match[str]) -> str:
        name = m[1].split(":")[0]
        assert name in PATH_VALUES, f"{route.path}: add a value for {name!r} to PATH_VALUES"
        return PATH_VALUES[name]
    return re.sub(r"\{([^}]+)\}", value, route.path or "")


def _is_stream(route: APIRoute) -> bool:
    response_class = getattr(route.response_class, "value", route.response_class)
    return isinstance(response_class, type) and issubclass(response_class,
                                                           EventSourceResponse)


def _needs_body(route: APIRoute) -> bool:
    """A write whose JSON body is required: an empty one stops at validation."""
    fields = route.dependant.body_params
    return bool(fields) and all(f.field_info.is_required() for f in fields) and not any(
        type(f.field_info).__name__ in ("Form", "File") for f in fields)


def _app(client: httpx.AsyncClient) -> Any:
    return client._transport.app  # type: ignore[attr-defined]


async def test_every_route_declares_who_may_call_it(client: httpx.AsyncClient) -> None:
    app = _app(client)
    entries = _entries(app)
    assert len(entries) > 250
    undeclared = sorted(_label(e) for e in entries if e.declaration is None)
    ambiguous = sorted(f"{_label(e)}: {p}" for e in entries for p in e.problems)
    unexplained = sorted(p for p in _others(app) if p not in PUBLIC_MOUNTS)
    assert not undeclared, (
        f"{len(undeclared)} routes declare nobody (add requires/api_requires/"
        "till_requires/service_agent/staff_session/customer_session/public):\n"
        + "\n".join(undeclared))
    assert not ambiguous, "\n".join(ambiguous)
    assert not unexplained, f"mounts or routes missing from PUBLIC_MOUNTS: {unexplained}"
    for e in entries:
        if isinstance(e.declaration, Public):
            assert len(e.declaration.why.strip()) > 10, f"{_label(e)}: say why it is public"


async def test_mounts_are_public(client: httpx.AsyncClient) -> None:
    wrong = []
    for mount in _others(_app(client)):
        probe = MOUNT_PROBES.get(mount)
        assert probe, f"{mount}: add a path to MOUNT_PROBES"
        r = await client.get(probe)
        if r.status_code in (401, 403) or r.status_code >= 500:
            wrong.append(f"{probe}: {r.status_code}")
    assert wrong == []
    assert (await client.get("/static/favicon.svg")).status_code == 200
    assert (await client.get("/api/v1/openapi.json")).status_code == 200


def _login_redirect(r: httpx.Response, to: str = "/staff/login") -> bool:
    """The redirect a refused page answers (back to the page after logging in; a bare
    /staff/login is where logging out lands)."""
    return r.status_code == 303 and r.headers.get("location", "").startswith(to + "?next=")


def _page_403(r: httpx.Response) -> bool:
    return r.status_code == 403 and 'data-testid="error-page"' in r.text


def _json_status(r: httpx.Response, status: int) -> bool:
    return r.status_code == status and "json" in r.headers.get("content-type", "")


@dataclass(frozen=True)
class Expect:
    kind: str  # "allowed", "public", "login", "customer-login", "401", "403"


def _expect(e: Entry, who: str, actor: Actor | None, store1: int) -> Expect:
    d = e.declaration
    page = isinstance(e.original, PageRoute)
    session = actor if who != TOKEN else None  # pages read only the session
    if isinstance(d, Public):
        return Expect("public")
    if isinstance(d, CustomerSession):
        return Expect("allowed" if who == SHOPPER else "customer-login")
    if isinstance(d, ApiPermission):
        if actor is None:
            return Expect("401")
        return Expect("allowed" if actor.can(d.permission, everywhere=d.everywhere)
                      else "403")
    if session is None:
        return Expect("login" if page else "401")
    if isinstance(d, StaffSession):
        allowed = True
    elif isinstance(d, Permission):
        allowed = session.can(d.permission, everywhere=d.everywhere)
    elif isinstance(d, TillPermission):
        allowed = session.can(d.permission, store1)
    elif isinstance(d, ServiceAgent):
        allowed = is_agent(session)
    else:
        raise AssertionError(f"{_label(e)}: unknown declaration {d!r}")
    return Expect("allowed" if allowed else "403")


def _answer_ok(expect: Expect, r: httpx.Response, api: bool) -> bool:
    got = r.status_code
    if expect.kind == "login":
        return _login_redirect(r)
    if expect.kind == "customer-login":
        return _login_redirect(r, "/account/login")
    if expect.kind == "401":
        return _json_status(r, 401)
    if expect.kind == "403":
        return _json_status(r, 403) if api else (_page_403(r) or _json_status(r, 403))
    # allowed or public: the route's own answer (the page, a missing object's 404, a
    # refused body's 422), never a refusal, a login redirect or a crash
    return got not in (401, 403) and got < 500 and not _login_redirect(r) \
        and not _login_redirect(r, "/account/login")


def _calls(e: Entry, expect: Expect, who: str) -> list[str]:
    """The methods to send to this route as this role (see the module's docstring)."""
    methods = sorted(m for m in (e.route.methods or ()) if m == "GET" or m in WRITES)
    out = []
    for method in methods:
        if method == "GET":
            if _is_stream(e.original) and expect.kind in ("allowed", "public"):
                continue  # never ends
            out.append(method)
        elif expect.kind == "public":
            if who == "anonymous":
                out.append(method)
        elif expect.kind == "allowed":
            if _needs_body(e.original):
                out.append(method)
        else:
            out.append(method)
    return out


def _csrf(r: httpx.Response) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert m, f"no CSRF token on {r.url}"
    return m[1]


async def _signed_in(c: httpx.AsyncClient, shop: Shop, db: Database,
                     who: str) -> tuple[Actor | None, str, dict[str, str]]:
    """(the role's grants, its CSRF token, headers for every request)."""
    if who in ("anonymous", SHOPPER):
        if who == SHOPPER:  # registering signs the new account in
            r = await c.post("/account/register", data={
                "csrf_token": _csrf(await c.get("/account/register")),
                "first_name": "Matrix", "last_name": "Walk", "password": "matrix-walk-pw-1",
                "email": f"matrix-{uuid.uuid4().hex[:12]}@test.example"})
            assert r.status_code == 303, r.text
            assert (await c.get("/account/password")).status_code == 200
        token = _csrf(await c.get("/staff/login"))  # the session's token (rotated above)
        return None, token, {"X-CSRF-Token": token}
    person = who.removesuffix("-token")
    async with db.reader() as s:
        actor = await actor_for_token(s, shop.tokens[person])
    if who == TOKEN:
        return actor, "", shop.auth(person)
    csrf = await staff_login(c, shop, person)
    return actor, csrf, {"X-CSRF-Token": csrf}


def _request(e: Entry, method: str, url: str, csrf: str,
             headers: dict[str, str]) -> dict[str, Any]:
    """The request's arguments: a write carries the CSRF token and an empty body (JSON
    for the API and the JSON routes, a form with only the token for pages)."""
    if method == "GET":
        return {"headers": headers}
    if isinstance(e.original, PageRoute):
        return {"headers": headers, "data": {"csrf_token": csrf} if csrf else {}}
    return {"headers": {**headers, "Content-Type": "application/json"}, "content": b""}


@pytest.mark.parametrize("who", WHO)
async def test_each_role_gets_what_the_declaration_says(
        client: httpx.AsyncClient, shop: Shop, db: Database, who: str) -> None:
    entries = [e for e in _entries(_app(client)) if e.declaration is not None]
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        actor, csrf, headers = await _signed_in(c, shop, db, who)
        wrong: list[str] = []
        sent = 0
        for e in entries:
            expect = _expect(e, who, actor, shop.store1)
            path = _path(e.route)
            api = isinstance(e.declaration, ApiPermission) or path.startswith("/api/")
            for method in _calls(e, expect, who):
                url = path + (QUERIES.get(e.route.path or "", "") if method == "GET" else "")
                try:
                    if expect.kind == "public" and method != "GET":
                        # a browser of its own: a public write may end the session
                        # (logging out) or start one (signing in)
                        async with httpx.AsyncClient(transport=transport,
                                                     base_url="http://test") as own:
                            _, own_csrf, own_headers = await _signed_in(own, shop, db, who)
                            r = await asyncio.wait_for(own.request(
                                method, url, **_request(e, method, url, own_csrf,
                                                        own_headers)), STREAM_TIMEOUT)
                    else:
                        r = await asyncio.wait_for(c.request(
                            method, url, **_request(e, method, url, csrf, headers)),
                            STREAM_TIMEOUT)
                except TimeoutError:
                    wrong.append(f"{method} {url} as {who}: no answer in "
                                 f"{STREAM_TIMEOUT:.0f} s (expected {expect.kind})")
                    continue
                sent += 1
                if not _answer_ok(expect, r, api):
                    wrong.append(f"{method} {url} as {who} ({_what(e)}): {r.status_code} "
                                 f"{r.headers.get('location', '')} (expected {expect.kind})")
        assert sent > 100
        assert wrong == [], "\n".join(wrong)


def _what(e: Entry) -> str:
    d = e.declaration
    need = getattr(d, "permission", None)
    return type(d).__name__ + (f" {need}" if need else "")


async def test_a_till_is_refused_at_another_store(client: httpx.AsyncClient,
                                                  shop: Shop) -> None:
    """The till's declaration checks the store in the path: store 1's cashier may sell
    there and is refused at store 2, page and JSON alike."""
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        await staff_login(c, shop, "cashier1")
        assert (await c.get("/pos/store-1/customers")).status_code == 200
        assert _page_403(await c.get("/pos/store-2/customers"))
        assert _json_status(await c.get("/pos/store-2/api/catalogue"), 403)
        assert (await c.get("/pos/store-1/api/catalogue")).status_code == 200
