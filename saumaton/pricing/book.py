"""The unit campaigns (percent, fixed) as each process keeps them: prices without a
database query.

`resolve_prices` asks the database which campaigns apply to some variants now. The
shop's pages ask that on every view, of the same few campaigns, so each process keeps
the campaigns that are on or still to come (with their targets and channel limits)
and chooses in memory, the same way: the time window is checked at the moment asked,
so a campaign starts and ends on time whatever was cached. `campaign.changed` (a
campaign created, edited or ended, in any process) drops the book at once;
BOOK_SECONDS is the backstop for a change made outside the app.

A segment price (a campaign with a segment) applies when the buyer's segments, given
as `segments`, include it; the book says which segments its campaigns name
(`segment_ids`), so the buyer's memberships are asked only when there are any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.services import VariantInfo
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.locations.models import Channel
from saumaton.pricing.models import Campaign, CampaignChannel, CampaignTarget
from saumaton.pricing.services import (
    UNIT_KINDS,
    Applicable,
    PriceQuote,
    best_prices,
    resolve_prices,
    tiers_up_to,
)

BOOK_TOPICS = ("campaign.changed",)
BOOK_SECONDS = 30.0
# A book also keeps campaigns that ended this long before it was read, so that a
# request that took its time a moment before the read still finds them.
LOOKBACK = timedelta(hours=1)


def in_window(starts_at: datetime, ends_at: datetime | None, at: datetime) -> bool:
    """Whether a campaign is on at `at`: started, and not ended."""
    return starts_at <= at and (ends_at is None or ends_at > at)


@dataclass(frozen=True)
class CampaignLinks:
    """The channel limits and targets of some campaigns, as both books read them."""

    channels: Mapping[int, Sequence[tuple[str, int]]]  # campaign -> (code, id) in code order
    targets: Sequence[tuple[int, str, int]]  # (campaign, target type, target id)

    def channel_ids(self, campaign_id: int) -> frozenset[int] | None:
        """The channels a campaign is limited to; None: every channel."""
        limited = self.channels.get(campaign_id)
        return frozenset(i for _, i in limited) if limited else None

    def channel_codes(self, campaign_id: int) -> tuple[str, ...] | None:
        limited = self.channels.get(campaign_id)
        return tuple(code for code, _ in limited) if limited else None


async def campaign_links(session: AsyncSession, ids: Sequence[int]) -> CampaignLinks:
    if not ids:
        return CampaignLinks({}, ())
    channels: dict[int, list[tuple[str, int]]] = {}
    for cid, code, ch_id in (await session.execute(
            select(CampaignChannel.campaign_id, Channel.code, Channel.id)
            .join(Channel, Channel.id == CampaignChannel.channel_id)
            .where(CampaignChannel.campaign_id.in_(ids)))).all():
        channels.setdefault(cid, []).append((code, ch_id))
    targets = [(r[0], r[1], r[2]) for r in (await session.execute(
        select(CampaignTarget.campaign_id, CampaignTarget.target_type,
               CampaignTarget.target_id)
        .where(CampaignTarget.campaign_id.in_(ids)))).all()]
    return CampaignLinks({k: sorted(v) for k, v in channels.items()}, targets)


@dataclass(frozen=True)
class UnitCampaign:
    id: int
    name: str
    kind: str
    value: int
    starts_at: datetime
    ends_at: datetime | None
    min_tier: str | None
    channel_ids: frozenset[int] | None  # None: every channel
    channel_codes: tuple[str, ...] | None  # the same, as codes in code order
    segment_id: int | None = None  # a segment price: only for its members

    def applies(self, channel_id: int | None, at: datetime, tiers: Sequence[str],
                segments: frozenset[int] = frozenset()) -> bool:
        return (in_window(self.starts_at, self.ends_at, at)
                and (self.channel_ids is None
                     or (channel_id is not None and channel_id in self.channel_ids))
                and (self.min_tier is None or self.min_tier in tiers)
                and (self.segment_id is None or self.segment_id in segments))


@dataclass(frozen=True)
class CampaignBook:
    valid_from: datetime  # asked about an earlier time, the book may miss a campaign
    by_target: Mapping[tuple[str, int], tuple[tuple[UnitCampaign, str, int], ...]]
    segment_ids: frozenset[int] = frozenset()  # the segments its campaigns are for

    def quotes(self, variants: Sequence[VariantInfo], channel_id: int | None,
               at: datetime, tier: str | None = None,
               segments: frozenset[int] = frozenset()) -> dict[int, PriceQuote]:
        """`resolve_prices(..., variants, channel_id, at, tier, segments)` from the
        book."""
        tiers = tiers_up_to(tier)
        found: dict[tuple[int, str, int], Applicable] = {}
        limits: dict[int, tuple[str, ...]] = {}
        for v in variants:
            keys = [("variant", v.id), ("product", v.product_id)]
            if v.category_id is not None:
                keys.append(("category", v.category_id))
            for key in keys:
                for c, target_type, target_id in self.by_target.get(key, ()):
                    if c.applies(channel_id, at, tiers, segments):
                        found[(c.id, target_type, target_id)] = Applicable(
                            c.id, c.name, c.kind, c.value, target_type, target_id, c.min_tier)
                        if c.channel_codes is not None:
                            limits[c.id] = c.channel_codes
        return best_prices(variants, list(found.values()), limits)


async def _load(session: AsyncSession) -> CampaignBook:
    since = utcnow() - LOOKBACK
    rows = (await session.execute(
        select(Campaign.id, Campaign.name, Campaign.kind, Campaign.value, Campaign.starts_at,
               Campaign.ends_at, Campaign.min_tier, Campaign.segment_id)
        .where(Campaign.active, Campaign.kind.in_(UNIT_KINDS),
               or_(Campaign.ends_at.is_(None), Campaign.ends_at > since)))).all()
    links = await campaign_links(session, [r[0] for r in rows])
    campaigns = {r[0]: UnitCampaign(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                                    links.channel_ids(r[0]), links.channel_codes(r[0]), r[7])
                 for r in rows}
    by_target: dict[tuple[str, int], list[tuple[UnitCampaign, str, int]]] = {}
    for cid, target_type, target_id in links.targets:
        by_target.setdefault((target_type, target_id), []).append(
            (campaigns[cid], target_type, target_id))
    return CampaignBook(since, {k: tuple(v) for k, v in by_target.items()},
                        frozenset(r[7] for r in rows if r[7] is not None))


async def campaign_book(db: Database, session: AsyncSession) -> CampaignBook:
    """This process's book of unit campaigns (read with `session` when not kept)."""
    async def load() -> CampaignBook:
        return await _load(session)
    return await db.cached(("campaign-book",), BOOK_SECONDS, load, topics=BOOK_TOPICS)


async def book_prices(db: Database, session: AsyncSession, variants: Sequence[VariantInfo],
                      channel_id: int | None, at: datetime, tier: str | None = None,
                      segments: frozenset[int] = frozenset()) -> dict[int, PriceQuote]:
    """`resolve_prices` answered from this process's campaign book (a time before the
    book's reach is asked of the database)."""
    if not variants:
        return {}
    book = await campaign_book(db, session)
    if at < book.valid_from:
        return await resolve_prices(session, variants, channel_id, at, tier, segments)
    return book.quotes(variants, channel_id, at, tier, segments)
