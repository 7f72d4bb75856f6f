"""The gift card and store credit ledger: the only place a card's balance moves.

Every change appends a `GiftCardEntry` and moves `gift_cards.balance_cents` with one
conditional UPDATE in the caller's transaction, so a card is never spent below zero
however many tills and checkouts spend it at once. An entry may carry an idempotency
key: the same key again returns the first entry instead of moving money twice.

Codes are 16 digits, the last a Luhn check digit (a mistyped digit is caught before
any lookup); they are random, so a code cannot be guessed from another one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum import luhn

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.giftcards.models import GiftCard, GiftCardEntry

GIFT_CARD = "gift_card"
STORE_CREDIT = "store_credit"
CODE_LENGTH = 16
# The most one card can hold (cents): a typo of a few zeros is refused.
MAX_CARD_CENTS = 1_000_000


def new_code() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH - 1))
    return body + luhn.calc_check_digit(body)


def clean_code(raw: str) -> str:
    """A typed or scanned code without spaces or dashes; refuses a wrong check digit."""
    code = "".join(ch for ch in raw if ch not in " -\u00a0")
    if len(code) != CODE_LENGTH or not code.isdigit() or not luhn.is_valid(code):
        raise ValidationFailed("this is not a gift card code (16 digits; check the last)",
                               code="invalid_gift_card_code", field="code")
    return code


def display_code(code: str) -> str:
    """1234 5678 9012 3456: how a code is printed and read out."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def masked_code(code: str) -> str:
    """What is shown to anyone but the holder: the last four digits."""
    return "•••• " + code[-4:]


@dataclass(frozen=True)
class CardView:
    id: int
    code: str
    kind: str
    status: str
    initial_cents: int
    balance_cents: int
    expires_at: datetime | None
    customer_id: int | None
    created_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def usable_cents(self, now: datetime) -> int:
        return 0 if self.status != "active" or self.expired(now) else self.balance_cents


def _view(card: GiftCard) -> CardView:
    return CardView(card.id, card.code, card.kind, card.status, card.initial_cents,
                    card.balance_cents, card.expires_at, card.customer_id, card.created_at)


async def _entry_by_key(s: AsyncSession, key: str | None) -> GiftCardEntry | None:
    if not key:
        return None
    return (await s.scalars(select(GiftCardEntry).where(GiftCardEntry.idempotency_key == key))
            ).first()


async def _append(uow: UnitOfWork, actor: Actor, card_id: int, kind: str, amount: int,
                  balance_after: int, *, order_id: int | None, return_id: int | None,
                  location_id: int | None, key: str | None, now: datetime) -> GiftCardEntry:
    entry = GiftCardEntry(gift_card_id=card_id, kind=kind, amount_cents=amount,
                          balance_after_cents=balance_after, order_id=order_id,
                          return_id=return_id, location_id=location_id,
                          idempotency_key=key, created_by=actor.label, created_at=now)
    uow.session.add(entry)
    await uow.session.flush()
    uow.emit("giftcard.changed", {"gift_card_id": card_id, "kind": kind,
                                  "amount_cents": amount, "balance_cents": balance_after,
                                  "order_id": order_id})
    return entry


async def issue(uow: UnitOfWork, actor: Actor, amount_cents: int, *, valid_days: int,
                kind: str = GIFT_CARD, customer_id: int | None = None,
                order_id: int | None = None, return_id: int | None = None,
                email: str = "", location_id: int | None = None, key: str | None = None,
                now: datetime | None = None) -> CardView:
    """A new card holding `amount_cents`, valid `valid_days` (Settings.gift_card_valid_days).
    With a key seen before, the card issued then."""
    if not 0 < amount_cents <= MAX_CARD_CENTS:
        raise ValidationFailed(f"a card holds 0.01–{MAX_CARD_CENTS // 100} €",
                               code="invalid_amount", field="amount_cents")
    if key:
        seen = (await uow.session.scalars(select(GiftCard).where(
            GiftCard.idempotency_key == key))).first()
        if seen is not None:
            return _view(seen)
    now = now or utcnow()
    card = GiftCard(code=new_code(), kind=kind, customer_id=customer_id,
                    initial_cents=amount_cents, balance_cents=amount_cents, status="active",
                    expires_at=now + timedelta(days=valid_days), order_id=order_id,
                    email=email, idempotency_key=key, created_by=actor.label,
                    created_at=now)
    uow.session.add(card)
    await uow.session.flush()
    await _append(uow, actor, card.id, "issue", amount_cents, amount_cents,
                  order_id=order_id, return_id=return_id, location_id=location_id,
                  key=f"{key}:issue" if key else None, now=now)
    return _view(card)


