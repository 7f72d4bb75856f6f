"""Gift cards in an order, the same for every order writer (API, till, webshop):
paying with a card or with store credit, and issuing the cards an order sells.

Both run inside the order's own transaction and are keyed on the order, so a retried
request (which replays the order) never spends or issues twice, and a refused spend
(expired, void, not enough on the card) rolls the whole order back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.giftcards import ledger
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from saumaton.orders.models import OrderLine
from saumaton.payments.refunds import record_refund
from saumaton.payments.services import GIFT_CARD, STORE_CREDIT, PlannedPayment


def check_offline(methods: Sequence[str]) -> None:
    """An offline till cannot see a card's balance: refuse before anything is sold."""
    for i, m in enumerate(methods):
        if m in (GIFT_CARD, STORE_CREDIT):
            raise ValidationFailed("gift cards and store credit need the network",
                                   code="gift_card_offline", field=f"payments.{i}")


async def spend_payments(uow: UnitOfWork, actor: Actor, order_id: int,
                         customer_id: int | None, planned: Sequence[PlannedPayment], *,
                         location_id: int | None) -> None:
    """Take each gift card and store credit payment off its card (409s as the ledger
    gives them, pointing at the payment)."""
    for i, p in enumerate(planned):
        if p.method not in (GIFT_CARD, STORE_CREDIT):
            continue
        field = f"payments.{i}"
        code = p.code
        if p.method == STORE_CREDIT:
            card = None
            if customer_id is not None:
                card = await ledger.store_credit_of(uow.session, customer_id)
            if card is None:
                raise Conflict("this customer has no store credit", code="no_store_credit",
                               field=field)
            code = card.code
        try:
            await ledger.spend(uow, actor, code, p.amount_cents, order_id=order_id,
                               key=f"order:{order_id}:p{i}", location_id=location_id)
        except NotFound as e:  # a well-formed code no card has: the payment is refused
            raise Conflict(e.detail, code=e.code, field=f"{field}.code") from None
        except DomainError as e:
            e.field = f"{field}.{e.field}" if e.field in ("code", "amount_cents") else field
            raise


@dataclass(frozen=True)
class SoldLine:
    """An order line as far as gift cards care."""

    line_no: int
    quantity: int
    total_cents: int


async def issue_sold_cards(uow: UnitOfWork, actor: Actor, order_id: int,
                           lines: Sequence[SoldLine], *, email: str = "",
                           location_id: int | None = None,
                           settings: Settings | None = None) -> list[ledger.CardView]:
    """One card per unit of each gift card line, worth the line's total / quantity
    (what was paid for it; a cent left over goes on the first). Issued again for the
    same order: the same cards."""
    valid_days = (settings or get_settings()).gift_card_valid_days
    cards = []
    for ln in lines:
        if ln.quantity <= 0 or ln.total_cents < ln.quantity:
            continue
        each, odd = divmod(ln.total_cents, ln.quantity)
        for n in range(ln.quantity):
            cards.append(await ledger.issue(
                uow, actor, each + (odd if n == 0 else 0), valid_days=valid_days,
                order_id=order_id, email=email, location_id=location_id,
                key=f"order:{order_id}:l{ln.line_no}:{n + 1}"))
    return cards


async def gift_card_lines(s: AsyncSession, order_id: int) -> list[SoldLine]:
    """The order's gift card lines (bought cards, not goods)."""
    rows = (await s.execute(
        select(OrderLine.line_no, OrderLine.quantity, OrderLine.total_cents)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(OrderLine.order_id == order_id, Product.gift_card)
        .order_by(OrderLine.line_no))).all()
    return [SoldLine(int(r[0]), int(r[1]), int(r[2])) for r in rows]


async def cards_sold_by(s: AsyncSession, order_id: int) -> list[ledger.CardView]:
    """The cards an order issued (for its receipt), in issue order."""
    rows = (await s.scalars(select(GiftCard).where(
        GiftCard.order_id == order_id, GiftCard.kind == ledger.GIFT_CARD)
        .order_by(GiftCard.id))).all()
    return [await ledger.card_by_code(s, c.code) for c in rows]



async def refund_spent_cards(uow: UnitOfWork, actor: Actor, order_id: int, *,
                             now: datetime | None = None) -> int:
    """A paid order cancelled: what its gift cards and store credit paid (and has not
    come back yet) goes back on each card, recorded as a refund. Returns the cents."""
    spent = (await uow.session.execute(
        select(GiftCardEntry.gift_card_id, func.coalesce(func.sum(GiftCardEntry.amount_cents), 0))
        .where(GiftCardEntry.order_id == order_id,
               GiftCardEntry.kind.in_(("spend", "refund")))
        .group_by(GiftCardEntry.gift_card_id).order_by(GiftCardEntry.gift_card_id))).all()
    back_total = 0
    for card_id, net in spent:
        back = -int(net)
        if back <= 0:
            continue
        await ledger.credit(uow, actor, int(card_id), back, kind="refund", order_id=order_id,
                            key=f"order:{order_id}:gift:cancel:{card_id}", now=now)
        await record_refund(uow, actor, order_id, "gift_card", back, gift_card_id=int(card_id),
                            now=now)
        back_total += back
    return back_total
