"""Summary tables of the customer reports: each customer's channel journey.

Kept by `saumaton.reports.journeys.refresh_journeys` (the reports job), never written
by a sale itself: the journey matrix reads these instead of every order line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.db.base import Base, UTCDateTime


class CustomerJourney(Base):
    """One customer's purchases summed up (sales as in docs/reports.md, net of returns)."""

    __tablename__ = "customer_journeys"
    __table_args__ = (Index("ix_customer_journeys_first_channel", "first_channel_id",
                            "kinds_mask", "later_kinds_mask"),)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    first_location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id"), nullable=True)
    # The first purchase's kind: its channels.kind, or "web_to_store" for a till sale of
    # a reservation to try (saumaton.reports.journeys.WEB_TO_STORE).
    first_kind: Mapped[str] = mapped_column(String(16))
    second_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Whole 24-hour days from the first purchase to the second.
    second_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue_cents: Mapped[int] = mapped_column(BigInteger)  # VAT incl., net of returns
    # One bit per purchase kind (saumaton.reports.journeys.JOURNEY_BITS): every purchase,
    # and the purchases after the first.
    kinds_mask: Mapped[int] = mapped_column(Integer)
    later_kinds_mask: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)  # distinct channels bought in


class CustomerChannel(Base):
    """A customer's purchases in one channel; `later`: one of them came after the
    customer's first purchase (the matrix's cell first_channel_id -> channel_id)."""

    __tablename__ = "customer_channels"
    __table_args__ = (Index("ix_customer_channels_matrix", "later", "first_channel_id",
                            "channel_id"),)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    first_channel_id: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    orders: Mapped[int] = mapped_column(Integer)
    revenue_cents: Mapped[int] = mapped_column(BigInteger)
    later: Mapped[bool] = mapped_column(Boolean)


class JourneyRefresh(Base):
    """The one row saying how fresh the journey tables are."""

    __tablename__ = "customer_journey_refresh"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    # Changes (orders, payments, refunds, returns, merges) up to here are included.
    watermark_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    full_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    # The figures summed over every customer (journeys.aggregate): what the page reads.
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
