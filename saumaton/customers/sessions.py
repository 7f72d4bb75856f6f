"""Server-side shopper sessions and their revocation.

A browser's session cookie carries only a random token; the database keeps its SHA-256
(`CustomerSession`). A session stops working when the shopper signs out, when it
expires, when the customer's password is changed (other browsers) or reset (every
browser), and when the customer is erased. Web processes cache look-ups for a short
while: every revocation emits the outbox event `shopper.revoked` (every process) and
calls this process's `on_sessions_revoked` listeners right after the commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.clock import utcnow
from saumaton.customers.models import Customer, CustomerAccount, CustomerSession
from saumaton.db.uow import UnitOfWork

# A sign-in lasts at most this long; the cookie itself ends after 12 idle hours.
SESSION_DAYS = 30
MAX_TOKEN = 200
REVOKED_TOPIC = "shopper.revoked"

# Called with a customer id right after a commit that ended sessions of that customer.
on_sessions_revoked: list[Callable[[int], None]] = []


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sessions_revoked(uow: UnitOfWork, customer_id: int) -> None:
    """Tell every process (outbox event) and, after the commit, this process's
    listeners that sessions of the customer ended."""
    uow.emit(REVOKED_TOPIC, {"customer_id": customer_id})

    def committed() -> None:
        for listener in list(on_sessions_revoked):
            listener(customer_id)

    uow.after_commit(committed)


async def sign_in(uow: UnitOfWork, customer_id: int, *, replacing: str | None = None) -> str:
    """Open a session for a customer who proved who they are; returns its token (the
    cookie's value). `replacing`: the browser's previous session token, ended here.
    The customer's ended sessions are pruned on the way (one indexed delete)."""
    if replacing:
        await sign_out(uow, replacing)
    now = utcnow()
    await uow.session.execute(
        delete(CustomerSession)
        .where(CustomerSession.customer_id == customer_id,
               or_(CustomerSession.revoked_at.is_not(None),
                   CustomerSession.expires_at <= now))
        .execution_options(synchronize_session=False))
    token = secrets.token_urlsafe(32)
    uow.session.add(CustomerSession(customer_id=customer_id, token_hash=token_hash(token),
                                    created_at=now,
                                    expires_at=now + timedelta(days=SESSION_DAYS)))
    await uow.session.flush()
    return token


async def session_customer(session: AsyncSession, token: str) -> int | None:
    """The customer of a live session: not revoked, not expired, the customer not
    erased and still holding an account."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = (await session.execute(
        select(CustomerSession.customer_id, CustomerSession.expires_at,
               CustomerSession.revoked_at, Customer.erased_at)
        .join(Customer, Customer.id == CustomerSession.customer_id)
        .join(CustomerAccount, CustomerAccount.customer_id == CustomerSession.customer_id)
        .where(CustomerSession.token_hash == token_hash(token)))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() \
            or row.erased_at is not None:
        return None
    return int(row.customer_id)


async def sign_out(uow: UnitOfWork, token: str) -> int | None:
    """End this session (a copy of the cookie stops working too). Returns its
    customer's id (None for an unknown token)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = await uow.session.scalar(
        select(CustomerSession).where(CustomerSession.token_hash == token_hash(token)))
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await uow.session.flush()
    sessions_revoked(uow, row.customer_id)
    return row.customer_id


async def revoke_all(uow: UnitOfWork, customer_id: int, *, keep: str | None = None) -> None:
    """End every session of the customer, except the one whose token is `keep` (the
    browser that changed the password stays signed in)."""
    query = update(CustomerSession).where(CustomerSession.customer_id == customer_id,
                                          CustomerSession.revoked_at.is_(None))
    if keep:
        query = query.where(CustomerSession.token_hash != token_hash(keep))
    await uow.session.execute(query.values(revoked_at=utcnow())
                              .execution_options(synchronize_session=False))
    sessions_revoked(uow, customer_id)


async def forget_sessions(uow: UnitOfWork, customer_ids: Iterable[int]) -> int:
    """Delete every session of the customers (erasure); returns how many."""
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    result: Any = await uow.session.execute(
        delete(CustomerSession).where(CustomerSession.customer_id.in_(ids))
        .execution_options(synchronize_session=False))
    for customer_id in ids:
        sessions_revoked(uow, customer_id)
    return int(result.rowcount or 0)
