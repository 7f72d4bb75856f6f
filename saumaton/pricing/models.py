"""Campaigns: percent or fixed off, on variants/products/categories, in a time window,
in every channel unless limited to listed channels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, UTCDateTime


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "percent" (value in bp) | "fixed" (cents)
    value: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A member price: only for loyalty members of this tier or higher (member | silver |
    # gold); NULL = for everyone.
    min_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)


class CampaignTarget(Base):
    __tablename__ = "campaign_targets"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    # variant | product | category
    target_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class CampaignChannel(Base):
    """A row here limits the campaign to the listed channels; no rows = every channel."""

    __tablename__ = "campaign_channels"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)
