"""Gift cards and store credit share one table and one append-only ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class GiftCard(Base):
    """A balance spent like money. `balance_cents` is the ledger's running sum, moved
    only by giftcards.ledger with conditional UPDATEs (never below zero)."""

    __tablename__ = "gift_cards"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # gift_card | store_credit
    # Store credit belongs to a customer; a gift card to whoever holds the code.
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id"), nullable=True, index=True)
    initial_cents: Mapped[int] = mapped_column(Integer)
    balance_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | void
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Sold as an order line (till or webshop), or issued by a manager / a return.
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id"), nullable=True, index=True)
    # A digital card is e-mailed here.
    email: Mapped[str] = mapped_column(String(320), default="", server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GiftCardEntry(Base):
    """One change of a card's balance: issue, spend, refund (back onto it), expire, void."""

    __tablename__ = "gift_card_entries"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    gift_card_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("gift_cards.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer)  # signed
    balance_after_cents: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id"), nullable=True, index=True)
    return_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("returns.id"), nullable=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
