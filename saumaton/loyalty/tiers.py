"""Tiers by rolling 12-month spend, computed (never stored).

A customer with a loyalty card identity is enrolled: a *member*. Their spend is the
sum of their purchases (paid, completed or collected orders) of the last 365 days;
from `loyalty_silver_from_cents` they are *silver*, from `loyalty_gold_from_cents`
*gold*. Member prices are campaigns with a `min_tier`: they apply to buyers of that
tier or higher (member < silver < gold), in every channel, through
`pricing.resolve_prices(..., tier=)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.config import Settings, get_settings
from saumaton.core.clock import utcnow
from saumaton.customers.models import CustomerIdentity
from saumaton.loyalty.ledger import PURCHASE_STATUSES, balance, points_value_cents
from saumaton.orders.models import Order

# The tier order lives with the prices (member prices); re-exported here.
from saumaton.pricing.services import TIERS as TIERS
from saumaton.pricing.services import tiers_up_to as tiers_up_to

SPEND_WINDOW = timedelta(days=365)


def tier_rank(tier: str | None) -> int:
    """0 for no tier, 1 member, 2 silver, 3 gold."""
    return TIERS.index(tier) + 1 if tier in TIERS else 0


@dataclass(frozen=True)
class TierStatus:
    tier: str | None  # None: not enrolled (no loyalty card)
    spend_cents: int  # purchases of the last 365 days
    next_tier: str | None
    to_next_cents: int | None  # spend still missing for next_tier


@dataclass(frozen=True)
class LoyaltySummary:
    """What the till's customer card and the account page show."""

    points: int
    points_value_cents: int
    status: TierStatus


def tier_for_spend(spend_cents: int, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if spend_cents >= settings.loyalty_gold_from_cents:
        return "gold"
    if spend_cents >= settings.loyalty_silver_from_cents:
        return "silver"
    return "member"


async def enrolled(session: AsyncSession, customer_id: int) -> bool:
    return await session.scalar(select(CustomerIdentity.id).where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "card")
        .limit(1)) is not None


async def spend_of(session: AsyncSession, customer_id: int, at: datetime | None = None) -> int:
    at = at or utcnow()
    return int(await session.scalar(
        select(func.coalesce(func.sum(Order.total_cents), 0)).where(
            Order.customer_id == customer_id, Order.status.in_(PURCHASE_STATUSES),
            Order.created_at > at - SPEND_WINDOW, Order.created_at <= at)) or 0)


async def tier_status(session: AsyncSession, customer_id: int,
                      at: datetime | None = None, *,
                      settings: Settings | None = None) -> TierStatus:
    spend = await spend_of(session, customer_id, at)
    if not await enrolled(session, customer_id):
        return TierStatus(None, spend, "member", None)
    settings = settings or get_settings()
    tier = tier_for_spend(spend, settings)
    if tier == "member":
        return TierStatus(tier, spend, "silver", settings.loyalty_silver_from_cents - spend)
    if tier == "silver":
        return TierStatus(tier, spend, "gold", settings.loyalty_gold_from_cents - spend)
    return TierStatus(tier, spend, None, None)


async def tier_of(session: AsyncSession, customer_id: int | None,
                  at: datetime | None = None, *,
                  settings: Settings | None = None) -> str | None:
    """The customer's tier now (or at `at`); None for no customer or not enrolled."""
    if customer_id is None or not await enrolled(session, customer_id):
        return None
    return tier_for_spend(await spend_of(session, customer_id, at), settings)


async def loyalty_summary(session: AsyncSession, customer_id: int,
                          at: datetime | None = None, *,
                          settings: Settings | None = None) -> LoyaltySummary:
    points = await balance(session, customer_id)
    return LoyaltySummary(points, points_value_cents(points, settings),
                          await tier_status(session, customer_id, at, settings=settings))
