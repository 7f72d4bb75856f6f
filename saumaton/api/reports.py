"""/api/v1/reports: the back office's sales reports as JSON (web/backoffice/reports.py)
and the daily journal (web/backoffice/journal.py).

The same services make the same figures: a period of whole local days (`from`, `to`,
inclusive, at most three years), a granularity for the over-time series, where sales
count ("sold" or "fulfilled"), and optional location and channel filters. Money is
integer cents, VAT included unless the name says otherwise; rates and shares are basis
points (2550 = 25.5 %). Figures are read from the reports database (the read replica
when one is set). `reports.read`; a store manager sees their stores only, as on the
pages.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select

from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import IsoDate
from saumaton.locations.models import Channel, Location
from saumaton.reports.journal import COMPANY, build_journal, journal_period
from saumaton.reports.period import Grain, Period
from saumaton.reports.sales import Figures, Scope, View, sales_report, scope_of
from saumaton.reports.sales_detail import returns_by_reason, staff_sales, top_items
from saumaton.web.auth import reports_db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


def _sane_year(day: date) -> date:
    # A report compares with the year before and reads up to the day after: keep far
    # from date's own limits (year 1, year 9999), which no shop's figures come near.
    if not 1970 <= day.year <= 9000:
        raise ValueError("a report day is between 1970 and 9000")
    return day


ReportDate = Annotated[IsoDate, AfterValidator(_sane_year)]
Reader = Annotated[Actor, api_requires("reports.read")]
Code = Annotated[str | None, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_*.-]+$")]
BAD_FILTER: dict[int | str, dict[str, Any]] = {422: {
    "description": "invalid_period, period_too_long, unknown_location, unknown_channel"}}


class PeriodOut(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    days: int

    model_config = {"populate_by_name": True}


def _period_out(p: Period) -> PeriodOut:
    return PeriodOut(from_=p.first, to=p.last, days=p.days)


class Filters(BaseModel):
    """A report's filters as the server understood them."""

    period: PeriodOut
    granularity: Literal["day", "week", "month"]
    view: Literal["sold", "fulfilled"]
    location: str | None
    channel: str | None


class ReportQuery:
    """The query every sales report shares."""

    def __init__(
        self,
        since: Annotated[ReportDate, Query(alias="from",
                                           description="first day (shop's time zone)")],
        until: Annotated[ReportDate, Query(alias="to", description="last day, inclusive; at "
                                                                  "most three years after "
                                                                  "`from`")],
        granularity: Annotated[Literal["day", "week", "month"], Query(
            description="the over-time series' buckets (ISO weeks)")] = "day",
        view: Annotated[Literal["sold", "fulfilled"], Query(
            description="sold: where the sale was made; fulfilled: the location that "
                        "handed the goods over or took them back")] = "sold",
        location: Code = None,
        channel: Code = None,
    ) -> None:
        if until < since:
            raise ValidationFailed("the period ends before it starts", code="invalid_period",
                                   field="to")
        self.period = Period(since, until)
        self.grain = Grain(granularity)
        self.view = View(view)
        self.location = location
        self.channel = channel


Query_ = Annotated[ReportQuery, Depends()]


async def _resolve(request: Request, actor: Actor, q: ReportQuery
                   ) -> tuple[Scope, int | None, Filters]:
    """The actor's scope narrowed to the location filter, and the channel's id. A
    location outside the manager's stores answers 403 (the page shows only theirs)."""
    scope = scope_of(actor)
    channel_id = None
    async with reports_db_of(request).reader() as s:
        if q.location is not None:
            loc = await s.scalar(select(Location).where(Location.code == q.location))
            if loc is None:
                raise ValidationFailed(f"no location {q.location!r}",
                                       code="unknown_location", field="location")
            actor.require("reports.read", loc.id)
            scope = scope.narrowed(loc.id)
        if q.channel is not None:
            channel_id = await s.scalar(select(Channel.id).where(Channel.code == q.channel))
            if channel_id is None:
                raise ValidationFailed(f"no channel {q.channel!r}", code="unknown_channel",
                                       field="channel")
    return scope, channel_id, Filters(period=_period_out(q.period), granularity=q.grain.value,
                                      view=q.view.value, location=q.location,
                                      channel=q.channel)


