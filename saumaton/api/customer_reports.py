"""/api/v1/reports/customers…: the back office's customer reports as JSON
(web/backoffice/customer_reports.py) — channel journeys, NPS, the conversion funnel,
loyalty. Chain-wide figures: `reports.read` at every location (owner, finance), as on
the pages. Money in cents; rates as fractions (0.25 = 25 %), NPS −100…100. Read from the
reports database. Definitions: docs/customer-reports.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from saumaton.analytics import KINDS
from saumaton.api.reports import ReportDate
from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.reports.funnel_report import FunnelCounts, funnel_report
from saumaton.reports.journeys import journey_report
from saumaton.reports.loyalty_report import loyalty_report
from saumaton.reports.nps_report import NpsFigures, nps_report
from saumaton.reports.period import Grain, Period
from saumaton.web.auth import reports_db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/reports/customers", tags=["reports"])
Chain = Annotated[Actor, api_requires("reports.read", everywhere=True)]
Since = Annotated[ReportDate, Query(alias="from", description="first day (shop's time zone)")]
Until = Annotated[ReportDate, Query(alias="to", description="last day, inclusive")]
BAD_PERIOD: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid_period, period_too_long"}}


def _period(since: date, until: date) -> Period:
    if until < since:
        raise ValidationFailed("the period ends before it starts", code="invalid_period",
                               field="to")
    return Period(since, until)


class ChannelOut(BaseModel):
    code: str
    name: str
    kind: str


# --- channel journeys -----------------------------------------------------------------

class FirstChannelOut(BaseModel):
    channel: ChannelOut
    customers: int
    later: dict[str, int] = Field(description="channel code → customers who bought there "
                                              "later")
    one_time: int
    repeat: int
    repeat_rate: float | None
    median_days: float | None = Field(description="first → second purchase, among repeat")
    revenue_cents: int


KIND_HELP = ("pos, webshop, service_desk, api, other; web_to_store: a reservation to try "
             "made online and bought at a store's till (docs/reserve-to-try.md)")


class FirstKindOut(BaseModel):
    kind: str = Field(description=KIND_HELP)
    customers: int
    later: dict[str, int]
    one_time: int
    repeat: int
    repeat_rate: float | None
    median_days: float | None
    revenue_cents: int


class JourneyOut(BaseModel):
    key: str = Field(description="e.g. \"pos+webshop\", \"webshop-only\", "
                                 "\"web_to_store-only\"")
    first_kind: str = Field(description=KIND_HELP)
    other_kinds: list[str]
    several_kinds: bool = Field(description="counted with the omnichannel customers "
                                            "(omni_kinds): two or more kinds, or "
                                            "web_to_store")
    customers: int
    orders: int
    revenue_cents: int
    ltv_cents: int


class ShareOut(BaseModel):
    customers: int
    revenue_cents: int
    customer_share: float | None
    revenue_share: float | None


class JourneysOut(BaseModel):
    as_of: datetime | None = Field(description="figures as of this moment (the nightly "
                                               "refresh); null: never refreshed")
    customers: int
    revenue_cents: int
    first_channels: list[FirstChannelOut]
    first_kinds: list[FirstKindOut]
    omni_kinds: ShareOut = Field(description="bought in two or more channel kinds (a "
                                             "reservation to try bought at the till is "
                                             "the webshop and the store)")
    omni_channels: ShareOut = Field(description="bought in two or more channels")
    journeys: list[JourneyOut]
    single_kind_ltv_cents: int
    multi_kind_ltv_cents: int


@router.get("/journeys", response_model=JourneysOut,
            summary="Where customers first bought and where they bought later "
                    "(reports.read everywhere)")
async def journeys(request: Request, actor: Chain) -> JourneysOut:
    async with reports_db_of(request).reader() as s:
        r = await journey_report(s, actor)
    codes = {c.id: c.code for c in r.channels}
    return JourneysOut(
        as_of=r.as_of, customers=r.customers, revenue_cents=r.revenue_cents,
        first_channels=[FirstChannelOut(
            channel=ChannelOut(code=x.channel.code, name=x.channel.name, kind=x.channel.kind),
            customers=x.customers,
            later={codes.get(k, str(k)): v for k, v in x.later.items()},
            one_time=x.one_time, repeat=x.repeat, repeat_rate=x.repeat_rate,
            median_days=x.median_days, revenue_cents=x.revenue_cents) for x in r.rows],
        first_kinds=[FirstKindOut(
            kind=x.kind, customers=x.customers, later=dict(x.later), one_time=x.one_time,
            repeat=x.repeat, repeat_rate=x.repeat_rate, median_days=x.median_days,
            revenue_cents=x.revenue_cents) for x in r.kind_rows],
        omni_kinds=ShareOut(customers=r.omni_kinds.customers,
                            revenue_cents=r.omni_kinds.revenue_cents,
                            customer_share=r.omni_kinds.customer_share,
                            revenue_share=r.omni_kinds.revenue_share),
        omni_channels=ShareOut(customers=r.omni_channels.customers,
                               revenue_cents=r.omni_channels.revenue_cents,
                               customer_share=r.omni_channels.customer_share,
                               revenue_share=r.omni_channels.revenue_share),
        journeys=[JourneyOut(key=j.key, first_kind=j.first_kind,
                             other_kinds=list(j.other_kinds),
                             several_kinds=j.several_kinds, customers=j.customers,
                             orders=j.orders, revenue_cents=j.revenue_cents,
                             ltv_cents=j.ltv_cents) for j in r.journeys],
        single_kind_ltv_cents=r.single_kind_ltv_cents,
        multi_kind_ltv_cents=r.multi_kind_ltv_cents)


# --- NPS ------------------------------------------------------------------------------

class NpsFiguresOut(BaseModel):
    nps: float | None = Field(description="−100 … 100; null without answers")
    responses: int
    promoters: int
    passives: int
    detractors: int
    sent: int = Field(description="surveys sent in the period")
    response_rate: float | None


def _nps(f: NpsFigures) -> NpsFiguresOut:
    return NpsFiguresOut(nps=f.nps, responses=f.responses, promoters=f.promoters,
                         passives=f.passives, detractors=f.detractors, sent=f.sent,
                         response_rate=f.response_rate)


class NpsChannelOut(BaseModel):
    channel: ChannelOut
    figures: NpsFiguresOut


class NpsBucketOut(BaseModel):
    start: date
    total: NpsFiguresOut | None
    channels: dict[str, NpsFiguresOut] = Field(description="channel code → figures")


class NpsCommentOut(BaseModel):
    answered_at: datetime
    score: int
    comment: str
    channel: str
    customer_id: int | None = Field(description="for callers who may read customers")
    order_id: int | None


class NpsOut(BaseModel):
    period: dict[str, date]
    granularity: Literal["day", "week", "month"]
    total: NpsFiguresOut
    channels: list[NpsChannelOut]
    series: list[NpsBucketOut]
    comments: list[NpsCommentOut] = Field(description="newest first")


@router.get("/nps", response_model=NpsOut, responses=BAD_PERIOD,
            summary="Net promoter score per channel and over time, with the comments "
                    "(reports.read everywhere)")
async def nps(request: Request, actor: Chain, since: Since, until: Until,
              granularity: Literal["day", "week", "month"] = "month") -> NpsOut:
    period = _period(since, until)
    async with reports_db_of(request).reader() as s:
        r = await nps_report(s, actor, period, Grain(granularity),
                             settings_of(request).timezone)
    codes = {c.id: c.code for c in r.channels}
    may_see = actor.can("customers.read")
    return NpsOut(
        period={"from": period.first, "to": period.last}, granularity=granularity,
        total=_nps(r.total),
        channels=[NpsChannelOut(channel=ChannelOut(code=c.code, name=c.name, kind=c.kind),
                                figures=_nps(r.by_channel[c.id])) for c in r.channels],
        series=[NpsBucketOut(
            start=b, total=_nps(r.over_time[b][None]) if None in r.over_time[b] else None,
            channels={codes[k]: _nps(f) for k, f in r.over_time[b].items()
                      if k is not None and k in codes}) for b in r.buckets],
        comments=[NpsCommentOut(answered_at=n.answered_at, score=n.score, comment=n.comment,
                                channel=n.channel.code,
                                customer_id=n.customer_id if may_see else None,
                                order_id=n.order_id if may_see else None)
                  for n in r.comments])


# --- the funnel -------------------------------------------------------------------------

class FunnelStepsOut(BaseModel):
    events: dict[str, int] = Field(description="visit, product_view, add_to_cart, "
                                               "checkout_started, payment_started, "
                                               "order_placed")
    conversion: float | None = Field(description="orders placed per visit")


def _steps(c: FunnelCounts) -> FunnelStepsOut:
    return FunnelStepsOut(events={k: c.events.get(k, 0) for k in KINDS},
                          conversion=c.conversion)


class FunnelRowOut(BaseModel):
    date: date
    channel: str
    device: str
    steps: FunnelStepsOut


class FunnelOut(BaseModel):
    period: dict[str, date]
    total: FunnelStepsOut
    by_device: dict[str, FunnelStepsOut]
    rows: list[FunnelRowOut] = Field(description="per day, channel and device")
    web_to_store: dict[str, int] = Field(
        description="web visits that ended in a store: the reservations to try made in the "
                    "period by what became of them — sold (bought at the till), released, "
                    "expired (not collected), active (still waiting)")


@router.get("/funnel", response_model=FunnelOut, responses=BAD_PERIOD,
            summary="The webshop's conversion funnel per day, channel and device "
                    "(reports.read everywhere)")
async def funnel(request: Request, actor: Chain, since: Since, until: Until) -> FunnelOut:
    period = _period(since, until)
    async with reports_db_of(request).reader() as s:
        r = await funnel_report(s, actor, period, settings_of(request).timezone)
    return FunnelOut(
        period={"from": period.first, "to": period.last}, total=_steps(r.total),
        by_device={k: _steps(v) for k, v in r.by_device.items()},
        rows=[FunnelRowOut(date=d, channel=c, device=dev, steps=_steps(x))
              for d, c, dev, x in r.sorted_rows()],
        web_to_store=dict(r.web_to_store))


# --- loyalty ------------------------------------------------------------------------------

class TierMoveOut(BaseModel):
    from_tier: str
    to_tier: str
    members: int


class LoyaltyOut(BaseModel):
    period: dict[str, date]
    members: int = Field(description="members now")
    new_members: int
    points: dict[str, int] = Field(description="ledger kind → points in the period "
                                               "(signed)")
    issued: int
    used: int
    expired: int
    net_change: int
    earned_by_channel: dict[str, int]
    start_tiers: dict[str, int]
    end_tiers: dict[str, int]
    moves: list[TierMoveOut]
    up: int
    down: int
    same: int


@router.get("/loyalty", response_model=LoyaltyOut, responses=BAD_PERIOD,
            summary="Loyalty members, points issued, used and expired, tier moves "
                    "(reports.read everywhere)")
async def loyalty(request: Request, actor: Chain, since: Since, until: Until) -> LoyaltyOut:
    period = _period(since, until)
    async with reports_db_of(request).reader() as s:
        r = await loyalty_report(s, actor, period, settings_of(request))
    return LoyaltyOut(
        period={"from": period.first, "to": period.last}, members=r.members,
        new_members=r.new_members, points=dict(r.points), issued=r.issued, used=r.used,
        expired=r.expired, net_change=r.net_change,
        earned_by_channel=dict(r.earned_by_channel), start_tiers=dict(r.start_tiers),
        end_tiers=dict(r.end_tiers),
        moves=[TierMoveOut(from_tier=a, to_tier=b, members=n)
               for (a, b), n in sorted(r.moves.items())],
        up=r.up, down=r.down, same=r.same)
