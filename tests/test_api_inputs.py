"""Every command the outside world sends is bounded and strictly typed (issue 14: F4,
F5, F8): a walk over every `Input` subclass and every request schema of the OpenAPI
document fails on a string without a maximum length."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from pydantic import ValidationError

import saumaton
from saumaton.core.types import Input, trimmed, visible
from saumaton.customers.services import CustomerIn


def _all_inputs() -> list[type[Input]]:
    for info in pkgutil.walk_packages(saumaton.__path__, "saumaton."):
        if ".locale" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    seen: list[type[Input]] = []
    todo: list[type[Input]] = [Input]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return seen


def _unbounded(schema: Any, defs: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    """Paths of string schemas (also dict keys) without maxLength, enum or const."""
    out: list[str] = []
    if isinstance(schema, list):
        for i, s in enumerate(schema):
            out += _unbounded(s, defs, f"{path}[{i}]", seen)
        return out
    if not isinstance(schema, dict):
        return out
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            out += _unbounded(defs[name], defs, name, seen)
        return out
    if schema.get("type") == "string" and "maxLength" not in schema \
            and "enum" not in schema and "const" not in schema \
            and schema.get("format") not in ("date", "date-time", "time", "duration"):
        out.append(path)
    for key in ("properties",):
        for name, sub in schema.get(key, {}).items():
            out += _unbounded(sub, defs, f"{path}.{name}", seen)
    for key in ("items", "additionalProperties", "propertyNames"):
        if key in schema:
            out += _unbounded(schema[key], defs, f"{path}.{key}", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            out += _unbounded(schema[key], defs, path, seen)
    return out


def test_every_input_string_is_bounded() -> None:
    inputs = _all_inputs()
    assert len(inputs) > 20  # the walk found the commands
    problems: list[str] = []
    for cls in inputs:
        schema = cls.model_json_schema()
        problems += _unbounded(schema, schema.get("$defs", {}), cls.__name__, set())
    assert not problems, f"strings without max_length: {sorted(set(problems))}"


def test_every_request_schema_of_the_api_is_bounded(app_schema: dict[str, Any]) -> None:
    defs = app_schema["components"]["schemas"]
    problems: list[str] = []
    for path, ops in app_schema["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                problems += _unbounded(p.get("schema", {}), defs,
                                       f"{method} {path} {p['name']}", set())
            for media in op.get("requestBody", {}).get("content", {}).values():
                problems += _unbounded(media.get("schema", {}), defs,
                                       f"{method} {path} body", set())
    assert not problems, f"unbounded request strings: {sorted(set(problems))}"


@pytest.fixture(scope="module")
def app_schema() -> dict[str, Any]:
    from saumaton.web.app import create_app
    return create_app().openapi()


@pytest.mark.parametrize("value", [True, "5", 5.0, None, [1]])
def test_an_integer_is_only_a_json_integer(value: Any) -> None:
    from saumaton.api.catalogue import PriceIn
    with pytest.raises(ValidationError):
        PriceIn.model_validate({"price_cents": value})
    assert PriceIn.model_validate({"price_cents": 5}).price_cents == 5


def test_lists_and_nested_models_are_strict_too() -> None:
    from saumaton.orders.schemas import OrderIn
    with pytest.raises(ValidationError) as info:
        OrderIn.model_validate({"channel": "web", "lines": [{"variant_id": True,
                                                             "quantity": "5"}]})
    assert {e["type"] for e in info.value.errors()} == {"int_type"}
    from saumaton.pricing.services import CampaignIn
    with pytest.raises(ValidationError):
        CampaignIn.model_validate({"name": "x", "kind": "percent", "value": 10,
                                   "starts_at": "2030-01-01T00:00:00Z",
                                   "variant_ids": [True]})


BLANKS = [" ", "   ", "\u00a0", "\u2003\u2003", "\u200b", "\u3000", " \u00a0\u2003\u200b\t"]


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_text_is_not_visible(blank: str) -> None:
    assert not visible(blank)
    assert trimmed(f"{blank}Anna{blank}") == "Anna"


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_customer_name_is_no_name(blank: str) -> None:
    blank_one = CustomerIn.model_validate({"first_name": blank, "last_name": blank})
    assert (blank_one.first_name, blank_one.last_name) == ("", "")
    ok = CustomerIn.model_validate({"first_name": f"{blank}Anna", "last_name": blank})
    assert (ok.first_name, ok.last_name) == ("Anna", "")
    assert CustomerIn.model_validate({"email": "a@example.com"}).first_name == ""


def test_variant_attributes_are_bounded() -> None:
    from saumaton.catalogue.schemas import VariantIn
    base = {"sku": "S1", "price_cents": 100}
    with pytest.raises(ValidationError):
        VariantIn.model_validate({**base, "attributes": {"shade": "x" * 1_000_000}})
    with pytest.raises(ValidationError):
        VariantIn.model_validate({**base, "attributes": {"k" * 51: "x"}})
    with pytest.raises(ValidationError):
        VariantIn.model_validate({**base, "attributes": {f"k{i}": "x" for i in range(51)}})
    assert VariantIn.model_validate({**base, "attributes": {"shade": "x" * 200}})
