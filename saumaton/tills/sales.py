"""A sale at the till, online or synced later from a till that was offline.

`sell` is the one entry point for the till (the JSON endpoint `POST
/pos/{store}/api/sales` only translates). It prices the sale with the core's one
price resolution plus the manual discounts (`orders.discounts`), checks the
drawer session, records the sale, its payments, its voided lines and its stock
moves in one transaction, and is idempotent on the till's key: the same key
returns the first sale, however often the till sends it.

Online, the till shows its own total (computed from its catalogue snapshot); if
the core prices the cart differently (a campaign started, a price changed),
`sell` refuses with 409 `price_changed` and the new figures, so the cashier never
charges a total the receipt would not show.

Offline, the customer has already paid what the till showed: the sale is
recorded with the till's prices (`TillLineIn.unit_price_cents` and
`campaign_discount_cents`), flagged `price_mismatch` if the core would have priced
it differently, `negative_stock` if it took a stock level below zero, and
`card_unconfirmed` for a card payment the terminal could not confirm online.

Loyalty: an attached customer's tier selects their member prices; a `points`
payment spends the customer's points through the ledger in the same transaction
(409 `not_enough_points`: nothing is recorded); the sale earns points for the part
not paid with points — also an offline sale, when it syncs (docs/loyalty.md).

Reserve to try: a sale of reservations (`try_ids`) with no customer chosen is for the
shopper who reserved, if she is in the register (`tryon.services.reserved_for`), unless
the cashier took her off (`anonymous`); a customer the cashier chose stays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.services import VariantInfo, load_variant_infos, load_variant_infos_pg
from saumaton.config import Settings, get_settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.core.types import MAX_ID, MAX_INT32, Input
from saumaton.customers.buyers import CustomerErased, buyer_id
from saumaton.customers.segments import buyer_segments
from saumaton.db.retry import retried
from saumaton.db.uow import Database, UnitOfWork
from saumaton.giftcards.sales import SoldLine, check_offline, issue_sold_cards, spend_payments
from saumaton.inventory.services import Move, apply_moves
from saumaton.locations.services import pos_channel_for
from saumaton.loyalty.ledger import POINTS_METHOD, balance, earn_for_order, redeem
from saumaton.loyalty.tiers import tier_of
from saumaton.orders.discounts import DiscountIn, apply_discounts
from saumaton.orders.models import Order, SaleVoid
from saumaton.orders.quote import OrderQuote, price_lines
from saumaton.orders.schemas import OrderLineOut, OrderOut, PaymentOut
from saumaton.orders.services import business_day, get_order, order_number, vat_breakdown
from saumaton.orders.writer import LineRecord, OrderRecord, PaymentRecord, write_order
from saumaton.payments.services import (
    BALANCE_METHODS,
    PaymentIn,
    PlannedPayment,
    plan_payments,
)
from saumaton.payments.terminal import CardTerminal
from saumaton.pricing.bundles import LineBundle, load_bundles, load_bundles_pg
from saumaton.pricing.services import PriceQuote, resolve_prices, resolve_prices_pg
from saumaton.tills.aisle import (
    AisleDeliveryIn,
    aisle_order_fields,
    confirm_aisle_order,
    hold_remote,
    plan_aisle,
    remote_lines,
    ship_held,
    ship_units,
)
from saumaton.tills.models import DrawerSession
from saumaton.tills.receipts import assign_receipt_no
from saumaton.tryon.services import check_not_held, reserved_for
from saumaton.tryon.services import sell as sell_tried

KEY_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class TillLineIn(Input):
    variant_id: int = Field(ge=1, le=MAX_INT32)
    quantity: int = Field(default=1, ge=1, le=10_000)
    discount: DiscountIn | None = None
    # Offline sales only: the prices the till charged (per unit, VAT incl.).
    unit_price_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    campaign_discount_cents: int | None = Field(default=None, ge=0, le=100_000_000,
                                                description="per unit")
    campaign_id: int | None = Field(default=None, ge=1, le=MAX_INT32)
    campaign_total_cents: int | None = Field(
        default=None, ge=0, le=1_000_000_000_000,
        description="offline: the line's whole campaign discount the till gave (bundle "
                    "campaigns included); absent: campaign_discount_cents × quantity")
    source: Literal["", "upsell"] = Field(
        default="", description="'upsell': added from the till's suggestions")
    ship_from: int | None = Field(
        default=None, ge=1, le=MAX_INT32,
        description="endless aisle: the location this line ships from (tills.aisle); "
                    "absent or the store itself: the customer takes it now")


class TillPaymentIn(Input):
    method: str = Field(max_length=20, pattern="^(cash|card|points|gift_card|store_credit)$")
    amount_cents: int | None = Field(default=None, gt=0, le=100_000_000,
                                     description="omit on the last payment: the rest; "
                                                 "points: required (the value of the "
                                                 "points used)")
    tendered_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    terminal_confirmed: bool = False
    code: str = Field(default="", max_length=40, description="gift_card: the card's code")


class VoidIn(Input):
    variant_id: int = Field(ge=1, le=MAX_INT32)
    quantity: int = Field(ge=1, le=10_000)
    amount_cents: int = Field(ge=0, le=100_000_000, description="at the price shown")
    reason: str = Field(default="", max_length=200)


class TillSaleIn(Input):
    key: str = Field(max_length=64, pattern=KEY_PATTERN, description="the till's idempotency key")
    session_id: int = Field(ge=1, le=MAX_ID, description="the open drawer session")
    customer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    lines: list[TillLineIn] = Field(min_length=1, max_length=500)
    order_discount: DiscountIn | None = None
    payments: list[TillPaymentIn] = Field(min_length=1, max_length=10)
    voids: list[VoidIn] = Field(default_factory=list, max_length=500)
    expected_total_cents: int | None = Field(default=None, ge=0)
    offline: bool = False
    sold_at: datetime | None = Field(default=None, description="offline: the till's clock")
    client_ref: str = Field(default="", max_length=40,
                            description="offline: the receipt number the till printed")
    delivery: AisleDeliveryIn | None = Field(
        default=None, description="endless aisle: how the lines with ship_from reach the "
                                  "customer (home delivery or pickup at this store)")
    try_ids: list[int] = Field(
        default_factory=list, max_length=20,
        description="reservations to try (docs/reserve-to-try.md) this sale completes: "
                    "each must be active at this store and have a line of its product; "
                    "without customer_id the sale is for the customer who reserved "
                    "(tryon.services.reserved_for)")
    anonymous: bool = Field(
        default=False,
        description="the cashier took the customer off the sale: none is attached from "
                    "its reservations to try (only without customer_id)")

    @model_validator(mode="after")
    def _offline_prices(self) -> TillSaleIn:
        if self.offline and any(ln.unit_price_cents is None for ln in self.lines):
            raise ValueError("an offline sale gives the unit price the till charged")
        if self.anonymous and self.customer_id is not None:
            raise ValueError("a sale with a customer is not anonymous")
        return self


class VoidsIn(Input):
    """Voided lines of a sale that was cancelled (never paid)."""

    key: str = Field(max_length=64, pattern=KEY_PATTERN)
    session_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    voids: list[VoidIn] = Field(min_length=1, max_length=500)


# A payment by goods returned in the same transaction (an exchange at the till).
EXCHANGE_METHOD = "exchange"


def order_key(location_id: int, key: str) -> str:
    """The order book's idempotency key for a till's sale key."""
    return f"till:{location_id}:{key}"


# PostgreSQL hot path: prepared statements on the driver (see UnitOfWork.driver).
_PG_KEY_SQL = "SELECT id FROM orders WHERE idempotency_key = $1"
# FOR SHARE: a Z report being computed by a close (FOR UPDATE) either sees this sale
# or the sale sees the session closed; never a sale outside its report.
_PG_DRAWER_SQL = "SELECT location_id, status FROM drawer_sessions WHERE id = $1 FOR SHARE"
# True when the customer was merged or erased (the slow path, `customers.buyers`, decides).
_PG_CUSTOMER_SQL = ("SELECT merged_into_id IS NOT NULL OR erased_at IS NOT NULL "
                    "FROM customers WHERE id = $1")
# A store's till channel is a reference row read by every sale; kept this long.
CHANNEL_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class _Channel:
    id: int
    code: str


async def _pos_channel(uow: UnitOfWork, location_id: int) -> _Channel:
    async def load() -> _Channel:
        ch = await pos_channel_for(uow.session, location_id)  # none: raises, not cached
        return _Channel(ch.id, ch.code)
    return await uow.db.cached(("pos_channel", location_id), CHANNEL_CACHE_SECONDS, load)


async def _drawer_state(uow: UnitOfWork, location_id: int, session_id: int
                        ) -> tuple[int, str]:
    """(id, status) of the sale's drawer session, which must be at this store."""
    if uow.db.is_postgres:
        row = await uow.fetchrow(_PG_DRAWER_SQL, session_id)
        found = None if row is None else (int(row[0]), str(row[1]))
    else:
        d = await uow.session.get(DrawerSession, session_id)
        found = None if d is None else (d.location_id, d.status)
    if found is None or found[0] != location_id:
        raise ValidationFailed(f"no drawer session {session_id} at this store",
                               code="drawer_session_invalid", field="session_id")
    return session_id, found[1]


