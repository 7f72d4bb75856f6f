"""Placing a web order as the checkout page does it; its Paytrail payment starts after
the order's commit (`checkout.services.start_payment_in`).

`place_checkout` takes the PostgreSQL fast path when it can, else the portable one
(`checkout.services.place_web_order_in`).

The fast path: a pending order in a handful of round trips (docs/architecture.md,
"Placing a web order"). One statement reads what the checkout needs besides the
prices (the key's order, the e-mail's owner, the signed-in customer's state, the
shipping locations, the delivery VAT rate, the pickup store and the order's id from
its sequence); the prices come from the till's prepared statements; one statement
writes the buyer, the order, its lines and the reservations
(`orders.writer.write_web_order_pg`). Paytrail is asked only once that is committed:
no connection is held while its answer is awaited, and a buyer refused for want of
stock never makes a payment at Paytrail.

Not taken (the portable path in `checkout.services` runs instead, after a rollback):
points or a gift card, a variant twice in the lines, a signed-in customer merged or
erased, and when the write is not whole (the key used meanwhile, a new e-mail taken
meanwhile, a line no single location holds whole).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from saumaton.checkout.services import (
    DELIVERY_VAT_CLASS,
    WEB_ACTOR,
    WEB_CHANNEL,
    CheckoutIn,
    access_token_of,
    clean_address,
    clean_contact,
    fingerprint_of,
    home_delivery_fee,
    place_web_order_in,
)
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, OutOfStock, ValidationFailed
from saumaton.core.money import vat_included
from saumaton.customers.consents import set_consent
from saumaton.customers.segments import buyer_segments
from saumaton.db.uow import UnitOfWork
from saumaton.loyalty.tiers import tier_of
from saumaton.orders.lifecycle import OrderStatus
from saumaton.orders.quote import QuotedLine, price_lines
from saumaton.orders.schemas import DeliveryOut, OrderIn, OrderLineOut, OrderOut
from saumaton.orders.services import (
    business_day,
    channel_ref,
    get_order,
    order_number,
    variants_for,
    vat_breakdown,
)
from saumaton.orders.writer import (
    LineRecord,
    NewBuyer,
    OrderRecord,
    StockToReserve,
    write_web_order_pg,
)
from saumaton.pricing.book import book_prices
from saumaton.pricing.bundle_book import book_bundles_pg

# Everything the checkout reads besides prices, in one round trip. nextval is taken
# even for a replay or a checkout that fails: order numbers may have gaps (as after
# any rollback).
_LOOKUP_SQL = """
SELECT o.id, o.request_hash, o.access_token,
  (SELECT customer_id FROM customer_identities WHERE kind = 'email' AND value = $2),
  (SELECT merged_into_id IS NULL AND erased_at IS NULL FROM customers WHERE id = $3::bigint),
  (SELECT array_agg(id ORDER BY web_priority, id) FROM locations WHERE ships_web_orders),
  (SELECT rate_bp FROM vat_rates WHERE vat_class_code = $4 AND valid_from <= $5::date
     AND (valid_to IS NULL OR valid_to > $5::date) ORDER BY valid_from DESC LIMIT 1),
  (SELECT pickup_point FROM locations WHERE id = $6::int),
  nextval(pg_get_serial_sequence('orders', 'id'))
FROM (SELECT 1) one LEFT JOIN orders o ON o.idempotency_key = $1"""


@dataclass(frozen=True)
class Placed:
    """A checkout's outcome: the order, whether it was placed before (the same key),
    and its status link's secret."""
    order: OrderOut
    replayed: bool
    token: str


async def place_checkout(uow: UnitOfWork, settings: Settings, cmd: CheckoutIn, *,
                         customer_id: int | None, key: str) -> Placed:
    """The checkout's order inside `uow`, which the caller commits; see `Placed`."""
    email, phone = clean_contact(cmd)
    address = clean_address(cmd)
    if uow.db.is_postgres and takes_fast_path(cmd):
        placed = await place_checkout_pg(uow, settings, cmd, customer_id=customer_id,
                                         key=key, email=email, phone=phone, address=address)
        if placed is not None:
            return placed
        await uow.rollback()
    order, replayed = await place_web_order_in(uow, settings, cmd, customer_id=customer_id,
                                               key=key)
    return Placed(order, replayed, await access_token_of(uow.session, order.id))


