"""The one price-resolution function every channel calls.

A variant has one consumer price (VAT included). Campaigns take money off it:
percent (value in basis points) or fixed (cents), on a variant, its product or
its category, while active and inside their time window, in every channel
unless limited to listed channels. When several apply the customer gets the
single lowest price; campaigns do not stack.

A campaign with a `min_tier` is a member price: it applies only when the buyer's
loyalty tier (`loyalty.tiers`) is that tier or higher (member < silver < gold); the
till and the webshop pass the buyer's tier, so a member price is the same in every
channel. Without a tier only campaigns for everyone apply.

A campaign with a `segment_id` is a segment price: it applies only when the buyer is a
member of that customer segment (`customers.segments.buyer_segments`, computed once per
priced request); `segments` names the buyer's segments (empty: segment prices do not
apply). A campaign is for a tier or for a segment, not both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit import services as audit
from saumaton.catalogue.models import Category, Product, Variant
from saumaton.catalogue.services import VariantInfo
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.core.money import percent_of
from saumaton.core.types import Input, Name, SmallId
from saumaton.customers.models import Segment
from saumaton.db.fetcher import Fetcher
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Channel
from saumaton.pricing.models import Campaign, CampaignChannel, CampaignTarget


@dataclass(frozen=True)
class PriceQuote:
    variant_id: int
    list_cents: int
    discount_cents: int
    campaign_id: int | None = None
    campaign_name: str | None = None
    # Channel codes the campaign is limited to; None means every channel.
    limited_to: tuple[str, ...] | None = None
    # The loyalty tier the campaign is for (a member price); None: for everyone.
    member_tier: str | None = None

    @property
    def price_cents(self) -> int:
        return self.list_cents - self.discount_cents


@dataclass(frozen=True)
class _Applicable:
    campaign_id: int
    name: str
    kind: str
    value: int
    target_type: str
    target_id: int
    min_tier: str | None = None


# A campaign that applies to a variant through one of its targets (pricing.book builds
# them from its cached campaigns).
Applicable = _Applicable


def campaign_discount(kind: str, value: int, list_cents: int) -> int:
    if kind == "percent":
        return min(list_cents, percent_of(list_cents, value))
    return min(list_cents, value)


# Loyalty tiers in rank order (the same as loyalty.tiers.TIERS).
TIERS = ("member", "silver", "gold")


def tiers_up_to(tier: str | None) -> list[str]:
    """The member-price tiers a buyer of `tier` gets (none without a tier)."""
    return list(TIERS[:TIERS.index(tier) + 1]) if tier in TIERS else []


async def resolve_prices(
    session: AsyncSession, variants: Sequence[VariantInfo], channel_id: int | None,
    at: datetime, tier: str | None = None, segments: frozenset[int] = frozenset(),
) -> dict[int, PriceQuote]:
    """Price of each variant in `channel_id` at time `at` for a buyer of loyalty
    `tier` (None: anyone; member prices do not apply) — one query for all."""
    if not variants:
        return {}
    variant_ids = {v.id for v in variants}
    product_ids = {v.product_id for v in variants}
    category_ids = {v.category_id for v in variants if v.category_id is not None}
    target_conds = [
        and_(CampaignTarget.target_type == "variant", CampaignTarget.target_id.in_(variant_ids)),
        and_(CampaignTarget.target_type == "product", CampaignTarget.target_id.in_(product_ids)),
    ]
    if category_ids:
        target_conds.append(and_(CampaignTarget.target_type == "category",
                                 CampaignTarget.target_id.in_(category_ids)))
    limited = select(CampaignChannel.campaign_id).where(
        CampaignChannel.campaign_id == Campaign.id
    ).exists()
    in_channel = select(CampaignChannel.campaign_id).where(
        CampaignChannel.campaign_id == Campaign.id, CampaignChannel.channel_id == channel_id
    ).exists()
    stmt = (
        select(Campaign.id, Campaign.name, Campaign.kind, Campaign.value,
               CampaignTarget.target_type, CampaignTarget.target_id, Campaign.min_tier)
        .join(CampaignTarget, CampaignTarget.campaign_id == Campaign.id)
        .where(
            Campaign.active, Campaign.kind.in_(UNIT_KINDS), Campaign.starts_at <= at,
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > at),
            or_(*target_conds),
            or_(~limited, in_channel) if channel_id is not None else ~limited,
            or_(Campaign.min_tier.is_(None), Campaign.min_tier.in_(tiers_up_to(tier))),
            or_(Campaign.segment_id.is_(None), Campaign.segment_id.in_(sorted(segments)))
            if segments else Campaign.segment_id.is_(None),
        )
    )
    found = [_Applicable(*row) for row in (await session.execute(stmt)).all()]
    limits = await _channel_limits(session, {a.campaign_id for a in found})
    return best_prices(variants, found, limits)


# The same selection as `resolve_prices` (with `_channel_limits` folded in) as one
# constant statement for the PostgreSQL hot path, prepared once per connection.
# $1..$3: variant, product and category ids (empty arrays match nothing); $4: the
# time; $5: the channel id (NULL: only campaigns limited to no channel); $6: the
# member-price tiers the buyer gets (empty: campaigns for everyone only); $7: the
# buyer's segments (empty: no segment prices).
_PG_CAMPAIGNS_SQL = """
SELECT c.id, c.name, c.kind, c.value, t.target_type, t.target_id,
       (SELECT array_agg(ch.code ORDER BY ch.code)
        FROM campaign_channels cc JOIN channels ch ON ch.id = cc.channel_id
        WHERE cc.campaign_id = c.id), c.min_tier
