"""Sales reports: sales, returns, net, VAT per rate, gross margin, units, orders and the
average basket per channel and location and combined, bucketed by day, week or month,
against the period before and a year earlier (docs/reports.md has every definition).

Figures come from the daily summary (`sales_daily`, built by the reports job) for the
days it covers completely, and live from the order book for the rest (today, days
after the job's last run), so a report is always exact. `source="live"` reads
everything live (the tests compare both).

Two views: "sold" groups by where the sale was made (a web order, click & collect too,
is the webshop's), "fulfilled" by where the goods were handed over or left from (click
& collect credited to the pickup store) and where returns came back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order
from saumaton.reports.models import SalesDailyDay
from saumaton.reports.period import Grain, Period, bucket
from saumaton.reports.summary import DayRow, live_day, stored_rows

Source = Literal["auto", "live"]


class View(StrEnum):
    SOLD = "sold"
    FULFILLED = "fulfilled"


@dataclass(frozen=True)
class Scope:
    """Which locations' figures a person sees: None = all (owner, finance); a manager
    only their stores (a web sale has no store in the "sold" view, so it is not theirs
    there; in the "fulfilled" view they see what their store handed over)."""

    locations: frozenset[int] | None = None

    def allows(self, location_id: int | None) -> bool:
        return self.locations is None or location_id in self.locations

    def narrowed(self, location_id: int | None) -> Scope:
        """Only `location_id` (a filter), within what this scope allows."""
        if location_id is None:
            return self
        if self.locations is not None and location_id not in self.locations:
            return Scope(frozenset())
        return Scope(frozenset({location_id}))


def scope_of(actor: Actor) -> Scope:
    if actor.can("reports.read", everywhere=True):
        return Scope(None)
    return Scope(frozenset(loc for loc in actor.location_ids
                           if loc is not None and actor.can("reports.read", loc)))


@dataclass
class Figures:
    """Sums of a set of summary rows. Amounts in cents, VAT included unless `_net`."""

    goods_cents: int = 0
    goods_vat_cents: int = 0
    delivery_cents: int = 0
    delivery_vat_cents: int = 0
    returns_cents: int = 0
    returns_vat_cents: int = 0
    # Goods net of VAT with a known unit cost, and that cost (returns taken off).
    costed_net_cents: int = 0
    cost_cents: int = 0
    units_sold: int = 0
    units_returned: int = 0
    orders: int = 0
    gift_cards_cents: int = 0
    gift_cards_units: int = 0

    def add(self, r: DayRow) -> None:
        if r.kind == "sale":
            self.goods_cents += r.gross_cents
            self.goods_vat_cents += r.vat_cents
            self.costed_net_cents += r.costed_net_cents
            self.cost_cents += r.cost_cents
            self.units_sold += r.units
        elif r.kind == "delivery":
            self.delivery_cents += r.gross_cents
            self.delivery_vat_cents += r.vat_cents
        elif r.kind == "return":
            self.returns_cents += r.gross_cents
            self.returns_vat_cents += r.vat_cents
            self.costed_net_cents -= r.costed_net_cents
            self.cost_cents -= r.cost_cents
            self.units_returned += r.units
        elif r.kind == "giftcard":
            self.gift_cards_cents += r.gross_cents
            self.gift_cards_units += r.units
        elif r.kind == "order":
            self.orders += r.orders

    @property
    def sales_cents(self) -> int:
        """Goods and delivery fees sold, VAT included."""
        return self.goods_cents + self.delivery_cents

    @property
    def sales_vat_cents(self) -> int:
        return self.goods_vat_cents + self.delivery_vat_cents

    @property
    def net_cents(self) -> int:
        """Net sales: sales − returns, VAT included."""
        return self.sales_cents - self.returns_cents

    @property
    def net_vat_cents(self) -> int:
        return self.sales_vat_cents - self.returns_vat_cents

    @property
    def net_excl_vat_cents(self) -> int:
        return self.net_cents - self.net_vat_cents

    @property
    def goods_net_excl_vat_cents(self) -> int:
        """Goods (no delivery fees) net of returns and of VAT: what margin is about."""
        return (self.goods_cents - self.goods_vat_cents
                - (self.returns_cents - self.returns_vat_cents))

    @property
    def margin_cents(self) -> int:
        """Gross margin of the goods whose cost is known: net of VAT − cost."""
        return self.costed_net_cents - self.cost_cents

    @property
    def margin_bp(self) -> int | None:
        """Margin as a share of the costed goods' net, in basis points."""
        if self.costed_net_cents == 0:
            return None
        return round(self.margin_cents * 10_000 / self.costed_net_cents)

    @property
    def unknown_cost_bp(self) -> int | None:
        """Share of goods' net sales whose unit cost was not known, in basis points."""
        base = self.goods_net_excl_vat_cents
        if base == 0:
            return None
        return round((base - self.costed_net_cents) * 10_000 / base)

    @property
    def units(self) -> int:
        return self.units_sold - self.units_returned

    @property
    def average_basket_cents(self) -> int | None:
        """Sales (goods and delivery, VAT incl.) per order."""
        if self.orders == 0:
            return None
        return round(self.sales_cents / self.orders)


