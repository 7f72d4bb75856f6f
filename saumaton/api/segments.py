"""/api/v1 customer segments (docs/segments.md): list, read, create, change and delete
segments, count and preview a rule set before saving it, export the members as CSV or
send them to the webhooks subscribed to `segment.exported`.

Everything needs `segments.write` at every location (only the owner has it): a segment
is a list of customers' contact details. Thin: the rules are in saumaton.customers.segments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_INT32, Input
from saumaton.customers import segments
from saumaton.customers.segments import SegmentRules
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["segments"])
Owner = Annotated[Actor, api_requires(segments.PERMISSION, everywhere=True)]
SegmentId = Annotated[int, Path(ge=1, le=MAX_INT32)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "segment_not_found"}}


class SegmentIn(Input):
    name: str = Field(min_length=1, max_length=segments.MAX_NAME)
    rules: SegmentRules = Field(default_factory=SegmentRules)


class PreviewIn(Input):
    rules: SegmentRules = Field(default_factory=SegmentRules)
    limit: int = Field(default=segments.PREVIEW, ge=0, le=100)


class MemberOut(BaseModel):
    customer_id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    marketing_email: bool


class CountOut(BaseModel):
    count: int = Field(description="every customer the rules pick")
    marketing_count: int = Field(description="of them, those who consented to marketing "
                                             "e-mail: who e-mails and exports reach")
    preview: list[MemberOut]


class SegmentOut(BaseModel):
    id: int
    name: str
    rules: SegmentRules
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    campaign_ids: list[int] = Field(description="campaigns (not ended) priced for its "
                                                "members")
    count: int
    marketing_count: int


class WebhookExportOut(BaseModel):
    export_id: str
    members: int
    parts: int


def _member(m: segments.Member) -> MemberOut:
    return MemberOut(customer_id=m.id, first_name=m.first_name, last_name=m.last_name,
                     email=m.email, phone=m.phone, marketing_email=m.marketing_email)


async def _out(request: Request, seg: segments.SegmentOut) -> SegmentOut:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        count = await segments.count_members(s, seg.rules, settings=settings)
        marketing = await segments.count_members(s, seg.rules, marketing_only=True,
                                                 settings=settings)
    return SegmentOut(id=seg.id, name=seg.name, rules=seg.rules, created_by=seg.created_by,
                      created_at=seg.created_at, updated_by=seg.updated_by,
                      updated_at=seg.updated_at, campaign_ids=list(seg.campaigns),
                      count=count, marketing_count=marketing)


@router.get("/segments", response_model=list[SegmentOut],
            summary="Every customer segment with its member counts, by name "
                    "(segments.write everywhere)")
async def list_segments(request: Request, actor: Owner) -> list[SegmentOut]:
    async with db_of(request).reader() as s:
        found = await segments.list_segments(s)
    return [await _out(request, seg) for seg in found]


@router.post("/segments/preview", response_model=CountOut,
             summary="Count and preview a rule set without saving it "
                     "(segments.write everywhere)",
             description="What the back office's editor shows live: how many customers "
                         "the rules pick, how many of them consented to marketing e-mail, "
                         "and the first `limit` by customer id.")
async def preview(request: Request, body: PreviewIn, actor: Owner) -> CountOut:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        count = await segments.count_members(s, body.rules, settings=settings)
        marketing = await segments.count_members(s, body.rules, marketing_only=True,
                                                 settings=settings)
        shown = await segments.preview(s, body.rules, body.limit, settings=settings)
    return CountOut(count=count, marketing_count=marketing, preview=[_member(m) for m in shown])


@router.post("/segments", response_model=SegmentOut, status_code=201,
             responses={409: {"description": "duplicate_segment"}},
             summary="Save a segment (segments.write everywhere)")
async def create(request: Request, body: SegmentIn, actor: Owner) -> SegmentOut:
    async with db_of(request).uow() as uow:
        seg = await segments.create_segment(uow, actor, body.name, body.rules)
        await uow.commit()
    return await _out(request, seg)


@router.get("/segments/{segment_id}", response_model=SegmentOut, responses=NOT_FOUND,
            summary="One segment with its member counts (segments.write everywhere)")
async def read(request: Request, segment_id: SegmentId, actor: Owner) -> SegmentOut:
    async with db_of(request).reader() as s:
        seg = await segments.get_segment(s, segment_id)
    return await _out(request, seg)


@router.put("/segments/{segment_id}", response_model=SegmentOut,
            responses={**NOT_FOUND, 409: {"description": "duplicate_segment"}},
            summary="Replace a segment's name and rules (segments.write everywhere)")
async def update(request: Request, segment_id: SegmentId, body: SegmentIn,
                 actor: Owner) -> SegmentOut:
    async with db_of(request).uow() as uow:
        seg = await segments.update_segment(uow, actor, segment_id, body.name, body.rules)
        await uow.commit()
    return await _out(request, seg)


@router.delete("/segments/{segment_id}", status_code=204,
               responses={**NOT_FOUND, 409: {"description": "segment_in_use"}},
               summary="Delete a segment no running or scheduled campaign is for "
                       "(segments.write everywhere)")
async def delete(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    async with db_of(request).uow() as uow:
        await segments.delete_segment(uow, actor, segment_id)
        await uow.commit()
    return Response(status_code=204)


@router.get("/segments/{segment_id}/export.csv", responses={
    **NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "the members as CSV"}},
    summary="The members as CSV (segments.write everywhere)",
    description="`;`-separated UTF-8 with a byte order mark (docs/import-export.md): the "
                "members who consented to marketing e-mail; `full=true`: every member, "
                "each row saying whether they consented. Audited (segment.export).")
async def export_csv(request: Request, segment_id: SegmentId, actor: Owner,
                     full: Annotated[bool, Query()] = False) -> Response:
    async with db_of(request).uow() as uow:
        body = "".join([line async for line in segments.export_csv(
            uow, actor, segment_id, full=full)])
        name = (await segments.get_segment(uow.session, segment_id)).name
        await uow.commit()
    safe = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in name)[:60]
    return Response(body.encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="segment-{segment_id}-{safe}.csv"',
        "Cache-Control": "no-store"})


@router.post("/segments/{segment_id}/webhook", response_model=WebhookExportOut,
             status_code=202, responses=NOT_FOUND,
             summary="Send the consenting members to the webhooks subscribed to "
                     "segment.exported (segments.write everywhere)")
async def export_webhook(request: Request, segment_id: SegmentId,
                         actor: Owner) -> WebhookExportOut:
    async with db_of(request).uow() as uow:
        sent = await segments.export_webhook(uow, actor, segment_id)
        await uow.commit()
    return WebhookExportOut(export_id=sent.export_id, members=sent.members, parts=sent.parts)
