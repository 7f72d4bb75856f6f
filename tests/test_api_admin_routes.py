"""Every route of this issue's back-office API modules declares who may call it (an
`api_requires` permission), answers a declared response model, and takes only
bounded text: what the route × role matrix and schemathesis rely on."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from saumaton.api import (
    catalogue_admin,
    followups,
    fulfilment,
    giftcards_admin,
    returns_admin,
    stock_admin,
)
from saumaton.web.route_access import ApiPermission

MODULES = (catalogue_admin, stock_admin, returns_admin, giftcards_admin, fulfilment,
           followups)
ROUTES = [r for m in MODULES for r in m.router.routes if isinstance(r, APIRoute)]


def permissions(route: APIRoute) -> list[str]:
    return [d.call.permission for d in route.dependant.dependencies
            if isinstance(d.call, ApiPermission)]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{sorted(r.methods)} {r.path}")
def test_route_declares_a_permission_and_a_response(route: APIRoute) -> None:
    assert len(permissions(route)) == 1, route.path
    assert route.status_code == 204 or route.response_model is not None, route.path


def _bounded(metadata: list[Any]) -> bool:
    """A max_length, or an anchored pattern without an open-ended repeat."""
    for m in metadata:
        if isinstance(m, FieldInfo) and _bounded(m.metadata):
            return True
        if getattr(m, "max_length", None):
            return True
        pattern = getattr(m, "pattern", None)
        if isinstance(pattern, str) and pattern.startswith("^") and pattern.endswith("$") \
                and not any(t in pattern for t in ("*", "+", ",}")):
            return True
    return False


def unbounded_strings(model: type[BaseModel], seen: set[type] | None = None) -> list[str]:
    """Text fields of `model` (and the models it holds) without a max_length."""
    seen = seen if seen is not None else set()
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, field in model.model_fields.items():
        ann: Any = field.annotation
        options = get_args(ann) if get_origin(ann) in (Union, UnionType) else (ann,)
        for opt in options:
            if opt is str and not _bounded(field.metadata):
                out.append(f"{model.__name__}.{name}")
            elif get_origin(opt) is Annotated and get_args(opt)[0] is str \
                    and not _bounded(list(get_args(opt)[1:])):
                out.append(f"{model.__name__}.{name}")
            elif get_origin(opt) is list:
                inner = get_args(opt)[0]
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    out += unbounded_strings(inner, seen)
                elif inner is str:
                    out.append(f"{model.__name__}.{name}[]")
            elif isinstance(opt, type) and issubclass(opt, BaseModel):
                out += unbounded_strings(opt, seen)
    return out


def test_the_bound_check_finds_an_unbounded_string() -> None:
    class Inner(BaseModel):
        note: str

    class Outer(BaseModel):
        name: Annotated[str, "no bound"] | None = None
        ok: str = Field(max_length=5)
        code: str = Field(pattern="^(a|b)$")
        free: str = Field(pattern="^a+$")
        lines: list[Inner]

    assert unbounded_strings(Outer) == ["Outer.name", "Outer.free", "Inner.note"]


def test_every_input_string_is_bounded() -> None:
    bodies = {r.body_field.field_info.annotation for r in ROUTES if r.body_field is not None}
    bodies = {b for b in bodies if isinstance(b, type) and issubclass(b, BaseModel)}
    assert bodies, "the modules take bodies"
    assert [f for b in bodies for f in unbounded_strings(b)] == []
