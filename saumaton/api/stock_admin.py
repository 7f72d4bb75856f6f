"""/api/v1 stock lists the back office shows: levels per location with its filters (low,
negative, needs a count, in transit; a search), and the stock counts. Writes (receipts,
deliveries, write-offs, counts, transfers) are in `api.stock`.

Levels need `stock.read` and show only the locations the caller may read; counts
`stock.count`, like the back office's count pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from saumaton.api.fields import cursor_ints
from saumaton.api.pagination import CursorQuery, LimitQuery, Page, page_of
from saumaton.core.actor import Actor
from saumaton.core.types import MAX_INT32, NoNul
from saumaton.inventory import counts as stock_counts
from saumaton.inventory.levels import levels_after
from saumaton.locations.services import list_locations
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/stock", tags=["stock"])
LocationQuery = Annotated[int | None, Query(ge=1, le=MAX_INT32)]


class StockLevelOut(BaseModel):
    variant_id: int
    product_id: int
    sku: str
    ean: str | None
    name: str = Field(description="product and variant name")
    location_id: int
    location_name: str
    on_hand: int
    reserved: int
    available: int
    needs_count: bool
    in_transit: int = Field(description="units on their way here, on no shelf yet")


@router.get("/levels", response_model=Page[StockLevelOut],
            summary="Stock levels per variant and location, filtered like the back office's",
            responses={403: {"description": "forbidden: no stock.read (at location_id)"}})
async def list_levels(
    request: Request, actor: Annotated[Actor, api_requires("stock.read")],
    cursor: CursorQuery = None, limit: LimitQuery = 50,
    location_id: LocationQuery = None,
    variant_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    q: Annotated[str, Query(max_length=100, description="product or variant name, SKU, "
                                                        "or the exact EAN"), NoNul] = "",
    state: Annotated[Literal["low", "negative", "needs_count", "in_transit"] | None, Query(
        description="low: 3 or fewer available; needs_count: flagged by a sale or a "
                    "count; in_transit: units on their way here")] = None,
) -> Page[StockLevelOut]:
    if location_id is not None:
        actor.require("stock.read", location_id)
    after = cursor_ints(cursor, "variant_id", "location_id")
    async with db_of(request).reader() as s:
        rows = await levels_after(s, actor, location_id=location_id, variant_id=variant_id,
                                  search=q, state=state or "",
                                  after=(after[0], after[1]) if after else None, limit=limit)
    items = [StockLevelOut(
        variant_id=r.variant_id, product_id=r.product_id, sku=r.sku, ean=r.ean, name=r.name,
        location_id=r.location_id, location_name=r.location_name, on_hand=r.on_hand,
        reserved=r.reserved, available=r.available, needs_count=r.needs_count,
        in_transit=r.in_transit) for r in rows]
    return page_of(items, limit,
                   lambda r: {"variant_id": r.variant_id, "location_id": r.location_id})


class StockCountSummary(BaseModel):
    id: int
    location_id: int
    location_name: str
    scope: str
    full: bool = Field(description="the whole location (uncounted variants count as 0)")
    status: Literal["open", "posted", "cancelled"]
    created_by: str
    created_at: datetime
    posted_by: str
    posted_at: datetime | None
    lines_counted: int = Field(description="variants counted so far; "
                                           "GET /api/v1/stock/counts/{id} has the lines")


@router.get("/counts", response_model=Page[StockCountSummary],
            summary="Stock counts, newest first (the lines and variances: GET /counts/{id})",
            responses={403: {"description": "forbidden: no stock.count (at location_id)"}})
async def list_counts(
    request: Request, actor: Annotated[Actor, api_requires("stock.count")],
    cursor: CursorQuery = None, limit: LimitQuery = 50,
    status: Annotated[Literal["open", "posted", "cancelled"] | None, Query()] = None,
    location_id: LocationQuery = None,
) -> Page[StockCountSummary]:
    if location_id is not None:
        actor.require("stock.count", location_id)
    before = cursor_ints(cursor, "id")
    async with db_of(request).reader() as s:
        rows = await stock_counts.list_counts(s, actor, status=status or "", limit=limit + 1,
                                              before_id=before[0] if before else None,
                                              location_id=location_id)
        lines = await stock_counts.line_counts(s, [c.id for c in rows])
        names = {loc.id: loc.name for loc in await list_locations(s)}
    items = [StockCountSummary(
        id=c.id, location_id=c.location_id, location_name=names.get(c.location_id, ""),
        scope=c.scope, full=c.full, status=c.status,
        created_by=c.created_by, created_at=c.created_at, posted_by=c.posted_by,
        posted_at=c.posted_at, lines_counted=lines.get(c.id, 0)) for c in rows]
    return page_of(items, limit, lambda c: {"id": c.id})