@dataclass
class VatFigures:
    rate_bp: int
    sales_cents: int = 0
    sales_vat_cents: int = 0
    returns_cents: int = 0
    returns_vat_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.sales_cents - self.returns_cents

    @property
    def net_vat_cents(self) -> int:
        return self.sales_vat_cents - self.returns_vat_cents

    @property
    def net_excl_vat_cents(self) -> int:
        return self.net_cents - self.net_vat_cents


@dataclass(frozen=True)
class Key:
    """A row of the channel table: a channel at a location (None: no location)."""

    channel_id: int
    location_id: int | None


@dataclass
class ChannelRow:
    key: Key
    channel: str  # the channel's name
    channel_kind: str
    location: str  # the location's name, "" for none
    figures: Figures


@dataclass
class SalesReport:
    period: Period
    grain: Grain
    view: View
    rows: list[ChannelRow]
    total: Figures
    vat: list[VatFigures]
    # (bucket start, net sales per row key) in time order
    buckets: list[tuple[date, dict[Key, int]]]
    previous: Figures | None = None
    year_earlier: Figures | None = None
    previous_by_key: dict[Key, Figures] = field(default_factory=dict)
    year_earlier_by_key: dict[Key, Figures] = field(default_factory=dict)
    # Days read live (not from the summary).
    live_days: int = 0


def _complete_after(day: date, tz: str) -> datetime:
    """The moment `day` ended (a summary built after it holds the whole day)."""
    return Period.day(day).bounds(tz)[1]


async def split_days(s: AsyncSession, period: Period, tz: str, *, source: Source = "auto"
                     ) -> tuple[list[date], list[date]]:
    """The period's days the summary holds complete, and those to read live (not held,
    from the first order's day through today)."""
    days = period.each_day()
    covered: set[date] = set()
    if source == "auto":
        built = (await s.execute(select(SalesDailyDay.day, SalesDailyDay.refreshed_at)
                                 .where(SalesDailyDay.day >= period.first,
                                        SalesDailyDay.day <= period.last))).all()
        covered = {d for d, at in built if at >= _complete_after(d, tz)}
    stored = [d for d in days if d in covered]
    today = datetime.now(ZoneInfo(tz)).date()
    # Before the first order there is nothing to read (a year-earlier comparison of a
    # young shop); after today neither.
    first = await first_order_day(s, tz)
    live = [d for d in days if d not in covered and first is not None and first <= d <= today]
    return stored, live


async def day_rows(s: AsyncSession, period: Period, tz: str, *, source: Source = "auto"
                   ) -> tuple[list[DayRow], int]:
    """Every summary row of the period: stored days from `sales_daily`, the others live.
    Returns the rows and the number of days read live."""
    stored, live = await split_days(s, period, tz, source=source)
    rows = await stored_rows(s, stored)
    for d in live:
        rows.extend(await live_day(s, d, tz))
    return rows, len(live)


async def first_order_day(s: AsyncSession, tz: str) -> date | None:
    """The business day of the earliest order (created or sold): two index lookups."""
    created: datetime | None = await s.scalar(select(func.min(Order.created_at)))
    sold: datetime | None = await s.scalar(select(func.min(Order.sold_at)))
    moments = [m for m in (created, sold) if m is not None]
    return min(moments).astimezone(ZoneInfo(tz)).date() if moments else None


