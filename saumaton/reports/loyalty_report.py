"""Loyalty figures of a period: members, points by ledger kind, tier movement.

Members are the customers with a loyalty card (saumaton.loyalty.tiers: enrolled), not
merged away, not erased. Points come from the append-only ledger (`loyalty_entries`,
by `created_at` in the period, per kind). Tiers are never stored: like
saumaton.loyalty.tiers, a member's tier at an instant follows from their purchases of
the 365 days before it, so the tier at the period's start and at its end are both
computed the same way and compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.loyalty.ledger import PURCHASE_STATUSES
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.loyalty.tiers import SPEND_WINDOW, TIERS, tier_for_spend, tier_rank
from saumaton.orders.models import Order
from saumaton.reports.journeys import require_journeys
from saumaton.reports.period import Period

LEDGER_KINDS = ("earn", "redeem", "refund", "reverse", "expire", "adjust")
NEW = "new"  # joined during the period: no tier at its start


@dataclass
class LoyaltyReport:
    period: Period
    members: int  # now
    new_members: int  # customers created in the period who have a card
    points: dict[str, int]  # ledger kind -> sum of points in the period (signed)
    earned_by_channel: dict[str, int]
    start_tiers: dict[str, int]  # tier -> members at the start (joined before it)
    end_tiers: dict[str, int]
    moves: dict[tuple[str, str], int] = field(default_factory=dict)  # (from, to) -> n
    up: int = 0
    down: int = 0
    same: int = 0

    @property
    def issued(self) -> int:
        return self.points["earn"]

    @property
    def used(self) -> int:
        """Points spent as payment, less those given back when such an order was
        cancelled or returned."""
        return -self.points["redeem"] - self.points["refund"]

    @property
    def expired(self) -> int:
        return -self.points["expire"]

    @property
    def net_change(self) -> int:
        return sum(self.points.values())


async def loyalty_report(s: AsyncSession, actor: Actor, period: Period,
                         settings: Settings) -> LoyaltyReport:
    require_journeys(actor)
    start, end = period.bounds(settings.timezone)
    member = (select(CustomerIdentity.customer_id).join(
        Customer, Customer.id == CustomerIdentity.customer_id)
        .where(CustomerIdentity.kind == "card", Customer.merged_into_id.is_(None),
               Customer.erased_at.is_(None)).distinct().subquery("m"))
    members = int(await s.scalar(select(func.count()).select_from(member)) or 0)
    new_members = int(await s.scalar(
        select(func.count()).select_from(member)
        .join(Customer, Customer.id == member.c.customer_id)
        .where(Customer.created_at >= start, Customer.created_at < end)) or 0)
    points = dict.fromkeys(LEDGER_KINDS, 0)
    for kind, total in await s.execute(
            select(LoyaltyEntry.kind, func.sum(LoyaltyEntry.points))
            .where(LoyaltyEntry.created_at >= start, LoyaltyEntry.created_at < end)
            .group_by(LoyaltyEntry.kind)):
        points[str(kind)] = points.get(str(kind), 0) + int(total or 0)
    earned_by_channel = {
        str(channel or "-"): int(total or 0) for channel, total in await s.execute(
            select(LoyaltyEntry.channel, func.sum(LoyaltyEntry.points))
            .where(LoyaltyEntry.created_at >= start, LoyaltyEntry.created_at < end,
                   LoyaltyEntry.kind == "earn")
            .group_by(LoyaltyEntry.channel).order_by(LoyaltyEntry.channel))}
    # Spend in the 365 days up to each instant, as saumaton.loyalty.tiers.spend_of.
    def window(at: datetime) -> ColumnElement[Any]:
        return func.sum(case(((Order.created_at > at - SPEND_WINDOW)
                              & (Order.created_at <= at), Order.total_cents), else_=0))
    spend = (select(Order.customer_id.label("customer_id"),
                    window(start).label("at_start"), window(end).label("at_end"))
             .where(Order.customer_id.in_(select(member.c.customer_id)),
                    Order.status.in_(PURCHASE_STATUSES),
                    Order.created_at > start - SPEND_WINDOW, Order.created_at <= end)
             .group_by(Order.customer_id).subquery("sp"))
    rows = await s.execute(
        select(Customer.created_at, func.coalesce(spend.c.at_start, literal(0)),
               func.coalesce(spend.c.at_end, literal(0)))
        .select_from(member)
        .join(Customer, Customer.id == member.c.customer_id)
        .outerjoin(spend, spend.c.customer_id == member.c.customer_id)
        .where(Customer.created_at < end))
    start_tiers = dict.fromkeys(TIERS, 0)
    end_tiers = dict.fromkeys(TIERS, 0)
    report = LoyaltyReport(period, members, new_members, points, earned_by_channel,
                           start_tiers, end_tiers)
    for created_at, at_start, at_end in rows:
        after = tier_for_spend(int(at_end), settings)
        end_tiers[after] += 1
        if created_at >= start:
            before = NEW
        else:
            before = tier_for_spend(int(at_start), settings)
            start_tiers[before] += 1
            if tier_rank(after) > tier_rank(before):
                report.up += 1
            elif tier_rank(after) < tier_rank(before):
                report.down += 1
            else:
                report.same += 1
        report.moves[(before, after)] = report.moves.get((before, after), 0) + 1
    return report