# --- the sales report ----------------------------------------------------------------------

class FiguresOut(BaseModel):
    sales_cents: int = Field(description="goods and delivery fees sold, VAT incl.")
    sales_vat_cents: int
    goods_cents: int
    delivery_cents: int
    returns_cents: int
    returns_vat_cents: int
    net_cents: int = Field(description="sales − returns, VAT incl.")
    net_vat_cents: int
    net_excl_vat_cents: int
    margin_cents: int = Field(description="gross margin of the goods with a known cost")
    margin_bp: int | None
    unknown_cost_bp: int | None = Field(description="share of goods' net sales without "
                                                    "a cost price")
    units_sold: int
    units_returned: int
    orders: int
    average_basket_cents: int | None
    gift_cards_cents: int = Field(description="gift cards sold: a liability, not a sale")
    gift_cards_units: int


def _figures(f: Figures | None) -> FiguresOut | None:
    if f is None:
        return None
    return FiguresOut(
        sales_cents=f.sales_cents, sales_vat_cents=f.sales_vat_cents,
        goods_cents=f.goods_cents, delivery_cents=f.delivery_cents,
        returns_cents=f.returns_cents, returns_vat_cents=f.returns_vat_cents,
        net_cents=f.net_cents, net_vat_cents=f.net_vat_cents,
        net_excl_vat_cents=f.net_excl_vat_cents, margin_cents=f.margin_cents,
        margin_bp=f.margin_bp, unknown_cost_bp=f.unknown_cost_bp, units_sold=f.units_sold,
        units_returned=f.units_returned, orders=f.orders,
        average_basket_cents=f.average_basket_cents, gift_cards_cents=f.gift_cards_cents,
        gift_cards_units=f.gift_cards_units)


class ChannelRowOut(BaseModel):
    channel: str = Field(description="the channel's code")
    channel_name: str
    channel_kind: str
    location: str | None = Field(description="the location's code; null: none (a web sale "
                                             "in the sold view, a parcel in fulfilled)")
    location_name: str
    figures: FiguresOut
    previous: FiguresOut | None = Field(description="the period before")
    year_earlier: FiguresOut | None


class VatOut(BaseModel):
    vat_rate_bp: int
    sales_cents: int
    sales_vat_cents: int
    returns_cents: int
    returns_vat_cents: int
    net_cents: int
    net_vat_cents: int
    net_excl_vat_cents: int


class SeriesRowOut(BaseModel):
    channel: str
    location: str | None
    net_cents: int


class BucketOut(BaseModel):
    start: date = Field(description="the bucket's first day")
    net_cents: int = Field(description="every row together")
    rows: list[SeriesRowOut]


class ComparisonOut(BaseModel):
    period: PeriodOut
    figures: FiguresOut
    net_change_bp: int | None = Field(description="net sales' change to this period")


class SalesReportOut(BaseModel):
    filters: Filters
    total: FiguresOut
    previous: ComparisonOut | None
    year_earlier: ComparisonOut | None
    channels: list[ChannelRowOut]
    vat: list[VatOut]
    series: list[BucketOut]
    live_days: int = Field(description="days computed from the order book (not yet in "
                                       "the nightly summary)")


async def _codes(request: Request) -> tuple[dict[int, str], dict[int, str]]:
    async with reports_db_of(request).reader() as s:
        channels = {int(i): str(c) for i, c in (await s.execute(
            select(Channel.id, Channel.code))).all()}
        locations = {int(i): str(c) for i, c in (await s.execute(
            select(Location.id, Location.code))).all()}
    return channels, locations


def _change(now: int, before: int) -> int | None:
    return None if before == 0 else round((now - before) * 10_000 / abs(before))


@router.get("/sales", response_model=SalesReportOut, responses=BAD_FILTER,
            summary="Sales, returns, net, VAT and margin per channel and location, over "
                    "time, against the period before and a year earlier (reports.read)")
