"""Scheduling follow-ups from purchases, in every channel.

Every channel's purchase ends in the one order book with a status that says it is a
purchase (`orders.lifecycle.SOLD`; a click & collect order once handed over) — the same
test the after-purchase survey uses (`service.nps.is_purchase`). So the scheduler reads
the orders themselves rather than each channel's event: a till sale (also synced from
offline), a paid web order, a collected pickup, an endless-aisle sale and an API order
all pass it. `due_orders` lists recent purchases not yet looked at; `schedule_order`
claims one by inserting its `FollowupOrder` row (ON CONFLICT DO NOTHING: one process
wins, a retried job does nothing) and writes its follow-ups (`claim_unfollowed` claims
first, together, those that can lead to nothing: no consent, no reminder pending).
What is written:

- for each enabled sequence whose category (or a parent of it) holds a bought product:
  one row per step (due `delay_days` after the purchase) — one mail per step even when
  several products match, never twice per order and step (`dedupe_key`);
- the refill reminder (a sequence's `refill` step) per bought product: due the
  sequence's `refill_lead_days` (a quarter of the interval when that is shorter) before
  the customer's own median interval between purchases of the product (two or more
  purchases) runs out, else the sequence's `refill_days`; a new purchase of the product
  cancels the reminder still pending from an earlier one (even when this purchase
  schedules nothing: the old reminder is moot).

Only customers with an e-mail address and marketing consent at the purchase get rows;
the consent is checked again when each mail is sent (`followups.sender`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.catalogue.models import Category, Product, Variant
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.customers.models import CustomerIdentity
from saumaton.db.uow import UnitOfWork
from saumaton.followups.models import Followup, FollowupOrder, FollowupSequence, FollowupStep
from saumaton.locations.models import Channel
from saumaton.mail.marketing import consenting
from saumaton.mail.render import mail_language
from saumaton.orders.lifecycle import SOLD, OrderStatus
from saumaton.orders.models import Order, OrderLine
from saumaton.service.nps import PICKUP, is_purchase

# Purchases of this recent past are scheduled (a click & collect order counts from its
# handover); older ones never (the job was down for longer: too late to follow up).
SCHEDULE_WINDOW = timedelta(days=2)
BATCH = 100
# The reminder comes a sequence's refill_lead_days (by default this many) before the
# expected run-out, a quarter of the interval when that is shorter.
REFILL_LEAD_DAYS = 5
# Two purchases less than a day apart are one purchase for the interval.
SAME_PURCHASE = timedelta(days=1)
PENDING = "pending"


def purchased_at_sql() -> ColumnElement[datetime]:
    """SQL: when an order became a purchase (a pickup: its handover)."""
    return func.coalesce(Order.collected_at, Order.sold_at, Order.created_at)


def _recent_purchase(since: datetime) -> object:
    return or_(
        and_(Order.delivery_method.is_distinct_from(PICKUP),
             Order.status.in_(tuple(SOLD)), Order.created_at >= since),
        and_(Order.delivery_method == PICKUP, Order.status == OrderStatus.COLLECTED,
             Order.collected_at >= since))


def due_orders_query(now: datetime, limit: int = BATCH) -> Select[int]:
    """The scan `due_orders` runs. Each branch of its OR reads an index of its own
    (ix_orders_created_at; ix_orders_status_collected for handed-over pickups, migration
    0027); the matches are found first and only then ordered: with ORDER BY id LIMIT in
    the same query SQLite's planner walks the whole table in id order instead (a
    MATERIALIZED common table expression is planned on its own, on both databases)."""
    recent = (select(Order.id).where(
        _recent_purchase(now - SCHEDULE_WINDOW),  # type: ignore[arg-type]
        Order.customer_id.is_not(None),
        ~exists().where(FollowupOrder.order_id == Order.id))
        .cte("recent_purchases").prefix_with("MATERIALIZED"))
    return select(recent.c.id).order_by(recent.c.id).limit(limit)


async def due_orders(session: AsyncSession, now: datetime | None = None,
                     limit: int = BATCH) -> list[int]:
    """Purchases by a known customer of the last SCHEDULE_WINDOW that the scheduler has
    not looked at yet; oldest first."""
    ids = (await session.scalars(due_orders_query(now or utcnow(), limit))).all()
    return [int(i) for i in ids]


@dataclass(frozen=True)
class BoughtLine:
    product_id: int
    category_id: int | None
    product: str  # its name in the order's language
    shade: str  # the variant's name ("" for a product of one variant)


async def bought_lines(session: AsyncSession, order_id: int, lang: str) -> list[BoughtLine]:
    """The order's lines the customer still has (not returned), gift cards left out."""
    rows = (await session.execute(
        select(Product.id, Product.category_id, Product.name, Product.name_en, Variant.name)
        .select_from(OrderLine)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(OrderLine.order_id == order_id,
               OrderLine.quantity > OrderLine.returned_quantity,
               Product.gift_card.is_(False))
        .order_by(OrderLine.line_no))).all()
    return [BoughtLine(int(pid), int(cat) if cat is not None else None,
                       str(name_en or name) if lang == "en" else str(name), str(vname or ""))
            for pid, cat, name, name_en, vname in rows]


