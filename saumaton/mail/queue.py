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
    wake_after_commit(uow)
    return row.id


def queued_mail_cte_pg(*, kind: str, to: str, subject: str, text: str, html: str,
                       reference: str, now: str) -> str:
    """PostgreSQL: `queue_mail` (no reply-to) as the CTE `queued` of a caller's statement
    (checkout/paid_pg.py); the arguments are its placeholders, the values cut to the
    columns' lengths as `queue_mail` does. The caller calls `wake_after_commit`."""
    return (
        "queued AS (INSERT INTO outgoing_mail (kind, to_addr, reply_to, subject, body_text, "
        "body_html, reference, status, attempts, last_error, next_attempt_at, created_at) "
        f"VALUES (left({kind}::text, 32), {to}::text, '', left({subject}::text, 300), "
        f"{text}::text, {html}::text, left({reference}::text, 100), 'queued', 0, '', "
        f"{now}::timestamptz, {now}::timestamptz) RETURNING id)")


def wake_after_commit(uow: UnitOfWork) -> None:
    """Wake this process's mail sender once `uow` commits (it queued mail)."""
    db = uow.db

    # A session event rather than db.on_commit: that hook runs after every commit
    # with events, and a sale should not wake the mail sender.
    def committed(_session: Any) -> None:
        wake_event(db).set()

    event.listen(uow.session.sync_session, "after_commit", committed, once=True)