FROM campaigns c JOIN campaign_targets t ON t.campaign_id = c.id
WHERE c.active AND c.kind IN ('percent', 'fixed') AND c.starts_at <= $4::timestamptz
      AND (c.ends_at IS NULL OR c.ends_at > $4::timestamptz)
      AND ((t.target_type = 'variant' AND t.target_id = ANY($1::int[]))
           OR (t.target_type = 'product' AND t.target_id = ANY($2::int[]))
           OR (t.target_type = 'category' AND t.target_id = ANY($3::int[])))
      AND (NOT EXISTS (SELECT 1 FROM campaign_channels cc WHERE cc.campaign_id = c.id)
           OR EXISTS (SELECT 1 FROM campaign_channels cc
                      WHERE cc.campaign_id = c.id AND cc.channel_id = $5::int))
      AND (c.min_tier IS NULL OR c.min_tier = ANY($6::text[]))
      AND (c.segment_id IS NULL OR c.segment_id = ANY($7::int[]))"""


async def resolve_prices_pg(
    uow: Fetcher, variants: Sequence[VariantInfo], channel_id: int | None, at: datetime,
    tier: str | None = None, segments: frozenset[int] = frozenset(),
) -> dict[int, PriceQuote]:
    """`resolve_prices` inside `uow`'s transaction on PostgreSQL, as one prepared
    statement on the driver; the same campaigns, the same choice."""
    if not variants:
        return {}
    rows = await uow.fetch(
        _PG_CAMPAIGNS_SQL, list({v.id for v in variants}), list({v.product_id for v in variants}),
        list({v.category_id for v in variants if v.category_id is not None}), at, channel_id,
        tiers_up_to(tier), sorted(segments))
    found = [_Applicable(row[0], row[1], row[2], row[3], row[4], row[5], row[7])
             for row in rows]
    limits = {row[0]: tuple(row[6]) for row in rows if row[6] is not None}
    return best_prices(variants, found, limits)


def best_prices(variants: Sequence[VariantInfo], found: Sequence[_Applicable],
                limits: Mapping[int, tuple[str, ...]]) -> dict[int, PriceQuote]:
    """Each variant's price: the single biggest discount of the applicable campaigns
    `found` (ties to the lowest campaign id), with the channels the campaign is
    limited to (`limits`; absent: every channel)."""
    quotes: dict[int, PriceQuote] = {}
    for v in variants:
        best = PriceQuote(variant_id=v.id, list_cents=v.price_cents, discount_cents=0)
        for a in found:
            hit = ((a.target_type == "variant" and a.target_id == v.id)
                   or (a.target_type == "product" and a.target_id == v.product_id)
                   or (a.target_type == "category" and a.target_id == v.category_id))
            if not hit:
                continue
            d = campaign_discount(a.kind, a.value, v.price_cents)
            if d > best.discount_cents or (
                d == best.discount_cents and d > 0 and a.campaign_id < (best.campaign_id or 0)
            ):
                best = PriceQuote(v.id, v.price_cents, d, a.campaign_id, a.name,
                                  limits.get(a.campaign_id), a.min_tier)
        quotes[v.id] = best
    return quotes


async def _channel_limits(session: AsyncSession, ids: set[int]) -> dict[int, tuple[str, ...]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(CampaignChannel.campaign_id, Channel.code)
        .join(Channel, Channel.id == CampaignChannel.channel_id)
        .where(CampaignChannel.campaign_id.in_(ids))
        .order_by(Channel.code)
    )
    out: dict[int, list[str]] = {}
    for cid, code in rows.all():
        out.setdefault(cid, []).append(code)
    return {k: tuple(v) for k, v in out.items()}


# Campaigns that take money off each unit (resolve_prices) and those priced over the
# units of a whole cart (bundles: the cheapest qualifying units are the discounted ones).
UNIT_KINDS = ("percent", "fixed")
BUNDLE_KINDS = ("x_for_y", "buy_x_get_y", "set_price")


class CampaignIn(Input):
    name: Name = Field(min_length=1, max_length=200)
    kind: str = Field(max_length=20, pattern="^(percent|fixed|x_for_y|buy_x_get_y|set_price)$",
                      description="percent | fixed (per unit) | x_for_y ('3 for 2') | "
                                  "buy_x_get_y | set_price (buy_quantity units for value)")
    value: int = Field(default=0, ge=0, le=100_000_000,
                       description="percent, buy_x_get_y: basis points (2000 = 20 %, 10000 "
                                   "= free); fixed: cents off a unit; set_price: cents for "
                                   "the set; x_for_y: not used")
    buy_quantity: int | None = Field(
        default=None, ge=1, le=100,
        description="bundles: units in a set (x_for_y: 3 in '3 for 2'; buy_x_get_y: X)")
    pay_quantity: int | None = Field(default=None, ge=1, le=100,
                                     description="x_for_y: units paid (2 in '3 for 2')")
    get_quantity: int | None = Field(default=None, ge=1, le=100,
                                     description="buy_x_get_y: Y units at value bp off")
    starts_at: datetime
    ends_at: datetime | None = None
    variant_ids: list[SmallId] = Field(default_factory=list, max_length=1000)
    product_ids: list[SmallId] = Field(default_factory=list, max_length=1000)
    category_ids: list[SmallId] = Field(default_factory=list, max_length=1000)
    channel_codes: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=50,
        description="limit to these channels; empty = every channel"
    )
    min_tier: str | None = Field(default=None, max_length=10, pattern="^(member|silver|gold)$",
                                 description="a member price: only for this loyalty tier "
                                             "or higher; empty = for everyone")
    segment_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                   description="a segment price: only for the members of "
                                               "this customer segment (percent and fixed "
                                               "campaigns; not with min_tier)")

    @field_validator("value")
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        # A field check (kind is validated before it), so the error names `value`.
        if info.data.get("kind") in ("percent", "fixed", "set_price") and value <= 0:
            raise ValueError("value must be greater than 0")
        return value

    @model_validator(mode="after")
    def _check(self) -> CampaignIn:
        if self.kind in ("percent", "buy_x_get_y") and self.value > 10000:
            raise ValueError("a percent takes at most 10000 basis points (100 %)")
        if self.kind == "x_for_y":
            if self.buy_quantity is None or self.pay_quantity is None \
                    or not 1 <= self.pay_quantity < self.buy_quantity:
                raise ValueError("x_for_y needs buy_quantity > pay_quantity >= 1")
            self.value, self.get_quantity = 0, None
        elif self.kind == "buy_x_get_y":
            if self.buy_quantity is None or self.get_quantity is None:
                raise ValueError("buy_x_get_y needs buy_quantity and get_quantity")
            if self.value <= 0:
                self.value = 10000  # "get one free"
            self.pay_quantity = None
        elif self.kind == "set_price":
            if self.buy_quantity is None or self.buy_quantity < 2:
                raise ValueError("set_price needs buy_quantity >= 2")
            self.pay_quantity = self.get_quantity = None
        else:
            self.buy_quantity = self.pay_quantity = self.get_quantity = None
        if self.starts_at.tzinfo is None or (self.ends_at and self.ends_at.tzinfo is None):
            raise ValueError("times must carry a UTC offset")
        try:  # stored in UTC: a time near year 1 or 9999 may not fit
            self.starts_at = self.starts_at.astimezone(UTC)
            if self.ends_at is not None:
                self.ends_at = self.ends_at.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise ValueError("time out of range") from exc
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if not (self.variant_ids or self.product_ids or self.category_ids):
            raise ValueError("name at least one variant, product or category")
        if self.segment_id is not None and self.kind not in UNIT_KINDS:
            raise ValueError("a segment price is a percent or fixed campaign")
        if self.segment_id is not None and self.min_tier is not None:
            raise ValueError("a campaign is for a loyalty tier or a segment, not both")
        return self


async def check_targets(s: AsyncSession, data: CampaignIn) -> None:
    """Every variant, product and category a campaign names must exist, and its
    segment."""
    if data.segment_id is not None and await s.get(Segment, data.segment_id) is None:
        raise ValidationFailed(f"no segment {data.segment_id}", code="unknown_segment",
                               field="segment_id")
    for ids, model, field, code in (
        (data.variant_ids, Variant, "variant_ids", "unknown_variant"),
        (data.product_ids, Product, "product_ids", "unknown_product"),
        (data.category_ids, Category, "category_ids", "unknown_category"),
    ):
        if not ids:
            continue
        found = set((await s.scalars(select(model.id).where(model.id.in_(set(ids))))).all())
        missing = sorted(set(ids) - found)
        if missing:
            raise ValidationFailed(f"no such {field.removesuffix('_ids')}: "
                                   f"{', '.join(map(str, missing[:10]))}",
                                   code=code, field=field, extra={"ids": missing[:10]})


async def create_campaign(uow: UnitOfWork, actor: Actor, data: CampaignIn) -> int:
    actor.require("prices.write", everywhere=True)
    s = uow.session
    await check_targets(s, data)
    campaign = Campaign(name=data.name, kind=data.kind, value=data.value,
                        starts_at=data.starts_at, ends_at=data.ends_at, active=True,
                        min_tier=data.min_tier, segment_id=data.segment_id,
                        buy_quantity=data.buy_quantity,
                        pay_quantity=data.pay_quantity, get_quantity=data.get_quantity,
                        created_by=actor.label)
    s.add(campaign)
    await s.flush()
    targets = ([("variant", i) for i in data.variant_ids]
               + [("product", i) for i in data.product_ids]
               + [("category", i) for i in data.category_ids])
    s.add_all(CampaignTarget(campaign_id=campaign.id, target_type=t, target_id=i)
              for t, i in dict.fromkeys(targets))
    if data.channel_codes:
        channels: dict[str, int] = dict((await s.execute(
            select(Channel.code, Channel.id).where(Channel.code.in_(data.channel_codes))
        )).all())
        missing = set(data.channel_codes) - set(channels)
        if missing:
            raise ValidationFailed(f"unknown channels: {', '.join(sorted(missing))}",
                                   code="unknown_channel", field="channel_codes")
        s.add_all(CampaignChannel(campaign_id=campaign.id, channel_id=c)
                  for c in channels.values())
    await s.flush()
    await audit.record(uow, actor, "campaign.create", "campaign", campaign.id,
                       data.model_dump(mode="json"))
    uow.emit("campaign.changed", {"campaign_id": campaign.id, "name": data.name,
                                  "variant_ids": data.variant_ids,
                                  "product_ids": data.product_ids,
                                  "category_ids": data.category_ids})
    return campaign.id


async def end_campaign(uow: UnitOfWork, actor: Actor, campaign_id: int) -> None:
    """End a campaign now in every channel; who ended it is kept and audited."""
    actor.require("prices.write", everywhere=True)
    campaign = await uow.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
    now = utcnow()
    was_active = campaign.active
    campaign.active = False
    if campaign.starts_at <= now and (campaign.ends_at is None or campaign.ends_at > now):
        campaign.ends_at = now  # the window shows when it really ended
    campaign.updated_at = now
    campaign.ended_by = actor.label
    await uow.session.flush()
    await audit.record(uow, actor, "campaign.end", "campaign", campaign_id,
                       {"name": campaign.name, "was_active": was_active})
    uow.emit("campaign.changed", {"campaign_id": campaign_id, "active": False})
