"""/api/v1/analytics: the funnel report over first-party analytics events."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from saumaton.analytics.funnel import FunnelReport, funnel, require_funnel_access
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.types import IsoDateTime
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
DEFAULT_DAYS = 30


@router.get("/funnel", response_model=FunnelReport,
            summary="Funnel event counts in [since, until)",
            description="Counts per event kind, distinct consenting visitors per kind and "
                        "conversion (orders placed / visits). Defaults: the last 30 days. "
                        "Needs `orders.read` for every location.")
async def get_funnel(
    request: Request,
    actor: Annotated[Actor, api_requires("orders.read", everywhere=True)],
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601; naive is UTC")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO 8601; default now")] = None,
) -> FunnelReport:
    require_funnel_access(actor)
    until = until or utcnow()
    since = since or until - timedelta(days=DEFAULT_DAYS)
    async with db_of(request).reader() as s:
        return await funnel(s, since, until)
