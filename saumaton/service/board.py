"""The staff knowledge board: what every staff member should know today — the campaigns
running now and starting soon (from pricing), the products added in the last 30 days
(from the catalogue), and notices (a store's own, or everyone's) in their time window.
The same board is shown at the till, in the service desk and in the back office.

Managers write notices: a store's manager for their store, a manager for every store
for everyone's. A notice is ended by setting its end time to now (it stays in the
table for the record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, model_validator
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.types import Input
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Channel, Location
from saumaton.pricing.models import Campaign, CampaignChannel
from saumaton.service.models import Notice

NEW_PRODUCT_DAYS = 30
UPCOMING_DAYS = 30
MAX_ITEMS = 30
# Who may write notices: managers and owners (permission notices.write). A store's
# notice needs it at that store; everyone's notice needs it everywhere.
NOTICE_PERMISSION = "notices.write"
MAX_TITLE = 200
MAX_BODY = 4000


@dataclass(frozen=True)
class CampaignItem:
    id: int
    name: str
    kind: str  # percent | fixed
    value: int  # basis points | cents
    starts_at: datetime
    ends_at: datetime | None
    min_tier: str | None
    channels: tuple[str, ...]  # channel names; () = every channel


@dataclass(frozen=True)
class ProductItem:
    id: int
    slug: str
    name: str
    brand: str
    created_at: datetime


@dataclass(frozen=True)
class NoticeOut:
    id: int
    title: str
    body: str
    location_id: int | None
    store: str  # "" = everyone
    starts_at: datetime
    ends_at: datetime | None
    created_by: str
    current: bool  # in its time window now


@dataclass(frozen=True)
class Board:
    running: list[CampaignItem]
    upcoming: list[CampaignItem]
    new_products: list[ProductItem]
    notices: list[NoticeOut]
    location_id: int | None  # the store whose board this is; None = every store's


async def _campaigns(session: AsyncSession, now: datetime) -> tuple[list[CampaignItem],
                                                                    list[CampaignItem]]:
    rows = (await session.scalars(
        select(Campaign).where(
            Campaign.active.is_(True),
            Campaign.starts_at <= now + timedelta(days=UPCOMING_DAYS),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > now))
        .order_by(Campaign.starts_at, Campaign.id).limit(2 * MAX_ITEMS))).all()
    ids = [c.id for c in rows]
    channels: dict[int, list[str]] = {}
    if ids:
        for cid, name in (await session.execute(
                select(CampaignChannel.campaign_id, Channel.name)
                .join(Channel, Channel.id == CampaignChannel.channel_id)
                .where(CampaignChannel.campaign_id.in_(ids))
                .order_by(Channel.name))).all():
            channels.setdefault(int(cid), []).append(str(name))
    running: list[CampaignItem] = []
    upcoming: list[CampaignItem] = []
    for c in rows:
        item = CampaignItem(c.id, c.name, c.kind, c.value, c.starts_at, c.ends_at,
                            c.min_tier, tuple(channels.get(c.id, ())))
        (running if c.starts_at <= now else upcoming).append(item)
    running.sort(key=lambda c: (c.ends_at is None, c.ends_at or now, c.id))  # ending first
    return running[:MAX_ITEMS], upcoming[:MAX_ITEMS]


async def _new_products(session: AsyncSession, now: datetime) -> list[ProductItem]:
    rows = (await session.execute(
        select(Product.id, Product.slug, Product.name, Product.brand, Product.created_at)
        .where(Product.active.is_(True),
               Product.created_at >= now - timedelta(days=NEW_PRODUCT_DAYS))
        .order_by(Product.created_at.desc(), Product.id.desc()).limit(MAX_ITEMS))).all()
    return [ProductItem(int(i), str(slug), str(name), str(brand), created)
            for i, slug, name, brand, created in rows]


async def notices(session: AsyncSession, location_id: int | None, now: datetime, *,
                  every_store: bool = False, scheduled: bool = False) -> list[NoticeOut]:
    """Notices in force now for the store (and everyone's), newest first; with
    `every_store` every store's; with `scheduled` also those that start later."""
    where = [or_(Notice.ends_at.is_(None), Notice.ends_at > now)]
    if not scheduled:
        where.append(Notice.starts_at <= now)
    if not every_store:
        where.append(or_(Notice.location_id.is_(None), Notice.location_id == location_id)
                     if location_id is not None else Notice.location_id.is_(None))
    rows = (await session.execute(
        select(Notice, Location.name).outerjoin(Location, Location.id == Notice.location_id)
        .where(and_(*where))
        .order_by(Notice.starts_at.desc(), Notice.id.desc()).limit(MAX_ITEMS))).all()
    return [NoticeOut(n.id, n.title, n.body, n.location_id, str(store or ""), n.starts_at,
                      n.ends_at, n.created_by, n.starts_at <= now)
            for n, store in rows]


async def board(session: AsyncSession, actor: Actor, location_id: int | None = None,
                now: datetime | None = None) -> Board:
    """The board of one store (its notices and everyone's) or, with no store, of every
    store (the back office and the service desk). Any staff member may read it."""
    actor.require("orders.read", location_id)
    now = now or utcnow()
    running, upcoming = await _campaigns(session, now)
    return Board(running, upcoming, await _new_products(session, now),
                 await notices(session, location_id, now, every_store=location_id is None,
                               scheduled=location_id is None and can_write_notices(actor)),
                 location_id)


def can_write_notices(actor: Actor, location_id: int | None = None) -> bool:
    """May write notices for this store (None: for some store, or everyone)."""
    if location_id is None:
        return actor.system or any(actor.can(NOTICE_PERMISSION, g.location_id)
                                   for g in actor.grants)
    return actor.can(NOTICE_PERMISSION, location_id)


class NoticeIn(Input):
    title: str = Field(default="", max_length=1000)
    body: str = Field(default="", max_length=20000)
    location_id: int | None = None  # None = everyone
    starts_at: datetime | None = None  # None = now
    ends_at: datetime | None = None  # None = until ended

    @model_validator(mode="after")
    def _zones(self) -> NoticeIn:
        for value in (self.starts_at, self.ends_at):
            if value is not None and value.tzinfo is None:
                raise ValueError("times must carry a UTC offset")
        return self


def _require_writer(actor: Actor, location_id: int | None) -> None:
    if location_id is None:
        actor.require(NOTICE_PERMISSION, everywhere=True)
    else:
        actor.require(NOTICE_PERMISSION, location_id)


async def create_notice(uow: UnitOfWork, actor: Actor, data: NoticeIn) -> NoticeOut:
    """A notice for one store or (location_id None) everyone, shown from `starts_at`
    (default now) until `ends_at` (default: until ended)."""
    _require_writer(actor, data.location_id)
    title = " ".join(data.title.split())
    body = data.body.strip().replace("\r\n", "\n")
    if not title:
        raise ValidationFailed("write a title", code="required", field="title")
    if len(title) > MAX_TITLE or "\x00" in title:
        raise ValidationFailed(f"a title is at most {MAX_TITLE} characters",
                               code="too_long", field="title", extra={"max": MAX_TITLE})
    if len(body) > MAX_BODY or "\x00" in body:
        raise ValidationFailed(f"a notice is at most {MAX_BODY} characters",
                               code="too_long", field="body", extra={"max": MAX_BODY})
    now = utcnow()
    starts = data.starts_at or now
    if data.ends_at is not None and data.ends_at <= max(starts, now):
        raise ValidationFailed("the end must be after the start and in the future",
                               code="ends_before_start", field="ends_at")
    store = ""
    if data.location_id is not None:
        loc = await uow.session.get(Location, data.location_id)
        if loc is None:
            raise ValidationFailed("no such store", code="location_not_found",
                                   field="location_id")
        store = loc.name
    row = Notice(location_id=data.location_id, title=title, body=body, starts_at=starts,
                 ends_at=data.ends_at, created_by=(actor.name or actor.label)[:200],
                 created_at=now)
    uow.session.add(row)
    await uow.session.flush()
    uow.emit("board.changed", {"notice_id": row.id, "location_id": data.location_id})
    return NoticeOut(row.id, title, body, data.location_id, store, starts, data.ends_at,
                     row.created_by, starts <= now)


async def end_notice(uow: UnitOfWork, actor: Actor, notice_id: int) -> None:
    """Take a notice off the board now (409 `notice_ended` if it has ended already)."""
    row = await uow.session.get(Notice, notice_id)
    if row is None:
        raise NotFound(f"no notice {notice_id}", code="notice_not_found")
    _require_writer(actor, row.location_id)
    now = utcnow()
    if row.ends_at is not None and row.ends_at <= now:
        raise Conflict("this notice has ended already", code="notice_ended")
    row.ends_at = now
    await uow.session.flush()
    uow.emit("board.changed", {"notice_id": row.id, "location_id": row.location_id})
