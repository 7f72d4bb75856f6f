"""Cursor pagination for every API list.

A list answers `{"items": [...], "next_cursor": "..." | null}`; the client passes
`cursor=<next_cursor>` for the next page and stops when it is null. The cursor is an
opaque, URL-safe token holding the sort key of the last item sent (keyset pagination:
a page is an index range scan however deep, and rows added meanwhile never shift a page).
A cursor the server did not make answers 422 `invalid_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from saumaton.core.errors import ValidationFailed

T = TypeVar("T")

CursorQuery = Annotated[str | None, Query(
    max_length=400, pattern=r"^[A-Za-z0-9_-]+$",
    description="`next_cursor` of the previous page; leave out for the first page")]
LimitQuery = Annotated[int, Query(ge=1, le=200, description="items per page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next page; null on the last page")


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *fields: str) -> dict[str, Any] | None:
    """The sort key a cursor holds (None for the first page). Every name in `fields`
    must be present; anything else answers 422."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, dict) or any(f not in key for f in fields):
        raise ValidationFailed("this cursor was not made by this list; start again "
                               "without one", code="invalid_cursor", field="cursor")
    return key


def page_of(items: list[T], limit: int, key_of: Any) -> Page[T]:
    """A page from `limit + 1` fetched rows: the extra row only tells that more follow.
    `key_of(item)` gives the sort key the next page starts after."""
    more = len(items) > limit
    items = items[:limit]
    return Page[T](items=items,
                   next_cursor=encode_cursor(key_of(items[-1])) if more and items else None)


MAX_OFFSET = 10_000_000


def offset_from(cursor: str | None) -> int:
    """The position a cursor of an offset-paged list holds (0 for the first page). Used
    where the order is not a unique key a client could resume after (a search ranked by
    name); the cursor stays opaque, so a list can move to keyset paging unseen."""
    key = decode_cursor(cursor, "offset")
    if key is None:
        return 0
    offset = key["offset"]
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed("this cursor was not made by this list; start again "
                               "without one", code="invalid_cursor", field="cursor")
    return offset


def offset_page(items: list[T], limit: int, offset: int) -> Page[T]:
    """A page from `limit + 1` rows fetched at `offset`."""
    return page_of(items, limit, lambda _: {"offset": offset + limit})


def id_after(cursor: str | None) -> int | None:
    """The id a cursor of a newest-first list holds: the next page has smaller ids."""
    key = decode_cursor(cursor, "id")
    if key is None:
        return None
    value = key["id"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**62:
        raise ValidationFailed("this cursor was not made by this list; start again "
                               "without one", code="invalid_cursor", field="cursor")
    return value
