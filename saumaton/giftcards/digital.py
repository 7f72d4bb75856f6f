"""Digital gift cards: a paid web order's cards are issued and e-mailed (code and QR).

Apart from `giftcards.sales` so that the order writers do not import the mail
templates (which import the order book)."""

from __future__ import annotations

from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.db.uow import UnitOfWork
from saumaton.giftcards.qr import sold_cards
from saumaton.giftcards.sales import gift_card_lines, issue_sold_cards
from saumaton.mail import messages
from saumaton.mail.queue import queue_mail


async def send_digital_cards(uow: UnitOfWork, actor: Actor, settings: Settings,
                             order_id: int, *, email: str, lang: str) -> int:
    """A paid web order: issue its gift cards and e-mail them (code and QR). Returns
    how many were issued."""
    lines = await gift_card_lines(uow.session, order_id)
    if not lines:
        return 0
    cards = await issue_sold_cards(uow, actor, order_id, lines, email=email,
                                   settings=settings)
    if email and cards:
        mail = messages.gift_cards(
            sold_cards(cards), order_number=f"{order_id:06d}", lang=lang,
            settings=settings)
        await queue_mail(uow, kind="gift_card", to=email, subject=mail.subject,
                         text=mail.text, html=mail.html,
                         reference=f"{order_id:06d}")
    return len(cards)

