"""Returns in every channel: at any store's till (also for web orders), by post
(started from the account page or by the service desk, received at a store or in the
warehouse), through the REST API.

The rules (docs/returns.md):

- Units come back with one conditional UPDATE of `order_lines.returned_quantity`
  (`returned + q <= sold`): two tills returning the same unit at once, exactly one
  succeeds; the other gets 409 `return_exceeds_sold`. Every return of an order also
  locks the order row first, so the amounts of concurrent returns stay exact.
- Return window: a web order has the 14-day withdrawal right from delivery
  (`Settings.web_return_days`); a store sale the selling store's `return_days`.
  Outside it: 409 `return_window_closed`, unless someone with `returns.override`
  gives a reason (audited).
- Amounts: `returns.amounts` (the price paid, points back as points, delivery fee on
  a full withdrawal, VAT per line).
- Refunds (`payments.refunds.record_refund`, never more than was paid): "original"
  goes back the way the order was paid — Paytrail (sent by the refund job), the card
  at the terminal (cashier-confirmed), cash from the drawer (rounded to 5 cents, on
  the Z report), back onto the gift card or store credit that paid. A postal return of
  a store sale paid in cash or by card follows `Settings.post_return_cash_refund`
  (store credit, or a bank transfer finance pays).
- Goods: back on the shelf at the receiving location (a "return" movement), or, when
  damaged, in and out again (a "return" and a "write_off").
- Loyalty: the points earned for the returned goods are taken back; points used to
  pay come back in proportion. Each keyed by the return: a retry changes nothing.
- Every return is idempotent on its key (same key, same body: the same return;
  another body: 409 `idempotency_key_reused`).

Services take a unit of work and never commit; `take_return` is the entry point that
commits (and replays a key).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record as audit
from saumaton.catalogue.models import Product, Variant
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.money import round_cash
from saumaton.db.uow import Database, UnitOfWork
from saumaton.giftcards.ledger import add_store_credit, credit, masked_code
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from saumaton.inventory.services import Move, apply_moves, release_units
from saumaton.inventory.transfers import call_back_for_order
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.ledger import POINTS_METHOD, give_back_points, reverse_for_order
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.messages import credit_receipt as credit_receipt_mail
from saumaton.mail.queue import queue_mail
from saumaton.orders.lifecycle import OPEN_FULFILMENT, OrderStatus, returnable, transition
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.schemas import OrderOut
from saumaton.orders.services import business_day, get_order, order_number
from saumaton.payments.models import Payment, Refund
from saumaton.payments.refunds import paytrail_transaction_of, record_refund
from saumaton.payments.terminal import CardTerminal
from saumaton.returns.amounts import LineFacts, ReturnAmounts, compute
from saumaton.returns.models import Return, ReturnLine
from saumaton.returns.schemas import (
    BankAccountIn,
    CreditReceipt,
    PostReturnIn,
    ReceiveIn,
    RefundOut,
    ReturnableLine,
    ReturnableOrder,
    ReturnIn,
    ReturnLineIn,
    ReturnLineOut,
    ReturnOut,
    VatRowOut,
)
from saumaton.tills.models import DrawerSession
from saumaton.tills.receipts import next_receipt_no
from saumaton.tills.sales import TillSaleIn, sell_in_exchange

# "original" money goes back in this order of the ways the order was paid; each
# refund takes the next cents of that sequence, so no method gives back more than it
# took.
_ORIGINAL_ORDER = ("paytrail", "card", "gift_card", "store_credit", "cash", "exchange")
_CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY34679"  # no look-alikes (0/O, 1/I, 5/S, 8/B)


def request_hash(order_id: int, cmd: ReturnIn | PostReturnIn) -> str:
    return hashlib.sha256(f"{order_id}:{cmd.model_dump_json()}".encode()).hexdigest()


def new_return_code() -> str:
    """The code on a return's label and QR, e.g. "R7KXM-PQ3T"."""
    body = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(9))
    return f"R{body[:4]}-{body[4:]}"


# --- reading ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Window:
    starts: datetime
    days: int

    def ends(self) -> Any:
        return business_day(self.starts) + timedelta(days=self.days)

    def open_at(self, now: datetime) -> bool:
        return bool(business_day(now) <= self.ends())


async def _window(s: AsyncSession, order: Order, channel_kind: str,
                  settings: Settings) -> _Window:
    """Web orders (and anything delivered): the withdrawal right from delivery. A store
    sale: the selling store's own policy from the sale."""
    if channel_kind == "webshop" or order.delivery_method is not None:
        start = order.collected_at or order.shipped_at or order.created_at
        return _Window(start, settings.web_return_days)
    days = settings.web_return_days
    if order.location_id is not None:
        days = int(await s.scalar(select(Location.return_days)
                                  .where(Location.id == order.location_id)) or days)
    return _Window(order.sold_at or order.created_at, days)


async def _channel_of(s: AsyncSession, order: Order) -> tuple[str, str]:
    row = (await s.execute(select(Channel.code, Channel.kind)
                           .where(Channel.id == order.channel_id))).one()
    return str(row[0]), str(row[1])


async def _channel_cached(uow: UnitOfWork, order: Order) -> tuple[str, str]:
    """Channels are reference rows; each process keeps them a few seconds."""
    async def load() -> tuple[str, str]:
        return await _channel_of(uow.session, order)
    return await uow.db.cached(("channel-of", order.channel_id), 10.0, load)


async def _gift_card_variants(s: AsyncSession, variant_ids: list[int]) -> set[int]:
    return set((await s.scalars(
        select(Variant.id).join(Product, Product.id == Variant.product_id)
        .where(Variant.id.in_(variant_ids), Product.gift_card.is_(True)))).all())


async def returnable_lines(s: AsyncSession, order_id: int, *, now: datetime | None = None,
                           settings: Settings | None = None) -> ReturnableOrder:
    """The order as a return screen shows it: each line's sold, returned and still
    returnable units, the return window and whether it is open, the ways it was paid."""
    settings = settings or get_settings()
    order = await s.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    code, kind = await _channel_of(s, order)
    window = await _window(s, order, kind, settings)
    lines = list((await s.scalars(select(OrderLine).where(OrderLine.order_id == order_id)
                                  .order_by(OrderLine.line_no))).all())
    gift = await _gift_card_variants(s, [ln.variant_id for ln in lines])
    methods = list((await s.scalars(
        select(Payment.method).where(Payment.order_id == order_id, Payment.amount_cents > 0)
        .distinct())).all())
    ok = returnable(order.status)
    return ReturnableOrder(
        order_id=order.id, number=order_number(order.id), channel=code, channel_kind=kind,
        location_id=order.location_id, customer_id=order.customer_id, status=order.status,
        returnable=ok, sold_at=order.sold_at or order.created_at,
        window_starts=window.starts, window_days=window.days, window_ends=window.ends(),
        window_open=window.open_at(now or utcnow()), paid_cents=order.paid_cents,
        refunded_cents=order.refunded_cents, payment_methods=sorted(methods),
        lines=[ReturnableLine(
            line_no=ln.line_no, variant_id=ln.variant_id, sku=ln.sku, name=ln.name,
            quantity=ln.quantity, returned_quantity=ln.returned_quantity,
            returnable_quantity=(0 if ln.variant_id in gift or not ok
                                 else ln.quantity - ln.returned_quantity),
            unit_price_cents=ln.unit_price_cents, paid_cents=ln.total_cents,
            vat_rate_bp=ln.vat_rate_bp, gift_card=ln.variant_id in gift) for ln in lines])


