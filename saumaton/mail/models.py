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


class MailEvent(Base):
    """A mail provider's report after sending (mail/events.py): a bounce or a spam
    complaint, kept as the provider sent it and shown on the customer's timeline."""

    __tablename__ = "mail_events"
    __table_args__ = (Index("ix_mail_events_email_at", "email", "occurred_at"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    # The provider's own id of the event: a report delivered twice is recorded once.
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # hard_bounce | soft_bounce | complaint
    email: Mapped[str] = mapped_column(String(320))  # normalised, lower case
    mail_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # ours, if known
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consents_withdrawn: Mapped[int] = mapped_column(Integer, default=0)


class SegmentMailing(Base):
    """An e-mail the owner sent to a customer segment (mail/mailings.py): the texts in
    both languages, and how far the background sending has come. `key` is the compose
    form's own: a double click or a retried POST finds this row and sends nothing more.
    No foreign key to the segment: a segment may be deleted, its mailings stay."""

    __tablename__ = "segment_mailings"
    __table_args__ = (Index("ix_segment_mailings_status", "status"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    segment_id: Mapped[int] = mapped_column(Integer, index=True)
    segment_name: Mapped[str] = mapped_column(String(100))
    subject_fi: Mapped[str] = mapped_column(String(200))
    text_fi: Mapped[str] = mapped_column(Text)
    subject_en: Mapped[str] = mapped_column(String(200))
    text_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending | done
    # Keyset position: members with a larger customer id are still to be queued.
    after_id: Mapped[int] = mapped_column(BigInteger, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # no consent or no address
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
