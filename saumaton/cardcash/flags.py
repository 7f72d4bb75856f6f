"""The review of the flags offline sales carry (orders.flags, written by the till's sale
and never rewritten): each flag of each order is a review item, open until a manager of
the order's store resolves it with a note (`resolve`), or, for `card_unconfirmed`, until
the card terminal's report confirms the payment (`resolve_automatically`). Both are
audited; who and when are kept on the resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.cardcash.models import FlagResolution
from saumaton.cardcash.times import aware_utc
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.orders.models import Order
from saumaton.orders.services import order_number
from saumaton.reports.period import Period

# The flags a person reviews, in the order the list shows them.
REVIEW_FLAGS = ("card_unconfirmed", "price_mismatch", "discount_over_limit", "negative_stock",
                "after_close")
MAX_NOTE = 500
MAX_ITEMS = 500


async def resolve(uow: UnitOfWork, actor: Actor, order_id: int, flag: str, note: str
                  ) -> FlagResolution:
    """Close one flag of one order with a note (flags.resolve at the order's store)."""
    s = uow.session
    order = await s.get(Order, order_id)
    if order is None or flag not in REVIEW_FLAGS or flag not in order.flags.split():
        raise NotFound(f"order {order_id} has no flag {flag}", code="flag_not_found")
    actor.require("flags.resolve", order.location_id)
    text = note.strip()
    if not text:
        raise ValidationFailed("say what was checked and why the flag is closed",
                               code="note_required", field="note")
    if len(text) > MAX_NOTE:
        raise ValidationFailed(f"use at most {MAX_NOTE} characters", code="note_too_long",
                               field="note")
    return await _insert(uow, actor, order, flag, text, automatic=False)


async def resolve_automatically(uow: UnitOfWork, actor: Actor, order_id: int, flag: str,
                                note: str) -> None:
    """Resolve `flag` of the order because the system established it (the terminal report
    confirmed the card payment); nothing when the order lacks the flag or it is closed."""
    s = uow.session
    order = await s.get(Order, order_id)
    if order is None or flag not in order.flags.split():
        return
    if await s.scalar(select(FlagResolution.id).where(
            FlagResolution.order_id == order_id, FlagResolution.flag == flag)) is not None:
        return
    await _insert(uow, actor, order, flag, note[:MAX_NOTE], automatic=True)


async def _insert(uow: UnitOfWork, actor: Actor, order: Order, flag: str, note: str, *,
                  automatic: bool) -> FlagResolution:
    s = uow.session
    res = FlagResolution(order_id=order.id, flag=flag, note=note, automatic=automatic,
                         resolved_by=actor.label, resolved_at=utcnow())
    try:
        async with s.begin_nested():
            s.add(res)
            await s.flush()
    except IntegrityError:
        raise Conflict("this flag has been resolved already", code="flag_resolved",
                       field="note") from None
    await record(uow, actor, "flag.resolve", "order", order.id, {
        "number": order_number(order.id), "location_id": order.location_id, "flag": flag,
        "note": note, "automatic": automatic})
    return res


@dataclass(frozen=True)
class ReviewItem:
    order_id: int
    location_id: int
    sold_at: datetime
    receipt: str  # the receipt number the till printed (offline), else the register's
    total_cents: int
    flag: str
    note: str = ""
    resolved_by: str = ""
    resolved_at: datetime | None = None
    automatic: bool = False

    @property
    def number(self) -> str:
        return order_number(self.order_id)

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None


@dataclass(frozen=True)
class ReviewQuery:
    location_ids: tuple[int, ...]  # the stores looked at (the viewer's, maybe narrowed)
    period: Period
    flag: str = ""  # one of REVIEW_FLAGS or every one
    state: str = "open"  # open | resolved | all


def _sale_time() -> Any:
    return func.coalesce(Order.sold_at, Order.created_at)


async def review_items(s: AsyncSession, q: ReviewQuery, *, tz: str) -> tuple[
        list[ReviewItem], bool]:
    """The review items of the stores and period (the sale's business day), newest sale
    first; and whether the list was cut at MAX_ITEMS."""
    if not q.location_ids:
        return [], False
    start, end = q.period.bounds(tz)
    at = _sale_time()
    stmt = (select(Order.id, Order.location_id, at.label("at"), Order.client_ref,
                   Order.receipt_no, Order.total_cents, Order.flags)
            .where(Order.flags != "", Order.location_id.in_(q.location_ids), at >= start,
                   at < end))
    wanted = (q.flag,) if q.flag else REVIEW_FLAGS
    if q.flag:
        stmt = stmt.where((literal(" ") + Order.flags + literal(" ")).like(f"% {q.flag} %"))
    orders = (await s.execute(stmt.order_by(at.desc(), Order.id.desc()))).all()
    ids = [int(o.id) for o in orders]
    resolutions: dict[tuple[int, str], FlagResolution] = {}
    for chunk in range(0, len(ids), 500):
        for found in (await s.scalars(select(FlagResolution).where(
                FlagResolution.order_id.in_(ids[chunk:chunk + 500])))).all():
            resolutions[(found.order_id, found.flag)] = found
    items: list[ReviewItem] = []
    for o in orders:
        present = set(str(o.flags).split())
        for flag in wanted:
            if flag not in present:
                continue
            r = resolutions.get((int(o.id), flag))
            if (q.state == "open" and r is not None) or (q.state == "resolved" and r is None):
                continue
            items.append(ReviewItem(
                int(o.id), int(o.location_id), aware_utc(o.at),
                str(o.client_ref or o.receipt_no), int(o.total_cents), flag,
                r.note if r else "", r.resolved_by if r else "",
                r.resolved_at if r else None, r.automatic if r else False))
            if len(items) > MAX_ITEMS:
                return items[:MAX_ITEMS], True
    return items, False


async def open_count(s: AsyncSession, location_ids: Iterable[int] | None) -> int:
    """How many review items are open (every store when `location_ids` is None): the
    flags the stores' orders carry minus those resolved; two counts over the flagged
    orders (the partial index ix_orders_flagged)."""
    padded = literal(" ") + Order.flags + literal(" ")
    carried = select(func.coalesce(func.sum(sum(
        (case((padded.like(f"% {f} %"), 1), else_=0) for f in REVIEW_FLAGS),
        literal(0))), 0)).where(Order.flags != "")
    resolved = (select(func.count()).select_from(FlagResolution)
                .join(Order, Order.id == FlagResolution.order_id)
                .where(FlagResolution.flag.in_(REVIEW_FLAGS)))
    if location_ids is not None:
        ids = list(location_ids)
        carried = carried.where(Order.location_id.in_(ids))
        resolved = resolved.where(Order.location_id.in_(ids))
    return int(await s.scalar(carried) or 0) - int(await s.scalar(resolved) or 0)
