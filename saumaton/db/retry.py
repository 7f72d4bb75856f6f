"""Running a whole transaction again when PostgreSQL chose it as a deadlock victim (or
refused it as a serialization failure): the database rolled it back, so nothing of it
happened and running it again is safe. For entry points whose transaction takes locks
in an order another process may take the other way round (deleting a webhook
subscription while the delivery worker holds its deliveries)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
RETRYABLE = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def is_retryable(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) is a deadlock or serialization failure."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if getattr(e, "sqlstate", None) in RETRYABLE:
            return True
        orig = getattr(e, "orig", None)
        todo.extend([orig if isinstance(orig, BaseException) else None,
                     e.__cause__, e.__context__])
    return False


async def retried(transaction: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """`transaction()` (which opens, does and commits one unit of work), again up to
    `tries` times in all while the database aborts it as retryable."""
    for attempt in range(1, tries + 1):
        try:
            return await transaction()
        except Exception as exc:
            if attempt == tries or not is_retryable(exc):
                raise
    raise AssertionError("unreachable")