async def category_ancestors(session: AsyncSession) -> dict[int, list[int]]:
    """Each category with itself and its parents (the category table is small)."""
    parent = {int(i): (int(p) if p is not None else None)
              for i, p in (await session.execute(select(Category.id, Category.parent_id)))}
    out: dict[int, list[int]] = {}
    for cid in parent:
        chain: list[int] = []
        at: int | None = cid
        while at is not None and at not in chain and len(chain) < 50:
            chain.append(at)
            at = parent.get(at)
        out[cid] = chain
    return out


async def email_of(session: AsyncSession, customer_id: int, order_email: str = "") -> str:
    email = await session.scalar(
        select(CustomerIdentity.value).where(CustomerIdentity.customer_id == customer_id,
                                             CustomerIdentity.kind == "email")
        .order_by(CustomerIdentity.id).limit(1))
    return str(email or order_email or "")


async def purchase_times(session: AsyncSession, customer_id: int,
                         product_id: int) -> list[datetime]:
    """When the customer bought the product (any variant, any channel), oldest first;
    purchases less than a day apart count once."""
    at = purchased_at_sql()
    rows = (await session.execute(
        select(at, Order.status, Order.delivery_method)
        .select_from(Order)
        .where(Order.customer_id == customer_id, Order.status.in_(tuple(SOLD)),
               exists().where(OrderLine.order_id == Order.id,
                              OrderLine.quantity > OrderLine.returned_quantity,
                              OrderLine.variant_id.in_(
                                  select(Variant.id).where(Variant.product_id == product_id))))
        .order_by(at))).all()
    times: list[datetime] = []
    for when, status, delivery in rows:
        if not is_purchase(str(status), delivery):
            continue
        if times and when - times[-1] < SAME_PURCHASE:
            continue
        times.append(when)
    return times


def own_interval(times: list[datetime]) -> int | None:
    """The median days between the purchases (two or more purchases), else None."""
    if len(times) < 2:
        return None
    gaps = [(b - a).total_seconds() / 86400 for a, b in pairwise(times)]
    return max(1, round(median(gaps)))


def refill_due(purchased: datetime, interval_days: int,
               lead_days: int = REFILL_LEAD_DAYS) -> datetime:
    lead = min(lead_days, interval_days // 4)
    return purchased + timedelta(days=interval_days - lead)


@dataclass(frozen=True)
class _Seq:
    id: int
    category_id: int
    refill_days: int | None
    refill_lead_days: int
    steps: list[tuple[int, str, int]]  # (step id, kind, delay days)


async def _enabled_sequences(session: AsyncSession) -> list[_Seq]:
    rows = (await session.execute(
        select(FollowupSequence.id, FollowupSequence.category_id, FollowupSequence.refill_days,
               FollowupSequence.refill_lead_days, FollowupStep.id, FollowupStep.kind,
               FollowupStep.delay_days)
        .join(FollowupStep, FollowupStep.sequence_id == FollowupSequence.id)
        .where(FollowupSequence.enabled.is_(True))
        .order_by(FollowupSequence.id, FollowupStep.position))).all()
    seqs: dict[int, _Seq] = {}
    for sid, cat, refill, lead, step_id, kind, delay in rows:
        seq = seqs.setdefault(int(sid), _Seq(int(sid), int(cat), refill, int(lead), []))
        seq.steps.append((int(step_id), str(kind), int(delay)))
    return list(seqs.values())


async def _insert(uow: UnitOfWork, rows: Iterable[dict[str, object]]) -> int:
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(Followup)
    n = 0
    for row in rows:
        done = await uow.session.scalar(
            ins.values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Followup.id))
        n += done is not None
    return n


async def cancel_pending_refills(uow: UnitOfWork, customer_id: int, product_ids: set[int],
                                 *, but_order: int, now: datetime) -> int:
    """A purchase of the product: the reminder still pending from an earlier one goes."""
    if not product_ids:
        return 0
    done = await uow.session.execute(
        update(Followup).where(Followup.customer_id == customer_id,
                               Followup.product_id.in_(product_ids),
                               Followup.kind == "refill", Followup.status == PENDING,
                               Followup.order_id != but_order)
        .values(status="cancelled", reason="repurchased", closed_at=now)
        .execution_options(synchronize_session=False))
    return int(getattr(done, "rowcount", 0) or 0)


