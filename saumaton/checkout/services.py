"""From cart to paid web order.

1. `place_web_order`: in one transaction, price the lines with the one price
   function, add delivery, write a *pending* order and reserve its stock (at the
   chosen pickup store, or at the locations that ship web orders) until
   `payment_due_at`. A reservation is a conditional UPDATE, so concurrent
   checkouts can never hold more than there is.
2. `start_payment`: a Paytrail payment for the order (a shopper may retry).
3. `record_payment_status`: what Paytrail said (signed redirect, callback or our
   poll). Idempotent: the order is locked and an attempt is settled once. Paid:
   home delivery takes the reserved units out of stock; click & collect keeps
   them reserved at the store until handover.
4. `cancel_unpaid_orders`: orders unpaid at their due time are cancelled and their
   reservations released (background job; SKIP LOCKED on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.analytics.events import add_event
from saumaton.catalogue.cached import vat_rates
from saumaton.catalogue.services import vat_rates_on
from saumaton.checkout.paid_pg import FastPathMissed, lock_pg, paid_order, write_paid_pg
from saumaton.checkout.pickup import AWAITING_HANDOVER
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, NotFound, OutOfStock, ValidationFailed
from saumaton.core.money import vat_included
from saumaton.core.types import MAX_INT32, Input
from saumaton.customers.consents import set_consent
from saumaton.customers.identities import normalise_email, normalise_phone
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.customers.segments import buyer_segments
from saumaton.db.session_cache import database_of
from saumaton.db.uow import Database, UnitOfWork
from saumaton.giftcards.digital import send_digital_cards
from saumaton.giftcards.ledger import card_by_code
from saumaton.giftcards.ledger import credit as credit_gift_card
from saumaton.giftcards.ledger import spend as spend_gift_card
from saumaton.giftcards.models import GiftCardEntry
from saumaton.giftcards.sales import gift_card_lines
from saumaton.inventory.models import StockLevel, StockReservation
from saumaton.inventory.services import (
    Availability,
    availability,
    consume,
    release,
    reserve,
)
from saumaton.locations.models import Location
from saumaton.locations.reference import locations_of, pickup_points
from saumaton.locations.services import web_fulfilment_locations
from saumaton.loyalty.ledger import (
    POINTS_METHOD,
    earn_for_order,
    points_value_cents,
    redeem,
    refund_for_order,
    reverse_for_order,
)
from saumaton.loyalty.tiers import tier_of
from saumaton.mail.messages import Mail, order_confirmation
from saumaton.mail.queue import queue_mail
from saumaton.orders.lifecycle import OrderStatus, transition
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.quote import OrderQuote, QuotedLine, price_lines
from saumaton.orders.schemas import DeliveryOut, LineIn, OrderIn, OrderLineOut, OrderOut, VatLine
from saumaton.orders.services import (
    _channel,
    _variants_for,
    business_day,
    get_order,
    order_number,
    vat_breakdown,
)
from saumaton.orders.writer import LineRecord, OrderRecord, write_lines_payments, write_order
from saumaton.payments.models import Payment, PaytrailPayment
from saumaton.payments.paytrail.client import PaytrailClient
from saumaton.payments.paytrail.payload import payment_request
from saumaton.payments.refunds import record_refund
from saumaton.payments.services import clean_code_at
from saumaton.pricing.bundles import load_bundles, load_bundles_pg
from saumaton.pricing.services import resolve_prices

log = logging.getLogger(__name__)

WEB_CHANNEL = "web"
# A delivery fee is charged at the general rate. (A basket of only reduced-rate goods
# would call for their rate; the shops served so far sell general-rate goods.)
DELIVERY_VAT_CLASS = "standard"


# --- commands ---------------------------------------------------------------------------

class AddressIn(Input):
    name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    postcode: str = Field(min_length=1, max_length=16)
    city: str = Field(min_length=1, max_length=100)
    country: Literal["FI"] = "FI"


class CheckoutIn(Input):
    email: str = Field(max_length=320)
    phone: str = Field(default="", max_length=40)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    delivery: Literal["home", "pickup"]
    pickup_location_id: int | None = Field(default=None, ge=1, le=MAX_INT32)
    address: AddressIn | None = None
    marketing_email: bool = False
    language: Literal["fi", "en"] = "fi"
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    # Loyalty points to pay with (signed-in shoppers): whole points, at most the
    # balance; they pay the whole total or leave at least MIN_PAYTRAIL_CENTS to pay.
    points: int = Field(default=0, ge=0, le=MAX_INT32)
    # A gift card to pay with (partly: the rest through Paytrail).
    gift_card_code: str = Field(default="", max_length=40)


# Paid partly with points, the rest paid through Paytrail is at least this much.
MIN_PAYTRAIL_CENTS = 100


def check_points(points: int, total_cents: int, *, signed_in: bool,
                 settings: Settings | None = None) -> int:
    """The value in cents of `points` used for an order of `total_cents`: they pay all
    of it, or leave at least MIN_PAYTRAIL_CENTS. (The balance is checked when they are
    spent, under the customer's lock.)"""
    if points <= 0:
        return 0
    if not signed_in:
        raise ValidationFailed("sign in to use loyalty points", code="points_need_account",
                               field="points")
    value = points_value_cents(points, settings)
    if value > total_cents:
        raise ValidationFailed(f"points worth {value} exceed the total {total_cents}",
                               code="points_exceed_total", field="points",
                               extra={"total": total_cents})
    if 0 < total_cents - value < MIN_PAYTRAIL_CENTS:
        raise ValidationFailed("use points for the whole total or leave at least 1,00 €",
                               code="points_leave_too_little", field="points")
    return value


def _contact(cmd: CheckoutIn, problems: list[ValidationFailed]) -> tuple[str, str]:
    email = phone = ""
    try:
        email = normalise_email(cmd.email)
    except ValidationFailed as exc:
        problems.append(exc)
    try:
        phone = normalise_phone(cmd.phone) if cmd.phone.strip() else ""
    except ValidationFailed as exc:
        problems.append(exc)
    else:
        if cmd.delivery == "pickup" and not phone:
            problems.append(ValidationFailed(
                "a phone number is needed to tell you the order is ready",
                code="phone_required", field="phone"))
    return email, phone


def _address(cmd: CheckoutIn, problems: list[ValidationFailed]) -> dict[str, str] | None:
    if cmd.delivery != "home":
        return None
    a = cmd.address
    if a is None:
        problems.append(ValidationFailed("home delivery needs an address",
                                         code="address_required", field="address.street"))
        return None
    out = {"name": a.name.strip(), "street": a.street.strip(), "postcode": a.postcode.strip(),
           "city": a.city.strip(), "country": a.country}
    for key in ("name", "street", "postcode", "city"):
        if not out[key]:
            problems.append(ValidationFailed(f"{key} is required", code="address_required",
                                             field=f"address.{key}"))
    postcode = out["postcode"]
    if postcode and not (len(postcode) == 5 and postcode.isascii() and postcode.isdigit()):
        problems.append(ValidationFailed("a Finnish postcode has five digits",
                                         code="invalid_postcode", field="address.postcode"))
    return out


def checkout_problems(cmd: CheckoutIn) -> list[ValidationFailed]:
    """Every problem `clean_contact` and `clean_address` find, at once (a form shows
    them all next to their fields). `cmd` may be unvalidated (`model_construct`)."""
    problems: list[ValidationFailed] = []
    _contact(cmd, problems)
    _address(cmd, problems)
    return problems


def clean_contact(cmd: CheckoutIn) -> tuple[str, str]:
    """(email, phone) normalised; errors name the field."""
    problems: list[ValidationFailed] = []
    out = _contact(cmd, problems)
    if problems:
        raise problems[0]
    return out


def clean_address(cmd: CheckoutIn) -> dict[str, str] | None:
    """Home delivery's address, trimmed: every part is required."""
    problems: list[ValidationFailed] = []
    out = _address(cmd, problems)
    if problems:
        raise problems[0]
    return out


# --- delivery ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryOption:
    method: str  # home | pickup
    location_id: int | None
    name: str  # the store's name for pickup
    address: str
    fee_cents: int
    available: bool  # every line can be served this way now


def home_delivery_fee(settings: Settings, goods_cents: int) -> int:
    free_from = settings.free_delivery_from_cents
    if free_from > 0 and goods_cents >= free_from:
        return 0
    return settings.home_delivery_fee_cents


@dataclass(frozen=True)
class Review:
    """The figures of the order review: what `place_web_order` will charge."""

    goods_cents: int  # before campaign discounts
    discount_cents: int
    fee_cents: int
    total_cents: int
    vat: list[VatLine]


async def delivery_vat(s: AsyncSession, fee_cents: int) -> tuple[int, int]:
    """(rate_bp, vat_cents) of a delivery fee today."""
    if not fee_cents:
        return 0, 0
    day = business_day(utcnow())
    db = database_of(s)  # the rates kept in this process when the session has one
    rates = await (vat_rates(db, s, day) if db is not None else vat_rates_on(s, day))
    rate = rates.get(DELIVERY_VAT_CLASS, 0)
    return rate, vat_included(fee_cents, rate)


async def order_review(s: AsyncSession, settings: Settings, quote: OrderQuote,
                       method: str) -> Review:
    fee = (home_delivery_fee(settings, quote.total_cents)
           if method == "home" and quote.ships_goods else 0)
    rate, fee_vat = await delivery_vat(s, fee)
    delivery = DeliveryOut(method=method, fee_cents=fee, vat_rate_bp=rate, vat_cents=fee_vat,
                           address=None)
    lines = [OrderLineOut(line_no=ln.line_no, variant_id=ln.variant_id, location_id=None,
                          sku=ln.sku, name=ln.name, quantity=ln.quantity,
                          unit_price_cents=ln.unit_price_cents, discount_cents=ln.discount_cents,
                          total_cents=ln.total_cents, vat_rate_bp=ln.vat_rate_bp,
                          vat_cents=ln.vat_cents, campaign_id=ln.campaign_id)
             for ln in quote.lines]
    return Review(quote.subtotal_cents, quote.discount_cents, fee, quote.total_cents + fee,
                  vat_breakdown(lines, delivery))


async def delivery_options(s: AsyncSession, settings: Settings, quote: OrderQuote,
                           stock: Mapping[int, Availability] | None = None
                           ) -> list[DeliveryOption]:
    """Home delivery (available when the web stock covers every line) and pickup at
    each pickup-point store, available when that store has every line."""
    wanted: dict[int, int] = {}
    for ln in quote.lines:
        wanted[ln.variant_id] = wanted.get(ln.variant_id, 0) + ln.quantity
    if stock is None or not set(wanted) <= set(stock):
        stock = await availability(s, list(wanted))
    home_ok = all(stock[v].online >= q for v, q in wanted.items())
    out = [DeliveryOption("home", None, "", "",
                          home_delivery_fee(settings, quote.total_cents)
                          if quote.ships_goods else 0, home_ok)]
    for loc in pickup_points(await locations_of(s)):
        ok = all((at := stock[v].at(loc.id)) is not None and at.available >= q
                 for v, q in wanted.items())
        out.append(DeliveryOption("pickup", loc.id, loc.name, loc.address, 0, ok and bool(wanted)))
    return out


@dataclass(frozen=True)
class PointsOffer:
    """What the signed-in shopper can pay with points on an order of `total_cents`."""

    balance: int  # points the shopper has
    value_cents: int  # what they are worth
    max_points: int  # the most they can use on this order (0: none)
    point_cents: int  # what one point pays


async def points_offer(s: AsyncSession, customer_id: int | None,
                       total_cents: int, settings: Settings | None = None
                       ) -> PointsOffer | None:
    """None for a guest or a shopper without points."""
    if customer_id is None:
        return None
    from saumaton.loyalty.ledger import balance

    have = await balance(s, customer_id)
    if have <= 0:
        return None
    one = points_value_cents(1, settings)
    if one <= 0:
        return None
    if have * one >= total_cents and total_cents % one == 0:
        most = total_cents // one  # the whole order
    else:
        most = max(0, min(have, (total_cents - MIN_PAYTRAIL_CENTS) // one))
    return PointsOffer(have, points_value_cents(have, settings), most, one)


# --- placing ----------------------------------------------------------------------------

WEB_ACTOR = Actor(label="web", name="webshop", system=True)


def fingerprint_of(cmd: CheckoutIn, customer_id: int | None) -> str:
    raw = cmd.model_dump_json() + f"|{customer_id}"
    return hashlib.sha256(raw.encode()).hexdigest()


async def _customer_for(uow: UnitOfWork, customer_id: int | None, email: str, phone: str,
                        cmd: CheckoutIn) -> tuple[int, bool]:
    """The signed-in customer, else the one who owns this e-mail, else a new one:
    every web order belongs to a customer in the one register."""
    s = uow.session
    if customer_id is not None:
        # A session signed in before a merge or an erasure: the kept customer, or
        # (erased: nobody to link to) the buyer by e-mail as for a guest.
        row = (await s.execute(select(Customer.merged_into_id, Customer.erased_at)
                               .where(Customer.id == customer_id))).first()
        if row is not None and row[1] is None:
            if row[0] is None:
                return customer_id, False
            from saumaton.customers.duplicates import resolve_customer_id
            return await resolve_customer_id(s, customer_id), False
    owner = await s.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == "email", CustomerIdentity.value == email))
    if owner is not None:
        return int(owner), False
    customer = Customer(first_name=cmd.first_name.strip(), last_name=cmd.last_name.strip())
    s.add(customer)
    await s.flush()
    # Two checkouts with the same new e-mail or phone at once: the unique identity
    # decides; the loser uses the winner's customer (and drops its empty row).
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(CustomerIdentity)
    got = await s.scalar(ins.values(customer_id=customer.id, kind="email", value=email)
                         .on_conflict_do_nothing().returning(CustomerIdentity.id))
    if got is None:
        await s.execute(delete(Customer).where(Customer.id == customer.id))
        owner = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "email", CustomerIdentity.value == email))
        assert owner is not None
        return int(owner), False
    if phone:
        await s.execute(ins.values(customer_id=customer.id, kind="phone", value=phone)
                        .on_conflict_do_nothing())
    uow.emit("customer.created", {"customer_id": customer.id, "channel": WEB_CHANNEL})
    return customer.id, True


