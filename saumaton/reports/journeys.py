"""Channel journeys: where each customer bought first, where they bought later, and what
they are worth - the proof (or not) that the store drives the webshop.

Figures are chain-wide and lifetime (every sale of a known customer so far), read from
two summary tables (saumaton/reports/journey_tables.py) that `refresh_journeys` keeps:
a full rebuild, or only the customers whose orders, payments, refunds, returns or
merges changed since the stored watermark. The reports job runs it; pages show
"as of <watermark>". Definitions: docs/customer-reports.md.

A purchase is a sale as in docs/reports.md (not pending, not cancelled; on
`sold_at` else `created_at`) of a known customer, with at least one line that is not a
gift card. Its revenue: the non-gift-card lines plus the delivery fee, VAT included,
less what completed returns refunded for its lines. Its kind is its channel's kind,
except a till sale that sold a reservation to try (docs/reserve-to-try.md): that one is
"web_to_store", a journey that began on the web and ended in the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.customers.models import CustomerMerge
from saumaton.db.base import UTCDateTime
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Channel
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment, Refund
from saumaton.reports.journey_tables import CustomerChannel, CustomerJourney, JourneyRefresh
from saumaton.returns.models import Return, ReturnLine
from saumaton.tryon.models import TryReservation
from saumaton.tryon.services import TryStatus

PERMISSION = "reports.read"
# One bit per channel kind; a kind not listed here counts as "other".
KIND_BITS: dict[str, int] = {"pos": 1, "webshop": 2, "service_desk": 4, "api": 8}
OTHER_BIT = 16
# A till sale that sold a reservation to try made online: a purchase kind of its own, so
# that the report shows the web -> store journey instead of a plain store purchase. Not
# a channel kind (KIND_BITS stays the channels' kinds, which the segments offer).
WEB_TO_STORE = "web_to_store"
WEB_TO_STORE_BIT = 32
# The bit of every purchase kind the journey tables hold (kinds_mask, later_kinds_mask).
JOURNEY_BITS: dict[str, int] = {**KIND_BITS, WEB_TO_STORE: WEB_TO_STORE_BIT}
KIND_ORDER = ("pos", "webshop", WEB_TO_STORE, "service_desk", "api", "other")
# A transaction that began before the last refresh may commit after it: changes are
# looked for from this long before the watermark (recomputing a customer twice is
# harmless).
OVERLAP = timedelta(minutes=10)
CHUNK = 2000  # customers recomputed per statement in an incremental refresh

_O = cast(Table, Order.__table__)
_OL = cast(Table, OrderLine.__table__)
_V = cast(Table, Variant.__table__)
_P = cast(Table, Product.__table__)
_CH = cast(Table, Channel.__table__)
_R = cast(Table, Return.__table__)
_RL = cast(Table, ReturnLine.__table__)
_CJ = cast(Table, CustomerJourney.__table__)
_CC = cast(Table, CustomerChannel.__table__)
_TR = cast(Table, TryReservation.__table__)


def require_journeys(actor: Actor) -> None:
    """Chain-wide figures: reports.read at every location (owner, finance)."""
    actor.require(PERMISSION, everywhere=True)


def kind_of_bit(bit: int) -> str:
    for kind, b in JOURNEY_BITS.items():
        if b == bit:
            return kind
    return "other"


def kinds_in(mask: int) -> list[str]:
    """The kinds of a mask in KIND_ORDER."""
    out = [k for k in KIND_ORDER[:-1] if mask & JOURNEY_BITS[k]]
    if mask & OTHER_BIT:
        out.append("other")
    return out


def journey_kind(kind: str) -> str:
    """A stored purchase kind as the report shows it ("other" for an unknown one)."""
    return kind if kind in JOURNEY_BITS else "other"


def several_kinds(kinds: Sequence[str]) -> bool:
    """Omnichannel by kind: bought in two or more kinds. A reservation to try made online
    and bought at the till is the web and the store at once."""
    return len(kinds) > 1 or WEB_TO_STORE in kinds


def stored_kinds(channel_kind: str) -> tuple[str, ...]:
    """The stored purchase kinds (`first_kind`) of purchases in a channel kind: a store's
    include the till sales of reservations to try (the segments' rules)."""
    return ("pos", WEB_TO_STORE) if channel_kind == "pos" else (channel_kind,)


def stored_bits(channel_kind: str) -> int:
    """The mask bits of purchases in a channel kind (as `stored_kinds`)."""
    bits = 0
    for kind in stored_kinds(channel_kind):
        bits |= JOURNEY_BITS[kind]
    return bits


def _bit(kind: ColumnElement[Any]) -> ColumnElement[int]:
    return case(*((kind == k, literal(b)) for k, b in JOURNEY_BITS.items()),
                else_=OTHER_BIT)


# --- refresh ------------------------------------------------------------------------


# The purchases being summed, computed once per refresh (both summary tables read them).
# Temporary: created and dropped inside the refresh's transaction.
_FACTS = Table(
    "journey_facts", MetaData(),
    Column("customer_id", BigInteger), Column("channel_id", Integer),
    Column("location_id", Integer), Column("at", UTCDateTime()), Column("kind", String(16)),
    Column("bit", Integer), Column("revenue", BigInteger), Column("rn", Integer),
    Column("first_channel", Integer), prefixes=["TEMPORARY"])


def _facts(ids: Sequence[int] | None) -> Any:
    """One row per purchase: customer, channel, moment, revenue, rank (1 = first)."""
    gift = _P.c.gift_card
    lines = (select(_OL.c.order_id,
                    func.sum(case((gift, 0), else_=_OL.c.total_cents)).label("cents"),
                    func.sum(case((gift, 0), else_=1)).label("n"))
             .join(_V, _V.c.id == _OL.c.variant_id).join(_P, _P.c.id == _V.c.product_id))
    returned = (select(_R.c.order_id, func.sum(_RL.c.refund_cents).label("cents"))
                .join(_RL, _RL.c.return_id == _R.c.id)
                .join(_V, _V.c.id == _RL.c.variant_id).join(_P, _P.c.id == _V.c.product_id)
                .where(_R.c.status == "completed", gift == false()))
    # The orders that sold a reservation to try (tryon.services.sell links them); one
    # sale may sell several, hence grouped.
    tried = select(_TR.c.order_id).where(_TR.c.status == TryStatus.SOLD.value,
                                         _TR.c.order_id.is_not(None))
    if ids is not None:
        lines = lines.join(_O, _O.c.id == _OL.c.order_id).where(_O.c.customer_id.in_(ids))
        returned = returned.join(_O, _O.c.id == _R.c.order_id).where(
            _O.c.customer_id.in_(ids))
        tried = tried.join(_O, _O.c.id == _TR.c.order_id).where(_O.c.customer_id.in_(ids))
    ls = lines.group_by(_OL.c.order_id).subquery("ls")
    rs = returned.group_by(_R.c.order_id).subquery("rs")
    ts = tried.group_by(_TR.c.order_id).subquery("ts")
    at = func.coalesce(_O.c.sold_at, _O.c.created_at)
    order = (at, _O.c.id)
    kind = case((and_(ts.c.order_id.is_not(None), _CH.c.kind == "pos"),
                 literal(WEB_TO_STORE, String(16))), else_=_CH.c.kind)
    facts = (
        select(_O.c.customer_id, _O.c.channel_id, _O.c.location_id, at.label("at"),
               kind.label("kind"), _bit(kind).label("bit"),
               (_O.c.delivery_fee_cents + ls.c.cents - func.coalesce(rs.c.cents, 0))
               .label("revenue"),
               func.row_number().over(partition_by=_O.c.customer_id, order_by=order)
               .label("rn"),
               func.first_value(_O.c.channel_id).over(partition_by=_O.c.customer_id,
                                                      order_by=order).label("first_channel"))
        .join(ls, ls.c.order_id == _O.c.id)
        .join(_CH, _CH.c.id == _O.c.channel_id)
        .outerjoin(rs, rs.c.order_id == _O.c.id)
        .outerjoin(ts, ts.c.order_id == _O.c.id)
        .where(_O.c.customer_id.is_not(None), _O.c.status.not_in(("pending", "cancelled")),
               ls.c.n > 0))
    if ids is not None:
        facts = facts.where(_O.c.customer_id.in_(ids))
    return facts


def _days(second: Any, first: Any, postgres: bool) -> ColumnElement[Any]:
    """Whole 24-hour days from `first` to `second`."""
    if postgres:
        return func.cast(func.floor(func.extract("epoch", second - first) / 86400), Integer)
    # julianday in whole milliseconds, then integer division: exact days
    return func.cast(func.cast(func.round(
        (func.julianday(second) - func.julianday(first)) * 86400000), Integer) / 86400000,
        Integer)


async def _rebuild(s: AsyncSession, ids: Sequence[int] | None, postgres: bool) -> None:
    await s.run_sync(lambda sync: _FACTS.create(sync.connection(), checkfirst=True))
    await s.execute(delete(_FACTS))
    await s.execute(insert(_FACTS).from_select(
        ["customer_id", "channel_id", "location_id", "at", "kind", "bit", "revenue", "rn",
         "first_channel"], _facts(ids)))
    f = _FACTS
    first = f.c.rn == 1
    grouped = (
        select(f.c.customer_id, func.min(f.c.at).label("first_at"),
               func.max(case((first, f.c.channel_id))).label("first_channel_id"),
               func.max(case((first, f.c.location_id))).label("first_location_id"),
               func.max(case((first, f.c.kind))).label("first_kind"),
               func.max(case((f.c.rn == 2, f.c.at))).label("second_at"),
               func.count().label("orders"), func.sum(f.c.revenue).label("revenue_cents"),
               func.sum(f.c.bit.distinct()).label("kinds_mask"),
               func.sum(case((f.c.rn > 1, f.c.bit), else_=0).distinct())
               .label("later_kinds_mask"),
               func.count(f.c.channel_id.distinct()).label("channels"))
        .group_by(f.c.customer_id)).subquery("g")
    g = grouped.c
    await s.execute(insert(_CJ).from_select(
        ["customer_id", "first_at", "first_channel_id", "first_location_id", "first_kind",
         "second_at", "second_days", "orders", "revenue_cents", "kinds_mask",
         "later_kinds_mask", "channels"],
        select(g.customer_id, g.first_at, g.first_channel_id, g.first_location_id,
               g.first_kind, g.second_at, _days(g.second_at, g.first_at, postgres),
               g.orders, g.revenue_cents, g.kinds_mask, g.later_kinds_mask, g.channels)))
    later = (func.bool_or(f.c.rn > 1) if postgres
             else func.max(case((f.c.rn > 1, 1), else_=0)))
    channels = (
        select(f.c.customer_id, f.c.channel_id, func.max(f.c.first_channel),
               func.min(f.c.at), func.count(), func.sum(f.c.revenue), later)
        .group_by(f.c.customer_id, f.c.channel_id))
    await s.execute(insert(_CC).from_select(
        ["customer_id", "channel_id", "first_channel_id", "first_at", "orders",
         "revenue_cents", "later"], channels))
    await s.run_sync(lambda sync: _FACTS.drop(sync.connection()))


async def changed_customers(s: AsyncSession, since: datetime) -> list[int]:
    """Customers with an order, payment, refund, return or merge at or after `since`."""
    o = _O
    queries = [
        select(o.c.customer_id).where((o.c.created_at >= since) | (o.c.sold_at >= since)
                                      | (o.c.collected_at >= since)),
        select(o.c.customer_id).join(Payment, Payment.order_id == o.c.id)
        .where(Payment.created_at >= since),
        select(o.c.customer_id).join(Refund, Refund.order_id == o.c.id)
        .where(Refund.created_at >= since),
        select(o.c.customer_id).join(_R, _R.c.order_id == o.c.id)
        .where((_R.c.created_at >= since) | (_R.c.received_at >= since)),
        select(CustomerMerge.kept_id).where((CustomerMerge.merged_at >= since)
                                            | (CustomerMerge.undone_at >= since)),
        select(CustomerMerge.merged_id).where((CustomerMerge.merged_at >= since)
                                              | (CustomerMerge.undone_at >= since)),
    ]
    rows = await s.execute(union(*queries))
    return sorted({int(r[0]) for r in rows if r[0] is not None})


async def aggregate(s: AsyncSession) -> dict[str, list[list[int | str]]]:
    """The journey figures summed over every customer: small enough (tens to a few
    thousand numbers) to keep in the refresh row, so that the page reads one row
    instead of scanning a million (docs/performance.md)."""
    matrix: list[list[int | str]] = [[int(a), int(b), int(n)] for a, b, n in await s.execute(
        select(_CC.c.first_channel_id, _CC.c.channel_id, func.count())
        .where(_CC.c.later == true())
        .group_by(_CC.c.first_channel_id, _CC.c.channel_id))]
    multi_channel = _CJ.c.channels > literal_column("1")  # no parameter: GROUP BY matches
    # The first purchase's kind is last: a till channel's first purchase may be a store
    # purchase or a reservation to try (figures kept before had no kind: the channel's).
    grouped = await s.execute(
        select(_CJ.c.first_channel_id, _CJ.c.kinds_mask, _CJ.c.later_kinds_mask,
               multi_channel, func.count(), func.sum(_CJ.c.revenue_cents),
               func.sum(_CJ.c.orders), func.count(_CJ.c.second_at), _CJ.c.first_kind)
        .group_by(_CJ.c.first_channel_id, _CJ.c.kinds_mask, _CJ.c.later_kinds_mask,
                  multi_channel, _CJ.c.first_kind))
    groups: list[list[int | str]] = [
        [int(first), int(mask), int(later), int(bool(multi)), int(n), int(cents or 0),
         int(orders or 0), int(repeat), str(kind)]
        for first, mask, later, multi, n, cents, orders, repeat, kind in grouped]
    histogram = await s.execute(
        select(_CJ.c.first_channel_id, _CJ.c.second_days, func.count(), _CJ.c.first_kind)
        .where(_CJ.c.second_days.is_not(None))
        .group_by(_CJ.c.first_channel_id, _CJ.c.second_days, _CJ.c.first_kind))
    days: list[list[int | str]] = [[int(first), int(d), int(n), str(kind)]
                                   for first, d, n, kind in histogram]
    return {"matrix": matrix, "groups": groups, "days": days}


async def refresh_journeys(uow: UnitOfWork, *, full: bool = False,
                           now: datetime | None = None) -> int:
    """Bring the journey tables up to date; returns how many customers were recomputed
    (a full refresh: every customer with a purchase). The first refresh is full. The
    caller commits; readers see the old figures until then."""
    s = uow.session
    postgres = uow.db.is_postgres
    now = now or utcnow()
    if postgres:  # two refreshes at once would insert the same customers twice
        await s.execute(text("SELECT pg_advisory_xact_lock(hashtext('customer_journeys'))"))
    state = await s.get(JourneyRefresh, 1, with_for_update=postgres)
    if full or state is None:
        await s.execute(delete(_CC))
        await s.execute(delete(_CJ))
        await _rebuild(s, None, postgres)
        count = int(await s.scalar(select(func.count()).select_from(_CJ)) or 0)
    else:
        ids = await changed_customers(s, state.watermark_at - OVERLAP)
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i:i + CHUNK]
            await s.execute(delete(_CC).where(_CC.c.customer_id.in_(chunk)))
            await s.execute(delete(_CJ).where(_CJ.c.customer_id.in_(chunk)))
            await _rebuild(s, chunk, postgres)
        count = len(ids)
    unchanged = state is not None and count == 0 and not full and bool(state.figures)
    if state is None:
        state = JourneyRefresh(id=1, watermark_at=now, refreshed_at=now, customers=0,
                               figures={})
        s.add(state)
    state.watermark_at = now
    state.refreshed_at = utcnow()
    if full or state.full_at is None:
        state.full_at = now
    if not unchanged:  # the sums scan every customer: only when something changed
        state.customers = int(await s.scalar(select(func.count()).select_from(_CJ)) or 0)
        state.figures = await aggregate(s)
    await s.flush()
    return count


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelRef:
    id: int
    code: str
    name: str
    kind: str