def _key(r: DayRow, view: View) -> Key:
    return Key(r.channel_id, r.location_id if view is View.SOLD else r.fulfil_location_id)


def _visible(rows: Iterable[DayRow], view: View, scope: Scope,
             channel_id: int | None = None) -> list[DayRow]:
    return [r for r in rows if scope.allows(_key(r, view).location_id)
            and (channel_id is None or r.channel_id == channel_id)]


def _by_key(rows: Iterable[DayRow], view: View) -> dict[Key, Figures]:
    out: dict[Key, Figures] = {}
    for r in rows:
        out.setdefault(_key(r, view), Figures()).add(r)
    return out


def _total(rows: Iterable[DayRow]) -> Figures:
    f = Figures()
    for r in rows:
        f.add(r)
    return f


def vat_table(rows: Iterable[DayRow]) -> list[VatFigures]:
    by_rate: dict[int, VatFigures] = {}
    for r in rows:
        if r.kind in ("sale", "delivery"):
            v = by_rate.setdefault(r.vat_rate_bp, VatFigures(r.vat_rate_bp))
            v.sales_cents += r.gross_cents
            v.sales_vat_cents += r.vat_cents
        elif r.kind == "return":
            v = by_rate.setdefault(r.vat_rate_bp, VatFigures(r.vat_rate_bp))
            v.returns_cents += r.gross_cents
            v.returns_vat_cents += r.vat_cents
    return [by_rate[k] for k in sorted(by_rate, reverse=True)]


async def _names(s: AsyncSession) -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    channels = {c.id: (c.name, c.kind) for c in (await s.scalars(select(Channel))).all()}
    locations = {loc.id: loc.name for loc in (await s.scalars(select(Location))).all()}
    return channels, locations


async def sales_report(s: AsyncSession, period: Period, *, tz: str, grain: Grain = Grain.DAY,
                       view: View = View.SOLD, scope: Scope = Scope(None),
                       compare: bool = True, source: Source = "auto",
                       channel_id: int | None = None) -> SalesReport:
    """The sales report of `period` as `scope` may see it; only `channel_id`'s sales
    when given (the API's channel filter)."""
    rows, live_days = await day_rows(s, period, tz, source=source)
    rows = _visible(rows, view, scope, channel_id)
    channels, locations = await _names(s)
    by_key = _by_key(rows, view)
    table = [ChannelRow(k, channels.get(k.channel_id, (str(k.channel_id), ""))[0],
                        channels.get(k.channel_id, ("", ""))[1],
                        locations.get(k.location_id, "") if k.location_id else "", f)
             for k, f in by_key.items()]
    order = {"webshop": 0, "pos": 1, "service_desk": 2, "api": 3}
    if view is View.SOLD:
        table.sort(key=lambda c: (order.get(c.channel_kind, 9), c.channel, c.location))
    else:
        table.sort(key=lambda c: (c.location == "", c.location, order.get(c.channel_kind, 9),
                                  c.channel))
    buckets: dict[date, dict[Key, int]] = {}
    for d in period.each_day():
        buckets.setdefault(bucket(d, grain), {})
    for r in rows:
        sign = {"sale": 1, "delivery": 1, "return": -1}.get(r.kind, 0)
        if sign:
            b = buckets.setdefault(bucket(r.day, grain), {})
            k = _key(r, view)
            b[k] = b.get(k, 0) + sign * r.gross_cents
    report = SalesReport(period, grain, view, table, _total(rows), vat_table(rows),
                         sorted(buckets.items()), live_days=live_days)
    if compare:
        for attr, other in (("previous", period.previous()),
                            ("year_earlier", period.year_earlier())):
            o_rows, n = await day_rows(s, other, tz, source=source)
            o_rows = _visible(o_rows, view, scope, channel_id)
            setattr(report, attr, _total(o_rows))
            setattr(report, f"{attr}_by_key", _by_key(o_rows, view))
            report.live_days += n
    return report


def change_bp(now: int, before: int) -> int | None:
    """The change from `before` to `now` in basis points (None when before is 0)."""
    if before == 0:
        return None
    return round((now - before) * 10_000 / abs(before))