async def place_web_order(db: Database, settings: Settings, cmd: CheckoutIn, *,
                          customer_id: int | None, key: str) -> tuple[OrderOut, bool]:
    """Write a pending web order with its stock reserved. Returns (order, replayed):
    the same key again returns the first order (a double-clicked "Pay")."""
    async with db.uow() as uow:
        out = await place_web_order_in(uow, settings, cmd, customer_id=customer_id, key=key)
        await uow.commit()
    return out


async def place_web_order_in(uow: UnitOfWork, settings: Settings, cmd: CheckoutIn, *,
                             customer_id: int | None, key: str) -> tuple[OrderOut, bool]:
    """`place_web_order` inside the caller's unit of work (which commits)."""
    fingerprint = fingerprint_of(cmd, customer_id)
    email, phone = clean_contact(cmd)
    address = clean_address(cmd)
    s = uow.session
    try:
        existing = await s.scalar(select(Order.id).where(Order.idempotency_key == key))
        if existing is None:
            order_id = await _place(uow, settings, cmd, customer_id, key, fingerprint,
                                    email, phone, address)
            return await get_order(s, order_id), False
    except IntegrityError:  # the same key won a race a moment ago
        await uow.rollback()
        existing = await s.scalar(select(Order.id).where(Order.idempotency_key == key))
        if existing is None:
            raise
    hash_ = await s.scalar(select(Order.request_hash).where(Order.id == existing))
    if hash_ != fingerprint:
        raise Conflict("this checkout was already placed with other contents",
                       code="idempotency_key_reused")
    return await get_order(s, int(existing)), True


