"""Annotated types for identifiers and other bounded inputs, and the base of every
command the outside world sends."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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


class Input(BaseModel):
    """A command from outside: unknown fields are refused and no text holds NUL."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)
