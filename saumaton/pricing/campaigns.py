"""Campaigns in the back office: list (running, scheduled, ended), read one, edit, end.

Creating one is `pricing.services.create_campaign`; all writes are audited
("campaign.create", "campaign.update", "campaign.end") and emit "campaign.changed" so
open tills reload and product pages refresh. A campaign limited to channels holds rows
in campaign_channels; a store's till is its own channel (pos-…, `Channel.location_id`),
so "only in Tampere" is Tampere's till channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.models import Category, Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Channel
from saumaton.pricing.models import Campaign, CampaignChannel, CampaignTarget
from saumaton.pricing.services import CampaignIn, check_targets, end_campaign

RUNNING, SCHEDULED, ENDED = "running", "scheduled", "ended"
STATES = (RUNNING, SCHEDULED, ENDED)


@dataclass(frozen=True)
class TargetOut:
    type: str  # variant | product | category
    id: int
    label: str


@dataclass(frozen=True)
class CampaignOut:
    id: int
    name: str
    kind: str
    value: int
    buy_quantity: int | None
    pay_quantity: int | None
    get_quantity: int | None
    starts_at: datetime
    ends_at: datetime | None
    active: bool
    min_tier: str | None
    segment_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime | None
    ended_by: str
    state: str
    targets: tuple[TargetOut, ...]
    channels: tuple[str, ...]  # channel codes it is limited to; () = every channel

    def ids(self, kind: str) -> list[int]:
        return [t.id for t in self.targets if t.type == kind]


def state_of(c: Campaign, now: datetime) -> str:
    if not c.active or (c.ends_at is not None and c.ends_at <= now):
        return ENDED
    return SCHEDULED if c.starts_at > now else RUNNING


def _state_filter(state: str, now: datetime) -> object:
    if state == ENDED:
        return or_(~Campaign.active, and_(Campaign.ends_at.is_not(None), Campaign.ends_at <= now))
    live = and_(Campaign.active, or_(Campaign.ends_at.is_(None), Campaign.ends_at > now))
    if state == SCHEDULED:
        return and_(live, Campaign.starts_at > now)
    return and_(live, Campaign.starts_at <= now)


async def _labels(s: AsyncSession, targets: list[tuple[int, str, int]]) -> dict[tuple[str, int],
                                                                               str]:
    out: dict[tuple[str, int], str] = {}
    by_type: dict[str, set[int]] = {}
    for _cid, t, i in targets:
        by_type.setdefault(t, set()).add(i)
    if by_type.get("variant"):
        rows = await s.execute(select(Variant.id, Variant.sku, Product.name, Variant.name)
                               .join(Product, Product.id == Variant.product_id)
                               .where(Variant.id.in_(by_type["variant"])))
        for vid, sku, pn, vn in rows.all():
            out[("variant", vid)] = f"{pn} – {vn} ({sku})" if vn else f"{pn} ({sku})"
    if by_type.get("product"):
        products = await s.execute(select(Product.id, Product.name)
                                   .where(Product.id.in_(by_type["product"])))
        out.update({("product", pid): name for pid, name in products.all()})
    if by_type.get("category"):
        cats = await s.execute(select(Category.id, Category.name)
                               .where(Category.id.in_(by_type["category"])))
        out.update({("category", cid): name for cid, name in cats.all()})
    return out


async def _outs(s: AsyncSession, campaigns: list[Campaign], now: datetime) -> list[CampaignOut]:
    ids = [c.id for c in campaigns]
    if not ids:
        return []
    targets = [(cid, t, i) for cid, t, i in (await s.execute(
        select(CampaignTarget.campaign_id, CampaignTarget.target_type, CampaignTarget.target_id)
        .where(CampaignTarget.campaign_id.in_(ids))
        .order_by(CampaignTarget.target_type, CampaignTarget.target_id))).all()]
    labels = await _labels(s, targets)
    channels: dict[int, list[str]] = {}
    for cid, code in (await s.execute(
            select(CampaignChannel.campaign_id, Channel.code)
            .join(Channel, Channel.id == CampaignChannel.channel_id)
            .where(CampaignChannel.campaign_id.in_(ids)).order_by(Channel.code))).all():
        channels.setdefault(cid, []).append(code)
    by_campaign: dict[int, list[TargetOut]] = {}
    for cid, t, i in targets:
        by_campaign.setdefault(cid, []).append(TargetOut(t, i, labels.get((t, i), f"#{i}")))
    return [CampaignOut(
        c.id, c.name, c.kind, c.value, c.buy_quantity, c.pay_quantity, c.get_quantity,
        c.starts_at, c.ends_at, c.active, c.min_tier, c.segment_id, c.created_by,
        c.created_at,
        c.updated_at, c.ended_by, state_of(c, now), tuple(by_campaign.get(c.id, [])),
        tuple(channels.get(c.id, []))) for c in campaigns]


async def list_campaigns(s: AsyncSession, *, state: str | None = None, q: str = "",
                         kind: str | None = None, now: datetime | None = None,
                         limit: int = 200, offset: int = 0) -> list[CampaignOut]:
    """Campaigns with their targets and limits; newest start first."""
    now = now or utcnow()
    stmt = select(Campaign)
    if state in STATES:
        stmt = stmt.where(_state_filter(state, now))  # type: ignore[arg-type]
    if q:
        stmt = stmt.where(Campaign.name.ilike(f"%{q.replace('%', '').replace('_', '')}%"))
    if kind:
        stmt = stmt.where(Campaign.kind == kind)
    stmt = stmt.order_by(Campaign.starts_at.desc(), Campaign.id.desc()).limit(limit) \
        .offset(offset)
    return await _outs(s, list((await s.scalars(stmt)).all()), now)


async def get_campaign(s: AsyncSession, campaign_id: int,
                       now: datetime | None = None) -> CampaignOut:
    c = await s.get(Campaign, campaign_id)
    if c is None:
        raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
    return (await _outs(s, [c], now or utcnow()))[0]


async def channel_ids(s: AsyncSession, codes: list[str]) -> dict[str, int]:
    found: dict[str, int] = dict((await s.execute(
        select(Channel.code, Channel.id).where(Channel.code.in_(codes)))).all())
    missing = set(codes) - set(found)
    if missing:
        raise ValidationFailed(f"unknown channels: {', '.join(sorted(missing))}",
                               code="unknown_channel", field="channel_codes")
    return found


def summary(data: CampaignIn) -> dict[str, object]:
    """What the audit log keeps of a campaign's settings."""
    return {"name": data.name, "kind": data.kind, "value": data.value,
            "buy_quantity": data.buy_quantity, "pay_quantity": data.pay_quantity,
            "get_quantity": data.get_quantity, "starts_at": data.starts_at.isoformat(),
            "ends_at": data.ends_at.isoformat() if data.ends_at else None,
            "variant_ids": data.variant_ids, "product_ids": data.product_ids,
            "category_ids": data.category_ids, "channels": sorted(data.channel_codes),
            "min_tier": data.min_tier, "segment_id": data.segment_id}