async def _place(uow: UnitOfWork, settings: Settings, cmd: CheckoutIn,
                 customer_id: int | None, key: str, fingerprint: str, email: str, phone: str,
                 address: dict[str, str] | None) -> int:
    s = uow.session
    now = utcnow()
    day = business_day(now)
    channel = await _channel(uow, WEB_CHANNEL)
    infos = await _variants_for(s, OrderIn(channel=WEB_CHANNEL, lines=cmd.lines), day)
    # The signed-in shopper's member prices, as the cart showed them.
    tier = await tier_of(s, customer_id, now, settings=settings)
    segments = await buyer_segments(s, customer_id, now, settings=settings)
    distinct = list({i.id: i for i in infos}.values())
    quotes = await resolve_prices(s, distinct, channel.id, now, tier, segments)
    bundles = (await load_bundles_pg(uow, distinct, channel.id, now, tier)
               if uow.db.is_postgres else await load_bundles(s, distinct, channel.id, now, tier))
    priced = price_lines(channel.code, infos, [ln.quantity for ln in cmd.lines], quotes,
                         bundles)

    if cmd.delivery == "pickup":
        if cmd.pickup_location_id is None:
            raise ValidationFailed("choose the store to collect from",
                                   code="pickup_store_required", field="pickup_location_id")
        store = await s.get(Location, cmd.pickup_location_id)
        if store is None or not store.pickup_point:
            raise ValidationFailed("orders cannot be collected there",
                                   code="not_a_pickup_point", field="pickup_location_id")
        candidates = [store.id]
        fee = 0
    else:
        candidates = await web_fulfilment_locations(s)
        if not candidates:
            raise OutOfStock("no location ships web orders", code="no_fulfilment_location")
        fee = home_delivery_fee(settings, priced.total_cents) if priced.ships_goods else 0
    fee_rate, fee_vat = await delivery_vat(s, fee)

    points_cents = check_points(cmd.points, priced.total_cents + fee,
                                signed_in=customer_id is not None, settings=settings)
    buyer, new_buyer = await _customer_for(uow, customer_id, email, phone, cmd)
    due = now + timedelta(seconds=settings.reservation_ttl_seconds)
    order_id, _ = await write_order(uow, OrderRecord(
        channel_id=channel.id, location_id=candidates[0] if cmd.delivery == "pickup" else None,
        customer_id=buyer, status=OrderStatus.PENDING.value,
        subtotal_cents=priced.subtotal_cents + fee, discount_cents=priced.discount_cents,
        total_cents=priced.total_cents + fee, vat_cents=priced.vat_cents + fee_vat,
        paid_cents=0, idempotency_key=key, request_hash=fingerprint,
        created_by=WEB_ACTOR.label if customer_id is None else f"web:customer:{customer_id}",
        created_at=now, email=email, phone=phone, language=cmd.language,
        delivery_method=cmd.delivery, delivery_fee_cents=fee, delivery_vat_rate_bp=fee_rate,
        delivery_vat_cents=fee_vat, shipping_address=address,
        access_token=secrets.token_urlsafe(24), payment_due_at=due,
    ), [], [], event={"channel": WEB_CHANNEL, "delivery": cmd.delivery})
    number = order_number(order_id)

    rows: list[LineRecord] = []
    sources: dict[int, str] = {i + 1: ln.source for i, ln in enumerate(cmd.lines)}  # by line
    gift = {i.id for i in infos if i.gift_card}  # no stock: a card is issued when paid
    # Reserve in variant order (the lock order of every stock write: no deadlocks).
    for ln in sorted(priced.lines, key=lambda ln: (ln.variant_id, ln.line_no)):
        if ln.variant_id in gift:
            rows.append(_line_row(ln, None, sources.get(ln.line_no, "")))
            continue
        taken = await _reserve_line(uow, ln.variant_id, ln.quantity, candidates,
                                    split=cmd.delivery == "home", reference=number,
                                    ttl=due - now, now=now)
        if not taken:
            raise OutOfStock(f"{ln.name} is no longer available"
                             + (" at that store" if cmd.delivery == "pickup" else ""),
                             code="not_in_store" if cmd.delivery == "pickup"
                             else "out_of_stock", field=f"lines.{ln.line_no - 1}",
                             extra={"variant_id": ln.variant_id, "name": ln.name})
        # where most of the line comes from (each reservation knows its own)
        rows.append(_line_row(ln, max(taken, key=lambda loc: taken[loc]),
                              sources.get(ln.line_no, "")))
    await write_lines_payments(uow, order_id, sorted(rows, key=lambda r: r.line_no), [],
                               location_id=None, at=now)
    if cmd.marketing_email and (customer_id is not None or new_buyer):
        # Only for the signed-in customer or one this checkout created: typing someone
        # else's e-mail must not grant consent on their record.
        await set_consent(uow, buyer, "marketing_email", True, "checkout")
    if points_cents:
        await _pay_with_points(uow, settings, order_id, buyer, cmd.points, points_cents,
                               customer_id, now)
    if cmd.gift_card_code.strip():
        await _pay_with_gift_card(uow, settings, order_id, cmd.gift_card_code, now)
    return order_id


