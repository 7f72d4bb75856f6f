"""Throttling sign-ins and password-reset requests per account and per address.

An attempt is counted *before* the password is checked (`reserve`), under a row lock
on PostgreSQL (SQLite writers are serialised anyway): N parallel wrong passwords can
never pass more than the limit, however many processes serve them. A successful
sign-in (`succeeded`) clears the account's count and gives the address its attempt
back. Counting starts a window at the first attempt; when the limit is reached,
attempts are refused until the window has passed. The first refusal of a lockout is
audited (`login.throttled`), later ones are not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from saumaton.audit.services import record
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.db.uow import UnitOfWork
from saumaton.throttle.models import LoginThrottle

# What is throttled: the staff and customer sign-in forms and their password-reset
# request forms. Each kind counts its accounts apart; an address counts across all.
KINDS = frozenset({"staff", "customer", "staff_reset", "customer_reset"})


class TooManyAttempts(DomainError):
    status = 429
    code = "too_many_attempts"


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window_seconds: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.login_max_failures_per_account,
                   settings.login_max_failures_per_address,
                   settings.login_throttle_window_seconds)


def account_key(kind: str, email: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown throttle kind {kind!r}")
    return f"account:{kind}:{email.strip().lower()[:320]}"


def address_key(address: str) -> str:
    return f"address:{address[:64]}"


def refusal(retry_after: int, kind: str) -> TooManyAttempts:
    """The error for an attempt `reserve` refused (problem+json: 429 with
    `retry_after` seconds; pages word it themselves)."""
    minutes = max(1, math.ceil(retry_after / 60))
    what = ("password reset requests" if kind.endswith("_reset")
            else "failed sign-ins")
    return TooManyAttempts(
        f"Too many {what}; try again in {minutes} minutes",
        extra={"retry_after": retry_after, "minutes": minutes, "kind": kind})


async def reserve(uow: UnitOfWork, kind: str, email: str, address: str,
                  limits: Limits) -> int:
    """Count an attempt for the account (`email` of `kind`) and the address. Returns 0
    when it may go ahead, else the seconds until attempts are allowed again (nothing
    counted). The caller commits either way (the lockout's audit entry)."""
    keys = {account_key(kind, email): limits.per_account,
            address_key(address): limits.per_address}
    now = utcnow()
    window = timedelta(seconds=limits.window_seconds)
    # Counters whose window passed long ago hold nothing: one indexed range delete
    # keeps the table as small as the recent attempts.
    await uow.session.execute(
        delete(LoginThrottle).where(LoginThrottle.window_started_at < now - 2 * window,
                                    LoginThrottle.key.not_in(sorted(keys)))
        .execution_options(synchronize_session=False))
    rows = await _locked_rows(uow, sorted(keys), now)
    if len(rows) < len(keys):
        # Another process pruned an expired row between our insert and our lock: insert
        # it again (fresh now, so it is not pruned a second time).
        rows = await _locked_rows(uow, sorted(keys), now)
    for row in rows:
        if row.window_started_at + window <= now:  # the window has passed: start again
            row.failures, row.window_started_at, row.audited = 0, now, False
    blocked = [row for row in rows if row.failures >= keys[row.key]]
    if blocked:
        retry_after = max(math.ceil((row.window_started_at + window - now).total_seconds())
                          for row in blocked)
        for row in blocked:
            if not row.audited:
                row.audited = True
                scope, _, who = row.key.partition(":")
                await record(uow, Actor(label="anonymous", name="anonymous"),
                             "login.throttled", "staff" if kind.startswith("staff")
                             else "customer", 0,
                             {"kind": kind, "scope": scope, "who": who[:330],
                              "address": address[:64], "failures": row.failures,
                              "retry_after": retry_after})
        return max(retry_after, 1)
    for row in rows:
        if row.failures == 0:
            row.window_started_at = now
        row.failures += 1
    return 0


async def _locked_rows(uow: UnitOfWork, keys: list[str], now: datetime
                       ) -> list[LoginThrottle]:
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(LoginThrottle)
    for key in keys:  # one order for every process: no deadlocks
        await uow.session.execute(
            ins.values(key=key, failures=0, window_started_at=now, audited=False)
            .on_conflict_do_nothing(index_elements=["key"]))
    return list((await uow.session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys))
        .order_by(LoginThrottle.key).with_for_update()
        .execution_options(populate_existing=True))).all())


async def succeeded(uow: UnitOfWork, kind: str, email: str, address: str) -> None:
    """A right password: the account starts afresh, the address gets its attempt back."""
    await uow.session.execute(delete(LoginThrottle).where(
        LoginThrottle.key == account_key(kind, email)))
    row = await uow.session.scalar(
        select(LoginThrottle).where(LoginThrottle.key == address_key(address))
        .with_for_update())
    if row is not None and row.failures > 0:
        row.failures -= 1

