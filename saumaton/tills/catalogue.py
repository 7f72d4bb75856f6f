"""The till's catalogue snapshot: every active variant with its price in the store now.

The till keeps this in memory (and the offline worker caches it), so a scan adds a
line without a round trip. Prices are the core's one price resolution
(`pricing.resolve_prices` for the store's POS channel) and the VAT rate in force
today (`catalogue.load_variant_infos`); each campaign carries its end time so a till
that is offline stops applying it when it ends. A variant with member prices lists
them per loyalty tier (`member_prices`): the till uses them for an attached member.
The bundle campaigns of the channel come along (`bundles`, `pricing.bundles`): the
till applies them over the whole sale exactly as the core does.

Stock (the endless aisle, tills.aisle): `locations` lists every location and each
variant's `stock` maps a location id to its units available (on hand − reserved, so
every hold counts) where it has any; the till keeps it current from `stock.changed`
events, whose payload carries the same figure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant, VariantBarcode
from saumaton.catalogue.services import VariantInfo, load_variant_infos
from saumaton.core.actor import Actor
from saumaton.inventory.models import StockLevel
from saumaton.locations.models import Channel, Location
from saumaton.pricing.bundles import load_bundles
from saumaton.pricing.models import Campaign
from saumaton.pricing.services import TIERS, PriceQuote, resolve_prices

_CHUNK = 2000  # ids per query (SQLite's parameter limit)


@dataclass(frozen=True)
class Snapshot:
    body: dict[str, Any]
    etag: str


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def search_text(*parts: str | None) -> str:
    """What search-as-you-type matches: lower case, single spaces."""
    return " ".join(" ".join(p for p in parts if p).lower().split())


async def build_catalogue(session: AsyncSession, channel: Channel, at: datetime,
                          day: Any) -> Snapshot:
    """Every active variant priced for `channel` at `at` (VAT on `day`)."""
    rows = (await session.execute(
        select(Variant.id, Product.brand)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.active, Product.active)
        .order_by(Variant.id))).all()
    brands = {vid: brand or "" for vid, brand in rows}
    ids = list(brands)
    infos: list[VariantInfo] = []
    for start in range(0, len(ids), _CHUNK):
        infos.extend(await load_variant_infos(session, day, ids=ids[start:start + _CHUNK]))
    infos.sort(key=lambda i: i.id)
    quotes = await _quotes(session, infos, channel.id, at, None)
    codes: dict[int, list[str]] = {}  # further barcodes: scanned offline too
    for vid, code in (await session.execute(
            select(VariantBarcode.variant_id, VariantBarcode.code)
            .join(Variant, Variant.id == VariantBarcode.variant_id)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.active, Product.active)
            .order_by(VariantBarcode.id))).all():
        codes.setdefault(vid, []).append(code)
    # Member prices: each tier's price where it beats everyone's, so the till shows an
    # attached member's price at once (also offline); the core re-prices every sale.
    by_tier: dict[str, dict[int, PriceQuote]] = {}
    if await session.scalar(select(Campaign.id).where(
            Campaign.active, Campaign.min_tier.is_not(None),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > at)).limit(1)) is not None:
        for tier in TIERS:
            tier_quotes = await _quotes(session, infos, channel.id, at, tier)
            by_tier[tier] = {vid: q for vid, q in tier_quotes.items()
                             if q.discount_cents > quotes[vid].discount_cents}
    stock = await stock_by_variant(session)
    # Segment prices likewise, per segment: the till applies those of the attached
    # customer's segments (the card says which), the best of them and the member price.
    by_segment: dict[int, dict[int, PriceQuote]] = {}
    for seg in sorted({int(i) for i in (await session.scalars(select(Campaign.segment_id).where(
            Campaign.active, Campaign.segment_id.is_not(None),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > at)))).all() if i is not None}):
        seg_quotes = await _quotes(session, infos, channel.id, at, None, frozenset({seg}))
        by_segment[seg] = {vid: q for vid, q in seg_quotes.items()
                           if q.discount_cents > quotes[vid].discount_cents}
    campaign_ids = {q.campaign_id for q in quotes.values() if q.campaign_id is not None}
    campaign_ids |= {q.campaign_id for t in [*by_tier.values(), *by_segment.values()]
                     for q in t.values() if q.campaign_id is not None}
    ends: dict[int, datetime | None] = {}
    if campaign_ids:
        ends = dict((await session.execute(
            select(Campaign.id, Campaign.ends_at).where(Campaign.id.in_(campaign_ids)))).all())
    variants = []
    for info in infos:
        if not info.active:
            continue
        q = quotes[info.id]
        brand = brands.get(info.id, "")
        variants.append({
            "id": info.id, "ean": info.ean or "", "sku": info.sku, "name": info.name,
            "brand": brand, "search": search_text(info.name, brand, info.sku, info.ean),
            "unit_price_cents": q.list_cents, "campaign_discount_cents": q.discount_cents,
            "campaign_id": q.campaign_id, "campaign_name": q.campaign_name,
            "campaign_ends_at": _iso(ends.get(q.campaign_id)) if q.campaign_id else None,
            # Limited to some channels (shown as such at the till too).
            "campaign_limited": q.limited_to is not None,
            "vat_rate_bp": info.vat_rate_bp, "product_id": info.product_id,
            "category_id": info.category_id,
        })
        members = {tier: {"campaign_discount_cents": m.discount_cents,
                          "campaign_id": m.campaign_id, "campaign_name": m.campaign_name,
                          "campaign_ends_at": _iso(ends.get(m.campaign_id))
                          if m.campaign_id else None,
                          "campaign_limited": m.limited_to is not None}
                   for tier in TIERS if (m := by_tier.get(tier, {}).get(info.id))}
        if members:
            variants[-1]["member_prices"] = members
        segment_prices = {
            str(seg): {"campaign_discount_cents": m.discount_cents,
                       "campaign_id": m.campaign_id, "campaign_name": m.campaign_name,
                       "campaign_ends_at": _iso(ends.get(m.campaign_id))
                       if m.campaign_id else None,
                       "campaign_limited": m.limited_to is not None}
            for seg, found in by_segment.items() if (m := found.get(info.id))}
        if segment_prices:
            variants[-1]["segment_prices"] = segment_prices
        if info.id in codes:
            variants[-1]["codes"] = codes[info.id]
        if info.gift_card:  # sold only online: its code comes from the server
            variants[-1]["gift_card"] = True
        elif info.id in stock:
            variants[-1]["stock"] = stock[info.id]
    # Bundle campaigns ("3 for 2") are priced over the whole sale (pricing.js
    # applyBundles); member-only ones carry their tier, every one its end time.
    bundles = [b.as_json() for b in await load_bundles(session, None, channel.id, at,
                                                       any_tier=True)]
    places = [{"id": loc.id, "code": loc.code, "name": loc.name, "kind": loc.kind}
              for loc in (await session.scalars(select(Location).order_by(Location.id))).all()]
    content = json.dumps([channel.code, variants, bundles, places], separators=(",", ":"),
                         sort_keys=True)
    etag = '"' + hashlib.blake2b(content.encode(), digest_size=12).hexdigest() + '"'
    return Snapshot({"generated_at": _iso(at), "channel": channel.code,
                     "variants": variants, "bundles": bundles, "locations": places}, etag)


async def stock_by_variant(session: AsyncSession) -> dict[int, dict[str, int]]:
    """variant id -> {location id (as text, a JSON key): units available} where some are
    available (on hand − reserved: reservations count against it)."""
    out: dict[int, dict[str, int]] = {}
    for vid, loc, units in (await session.execute(
            select(StockLevel.variant_id, StockLevel.location_id,
                   StockLevel.on_hand - StockLevel.reserved)
            .where(StockLevel.on_hand - StockLevel.reserved > 0)
            .order_by(StockLevel.variant_id, StockLevel.location_id))).all():
        out.setdefault(int(vid), {})[str(loc)] = int(units)
    return out


async def _quotes(session: AsyncSession, infos: list[VariantInfo], channel_id: int,
                  at: datetime, tier: str | None,
                  segments: frozenset[int] = frozenset()) -> dict[int, PriceQuote]:
    quotes: dict[int, PriceQuote] = {}
    for start in range(0, len(infos), _CHUNK):
        quotes.update(await resolve_prices(session, infos[start:start + _CHUNK], channel_id,
                                           at, tier, segments))
    return quotes


def max_discount_pct(actor: Actor, location_id: int, cashier_max_pct: int) -> int:
    """The largest manual discount (per cent) `actor` may give at this store."""
    return 100 if actor.can("discounts.any", location_id) else cashier_max_pct
