"""Campaigns: percent or fixed off, on variants/products/categories, in a time window,
in every channel unless limited to listed channels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # percent: value bp off each unit | fixed: value cents off each unit |
    # x_for_y: take buy_quantity, pay for pay_quantity ("3 for 2") |
    # buy_x_get_y: buy buy_quantity, get get_quantity more with value bp off (10000 = free) |
    # set_price: buy_quantity units together for value cents.
    # Bundles take the cheapest qualifying units as the discounted ones.
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A member price: only for loyalty members of this tier or higher (member | silver |
    # gold); NULL = for everyone.
    min_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A segment price: only for members of this customer segment (customers.segments);
    # NULL = for everyone. Both limits hold when both are set.
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_segments.id"), nullable=True, index=True)
    buy_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pay_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    get_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by: Mapped[str] = mapped_column(String(200), default="", server_default="")


class CampaignTarget(Base):
    __tablename__ = "campaign_targets"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    # variant | product | category
    target_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class CampaignChannel(Base):
    """A row here limits the campaign to the listed channels; no rows = every channel.
    A store's till is its own channel (pos-<store>), so "only in Tampere" is a row here."""

    __tablename__ = "campaign_channels"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)


class PriceChange(Base):
    """A variant's list price change, now or at a set time. Applied rows are the price
    history; a job applies the scheduled ones when due (SKIP LOCKED)."""

    __tablename__ = "price_changes"
    __table_args__ = (Index("ix_price_changes_status_effective", "status", "effective_at"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    old_price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # scheduled | applied | cancelled
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
