"""Reading instants back from expressions (coalesce) whose column type SQLite loses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def aware_utc(value: Any) -> datetime:
    """An aware UTC datetime from a naive UTC datetime, an aware one, or SQLite's text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