def _line_row(ln: QuotedLine, location_id: int | None, source: str = "") -> LineRecord:
    return LineRecord(ln.line_no, ln.variant_id, location_id, ln.sku, ln.name, ln.quantity,
                      ln.unit_price_cents, ln.discount_cents, ln.total_cents,
                      ln.vat_rate_bp, ln.vat_cents, ln.campaign_id, source=source)


async def _pay_with_points(uow: UnitOfWork, settings: Settings, order_id: int, buyer: int,
                           points: int, value_cents: int, customer_id: int | None,
                           now: datetime) -> None:
    """Spend the shopper's points on the order in its own transaction (409
    `not_enough_points`: the whole checkout rolls back) and record them as a captured
    `points` payment. Points covering the whole total pay the order at once."""
    s = uow.session
    actor = Actor(label=f"web:customer:{customer_id}", name="webshop", system=True)
    await redeem(uow, actor, buyer, points, order_id, f"redeem:order:{order_id}",
                 channel=WEB_CHANNEL, field="points", now=now)
    s.add(Payment(order_id=order_id, method=POINTS_METHOD, status="captured",
                  amount_cents=value_cents, reference=f"{points} points", created_at=now))
    order = await s.get(Order, order_id)
    assert order is not None
    order.paid_cents = value_cents
    await s.flush()
    if value_cents == order.total_cents:
        await mark_order_paid(uow, settings, order, now)


def gift_card_part(usable_cents: int, due_cents: int) -> int:
    """What a card holding `usable_cents` pays of `due_cents`: all of it, or as much as
    it holds while leaving at least MIN_PAYTRAIL_CENTS for Paytrail."""
    amount = max(0, min(usable_cents, due_cents))
    if 0 < due_cents - amount < MIN_PAYTRAIL_CENTS:
        amount = max(0, due_cents - MIN_PAYTRAIL_CENTS)
    return amount


async def _pay_with_gift_card(uow: UnitOfWork, settings: Settings, order_id: int, raw: str,
                              now: datetime) -> None:
    """Spend a gift card on what is left of the order in its own transaction (409: the
    whole checkout rolls back) as a captured `gift_card` payment: all of the rest, or
    what the card holds leaving at least MIN_PAYTRAIL_CENTS for Paytrail. A card
    covering the rest pays the order at once (no Paytrail step)."""
    s = uow.session
    code = clean_code_at(raw, "gift_card_code")
    order = await s.get(Order, order_id)
    assert order is not None
    due = order.total_cents - (order.paid_cents or 0)
    try:
        card = await card_by_code(s, code)
    except NotFound as e:
        raise Conflict(e.detail, code=e.code, field="gift_card_code") from None
    usable = card.usable_cents(now)
    # Nothing usable: the ledger's refusal says why (expired, void, spent).
    amount = gift_card_part(usable, due) if usable > 0 else due
    if amount <= 0:
        return
    try:
        await spend_gift_card(uow, WEB_ACTOR, code, amount, order_id=order_id,
                              key=f"order:{order_id}:gift", now=now)
    except DomainError as e:
        e.field = "gift_card_code"
        raise
    s.add(Payment(order_id=order_id, method="gift_card", status="captured",
                  amount_cents=amount, reference="•••• " + code[-4:], created_at=now))
    order.paid_cents = (order.paid_cents or 0) + amount
    await s.flush()
    if order.paid_cents == order.total_cents:
        await mark_order_paid(uow, settings, order, now)


