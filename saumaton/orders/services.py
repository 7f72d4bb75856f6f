"""The one order book. Every channel places orders through `place_order`.

Placing an order, in one transaction: resolve each line's price with the one
pricing function, freeze price, discount and VAT on the line, take the stock
(strictly for remote channels, unconditionally for a sale in the store), settle
any payments, write the order and its events. An Idempotency-Key makes a retry
return the first result instead of selling twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.codes import clean_ean
from saumaton.catalogue.models import VariantBarcode
from saumaton.catalogue.services import VariantInfo, load_variant_infos, load_variant_infos_pg
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, OutOfStock, ValidationFailed
from saumaton.customers.buyers import buyer_id
from saumaton.db.uow import Database, UnitOfWork
from saumaton.giftcards.sales import SoldLine, issue_sold_cards, spend_payments
from saumaton.inventory.services import Move, apply_moves
from saumaton.locations.models import Channel, Location
from saumaton.locations.services import channel_by_code, web_fulfilment_locations
from saumaton.loyalty.ledger import earn_for_order
from saumaton.loyalty.tiers import tier_of
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.quote import price_lines
from saumaton.orders.schemas import (
    DeliveryOut,
    OrderIn,
    OrderLineOut,
    OrderOut,
    OrderRefundOut,
    PaymentOut,
    VatLine,
)
from saumaton.orders.writer import (
    LineRecord,
    OrderRecord,
    PaymentRecord,
    write_lines_payments,
    write_order,
)
from saumaton.payments.models import Payment, Refund
from saumaton.payments.services import BALANCE_METHODS, plan_payments
from saumaton.pricing.bundles import load_bundles, load_bundles_pg
from saumaton.pricing.models import Campaign
from saumaton.pricing.services import resolve_prices, resolve_prices_pg
from saumaton.tills.receipts import assign_receipt_no


def business_day(at: datetime) -> date:
    """The calendar day in the shop's time zone: VAT rates change at local midnight."""
    return at.astimezone(ZoneInfo(get_settings().timezone)).date()


def request_fingerprint(cmd: OrderIn) -> str:
    return hashlib.sha256(cmd.model_dump_json().encode()).hexdigest()


# Channels are reference rows read by every sale; each process keeps them this long.
CHANNEL_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class _ChannelRef:
    id: int
    code: str
    kind: str
    location_id: int | None


async def _channel(uow: UnitOfWork, code: str) -> _ChannelRef:
    async def load() -> _ChannelRef:
        ch = await channel_by_code(uow.session, code)  # unknown: raises, not cached
        return _ChannelRef(ch.id, ch.code, ch.kind, ch.location_id)
    return await uow.db.cached(("channel", code), CHANNEL_CACHE_SECONDS, load)


# PostgreSQL hot path: prepared statements on the driver (see UnitOfWork.driver).
_PG_KEY_SQL = "SELECT id, request_hash FROM orders WHERE idempotency_key = $1"


