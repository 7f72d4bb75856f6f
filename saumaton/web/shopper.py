"""The signed-in shopper of a browser (session key "shopper": a session token).

The cookie holds only the token of a server-side session (customers/sessions.py); the
session row decides. `ShopperMiddleware` resolves it once per request, before any
handler runs, so that `current_customer_id` stays a plain synchronous read. Look-ups
are cached per process for CACHE_TTL seconds (web/revocable_cache.py); a revocation
drops the customer's entries at once: in this process right after the commit, in every
other process when the outbox event `shopper.revoked` arrives (`follow_shopper_events`,
started in the app's lifespan). A cookie from before server-side sessions (a bare "customer_id") is
cleared, never believed.

Shopper and staff sign-ins live side by side in the one session cookie: signing a
shopper in or out leaves the staff keys alone. Signing in rotates the CSRF token,
so a token seen before sign-in is no use afterwards.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from saumaton.customers import sessions
from saumaton.db.uow import Database
from saumaton.events.hub import EventHub
from saumaton.web.revocable_cache import RevocableCache, follow_revocations

SESSION_KEY = "shopper"
LEGACY_KEY = "customer_id"  # the signed cookie's customer id before server-side sessions
STATE_KEY = "shopper_id"
# Shopper sessions are looked up once per TTL per process, not once per request;
# revocations drop the customer's entries at once (web/revocable_cache.py).
CACHE_TTL = 30.0
cache: RevocableCache[int] = RevocableCache(owner_of=lambda customer_id: customer_id,
                                            ttl=CACHE_TTL)
sessions.on_sessions_revoked.append(cache.forget)


async def follow_shopper_events(hub: EventHub) -> None:
    """Run for the app's life: evict a customer's cached sessions when another process
    (or the CLI) ends them."""
    await follow_revocations(hub, lambda e: e.topic == sessions.REVOKED_TOPIC,
                             "customer_id", (cache,), "shopper")


async def _lookup(db: Database, token: str) -> int | None:
    hit = cache.get(token)
    if hit is not None:
        return hit
    generation = cache.generation
    async with db.reader() as s:
        customer_id = await sessions.session_customer(s, token)
    if customer_id is not None:
        cache.put(token, customer_id, generation)
    return customer_id


async def resolve_shopper(request: Request) -> int | None:
    """Who is signed in on this browser, for the rest of the request
    (`current_customer_id`); a dead or old-style session's keys leave the cookie."""
    customer_id: int | None = None
    if "session" in request.scope:
        session = request.session
        session.pop(LEGACY_KEY, None)
        token = session.get(SESSION_KEY)
        db: Database | None = getattr(request.app.state, "db", None)
        if isinstance(token, str) and db is not None:
            customer_id = await _lookup(db, token)
        if customer_id is None:
            session.pop(SESSION_KEY, None)
    setattr(request.state, STATE_KEY, customer_id)
    return customer_id


def current_customer_id(request: Request) -> int | None:
    """The signed-in customer of this request (resolved by ShopperMiddleware)."""
    value = getattr(request.state, STATE_KEY, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def shopper_token(request: Request) -> str | None:
    token = request.session.get(SESSION_KEY)
    return token if isinstance(token, str) else None


def sign_in_shopper(request: Request, session_token: str, customer_id: int) -> None:
    """Put a server-side session's token (customers.sessions.sign_in) into the cookie."""
    request.session[SESSION_KEY] = session_token
    request.session["csrf"] = secrets.token_urlsafe(24)
    setattr(request.state, STATE_KEY, customer_id)


async def sign_out_shopper(request: Request) -> None:
    """End the browser's shopper session server-side (a copy of the cookie dies too)
    and take it out of the cookie."""
    token = request.session.pop(SESSION_KEY, None)
    setattr(request.state, STATE_KEY, None)
    if isinstance(token, str):
        db: Database = request.app.state.db
        async with db.uow() as uow:
            await sessions.sign_out(uow, token)
            await uow.commit()


class ShopperMiddleware:
    """Resolves the shopper session before the routes run. Must sit inside
    SessionMiddleware (added before it), so that it reads the decoded cookie and a
    cleared key is saved with the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await resolve_shopper(Request(scope))
        await self.app(scope, receive, send)