async def _return_gift_card(uow: UnitOfWork, order: Order, now: datetime) -> None:
    """An order cancelled before it was paid: what its gift card paid goes back on the
    card (once: keyed by the order) and the payment is recorded as refunded."""
    s = uow.session
    spent = (await s.execute(
        select(GiftCardEntry.gift_card_id, func.coalesce(func.sum(GiftCardEntry.amount_cents), 0))
        .where(GiftCardEntry.order_id == order.id,
               GiftCardEntry.kind.in_(("spend", "refund")))
        .group_by(GiftCardEntry.gift_card_id))).all()
    for card_id, net in spent:
        back = -int(net)
        if back <= 0:
            continue
        await credit_gift_card(uow, WEB_ACTOR, int(card_id), back, kind="refund",
                               order_id=order.id, key=f"order:{order.id}:gift:back", now=now)
        s.add(Payment(order_id=order.id, method="gift_card", status="refunded",
                      amount_cents=-back, reference="gift card returned", created_at=now))
        order.paid_cents = max(0, (order.paid_cents or 0) - back)
    await s.flush()


async def mark_order_paid(uow: UnitOfWork, settings: Settings, order: Order, now: datetime) -> None:
    """A pending order whose whole total is now paid: its stock is secured, it becomes
    paid, the confirmation is queued and the money part earns points. OutOfStock if
    the units could not be secured (the caller decides)."""
    s = uow.session
    number = order_number(order.id)
    # Everything the confirmation needs is read and rendered now, before the stock
    # rows are locked: the hottest rows stay locked only until the commit.
    mail = await _confirmation(uow, settings, order)
    await _secure_stock(uow, order, number, settings, now)
    await transition(uow, order, OrderStatus.PAID, values={"payment_due_at": None}, data={
        "channel": WEB_CHANNEL, "location_id": order.location_id,
        "total_cents": order.total_cents, "delivery": order.delivery_method}, now=now)
    await queue_mail(uow, kind="order_confirmation", to=order.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=number)
    await s.flush()
    # Loyalty points, once (keyed by the order), at the current rate.
    await earn_for_order(uow, order.id, now, settings=settings)
    await send_digital_cards(uow, WEB_ACTOR, settings, order.id, email=order.email or "",
                             lang=order.language or settings.default_language)
    # The funnel's last step, once, whichever answer (redirect, callback, poll) settled it.
    add_event(uow, "order_placed", order_id=order.id, customer_id=order.customer_id)


async def return_points(uow: UnitOfWork, order: Order, reason: str, now: datetime, *,
                        settings: Settings | None = None) -> None:
    """An order cancelled before it was paid: the points spent on it come back and
    their payment is recorded as refunded."""
    s = uow.session
    paid = int(await s.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.order_id == order.id, Payment.method == POINTS_METHOD)) or 0)
    if paid <= 0:
        return
    if await refund_for_order(uow, order.id, reason, now, settings=settings):
        s.add(Payment(order_id=order.id, method=POINTS_METHOD, status="refunded",
                      amount_cents=-paid, reference="points returned", created_at=now))
        order.paid_cents = max(0, (order.paid_cents or 0) - paid)


async def _reserve_line(uow: UnitOfWork, variant_id: int, quantity: int,
                        candidates: list[int], *, split: bool, reference: str,
                        ttl: timedelta, now: datetime) -> dict[int, int]:
    """Reserve a line: all of it at the first location that has it (one parcel);
    failing that, when `split`, what each location has, in routing order. Returns
    {location: units}; {} when it cannot all be reserved (the caller rolls back)."""
    for loc in candidates:
        try:
            await reserve(uow, WEB_ACTOR, variant_id, loc, quantity, reference=reference,
                          ttl=ttl, now=now)
        except OutOfStock:
            continue
        return {loc: quantity}
    if not split or len(candidates) < 2:
        return {}
    free = dict((await uow.session.execute(
        select(StockLevel.location_id, StockLevel.on_hand - StockLevel.reserved)
        .where(StockLevel.variant_id == variant_id,
               StockLevel.location_id.in_(candidates)))).all())
    taken: dict[int, int] = {}
    left = quantity
    for loc in candidates:
        n = min(left, int(free.get(loc) or 0))
        if n <= 0:
            continue
        try:
            await reserve(uow, WEB_ACTOR, variant_id, loc, n, reference=reference, ttl=ttl,
                          now=now)
        except OutOfStock:  # taken meanwhile by another checkout
            return {}
        taken[loc] = n
        left -= n
        if left == 0:
            return taken
    return {}


# --- reading ----------------------------------------------------------------------------

async def order_by_token(s: AsyncSession, number: str, token: str) -> OrderOut:
    """An order as its status link shows it: the number and its secret must match."""
    if not number.isdigit() or len(number) > 18 or not token or len(token) > 64:
        raise NotFound("no such order", code="order_not_found")
    row = await s.scalar(select(Order.access_token).where(Order.id == int(number)))
    if row is None or not secrets.compare_digest(str(row).encode(), token.encode()):
        raise NotFound("no such order", code="order_not_found")
    return await get_order(s, int(number))


async def access_token_of(s: AsyncSession, order_id: int) -> str:
    token = await s.scalar(select(Order.access_token).where(Order.id == order_id))
    if token is None:
        raise NotFound(f"order {order_id} has no status link", code="order_not_found")
    return str(token)


def order_status_path(order_id: int, token: str) -> str:
    """The order status page's link (the token is the order's secret)."""
    return f"/shop/orders/{order_number(order_id)}?t={token}"


def status_path(order: OrderOut, token: str) -> str:
    return order_status_path(order.id, token)


# --- paying -----------------------------------------------------------------------------

class PaymentNotPossible(DomainError):
    status = 409
    code = "payment_not_possible"


def payment_urls(settings: Settings) -> dict[str, str]:
    """Where Paytrail sends the shopper and its callbacks."""
    base = settings.resolved_public_url()
    return {"success_url": f"{base}/shop/checkout/return/success",
            "cancel_url": f"{base}/shop/checkout/return/cancel",
            "callback_success_url": f"{base}/shop/checkout/callback/success",
            "callback_cancel_url": f"{base}/shop/checkout/callback/cancel"}


async def start_payment(db: Database, client: PaytrailClient, settings: Settings,
                        order: OrderOut) -> str:
    """Create a Paytrail payment for a pending order; returns the URL of the payment
    page to send the shopper to."""
    async with db.uow() as uow:
        href = await start_payment_in(uow, client, settings, order)
        await uow.commit()
    return href