async def find_order(s: AsyncSession, query: str) -> int | None:
    """The order a cashier scanned or typed: its number ("000104", the QR of the
    order e-mail), a till receipt number, or an offline receipt number."""
    q = query.strip()
    if not q:
        return None
    if q.isdigit() and len(q) <= 18:
        if await s.get(Order, int(q)) is not None:
            return int(q)
    found = await s.scalar(select(Order.id).where(
        (Order.receipt_no == q) | (Order.client_ref == q)).order_by(Order.id).limit(1))
    return None if found is None else int(found)


async def get_return(s: AsyncSession, return_id: int) -> ReturnOut:
    ret = await s.get(Return, return_id)
    if ret is None:
        raise NotFound(f"no return {return_id}", code="return_not_found")
    return await _out(s, ret)


async def return_by_code(s: AsyncSession, code: str) -> ReturnOut:
    """A postal return by the code on its label (typed or scanned)."""
    ret = await s.scalar(select(Return).where(Return.code == code.strip().upper()))
    if ret is None:
        raise NotFound("no return with this code", code="return_not_found", field="code")
    return await _out(s, ret)


async def returns_of_order(s: AsyncSession, order_id: int) -> list[ReturnOut]:
    rets = (await s.scalars(select(Return).where(Return.order_id == order_id)
                            .order_by(Return.id))).all()
    return [await _out(s, r) for r in rets]


async def _out(s: AsyncSession, ret: Return) -> ReturnOut:
    lines = (await s.scalars(select(ReturnLine).where(ReturnLine.return_id == ret.id)
                             .order_by(ReturnLine.line_no))).all()
    refunds = (await s.scalars(select(Refund).where(Refund.return_id == ret.id)
                               .order_by(Refund.id))).all()
    points = {} if ret.customer_id is None else {str(k): int(v) for k, v in (
        await s.execute(select(LoyaltyEntry.key, LoyaltyEntry.points).where(
            LoyaltyEntry.key.in_([f"refund:return:{ret.id}",
                                  f"reverse:return:{ret.id}"])))).all()}
    back = int(points.get(f"refund:return:{ret.id}", 0))
    line_outs = [ReturnLineOut(
        line_no=ln.line_no, variant_id=ln.variant_id, sku=ln.sku, name=ln.name,
        quantity=ln.quantity, refund_cents=ln.refund_cents, vat_rate_bp=ln.vat_rate_bp,
        vat_cents=ln.vat_cents, restock=ln.restock, reason=ln.reason) for ln in lines]
    fee, fee_vat, fee_rate = 0, 0, 0
    if ret.status == "completed":
        order = await s.get(Order, ret.order_id)
        assert order is not None
        goods = sum(ln.refund_cents for ln in lines)
        value = ret.refund_cents + back * get_settings().loyalty_point_value_cents
        if order.delivery_fee_cents and value - goods >= order.delivery_fee_cents:
            fee, fee_vat = order.delivery_fee_cents, order.delivery_vat_cents
            fee_rate = order.delivery_vat_rate_bp
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ln in line_outs:
        by_rate[ln.vat_rate_bp][0] += ln.refund_cents
        by_rate[ln.vat_rate_bp][1] += ln.vat_cents
    if fee:
        by_rate[fee_rate][0] += fee
        by_rate[fee_rate][1] += fee_vat
    return ReturnOut(
        id=ret.id, order_id=ret.order_id, order_number=order_number(ret.order_id),
        code=ret.code, status=ret.status, kind=ret.kind, channel=ret.channel,
        location_id=ret.location_id, customer_id=ret.customer_id,
        refund_method=ret.refund_method, refund_cents=ret.refund_cents,
        points_returned=back, points_reversed=-int(points.get(f"reverse:return:{ret.id}", 0)),
        delivery_fee_cents=fee, reason=ret.reason, note=ret.note,
        override_reason=ret.override_reason, receipt_no=ret.receipt_no,
        drawer_session_id=ret.drawer_session_id, exchange_order_id=ret.exchange_order_id,
        created_by=ret.created_by, created_at=ret.created_at, received_at=ret.received_at,
        lines=line_outs, refunds=[refund_out(r) for r in refunds],
        vat=[VatRowOut(rate_bp=r, gross_cents=g, vat_cents=v, net_cents=g - v)
             for r, (g, v) in sorted(by_rate.items(), reverse=True)])


def refund_out(r: Refund) -> RefundOut:
    return RefundOut(id=r.id, method=r.method, status=r.status, amount_cents=r.amount_cents,
                     rounding_cents=r.rounding_cents, reference=r.reference,
                     attempts=r.attempts, error=r.error, created_at=r.created_at)


async def credit_receipt(s: AsyncSession, return_id: int,
                         settings: Settings | None = None) -> CreditReceipt:
    """The credit receipt (hyvityskuitti) of a completed return: Act 658/2013 content
    with the amounts negative."""
    settings = settings or get_settings()
    ret = await get_return(s, return_id)
    if ret.status != "completed":
        raise Conflict("the goods of this return have not come back yet",
                       code="return_not_completed")
    store = await s.get(Location, ret.location_id) if ret.location_id else None
    neg = [ln.model_copy(update={"refund_cents": -ln.refund_cents,
                                 "vat_cents": -ln.vat_cents}) for ln in ret.lines]
    total = sum(ln.refund_cents for ln in neg) - ret.delivery_fee_cents
    return CreditReceipt(
        seller=settings.business_name, business_id=settings.business_id,
        address=(store.address if store and store.address else settings.business_address),
        store_name=store.name if store else settings.business_name,
        receipt_no=ret.receipt_no, order_number=ret.order_number,
        issued_at=ret.received_at or ret.created_at, lines=neg,
        delivery_fee_cents=-ret.delivery_fee_cents, total_cents=total,
        vat=[v.model_copy(update={"gross_cents": -v.gross_cents, "net_cents": -v.net_cents,
                                  "vat_cents": -v.vat_cents}) for v in ret.vat],
        refunds=ret.refunds, reason=ret.reason)


