"""What the OpenAPI document says beyond what FastAPI derives from the routes, and the
answers to OPTIONS and to a method a path does not have.

Derived from each route, so a new route is documented without being listed here:
- every error is `application/problem+json` (the `Problem` schema),
- a route that declares `api_requires(...)` needs the `bearerAuth` scheme and can answer
  401 and 403; one with a path parameter, a query or a body can answer 404 and 422; one
  with a body 400 (not JSON, or not UTF-8); a write 409; every route 503 (busy),
- operationIds are the routes' `operation_id` or else the handlers' names (unique; a
  clash gets the method and path added).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.routing import compile_path

from saumaton.web.route_access import ApiPermission

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
WRITES = {"post", "put", "patch", "delete"}


class Problem(BaseModel):
    """An error (RFC 9457). `code` is stable: branch on it, not on `detail`."""

    type: str = Field(description="/problems/<code>")
    title: str
    status: int
    code: str = Field(description="e.g. validation_error, malformed_json, not_found, "
                                  "forbidden, out_of_stock, idempotency_key_reused")
    detail: str
    field: str | None = Field(default=None, description="the input the error is about")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="every problem found: for validation_error "
                                  "{loc, msg, type} (loc: body, query, path or header, then "
                                  "the field); for a form of several fields {code, field, "
                                  "message}")


ERRORS: dict[str, str] = {
    "400": "malformed_json: the body is not JSON, or not UTF-8",
    "401": "not_authenticated or invalid_token: send `Authorization: Bearer <token>`",
    "403": "forbidden: the token's roles do not allow this (here, or at this location)",
    "404": "not found (the code names what: order_not_found, variant_not_found…)",
    "409": "conflict with the current state (the code says which)",
    "422": "validation_error (a value has the wrong type, range or form; `errors` lists "
           "them) or a rule of the shop refused it (the code says which)",
    "503": "busy: try again after Retry-After seconds",
}


def _requires(dependant: Dependant) -> bool:
    todo = [dependant]
    while todo:
        d = todo.pop()
        if isinstance(d.call, ApiPermission):
            return True
        todo.extend(d.dependencies)
    return False


def _codes(method: str, op: dict[str, Any], requires: bool) -> list[str]:
    has_input = bool(op.get("parameters")) or "requestBody" in op
    codes = ["503"]
    if requires:
        codes += ["401", "403"]
    if has_input:
        codes += ["404", "422"]
    if "requestBody" in op:
        codes.append("400")
    if method in WRITES:
        codes += ["404", "409", "422"]
    return codes


def document(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses, the security scheme and readable operationIds."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem.pop("$defs", None)
    schemas["Problem"] = problem
    components["securitySchemes"] = {"bearerAuth": {
        "type": "http", "scheme": "bearer",
        "description": "an API token: `saumaton token create` or the back office's staff "
                       "page; a staff session cookie works too"}}
    names: Counter[str] = Counter()
    ops: list[tuple[str, str, dict[str, Any], str]] = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        path_ops = schema["paths"].get(ctx.path or "", {})
        for method in sorted(ctx.methods or ()):
            op = path_ops.get(method.lower())
            if op is None:
                continue
            requires = _requires(route.dependant)
            if requires:
                op["security"] = [{"bearerAuth": []}]
            responses = op.setdefault("responses", {})
            extra = set(_codes(method.lower(), op, requires))
            extra |= {c for c in responses if c[:1] == "4"}
            for code in sorted(extra):
                given = responses.get(code, {})
                responses[code] = {
                    "description": ERRORS.get(code, "error")
                    if given.get("description") in (None, "", "Validation Error")
                    else given["description"],
                    "content": {"application/problem+json": {"schema": PROBLEM_REF}}}
            name = route.operation_id or route.name
            names[name] += 1
            ops.append((method.lower(), ctx.path or "", op, name))
    for method, path, op, name in ops:
        op["operationId"] = name if names[name] == 1 else \
            f"{name}_{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}"
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes, tags=app.openapi_tags,
                servers=app.servers))
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]


def _route_table(app: Any) -> list[tuple[re.Pattern[str], frozenset[str], int]]:
    """(path regex, methods, number of path parameters) of every route, built once."""
    table: list[tuple[re.Pattern[str], frozenset[str], int]] | None = getattr(
        app.state, "route_table", None)
    if table is None:
        table = []
        for ctx in iter_route_contexts(app.routes):
            if ctx.path and ctx.methods:
                regex, _, convertors = compile_path(ctx.path)
                table.append((regex, frozenset(ctx.methods), len(convertors)))
        app.state.route_table = table
    return table


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method the app answers at `path` (with OPTIONS), sorted. Only the most
    specific templates count: `/customers/lookup` is answered by its own route, not by
    `/customers/{customer_id}`, although that template matches the text too."""
    matches = [(methods, params) for regex, methods, params in _route_table(app)
               if regex.match(path)]
    if not matches:
        return []
    fewest = min(params for _, params in matches)
    found: set[str] = set()
    for methods, params in matches:
        if params == fewest:
            found |= methods
    found.add("OPTIONS")
    return sorted(found)


def allow_header(request: Request) -> str:
    return ", ".join(allowed_methods(request.app, request.url.path))
