"""Telling every process that a person's sessions, tokens or roles changed.

Processes cache session and token look-ups for speed. Every revocation emits the outbox
event `staff.revoked` (a change of roles `staff.changed`), which reaches every app
process through the event hub; listeners in this process (`on_staff_changed`) are
called right after the commit, so the process that made the change never serves the
old state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from saumaton.db.uow import UnitOfWork

REVOKED_TOPIC = "staff.revoked"
CHANGED_TOPIC = "staff.changed"
STAFF_TOPICS = frozenset({REVOKED_TOPIC, CHANGED_TOPIC})

# Called with a staff id right after a commit that revoked or changed that person.
on_staff_changed: list[Callable[[int], None]] = []


def staff_changed(uow: UnitOfWork, staff_id: int, *, revoked: bool) -> None:
    """Emit the event (every process) and call this process's listeners after the
    commit."""
    uow.emit(REVOKED_TOPIC if revoked else CHANGED_TOPIC, {"staff_id": staff_id})

    def committed(_session: Any) -> None:
        for listener in list(on_staff_changed):
            listener(staff_id)

    event.listen(uow.session.sync_session, "after_commit", committed, once=True)
