"""Errors as RFC 9457 application/problem+json with a stable `code`.

Nothing a client sends may produce a 500: validation errors, unknown routes,
values the database refuses (out-of-range integers, NUL bytes) all map to 4xx.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from saumaton.api.openapi import allow_header, allowed_methods
from saumaton.core.errors import DomainError
from saumaton.db.retry import is_retryable

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

_HTTP_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden",
               404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
               409: "conflict", 413: "too_large", 415: "unsupported_media_type",
               422: "validation_error", 429: "too_many_requests"}


def problem(status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"/problems/{code}", "title": code.replace("_", " "),
                            "status": status, "code": code, "detail": detail}
    # An error's own facts never replace the standard members (a "status" of the thing
    # refused is not the HTTP status).
    body.update({k: v for k, v in extra.items() if v is not None and k not in body})
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


# FastAPI's detail for a JSON body it could not decode (e.g. not UTF-8).
BODY_NOT_PARSED = "There was an error parsing the body"


def malformed() -> JSONResponse:
    """400: the body is not JSON (or not UTF-8), so no field could be checked; a body
    that is JSON but has wrong values answers 422 validation_error."""
    return problem(400, "malformed_json", "the body is not valid JSON in UTF-8")


def domain_problem(exc: DomainError) -> JSONResponse:
    # A refusal that passes with time (429 too_many_attempts) says when, as a header too.
    retry = exc.extra.get("retry_after") if exc.status in (429, 503) else None
    extra = {k: v for k, v in exc.extra.items()
             if k not in ("status", "code", "detail", "headers")}
    return problem(exc.status, exc.code, exc.detail, field=exc.field,
                   headers={"Retry-After": str(retry)} if retry is not None else None,
                   **extra)


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))})
    return out


def refused_value(exc: BaseException) -> bool:
    """True when the database refused a value the client sent: an integer too big for
    its column, NUL in text, a date out of range. Such errors reach us wrapped by
    SQLAlchemy (or not, from statements run on the asyncpg connection directly) and,
    on SQLite, as Python's OverflowError."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, DataError | OverflowError | asyncpg.DataError):
            return True
        # asyncpg refusing to encode an argument (e.g. "value out of int32 range")
        if isinstance(e, asyncpg.InterfaceError) and isinstance(e, ValueError):
            return True
        sqlstate = getattr(e, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):  # class 22: data exception
            return True
        orig = getattr(e, "orig", None)
        todo.extend([orig if isinstance(orig, BaseException) else None,
                     e.__cause__, e.__context__])
    return False


def http_problem(exc: StarletteHTTPException, request: Request | None = None) -> Response:
    if exc.status_code == 405 and request is not None:
        # Starlette names only the first route that matched the path; the path may
        # have several (GET and POST of a list are two routes).
        allow = allow_header(request)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        return problem(405, "method_not_allowed", f"{request.method} is not allowed here",
                       headers={"Allow": allow})
    if exc.status_code == 400 and exc.detail == BODY_NOT_PARSED:
        return malformed()  # FastAPI's answer to a body that is not UTF-8
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    # keep the headers the error carries, e.g. Allow on a 405
    return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)


class MethodCheckMiddleware:
    """/api/v1: a method the path's own route does not take answers 405 with a true
    `Allow` (OPTIONS: 204 with it), before routing could hand the request to a less
    specific template (PATCH /customers/lookup is not PATCH /customers/{id})."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.root: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/v1/"):
            root = scope.get("app")
            allowed = allowed_methods(root, scope["path"]) if root is not None else []
            method = scope["method"]
            if allowed and method not in allowed:
                response = problem(405, "method_not_allowed", f"{method} is not allowed here",
                                   headers={"Allow": ", ".join(allowed)})
                await response(scope, receive, send)
                return
            if method == "OPTIONS" and allowed:
                await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return malformed()
        errors = _clean_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        field = ".".join(p for p in first["loc"] if p not in ("body", "query", "path", "header"))
        detail = f"{field}: {first['msg']}" if field else str(first["msg"])
        return problem(422, "validation_error", detail, field=field or None, errors=errors)

    # A command validated inside a handler (a merged PATCH, a body read by hand): the
    # client's values were wrong, as with FastAPI's own validation.
    @app.exception_handler(ValidationError)
    async def _model(request: Request, exc: ValidationError) -> JSONResponse:
        return await _validation(request, RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return http_problem(exc, request)

    def _refused() -> JSONResponse:
        return problem(422, "invalid_value",
                       "a value is out of range or not valid text for the database")

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        return _refused()

    # Other driver errors: a refused value is the client's; anything else is ours (500).
    @app.exception_handler(DBAPIError)
    async def _dbapi(_: Request, exc: DBAPIError) -> JSONResponse:
        if refused_value(exc):
            return _refused()
        if is_retryable(exc):
            # a deadlock victim or serialization failure: rolled back whole, so the
            # client may simply try again
            log.warning("transaction aborted as retryable: %s", exc.orig)
            return problem(503, "busy", "the shop is very busy right now; try again in "
                           "a moment", headers={"Retry-After": "1"})
        raise exc

    @app.exception_handler(asyncpg.PostgresError)
    async def _pg(_: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        if refused_value(exc):
            return _refused()
        raise exc

    @app.exception_handler(asyncpg.InterfaceError)
    async def _pg_client(_: Request, exc: asyncpg.InterfaceError) -> JSONResponse:
        if refused_value(exc):
            return _refused()
        raise exc

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        return _refused()

    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every database connection of this process stayed busy for pool_timeout:
        # nothing was done, so the client may simply try again.
        log.warning("database pool exhausted: %s", exc)
        return problem(503, "busy", "the shop is very busy right now; try again in a moment",
                       headers={"Retry-After": "2"})

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error reached the API: %s", exc.orig)
        return problem(409, "conflict", "the change conflicts with existing data")
