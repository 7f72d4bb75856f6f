"""Bundle campaigns: discounts priced over the units of a whole cart.

The rules (docs/pricing.md, "Bundles"; the till's `static/pos/pricing.js` mirrors them
line for line and a test compares the two on random carts):

- Kinds: `x_for_y` ("3 for 2": every set of `buy_quantity` units pays for
  `pay_quantity`, the `buy − pay` cheapest units of the set are free);
  `buy_x_get_y` (a set is `buy_quantity + get_quantity` units, the `get_quantity`
  cheapest get `value` basis points off each, 10000 = free, rounded per unit);
  `set_price` (`buy_quantity` units together cost `value` cents; a set worth no more
  than that at list prices is not formed).
- Qualifying units: the units of every cart line whose variant, product or category
  is a target of the campaign (as for unit campaigns; mixing is allowed: "any 3
  lipsticks"). Gift cards never qualify. The campaign must be active, started and not
  ended at the time of the sale, for the buyer's loyalty tier (`min_tier`) and for the
  channel (`campaign_channels`) — the same selection as unit campaigns.
- Sets: the qualifying units are sorted by list price, dearest first (ties: the earlier
  cart line first), and cut into consecutive sets of the set size; units left over
  form no set. So the discounted units are always the cheapest of their set.
- Against unit campaigns (percent/fixed): a set's discount is worked out on list
  prices and replaces the unit-campaign discounts of the units in the set. A set is
  formed only when its discount is bigger than the unit-campaign discounts it replaces
  (the customer never pays more with a bundle); its units otherwise keep their unit
  price and stay free for another bundle.
- Several bundle campaigns: each unit belongs to at most one set. Each remaining
  campaign is tried on the units not yet in a set; the one that saves the customer
  the most (over the unit campaigns it replaces; ties: the lowest campaign id) is
  applied with all its sets, and the others are tried again on what is left, until
  none saves anything. A campaign is applied at most once per cart (with all its sets).
- Allocation: a campaign's discount (the sum over its sets) is spread over the cart
  lines in proportion to the list value of each line's units in its sets, in whole
  cents: floor shares, the cents left over one each to the largest remainders (ties:
  the earlier line) — `orders.discounts.spread`; the total is kept exactly.
- A line with units in a set: its campaign discount = its unit-campaign discount on
  its units outside sets + its bundle shares; it is named by the bundle campaign with
  the largest share (ties: the lowest id), for the receipt ("3 for 2: −12,90 €").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.services import VariantInfo
from saumaton.core.money import percent_of
from saumaton.db.fetcher import Fetcher
from saumaton.locations.models import Channel
from saumaton.pricing.models import Campaign, CampaignChannel, CampaignTarget
from saumaton.pricing.services import BUNDLE_KINDS, tiers_up_to


@dataclass(frozen=True)
class Bundle:
    """A bundle campaign that applies (active, in time, channel and tier checked)."""

    campaign_id: int
    name: str
    kind: str  # x_for_y | buy_x_get_y | set_price
    value: int
    buy_quantity: int
    pay_quantity: int | None = None
    get_quantity: int | None = None
    variant_ids: frozenset[int] = frozenset()
    product_ids: frozenset[int] = frozenset()
    category_ids: frozenset[int] = frozenset()
    limited_to: tuple[str, ...] | None = None
    min_tier: str | None = None
    ends_at: datetime | None = None

    def matches(self, variant_id: int, product_id: int, category_id: int | None) -> bool:
        return (variant_id in self.variant_ids or product_id in self.product_ids
                or (category_id is not None and category_id in self.category_ids))

    @property
    def set_size(self) -> int:
        if self.kind == "buy_x_get_y":
            return self.buy_quantity + (self.get_quantity or 0)
        return self.buy_quantity

    def set_discount(self, prices: Sequence[int]) -> int:
        """The discount on one set, `prices` its units' list prices dearest first."""
        if self.kind == "x_for_y":
            free = self.buy_quantity - (self.pay_quantity or self.buy_quantity)
            return sum(prices[len(prices) - free:]) if free > 0 else 0
        if self.kind == "buy_x_get_y":
            got = self.get_quantity or 0
            return sum(percent_of(p, self.value) for p in prices[len(prices) - got:])
        return max(0, sum(prices) - self.value)  # set_price

    def as_json(self) -> dict[str, Any]:
        """As the till's catalogue snapshot carries it (pricing.js applyBundles)."""
        return {
            "campaign_id": self.campaign_id, "name": self.name, "kind": self.kind,
            "value": self.value, "buy_quantity": self.buy_quantity,
            "pay_quantity": self.pay_quantity, "get_quantity": self.get_quantity,
            "variant_ids": sorted(self.variant_ids), "product_ids": sorted(self.product_ids),
            "category_ids": sorted(self.category_ids), "min_tier": self.min_tier,
            "ends_at": (self.ends_at.isoformat().replace("+00:00", "Z")
                        if self.ends_at is not None else None),
        }


