"""Queueing a mail: a row in the caller's transaction, so a mail exists if and only
if the change that caused it committed, and the sender is woken after the commit.

A hot path on PostgreSQL (the paid order's confirmation) may queue its mail already
claimed by this process's sender (`queued_mail_cte_pg` with `until`, then
`hand_after_commit`): the row is written with the sender's lease, and after the commit
the mail, rendered and in hand, goes straight to the sender, which sends it and records
the outcome without claiming it first (a statement and a durable commit fewer per mail).
Should the process die first, the lease lapses and any sender takes the mail then, as
after a death mid-send: delivery stays at least once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from saumaton.core.clock import utcnow
from saumaton.db.uow import Database, Transaction, UnitOfWork
from saumaton.mail.models import OutgoingMail

_wakers: WeakKeyDictionary[Database, asyncio.Event] = WeakKeyDictionary()
# Per database: the mails handed to this process's sender and not yet taken by it; and
# whether a sender runs here (else nothing is queued claimed).
_handed: WeakKeyDictionary[Database, list[Any]] = WeakKeyDictionary()
_senders: WeakKeyDictionary[Database, int] = WeakKeyDictionary()
# Set by a commit that queued mail the ordinary way: the sender polls the queue.
_polls: WeakKeyDictionary[Database, bool] = WeakKeyDictionary()
# How long a claim holds a mail: a process that dies mid-send leaves it this long.
LEASE = timedelta(minutes=5)


def wake_event(db: Database) -> asyncio.Event:
    """Set after a commit that queued mail through `db`; the sender waits on it."""
    wake = _wakers.get(db)
    if wake is None:
        wake = _wakers[db] = asyncio.Event()
    return wake


async def queue_mail(uow: UnitOfWork, *, kind: str, to: str, subject: str, text: str,
                     html: str = "", reference: str = "", reply_to: str = "",
                     customer_id: int | None = None, list_unsubscribe: str = "") -> int:
    """`reply_to`: where an answer to the mail should go (the Reply-To header).
    `customer_id` and `list_unsubscribe`: a marketing mail (mail/marketing.py queues
    those: the sender checks the customer's consent again before sending)."""
    row = OutgoingMail(kind=kind[:32], to_addr=to, reply_to=reply_to[:320],
                       subject=subject[:300], body_text=text,
                       body_html=html, reference=reference[:100], status="queued",
                       attempts=0, last_error="", next_attempt_at=utcnow(),
                       customer_id=customer_id, list_unsubscribe=list_unsubscribe)
    uow.session.add(row)
    await uow.session.flush()
    wake_after_commit(uow)
    return row.id


def queued_mail_cte_pg(*, kind: str, to: str, subject: str, text: str, html: str,
                       reference: str, now: str, until: str | None = None) -> str:
    """PostgreSQL: `queue_mail` (no reply-to) as the CTE `queued` of a caller's statement
    (checkout/paid_pg.py); the arguments are its placeholders, the values cut to the
    columns' lengths as `queue_mail` does. The caller calls `wake_after_commit`; or,
    with `until` (the placeholder of `claimed_until`), `hand_after_commit` with the id
    the CTE returns: a mail queued with a lease (`until` later than `now`) is claimed."""
    attempts, due = "0", f"{now}::timestamptz"
    if until is not None:
        attempts = f"CASE WHEN {until}::timestamptz > {now}::timestamptz THEN 1 ELSE 0 END"
        due = f"{until}::timestamptz"
    return (
        "queued AS (INSERT INTO outgoing_mail (kind, to_addr, reply_to, subject, body_text, "
        "body_html, reference, status, attempts, last_error, next_attempt_at, created_at) "
        f"VALUES (left({kind}::text, 32), {to}::text, '', left({subject}::text, 300), "
        f"{text}::text, {html}::text, left({reference}::text, 100), 'queued', {attempts}, "
        f"'', {due}, {now}::timestamptz) RETURNING id)")


def claimed_until(db: Database, now: datetime) -> datetime:
    """For `queued_mail_cte_pg`'s `until`: the lease when a sender runs in this process
    (the mail is queued claimed), else `now` (queued due, for any sender to claim)."""
    return now + LEASE if _senders.get(db) else now


def hand_after_commit(tx: Transaction, mail: Any, until: datetime,
                      now: datetime) -> None:
    """Once `tx` commits, give `mail` (the sender's Claimed, as `queued_mail_cte_pg`
    with `until` wrote it) to this process's sender; unclaimed (`until` not later than
    `now`): wake the sender, as `wake_after_commit`."""
    if until <= now:
        wake_after_commit(tx)
        return
    db = tx.db

    def committed() -> None:
        _handed.setdefault(db, []).append(mail)
        wake_event(db).set()

    tx.after_commit(committed)


def take_handed(db: Database) -> list[Any]:
    """The mails handed to this process's sender since it last looked (the sender's)."""
    return _handed.pop(db, [])


def take_poll(db: Database) -> bool:
    """Whether mail was queued the ordinary way since the sender last looked."""
    return _polls.pop(db, False)


@contextmanager
def sender_running(db: Database) -> Iterator[None]:
    """Around a sender's life: while it runs, hot paths queue their mail claimed."""
    _senders[db] = _senders.get(db, 0) + 1
    try:
        yield
    finally:
        _senders[db] -= 1


def wake_after_commit(tx: Transaction) -> None:
    """Wake this process's mail sender once `tx` commits (it queued mail). (A hook of
    its own rather than db.on_commit: that runs after every commit with events, and a
    sale should not wake the mail sender.)"""
    db = tx.db

    def committed() -> None:
        _polls[db] = True
        wake_event(db).set()

    tx.after_commit(committed)
