"""Who is calling: an API bearer token or a staff session cookie.

Cookie-authenticated writes must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`); bearer-token calls need none.
"""

from __future__ import annotations

import hmac
import secrets
import time

from fastapi import Request

from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotAuthenticated
from saumaton.db.uow import Database
from saumaton.staff.services import actor_for, actor_for_token

_SAFE = {"GET", "HEAD", "OPTIONS"}
# Tokens are looked up once per few seconds per process, not once per request.
_TOKEN_TTL = 5.0
_token_cache: dict[str, tuple[float, Actor]] = {}
# The same for logged-in staff: roles are read once per staff member per _TOKEN_TTL.
_staff_cache: dict[int, tuple[float, Actor | None]] = {}


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
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
    now = time.monotonic()
    hit = _token_cache.get(token)
    if hit and hit[0] > now:
        return hit[1]
    async with db_of(request).reader() as s:
        actor = await actor_for_token(s, token)
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[token] = (now + _TOKEN_TTL, actor)
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
    """The logged-in staff member of this browser session, if any."""
    staff_id = request.session.get("staff_id")
    if not isinstance(staff_id, int):
        return None
    now = time.monotonic()
    hit = _staff_cache.get(staff_id)
    if hit and hit[0] > now:
        actor: Actor | None = hit[1]
    else:
        async with db_of(request).reader() as s:
            actor = await actor_for(s, staff_id)
        if len(_staff_cache) > 10_000:
            _staff_cache.clear()
        _staff_cache[staff_id] = (now + _TOKEN_TTL, actor)
    if actor is None:
        request.session.clear()
    request.state.actor = actor
    return actor


async def require_actor(request: Request) -> Actor:
    actor = await optional_actor(request)
    if actor is None:
        raise NotAuthenticated("log in or send an API token", code="not_authenticated")
    return actor


def login_session(request: Request, actor: Actor) -> None:
    request.session.clear()
    request.session["staff_id"] = actor.staff_id
    request.session["csrf"] = secrets.token_urlsafe(24)


def logout_session(request: Request) -> None:
    request.session.clear()