_PG_ATTEMPT_SQL = (
    "INSERT INTO paytrail_payments (order_id, stamp, transaction_id, href, amount_cents, "
    "status, provider, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, 'new', '', $6, $6)")


async def start_payment_in(uow: UnitOfWork, client: PaytrailClient, settings: Settings,
                           order: OrderOut) -> str:
    """`start_payment` inside the caller's unit of work (which commits). Call it with
    no transaction open (after a commit): Paytrail's answer is awaited before the
    attempt is written, and a connection held meanwhile would be idle."""
    now = utcnow()
    if order.status != OrderStatus.PENDING:
        raise PaymentNotPossible(f"order {order.number} is {order.status}",
                                 code=f"order_{order.status}")
    if order.payment_due_at is not None and order.payment_due_at <= now:
        raise PaymentNotPossible("the time to pay this order has run out",
                                 code="checkout_expired")
    stamp = uuid.uuid4().hex
    body = payment_request(order, stamp=stamp, reference=order.number, email=order.email,
                           language=order.language, **payment_urls(settings))
    data = await client.create_payment(body)
    # Recorded once Paytrail knows the payment: its answers can only come after the
    # shopper is sent to its page, which happens after this commit.
    if uow.db.is_postgres:  # a write that stands alone: one statement, no BEGIN/COMMIT
        await uow.db.fetchrow_once(
            _PG_ATTEMPT_SQL, order.id, stamp, str(data["transactionId"]),
            str(data.get("href", "")), int(body["amount"]), now)
        return str(data["href"])
    await uow.session.execute(insert(PaytrailPayment).values(
        order_id=order.id, stamp=stamp, transaction_id=str(data["transactionId"]),
        href=str(data.get("href", "")), amount_cents=int(body["amount"]), status="new",
        created_at=now, updated_at=now))
    return str(data["href"])


class InvalidSignature(DomainError):
    status = 400
    code = "invalid_signature"


@dataclass(frozen=True)
class PaymentOutcome:
    order_id: int
    access_token: str
    order_status: str
    attempt_status: str
    changed: bool  # False: this status was already recorded (a repeated callback)
    refund_cents: int = 0  # paid but the goods could not be secured: to refund
    transaction_id: str = ""
    # The order as it now is, when the recording had it in hand (PostgreSQL, paid).
    order: OrderOut | None = None


PAYTRAIL_STATUSES = ("ok", "fail", "pending", "delayed", "new")
_RANK = {"new": 0, "pending": 1, "delayed": 1, "fail": 2, "ok": 3}


def parse_return(client: PaytrailClient, params: dict[str, str]) -> tuple[str, str, str, int,
                                                                         str]:
    """Check the signature of a redirect's or callback's query and read it:
    (stamp, transaction_id, status, amount, provider)."""
    if not client.verify_return(params):
        raise InvalidSignature("the payment result is not signed by Paytrail")
    try:
        amount = int(params["checkout-amount"])
        stamp = params["checkout-stamp"]
        txn = params["checkout-transaction-id"]
        status = params["checkout-status"]
    except (KeyError, ValueError):
        raise InvalidSignature("the payment result is incomplete") from None
    if status not in PAYTRAIL_STATUSES:
        raise InvalidSignature(f"unknown payment status {status!r}")
    return stamp, txn, status, amount, params.get("checkout-provider", "")[:32]


def nothing_new(attempt_status: str, attempt_txn: str | None, attempt_amount: int,
                txn: str, status: str, amount: int) -> bool:
    """Whether Paytrail's answer changes nothing on the attempt as recorded: settled
    already, the same status again, or a late echo (its states only move forward).
    InvalidSignature when the answer is not about this payment."""
    if (attempt_txn and attempt_txn != txn) or attempt_amount != amount:
        raise InvalidSignature("the payment result does not match the payment",
                               code="payment_mismatch")
    return attempt_status == "ok" or attempt_status == status \
        or _RANK[status] < _RANK[attempt_status]


async def record_payment_status(db: Database, settings: Settings, stamp: str,
                                transaction_id: str, status: str, amount: int,
                                provider: str = "") -> PaymentOutcome:
    out: PaymentOutcome | None = None
    fast = True
    if db.is_postgres and status == "ok":
        # The usual "ok" (or its repeat) without a session: `_paid_pg`. When it cannot
        # pay the order (click & collect, gift cards sold, a lapsed reservation, or rows
        # changed under its write) the portable way below does, in a transaction of its
        # own that takes the locks again.
        with contextlib.suppress(FastPathMissed):
            out = await _paid_pg(db, settings, stamp, transaction_id, amount, provider)
        fast = False
    if out is None:
        async with db.uow() as uow:
            try:
                out = await _record(uow, settings, stamp, transaction_id, status, amount,
                                    provider, fast=fast)
            except FastPathMissed:
                await uow.rollback()
                out = await _record(uow, settings, stamp, transaction_id, status, amount,
                                    provider, fast=False)
            await uow.commit()
    if out.changed and out.order_status == OrderStatus.PAID:
        log.info("order %s paid (%s)", order_number(out.order_id), transaction_id)
    return out


async def _paid_pg(db: Database, settings: Settings, stamp: str, txn: str, amount: int,
                   provider: str) -> PaymentOutcome | None:
    """PostgreSQL, an "ok": `_record`'s first way (lock and read in one statement, the
    paid order written in one more) in a transaction without a SQLAlchemy session,
    whose begin, commit and close cost about as much CPU as both statements. None when
    this way cannot pay the order (nothing written; `_record` then goes its own way);
    FastPathMissed as `write_paid_pg` raises it (rolled back)."""
    async with db.raw_transaction() as tx:
        locked = await lock_pg(tx, stamp)
        if locked is None:
            raise InvalidSignature("no such payment of ours", code="payment_not_found")
        token = locked.order["o"]["access_token"] or ""
        if nothing_new(locked.attempt_status, locked.attempt_txn, locked.attempt_amount,
                       txn, "ok", amount):
            return PaymentOutcome(locked.order_id, token, locked.order_status,
                                  locked.attempt_status, False, 0, txn)
        paying = paid_order(settings, locked)
        if paying is None:
            return None
        paid = await write_paid_pg(tx, settings, locked, paying, txn=txn, amount=amount,
                                   provider=provider, now=utcnow(),
                                   actor_label=WEB_ACTOR.label)
        await tx.commit()
    return PaymentOutcome(paid.id, token, paid.status, "ok", True, 0, txn, order=paid)


