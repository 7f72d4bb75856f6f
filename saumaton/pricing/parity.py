"""Price parity: at a chosen moment, each active variant's price in every selling channel
(the webshop, each store's till, the service desk, the API), priced by
`pricing.services.resolve_prices` — the same function the channels price with — and
every difference with its cause.

Campaigns for every channel price a variant the same everywhere, so a difference always
comes from a campaign limited to some channels (or, with a tier, a member price limited
to some channels); the report names it. Bundle campaigns ("3 for 2") price whole carts,
not single units: those limited to some channels are listed as differences of their own.

The list price at the moment is the one in force then: a scheduled change due by then is
applied, and for a past moment the price history gives the price before later changes.
Variants are priced in chunks (one campaign query per channel and chunk), so a few
thousand variants take a few dozen queries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import case, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.catalogue.services import VariantInfo, display_name
from saumaton.locations.models import Channel, Location
from saumaton.pricing.changes import APPLIED, SCHEDULED
from saumaton.pricing.models import Campaign, CampaignChannel, PriceChange
from saumaton.pricing.services import BUNDLE_KINDS, PriceQuote, resolve_prices, tiers_up_to

CHUNK = 500


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    code: str
    kind: str
    name: str
    location_name: str | None = None  # a till: its store


@dataclass(frozen=True)
class Cause:
    campaign_id: int
    campaign_name: str
    limited_to: tuple[str, ...]  # channel codes; () = every channel
    member_tier: str | None


@dataclass(frozen=True)
class VariantParity:
    variant_id: int
    sku: str
    name: str
    list_cents: int
    prices: dict[str, int]  # channel code -> price
    campaigns: dict[str, str]  # channel code -> campaign name applied there
    causes: tuple[Cause, ...] = ()

    @property
    def differs(self) -> bool:
        return len(set(self.prices.values())) > 1

    @property
    def usual_cents(self) -> int:
        """The price most channels charge."""
        return Counter(self.prices.values()).most_common(1)[0][0]


@dataclass(frozen=True)
class BundleDifference:
    campaign_id: int
    name: str
    kind: str
    buy_quantity: int | None
    pay_quantity: int | None
    get_quantity: int | None
    value: int
    limited_to: tuple[str, ...]
    member_tier: str | None


@dataclass
class ParityReport:
    at: datetime
    tier: str | None
    channels: list[ChannelInfo]
    variants_checked: int = 0
    differences: list[VariantParity] = field(default_factory=list)
    bundles: list[BundleDifference] = field(default_factory=list)
    rows: list[VariantParity] = field(default_factory=list)  # all, when asked

    @property
    def count(self) -> int:
        return len(self.differences) + len(self.bundles)


# The webshop first, then the stores' tills, the service desk and the API.
_CHANNEL_ORDER = case({"webshop": 0, "pos": 1, "service_desk": 2, "api": 3},
                      value=Channel.kind, else_=4)


async def selling_channels(s: AsyncSession) -> list[ChannelInfo]:
    rows = await s.execute(select(Channel.id, Channel.code, Channel.kind, Channel.name,
                                  Location.name)
                           .outerjoin(Location, Location.id == Channel.location_id)
                           .order_by(_CHANNEL_ORDER, Channel.code))
    return [ChannelInfo(*r) for r in rows.all()]


async def _active_variants(s: AsyncSession, after_id: int, limit: int,
                           only: Sequence[int] | None = None) -> list[VariantInfo]:
    q = (
        select(Variant.id, Variant.product_id, Product.category_id, Variant.sku, Variant.ean,
               Product.name, Variant.name, Variant.price_cents, Product.gift_card)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.active, Product.active, Variant.id > after_id)
        .order_by(Variant.id).limit(limit))
    if only is not None:
        q = q.where(Variant.id.in_(list(only)[:10_000]))
    rows = (await s.execute(q)).all()
    return [VariantInfo(id=r[0], product_id=r[1], category_id=r[2], sku=r[3], ean=r[4],
                        name=display_name(r[5], r[6]), price_cents=r[7], vat_rate_bp=0,
                        active=True, gift_card=r[8]) for r in rows]


async def list_prices_at(s: AsyncSession, infos: list[VariantInfo], at: datetime,
                         now: datetime) -> list[VariantInfo]:
    """The variants with the list price in force at `at`."""
    ids = [v.id for v in infos]
    prices: dict[int, int] = {}
    if at > now:  # scheduled changes due by then, the latest wins
        for vid, cents in (await s.execute(
                select(PriceChange.variant_id, PriceChange.price_cents)
                .where(PriceChange.variant_id.in_(ids), PriceChange.status == SCHEDULED,
                       PriceChange.effective_at <= at)
                .order_by(PriceChange.effective_at, PriceChange.id))).all():
            prices[vid] = cents
    else:  # the price before the first change applied after `at`
        for vid, old in (await s.execute(
                select(PriceChange.variant_id, PriceChange.old_price_cents)
                .where(PriceChange.variant_id.in_(ids), PriceChange.status == APPLIED,
                       PriceChange.applied_at > at, PriceChange.old_price_cents.is_not(None))
                .order_by(PriceChange.applied_at.desc(), PriceChange.id.desc()))).all():
            prices[vid] = int(old or 0)
    return [replace(v, price_cents=prices[v.id]) if v.id in prices else v for v in infos]


def _causes(quotes: list[PriceQuote]) -> tuple[Cause, ...]:
    seen: dict[int, Cause] = {}
    for q in quotes:
        if q.campaign_id is not None and q.limited_to and q.campaign_id not in seen:
            seen[q.campaign_id] = Cause(q.campaign_id, q.campaign_name or "", q.limited_to,
                                        q.member_tier)
    return tuple(seen.values())


async def bundle_differences(s: AsyncSession, at: datetime,
                             tier: str | None) -> list[BundleDifference]:
    """Bundle campaigns in force at `at` (for a buyer of `tier`) limited to some channels."""
    limited = exists().where(CampaignChannel.campaign_id == Campaign.id)
    rows = (await s.scalars(
        select(Campaign).where(
            Campaign.active, Campaign.kind.in_(BUNDLE_KINDS), Campaign.starts_at <= at,
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > at), limited,
            or_(Campaign.min_tier.is_(None), Campaign.min_tier.in_(tiers_up_to(tier))))
        .order_by(Campaign.id))).all()
    if not rows:
        return []
    codes: dict[int, list[str]] = {}
    for cid, code in (await s.execute(
            select(CampaignChannel.campaign_id, Channel.code)
            .join(Channel, Channel.id == CampaignChannel.channel_id)
            .where(CampaignChannel.campaign_id.in_([c.id for c in rows]))
            .order_by(Channel.code))).all():
        codes.setdefault(cid, []).append(code)
    return [BundleDifference(c.id, c.name, c.kind, c.buy_quantity, c.pay_quantity,
                             c.get_quantity, c.value, tuple(codes.get(c.id, [])), c.min_tier)
            for c in rows]


async def price_parity(s: AsyncSession, at: datetime, *, tier: str | None = None,
                       now: datetime, include_all: bool = False, all_limit: int = 500,
                       variant_ids: Sequence[int] | None = None) -> ParityReport:
    """Every active variant priced in every channel at `at` for a buyer of `tier` (None:
    no loyalty tier); the variants whose prices differ, with the campaigns causing it,
    and the channel-limited bundle campaigns. `include_all` also keeps the first
    `all_limit` variants' rows; `variant_ids` narrows the check to those variants."""
    channels = await selling_channels(s)
    report = ParityReport(at=at, tier=tier, channels=channels)
    report.bundles = await bundle_differences(s, at, tier)
    after = 0
    while True:
        infos = await _active_variants(s, after, CHUNK, variant_ids)
        if not infos:
            break
        after = infos[-1].id
        infos = await list_prices_at(s, infos, at, now)
        report.variants_checked += len(infos)
        per_channel = {ch.code: await resolve_prices(s, infos, ch.id, at, tier)
                       for ch in channels}
        for v in infos:
            quotes = [per_channel[ch.code][v.id] for ch in channels]
            row = VariantParity(
                v.id, v.sku, v.name, v.price_cents,
                {ch.code: q.price_cents for ch, q in zip(channels, quotes, strict=True)},
                {ch.code: q.campaign_name for ch, q in zip(channels, quotes, strict=True)
                 if q.campaign_name},
                _causes(quotes))
            if row.differs:
                report.differences.append(row)
            if include_all and len(report.rows) < all_limit:
                report.rows.append(row)
    return report