async def sales(request: Request, actor: Reader, q: Query_) -> SalesReportOut:
    scope, channel_id, filters = await _resolve(request, actor, q)
    async with reports_db_of(request).reader() as s:
        report = await sales_report(s, q.period, tz=settings_of(request).timezone,
                                    grain=q.grain, view=q.view, scope=scope,
                                    channel_id=channel_id)
    channels, locations = await _codes(request)

    def loc(location_id: int | None) -> str | None:
        return locations.get(location_id) if location_id is not None else None

    def comparison(p: Period, f: Figures | None) -> ComparisonOut | None:
        out = _figures(f)
        if out is None or f is None:
            return None
        return ComparisonOut(period=_period_out(p), figures=out,
                             net_change_bp=_change(report.total.net_cents, f.net_cents))

    total = _figures(report.total)
    assert total is not None
    return SalesReportOut(
        filters=filters, total=total,
        previous=comparison(q.period.previous(), report.previous),
        year_earlier=comparison(q.period.year_earlier(), report.year_earlier),
        channels=[ChannelRowOut(
            channel=channels.get(r.key.channel_id, str(r.key.channel_id)),
            channel_name=r.channel, channel_kind=r.channel_kind,
            location=loc(r.key.location_id), location_name=r.location,
            figures=_figures(r.figures),
            previous=_figures(report.previous_by_key.get(r.key, Figures())
                              if report.previous is not None else None),
            year_earlier=_figures(report.year_earlier_by_key.get(r.key, Figures())
                                  if report.year_earlier is not None else None))
            for r in report.rows],
        vat=[VatOut(vat_rate_bp=v.rate_bp, sales_cents=v.sales_cents,
                    sales_vat_cents=v.sales_vat_cents, returns_cents=v.returns_cents,
                    returns_vat_cents=v.returns_vat_cents, net_cents=v.net_cents,
                    net_vat_cents=v.net_vat_cents, net_excl_vat_cents=v.net_excl_vat_cents)
             for v in report.vat],
        series=[BucketOut(start=start, net_cents=sum(by_key.values()), rows=[
            SeriesRowOut(channel=channels.get(k.channel_id, str(k.channel_id)),
                         location=loc(k.location_id), net_cents=v)
            for k, v in by_key.items()]) for start, by_key in report.buckets],
        live_days=report.live_days)


# --- the detail reports ------------------------------------------------------------------

class ItemOut(BaseModel):
    id: int | None = Field(description="the variant's id, or the category's (null: none)")
    sku: str = Field(description="\"\" for a category")
    name: str
    units_sold: int
    units_returned: int
    sales_cents: int
    sales_vat_cents: int
    returns_cents: int
    net_cents: int
    margin_cents: int


class TopItemsOut(BaseModel):
    filters: Filters
    by: Literal["product", "category"]
    items: list[ItemOut] = Field(description="the best 20 by net sales, returns taken off")


@router.get("/sales/top", response_model=TopItemsOut, responses=BAD_FILTER,
            summary="Top products (per variant) or categories by net sales (reports.read)",
            description="The location filter applies; the channel filter does not (the "
                        "page has none).")
async def top(request: Request, actor: Reader, q: Query_,
              by: Annotated[Literal["product", "category"], Query()] = "product"
              ) -> TopItemsOut:
    scope, _, filters = await _resolve(request, actor, q)
    async with reports_db_of(request).reader() as s:
        items = await top_items(s, q.period, tz=settings_of(request).timezone, by=by,
                                view=q.view, scope=scope)
    return TopItemsOut(filters=filters, by=by, items=[ItemOut(
        id=i.key, sku=i.code, name=i.name, units_sold=i.units_sold,
        units_returned=i.units_returned, sales_cents=i.sales_cents,
        sales_vat_cents=i.sales_vat_cents, returns_cents=i.returns_cents,
        net_cents=i.net_cents, margin_cents=i.margin_cents) for i in items])


class StaffSalesOut(BaseModel):
    location: str
    location_name: str
    staff: str = Field(description="who rang the sales up: \"staff:3 anna@shop.fi\"")
    orders: int
    units: int
    sales_cents: int = Field(description="goods, VAT incl.")
    average_basket_cents: int | None


class StaffReportOut(BaseModel):
    filters: Filters
    rows: list[StaffSalesOut]


@router.get("/sales/staff", response_model=StaffReportOut, responses=BAD_FILTER,
            summary="Store sales per store and staff member (reports.read)")