async def _buyer(uow: UnitOfWork, cmd: TillSaleIn, flags: list[str]) -> int | None:
    """The customer the sale is for: a merged customer's kept record. An erased
    customer: refused online; an offline sale (already made) is kept, anonymously."""
    if cmd.customer_id is None:
        return None
    if uow.db.is_postgres:
        row = await uow.fetchrow(_PG_CUSTOMER_SQL, cmd.customer_id)
        if row is not None and not row[0]:
            return cmd.customer_id  # the usual case, one indexed read
    try:
        return await buyer_id(uow.session, cmd.customer_id)
    except CustomerErased:
        if not cmd.offline or any(p.method == "points" for p in cmd.payments):
            raise
        flags.append("customer_erased")
        return None


async def sell(db: Database, actor: Actor, location_id: int, cmd: TillSaleIn,
               terminal: CardTerminal | None = None, *, settings: Settings | None = None
               ) -> tuple[OrderOut, bool]:
    """Record a till sale at `location_id`. Returns (order, replayed).

    Card payments: with an integrated `terminal`, each online card payment is
    charged through it (idempotent on the sale's key) before anything is written;
    without one, the cashier's confirmation of a standalone terminal counts.

    A key seen before returns the sale recorded first, whatever this request holds:
    a till that lost the answer to an online attempt sends the same sale again as an
    offline one (with its receipt number), and it must not become a second sale."""
    key = order_key(location_id, cmd.key)

    async def attempt() -> tuple[OrderOut, bool]:
        async with db.uow() as uow:
            if db.is_postgres:
                row = await uow.fetchrow(_PG_KEY_SQL, key)
                existing = None if row is None else int(row[0])
            else:
                existing = await _sale_with_key(uow.session, key)
            if existing is not None:
                actor.require("orders.create", location_id)
                return await get_order(uow.session, existing), True
            out = await _sell(uow, actor, location_id, cmd, key, terminal,
                              settings=settings)
            await uow.commit()
            return out, False

    try:
        # An endless-aisle sale locks stock rows of two locations (and a transfer's):
        # a deadlock with a sale the other way round is run again (nothing was written).
        return await (retried(attempt) if remote_lines(cmd.lines, location_id)
                      else attempt())
    except IntegrityError:
        async with db.reader() as s:  # the same key won a race a moment ago
            existing = await _sale_with_key(s, key)
            if existing is None:
                raise
            return await get_order(s, existing), True