async def update_campaign(uow: UnitOfWork, actor: Actor, campaign_id: int,
                          data: CampaignIn) -> CampaignOut:
    """Replace a campaign's settings, targets and channel limits (all of them). An ended
    campaign stays ended: 409 campaign_ended."""
    actor.require("prices.write", everywhere=True)
    s = uow.session
    campaign = await s.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
    if not campaign.active:
        raise Conflict("the campaign has been ended; create a new one",
                       code="campaign_ended")
    before = await get_campaign(s, campaign_id)
    await check_targets(s, data)
    channels = await channel_ids(s, list(dict.fromkeys(data.channel_codes)))
    campaign.name, campaign.kind, campaign.value = data.name, data.kind, data.value
    campaign.buy_quantity, campaign.pay_quantity = data.buy_quantity, data.pay_quantity
    campaign.get_quantity, campaign.min_tier = data.get_quantity, data.min_tier
    campaign.segment_id = data.segment_id
    campaign.starts_at, campaign.ends_at = data.starts_at, data.ends_at
    campaign.updated_at = utcnow()
    await s.execute(delete(CampaignTarget).where(CampaignTarget.campaign_id == campaign_id))
    await s.execute(delete(CampaignChannel).where(CampaignChannel.campaign_id == campaign_id))
    targets = ([("variant", i) for i in data.variant_ids]
               + [("product", i) for i in data.product_ids]
               + [("category", i) for i in data.category_ids])
    s.add_all(CampaignTarget(campaign_id=campaign_id, target_type=t, target_id=i)
              for t, i in dict.fromkeys(targets))
    s.add_all(CampaignChannel(campaign_id=campaign_id, channel_id=c) for c in channels.values())
    await s.flush()
    await record(uow, actor, "campaign.update", "campaign", campaign_id, {
        "before": {"name": before.name, "kind": before.kind, "value": before.value,
                   "starts_at": before.starts_at.isoformat(),
                   "ends_at": before.ends_at.isoformat() if before.ends_at else None,
                   "channels": list(before.channels), "min_tier": before.min_tier,
                   "segment_id": before.segment_id,
                   "targets": [[t.type, t.id] for t in before.targets]},
        "after": summary(data)})
    uow.emit("campaign.changed", {
        "campaign_id": campaign_id, "name": data.name,
        "variant_ids": sorted(set(data.variant_ids) | set(before.ids("variant"))),
        "product_ids": sorted(set(data.product_ids) | set(before.ids("product"))),
        "category_ids": sorted(set(data.category_ids) | set(before.ids("category")))})
    return await get_campaign(s, campaign_id)


end_now = end_campaign  # End now: services.end_campaign (audited, who ended it)
