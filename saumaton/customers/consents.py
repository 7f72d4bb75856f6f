"""Marketing consents: an append-only history; the newest row per kind is in force."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.errors import ValidationFailed
from saumaton.customers.models import CustomerConsent
from saumaton.db.uow import UnitOfWork

CONSENT_KINDS = ("marketing_email", "marketing_sms")


@dataclass(frozen=True)
class ConsentOut:
    kind: str
    granted: bool
    channel: str
    at: datetime


async def consent_history(session: AsyncSession, customer_id: int,
                          limit: int = 100) -> list[ConsentOut]:
    """Newest first."""
    rows = (await session.scalars(
        select(CustomerConsent).where(CustomerConsent.customer_id == customer_id)
        .order_by(CustomerConsent.id.desc()).limit(limit)
    )).all()
    return [ConsentOut(r.kind, r.granted, r.channel, r.created_at) for r in rows]


async def current_consents(session: AsyncSession, customer_id: int) -> dict[str, bool]:
    """Every kind; never asked counts as not given."""
    current = dict.fromkeys(CONSENT_KINDS, False)
    seen: set[str] = set()
    for r in (await session.execute(
        select(CustomerConsent.kind, CustomerConsent.granted)
        .where(CustomerConsent.customer_id == customer_id)
        .order_by(CustomerConsent.id.desc())
    )).all():
        if r.kind not in seen:
            seen.add(r.kind)
            current[r.kind] = bool(r.granted)
    return current


async def set_consent(uow: UnitOfWork, customer_id: int, kind: str, granted: bool,
                      channel: str, *, record_unchanged: bool = False) -> bool:
    """Append a row when the value changes (or, with record_unchanged, when it was never
    asked), and say so (`customer.updated`: the timeline shows it). Returns whether a
    row was written."""
    if kind not in CONSENT_KINDS:
        raise ValidationFailed(f"unknown consent '{kind}'", code="invalid_consent",
                               field="kind")
    last = (await uow.session.execute(
        select(CustomerConsent.granted)
        .where(CustomerConsent.customer_id == customer_id, CustomerConsent.kind == kind)
        .order_by(CustomerConsent.id.desc()).limit(1)
    )).first()
    if last is not None and bool(last.granted) == granted:
        return False
    if last is None and not granted and not record_unchanged:
        return False
    uow.session.add(CustomerConsent(customer_id=customer_id, kind=kind, granted=granted,
                                    channel=channel[:32]))
    await uow.session.flush()
    uow.emit("customer.updated", {"customer_id": customer_id, "consent": kind,
                                  "granted": granted})
    return True
