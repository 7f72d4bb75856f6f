"""Funnel events written by the core itself, in the transaction of what they record
(pages use the buffered `saumaton.web.analytics.track` instead)."""

from __future__ import annotations

from typing import Any

from saumaton.analytics import KINDS
from saumaton.analytics.models import AnalyticsEvent
from saumaton.core.clock import utcnow
from saumaton.db.uow import UnitOfWork


def add_event(uow: UnitOfWork, kind: str, *, order_id: int | None = None,
              customer_id: int | None = None, variant_id: int | None = None,
              data: dict[str, Any] | None = None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown analytics event kind {kind!r}")
    uow.session.add(AnalyticsEvent(at=utcnow(), kind=kind, channel="web", visitor_id=None,
                                   customer_id=customer_id, order_id=order_id,
                                   variant_id=variant_id, path="", data=data or {}))