async def _locked(uow: UnitOfWork, q: Any) -> Any:
    if uow.db.is_postgres:
        q = q.with_for_update()
    return await uow.session.scalar(q)


async def _record(uow: UnitOfWork, settings: Settings, stamp: str, txn: str, status: str,
                  amount: int, provider: str, *, fast: bool = True) -> PaymentOutcome:
    if fast and uow.db.is_postgres:
        # One statement locks and reads it all; the usual "ok" is written in one more.
        locked = await lock_pg(uow, stamp)
        if locked is None:
            raise InvalidSignature("no such payment of ours", code="payment_not_found")
        if nothing_new(locked.attempt_status, locked.attempt_txn, locked.attempt_amount,
                       txn, status, amount):
            return PaymentOutcome(locked.order_id, locked.order["o"]["access_token"] or "",
                                  locked.order_status, locked.attempt_status, False, 0, txn)
        paying = paid_order(settings, locked) if status == "ok" else None
        if paying is not None:
            now = utcnow()
            paid = await write_paid_pg(uow, settings, locked, paying, txn=txn, amount=amount,
                                       provider=provider, now=now, actor_label=WEB_ACTOR.label)
            return PaymentOutcome(paid.id, locked.order["o"]["access_token"] or "",
                                  paid.status, "ok", True, 0, txn, order=paid)
    s = uow.session
    attempt: PaytrailPayment | None = await _locked(
        uow, select(PaytrailPayment).where(PaytrailPayment.stamp == stamp))
    if attempt is None:
        raise InvalidSignature("no such payment of ours", code="payment_not_found")
    settled = nothing_new(attempt.status, attempt.transaction_id, attempt.amount_cents, txn,
                          status, amount)
    order: Order | None = await _locked(uow, select(Order).where(Order.id == attempt.order_id))
    assert order is not None  # FK
    now = utcnow()

    def outcome(changed: bool, refund: int = 0) -> PaymentOutcome:
        return PaymentOutcome(order.id, order.access_token or "", order.status, attempt.status,
                              changed, refund, txn)

    if settled:
        return outcome(False)  # settled already, nothing new, or a late echo
    attempt.transaction_id = txn
    attempt.updated_at = now
    if provider:
        attempt.provider = provider
    if status != "ok":
        attempt.status = status
        await s.flush()
        uow.emit("payment.status", {"order_id": order.id, "status": status})
        return outcome(True)

    attempt.status = "ok"
    s.add(Payment(order_id=order.id, method="paytrail", status="captured",
                  amount_cents=amount, reference=txn, location_id=order.location_id,
                  created_at=now))
    if order.status != OrderStatus.PENDING:
        # Paid twice (a second attempt), or paid after the order was cancelled:
        # the money was taken (it counts as paid) and goes back; the order stays as it is.
        order.paid_cents = (order.paid_cents or 0) + amount
        await s.flush()
        await _refund_due(uow, order, amount, txn, now, settings)
        await s.flush()
        return outcome(True, refund=amount)
    # Points spent at checkout paid the rest (paid_cents already counts them).
    order.paid_cents = (order.paid_cents or 0) + amount
    try:
        await mark_order_paid(uow, settings, order, now)
    except OutOfStock:
        await transition(uow, order, OrderStatus.CANCELLED, values={"payment_due_at": None},
                         data={"reason": "sold_out_before_payment"}, now=now)
        await return_points(uow, order, "sold_out_before_payment", now, settings=settings)
        await _return_gift_card(uow, order, now)
        await _refund_due(uow, order, amount, txn, now, settings)
        await s.flush()
        return outcome(True, refund=amount)
    return outcome(True)


# PostgreSQL: what `_secure_stock` reads, in one round trip: the order's active
# reservations ('r': variant, location, id, units) and its lines other than gift cards
# ('l': variant, location, line number, units).
_PG_SECURE_READ_SQL = """
SELECT 'r', variant_id, location_id, id, quantity FROM stock_reservations
WHERE reference = $1 AND status = 'active'
UNION ALL
SELECT 'l', l.variant_id, l.location_id, l.line_no, l.quantity FROM order_lines l
JOIN variants v ON v.id = l.variant_id JOIN products p ON p.id = v.product_id
WHERE l.order_id = $2 AND NOT p.gift_card
ORDER BY 1 DESC, 2, 4"""


async def _secure_stock(uow: UnitOfWork, order: Order, number: str, settings: Settings,
                        now: datetime) -> None:
    """The paid order's units: home delivery takes them out of stock now; pickup keeps
    them reserved at the store for `pickup_hold_days`. Reservations that lapsed
    before the payment arrived are taken again if the stock is still there."""
    s = uow.session
    # (variant, location, reservation id, units) held; (variant, location, units) wanted
    held: list[tuple[int, int, int, int]] = []
    lines: list[tuple[int, int | None, int]] = []
    if uow.db.is_postgres:
        for kind, v, loc, n, qty in await uow.fetch(_PG_SECURE_READ_SQL, number, order.id):
            if kind == "r":
                held.append((v, loc, n, qty))
            else:
                lines.append((v, loc, qty))
    else:
        held = [(r.variant_id, r.location_id, r.id, r.quantity) for r in (await s.scalars(
            select(StockReservation).where(StockReservation.reference == number,
                                           StockReservation.status == "active")
            .order_by(StockReservation.variant_id, StockReservation.id))).all()]
        gift = {ln.line_no for ln in await gift_card_lines(s, order.id)}
        lines = [(ln.variant_id, ln.location_id, ln.quantity) for ln in (await s.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id)
            .order_by(OrderLine.variant_id))).all()
            if ln.line_no not in gift]  # no stock kept of gift cards
    have: dict[int, int] = defaultdict(int)
    for variant_id, _, _, qty in held:
        have[variant_id] += qty
    wanted: dict[int, tuple[int, int | None]] = {}
    for variant_id, location_id, qty in lines:
        before, _ = wanted.get(variant_id, (0, None))
        wanted[variant_id] = (before + qty, location_id)
    hold = timedelta(days=settings.pickup_hold_days)
    rids = [(v, loc, rid) for v, loc, rid, _ in held]
    for variant_id, (qty, location_id) in sorted(wanted.items()):
        missing = qty - have[variant_id]
        if missing > 0:  # lapsed before the payment came: take it again, if still there
            assert location_id is not None
            rids.append((variant_id, location_id, await reserve(
                uow, WEB_ACTOR, variant_id, location_id, missing, reference=number,
                ttl=hold, now=now)))
    if order.delivery_method == "home":
        for _, _, rid in sorted(rids):  # in stock-row order, like every stock write
            await consume(uow, WEB_ACTOR, rid, order_id=order.id, reference=number)
    else:
        await s.execute(update(StockReservation).where(
            StockReservation.reference == number, StockReservation.status == "active")
            .values(expires_at=now + hold).execution_options(synchronize_session=False))