async def card_by_code(s: AsyncSession, code: str) -> CardView:
    card = (await s.scalars(select(GiftCard).where(GiftCard.code == clean_code(code)))
            ).first()
    if card is None:
        raise NotFound("no gift card with this code", code="gift_card_not_found",
                       field="code")
    return _view(card)


async def spend(uow: UnitOfWork, actor: Actor, code: str, amount_cents: int, *,
                order_id: int | None, key: str | None = None,
                location_id: int | None = None, now: datetime | None = None
                ) -> GiftCardEntry:
    """Take `amount_cents` off the card. 409 `gift_card_expired`, `gift_card_void`,
    `insufficient_gift_card_balance` (extra: balance_cents) — nothing moves then."""
    if amount_cents <= 0:
        raise ValidationFailed("the amount to pay with a card must be positive",
                               code="invalid_amount", field="amount_cents")
    seen = await _entry_by_key(uow.session, key)
    if seen is not None:
        return seen
    now = now or utcnow()
    card = await card_by_code(uow.session, code)
    row = (await uow.session.execute(
        update(GiftCard)
        .where(GiftCard.id == card.id, GiftCard.status == "active",
               GiftCard.balance_cents >= amount_cents,
               (GiftCard.expires_at.is_(None)) | (GiftCard.expires_at > now))
        .values(balance_cents=GiftCard.balance_cents - amount_cents)
        .returning(GiftCard.balance_cents)
        .execution_options(synchronize_session=False))).first()
    if row is None:
        current = await _fresh(uow.session, card.id)
        if current.status != "active":
            raise Conflict("this gift card is no longer valid", code="gift_card_void",
                           field="code")
        if current.expired(now):
            raise Conflict(f"this card expired on {current.expires_at:%d.%m.%Y}",
                           code="gift_card_expired", field="code",
                           extra={"expires_at": str(current.expires_at)})
        raise Conflict("the card does not hold that much",
                       code="insufficient_gift_card_balance", field="amount_cents",
                       extra={"balance_cents": current.balance_cents})
    return await _append(uow, actor, card.id, "spend", -amount_cents, int(row[0]),
                         order_id=order_id, return_id=None, location_id=location_id,
                         key=key, now=now)


async def credit(uow: UnitOfWork, actor: Actor, card_id: int, amount_cents: int, *,
                 kind: str = "refund", order_id: int | None = None,
                 return_id: int | None = None, location_id: int | None = None,
                 key: str | None = None, now: datetime | None = None) -> GiftCardEntry:
    """Put money (back) on a card: a refund to the card that paid, store credit."""
    if amount_cents <= 0:
        raise ValidationFailed("the amount must be positive", code="invalid_amount",
                               field="amount_cents")
    seen = await _entry_by_key(uow.session, key)
    if seen is not None:
        return seen
    now = now or utcnow()
    row = (await uow.session.execute(
        update(GiftCard).where(GiftCard.id == card_id)
        .values(balance_cents=GiftCard.balance_cents + amount_cents)
        .returning(GiftCard.balance_cents)
        .execution_options(synchronize_session=False))).first()
    if row is None:
        raise NotFound(f"no gift card {card_id}", code="gift_card_not_found")
    return await _append(uow, actor, card_id, kind, amount_cents, int(row[0]),
                         order_id=order_id, return_id=return_id, location_id=location_id,
                         key=key, now=now)