async def claim_unfollowed(uow: UnitOfWork, order_ids: list[int],
                           now: datetime | None = None) -> list[int]:
    """Claim at once, with nothing scheduled, the purchases among `order_ids` that can
    lead to nothing: the customer has no marketing consent now (so `schedule_order`
    would write no row) and no refill reminder pending (so none to cancel). The final
    state is what `schedule_order` leaves for them, in three statements for the whole
    batch instead of five for each order (most purchases are of this kind, a guest's
    web order among them). Returns the others, in the given order, for
    `schedule_order`; an order claimed by another process meanwhile is skipped by the
    same ON CONFLICT DO NOTHING."""
    if not order_ids:
        return []
    s = uow.session
    now = now or utcnow()
    rows = (await s.execute(
        select(Order.id, Order.customer_id, Order.status, Order.delivery_method)
        .where(Order.id.in_(order_ids)))).all()
    customers = {int(r.customer_id) for r in rows if r.customer_id is not None}
    keep = await consenting(s, customers)
    keep.update(int(c) for c in (await s.scalars(
        select(Followup.customer_id).distinct().where(
            Followup.customer_id.in_(sorted(customers)), Followup.kind == "refill",
            Followup.status == PENDING))).all() if c is not None)
    # Not a purchase (yet): left to schedule_order, which leaves it unclaimed as before.
    done = sorted(int(r.id) for r in rows if r.customer_id is not None
                  and int(r.customer_id) not in keep
                  and is_purchase(str(r.status), r.delivery_method))
    if done:
        ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(FollowupOrder)
        await s.execute(ins.values([{"order_id": i, "scheduled_at": now, "scheduled": 0}
                                    for i in done])
                        .on_conflict_do_nothing(index_elements=["order_id"]))
    claimed = set(done)
    return [i for i in order_ids if i not in claimed]


async def schedule_order(uow: UnitOfWork, settings: Settings, order_id: int,
                         now: datetime | None = None) -> int | None:
    """Schedule the order's follow-ups in the caller's transaction; how many rows were
    written, or None when another process (or an earlier run) has the order already."""
    s = uow.session
    now = now or utcnow()
    order = (await s.execute(
        select(Order.customer_id, Order.status, Order.delivery_method, Order.language,
               Order.email, Channel.kind, purchased_at_sql())
        .join(Channel, Channel.id == Order.channel_id).where(Order.id == order_id))).first()
    if order is None or order.customer_id is None \
            or not is_purchase(str(order.status), order.delivery_method):
        return None
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(FollowupOrder)
    claimed = await s.scalar(ins.values(order_id=order_id, scheduled_at=now, scheduled=0)
                             .on_conflict_do_nothing(index_elements=["order_id"])
                             .returning(FollowupOrder.order_id))
    if claimed is None:
        return None
    customer_id = int(order.customer_id)
    purchased: datetime = order[6]
    lang = mail_language(order.language if order.kind == "webshop"
                         else settings.default_language, settings)
    lines = await bought_lines(s, order_id, lang)
    products = {ln.product_id for ln in lines}
    await cancel_pending_refills(uow, customer_id, products, but_order=order_id, now=now)
    if not lines or customer_id not in await consenting(s, [customer_id]) \
            or not await email_of(s, customer_id, str(order.email or "")):
        return 0
    ancestors = await category_ancestors(s)
    rows: list[dict[str, object]] = []
    base = {"customer_id": customer_id, "order_id": order_id, "language": lang,
            "status": PENDING, "reason": "", "interval_source": "", "subject": "",
            "created_at": now}
    for seq in await _enabled_sequences(s):
        matching = [ln for ln in lines if ln.category_id is not None
                    and seq.category_id in ancestors.get(ln.category_id, [])]
        if not matching:
            continue
        for step_id, kind, delay in seq.steps:
            if kind != "refill":
                rows.append({**base, "dedupe_key": f"step:{order_id}:{step_id}",
                             "kind": "step", "sequence_id": seq.id, "step_id": step_id,
                             "due_at": purchased + timedelta(days=delay)})
                continue
            for pid in dict.fromkeys(ln.product_id for ln in matching):
                own = own_interval(await purchase_times(s, customer_id, pid))
                interval = own or seq.refill_days
                if not interval:
                    continue
                rows.append({**base, "dedupe_key": f"refill:{order_id}:{pid}",
                             "kind": "refill", "sequence_id": seq.id, "step_id": step_id,
                             "product_id": pid, "interval_days": interval,
                             "interval_source": "own" if own else "category",
                             "due_at": refill_due(purchased, interval,
                                                  seq.refill_lead_days)})
    n = await _insert(uow, rows)
    await s.execute(update(FollowupOrder).where(FollowupOrder.order_id == order_id)
                    .values(scheduled=n).execution_options(synchronize_session=False))
    return n
