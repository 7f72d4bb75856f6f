"""The back office's front page: what needs doing now, counted per area for the person
looking (each figure only when their roles may open its page, and only for their stores).
One small COUNT per area; the pages behind the links show the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.cardcash.flags import open_count as open_flag_count
from saumaton.core.actor import Actor
from saumaton.fulfilment.queue import open_order_count
from saumaton.inventory.models import StockLevel, StockTransfer
from saumaton.pricing.models import Campaign, PriceChange
from saumaton.returns.models import Return


@dataclass(frozen=True)
class Todo:
    # orders | returns | counts | negative | transfers | price_changes | campaigns | flags
    key: str
    count: int


def _stores(actor: Actor, permission: str) -> list[int] | None:
    """None: every location; else the locations where `actor` holds `permission`."""
    if actor.can(permission, everywhere=True):
        return None
    return [g.location_id for g in actor.grants
            if g.location_id is not None and actor.can(permission, g.location_id)]


async def _count(s: AsyncSession, q: Select[Any]) -> int:
    return int(await s.scalar(select(func.count()).select_from(q.subquery())) or 0)


async def todos(s: AsyncSession, actor: Actor, now: datetime) -> list[Todo]:
    out: list[Todo] = []
    if actor.can("orders.read"):
        out.append(Todo("orders", await open_order_count(s, actor)))
    if actor.can("returns.create"):
        q = select(Return.id).where(Return.status == "requested")
        out.append(Todo("returns", await _count(s, q)))
    if actor.can("stock.read"):
        stores = _stores(actor, "stock.read")
        where = [] if stores is None else [StockLevel.location_id.in_(stores)]
        out.append(Todo("counts", await _count(s, select(StockLevel.variant_id).where(
            StockLevel.needs_count, *where))))
        out.append(Todo("negative", await _count(s, select(StockLevel.variant_id).where(
            StockLevel.on_hand < 0, *where))))
        tw = [] if stores is None else [or_(StockTransfer.to_location_id.in_(stores),
                                            StockTransfer.from_location_id.in_(stores))]
        out.append(Todo("transfers", await _count(s, select(StockTransfer.id).where(
            StockTransfer.status.in_(("requested", "in_transit")), *tw))))
    if actor.can("prices.read"):
        out.append(Todo("price_changes", await _count(s, select(PriceChange.id).where(
            PriceChange.status == "scheduled"))))
        out.append(Todo("campaigns", await _count(s, select(Campaign.id).where(
            Campaign.active, Campaign.starts_at <= now,
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > now)))))
    if actor.can("flags.resolve"):  # offline sales' flags waiting for a manager's note
        out.append(Todo("flags", await open_flag_count(s, _stores(actor, "flags.resolve"))))
    return out
