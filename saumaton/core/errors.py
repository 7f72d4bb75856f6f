"""Domain errors. Each carries a stable machine-readable code and an HTTP status
so every channel (API, pages, CLI) reports the same thing the same way."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 422
    code = "invalid"

    def __init__(
        self, detail: str, *, code: str | None = None, field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.field = field
        self.extra = extra or {}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class OutOfStock(Conflict):
    code = "out_of_stock"


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
