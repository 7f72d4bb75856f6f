"""The bundle campaigns as each process keeps them: a cart's bundles without a query.

`load_bundles_pg` asks the database which bundle campaigns apply to a cart. Placing a
web order asked it on every checkout, of the same few campaigns; each process now
keeps the bundle campaigns that are on or still to come (with all their targets and
channel limits) and chooses in memory by the same rules: active, started and not
ended at the moment asked (so a campaign starts and ends on time whatever was
cached), the channel, the buyer's tier, a target among the cart's variants, products
or categories; in campaign id order. `campaign.changed` (a campaign created, edited
or ended, in any process) drops the book at once; BOOK_SECONDS is the backstop for a
change made outside the app. A moment before the book's reach is asked of the
database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.services import VariantInfo
from saumaton.core.clock import utcnow
from saumaton.db.fetcher import Fetcher
from saumaton.db.uow import Database
from saumaton.pricing.book import BOOK_SECONDS, BOOK_TOPICS, LOOKBACK, campaign_links, in_window
from saumaton.pricing.bundles import Bundle, load_bundles_pg
from saumaton.pricing.models import Campaign
from saumaton.pricing.services import BUNDLE_KINDS, tiers_up_to


@dataclass(frozen=True)
class BookedBundle:
    bundle: Bundle
    starts_at: datetime
    channel_ids: frozenset[int] | None  # None: every channel


@dataclass(frozen=True)
class BundleBook:
    valid_from: datetime  # asked about an earlier time, the book may miss a campaign
    bundles: tuple[BookedBundle, ...]  # in campaign id order

    def applying(self, variants: Sequence[VariantInfo], channel_id: int | None,
                 at: datetime, tier: str | None = None) -> list[Bundle]:
        """`load_bundles_pg(..., variants, channel_id, at, tier)` from the book."""
        if not variants:
            return []
        tiers = tiers_up_to(tier)
        out = []
        for b in self.bundles:
            c = b.bundle
            if not in_window(b.starts_at, c.ends_at, at):
                continue
            if b.channel_ids is not None and channel_id not in b.channel_ids:
                continue
            if c.min_tier is not None and c.min_tier not in tiers:
                continue
            if any(c.matches(v.id, v.product_id, v.category_id) for v in variants):
                out.append(c)
        return out


async def _load(session: AsyncSession) -> BundleBook:
    since = utcnow() - LOOKBACK
    rows = (await session.execute(
        select(Campaign.id, Campaign.name, Campaign.kind, Campaign.value,
               Campaign.buy_quantity, Campaign.pay_quantity, Campaign.get_quantity,
               Campaign.min_tier, Campaign.starts_at, Campaign.ends_at)
        .where(Campaign.active, Campaign.kind.in_(BUNDLE_KINDS),
               Campaign.buy_quantity.is_not(None),
               or_(Campaign.ends_at.is_(None), Campaign.ends_at > since))
        .order_by(Campaign.id))).all()
    links = await campaign_links(session, [r[0] for r in rows])
    targets: dict[tuple[int, str], set[int]] = {}
    for cid, target_type, target_id in links.targets:
        targets.setdefault((cid, target_type), set()).add(target_id)
    booked = []
    for r in rows:
        booked.append(BookedBundle(
            Bundle(campaign_id=r[0], name=r[1], kind=r[2], value=r[3], buy_quantity=r[4] or 0,
                   pay_quantity=r[5], get_quantity=r[6],
                   variant_ids=frozenset(targets.get((r[0], "variant"), ())),
                   product_ids=frozenset(targets.get((r[0], "product"), ())),
                   category_ids=frozenset(targets.get((r[0], "category"), ())),
                   limited_to=links.channel_codes(r[0]),
                   min_tier=r[7], ends_at=r[9]),
            r[8], links.channel_ids(r[0])))
    return BundleBook(since, tuple(booked))


async def bundle_book(db: Database, session: AsyncSession) -> BundleBook:
    """This process's book of bundle campaigns (read with `session` when not kept)."""
    async def load() -> BundleBook:
        return await _load(session)
    return await db.cached(("bundle-book",), BOOK_SECONDS, load, topics=BOOK_TOPICS)


async def book_bundles_pg(db: Database, session: AsyncSession, fetcher: Fetcher,
                          variants: Sequence[VariantInfo], channel_id: int | None,
                          at: datetime, tier: str | None = None) -> list[Bundle]:
    """`load_bundles_pg` answered from this process's bundle book (a time before the
    book's reach is asked of the database through `fetcher`)."""
    if not variants:
        return []
    book = await bundle_book(db, session)
    if at < book.valid_from:
        return await load_bundles_pg(fetcher, variants, channel_id, at, tier)
    return book.applying(variants, channel_id, at, tier)
