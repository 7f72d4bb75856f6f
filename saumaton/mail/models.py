"""The mail queue: a message is written in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class OutgoingMail(Base):
    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_status_next", "status", "next_attempt_at"),
                      Index("ix_outgoing_mail_reference", "reference"))
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # order_confirmation | password_reset | …
    reference: Mapped[str] = mapped_column(String(100), default="")
    to_addr: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str] = mapped_column(String(320), default="")  # "" = none
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    # queued | sent | failed | suppressed (a marketing mail not sent: the customer's
    # marketing e-mail consent was off when the sender came to it)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Marketing mail (mail/marketing.py): whose consent the sender checks before sending
    # (None: a transactional mail, sent regardless), and the one-click unsubscribe URL
    # for the List-Unsubscribe header ("" = none). No foreign key: the queue's insert
    # stays one row; a customer merge moves the column like every customer_id.
    customer_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    list_unsubscribe: Mapped[str] = mapped_column(Text, default="")
