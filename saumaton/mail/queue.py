"""Queueing a mail: a row in the caller's transaction, so a mail exists if and only
if the change that caused it committed, and the sender is woken after the commit."""

from __future__ import annotations

import asyncio
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event

from saumaton.core.clock import utcnow
from saumaton.db.uow import Database, UnitOfWork
from saumaton.mail.models import OutgoingMail

_wakers: WeakKeyDictionary[Database, asyncio.Event] = WeakKeyDictionary()


def wake_event(db: Database) -> asyncio.Event:
    """Set after a commit that queued mail through `db`; the sender waits on it."""
    wake = _wakers.get(db)
    if wake is None:
        wake = _wakers[db] = asyncio.Event()
    return wake


async def queue_mail(uow: UnitOfWork, *, kind: str, to: str, subject: str, text: str,
                     html: str = "", reference: str = "", reply_to: str = "") -> int:
    """`reply_to`: where an answer to the mail should go (the Reply-To header)."""
    row = OutgoingMail(kind=kind[:32], to_addr=to, reply_to=reply_to[:320],
                       subject=subject[:300], body_text=text,
                       body_html=html, reference=reference[:100], status="queued",
                       attempts=0, last_error="", next_attempt_at=utcnow())
    uow.session.add(row)
    await uow.session.flush()
    db = uow.db

    # A session event rather than db.on_commit: that hook runs after every commit
    # with events, and a sale should not wake the mail sender.
    def committed(_session: Any) -> None:
        wake_event(db).set()

    event.listen(uow.session.sync_session, "after_commit", committed, once=True)
    return row.id