@dataclass(frozen=True)
class CartLine:
    """A priced cart line as the bundle rules see it."""

    variant_id: int
    product_id: int
    category_id: int | None
    quantity: int
    unit_cents: int  # list price, VAT included
    unit_discount_cents: int = 0  # the unit campaign's discount per unit
    eligible: bool = True  # False: a gift card


@dataclass(frozen=True)
class LineBundle:
    """A line touched by a bundle: its whole campaign discount and its name."""

    discount_cents: int  # unit campaigns on units outside sets + bundle shares
    bundle_cents: int  # the bundle shares alone
    campaign_id: int | None
    campaign_name: str | None
    limited_to: tuple[str, ...] | None


def spread(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights` (largest remainder, ties to the
    earlier), summing exactly to `amount` (the same as orders.discounts.spread)."""
    total = sum(weights)
    if total <= 0 or amount <= 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


@dataclass
class _Trial:
    saving: int
    sets: list[tuple[list[int], int]]  # (unit line indexes, set discount)


def _try(bundle: Bundle, lines: Sequence[CartLine], free: Sequence[int]) -> _Trial:
    """`bundle`'s sets on the `free` units left per line."""
    units: list[int] = []  # line index per qualifying unit, dearest first
    order = sorted((i for i, ln in enumerate(lines)
                    if free[i] > 0 and ln.eligible
                    and bundle.matches(ln.variant_id, ln.product_id, ln.category_id)),
                   key=lambda i: (-lines[i].unit_cents, i))
    for i in order:
        units.extend([i] * free[i])
    size = bundle.set_size
    trial = _Trial(0, [])
    for start in range(0, len(units) - size + 1, size):
        members = units[start:start + size]
        d = bundle.set_discount([lines[i].unit_cents for i in members])
        replaced = sum(min(lines[i].unit_discount_cents, lines[i].unit_cents) for i in members)
        if d > replaced:
            trial.sets.append((members, d))
            trial.saving += d - replaced
    return trial


def apply_bundles(lines: Sequence[CartLine], bundles: Sequence[Bundle]
                  ) -> list[LineBundle | None]:
    """Each line's discount after the bundle campaigns (None: no bundle touches it)."""
    free = [ln.quantity for ln in lines]
    bundled = [0] * len(lines)
    shares: list[dict[int, int]] = [{} for _ in lines]
    left = sorted(bundles, key=lambda b: b.campaign_id)
    while left:
        best: tuple[Bundle, _Trial] | None = None
        for b in left:
            t = _try(b, lines, free)
            if t.saving > 0 and (best is None or t.saving > best[1].saving):
                best = (b, t)
        if best is None:
            break
        bundle, trial = best
        left.remove(bundle)
        weights = [0] * len(lines)
        touched = [False] * len(lines)
        for members, _ in trial.sets:
            for i in members:
                free[i] -= 1
                bundled[i] += 1
                weights[i] += lines[i].unit_cents
                touched[i] = True
        for i, share in enumerate(spread(sum(d for _, d in trial.sets), weights)):
            if touched[i]:
                shares[i][bundle.campaign_id] = share
    by_id = {b.campaign_id: b for b in bundles}
    out: list[LineBundle | None] = []
    for i, ln in enumerate(lines):
        if not bundled[i]:
            out.append(None)
            continue
        top = min(shares[i].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        own = sum(shares[i].values())
        unit = min(ln.unit_discount_cents, ln.unit_cents) * (ln.quantity - bundled[i])
        b = by_id[top]
        out.append(LineBundle(unit + own, own, b.campaign_id, b.name, b.limited_to))
    return out


def _cart_bundles() -> Any:
    at: Any = bindparam("at")
    targeted = select(CampaignTarget.campaign_id).where(
        CampaignTarget.campaign_id == Campaign.id, or_(
            and_(CampaignTarget.target_type == "variant",
                 CampaignTarget.target_id.in_(bindparam("variant_ids", expanding=True))),
            and_(CampaignTarget.target_type == "product",
                 CampaignTarget.target_id.in_(bindparam("product_ids", expanding=True))),
            and_(CampaignTarget.target_type == "category",
                 CampaignTarget.target_id.in_(bindparam("category_ids", expanding=True))),
        )).exists()
    limited = select(CampaignChannel.campaign_id).where(
        CampaignChannel.campaign_id == Campaign.id).exists()
    in_channel = select(CampaignChannel.campaign_id).where(
        CampaignChannel.campaign_id == Campaign.id,
        CampaignChannel.channel_id == bindparam("channel_id")).exists()
    return select(Campaign).where(
        Campaign.active, Campaign.kind.in_(BUNDLE_KINDS), Campaign.starts_at <= at,
        Campaign.buy_quantity.is_not(None), or_(Campaign.ends_at.is_(None), Campaign.ends_at > at),
        targeted, or_(~limited, in_channel),
        or_(Campaign.min_tier.is_(None),
            Campaign.min_tier.in_(bindparam("tiers", expanding=True))),
    ).order_by(Campaign.id)


# `load_bundles` for a cart in a channel: built once, so SQLAlchemy compiles it once.
_CART_BUNDLES = _cart_bundles()


async def load_bundles(session: AsyncSession, variants: Sequence[VariantInfo] | None,
                       channel_id: int | None, at: datetime, tier: str | None = None,
                       *, any_tier: bool = False) -> list[Bundle]:
    """The bundle campaigns that apply to any of `variants` (None: to anything) in
    `channel_id` at `at` for a buyer of loyalty `tier` (the same selection as
    `resolve_prices`); `any_tier`: member-only ones for every tier too (the till's
    snapshot carries them and filters by the attached customer's tier)."""
    if variants is not None and not variants:
        return []
    if variants is not None and channel_id is not None and not any_tier:
        # A cart's lookup (the common case): one constant statement, compiled once.
        campaigns = list((await session.scalars(_CART_BUNDLES, {
            "variant_ids": list({v.id for v in variants}),
            "product_ids": list({v.product_id for v in variants}),
            "category_ids": list({v.category_id for v in variants
                                  if v.category_id is not None}),
            "at": at, "channel_id": channel_id, "tiers": tiers_up_to(tier)})).all())
        return await _bundles_of(session, campaigns)
    conds = [Campaign.active, Campaign.kind.in_(BUNDLE_KINDS), Campaign.starts_at <= at,
             Campaign.buy_quantity.is_not(None),
             or_(Campaign.ends_at.is_(None), Campaign.ends_at > at)]
    if variants is not None:
        variant_ids = {v.id for v in variants}
        product_ids = {v.product_id for v in variants}
        category_ids = {v.category_id for v in variants if v.category_id is not None}
        target_conds = [
            and_(CampaignTarget.target_type == "variant",
                 CampaignTarget.target_id.in_(variant_ids)),
            and_(CampaignTarget.target_type == "product",
                 CampaignTarget.target_id.in_(product_ids)),
        ]
        if category_ids:
            target_conds.append(and_(CampaignTarget.target_type == "category",
                                     CampaignTarget.target_id.in_(category_ids)))
        conds.append(select(CampaignTarget.campaign_id).where(
            CampaignTarget.campaign_id == Campaign.id, or_(*target_conds)).exists())
    limited = select(CampaignChannel.campaign_id).where(
        CampaignChannel.campaign_id == Campaign.id).exists()
    in_channel = select(CampaignChannel.campaign_id).where(
        CampaignChannel.campaign_id == Campaign.id, CampaignChannel.channel_id == channel_id
    ).exists()
    conds.append(or_(~limited, in_channel) if channel_id is not None else ~limited)
    if not any_tier:
        conds.append(or_(Campaign.min_tier.is_(None), Campaign.min_tier.in_(tiers_up_to(tier))))
    campaigns = list((await session.scalars(
        select(Campaign).where(*conds).order_by(Campaign.id))).all())
    return await _bundles_of(session, campaigns)


async def _bundles_of(session: AsyncSession, campaigns: list[Campaign]) -> list[Bundle]:
    """The campaigns as Bundles, with their targets and channel limits."""
    if not campaigns:
        return []
    ids = [c.id for c in campaigns]
    targets: dict[int, dict[str, set[int]]] = {i: {} for i in ids}
    for cid, ttype, tid in (await session.execute(
            select(CampaignTarget.campaign_id, CampaignTarget.target_type,
                   CampaignTarget.target_id).where(CampaignTarget.campaign_id.in_(ids)))).all():
        targets[cid].setdefault(ttype, set()).add(tid)
    limits: dict[int, list[str]] = {}
    for cid, code in (await session.execute(
            select(CampaignChannel.campaign_id, Channel.code)
            .join(Channel, Channel.id == CampaignChannel.channel_id)
            .where(CampaignChannel.campaign_id.in_(ids)).order_by(Channel.code))).all():
        limits.setdefault(cid, []).append(code)
    out: list[Bundle] = []
    for c in campaigns:
        assert c.buy_quantity is not None
        t = targets[c.id]
        out.append(Bundle(
            campaign_id=c.id, name=c.name, kind=c.kind, value=c.value,
            buy_quantity=c.buy_quantity, pay_quantity=c.pay_quantity,
            get_quantity=c.get_quantity, variant_ids=frozenset(t.get("variant", ())),
            product_ids=frozenset(t.get("product", ())),
            category_ids=frozenset(t.get("category", ())),
            limited_to=tuple(limits[c.id]) if c.id in limits else None,
            min_tier=c.min_tier, ends_at=c.ends_at))
    return out


# The same selection as `load_bundles` (targets and channel limits folded in) as one
# constant statement for the PostgreSQL hot path, prepared once per connection, like
# pricing.services' _PG_CAMPAIGNS_SQL. $1..$3: variant, product and category ids; $4:
# the time; $5: the channel id (NULL: only campaigns limited to no channel); $6: the
# member-price tiers the buyer gets.
_PG_BUNDLES_SQL = """
SELECT c.id, c.name, c.kind, c.value, c.buy_quantity, c.pay_quantity, c.get_quantity,
       c.min_tier, c.ends_at,
       ARRAY(SELECT t.target_id FROM campaign_targets t
             WHERE t.campaign_id = c.id AND t.target_type = 'variant'),
       ARRAY(SELECT t.target_id FROM campaign_targets t
             WHERE t.campaign_id = c.id AND t.target_type = 'product'),
       ARRAY(SELECT t.target_id FROM campaign_targets t
             WHERE t.campaign_id = c.id AND t.target_type = 'category'),
       (SELECT array_agg(ch.code ORDER BY ch.code)
        FROM campaign_channels cc JOIN channels ch ON ch.id = cc.channel_id
        WHERE cc.campaign_id = c.id)
FROM campaigns c
WHERE c.active AND c.kind IN ('x_for_y', 'buy_x_get_y', 'set_price')
      AND c.buy_quantity IS NOT NULL AND c.starts_at <= $4::timestamptz
      AND (c.ends_at IS NULL OR c.ends_at > $4::timestamptz)
      AND EXISTS (SELECT 1 FROM campaign_targets t WHERE t.campaign_id = c.id
                  AND ((t.target_type = 'variant' AND t.target_id = ANY($1::int[]))
                       OR (t.target_type = 'product' AND t.target_id = ANY($2::int[]))
                       OR (t.target_type = 'category' AND t.target_id = ANY($3::int[]))))
      AND (NOT EXISTS (SELECT 1 FROM campaign_channels cc WHERE cc.campaign_id = c.id)
           OR EXISTS (SELECT 1 FROM campaign_channels cc
                      WHERE cc.campaign_id = c.id AND cc.channel_id = $5::int))
      AND (c.min_tier IS NULL OR c.min_tier = ANY($6::text[]))
ORDER BY c.id"""


async def load_bundles_pg(uow: Fetcher, variants: Sequence[VariantInfo],
                          channel_id: int | None, at: datetime, tier: str | None = None
                          ) -> list[Bundle]:
    """`load_bundles` for a cart inside `uow`'s transaction on PostgreSQL: one prepared
    statement on the driver (a sale's hot path); the same campaigns, the same order."""
    if not variants:
        return []
    rows = await uow.fetch(
        _PG_BUNDLES_SQL, list({v.id for v in variants}), list({v.product_id for v in variants}),
        list({v.category_id for v in variants if v.category_id is not None}), at, channel_id,
        tiers_up_to(tier))
    return [Bundle(
        campaign_id=r[0], name=r[1], kind=r[2], value=r[3], buy_quantity=r[4],
        pay_quantity=r[5], get_quantity=r[6], variant_ids=frozenset(r[9]),
        product_ids=frozenset(r[10]), category_ids=frozenset(r[11]),
        limited_to=tuple(r[12]) if r[12] is not None else None, min_tier=r[7],
        ends_at=r[8]) for r in rows]