async def _sale_with_key(s: AsyncSession, key: str) -> int | None:
    found = await s.scalar(select(Order.id).where(Order.idempotency_key == key))
    return None if found is None else int(found)


def _quote_json(q: OrderQuote) -> dict[str, Any]:
    return {"total_cents": q.total_cents, "vat_cents": q.vat_cents,
            "discount_cents": q.discount_cents, "lines": [{
                "variant_id": ln.variant_id, "quantity": ln.quantity,
                "unit_price_cents": ln.unit_price_cents, "discount_cents": ln.discount_cents,
                "total_cents": ln.total_cents, "campaign_id": ln.campaign_id,
                "campaign_name": ln.campaign_name} for ln in q.lines]}


async def _drawer(s: AsyncSession, location_id: int, session_id: int) -> DrawerSession:
    # FOR SHARE: a Z report being computed by a close (FOR UPDATE) either sees this
    # sale or the sale sees the session closed; never a sale outside its report.
    drawer = await s.scalar(select(DrawerSession).where(DrawerSession.id == session_id)
                            .with_for_update(read=True))
    if drawer is None or drawer.location_id != location_id:
        raise ValidationFailed(f"no drawer session {session_id} at this store",
                               code="drawer_session_invalid", field="session_id")
    return drawer


async def _infos(s: AsyncSession, ids: set[int], at: datetime) -> dict[int, VariantInfo]:
    return {i.id: i for i in await load_variant_infos(s, business_day(at), ids=sorted(ids))}