async def place_order(db: Database, actor: Actor, cmd: OrderIn,
                      idempotency_key: str | None = None, *,
                      settings: Settings | None = None) -> tuple[OrderOut, bool]:
    """Place an order. Returns (order, replayed): replayed is True when the key was
    seen before and the stored order is returned unchanged."""
    fingerprint = request_fingerprint(cmd)
    if idempotency_key and not db.is_postgres:
        async with db.reader() as s:
            existing = await _replay(s, actor, idempotency_key, fingerprint)
            if existing is not None:
                return existing, True
    try:
        async with db.uow() as uow:
            if idempotency_key and db.is_postgres:
                # The same check as on SQLite, as the transaction's first statement
                # (saves a second connection and two round trips).
                row = await uow.fetchrow(_PG_KEY_SQL, idempotency_key)
                if row is not None:
                    return await _replayed(uow.session, actor, row[0], row[1], fingerprint), True
            out = await _place(uow, actor, cmd, idempotency_key, fingerprint,
                               settings or get_settings())
            await uow.commit()
            return out, False
    except IntegrityError:
        # A concurrent request with the same key won the race; return its order.
        if not idempotency_key:
            raise
        async with db.reader() as s:
            existing = await _replay(s, actor, idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing, True


async def _replay(s: AsyncSession, actor: Actor, key: str,
                  fingerprint: str) -> OrderOut | None:
    row = (await s.execute(
        select(Order.id, Order.request_hash).where(Order.idempotency_key == key)
    )).first()
    if row is None:
        return None
    return await _replayed(s, actor, row[0], row[1], fingerprint)


async def _replayed(s: AsyncSession, actor: Actor, order_id: int, request_hash: str | None,
                    fingerprint: str) -> OrderOut:
    # The caller must be one who could have placed this order and may read it: a key
    # alone never hands another store's order over (issue 14, F3; GET /orders/{id}
    # checks the same).
    out = await get_order(s, order_id)
    if not (actor.can("orders.create", out.location_id,
                      everywhere=out.location_id is None)
            and actor.can("orders.read", out.location_id)):
        raise Forbidden("this Idempotency-Key belongs to an order you may not read",
                        code="forbidden")
    if request_hash != fingerprint:
        raise Conflict("this Idempotency-Key was used for a different request",
                       code="idempotency_key_reused")
    return out


async def _place(uow: UnitOfWork, actor: Actor, cmd: OrderIn, key: str | None,
                 fingerprint: str, settings: Settings) -> OrderOut:
    """Place the order in `uow`; returns it as `get_order` would read it back."""
    s = uow.session
    now = utcnow()
    channel = await _channel(uow, cmd.channel)
    in_store = channel.kind == "pos"
    if in_store:
        location_id = cmd.location_id or channel.location_id
        if channel.location_id is not None and location_id != channel.location_id:
            raise ValidationFailed("a POS channel sells only at its own store",
                                   code="wrong_location", field="location_id")
        if location_id is None:
            raise ValidationFailed("a store sale needs a location", code="location_required",
                                   field="location_id")
        actor.require("orders.create", location_id)
        candidates = [location_id]
    else:
        if cmd.drawer_session_id is not None:
            raise ValidationFailed("only a store sale goes into a cash drawer",
                                   code="not_a_store_sale", field="drawer_session_id")
        actor.require("orders.create", cmd.location_id,
                      everywhere=cmd.location_id is None)
        location_id = cmd.location_id
        if location_id is not None:
            if await s.get(Location, location_id) is None:
                raise ValidationFailed(f"no location {location_id}", code="unknown_location",
                                       field="location_id")
            candidates = [location_id]
        else:
            candidates = await web_fulfilment_locations(s)
            if not candidates:
                raise OutOfStock("no location ships web orders", code="no_fulfilment_location")
    tier = None
    if cmd.customer_id is not None:  # a merged customer's kept record; their member prices
        buyer = await buyer_id(s, cmd.customer_id)
        if buyer != cmd.customer_id:
            cmd = cmd.model_copy(update={"customer_id": buyer})
        tier = await tier_of(s, buyer, now, settings=settings)

    infos = await _variants_for(s, cmd, business_day(now), uow)
    distinct = list({i.id: i for i in infos}.values())
    if uow.db.is_postgres:  # the same lookup as a prepared statement on the driver
        quotes = await resolve_prices_pg(uow, distinct, channel.id, now, tier)
    else:
        quotes = await resolve_prices(s, distinct, channel.id, now, tier)

    # The one line-pricing function, shared with quote_order (POS cart, basket).
    bundles = (await load_bundles_pg(uow, distinct, channel.id, now, tier)
               if uow.db.is_postgres else await load_bundles(s, distinct, channel.id, now, tier))
    priced = price_lines(channel.code, infos, [ln.quantity for ln in cmd.lines], quotes,
                         bundles)
    subtotal, discount = priced.subtotal_cents, priced.discount_cents
    total, vat = priced.total_cents, priced.vat_cents
    line_rows: list[dict[str, Any]] = [{
        "line_no": ln.line_no, "variant_id": ln.variant_id, "location_id": None,
        "sku": ln.sku, "name": ln.name, "quantity": ln.quantity,
        "unit_price_cents": ln.unit_price_cents, "discount_cents": ln.discount_cents,
        "total_cents": ln.total_cents, "vat_rate_bp": ln.vat_rate_bp,
        "vat_cents": ln.vat_cents, "campaign_id": ln.campaign_id, "source": src.source,
    } for ln, src in zip(priced.lines, cmd.lines, strict=True)]
    # Gift card lines: no stock moves; each unit issues a card once the order is paid.
    gift_lines = {ln.line_no for ln, info in zip(priced.lines, infos, strict=True)
                  if info.gift_card}
    planned = plan_payments(total, cmd.payments)
    paid = sum(p.amount_cents for p in planned)
    if planned and paid == total:
        status = "completed" if in_store else "paid"
    else:
        status = "pending"

    # The idempotency key is unique: a concurrent duplicate fails here, before any stock moves.
    record = OrderRecord(
        channel_id=channel.id, location_id=location_id, customer_id=cmd.customer_id,
        status=status, subtotal_cents=subtotal, discount_cents=discount, total_cents=total,
        vat_cents=vat, paid_cents=paid, idempotency_key=key,
        request_hash=fingerprint if key else None, created_by=actor.label, created_at=now,
        drawer_session_id=cmd.drawer_session_id)
    pays = [PaymentRecord(p.method, p.amount_cents, "captured", p.rounding_cents,
                          p.tendered_cents, p.change_cents, p.reference) for p in planned]
    event = {"channel": channel.code}
    if in_store:  # its lines' location is known before any stock moves: one statement
        for r in line_rows:
            r["location_id"] = candidates[0]
        order_id, drawer_id = await write_order(
            uow, record, [LineRecord(**r) for r in line_rows], pays, find_drawer=True,
            event=event)
    else:
        order_id, drawer_id = await write_order(uow, record, [], [], event=event)
    reference = order_number(order_id)

    if in_store:
        # The item is in the cashier's hand: never refuse; a negative level gets flagged.
        await apply_moves(uow, actor, [
            Move(r["variant_id"], candidates[0], -r["quantity"], "sale",
                 reference=reference, order_id=order_id) for r in line_rows
            if r["line_no"] not in gift_lines])
    else:
        # Remote sale: each line from the first location that has it, never below zero.
        for r in sorted(line_rows, key=lambda r: r["variant_id"]):
            if r["line_no"] in gift_lines:
                continue
            for loc in candidates:
                try:
                    await apply_moves(uow, actor, [Move(
                        r["variant_id"], loc, -r["quantity"], "sale", strict=True,
                        reference=reference, order_id=order_id)])
                except OutOfStock:
                    continue
                r["location_id"] = loc
                break
            else:
                raise OutOfStock(f"{r['name']} is out of stock",
                                 field=f"lines.{r['line_no'] - 1}",
                                 extra={"variant_id": r["variant_id"]})
        await write_lines_payments(uow, order_id, [LineRecord(**r) for r in line_rows],
                                   pays, location_id=location_id, at=now)
    if any(p.method in BALANCE_METHODS for p in planned):
        await spend_payments(uow, actor, order_id, cmd.customer_id, planned,
                             location_id=location_id)
    if gift_lines and status != "pending":
        await issue_sold_cards(uow, actor, order_id, [
            SoldLine(r["line_no"], r["quantity"], r["total_cents"]) for r in line_rows
            if r["line_no"] in gift_lines], location_id=location_id, settings=settings)
    if cmd.customer_id is not None and status != "pending":  # paid: loyalty points
        await earn_for_order(uow, order_id, now, settings=settings)
    # Last: the register's row stays locked until the commit (see tills.receipts).
    receipt_no = (await assign_receipt_no(uow, order_id, drawer_id)
                  if drawer_id is not None else "")
    # What was just written, as get_order() would read it back (no extra round trips).
    lines = [OrderLineOut(
        line_no=r["line_no"], variant_id=r["variant_id"], location_id=r["location_id"],
        sku=r["sku"], name=r["name"], quantity=r["quantity"],
        unit_price_cents=r["unit_price_cents"], discount_cents=r["discount_cents"],
        total_cents=r["total_cents"], vat_rate_bp=r["vat_rate_bp"], vat_cents=r["vat_cents"],
        campaign_id=r["campaign_id"], campaign_name=ln.campaign_name,
    ) for r, ln in zip(line_rows, priced.lines, strict=True)]
    payments = [PaymentOut(
        method=p.method, amount_cents=p.amount_cents, rounding_cents=p.rounding_cents,
        tendered_cents=p.tendered_cents, change_cents=p.change_cents, reference=p.reference,
    ) for p in planned]
    return OrderOut(
        id=order_id, number=reference, channel=channel.code, location_id=location_id,
        customer_id=cmd.customer_id, status=status, currency="EUR", subtotal_cents=subtotal,
        discount_cents=discount, total_cents=total, vat_cents=vat, paid_cents=paid,
        lines=lines, payments=payments, vat_breakdown=vat_breakdown(lines), created_at=now,
        created_by=actor.label, drawer_session_id=drawer_id, receipt_no=receipt_no,
    )


async def _variants_for(s: AsyncSession, cmd: OrderIn, day: date,
                        uow: UnitOfWork | None = None) -> list[VariantInfo]:
    """One VariantInfo per line, in line order, refusing unknown or inactive ones.
    Given a unit of work on PostgreSQL, looks them up with a prepared statement inside
    its transaction (`s` is then unused)."""
    ids = [ln.variant_id for ln in cmd.lines if ln.variant_id is not None]
    cleaned = {i: clean_ean(ln.ean, f"lines.{i}.ean") for i, ln in enumerate(cmd.lines)
               if ln.ean}  # each EAN checked once (the check is not free)
    if uow is not None and uow.db.is_postgres:
        found = await load_variant_infos_pg(uow, day, ids=ids, eans=list(cleaned.values()))
    else:
        found = await load_variant_infos(s, day, ids=ids, eans=list(cleaned.values()))
    by_id = {i.id: i for i in found}
    by_ean = {i.ean: i for i in found if i.ean}
    further = [e for e in cleaned.values() if e not in by_ean]
    if further:  # a variant's further barcode (a supplier's code, an old packaging's EAN)
        session = uow.session if uow is not None else s
        owners = dict((await session.execute(
            select(VariantBarcode.code, VariantBarcode.variant_id)
            .where(VariantBarcode.code.in_(further)))).all())
        if owners:
            extra = {i.id: i for i in await load_variant_infos(session, day,
                                                                ids=set(owners.values()))}
            by_ean.update({code: extra[vid] for code, vid in owners.items() if vid in extra})
    out = []
    for i, ln in enumerate(cmd.lines):
        info = by_id.get(ln.variant_id) if ln.variant_id else by_ean.get(
            cleaned[i] if i in cleaned else clean_ean(ln.ean or ""))
        if info is None:
            raise ValidationFailed(f"line {i + 1}: unknown product", code="unknown_variant",
                                   field=f"lines.{i}")
        if not info.active:
            raise ValidationFailed(f"line {i + 1}: {info.name} is not for sale",
                                   code="variant_inactive", field=f"lines.{i}")
        out.append(info)
    return out


def vat_breakdown(lines: list[OrderLineOut], delivery: DeliveryOut | None = None
                  ) -> list[VatLine]:
    by_rate: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ln in lines:
        by_rate[ln.vat_rate_bp][0] += ln.total_cents
        by_rate[ln.vat_rate_bp][1] += ln.vat_cents
    if delivery is not None and delivery.fee_cents:
        by_rate[delivery.vat_rate_bp][0] += delivery.fee_cents
        by_rate[delivery.vat_rate_bp][1] += delivery.vat_cents
    return [VatLine(rate_bp=r, gross_cents=g, vat_cents=v, net_cents=g - v)
            for r, (g, v) in sorted(by_rate.items(), reverse=True)]


async def get_order(s: AsyncSession, order_id: int) -> OrderOut:
    found = await _orders_out(s, [order_id])
    if not found:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    return found[0]


async def _orders_out(s: AsyncSession, order_ids: list[int]) -> list[OrderOut]:
    """Orders with their lines and payments in three queries, in the given order."""
    if not order_ids:
        return []
    rows = (await s.execute(
        select(Order, Channel.code).join(Channel, Channel.id == Order.channel_id)
        .where(Order.id.in_(order_ids))
    )).all()
    lines: dict[int, list[OrderLineOut]] = defaultdict(list)
    for ln, campaign_name in (await s.execute(
        select(OrderLine, Campaign.name)
        .outerjoin(Campaign, Campaign.id == OrderLine.campaign_id)
        .where(OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.line_no)
    )).all():
        lines[ln.order_id].append(OrderLineOut(
            line_no=ln.line_no, variant_id=ln.variant_id, location_id=ln.location_id,
            sku=ln.sku, name=ln.name, quantity=ln.quantity,
            unit_price_cents=ln.unit_price_cents, discount_cents=ln.discount_cents,
            total_cents=ln.total_cents, vat_rate_bp=ln.vat_rate_bp, vat_cents=ln.vat_cents,
            campaign_id=ln.campaign_id, campaign_name=campaign_name,
            manual_discount_cents=ln.manual_discount_cents,
            discount_reason=ln.discount_reason, returned_quantity=ln.returned_quantity,
            taken_at_sale=ln.taken_at_sale, source=ln.source))
    payments: dict[int, list[PaymentOut]] = defaultdict(list)
    for p in (await s.scalars(
        select(Payment).where(Payment.order_id.in_(order_ids)).order_by(Payment.id)
    )).all():
        payments[p.order_id].append(PaymentOut(
            method=p.method, amount_cents=p.amount_cents, rounding_cents=p.rounding_cents,
            tendered_cents=p.tendered_cents, change_cents=p.change_cents,
            reference=p.reference, status=p.status))
    refunds: dict[int, list[OrderRefundOut]] = defaultdict(list)
    if any(order.refunded_cents for order, _ in rows):
        for r in (await s.scalars(
            select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id)
        )).all():
            refunds[r.order_id].append(OrderRefundOut(
                id=r.id, return_id=r.return_id, method=r.method, status=r.status,
                amount_cents=r.amount_cents, created_at=r.created_at))
    by_id = {}
    for order, channel_code in rows:
        ls = lines[order.id]
        delivery = None if order.delivery_method is None else DeliveryOut(
            method=order.delivery_method, fee_cents=order.delivery_fee_cents,
            vat_rate_bp=order.delivery_vat_rate_bp, vat_cents=order.delivery_vat_cents,
            address=order.shipping_address)
        by_id[order.id] = OrderOut(
            id=order.id, number=order_number(order.id), channel=channel_code,
            location_id=order.location_id, customer_id=order.customer_id,
            status=order.status, currency=order.currency,
            subtotal_cents=order.subtotal_cents, discount_cents=order.discount_cents,
            total_cents=order.total_cents, vat_cents=order.vat_cents,
            paid_cents=order.paid_cents, lines=ls, payments=payments[order.id],
            vat_breakdown=vat_breakdown(ls, delivery), created_at=order.created_at,
            created_by=order.created_by, email=order.email, phone=order.phone,
            language=order.language, delivery=delivery, payment_due_at=order.payment_due_at,
            drawer_session_id=order.drawer_session_id, offline=order.offline,
            sold_at=order.sold_at, client_ref=order.client_ref, receipt_no=order.receipt_no,
            flags=order.flags.split(), discount_reason=order.discount_reason,
            collected_at=order.collected_at, collected_by=order.collected_by,
            ready_at=order.ready_at, packed_at=order.packed_at, shipped_at=order.shipped_at,
            carrier=order.carrier, tracking_number=order.tracking_number,
            pickup_reminded_at=order.pickup_reminded_at,
            refunded_cents=order.refunded_cents, refunds=refunds[order.id],
        )
    return [by_id[i] for i in order_ids if i in by_id]