@dataclass
class FirstChannelRow:
    """Customers whose first purchase was in `channel`, and where they bought later."""

    channel: ChannelRef
    customers: int = 0
    later: dict[int, int] = field(default_factory=dict)  # channel id -> customers
    one_time: int = 0  # only the first purchase so far
    repeat: int = 0  # at least two purchases (any channel)
    median_days: float | None = None  # first -> second purchase, among `repeat`
    revenue_cents: int = 0

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat / self.customers if self.customers else None


@dataclass
class FirstKindRow:
    kind: str
    customers: int = 0
    later: dict[str, int] = field(default_factory=dict)  # kind -> customers
    one_time: int = 0
    repeat: int = 0
    median_days: float | None = None
    revenue_cents: int = 0

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat / self.customers if self.customers else None


@dataclass
class JourneyValue:
    """Customers of one journey: first purchase kind, then every other kind bought in."""

    first_kind: str
    other_kinds: tuple[str, ...]
    customers: int = 0
    orders: int = 0
    revenue_cents: int = 0

    @property
    def key(self) -> str:
        return "+".join((self.first_kind, *self.other_kinds)) if self.other_kinds \
            else self.first_kind + "-only"

    @property
    def several_kinds(self) -> bool:
        """Counted with the omnichannel customers by kind (the function `several_kinds`)."""
        return several_kinds((self.first_kind, *self.other_kinds))

    @property
    def ltv_cents(self) -> int:
        """Average revenue per customer, rounded half up to a cent."""
        return (2 * self.revenue_cents + self.customers) // (2 * self.customers) \
            if self.customers else 0


