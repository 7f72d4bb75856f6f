"""Follow-up sequences (a category's steps, templates in fi and en) and the scheduled
mails: one row per sequence step and order, or per refill reminder of a product."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class FollowupSequence(Base):
    __tablename__ = "followup_sequences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    # Products of this category and of its subcategories start the sequence.
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The category's typical days between two purchases of a product (e.g. 60 for a
    # serum), used for the refill reminder when the customer's own history says nothing.
    refill_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # How many days before the expected run-out the refill reminder comes (at most a
    # quarter of the interval); 0 = on the day (migration 0027).
    refill_lead_days: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowupStep(Base):
    __tablename__ = "followup_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sequence_id: Mapped[int] = mapped_column(
        ForeignKey("followup_sequences.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # how_to_use | shade | text | refill (followups.templates.STEP_KINDS); a refill step's
    # send time comes from the repurchase interval, not from delay_days.
    kind: Mapped[str] = mapped_column(String(16))
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    subject_fi: Mapped[str] = mapped_column(String(200))
    body_fi: Mapped[str] = mapped_column(Text)
    subject_en: Mapped[str] = mapped_column(String(200))
    body_en: Mapped[str] = mapped_column(Text)


class Followup(Base):
    """One mail to send (or not) to a customer: a step of a sequence for an order, or a
    refill reminder for a product. `dedupe_key` makes scheduling idempotent:
    ``step:<order>:<step>`` or ``refill:<order>:<product>``."""

    __tablename__ = "followups"
    __table_args__ = (
        Index("ix_followups_status_due", "status", "due_at"),
        Index("ix_followups_customer_product", "customer_id", "product_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # step | refill
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    sequence_id: Mapped[int | None] = mapped_column(
        ForeignKey("followup_sequences.id", ondelete="SET NULL"), nullable=True, index=True)
    step_id: Mapped[int | None] = mapped_column(
        ForeignKey("followup_steps.id", ondelete="SET NULL"), nullable=True)
    # A refill reminder's product (a step's: none, it names every matching product).
    product_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    language: Mapped[str] = mapped_column(String(2), default="fi")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending → queued (its mail is in the outbox, `mail_id`) → sent | suppressed
    # (the mail sender found the consent withdrawn) | failed (the mail could not be
    # delivered); or, never queued: skipped_no_consent | skipped_no_address | cancelled.
    # A queued row takes its mail's outcome in the job's next pass (`settle_queued`);
    # pages show that outcome at once (`shown_status`).
    status: Mapped[str] = mapped_column(String(24), default="pending")
    # Why it was cancelled: returned | repurchased | disabled | step_removed
    reason: Mapped[str] = mapped_column(String(24), default="")
    # A refill reminder: the interval it was computed from and where it came from
    # (own = the customer's median, category = the sequence's refill_days).
    interval_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    interval_source: Mapped[str] = mapped_column(String(16), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")  # as sent
    # Its mail in the outbox (outgoing_mail.id; no foreign key, as mail_events.mail_id).
    mail_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FollowupOrder(Base):
    """An order the scheduler has looked at (so each purchase is scheduled once, by one
    process: its insert wins)."""

    __tablename__ = "followup_orders"
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"),
                                          primary_key=True, autoincrement=False)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    scheduled: Mapped[int] = mapped_column(Integer, default=0)  # rows it created
