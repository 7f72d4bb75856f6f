"""Conversations and their messages, canned answers, notices for staff, NPS surveys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Conversation(Base):
    """A chat with a webshop visitor (live, or an offline message left for the queue).
    status: open | closed. The visitor is known by a random token in their browser
    (`visitor_token`, only its SHA-256 is stored) and, when recognised, `customer_id`."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_status_last", "status", "last_message_at"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    visitor_token_hash: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True,
        index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assigned_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id"), nullable=True, index=True)
    # What the visitor gave us (the offline form, or "who are you" in the chat).
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    language: Mapped[str] = mapped_column(String(2), default="fi")
    page: Mapped[str] = mapped_column(String(300), default="")  # where it started
    offline_message: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ChatMessage(Base):
    """sender: visitor | agent | system."""

    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    sender: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    # The sender's own id for the message: a resend after a network error is one message.
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedAnswer(Base):
    __tablename__ = "canned_answers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2), default="fi")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notice(Base):
    """The staff knowledge board: a store's notice (location_id) or everyone's (NULL).
    Campaigns and new products are shown from their own tables; notices are the rest."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True,
                                                    index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NpsSurvey(Base):
    """One after-purchase question ("How likely are you to recommend us, 0–10?") sent
    with the receipt e-mail; answered through a link with a one-time token."""

    __tablename__ = "nps_surveys"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
