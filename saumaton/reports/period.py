"""Report periods: whole local days in the shop's time zone, with the periods a report
is compared against (the one before, the same one a year earlier).

Every report takes a `Period` (first day, last day inclusive) and reads rows whose
business day falls inside it. A day is the calendar day in the shop's time zone
(`Settings.timezone`), the same day the receipts and the Z reports print; `bounds`
turns it into the UTC instants the database stores.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from saumaton.core.errors import ValidationFailed

# Longest period a report may span (a report of five years of days is a mistake).
MAX_DAYS = 3 * 366


class Grain(StrEnum):
    """How a report's rows are bucketed over time."""

    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday first
    MONTH = "month"


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValidationFailed("the period ends before it starts", code="invalid_period",
                                   field="until")
        if (self.last - self.first).days >= MAX_DAYS:
            raise ValidationFailed(f"a report spans at most {MAX_DAYS} days",
                                   code="period_too_long", field="until")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the first day to local midnight after
        the last."""
        zone = ZoneInfo(tz)
        start = datetime.combine(self.first, time(), zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(), zone).astimezone(UTC)
        return start, end

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def previous(self) -> Period:
        """The period just before: the month before for a calendar month, otherwise the
        same number of days ending the day before."""
        if self.is_month():
            last = self.first - timedelta(days=1)
            return Period.month(last.year, last.month)
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def year_earlier(self) -> Period:
        """The same dates a year earlier (29 February becomes the 28th)."""
        if self.is_month():
            return Period.month(self.first.year - 1, self.first.month)
        return Period(_year_back(self.first), _year_back(self.last))

    def is_month(self) -> bool:
        return (self.first.day == 1 and self.first.year == self.last.year
                and self.first.month == self.last.month
                and self.last.day == calendar.monthrange(self.last.year, self.last.month)[1])

    @staticmethod
    def month(year: int, month: int) -> Period:
        return Period(date(year, month, 1),
                      date(year, month, calendar.monthrange(year, month)[1]))

    @staticmethod
    def day(day: date) -> Period:
        return Period(day, day)


def bucket(day: date, grain: Grain) -> date:
    """The first day of the bucket `day` falls in."""
    if grain is Grain.WEEK:
        return day - timedelta(days=day.weekday())
    if grain is Grain.MONTH:
        return day.replace(day=1)
    return day


def _year_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def parse_period(since: str | None, until: str | None, today: date) -> Period:
    """A period from `YYYY-MM-DD` query values; without them, this month so far."""
    errors = []
    first = last = None
    try:
        first = date.fromisoformat(since) if since else today.replace(day=1)
    except ValueError:
        errors.append("since")
    try:
        last = date.fromisoformat(until) if until else today
    except ValueError:
        errors.append("until")
    if errors or first is None or last is None:
        raise ValidationFailed("a date is written YYYY-MM-DD", code="invalid_date",
                               field=errors[0])
    return Period(first, last)