# --- writing ----------------------------------------------------------------------------

@dataclass
class _Ctx:
    """One return being written."""

    order: Order
    channel_kind: str
    lines: dict[int, OrderLine]
    paid: dict[str, int]  # the order's payments by method (points included)


async def _paid_of(s: AsyncSession, order_id: int) -> dict[str, int]:
    return {str(m): int(v) for m, v in (await s.execute(
        select(Payment.method, func.sum(Payment.amount_cents))
        .where(Payment.order_id == order_id, Payment.amount_cents > 0)
        .group_by(Payment.method))).all()}


async def _location_exists(uow: UnitOfWork, location_id: int) -> bool:
    async def load() -> bool:
        return await uow.session.get(Location, location_id) is not None
    return await uow.db.cached(("location-exists", location_id), 10.0, load)


async def _lock_order(uow: UnitOfWork, order_id: int) -> Order:
    q = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    if uow.db.is_postgres:
        q = q.with_for_update()
    order = await uow.session.scalar(q)
    if order is None:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    return order


async def _context(uow: UnitOfWork, order_id: int, wanted: list[ReturnLineIn]) -> _Ctx:
    s = uow.session
    order = await _lock_order(uow, order_id)
    if not returnable(order.status):
        raise Conflict(f"order {order_number(order.id)} is {order.status}: nothing to return",
                       code="order_not_returnable", extra={"order_status": order.status})
    _, kind = await _channel_cached(uow, order)
    lines = {ln.line_no: ln for ln in (await s.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id)
        .execution_options(populate_existing=True))).all()}
    errors = []
    for i, w in enumerate(wanted):
        if w.line_no not in lines:
            errors.append(ValidationFailed(f"the order has no line {w.line_no}",
                                           code="unknown_line", field=f"lines.{i}.line_no"))
    if errors:
        raise errors[0]
    gift = await _gift_card_variants(s, [lines[w.line_no].variant_id for w in wanted])
    for i, w in enumerate(wanted):
        if lines[w.line_no].variant_id in gift:
            raise ValidationFailed("a gift card is not returned: its balance is spent or kept",
                                   code="gift_card_not_returnable", field=f"lines.{i}")
    return _Ctx(order, kind, lines, await _paid_of(s, order_id))


async def _check_window(uow: UnitOfWork, actor: Actor, ctx: _Ctx, override_reason: str,
                        location_id: int | None, now: datetime, settings: Settings) -> str:
    window = await _window(uow.session, ctx.order, ctx.channel_kind, settings)
    if window.open_at(now):
        return ""
    reason = override_reason.strip()
    if not reason:
        raise Conflict(
            f"the return window closed on {window.ends().isoformat()}; a manager can accept "
            "the return with a reason", code="return_window_closed",
            field="override_reason", extra={"window_ends": window.ends().isoformat()})
    actor.require("returns.override", location_id)
    return reason


async def _take_units(uow: UnitOfWork, ctx: _Ctx, wanted: list[ReturnLineIn]) -> None:
    """One conditional UPDATE per line: never more back than was sold."""
    for i, w in enumerate(wanted):
        ln = ctx.lines[w.line_no]
        moved = await uow.session.execute(
            update(OrderLine)
            .where(OrderLine.id == ln.id,
                   OrderLine.returned_quantity + w.quantity <= OrderLine.quantity)
            .values(returned_quantity=OrderLine.returned_quantity + w.quantity)
            .execution_options(synchronize_session=False))
        if getattr(moved, "rowcount", 1) != 1:
            left = await uow.session.scalar(
                select(OrderLine.quantity - OrderLine.returned_quantity)
                .where(OrderLine.id == ln.id))
            raise Conflict(
                f"{ln.name}: only {left or 0} of {ln.quantity} can still be returned",
                code="return_exceeds_sold", field=f"lines.{i}.quantity",
                extra={"line_no": w.line_no, "returnable_quantity": int(left or 0)})