def takes_fast_path(cmd: CheckoutIn) -> bool:
    ids = [ln.variant_id for ln in cmd.lines]
    return (not cmd.points and not cmd.gift_card_code.strip()
            and None not in ids and len(set(ids)) == len(ids))


async def place_checkout_pg(uow: UnitOfWork, settings: Settings, cmd: CheckoutIn, *,
                            customer_id: int | None, key: str, email: str, phone: str,
                            address: dict[str, str] | None) -> Placed | None:
    """The checkout on PostgreSQL inside `uow` (not committed), or None when it must
    take the portable path (the caller rolls back first)."""
    now = utcnow()
    day = business_day(now)
    fingerprint = fingerprint_of(cmd, customer_id)
    channel = await channel_ref(uow, WEB_CHANNEL)
    found = await uow.fetchrow(_LOOKUP_SQL, key, email, customer_id, DELIVERY_VAT_CLASS, day,
                               cmd.pickup_location_id)
    if found[0] is not None:  # the same checkout again (a double-clicked "Pay")
        if found[1] != fingerprint:
            raise Conflict("this checkout was already placed with other contents",
                           code="idempotency_key_reused")
        return Placed(await get_order(uow.session, int(found[0])), True, str(found[2] or ""))
    if customer_id is not None and found[4] is not True:
        return None  # merged or erased since signing in: the portable path resolves it
    owner = customer_id if customer_id is not None else (
        None if found[3] is None else int(found[3]))

    infos = await variants_for(uow.session, OrderIn(channel=WEB_CHANNEL, lines=cmd.lines),
                               day, uow=uow)
    tier = await tier_of(uow.session, customer_id, now, settings=settings)
    segments = await buyer_segments(uow.session, customer_id, now, settings=settings)
    distinct = list({i.id: i for i in infos}.values())
    # Campaigns, bundles too, from the process's books (dropped by campaign.changed), as
    # the pages showed them; the variants' own prices were read live above.
    quotes = await book_prices(uow.db, uow.session, distinct, channel.id, now, tier, segments)
    bundles = await book_bundles_pg(uow.db, uow.session, uow, distinct, channel.id, now, tier)
    priced = price_lines(channel.code, infos, [ln.quantity for ln in cmd.lines], quotes,
                         bundles)

    if cmd.delivery == "pickup":
        if cmd.pickup_location_id is None:
            raise ValidationFailed("choose the store to collect from",
                                   code="pickup_store_required", field="pickup_location_id")
        if found[7] is not True:
            raise ValidationFailed("orders cannot be collected there",
                                   code="not_a_pickup_point", field="pickup_location_id")
        candidates = [cmd.pickup_location_id]
        fee = 0
    else:
        candidates = [int(x) for x in found[5] or ()]
        if not candidates:
            raise OutOfStock("no location ships web orders", code="no_fulfilment_location")
        fee = home_delivery_fee(settings, priced.total_cents) if priced.ships_goods else 0
    fee_rate = int(found[6] or 0) if fee else 0
    fee_vat = vat_included(fee, fee_rate) if fee else 0

    order_id = int(found[8])
    number = order_number(order_id)
    due = now + timedelta(seconds=settings.reservation_ttl_seconds)
    gift = {i.id for i in infos if i.gift_card}  # no stock: a card is issued when paid
    stock = [ln for ln in priced.lines if ln.variant_id not in gift]
    stock.sort(key=lambda ln: ln.variant_id)  # the lock order of every stock write
    token = secrets.token_urlsafe(24)
    record = OrderRecord(
        channel_id=channel.id, location_id=candidates[0] if cmd.delivery == "pickup" else None,
        customer_id=owner, status=OrderStatus.PENDING.value,
        subtotal_cents=priced.subtotal_cents + fee, discount_cents=priced.discount_cents,
        total_cents=priced.total_cents + fee, vat_cents=priced.vat_cents + fee_vat,
        paid_cents=0, idempotency_key=key, request_hash=fingerprint,
        created_by=WEB_ACTOR.label if customer_id is None else f"web:customer:{customer_id}",
        created_at=now, email=email, phone=phone, language=cmd.language,
        delivery_method=cmd.delivery, delivery_fee_cents=fee, delivery_vat_rate_bp=fee_rate,
        delivery_vat_cents=fee_vat, shipping_address=address, access_token=token,
        payment_due_at=due)
    buyer = None if owner is not None else NewBuyer(
        cmd.first_name.strip(), cmd.last_name.strip(), email, phone, WEB_CHANNEL)
    sources: dict[int, str] = {i + 1: ln.source for i, ln in enumerate(cmd.lines)}  # by line
    written = await write_web_order_pg(
        uow, order_id, record,
        [_line_record(ln, sources.get(ln.line_no, "")) for ln in priced.lines],
        StockToReserve([ln.variant_id for ln in stock], [ln.quantity for ln in stock],
                       candidates, number, due),
        buyer, event={"channel": WEB_CHANNEL, "delivery": cmd.delivery})
    if (written.order_id is None or (buyer is not None and not written.buyer_won)
            or len(written.levels) != len(stock)):
        return None
    if buyer is not None:  # (its customer.created was written with the order)
        assert written.customer_id is not None
        owner = written.customer_id
    assert owner is not None
    if cmd.marketing_email and (customer_id is not None or buyer is not None):
        # Only for the signed-in customer or one this checkout created: typing someone
        # else's e-mail must not grant consent on their record.
        await set_consent(uow, owner, "marketing_email", True, "checkout")
    view = _view(order_id, channel.code, record, priced.lines,
                 {lv.variant_id: lv.location_id for lv in written.levels}, owner, sources)
    return Placed(view, False, token)


