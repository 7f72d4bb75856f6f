"""/api/v1 price changes (now or scheduled, cancel, history), campaigns (list, read,
edit, end) and the price-parity report. Reads need `prices.read`, writes
`prices.write` at every location (the services check them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from saumaton.api.pagination import CursorQuery, Page, offset_from, offset_page
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import MAX_ID, MAX_INT32, IsoDateTime, NoNul
from saumaton.pricing import campaigns, changes
from saumaton.pricing.campaigns import CampaignOut
from saumaton.pricing.changes import PriceChangeIn, PriceChangeOut
from saumaton.pricing.parity import price_parity
from saumaton.pricing.services import TIERS, CampaignIn
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["prices"])
PriceReader = Annotated[Actor, api_requires("prices.read")]
# One price for every channel: writes need prices.write at every location.
PriceWriter = Annotated[Actor, api_requires("prices.write", everywhere=True)]
IdPath = Annotated[int, Path(ge=1, le=MAX_INT32)]
ChangeId = Annotated[int, Path(ge=1, le=MAX_ID)]


class PriceChangesCreated(BaseModel):
    ids: list[int]


@router.post("/price-changes", response_model=PriceChangesCreated, status_code=201,
             summary="Change variants' price now, or schedule it (effective_at)")
async def create_price_changes(request: Request, body: PriceChangeIn,
                               actor: PriceWriter
                               ) -> PriceChangesCreated:
    async with db_of(request).uow() as uow:
        ids = await changes.change_prices(uow, actor, body)
        await uow.commit()
    return PriceChangesCreated(ids=ids)


@router.get("/price-changes", response_model=Page[PriceChangeOut],
            summary="Scheduled (soonest first) or past price changes (newest first)")
async def list_price_changes(
    request: Request, actor: PriceReader,
    status: Annotated[Literal["scheduled", "applied", "cancelled"], Query()] = "scheduled",
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 200,
) -> Page[PriceChangeOut]:
    start = offset_from(cursor)
    async with db_of(request).reader() as s:
        rows = await changes.list_changes(s, status=status, limit=limit + 1, offset=start)
    return offset_page(rows, limit, start)


@router.post("/price-changes/{change_id}/cancel", response_model=PriceChangeOut,
             summary="Cancel a scheduled price change")
async def cancel_price_change(request: Request, change_id: ChangeId,
                              actor: PriceWriter
                              ) -> PriceChangeOut:
    async with db_of(request).uow() as uow:
        change = await changes.cancel_change(uow, actor, change_id)
        variant_id = change.variant_id
        await uow.commit()
    async with db_of(request).reader() as s:
        found = [c for c in await changes.price_history(s, variant_id) if c.id == change_id]
    return found[0]


@router.get("/variants/{variant_id}/price-history", response_model=Page[PriceChangeOut],
            summary="Every price change of a variant, newest first")
async def variant_price_history(
        request: Request, variant_id: IdPath, actor: PriceReader,
        cursor: CursorQuery = None,
        limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 500,
) -> Page[PriceChangeOut]:
    start = offset_from(cursor)
    async with db_of(request).reader() as s:
        rows = await changes.price_history(s, variant_id, limit=limit + 1, offset=start)
    return offset_page(rows, limit, start)


@router.get("/campaigns", response_model=Page[CampaignOut],
            summary="Campaigns with their targets and channel limits")
async def list_campaigns(
    request: Request, actor: PriceReader,
    state: Annotated[Literal["running", "scheduled", "ended"] | None, Query()] = None,
    q: Annotated[str, Query(max_length=100, description="part of the name"), NoNul] = "",
    kind: Annotated[Literal["percent", "fixed", "x_for_y", "buy_x_get_y", "set_price"] | None,
                    Query()] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 200,
) -> Page[CampaignOut]:
    start = offset_from(cursor)
    async with db_of(request).reader() as s:
        rows = await campaigns.list_campaigns(s, state=state, q=q.strip(), kind=kind,
                                              limit=limit + 1, offset=start)
    return offset_page(rows, limit, start)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(request: Request, campaign_id: IdPath,
                       actor: PriceReader) -> CampaignOut:
    async with db_of(request).reader() as s:
        return await campaigns.get_campaign(s, campaign_id)


@router.put("/campaigns/{campaign_id}", response_model=CampaignOut,
            summary="Replace a campaign's settings, targets and channel limits")
async def update_campaign(request: Request, campaign_id: IdPath, body: CampaignIn,
                          actor: PriceWriter) -> CampaignOut:
    async with db_of(request).uow() as uow:
        out = await campaigns.update_campaign(uow, actor, campaign_id, body)
        await uow.commit()
    return out


@router.post("/campaigns/{campaign_id}/end", status_code=204,
             summary="End a campaign now in every channel")
async def end_campaign(request: Request, campaign_id: IdPath,
                       actor: PriceWriter) -> Response:
    async with db_of(request).uow() as uow:
        await campaigns.end_now(uow, actor, campaign_id)
        await uow.commit()
    return Response(status_code=204)


class ParityPrice(BaseModel):
    variant_id: int
    sku: str
    name: str
    prices: dict[str, int]
    causes: list[dict[str, object]]


class ParityBundle(BaseModel):
    campaign_id: int
    name: str
    kind: str
    limited_to: list[str]
    member_tier: str | None


class ParityOut(BaseModel):
    at: datetime
    tier: str | None
    channels: list[str]
    variants_checked: int
    differences: list[ParityPrice]
    bundles: list[ParityBundle]


@router.get("/price-parity", response_model=ParityOut,
            summary="Every active variant's price in every channel at a moment; differences")
async def get_price_parity(
    request: Request, actor: PriceReader,
    at: Annotated[IsoDateTime | None, Query(description="default: now (with a UTC offset)")]
    = None,
    tier: Annotated[Literal["member", "silver", "gold"] | None, Query()] = None,
) -> ParityOut:
    now = utcnow()
    if at is not None and at.tzinfo is None:
        raise ValidationFailed("the time must carry a UTC offset", code="invalid_time",
                               field="at")
    async with db_of(request).reader() as s:
        report = await price_parity(s, at or now, tier=tier if tier in TIERS else None,
                                    now=now)
    return ParityOut(
        at=report.at, tier=report.tier, channels=[c.code for c in report.channels],
        variants_checked=report.variants_checked,
        differences=[ParityPrice(
            variant_id=d.variant_id, sku=d.sku, name=d.name, prices=d.prices,
            causes=[{"campaign_id": c.campaign_id, "campaign_name": c.campaign_name,
                     "limited_to": list(c.limited_to), "member_tier": c.member_tier}
                    for c in d.causes]) for d in report.differences],
        bundles=[ParityBundle(campaign_id=b.campaign_id, name=b.name, kind=b.kind,
                              limited_to=list(b.limited_to), member_tier=b.member_tier)
                 for b in report.bundles])
