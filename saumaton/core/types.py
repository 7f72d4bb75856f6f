"""Annotated types for identifiers and other bounded inputs, and the base of every
command the outside world sends.

Every command is an `Input`: unknown fields are refused, no text holds NUL, and values
are taken only as the JSON type they are declared with (no `true` for 1, no `"5"` for 5,
no 5 for "5"; see `_strict_schema`). Names use `Name` (refused when blank, whatever
spaces it is made of), other text a `max_length`: every string is bounded.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    field_validator,
)
from pydantic_core import core_schema

MAX_ID = 2**62
# Products, variants, categories, locations, channels and campaigns have 32-bit keys.
MAX_INT32 = 2**31 - 1
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
SmallId = Annotated[int, Field(ge=1, le=MAX_INT32)]


def reject_nul(value: Any) -> Any:
    """Refuse text with NUL characters, however deeply nested (PostgreSQL cannot store
    them, so accepting them on SQLite would make the two databases disagree)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
    elif isinstance(value, dict):
        for k, v in value.items():
            reject_nul(k)
            reject_nul(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            reject_nul(v)
    return value


# For query and path parameters: Annotated[str, Query(...), NoNul].
NoNul = AfterValidator(reject_nul)

# Characters that show nothing: Unicode white space (str.isspace: also U+00A0 no-break,
# U+2003 em and U+3000 ideographic space) and the zero-width ones isspace() misses.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"
_EDGES = re.compile(rf"^[\s{_INVISIBLE}]+|[\s{_INVISIBLE}]+$")


def visible(text: str) -> bool:
    """True when `text` shows something: not only spaces, zero-width or control chars."""
    return any(not (ch.isspace() or ch in _INVISIBLE
                    or unicodedata.category(ch) in ("Cc", "Cf")) for ch in text)


def trimmed(text: str) -> str:
    """`text` without white space or zero-width characters at either end."""
    return _EDGES.sub("", text)


def _name(value: str) -> str:
    if not visible(value):
        raise ValueError("must not be blank")
    return trimmed(value)


def _optional_name(value: str) -> str:
    return trimmed(value) if visible(value) else ""


# A name that must be given: trimmed, refused when blank (also only no-break, em,
# ideographic or zero-width spaces). Bound it where used:
# `name: Name = Field(max_length=200)` (tests/test_api_inputs.py fails on a string
# without a maximum). The bound is not set here: a bound here would win over the field's.
Name = Annotated[str, AfterValidator(_name)]
# A name that may be left out: trimmed, and "" when it shows nothing. Bound it too.
OptionalName = Annotated[str, AfterValidator(_optional_name)]
# Variant attributes (shade, size…): keys and values bounded, at most 50 pairs.
AttributeKey = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_name)]
AttributeValue = Annotated[str, Field(max_length=200)]
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=50)]

# Core schema types whose lax mode converts between JSON types (bool -> int, "5" -> 5,
# 5 -> 5.0 is fine): validated strictly in every Input.
_STRICT_TYPES = frozenset({"int", "float", "bool", "str", "bytes", "literal", "decimal"})
# Dates and times arrive as ISO 8601 strings (pydantic's strict mode would refuse them
# from a parsed JSON body); numbers (Unix times) and booleans are refused.
_TEMPORAL_TYPES = frozenset({"date", "datetime", "time", "timedelta"})
_TEMPORAL_PY = (date, datetime, time, timedelta)


# What an ISO 8601 text of each kind starts with: pydantic would read "0.5" or "1700000000"
# as a Unix time, which no client of this API means.
_ISO_START = {"date": re.compile(r"\d{4}-\d\d-\d\d"),
              "datetime": re.compile(r"\d{4}-\d\d-\d\d"),
              "time": re.compile(r"\d\d:\d\d"), "timedelta": re.compile(r"-?P")}
_ISO_EXAMPLE = {"date": "2030-01-31", "datetime": "2030-01-31T12:00:00Z", "time": "12:00",
                "timedelta": "PT1H"}


def _iso_only(kind: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str):
            if _ISO_START[kind].match(value):
                return value
        elif isinstance(value, _TEMPORAL_PY):
            return value
        raise ValueError(f"give the {kind} as ISO 8601 text, e.g. {_ISO_EXAMPLE[kind]}")
    return check


# For query parameters (and any model): a date or time given as ISO 8601 text only.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only("datetime"))]
IsoDate = Annotated[date, BeforeValidator(_iso_only("date"))]


def _strict_schema(schema: Any) -> Any:
    """The schema with every scalar validated strictly (in place of a copy)."""
    if isinstance(schema, list):
        return [_strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if not isinstance(kind, str):  # a model's field named "type" (a mapping of fields)
        kind = None
    out: dict[str, Any] = {}
    for key, value in schema.items():
        # serialisation and metadata describe output and docs, not validation
        out[key] = value if key in ("serialization", "metadata", "cls", "function") \
            else _strict_schema(value)
    if kind in _STRICT_TYPES:
        out["strict"] = True
    elif kind in _TEMPORAL_TYPES:
        ref = out.pop("ref", None)
        wrapped = core_schema.no_info_before_validator_function(_iso_only(kind), out)
        if ref is not None:
            wrapped["ref"] = ref
        return wrapped
    return out


class Input(BaseModel):
    """A command from outside: unknown fields are refused, no text holds NUL, and
    every value must have its declared JSON type (strict, see _strict_schema)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel],
                                     handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        schema = handler(source)
        strict: core_schema.CoreSchema = _strict_schema(schema)
        return strict

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)