async def sell_in_exchange(uow: UnitOfWork, actor: Actor, location_id: int, cmd: TillSaleIn,
                           credit_cents: int, terminal: CardTerminal | None = None, *,
                           settings: Settings | None = None) -> OrderOut:
    """The new sale of an exchange, in the caller's transaction (returns.exchange): up to
    `credit_cents` of it is paid by the goods returned in the same transaction (an
    `exchange` payment, first); `cmd.payments` pay the rest (none when the credit
    covers it all)."""
    return await _sell(uow, actor, location_id, cmd, order_key(location_id, cmd.key), terminal,
                       credit_cents=credit_cents, settings=settings)


async def _sell(uow: UnitOfWork, actor: Actor, location_id: int, cmd: TillSaleIn,
                key: str, terminal: CardTerminal | None, credit_cents: int = 0, *,
                settings: Settings | None = None) -> OrderOut:
    actor.require("orders.create", location_id)
    settings = settings or get_settings()  # the caller's current (live) settings
    s = uow.session
    now = utcnow()
    sold_at = cmd.sold_at if cmd.offline and cmd.sold_at is not None else now
    if sold_at.tzinfo is None:
        raise ValidationFailed("sold_at needs a time zone", code="invalid_time",
                               field="sold_at")
    flags: list[str] = []
    pg = uow.db.is_postgres
    channel = await _pos_channel(uow, location_id)
    drawer_id, drawer_status = await _drawer_state(uow, location_id, cmd.session_id)
    if drawer_status != "open":
        if not cmd.offline:
            raise Conflict("the till is closed; open it first", code="drawer_closed",
                           field="session_id")
        flags.append("after_close")  # sold offline, synced after the Z report
    if cmd.customer_id is None and cmd.try_ids and not cmd.anonymous:
        # A reservation to try sold with nobody chosen: the sale is the shopper's who
        # reserved (her points, purchases, journey, receipt); one the cashier chose stays.
        reserver = await reserved_for(s, cmd.try_ids, location_id)
        if reserver is not None:
            cmd = cmd.model_copy(update={"customer_id": reserver})
    buyer = await _buyer(uow, cmd, flags)
    if buyer != cmd.customer_id:
        cmd = cmd.model_copy(update={"customer_id": buyer})
    # The attached customer's member prices (the till asks for them when attaching).
    tier = (await tier_of(s, cmd.customer_id, sold_at, settings=settings)
            if cmd.customer_id is not None else None)
    segments = await buyer_segments(s, cmd.customer_id, sold_at, settings=settings)

    wanted = sorted({ln.variant_id for ln in cmd.lines} | {v.variant_id for v in cmd.voids})
    day = business_day(sold_at)
    infos = {i.id: i for i in (await load_variant_infos_pg(uow, day, ids=wanted) if pg
                               else await load_variant_infos(s, day, ids=wanted))}
    line_infos: list[VariantInfo] = []
    for i, ln in enumerate(cmd.lines):
        info = infos.get(ln.variant_id)
        if info is None:
            raise ValidationFailed(f"line {i + 1}: unknown product", code="unknown_variant",
                                   field=f"lines.{i}")
        if not info.active and not cmd.offline:
            raise ValidationFailed(f"line {i + 1}: {info.name} is not for sale",
                                   code="variant_inactive", field=f"lines.{i}")
        line_infos.append(info)
    for i, v in enumerate(cmd.voids):
        if v.variant_id not in infos:
            raise ValidationFailed("a voided line names an unknown product",
                                   code="unknown_variant", field=f"voids.{i}")
    # Lines that ship from another location (tills.aisle): checked before any charge.
    aisle = await plan_aisle(uow, location_id, cmd.lines, cmd.delivery, offline=cmd.offline,
                             customer_id=cmd.customer_id,
                             gift_cards={i.id for i in line_infos if i.gift_card},
                             exchange=credit_cents > 0,
                             default_language=settings.default_language)

    distinct = list({i.id: i for i in line_infos}.values())
    core = (await resolve_prices_pg(uow, distinct, channel.id, sold_at, tier, segments) if pg
            else await resolve_prices(s, distinct, channel.id, sold_at, tier, segments))
    bundles = (await load_bundles_pg(uow, distinct, channel.id, sold_at, tier) if pg
               else await load_bundles(s, distinct, channel.id, sold_at, tier))
    quantities = [ln.quantity for ln in cmd.lines]
    priced = price_lines(channel.code, line_infos, quantities, core, bundles)
    if cmd.offline:
        # The customer paid what the till showed: record that, flag any difference.
        quotes: dict[int, PriceQuote] = dict(core)
        names = {b.campaign_id: b.name for b in bundles}
        names.update({q.campaign_id: q.campaign_name or "" for q in core.values()
                      if q.campaign_id is not None})
        charged: list[LineBundle | None] = []
        for ln in cmd.lines:
            assert ln.unit_price_cents is not None  # checked by TillSaleIn
            quotes[ln.variant_id] = PriceQuote(
                variant_id=ln.variant_id, list_cents=ln.unit_price_cents,
                discount_cents=ln.campaign_discount_cents or 0)
            total = (ln.campaign_total_cents if ln.campaign_total_cents is not None
                     else (ln.campaign_discount_cents or 0) * ln.quantity)
            charged.append(LineBundle(
                min(total, ln.unit_price_cents * ln.quantity), 0, ln.campaign_id,
                names.get(ln.campaign_id) if ln.campaign_id is not None else None, None))
        mine = priced
        priced = price_lines(channel.code, line_infos, quantities, quotes,
                             line_campaigns=charged)
        if [(a.unit_price_cents, a.discount_cents) for a in priced.lines] != [
                (b.unit_price_cents, b.discount_cents) for b in mine.lines]:
            flags.append("price_mismatch")
    # Offline the discount was already given: recorded and flagged, not refused.
    priced, manual, reasons = apply_discounts(
        priced, [ln.discount for ln in cmd.lines], cmd.order_discount,
        actor=None if cmd.offline else actor, location_id=location_id,
        max_pct=settings.pos_cashier_max_discount_pct)
    if cmd.offline and not actor.can("discounts.any", location_id) and any(
            m * 100 > settings.pos_cashier_max_discount_pct * (ln.total_cents + m)
            for ln, m in zip(priced.lines, manual, strict=True)):
        flags.append("discount_over_limit")
    if (not cmd.offline and cmd.expected_total_cents is not None
            and cmd.expected_total_cents != priced.total_cents):
        raise Conflict(
            f"the price has changed: the total is now {priced.total_cents}",
            code="price_changed", extra={"quote": _quote_json(priced)})

    if cmd.offline:
        check_offline([p.method for p in cmd.payments])
    offline_card = cmd.offline and any(p.method == "card" for p in cmd.payments)
    if not cmd.offline:  # a unit held here for a reservation to try is not sold past it
        await check_not_held(uow, location_id, [
            (i, q.variant_id, q.quantity)
            for i, (q, info) in enumerate(zip(priced.lines, line_infos, strict=True))
            if not info.gift_card and (aisle is None or i not in aisle.ships_from)],
            list(dict.fromkeys(cmd.try_ids)))
    credit = min(credit_cents, priced.total_cents)  # an exchange: the goods brought back
    planned = await _plan(uow, cmd, priced.total_cents - credit, terminal,  # before any charge
                         settings)
    if credit:
        planned.insert(0, PlannedPayment(EXCHANGE_METHOD, credit, 0, None, 0, ""))
    # Endless aisle: the other locations' units are held (strictly) before any card is
    # charged, so a sale that loses the last unit to another till charges nothing.
    shipped = ship_units(aisle, priced.lines, line_infos)
    holds = (await hold_remote(uow, actor, aisle, shipped, key, cmd.lines,
                               [q.name for q in priced.lines]) if aisle else [])
    if terminal is not None and not cmd.offline:
        for i, p in enumerate(planned):
            if p.method != "card":
                continue
            result = await terminal.charge(p.amount_cents, f"{key}:p{i}")
            if not result.approved:
                raise ValidationFailed(result.message or "the card payment was declined",
                                       code="card_declined", field=f"payments.{i}")
            planned[i] = replace(p, reference=result.reference)
    if offline_card:
        flags.append("card_unconfirmed")

    order_reason = cmd.order_discount.reason.strip() if cmd.order_discount else ""
    pay_status = ["to_confirm" if offline_card and p.method == "card" else "captured"
                  for p in planned]
    order_id, _ = await write_order(uow, OrderRecord(
        channel_id=channel.id, location_id=location_id, customer_id=cmd.customer_id,
        status="completed" if aisle is None else "paid",
        subtotal_cents=priced.subtotal_cents,
        discount_cents=priced.discount_cents, total_cents=priced.total_cents,
        vat_cents=priced.vat_cents, paid_cents=priced.total_cents, idempotency_key=key,
        request_hash=None, created_by=actor.label, created_at=now,
        drawer_session_id=drawer_id, offline=cmd.offline,
        sold_at=sold_at if cmd.offline else None, client_ref=cmd.client_ref.strip(),
        discount_reason=order_reason, **aisle_order_fields(aisle),
    ), [LineRecord(q.line_no, q.variant_id,
                   location_id if aisle is None else aisle.location_of(i, location_id),
                   q.sku, q.name, q.quantity, q.unit_price_cents, q.discount_cents,
                   q.total_cents, q.vat_rate_bp, q.vat_cents, q.campaign_id, m, r,
                   taken_at_sale=aisle is not None and i not in aisle.ships_from,
                   source=cmd.lines[i].source)
        for i, (q, m, r) in enumerate(zip(priced.lines, manual, reasons, strict=True))],
       [PaymentRecord(p.method, p.amount_cents, st, p.rounding_cents, p.tendered_cents,
                      p.change_cents, p.reference)
        for p, st in zip(planned, pay_status, strict=True)],
       event={"channel": channel.code, "offline": cmd.offline,
              **({"aisle": aisle.method} if aisle else {})})
    number = order_number(order_id)
    if any(manual):  # one audit row, only when a manual discount was given
        await record(uow, actor, "discount.manual", "order", order_id, {
            "number": number, "location_id": location_id,
            "discount_cents": sum(manual), "order_reason": order_reason,
            "lines": [{"sku": q.sku, "discount_cents": m, "reason": r}
                      for q, m, r in zip(priced.lines, manual, reasons, strict=True) if m]})
    for i, p in enumerate(planned):
        if p.method == POINTS_METHOD:
            assert cmd.customer_id is not None  # checked by _plan
            await redeem(uow, actor, cmd.customer_id,
                         p.amount_cents // settings.loyalty_point_value_cents, order_id,
                         f"redeem:{key}:p{i}", channel=channel.code, field=f"payments.{i}",
                         now=now)
    if any(p.method in BALANCE_METHODS for p in planned):
        await spend_payments(uow, actor, order_id, cmd.customer_id, planned,
                             location_id=location_id)
    gift_lines = [SoldLine(q.line_no, q.quantity, q.total_cents)
                  for q, info in zip(priced.lines, line_infos, strict=True) if info.gift_card]
    if gift_lines:  # printed on the receipt (code and QR)
        await issue_sold_cards(uow, actor, order_id, gift_lines, location_id=location_id,
                               settings=settings)
    if cmd.customer_id is not None:
        await earn_for_order(uow, order_id, now, settings=settings)
    # The item is in the cashier's hand: never refuse; a level below zero gets flagged.
    moved: dict[int, int] = {}
    for i, (q, info) in enumerate(zip(priced.lines, line_infos, strict=True)):
        if not info.gift_card and (aisle is None or i not in aisle.ships_from):
            moved[q.variant_id] = moved.get(q.variant_id, 0) + q.quantity  # no gift cards
    afters = await apply_moves(uow, actor, [
        Move(vid, location_id, -qty, "sale", reference=number, order_id=order_id)
        for vid, qty in moved.items()]) if moved else []
    for tid in dict.fromkeys(cmd.try_ids):  # the held unit is the one sold above
        try:
            await sell_tried(uow, actor, tid, order_id=order_id, location_id=location_id,
                             variant_ids=set(moved))
        except Conflict:
            if not cmd.offline:  # sold offline: the sale stands, the hold had lapsed
                raise
    if aisle is not None:  # the held units: sold (home) or sent here (pickup)
        await ship_held(uow, actor, aisle, holds, shipped, location_id, order_id, number)
    if any(a.on_hand < 0 for a in afters):
        flags.append("negative_stock")
    if cmd.voids:
        await _insert_voids(uow, actor, location_id, drawer_id, order_id, key, cmd.voids,
                            infos, now)
    if flags:  # known only now (negative stock); rare
        await s.execute(update(Order).where(Order.id == order_id)
                        .values(flags=" ".join(flags)))
    # Last: the register's row stays locked only until the commit, and every sale locks
    # its stock rows before it (no deadlock with an API sale into the same drawer).
    receipt_no = await assign_receipt_no(uow, order_id, drawer_id)
    if aisle is not None:  # rare: read back with its delivery; the web order's e-mail
        out = await get_order(s, order_id)
        await confirm_aisle_order(uow, settings, aisle, out, location_id)
        return out
    # What was just written, as get_order() would read it back (no extra round trips).
    lines = [OrderLineOut(
        line_no=q.line_no, variant_id=q.variant_id, location_id=location_id, sku=q.sku,
        name=q.name, quantity=q.quantity, unit_price_cents=q.unit_price_cents,
        discount_cents=q.discount_cents, total_cents=q.total_cents,
        vat_rate_bp=q.vat_rate_bp, vat_cents=q.vat_cents, campaign_id=q.campaign_id,
        campaign_name=q.campaign_name, manual_discount_cents=m, discount_reason=r,
        source=src.source,
    ) for q, m, r, src in zip(priced.lines, manual, reasons, cmd.lines, strict=True)]
    paid_with = [PaymentOut(
        method=p.method, amount_cents=p.amount_cents, rounding_cents=p.rounding_cents,
        tendered_cents=p.tendered_cents, change_cents=p.change_cents, reference=p.reference,
        status=st) for p, st in zip(planned, pay_status, strict=True)]
    return OrderOut(
        id=order_id, number=number, channel=channel.code, location_id=location_id,
        customer_id=cmd.customer_id, status="completed", currency="EUR",
        subtotal_cents=priced.subtotal_cents, discount_cents=priced.discount_cents,
        total_cents=priced.total_cents, vat_cents=priced.vat_cents,
        paid_cents=priced.total_cents, lines=lines, payments=paid_with,
        vat_breakdown=vat_breakdown(lines), created_at=now, created_by=actor.label,
        drawer_session_id=drawer_id, offline=cmd.offline,
        sold_at=sold_at if cmd.offline else None, client_ref=cmd.client_ref.strip(),
        flags=flags, discount_reason=order_reason, receipt_no=receipt_no)