async def add_store_credit(uow: UnitOfWork, actor: Actor, customer_id: int,
                           amount_cents: int, *, valid_days: int,
                           order_id: int | None = None, return_id: int | None = None,
                           location_id: int | None = None, key: str | None = None,
                           now: datetime | None = None) -> CardView:
    """Credit the customer's store credit (one balance per customer, opened on first use;
    its validity runs again from each credit)."""
    now = now or utcnow()
    card = (await uow.session.scalars(
        select(GiftCard).where(GiftCard.customer_id == customer_id,
                               GiftCard.kind == STORE_CREDIT, GiftCard.status == "active")
        .order_by(GiftCard.id).limit(1).with_for_update())).first()
    if card is None:
        return await issue(uow, actor, amount_cents, valid_days=valid_days,
                           kind=STORE_CREDIT, customer_id=customer_id, order_id=order_id,
                           return_id=return_id, location_id=location_id, key=key, now=now)
    await credit(uow, actor, card.id, amount_cents, kind="credit", order_id=order_id,
                 return_id=return_id, location_id=location_id, key=key, now=now)
    await uow.session.execute(
        update(GiftCard).where(GiftCard.id == card.id)
        .values(expires_at=now + timedelta(days=valid_days))
        .execution_options(synchronize_session=False))
    return await _fresh(uow.session, card.id)


async def void(uow: UnitOfWork, actor: Actor, card_id: int, *,
               now: datetime | None = None) -> GiftCardEntry:
    """Close a card for good (lost, stolen, issued by mistake): what was left on it is
    written off in a `void` entry and nothing can be spent any more. 409
    `gift_card_void` when it was closed already."""
    now = now or utcnow()
    left = await uow.session.scalar(
        select(GiftCard.balance_cents)
        .where(GiftCard.id == card_id, GiftCard.status == "active").with_for_update()
        .execution_options(populate_existing=True))
    moved = None if left is None else await uow.session.execute(
        update(GiftCard)
        .where(GiftCard.id == card_id, GiftCard.status == "active",
               GiftCard.balance_cents == left)
        .values(status="void", balance_cents=0)
        .execution_options(synchronize_session=False))
    if left is None or moved is None or getattr(moved, "rowcount", 1) != 1:
        raise Conflict("this gift card is no longer valid", code="gift_card_void")
    return await _append(uow, actor, card_id, "void", -int(left), 0, order_id=None,
                         return_id=None, location_id=None, key=f"void:{card_id}", now=now)


async def _fresh(s: AsyncSession, card_id: int) -> CardView:
    card = (await s.execute(select(GiftCard).where(GiftCard.id == card_id)
                            .execution_options(populate_existing=True))).scalar_one()
    return _view(card)


async def store_credit_of(s: AsyncSession, customer_id: int) -> CardView | None:
    card = (await s.scalars(
        select(GiftCard).where(GiftCard.customer_id == customer_id,
                               GiftCard.kind == STORE_CREDIT, GiftCard.status == "active")
        .order_by(GiftCard.id).limit(1))).first()
    return None if card is None else _view(card)


async def entries(s: AsyncSession, card_id: int, limit: int = 100) -> list[GiftCardEntry]:
    """Newest first."""
    return list((await s.scalars(
        select(GiftCardEntry).where(GiftCardEntry.gift_card_id == card_id)
        .order_by(GiftCardEntry.id.desc()).limit(limit))).all())


async def expire_cards(uow: UnitOfWork, actor: Actor, now: datetime | None = None,
                       limit: int = 500) -> int:
    """Write off what is left on cards past their expiry (an `expire` entry each), so the
    ledger's sum is the shop's outstanding liability. Safe with several processes."""
    now = now or utcnow()
    q = (select(GiftCard.id, GiftCard.balance_cents)
         .where(GiftCard.expires_at <= now, GiftCard.balance_cents > 0,
                GiftCard.status == "active")
         .order_by(GiftCard.id).limit(limit))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True)
    done = 0
    for card_id, left in (await uow.session.execute(q)).all():
        moved = await uow.session.execute(
            update(GiftCard).where(GiftCard.id == card_id, GiftCard.balance_cents == left)
            .values(balance_cents=0).execution_options(synchronize_session=False))
        if getattr(moved, "rowcount", 1) != 1:  # spent meanwhile; next run
            continue
        await _append(uow, actor, card_id, "expire", -int(left), 0, order_id=None,
                      return_id=None, location_id=None, key=f"expire:{card_id}", now=now)
        done += 1
    return done


async def outstanding_cents(s: AsyncSession, kind: str | None = None) -> int:
    """What the shop owes on cards not yet spent (the liability in the books)."""
    q = select(func.coalesce(func.sum(GiftCard.balance_cents), 0))
    if kind:
        q = q.where(GiftCard.kind == kind)
    return int(await s.scalar(q) or 0)

