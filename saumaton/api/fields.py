"""Bounded text fields of the API's admin commands (catalogue, returns, gift cards).

A name must hold something visible: a value of only spaces, including no-break, em and
other Unicode spaces and zero-width characters, is refused as blank (422 with the field).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from saumaton.api.pagination import decode_cursor
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import MAX_ID, Input


class StrictInput(Input):
    """A command whose JSON types are taken as sent: `true` is no number and `"5"` no
    integer (pydantic's strict mode; a body is validated as the parsed JSON)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# Characters Python's str.isspace() does not count as space but that show nothing.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def not_blank(value: str) -> str:
    if not value.strip().strip(_INVISIBLE).strip():
        raise ValueError("must not be blank")
    return value.strip()


Name200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(not_blank)]
Reason200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(not_blank)]


def cursor_ints(cursor: str | None, *fields: str) -> tuple[int, ...] | None:
    """The integer sort key a cursor holds (None for the first page); a cursor whose
    key is not whole numbers answers 422 `invalid_cursor` like any foreign cursor."""
    key = decode_cursor(cursor, *fields)
    if key is None:
        return None
    values = tuple(key[f] for f in fields)
    if not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_ID
               for v in values):
        raise ValidationFailed("this cursor was not made by this list; start again "
                               "without one", code="invalid_cursor", field="cursor")
    return tuple(int(v) for v in values)
