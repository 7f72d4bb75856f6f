"""The daily sales summary the sales reports read (docs/reports.md).

`sales_daily` holds one row per business day × kind × channel × where sold × where
fulfilled (or returned) × VAT rate with the sums of that day; the reports job
(`reports.jobs`) rebuilds whole days from the order book (DELETE the days, INSERT …
SELECT), and `sales_daily_days` says which days it has built and when. A day the
summary does not cover completely (today, or a day built before it ended) is read live
from the order book instead, so a report is exact up to the moment.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.db.base import Base, BigID, UTCDateTime

# The kinds of summary row: goods sold, delivery fees charged, goods returned, gift
# cards sold (a liability, not a sale) and the count of orders (no amounts).
KINDS = ("sale", "delivery", "return", "giftcard", "order")


class SalesDaily(Base):
    __tablename__ = "sales_daily"
    __table_args__ = (Index("ix_sales_daily_day", "day", "kind"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8))
    channel_id: Mapped[int] = mapped_column(Integer)
    # Where sold: the store of a sale in the store; None for a web order (the webshop).
    location_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Where fulfilled: the pickup store of click & collect, the shipping location of a
    # home delivery, the store of a till sale; for a return, where it came back.
    fulfil_location_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    gross_cents: Mapped[int] = mapped_column(BigInteger)  # VAT included
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    # Net of VAT of the lines whose unit cost was known at sale, and that cost.
    costed_net_cents: Mapped[int] = mapped_column(BigInteger)
    cost_cents: Mapped[int] = mapped_column(BigInteger)
    units: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(BigInteger)


class SalesDailyItem(Base):
    """Goods sold and returned per business day × variant × where sold × where fulfilled
    (or returned): what the top products and categories read. Built with `sales_daily`."""

    __tablename__ = "sales_daily_items"
    __table_args__ = (Index("ix_sales_daily_items_day", "day"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8))  # sale | return
    variant_id: Mapped[int] = mapped_column(Integer)
    location_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fulfil_location_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    units: Mapped[int] = mapped_column(BigInteger)
    gross_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    costed_net_cents: Mapped[int] = mapped_column(BigInteger)
    cost_cents: Mapped[int] = mapped_column(BigInteger)


class SalesDailyDay(Base):
    """A day `sales_daily` holds, and when it was built (complete once built after the
    day ended)."""

    __tablename__ = "sales_daily_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime)


def touched_days(moment: datetime) -> tuple[date, date]:
    """The business days `moment` may fall on in any time zone (its UTC date ± 1): the
    summary days an order book change at that moment makes stale."""
    d = moment.date()
    return date.fromordinal(d.toordinal() - 1), date.fromordinal(d.toordinal() + 1)
