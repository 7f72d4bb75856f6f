"""Who is calling: an API bearer token or a staff session cookie.

Cookie-authenticated writes must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`); bearer-token calls need none.

The signed session cookie holds only a server-side session's token (`sid`); the
session row decides (staff/sessions.py). Look-ups of sessions and tokens are cached
per process for speed (the till makes many requests); a revocation or a change of
roles drops the person's entries at once: in this process right after the commit,
in every other process when the outbox event `staff.revoked`/`staff.changed` arrives
(`follow_staff_events`, started in the app's lifespan).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotAuthenticated
from saumaton.db.uow import Database
from saumaton.events.hub import EventHub
from saumaton.staff.events import STAFF_TOPICS, on_staff_changed
from saumaton.staff.services import actor_for_token
from saumaton.staff.sessions import session_staff
from saumaton.web.revocable_cache import RevocableCache, follow_revocations

_SAFE = {"GET", "HEAD", "OPTIONS"}
# Sessions and tokens are looked up once per TTL per process, not once per request;
# revocations and role changes drop the person's entries at once (web/revocable_cache.py).
token_cache: RevocableCache[Actor] = RevocableCache(owner_of=lambda a: a.staff_id)
session_cache: RevocableCache[Actor] = RevocableCache(owner_of=lambda a: a.staff_id)


def forget_staff(staff_id: int) -> None:
    """Drop every cached session and token of the person (revoked, disabled, roles
    changed): their next request reads the database."""
    session_cache.forget(staff_id)
    token_cache.forget(staff_id)


on_staff_changed.append(forget_staff)


async def follow_staff_events(hub: EventHub) -> None:
    """Run for the app's life: evict a person's cached sessions and tokens when another
    process (or the CLI) revokes or changes them."""
    await follow_revocations(hub, lambda e: e.topic in STAFF_TOPICS, "staff_id",
                             (session_cache, token_cache), "staff")


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def reports_db_of(request: Request) -> Database:
    """The database reports read: SAUMATON_REPORTS_DATABASE_URL (a read replica) or the
    main one. Only reads go through it; the reports job writes the summaries on the
    main database."""
    db: Database = request.app.state.reports_db
    return db


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not submitted or not hmac.compare_digest(
            str(expected).encode(), submitted.encode()):  # bytes: any text is safe
        raise Forbidden("missing or wrong CSRF token; reload the page", code="csrf_failed")


async def _bearer_actor(request: Request, token: str) -> Actor:
    hit = token_cache.get(token)
    if hit is not None:
        return hit
    generation = token_cache.generation
    async with db_of(request).reader() as s:
        actor = await actor_for_token(s, token)
    token_cache.put(token, actor, generation)
    return actor


async def optional_actor(request: Request) -> Actor | None:
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("use 'Authorization: Bearer <token>'", code="invalid_token")
        return await _bearer_actor(request, token.strip())
    actor = await session_actor(request)
    if actor is not None and request.method not in _SAFE:
        check_csrf(request, request.headers.get("x-csrf-token"))
    return actor


async def session_actor(request: Request) -> Actor | None:
    """The logged-in staff member of this browser session, if any: the session must be
    live server-side (not logged out, revoked or expired; the person not disabled)."""
    sid = request.session.get("sid")
    if not isinstance(sid, str):
        if "staff_id" in request.session:  # a cookie from before server-side sessions
            request.session.clear()
        return None
    actor = session_cache.get(sid)
    if actor is None:
        generation = session_cache.generation
        async with db_of(request).reader() as s:
            actor = await session_staff(s, sid)
        if actor is not None:
            session_cache.put(sid, actor, generation)
    if actor is None:
        request.session.clear()
    request.state.actor = actor
    return actor


async def require_actor(request: Request) -> Actor:
    actor = await optional_actor(request)
    if actor is None:
        raise NotAuthenticated("log in or send an API token", code="not_authenticated")
    return actor


def login_session(request: Request, session_token: str) -> None:
    """Put a server-side session's token (staff.sessions.sign_in) into the cookie."""
    request.session.clear()
    request.session["sid"] = session_token
    request.session["csrf"] = secrets.token_urlsafe(24)


def session_token(request: Request) -> str | None:
    sid = request.session.get("sid")
    return sid if isinstance(sid, str) else None


def logout_session(request: Request) -> None:
    request.session.clear()
