"""One row per setting the owner changed in the back office."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, UTCDateTime


class ShopSetting(Base):
    """key: a Settings field name (e.g. free_delivery_from_cents); value: its JSON value.
    No row = the environment's (or the built-in) default."""

    __tablename__ = "shop_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))