async def _amounts(uow: UnitOfWork, ctx: _Ctx, wanted: list[ReturnLineIn],
                   settings: Settings, set_aside: dict[int, int] | None = None
                   ) -> tuple[ReturnAmounts, bool]:
    """The amounts of this return (computed from the units returned before it) and
    whether it completes the order's return. `set_aside`: units of this return already
    counted in `returned_quantity` (a postal return, set aside when requested)."""
    taking = {w.line_no: w.quantity for w in wanted}
    aside = set_aside or {}
    facts = [LineFacts(ln.line_no, ln.quantity, ln.returned_quantity - aside.get(ln.line_no, 0),
                       ln.total_cents, ln.vat_cents, ln.vat_rate_bp)
             for ln in sorted(ctx.lines.values(), key=lambda x: x.line_no)]
    complete = all(f.returned_before + taking.get(f.line_no, 0) >= f.quantity for f in facts)
    value = settings.loyalty_point_value_cents
    points_cents = ctx.paid.get(POINTS_METHOD, 0)
    order = ctx.order
    return compute(facts, taking, order_total_cents=order.total_cents,
                   delivery_fee_cents=order.delivery_fee_cents or 0,
                   delivery_vat_cents=order.delivery_vat_cents or 0,
                   refund_delivery=complete and order.delivery_method == "home",
                   points_paid=points_cents // value, point_value_cents=value), complete


async def _open_drawer(uow: UnitOfWork, location_id: int, named: int | None) -> DrawerSession:
    """The drawer session a cash or card refund belongs to (its X/Z report)."""
    q = select(DrawerSession).where(DrawerSession.location_id == location_id,
                                    DrawerSession.status == "open")
    if named is not None:
        q = q.where(DrawerSession.id == named)
    if uow.db.is_postgres:
        q = q.with_for_update(read=True)
    found = (await uow.session.scalars(q.order_by(DrawerSession.id).limit(1))).first()
    if found is None:
        raise Conflict("the store's cash drawer is not open: open the till first, so the "
                       "refund reaches the day's Z report", code="drawer_closed",
                       field="drawer_session_id")
    return found


@dataclass(frozen=True)
class _RefundPlan:
    method: str  # the way the money goes back
    amount_cents: int
    source: str  # the payment method it comes from ("" for a choice)


def _paid_by_method(paid: dict[str, int]) -> list[tuple[str, int]]:
    rows = {m: v for m, v in paid.items() if m != POINTS_METHOD}
    known = [(m, rows.pop(m)) for m in _ORIGINAL_ORDER if m in rows]
    return known + sorted(rows.items())


async def _plan_refunds(uow: UnitOfWork, ctx: _Ctx, money: int, choice: str,
                        already: int = 0) -> list[_RefundPlan]:
    if money <= 0:
        return []
    if choice != "original":
        return [_RefundPlan(choice, money, "")]
    # The next `money` cents of the order's payments, after what was refunded before
    # (`already`: refunded earlier in this transaction).
    skip = ctx.order.refunded_cents + already
    plans: list[_RefundPlan] = []
    left = money
    for method, paid in _paid_by_method(ctx.paid):
        take = min(left, max(0, paid - skip))
        skip = max(0, skip - paid)
        if take > 0:
            plans.append(_RefundPlan(method, take, method))
            left -= take
        if left == 0:
            break
    if left > 0:
        raise Conflict("a refund cannot exceed what was paid", code="refund_exceeds_paid",
                       extra={"refundable_cents": money - left})
    return plans


@dataclass
class _Refunding:
    """How the goods came back: decides what a cash or card refund may become."""

    kind: str  # in_store | post
    location_id: int
    drawer_session_id: int | None
    terminal_confirmed: bool
    terminal_reference: str
    bank_account: BankAccountIn | None = None


async def _pay_out(uow: UnitOfWork, actor: Actor, ctx: _Ctx, ret: Return,
                   plans: list[_RefundPlan], how: _Refunding, settings: Settings,
                   now: datetime) -> tuple[list[Refund], int | None]:
    """Write the refunds; returns them and the drawer session they went into."""
    order = ctx.order
    out: list[Refund] = []
    drawer: DrawerSession | None = None

    async def at_till() -> DrawerSession:
        nonlocal drawer
        if drawer is None:
            drawer = await _open_drawer(uow, how.location_id, how.drawer_session_id)
        return drawer

    async def to_store_credit(amount: int, field: str) -> Refund:
        if order.customer_id is None:
            raise ValidationFailed("store credit needs a customer: attach the customer first",
                                   code="store_credit_needs_customer", field=field)
        card = await add_store_credit(uow, actor, order.customer_id, amount,
                                      valid_days=settings.gift_card_valid_days,
                                      order_id=order.id, return_id=ret.id,
                                      location_id=how.location_id,
                                      key=f"return:{ret.id}:store_credit", now=now)
        return await record_refund(uow, actor, order.id, "store_credit", amount,
                                   return_id=ret.id, gift_card_id=card.id,
                                   reference=masked_code(card.code),
                                   location_id=how.location_id, now=now)

    for i, p in enumerate(plans):
        # Paid with goods returned in an exchange: given back like cash.
        method = "cash" if p.method == "exchange" else p.method
        # A postal return of goods paid at a till: no terminal, no drawer at hand.
        if how.kind == "post" and (method == "cash" or (
                method == "card" and not (how.drawer_session_id and how.terminal_confirmed))):
            if settings.post_return_cash_refund == "store_credit" and order.customer_id:
                method = "store_credit"
            else:
                method = "bank_transfer"
        if method == "paytrail":
            txn = await paytrail_transaction_of(uow.session, order.id)
            if txn is None:
                raise Conflict("the order's Paytrail payment is not known",
                               code="paytrail_payment_missing")
            out.append(await record_refund(uow, actor, order.id, "paytrail", p.amount_cents,
                                           return_id=ret.id, status="due", reference=txn,
                                           now=now))
        elif method == "card":
            if not how.terminal_confirmed:
                raise ValidationFailed("refund the amount at the card terminal and confirm "
                                       "that it approved", code="card_not_confirmed",
                                       field="terminal_confirmed")
            d = await at_till()
            out.append(await record_refund(uow, actor, order.id, "card", p.amount_cents,
                                           return_id=ret.id,
                                           reference=how.terminal_reference.strip(),
                                           location_id=how.location_id,
                                           drawer_session_id=d.id, now=now))
        elif method == "cash":
            d = await at_till()
            # Only the amount handed over is rounded (Act 890/2000), never the refund.
            out.append(await record_refund(
                uow, actor, order.id, "cash", p.amount_cents, return_id=ret.id,
                rounding_cents=round_cash(p.amount_cents) - p.amount_cents,
                location_id=how.location_id, drawer_session_id=d.id, now=now))
        elif method in ("gift_card", "store_credit") and p.source == method:
            out.extend(await _back_onto_cards(uow, actor, ctx, ret, p, how, now))
        elif method == "store_credit":
            out.append(await to_store_credit(
                p.amount_cents, "refund_method" if p.source == "" else f"refunds.{i}"))
        elif method == "bank_transfer":
            if how.bank_account is None:
                if p.source in ("cash", "card") and order.customer_id is not None:
                    out.append(await to_store_credit(p.amount_cents, "bank_account"))
                    continue
                raise ValidationFailed(
                    "give the account the refund is paid to (holder and IBAN)",
                    code="bank_account_required", field="bank_account")
            ref = f"{how.bank_account.iban.replace(' ', '').upper()} {how.bank_account.holder}"
            out.append(await record_refund(uow, actor, order.id, "bank_transfer",
                                           p.amount_cents, return_id=ret.id, status="due",
                                           reference=ref[:100], location_id=how.location_id,
                                           now=now))
        else:
            raise Conflict(f"a payment by {method} cannot be refunded here; choose store "
                           "credit", code="refund_method_unavailable",
                           field="refund_method")
    return out, (drawer.id if drawer is not None else None)


async def _back_onto_cards(uow: UnitOfWork, actor: Actor, ctx: _Ctx, ret: Return,
                           p: _RefundPlan, how: _Refunding, now: datetime) -> list[Refund]:
    """Money paid from gift cards (or store credit) goes back onto those cards."""
    spent = (await uow.session.execute(
        select(GiftCardEntry.gift_card_id, func.sum(GiftCardEntry.amount_cents), GiftCard.code)
        .join(GiftCard, GiftCard.id == GiftCardEntry.gift_card_id)
        .where(GiftCardEntry.order_id == ctx.order.id, GiftCardEntry.kind == "spend",
               GiftCard.kind == p.source)
        .group_by(GiftCardEntry.gift_card_id, GiftCard.code)
        .order_by(GiftCardEntry.gift_card_id))).all()
    out: list[Refund] = []
    left = p.amount_cents
    for card_id, amount, code in spent:
        take = min(left, -int(amount))
        if take <= 0:
            continue
        await credit(uow, actor, int(card_id), take, kind="refund", order_id=ctx.order.id,
                     return_id=ret.id, location_id=how.location_id,
                     key=f"return:{ret.id}:card:{card_id}", now=now)
        out.append(await record_refund(uow, actor, ctx.order.id, p.source, take,
                                       return_id=ret.id, gift_card_id=int(card_id),
                                       reference=masked_code(str(code)),
                                       location_id=how.location_id, now=now))
        left -= take
        if left == 0:
            break
    if left:
        raise Conflict("the card that paid is not known; choose store credit",
                       code="refund_method_unavailable", field="refund_method")
    return out


async def _never_sent(uow: UnitOfWork, actor: Actor, ctx: _Ctx,
                      lines: list[ReturnLine]) -> dict[int, int]:
    """An endless-aisle line sent to the store for pickup (tills.aisle) returned before
    its transfer was sent: the units never left the shipping location's shelf. They come
    off the order's requested transfer through the transfer service (its hold released;
    the transfer cancelled when nothing is left) instead of onto the returning store's
    shelf. Line number → units taken off so (none for lines already on their way)."""
    wanted: dict[tuple[int, int], int] = {}
    for ln in lines:
        ol = ctx.lines[ln.line_no]
        if ol.taken_at_sale or ol.location_id is None or ol.location_id == ctx.order.location_id:
            continue
        key = (ol.variant_id, int(ol.location_id))
        wanted[key] = wanted.get(key, 0) + ln.quantity
    if not wanted or ctx.order.delivery_method != "pickup":
        return {}
    taken = await call_back_for_order(uow, actor, ctx.order.id, wanted, reason="returned")
    out: dict[int, int] = {}
    for ln in lines:  # what came off, shared among the lines in their order
        ol = ctx.lines[ln.line_no]
        key = (ol.variant_id, int(ol.location_id or 0))
        q = min(ln.quantity, taken.get(key, 0))
        if q > 0:
            out[ln.line_no] = q
            taken[key] -= q
    return out


def _not_shipped_from(ctx: _Ctx, line_no: int) -> int | None:
    """The location an endless-aisle home delivery's line ships from, while the order
    has not been shipped yet (None: the line is with the customer or on its way).
    Only a sale paid at a till: a web order still *paid* may have been shipped outside
    the system (lifecycle), so its goods are booked in where they are handed in."""
    ol = ctx.lines[line_no]
    order = ctx.order
    if (order.delivery_method != "home" or order.drawer_session_id is None
            or ol.taken_at_sale or ol.location_id is None
            or OrderStatus(order.status) not in OPEN_FULFILMENT):
        return None
    return int(ol.location_id)


def _held_at(ctx: _Ctx, line_no: int) -> int | None:
    """The pickup store holding a click & collect line for the order, while the order
    has not been handed over (None: not a line held so)."""
    ol = ctx.lines[line_no]
    order = ctx.order
    if (order.delivery_method != "pickup" or order.location_id is None or ol.taken_at_sale
            or OrderStatus(order.status) not in OPEN_FULFILMENT):
        return None
    return int(order.location_id)


async def _still_to_fulfil(s: AsyncSession, order_id: int) -> bool:
    """Whether the order has units still to hand over or send: a line not taken at the
    sale, not a gift card (a code, e-mailed), with units not returned."""
    found = await s.scalar(
        select(OrderLine.id).join(Variant, Variant.id == OrderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(OrderLine.order_id == order_id, OrderLine.taken_at_sale.is_(False),
               Product.gift_card.is_(False),
               OrderLine.quantity > OrderLine.returned_quantity).limit(1))
    return found is not None


async def _goods_back(uow: UnitOfWork, actor: Actor, ctx: _Ctx, ret: Return,
                      restock: dict[int, bool], reason: str) -> None:
    moves: list[Move] = []
    number = order_number(ctx.order.id)
    lines = list((await uow.session.scalars(select(ReturnLine)
                                            .where(ReturnLine.return_id == ret.id))).all())
    never_sent = await _never_sent(uow, actor, ctx, lines)
    for ln in lines:
        ok = restock.get(ln.line_no, ln.restock)
        if ok != ln.restock:
            ln.restock = ok
        quantity = ln.quantity - never_sent.get(ln.line_no, 0)
        if quantity > 0 and (store := _held_at(ctx, ln.line_no)) is not None:
            # A pickup's line returned before the handover: units held for the order at
            # the store never left its shelf; their hold is released instead of
            # booking them in again (what was not held any more comes back as usual).
            quantity -= await release_units(uow, number, ln.variant_id, store, quantity)
        if quantity <= 0:  # nothing came back here: it never left the sender / shelf
            continue
        if (still_there := _not_shipped_from(ctx, ln.line_no)) is not None:
            # An aisle home delivery's line returned before the order was shipped: the
            # units never left the shipping location (taken out of its stock at the
            # sale), so they go back on sale there, not onto the returning store's shelf.
            moves.append(Move(ln.variant_id, still_there, quantity, "return",
                              reason=(ln.reason or reason)[:200], reference=number,
                              order_id=ctx.order.id))
            continue
        moves.append(Move(ln.variant_id, int(ret.location_id or 0), quantity, "return",
                          reason=(ln.reason or reason)[:200], reference=number,
                          order_id=ctx.order.id))
        if not ok:
            moves.append(Move(ln.variant_id, int(ret.location_id or 0), -quantity,
                              "write_off", reason=f"damaged: {(ln.reason or reason)}"[:200],
                              reference=number, order_id=ctx.order.id))
    await apply_moves(uow, actor, moves)


async def _complete(uow: UnitOfWork, actor: Actor, ctx: _Ctx, ret: Return,
                    amounts: ReturnAmounts, complete: bool, how: _Refunding,
                    restock: dict[int, bool], settings: Settings, now: datetime,
                    exchanged: tuple[int, int] | None = None) -> None:
    """The goods are back at `how.location_id`: stock, refunds, points, order state.
    `exchanged`: (new order, cents) of the value that paid a new sale (an exchange,
    whose goods were booked in before the sale)."""
    ret.location_id = how.location_id
    if exchanged is None:
        await _goods_back(uow, actor, ctx, ret, restock, ret.reason)
    refunds: list[Refund] = []
    into_sale = 0
    drawer_id: int | None = None
    if exchanged is not None and exchanged[1] > 0:
        new_order, into_sale = exchanged
        d = await _open_drawer(uow, how.location_id, how.drawer_session_id)
        drawer_id = d.id
        refunds.append(await record_refund(
            uow, actor, ctx.order.id, "exchange", into_sale, return_id=ret.id,
            reference=order_number(new_order), location_id=how.location_id,
            drawer_session_id=d.id, now=now))
    plans = await _plan_refunds(uow, ctx, amounts.money_cents - into_sale, ret.refund_method,
                                into_sale)
    more, paid_from = await _pay_out(uow, actor, ctx, ret, plans, how, settings, now)
    refunds.extend(more)
    drawer_id = drawer_id or paid_from
    ret.refund_cents = sum(r.amount_cents for r in refunds)
    ret.drawer_session_id = drawer_id
    ret.status = "completed"
    ret.received_at = now
    ret.received_by = actor.label
    if drawer_id is not None:
        drawer = await uow.session.get(DrawerSession, drawer_id)  # loaded: no query
        assert drawer is not None
        ret.receipt_no = await next_receipt_no(uow, drawer.register_id)
    else:
        ret.receipt_no = f"R-{ret.id:06d}"
    order = ctx.order
    if order.customer_id is not None:  # points live only on a customer's orders
        await reverse_for_order(uow, order.id, amounts.goods_money_cents, "return",
                                key=f"reverse:return:{ret.id}", now=now, settings=settings)
        await give_back_points(uow, order.id, amounts.points, "return",
                               key=f"refund:return:{ret.id}", now=now, settings=settings)
    if complete:
        await transition(uow, order, OrderStatus.RETURNED, actor=actor,
                         data={"return_id": ret.id}, now=now)
    elif not (OrderStatus(order.status) in OPEN_FULFILMENT
              and await _still_to_fulfil(uow.session, order.id)):
        await transition(uow, order, OrderStatus.PARTLY_RETURNED, actor=actor,
                         data={"return_id": ret.id}, now=now)
    # else: fulfilment is kept apart from returns (an endless-aisle sale whose take-home
    # line came back while its other line waits to ship): the order keeps its
    # fulfilment status and stays in the queue with what is left to send or hand over;
    # the return itself is recorded, audited and announced as any other. A later
    # return once it is shipped or collected moves it on as usual.
    await uow.session.flush()
    uow.emit("return.completed", {
        "return_id": ret.id, "order_id": order.id, "customer_id": order.customer_id,
        "location_id": how.location_id, "kind": ret.kind, "refund_cents": ret.refund_cents,
        "refunds": [{"id": r.id, "method": r.method, "status": r.status,
                     "amount_cents": r.amount_cents} for r in refunds]})


async def _new_return(uow: UnitOfWork, actor: Actor, ctx: _Ctx, *, kind: str, channel: str,
                      status: str, refund_method: str, reason: str, note: str,
                      override_reason: str, location_id: int | None,
                      wanted: list[ReturnLineIn], amounts: ReturnAmounts,
                      idempotency_key: str | None, hashed: str | None,
                      now: datetime) -> Return:
    order = ctx.order
    ret = Return(order_id=order.id, customer_id=order.customer_id, code=new_return_code(),
                 status=status, kind=kind, channel=channel, location_id=location_id,
                 refund_method=refund_method, refund_cents=0, reason=reason.strip(),
                 note=note.strip(), override_reason=override_reason,
                 idempotency_key=idempotency_key, request_hash=hashed,
                 created_by=actor.label, created_at=now)
    uow.session.add(ret)
    await uow.session.flush()
    by_no = {a.line_no: a for a in amounts.lines}
    for w in wanted:
        ln = ctx.lines[w.line_no]
        a = by_no[w.line_no]
        uow.session.add(ReturnLine(
            return_id=ret.id, order_line_id=ln.id, line_no=ln.line_no,
            variant_id=ln.variant_id, sku=ln.sku, name=ln.name, quantity=w.quantity,
            refund_cents=a.value_cents, vat_rate_bp=ln.vat_rate_bp, vat_cents=a.vat_cents,
            reason=w.reason.strip(), restock=w.restock))
    await uow.session.flush()
    uow.emit("return.created", {"return_id": ret.id, "order_id": order.id,
                                "customer_id": order.customer_id, "kind": kind,
                                "status": status, "location_id": location_id})
    data: dict[str, Any] = {"return_id": ret.id, "lines": [
        {"line_no": w.line_no, "quantity": w.quantity, "restock": w.restock} for w in wanted],
        "reason": ret.reason}
    if override_reason:
        data["override_reason"] = override_reason
    if not actor.system:
        await audit(uow, actor, "return.override" if override_reason else "return.created",
                    "order", order.id, data)
    return ret


async def _replayed(uow: UnitOfWork, key: str | None, hashed: str) -> ReturnOut | None:
    if not key:
        return None
    found = (await uow.session.execute(
        select(Return.id, Return.request_hash).where(Return.idempotency_key == key))).first()
    if found is None:
        return None
    if found[1] != hashed:
        raise Conflict("this Idempotency-Key was used for a different request",
                       code="idempotency_key_reused")
    return await get_return(uow.session, int(found[0]))


async def create_return(uow: UnitOfWork, actor: Actor, order_id: int, cmd: ReturnIn, *,
                        channel: str = "pos", idempotency_key: str | None = None,
                        now: datetime | None = None,
                        settings: Settings | None = None) -> ReturnOut:
    """Take goods back at a store (or through the API) and refund them now.

    Raises 409 `return_exceeds_sold`, `return_window_closed`, `order_not_returnable`,
    `refund_exceeds_paid`, `drawer_closed` (cash/card with no open drawer),
    `idempotency_key_reused`; 422 `card_not_confirmed`, `store_credit_needs_customer`,
    `unknown_line`, `unknown_location`; 403 without `returns.create` at the location
    (or `returns.override` outside the window). A key seen before with the same body
    returns the first return unchanged."""
    out, _ = await _create_return(uow, actor, order_id, cmd, channel, idempotency_key, now,
                                  settings)
    return out


async def _open_in_store_return(uow: UnitOfWork, actor: Actor, order_id: int,
                                cmd: ReturnIn, channel: str, idempotency_key: str | None,
                                hashed: str, now: datetime, settings: Settings
                                ) -> tuple[_Ctx, Return, ReturnAmounts, bool]:
    """The checks and rows a return at a store starts with (a plain return and an
    exchange alike): the return row, its units taken, not yet refunded."""
    if not await _location_exists(uow, cmd.location_id):
        raise ValidationFailed(f"no location {cmd.location_id}", code="unknown_location",
                               field="location")
    ctx = await _context(uow, order_id, cmd.lines)
    override = await _check_window(uow, actor, ctx, cmd.override_reason, cmd.location_id,
                                   now, settings)
    amounts, complete = await _amounts(uow, ctx, cmd.lines, settings)
    await _take_units(uow, ctx, cmd.lines)
    ret = await _new_return(
        uow, actor, ctx, kind="in_store", channel=channel, status="requested",
        refund_method=cmd.refund_method, reason=cmd.reason, note=cmd.note,
        override_reason=override, location_id=cmd.location_id, wanted=cmd.lines,
        amounts=amounts, idempotency_key=idempotency_key, hashed=hashed, now=now)
    return ctx, ret, amounts, complete


async def _create_return(uow: UnitOfWork, actor: Actor, order_id: int, cmd: ReturnIn,
                         channel: str, idempotency_key: str | None, now: datetime | None,
                         settings: Settings | None) -> tuple[ReturnOut, bool]:
    settings = settings or get_settings()
    actor.require("returns.create", cmd.location_id)
    hashed = request_hash(order_id, cmd)
    seen = await _replayed(uow, idempotency_key, hashed)
    if seen is not None:
        return seen, True
    now = now or utcnow()
    ctx, ret, amounts, complete = await _open_in_store_return(
        uow, actor, order_id, cmd, channel, idempotency_key, hashed, now, settings)
    how = _Refunding("in_store", cmd.location_id, cmd.drawer_session_id,
                     cmd.terminal_confirmed, cmd.terminal_reference)
    await _complete(uow, actor, ctx, ret, amounts, complete, how,
                    {w.line_no: w.restock for w in cmd.lines}, settings, now)
    return await get_return(uow.session, ret.id), False


async def take_return(db: Database, actor: Actor, order_id: int, cmd: ReturnIn, *,
                      channel: str = "pos", idempotency_key: str | None = None,
                      settings: Settings | None = None) -> tuple[ReturnOut, bool]:
    """`create_return` in its own transaction, committed. Returns (return, replayed):
    replayed when the key was seen before (also when a concurrent twin won)."""
    try:
        async with db.uow() as uow:
            out, replayed = await _create_return(uow, actor, order_id, cmd, channel,
                                                 idempotency_key, None, settings)
            if not replayed:
                await uow.commit()
            return out, replayed
    except IntegrityError:
        if not idempotency_key:
            raise
        async with db.uow() as uow:
            seen = await _replayed(uow, idempotency_key, request_hash(order_id, cmd))
        if seen is None:
            raise
        return seen, True


async def request_post_return(uow: UnitOfWork, actor: Actor, order_id: int,
                              cmd: PostReturnIn, *, channel: str = "web",
                              customer_id: int | None = None,
                              idempotency_key: str | None = None,
                              now: datetime | None = None,
                              settings: Settings | None = None) -> ReturnOut:
    """Start a return whose goods come by post (the shopper from the account page, or
    the service desk for them). The units are set aside at once (two requests cannot
    both return them); the refund goes out when the parcel is received
    (`receive_post_return`). `customer_id`: the shopper acting for themselves, who
    must own the order; staff need `returns.create`. Returns the return with its
    `code` (the label's QR)."""
    settings = settings or get_settings()
    if customer_id is None:
        actor.require("returns.create")
    hashed = request_hash(order_id, cmd)
    seen = await _replayed(uow, idempotency_key, hashed)
    if seen is not None:
        return seen
    now = now or utcnow()
    ctx = await _context(uow, order_id, cmd.lines)
    if customer_id is not None and ctx.order.customer_id != customer_id:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    await _check_window(uow, actor, ctx, "", None, now, settings)
    amounts, _ = await _amounts(uow, ctx, cmd.lines, settings)
    await _take_units(uow, ctx, cmd.lines)
    note = cmd.note.strip()
    if cmd.bank_account is not None:
        note = (f"{note}\n" if note else "") + (
            f"IBAN {cmd.bank_account.iban.replace(' ', '').upper()} "
            f"{cmd.bank_account.holder.strip()}")
    ret = await _new_return(
        uow, actor, ctx, kind="post", channel=channel, status="requested",
        refund_method=cmd.refund_method, reason=cmd.reason, note=note[:500],
        override_reason="", location_id=None, wanted=cmd.lines, amounts=amounts,
        idempotency_key=idempotency_key, hashed=hashed, now=now)
    return await get_return(uow.session, ret.id)


def _bank_account_of(note: str) -> BankAccountIn | None:
    for row in note.splitlines():
        if row.startswith("IBAN "):
            _, iban, *holder = row.split(" ")
            return BankAccountIn(iban=iban, holder=" ".join(holder) or "-")
    return None


async def receive_post_return(uow: UnitOfWork, actor: Actor, code: str, cmd: ReceiveIn, *,
                              now: datetime | None = None,
                              settings: Settings | None = None) -> ReturnOut:
    """The parcel of a postal return arrived at `cmd.location_id` and was inspected:
    the goods go back on the shelf (or are written off, per `cmd.lines`) and the refund
    goes out. Receiving it twice returns the completed return unchanged. The window is
    judged when the return was requested, not when the parcel arrives."""
    settings = settings or get_settings()
    actor.require("returns.create", cmd.location_id)
    ret = await uow.session.scalar(
        select(Return).where(Return.code == code.strip().upper())
        .execution_options(populate_existing=True))
    if ret is None or ret.kind != "post":
        raise NotFound("no postal return with this code", code="return_not_found",
                       field="code")
    if ret.status == "completed":
        return await get_return(uow.session, ret.id)
    if ret.status != "requested":
        raise Conflict(f"this return is {ret.status}", code="return_not_open")
    if not await _location_exists(uow, cmd.location_id):
        raise ValidationFailed(f"no location {cmd.location_id}", code="unknown_location",
                               field="location")
    now = now or utcnow()
    order = await _lock_order(uow, ret.order_id)
    moved = await uow.session.execute(
        update(Return).where(Return.id == ret.id, Return.status == "requested")
        .values(status="receiving").execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        raise Conflict("this return was received a moment ago", code="return_not_open")
    _, kind = await _channel_cached(uow, order)
    lines = {ln.line_no: ln for ln in (await uow.session.scalars(
        select(OrderLine).where(OrderLine.order_id == order.id)
        .execution_options(populate_existing=True))).all()}
    ctx = _Ctx(order, kind, lines, await _paid_of(uow.session, order.id))
    rlines = (await uow.session.scalars(select(ReturnLine)
                                        .where(ReturnLine.return_id == ret.id))).all()
    # The units of this return were set aside at the request: the amounts are those
    # of returning them on top of what was returned before them.
    taking = [ReturnLineIn(line_no=r.line_no, quantity=r.quantity) for r in rlines]
    amounts, complete = await _amounts(uow, ctx, taking, settings,
                                       {r.line_no: r.quantity for r in rlines})
    inspected = {ln.line_no: ln.restock for ln in cmd.lines}
    how = _Refunding("post", cmd.location_id, cmd.drawer_session_id, cmd.terminal_confirmed,
                     cmd.terminal_reference, _bank_account_of(ret.note))
    await _complete(uow, actor, ctx, ret, amounts, complete, how, inspected, settings, now)
    return await get_return(uow.session, ret.id)


async def cancel_post_return(uow: UnitOfWork, actor: Actor, code: str, *,
                             customer_id: int | None = None) -> ReturnOut:
    """A postal return that will not come after all: its units are returnable again."""
    if customer_id is None:
        actor.require("returns.create")
    ret = await uow.session.scalar(select(Return).where(Return.code == code.strip().upper()))
    if ret is None or (customer_id is not None and ret.customer_id != customer_id):
        raise NotFound("no return with this code", code="return_not_found", field="code")
    moved = await uow.session.execute(
        update(Return).where(Return.id == ret.id, Return.status == "requested")
        .values(status="cancelled").execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        raise Conflict(f"this return is {ret.status}", code="return_not_open")
    for r in (await uow.session.scalars(select(ReturnLine)
                                        .where(ReturnLine.return_id == ret.id))).all():
        await uow.session.execute(
            update(OrderLine).where(OrderLine.id == r.order_line_id)
            .values(returned_quantity=OrderLine.returned_quantity - r.quantity)
            .execution_options(synchronize_session=False))
    await uow.session.refresh(ret)
    uow.emit("return.cancelled", {"return_id": ret.id, "order_id": ret.order_id,
                                  "customer_id": ret.customer_id})
    if not actor.system:
        await audit(uow, actor, "return.cancelled", "order", ret.order_id,
                    {"return_id": ret.id})
    return await get_return(uow.session, ret.id)


# --- exchanges --------------------------------------------------------------------------

class ExchangeOut(BaseModel):
    """An exchange at the till: the return and the new sale, made in one transaction."""

    return_: ReturnOut = Field(alias="return")
    sale: OrderOut
    # Positive: the customer paid the difference; negative: it was refunded to them.
    difference_cents: int

    model_config = {"populate_by_name": True}


def _exchange_hash(order_id: int, cmd: ReturnIn, sale: TillSaleIn) -> str:
    return hashlib.sha256(
        f"{order_id}:{cmd.model_dump_json()}:{sale.model_dump_json()}".encode()).hexdigest()


def exchange_key(location_id: int, sale_key: str) -> str:
    return f"exchange:{location_id}:{sale_key}"


async def _exchange_replayed(uow: UnitOfWork, key: str, hashed: str) -> ExchangeOut | None:
    found = (await uow.session.execute(
        select(Return.id, Return.request_hash, Return.exchange_order_id)
        .where(Return.idempotency_key == key))).first()
    if found is None:
        return None
    if found[1] != hashed:
        raise Conflict("this sale key was used for a different exchange",
                       code="idempotency_key_reused")
    ret = await get_return(uow.session, int(found[0]))
    assert found[2] is not None  # an exchange's return names its sale
    sale = await get_order(uow.session, int(found[2]))
    return ExchangeOut(return_=ret, sale=sale,
                       difference_cents=sale.total_cents - ret.refund_cents)


async def exchange(uow: UnitOfWork, actor: Actor, order_id: int, cmd: ReturnIn,
                   sale: TillSaleIn, *, terminal: CardTerminal | None = None,
                   channel: str = "pos", now: datetime | None = None,
                   settings: Settings | None = None) -> ExchangeOut:
    """Take goods of `order_id` back at the till and sell new ones in the same
    transaction. The returned value pays the new sale first (an `exchange` payment on
    it, an `exchange` refund on the return, both in the till's drawer session); the
    customer pays the rest with `sale.payments`, or, when the new goods cost less, the
    difference is refunded by `cmd.refund_method`. `sale.expected_total_cents` is
    required (the total the till shows); when the returned value covers it, no
    payments are needed (any given are ignored). Idempotent on the sale's key.

    Everything `create_return` and `tills.sales.sell` refuse, this refuses, and
    nothing of either is written."""
    settings = settings or get_settings()
    actor.require("returns.create", cmd.location_id)
    if sale.expected_total_cents is None:
        raise ValidationFailed("give the total the till shows for the new goods",
                               code="expected_total_required", field="expected_total_cents")
    key = exchange_key(cmd.location_id, sale.key)
    hashed = _exchange_hash(order_id, cmd, sale)
    seen = await _exchange_replayed(uow, key, hashed)
    if seen is not None:
        return seen
    now = now or utcnow()
    ctx, ret, amounts, complete = await _open_in_store_return(
        uow, actor, order_id, cmd, channel, key, hashed, now, settings)
    # The goods back first: stock rows before the register's receipt number, which the
    # sale takes last (tills.receipts), as every sale orders its locks.
    await _goods_back(uow, actor, ctx, ret, {w.line_no: w.restock for w in cmd.lines},
                      ret.reason)
    credit = amounts.money_cents
    if credit >= sale.expected_total_cents:
        sale = sale.model_copy(update={"payments": []})
    new = await sell_in_exchange(uow, actor, cmd.location_id, sale, credit, terminal,
                                 settings=settings)
    into_sale = min(credit, new.total_cents)
    ret.exchange_order_id = new.id
    how = _Refunding("in_store", cmd.location_id, sale.session_id, cmd.terminal_confirmed,
                     cmd.terminal_reference)
    await _complete(uow, actor, ctx, ret, amounts, complete, how,
                    {w.line_no: w.restock for w in cmd.lines}, settings, now,
                    exchanged=(new.id, into_sale))
    out = await get_return(uow.session, ret.id)
    return ExchangeOut(return_=out, sale=new,
                       difference_cents=new.total_cents - credit)


async def take_exchange(db: Database, actor: Actor, order_id: int, cmd: ReturnIn,
                        sale: TillSaleIn, *, terminal: CardTerminal | None = None,
                        channel: str = "pos", settings: Settings | None = None
                        ) -> tuple[ExchangeOut, bool]:
    """`exchange` in its own transaction, committed. Returns (exchange, replayed)."""
    key = exchange_key(cmd.location_id, sale.key)
    hashed = _exchange_hash(order_id, cmd, sale)
    try:
        async with db.uow() as uow:
            seen = await _exchange_replayed(uow, key, hashed)
            if seen is not None:
                return seen, True
            out = await exchange(uow, actor, order_id, cmd, sale, terminal=terminal,
                                 channel=channel, settings=settings)
            await uow.commit()
            return out, False
    except IntegrityError:
        async with db.uow() as uow:
            seen = await _exchange_replayed(uow, key, hashed)
        if seen is None:
            raise
        return seen, True


async def email_credit_receipt(uow: UnitOfWork, return_id: int, to: str, *,
                               lang: str = "", settings: Settings | None = None) -> int:
    """Queue the return's credit receipt to `to` (in the caller's transaction: sent if
    and only if it commits). Returns the mail's id."""
    settings = settings or get_settings()
    receipt = await credit_receipt(uow.session, return_id, settings)
    mail = credit_receipt_mail(receipt, settings=settings, lang=lang)
    return await queue_mail(uow, kind="credit_receipt", to=to, subject=mail.subject,
                            text=mail.text, html=mail.html,
                            reference=f"return:{return_id}")