def order_number(order_id: int) -> str:
    return f"{order_id:06d}"


async def list_orders(s: AsyncSession, actor: Actor, *, channel: str | None = None,
                      location_id: int | None = None, customer_id: int | None = None,
                      limit: int = 50, before_id: int | None = None,
                      status: str | None = None, delivery_method: str | None = None,
                      created_from: datetime | None = None,
                      created_before: datetime | None = None) -> list[OrderOut]:
    """Newest first. Staff whose read access is limited to some stores see only
    those stores' orders unless they name a location they may read."""
    actor.require("orders.read", location_id)
    q = select(Order.id).order_by(Order.id.desc()).limit(limit)
    if channel:
        q = q.join(Channel, Channel.id == Order.channel_id).where(Channel.code == channel)
    if location_id is not None:
        q = q.where(Order.location_id == location_id)
    elif not actor.can("orders.read", everywhere=True):
        readable = [g.location_id for g in actor.grants
                    if g.location_id is not None
                    and actor.can("orders.read", g.location_id)]
        q = q.where(Order.location_id.in_(readable))
    if customer_id is not None:
        q = q.where(Order.customer_id == customer_id)
    if before_id is not None:
        q = q.where(Order.id < before_id)
    if status is not None:
        q = q.where(Order.status == status)
    if delivery_method == "store":  # a sale in the store
        q = q.where(Order.delivery_method.is_(None))
    elif delivery_method is not None:
        q = q.where(Order.delivery_method == delivery_method)
    if created_from is not None:
        q = q.where(Order.created_at >= created_from)
    if created_before is not None:
        q = q.where(Order.created_at < created_before)
    return await _orders_out(s, list((await s.scalars(q)).all()))



# The web checkout's fast path (checkout.placing) looks up the channel and the lines'
# variants as the order book does.
channel_ref = _channel
variants_for = _variants_for