@dataclass
class Share:
    customers: int
    revenue_cents: int
    of_customers: int
    of_revenue_cents: int

    @property
    def customer_share(self) -> float | None:
        return self.customers / self.of_customers if self.of_customers else None

    @property
    def revenue_share(self) -> float | None:
        return self.revenue_cents / self.of_revenue_cents if self.of_revenue_cents else None


@dataclass
class JourneyReport:
    as_of: datetime | None  # the watermark; None: never refreshed
    channels: list[ChannelRef]
    rows: list[FirstChannelRow]
    kind_rows: list[FirstKindRow]
    customers: int
    revenue_cents: int
    # Bought in two or more kinds (store and web, ...; a reservation to try bought at the
    # till is both: `several_kinds`).
    omni_kinds: Share
    omni_channels: Share  # bought in two or more channels (two stores count)
    journeys: list[JourneyValue]
    single_kind_ltv_cents: int
    multi_kind_ltv_cents: int


def median_of_histogram(histogram: dict[int, int]) -> float | None:
    """The median of integer values given as value -> how many (without expanding)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    lo, hi = (total - 1) // 2, total // 2  # the two middle positions (0-based)
    seen = 0
    low_value = high_value = None
    for value in sorted(histogram):
        n = histogram[value]
        if low_value is None and lo < seen + n:
            low_value = value
        if hi < seen + n:
            high_value = value
            break
        seen += n
    assert low_value is not None and high_value is not None
    return (low_value + high_value) / 2


def _avg(revenue: int, customers: int) -> int:
    return (2 * revenue + customers) // (2 * customers) if customers else 0


async def journey_report(s: AsyncSession, actor: Actor) -> JourneyReport:
    require_journeys(actor)
    state = await s.get(JourneyRefresh, 1)
    channels = [ChannelRef(c.id, c.code, c.name, c.kind) for c in
                (await s.scalars(select(Channel).order_by(Channel.id))).all()]
    by_id = {c.id: c for c in channels}
    rows = {c.id: FirstChannelRow(c) for c in channels}
    kind_rows = {k: FirstKindRow(k) for k in KIND_ORDER}
    figures: dict[str, Any] = dict(state.figures) if state is not None else {}
    for first, channel, n in figures.get("matrix", []):
        rows[first].later[channel] = int(n)
    journeys: dict[tuple[str, int], JourneyValue] = {}
    customers = revenue = 0
    omni_k = [0, 0]
    omni_c = [0, 0]
    single = [0, 0]
    for first, mask, later_mask, multi, n, cents, orders, repeat, *stored in \
            figures.get("groups", []):
        kind = journey_kind(stored[0] if stored else by_id[first].kind)
        row, krow = rows[first], kind_rows[kind]
        for r in (row, krow):
            r.customers += n
            r.repeat += repeat
            r.one_time += n - repeat
            r.revenue_cents += cents
        for k in kinds_in(int(later_mask)):
            krow.later[k] = krow.later.get(k, 0) + n
        customers += n
        revenue += cents
        kinds = kinds_in(int(mask))
        if several_kinds(kinds):
            omni_k[0] += n
            omni_k[1] += cents
        else:
            single[0] += n
            single[1] += cents
        if multi:
            omni_c[0] += n
            omni_c[1] += cents
        key = (kind, int(mask) | JOURNEY_BITS.get(kind, OTHER_BIT))
        jv = journeys.get(key)
        if jv is None:
            jv = journeys[key] = JourneyValue(
                kind, tuple(k for k in kinds if k != kind))
        jv.customers += n
        jv.orders += orders
        jv.revenue_cents += cents
    days_by_channel: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    days_by_kind: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for first, days, n, *stored in figures.get("days", []):
        kind = journey_kind(stored[0] if stored else by_id[first].kind)
        days_by_channel[first][int(days)] += int(n)
        days_by_kind[kind][int(days)] += int(n)
    for first, hist in days_by_channel.items():
        rows[first].median_days = median_of_histogram(hist)
    for kind, hist in days_by_kind.items():
        kind_rows[kind].median_days = median_of_histogram(hist)
    ordered = sorted(journeys.values(), key=lambda j: (
        KIND_ORDER.index(j.first_kind), len(j.other_kinds),
        [KIND_ORDER.index(k) for k in j.other_kinds]))
    return JourneyReport(
        as_of=state.watermark_at if state else None,
        channels=channels,
        rows=[rows[c.id] for c in channels if rows[c.id].customers],
        kind_rows=[kind_rows[k] for k in KIND_ORDER if kind_rows[k].customers],
        customers=customers, revenue_cents=revenue,
        omni_kinds=Share(omni_k[0], omni_k[1], customers, revenue),
        omni_channels=Share(omni_c[0], omni_c[1], customers, revenue),
        journeys=ordered,
        single_kind_ltv_cents=_avg(single[1], single[0]),
        multi_kind_ltv_cents=_avg(omni_k[1], omni_k[0]))
