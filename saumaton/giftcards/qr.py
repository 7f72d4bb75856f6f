"""A gift card code as a QR code (the till and the webshop read it with a scanner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import segno

from saumaton.giftcards.ledger import CardView, display_code
from saumaton.mail.inline import qr_src


@dataclass(frozen=True)
class CardCode:
    code: str
    spaced: str
    svg: str  # inline SVG, for pages and printed receipts
    mail_src: str  # a mail's <img src>: an inline part (cid:) made when it is sent


def card_code(code: str) -> CardCode:
    qr = segno.make(code, error="m", micro=False)
    return CardCode(code, display_code(code), qr.svg_inline(scale=4, border=2, title=code),
                    qr_src(code))


@dataclass(frozen=True)
class SoldCard:
    """A card as a receipt or a mail shows it to the one who bought it."""

    code: CardCode
    amount_cents: int
    expires_at: datetime | None


def sold_cards(cards: list[CardView]) -> list[SoldCard]:
    return [SoldCard(card_code(c.code), c.initial_cents, c.expires_at) for c in cards]