def _line_record(ln: QuotedLine, source: str) -> LineRecord:
    # The location is where the statement reserves the line.
    return LineRecord(ln.line_no, ln.variant_id, None, ln.sku, ln.name, ln.quantity,
                      ln.unit_price_cents, ln.discount_cents, ln.total_cents,
                      ln.vat_rate_bp, ln.vat_cents, ln.campaign_id, source=source)


def _view(order_id: int, channel: str, o: OrderRecord, lines: Sequence[QuotedLine],
          located: dict[int, int], customer_id: int | None = None,
          sources: dict[int, str] | None = None) -> OrderOut:
    """The order as `get_order` would read it back, from what was written."""
    sources = sources or {}
    out = [OrderLineOut(
        line_no=q.line_no, variant_id=q.variant_id, location_id=located.get(q.variant_id),
        sku=q.sku, name=q.name, quantity=q.quantity, unit_price_cents=q.unit_price_cents,
        discount_cents=q.discount_cents, total_cents=q.total_cents, vat_rate_bp=q.vat_rate_bp,
        vat_cents=q.vat_cents, campaign_id=q.campaign_id, campaign_name=q.campaign_name,
        source=sources.get(q.line_no, ""))
        for q in sorted(lines, key=lambda q: q.line_no)]
    assert o.delivery_method is not None
    delivery = DeliveryOut(method=o.delivery_method, fee_cents=o.delivery_fee_cents,
                           vat_rate_bp=o.delivery_vat_rate_bp, vat_cents=o.delivery_vat_cents,
                           address=o.shipping_address)
    created: datetime = o.created_at
    return OrderOut(
        id=order_id, number=order_number(order_id), channel=channel,
        location_id=o.location_id, customer_id=customer_id or o.customer_id,
        status=o.status, currency="EUR", subtotal_cents=o.subtotal_cents,
        discount_cents=o.discount_cents, total_cents=o.total_cents, vat_cents=o.vat_cents,
        paid_cents=o.paid_cents, lines=out, payments=[],
        vat_breakdown=vat_breakdown(out, delivery), created_at=created,
        created_by=o.created_by, email=o.email, phone=o.phone, language=o.language,
        delivery=delivery, payment_due_at=o.payment_due_at)
