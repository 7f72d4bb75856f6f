"""Failed sign-in counters, one row per account or address, shared by every process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.db.base import Base, UTCDateTime


class LoginThrottle(Base):
    """Attempts counted in a window that opens at the first one. `key` is
    "account:<kind>:<e-mail>" or "address:<ip>"; `audited` is set when the lockout's
    first refusal was written to the audit log (once per lockout, not per request)."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # Indexed: counters whose window passed long ago are pruned (services.reserve).
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    audited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
