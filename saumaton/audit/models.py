"""One append-only audit table for every business area."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class AuditEntry(Base):
    """action: e.g. customer.merge, customer.unmerge, customer.export, customer.erase.
    subject: what it was done to ("customer", id). data: what a reviewer needs, never
    the personal data itself (an erasure must not copy what it erased)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),
                      Index("ix_audit_log_at", "at"),
                      Index("ix_audit_log_actor", "actor"),
                      Index("ix_audit_log_action", "action"))
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