async def _plan(uow: UnitOfWork, cmd: TillSaleIn, total_cents: int,
                terminal: CardTerminal | None, settings: Settings) -> list[PlannedPayment]:
    """The sale's payments in the till's order: points take their stated value (whole
    points, at most the balance, checked again under lock when spent), cash and card
    settle the rest (cash rounding, change)."""
    value = settings.loyalty_point_value_cents
    by_points = 0
    for i, p in enumerate(cmd.payments):
        if p.method != POINTS_METHOD:
            continue
        field = f"payments.{i}"
        if cmd.customer_id is None:
            raise ValidationFailed("paying with points needs the customer attached",
                                   code="points_need_customer", field=field)
        if cmd.offline:
            raise ValidationFailed("points cannot be used offline", code="points_offline",
                                   field=field)
        if p.amount_cents is None or p.amount_cents % value:
            raise ValidationFailed("give the value of whole points to use",
                                   code="invalid_points", field=f"{field}.amount_cents")
        by_points += p.amount_cents
    if by_points > total_cents:
        raise ValidationFailed(f"points {by_points} exceed the {total_cents} due",
                               code="overpayment", field="payments")
    if by_points:
        assert cmd.customer_id is not None
        have = await balance(uow.session, cmd.customer_id)
        if by_points // value > have:  # before any card is charged
            raise Conflict(f"not enough points: {have} available", code="not_enough_points",
                           field="payments", extra={"balance": have})
    others = [PaymentIn(
        method=p.method if p.method in ("cash", *BALANCE_METHODS) else "card",
        amount_cents=p.amount_cents, tendered_cents=p.tendered_cents, code=p.code,
        terminal_confirmed=p.terminal_confirmed or cmd.offline or terminal is not None)
        for p in cmd.payments if p.method != POINTS_METHOD]
    rest = iter(plan_payments(total_cents - by_points, others))
    if not others and by_points != total_cents:
        raise ValidationFailed(f"payments leave {total_cents - by_points} cents unpaid",
                               code="payment_incomplete", field="payments")
    return [PlannedPayment(POINTS_METHOD, p.amount_cents or 0, 0, None, 0, "")
            if p.method == POINTS_METHOD else next(rest) for p in cmd.payments]


