"""NPS per channel and period, over time, with the comments.

The score of an answer (0-10) from `nps_surveys`; the survey's channel is its order's
channel. NPS = % promoters (9-10) - % detractors (0-6) among the answers given in the
period. Response rate: of the surveys sent in the period, the share answered so far.
Definitions: docs/customer-reports.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.locations.models import Channel
from saumaton.orders.models import Order
from saumaton.reports.journeys import ChannelRef, require_journeys
from saumaton.reports.period import Grain, Period, bucket
from saumaton.service.models import NpsSurvey

COMMENTS_LIMIT = 200


@dataclass
class NpsFigures:
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    sent: int = 0  # surveys sent in the period
    answered_of_sent: int = 0  # of those, answered by now

    def add(self, score: int) -> None:
        self.responses += 1
        if score >= 9:
            self.promoters += 1
        elif score <= 6:
            self.detractors += 1
        else:
            self.passives += 1

    @property
    def nps(self) -> float | None:
        """-100 ... 100; None without answers."""
        if not self.responses:
            return None
        return 100 * (self.promoters - self.detractors) / self.responses

    @property
    def response_rate(self) -> float | None:
        return self.answered_of_sent / self.sent if self.sent else None


@dataclass(frozen=True)
class NpsComment:
    answered_at: datetime
    score: int
    comment: str
    channel: ChannelRef
    customer_id: int
    order_id: int


@dataclass
class NpsReport:
    period: Period
    grain: Grain
    channels: list[ChannelRef]  # those with surveys in the period
    total: NpsFigures
    by_channel: dict[int, NpsFigures]
    buckets: list[date]
    over_time: dict[date, dict[int | None, NpsFigures]]  # None: every channel
    comments: list[NpsComment] = field(default_factory=list)


async def nps_report(s: AsyncSession, actor: Actor, period: Period, grain: Grain,
                     tz: str) -> NpsReport:
    require_journeys(actor)
    start, end = period.bounds(tz)
    zone = ZoneInfo(tz)
    channels = {c.id: ChannelRef(c.id, c.code, c.name, c.kind)
                for c in (await s.scalars(select(Channel).order_by(Channel.id))).all()}
    total = NpsFigures()
    by_channel: dict[int, NpsFigures] = {}
    buckets = sorted({bucket(d, grain) for d in period.each_day()})
    over_time: dict[date, dict[int | None, NpsFigures]] = {b: {None: NpsFigures()}
                                                            for b in buckets}
    answered: Any = await s.execute(
        select(NpsSurvey.answered_at, NpsSurvey.score, Order.channel_id)
        .join(Order, Order.id == NpsSurvey.order_id)
        .where(NpsSurvey.answered_at >= start, NpsSurvey.answered_at < end,
               NpsSurvey.score.is_not(None)))
    for at, score, channel_id in answered:
        total.add(int(score))
        by_channel.setdefault(channel_id, NpsFigures()).add(int(score))
        b = bucket(at.astimezone(zone).date(), grain)
        over_time[b][None].add(int(score))
        over_time[b].setdefault(channel_id, NpsFigures()).add(int(score))
    for channel_id, sent, answered_n in await s.execute(
            select(Order.channel_id, func.count(), func.count(NpsSurvey.answered_at))
            .join(Order, Order.id == NpsSurvey.order_id)
            .where(NpsSurvey.sent_at >= start, NpsSurvey.sent_at < end)
            .group_by(Order.channel_id)):
        fig = by_channel.setdefault(channel_id, NpsFigures())
        fig.sent, fig.answered_of_sent = int(sent), int(answered_n)
        total.sent += int(sent)
        total.answered_of_sent += int(answered_n)
    found: Any = await s.execute(
            select(NpsSurvey.answered_at, NpsSurvey.score, NpsSurvey.comment,
                   Order.channel_id, NpsSurvey.customer_id, NpsSurvey.order_id)
            .join(Order, Order.id == NpsSurvey.order_id)
            .where(NpsSurvey.answered_at >= start, NpsSurvey.answered_at < end,
                   NpsSurvey.score.is_not(None), NpsSurvey.comment != "")
            .order_by(NpsSurvey.answered_at.desc(), NpsSurvey.id.desc())
            .limit(COMMENTS_LIMIT))
    comments = [
        NpsComment(at, int(score), comment, channels[channel_id], int(customer_id),
                   int(order_id))
        for at, score, comment, channel_id, customer_id, order_id in found]
    used = [channels[c] for c in sorted(by_channel)]
    return NpsReport(period, grain, used, total, by_channel, buckets, over_time, comments)
