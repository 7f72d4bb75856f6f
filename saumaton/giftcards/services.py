"""Gift cards for staff and the API: a manager issues a card, anyone allowed looks one up.

The balance itself moves only in `giftcards.ledger`; this module checks permissions,
writes the audit entry and shapes what the channels show.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record as audit
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.core.types import Input
from saumaton.db.uow import UnitOfWork
from saumaton.giftcards import ledger
from saumaton.giftcards.models import GiftCard


class GiftCardIn(Input):
    amount_cents: int = Field(gt=0, le=ledger.MAX_CARD_CENTS,
                              description="what the card holds, VAT included (cents)")
    email: str = Field(default="", max_length=320,
                       description="optional: who the card is for (kept with the card)")


class GiftCardEntryOut(BaseModel):
    kind: str  # issue | spend | refund | credit | expire | void
    amount_cents: int  # signed
    balance_after_cents: int
    order_id: int | None
    created_at: datetime


class GiftCardOut(BaseModel):
    code: str
    display_code: str
    kind: str  # gift_card | store_credit
    status: str  # active | expired | void
    initial_cents: int
    balance_cents: int
    usable_cents: int  # what can be spent now (0 once expired or void)
    expires_at: datetime | None
    created_at: datetime
    entries: list[GiftCardEntryOut] = Field(default_factory=list)  # newest first


def card_out(card: ledger.CardView, entries: list[GiftCardEntryOut] | None = None,
             now: datetime | None = None) -> GiftCardOut:
    now = now or utcnow()
    status = "expired" if card.status == "active" and card.expired(now) else card.status
    return GiftCardOut(
        code=card.code, display_code=ledger.display_code(card.code), kind=card.kind,
        status=status, initial_cents=card.initial_cents, balance_cents=card.balance_cents,
        usable_cents=card.usable_cents(now), expires_at=card.expires_at,
        created_at=card.created_at, entries=entries or [])


async def issue_card(uow: UnitOfWork, actor: Actor, cmd: GiftCardIn,
                     key: str | None = None, *,
                     settings: Settings | None = None) -> tuple[GiftCardOut, bool]:
    """A manager issues a card (a goodwill gesture, a prize). Returns (card, replayed):
    the same key again returns the card issued first; with another amount, 409
    `idempotency_key_reused`."""
    actor.require("giftcards.issue", everywhere=True)
    if key:
        seen = (await uow.session.scalars(select(GiftCard).where(
            GiftCard.idempotency_key == key))).first()
        if seen is not None:
            if (seen.initial_cents, seen.email) != (cmd.amount_cents, cmd.email.strip()):
                raise Conflict("this Idempotency-Key was used for a different request",
                               code="idempotency_key_reused")
            return await lookup(uow.session, actor, seen.code), True
    card = await ledger.issue(uow, actor, cmd.amount_cents,
                              valid_days=(settings or get_settings()).gift_card_valid_days,
                              email=cmd.email.strip(), key=key)
    await audit(uow, actor, "giftcard.issue", "gift_card", card.id,
                {"amount_cents": cmd.amount_cents, "code": ledger.masked_code(card.code)})
    return await lookup(uow.session, actor, card.code), False


async def void_card(uow: UnitOfWork, actor: Actor, code: str, reason: str) -> GiftCardOut:
    """A manager closes a card (lost, stolen, issued by mistake); the reason is audited.
    422 `reason_required`; 409 `gift_card_void` when it was closed already."""
    actor.require("giftcards.issue", everywhere=True)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationFailed("say why the card is closed", code="reason_required",
                               field="reason")
    if len(reason) > 200:
        raise ValidationFailed("the reason is too long (200 characters at most)",
                               code="reason_too_long", field="reason")
    card = await ledger.card_by_code(uow.session, code)
    entry = await ledger.void(uow, actor, card.id)
    await audit(uow, actor, "giftcard.void", "gift_card", card.id,
                {"reason": reason, "written_off_cents": -entry.amount_cents,
                 "code": ledger.masked_code(card.code)})
    return await lookup(uow.session, actor, card.code)


async def lookup(s: AsyncSession, actor: Actor, code: str, *, entries: int = 20
                 ) -> GiftCardOut:
    """Balance, expiry, status and the last entries of the card with `code`."""
    actor.require("giftcards.read")
    card = await ledger.card_by_code(s, code)
    rows = await ledger.entries(s, card.id, limit=entries)
    return card_out(card, [GiftCardEntryOut(
        kind=e.kind, amount_cents=e.amount_cents, balance_after_cents=e.balance_after_cents,
        order_id=e.order_id, created_at=e.created_at) for e in rows])


async def balance_of(s: AsyncSession, code: str) -> GiftCardOut:
    """What the holder of a code may see (webshop, till scan): no history."""
    return card_out(await ledger.card_by_code(s, code))


class GiftCardSummary(BaseModel):
    """A card in a list: its code masked (a code is money to whoever holds it; the full
    code is read one card at a time, by typing it)."""

    id: int
    masked_code: str
    kind: str  # gift_card | store_credit
    status: str  # active | expired | void
    initial_cents: int
    balance_cents: int
    usable_cents: int
    expires_at: datetime | None
    customer_id: int | None
    order_id: int | None = Field(description="the order that sold it, if sold")
    created_at: datetime


async def list_cards(s: AsyncSession, actor: Actor, *, kind: str | None = None,
                     status: str | None = None, customer_id: int | None = None,
                     order_id: int | None = None, before_id: int | None = None,
                     limit: int = 50, now: datetime | None = None) -> list[GiftCardSummary]:
    """Cards newest first, those before `before_id`; at most `limit`. `status` as shown:
    expired is an active card past its expiry (the expiry job writes its balance off)."""
    actor.require("giftcards.read")
    now = now or utcnow()
    q = select(GiftCard).order_by(GiftCard.id.desc()).limit(limit)
    if kind:
        q = q.where(GiftCard.kind == kind)
    if status == "void":
        q = q.where(GiftCard.status == "void")
    elif status == "active":
        q = q.where(GiftCard.status == "active",
                    or_(GiftCard.expires_at.is_(None), GiftCard.expires_at > now))
    elif status == "expired":
        q = q.where(GiftCard.status == "active", GiftCard.expires_at <= now)
    if customer_id is not None:
        q = q.where(GiftCard.customer_id == customer_id)
    if order_id is not None:
        q = q.where(GiftCard.order_id == order_id)
    if before_id is not None:
        q = q.where(GiftCard.id < before_id)
    out = []
    for card in (await s.scalars(q)).all():
        shown = card_out(ledger.CardView(
            card.id, card.code, card.kind, card.status, card.initial_cents,
            card.balance_cents, card.expires_at, card.customer_id, card.created_at), now=now)
        out.append(GiftCardSummary(
            id=card.id, masked_code=ledger.masked_code(card.code), kind=card.kind,
            status=shown.status, initial_cents=card.initial_cents,
            balance_cents=card.balance_cents, usable_cents=shown.usable_cents,
            expires_at=card.expires_at, customer_id=card.customer_id,
            order_id=card.order_id, created_at=card.created_at))
    return out