async def _insert_voids(uow: UnitOfWork, actor: Actor, location_id: int,
                        session_id: int | None, order_id: int | None, key: str,
                        voids: list[VoidIn], infos: dict[int, VariantInfo],
                        now: datetime) -> None:
    await uow.session.execute(insert(SaleVoid), [{
        "location_id": location_id, "drawer_session_id": session_id, "order_id": order_id,
        "variant_id": v.variant_id, "sku": infos[v.variant_id].sku,
        "name": infos[v.variant_id].name, "quantity": v.quantity,
        "amount_cents": v.amount_cents, "reason": v.reason.strip(),
        "created_by": actor.label, "created_at": now, "idempotency_key": f"{key}:v{i}",
    } for i, v in enumerate(voids)])


async def record_voids(db: Database, actor: Actor, location_id: int, cmd: VoidsIn) -> int:
    """Record the voided lines of a cancelled sale; returns how many were new (0 when
    the till sends the same key again)."""
    key = f"till:{location_id}:{cmd.key}"
    try:
        async with db.uow() as uow:
            actor.require("orders.create", location_id)
            s = uow.session
            if await s.scalar(select(SaleVoid.id).where(
                    SaleVoid.idempotency_key == f"{key}:v0")) is not None:
                return 0
            if cmd.session_id is not None:
                await _drawer(s, location_id, cmd.session_id)
            now = utcnow()
            infos = await _infos(s, {v.variant_id for v in cmd.voids}, now)
            for i, v in enumerate(cmd.voids):
                if v.variant_id not in infos:
                    raise ValidationFailed("a voided line names an unknown product",
                                           code="unknown_variant", field=f"voids.{i}")
            await _insert_voids(uow, actor, location_id, cmd.session_id, None, key,
                                cmd.voids, infos, now)
            await uow.commit()
            return len(cmd.voids)
    except IntegrityError:
        return 0