async def _confirmation(uow: UnitOfWork, settings: Settings, order: Order) -> Mail:
    """The order e-mail of a paid order (rendered from the order as stored)."""
    out = await get_order(uow.session, order.id)
    pickup_name = None
    if order.delivery_method == "pickup" and order.location_id is not None:
        loc = await uow.session.get(Location, order.location_id)
        pickup_name = loc.name if loc else None
    return order_confirmation(
        out, status_url=settings.resolved_public_url() + status_path(out, order.access_token
                                                                     or ""),
        lang=order.language, settings=settings, pickup_store_name=pickup_name)


async def _refund_due(uow: UnitOfWork, order: Order, amount: int, txn: str,
                      now: datetime, settings: Settings) -> None:
    """Money to give back, recorded with the payment itself so it cannot be forgotten:
    a Paytrail refund `due` (payments.paytrail_refunds sends it, and retries until
    Paytrail takes it). When the order's own money goes back (it is cancelled), the
    loyalty points it earned for that part are taken back; a second payment of a paid
    order earned nothing and takes nothing back."""
    await record_refund(uow, WEB_ACTOR, order.id, "paytrail", amount, status="due",
                        reference=txn, refund_stamp=f"refund-{order.id}-{txn}"[:64], now=now)
    if order.status == OrderStatus.CANCELLED:
        await reverse_for_order(uow, order.id, amount, "refund",
                                key=f"reverse:refund:{order.id}:{txn}", now=now,
                                settings=settings)


# --- background -------------------------------------------------------------------------

async def cancel_unpaid_orders(uow: UnitOfWork, now: datetime | None = None,
                               limit: int = 200) -> int:
    """Cancel pending web orders whose time to pay has passed and release their stock.
    Several processes may run it: on PostgreSQL rows are claimed with SKIP LOCKED."""
    now = now or utcnow()
    q = (select(Order).where(Order.status == OrderStatus.PENDING, Order.payment_due_at <= now)
         .order_by(Order.payment_due_at).limit(limit))
    if uow.db.is_postgres:
        q = q.with_for_update(skip_locked=True)
    orders = (await uow.session.scalars(q)).all()
    for order in orders:
        number = order_number(order.id)
        ids = (await uow.session.scalars(select(StockReservation.id).where(
            StockReservation.reference == number, StockReservation.status == "active"))).all()
        for rid in ids:
            await release(uow, rid)
        await transition(uow, order, OrderStatus.CANCELLED, values={"payment_due_at": None},
                         data={"reason": "not_paid"}, now=now)
        await return_points(uow, order, "not_paid", now)
        await _return_gift_card(uow, order, now)
    await uow.session.flush()
    return len(orders)


async def payments_to_poll(s: AsyncSession, now: datetime, *, older_than: timedelta,
                           limit: int = 50) -> list[tuple[str, str]]:
    """(stamp, transaction_id) of attempts with no final answer yet, for pending orders."""
    rows = (await s.execute(
        select(PaytrailPayment.stamp, PaytrailPayment.transaction_id)
        .join(Order, Order.id == PaytrailPayment.order_id)
        .where(PaytrailPayment.status.in_(("new", "pending", "delayed")),
               PaytrailPayment.transaction_id.is_not(None),
               PaytrailPayment.updated_at <= now - older_than,
               PaytrailPayment.created_at >= now - timedelta(days=2),
               Order.status == OrderStatus.PENDING)
        .order_by(PaytrailPayment.updated_at).limit(limit))).all()
    return [(str(a), str(b)) for a, b in rows]


# --- click & collect at the store ----------------------------------------------------------

@dataclass(frozen=True)
class PickupOrder:
    order: OrderOut
    customer_name: str
    ready: bool  # paid: the units wait at the store (may be handed over); else unpaid

    @property
    def prepared(self) -> bool:
        """Marked ready by the store (the shopper was told to come)."""
        return self.order.status == OrderStatus.READY


async def ready_pickup_count(s: AsyncSession, location_id: int) -> int:
    """Paid click & collect orders waiting at this store (the till's badge)."""
    return int(await s.scalar(select(func.count()).select_from(Order).where(
        Order.location_id == location_id, Order.delivery_method == "pickup",
        Order.status.in_(AWAITING_HANDOVER))) or 0)


async def pickup_orders(s: AsyncSession, location_id: int, limit: int = 100
                        ) -> list[PickupOrder]:
    """Click & collect orders for this store that are not handed over yet: paid ones
    (ready for pickup) and ones still being paid (their units already reserved here)."""
    from saumaton.orders.services import _orders_out

    rows = (await s.execute(
        select(Order.id, Customer.first_name, Customer.last_name)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(Order.location_id == location_id, Order.delivery_method == "pickup",
               Order.status.in_((OrderStatus.PENDING, *AWAITING_HANDOVER)))
        .order_by(Order.id.desc()).limit(limit))).all()
    names = {int(r[0]): f"{r[1] or ''} {r[2] or ''}".strip() for r in rows}
    orders = await _orders_out(s, list(names))
    return [PickupOrder(o, names[o.id], o.status in AWAITING_HANDOVER) for o in orders]