async def staff(request: Request, actor: Reader, q: Query_) -> StaffReportOut:
    scope, _, filters = await _resolve(request, actor, q)
    _, locations = await _codes(request)
    async with reports_db_of(request).reader() as s:
        rows = await staff_sales(s, q.period, tz=settings_of(request).timezone, scope=scope)
    return StaffReportOut(filters=filters, rows=[StaffSalesOut(
        location=locations.get(r.location_id, str(r.location_id)), location_name=r.location,
        staff=r.staff, orders=r.orders, units=r.units, sales_cents=r.sales_cents,
        average_basket_cents=r.average_basket_cents) for r in rows])


class ReasonOut(BaseModel):
    reason: str = Field(description="\"\": none given")
    channel: str = Field(description="the sale's channel (name)")
    returned_at: str = Field(description="where the goods came back; \"\": by post")
    lines: int
    units: int
    refund_cents: int
    vat_cents: int


class ReturnsReportOut(BaseModel):
    filters: Filters
    reasons: list[ReasonOut]


@router.get("/sales/returns", response_model=ReturnsReportOut, responses=BAD_FILTER,
            summary="Completed returns by reason, sale channel and where they came back "
                    "(reports.read)")
async def returns(request: Request, actor: Reader, q: Query_) -> ReturnsReportOut:
    scope, _, filters = await _resolve(request, actor, q)
    async with reports_db_of(request).reader() as s:
        rows = await returns_by_reason(s, q.period, tz=settings_of(request).timezone,
                                       view=q.view, scope=scope)
    return ReturnsReportOut(filters=filters, reasons=[ReasonOut(
        reason=r.reason, channel=r.channel, returned_at=r.returned_at, lines=r.lines,
        units=r.units, refund_cents=r.refund_cents, vat_cents=r.vat_cents) for r in rows])


# --- the daily journal ---------------------------------------------------------------------

class JournalLineOut(BaseModel):
    date: date
    location: str = Field(description="a store's or channel's code; \"*\": the company's "
                                      "gift card and store credit liability")
    location_name: str
    section: str
    key: str
    vat_rate_bp: int | None
    net_cents: int | None
    vat_cents: int | None
    gross_cents: int


class JournalOut(BaseModel):
    period: PeriodOut
    lines: list[JournalLineOut]


@router.get("/journal", response_model=JournalOut,
            responses={422: {"description": "invalid_period, period_too_long (62 days), "
                                            "unknown_location"}},
            summary="The daily journal for accounting: per day and location, sales and "
                    "returns per VAT rate, payments, refunds, the balance check "
                    "(reports.read)")
async def journal(
    request: Request, actor: Reader,
    since: Annotated[ReportDate, Query(alias="from")],
    until: Annotated[ReportDate | None, Query(alias="to", description="default: `from`")] = None,
    location: Code = None,
) -> JournalOut:
    store_ids: set[int] | None = None
    if not actor.can("reports.read", everywhere=True):
        store_ids = {loc for loc in actor.location_ids
                     if loc is not None and actor.can("reports.read", loc)}
    if (until or since) < since:
        raise ValidationFailed("the period ends before it starts", code="invalid_period",
                               field="to")
    period = journal_period(since, until)
    if location is not None and location != COMPANY:
        async with reports_db_of(request).reader() as s:
            loc_id = await s.scalar(select(Location.id).where(Location.code == location))
            known = loc_id is not None or await s.scalar(
                select(Channel.id).where(Channel.code == location)) is not None
        if not known:
            raise ValidationFailed(f"no location {location!r}", code="unknown_location",
                                   field="location")
        if store_ids is not None and loc_id not in store_ids:
            actor.require("reports.read", loc_id, everywhere=loc_id is None)
    elif location == COMPANY and store_ids is not None:
        actor.require("reports.read", everywhere=True)
    async with reports_db_of(request).reader() as s:
        j = await build_journal(s, period, settings_of(request).timezone,
                                locations={location} if location else None,
                                store_ids=store_ids)
    return JournalOut(period=_period_out(j.period), lines=[JournalLineOut(
        date=ln.day, location=ln.location, location_name=ln.location_name,
        section=ln.section, key=ln.key, vat_rate_bp=ln.vat_rate_bp, net_cents=ln.net_cents,
        vat_cents=ln.vat_cents, gross_cents=ln.gross_cents) for ln in j.lines])
