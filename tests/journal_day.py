"""A known business day for the daily journal: one of every kind of sale, payment, return
and refund, made through the real services and then moved onto one past day (the
test database is shared by the session, so "today" holds other tests' sales too).

Store 1 (Helsinki), every figure in cents:
- a cash sale of A (19.99, 25.5 %) and F (12.34, 13.5 %): 32.33 → 32.35 in cash (+0.02)
- a card sale of A; an offline card sale of F (card `to_confirm`)
- a gift card (50.00) sold at the till, paid by card
- a customer's cash sale of A (19.99 → 20.00, +0.01), returned for store credit (19.99),
  and the store credit spent on F (12.34)
- F of the first sale returned for cash: 12.34 paid out as 12.35 (+0.01)
- the web order below returned at store 1: A and the delivery fee back to Paytrail
Webshop:
- a home delivery of A + 5.90 delivery (25.5 %), paid by Paytrail
- a click & collect order of 2 × F at store 1, paid by Paytrail (a web sale)
- a click & collect of A at store 2 paid wholly by the gift card sold above
- a web order cancelled unpaid (never in the journal)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update

from saumaton.checkout.services import place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from saumaton.giftcards.sales import cards_sold_by
from saumaton.orders.lifecycle import OrderStatus, transition
from saumaton.orders.models import Order
from saumaton.payments.models import Payment, Refund
from saumaton.returns import services as returns
from saumaton.returns.models import Return
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import Shop, make_variants, open_drawer, pay_web_order, staff_actor
from tests.test_checkout import cmd

A, F, GIFT = 1999, 1234, 5000
DELIVERY = 590


@dataclass
class JournalDay:
    day: date
    order_ids: list[int] = field(default_factory=list)
    return_ids: list[int] = field(default_factory=list)
    cancelled_id: int = 0
    gift_code: str = ""


async def build_journal_day(db: Database, settings: Settings, shop: Shop, day: date
                            ) -> JournalDay:
    out = JournalDay(day)
    [a] = await make_variants(db, [A], stock={shop.store1: 20, shop.store2: 20,
                                              shop.warehouse: 20})
    [f] = await make_variants(db, [F], vat_class="food",
                              stock={shop.store1: 20, shop.store2: 20, shop.warehouse: 20})
    [gc] = await make_variants(db, [GIFT], gift_card=True)
    va, vf, vg = (int(str(v["id"])) for v in (a, f, gc))
    cashier = await staff_actor(db, shop, "cashier1")
    sid = await open_drawer(db, shop.store1)

    async def till(lines: list[TillLineIn], payments: list[TillPaymentIn], **kw: object
                   ) -> int:
        order, _ = await sell(db, cashier, shop.store1, TillSaleIn(
            key=uuid.uuid4().hex, session_id=sid, lines=lines, payments=payments,
            **kw))  # type: ignore[arg-type]
        out.order_ids.append(order.id)
        return order.id

    card = TillPaymentIn(method="card", terminal_confirmed=True)
    cash_sale = await till([TillLineIn(variant_id=va), TillLineIn(variant_id=vf)],
                           [TillPaymentIn(method="cash")])
    await till([TillLineIn(variant_id=va)], [card])
    await till([TillLineIn(variant_id=vf, unit_price_cents=F)], [card], offline=True,
               sold_at=datetime.now(UTC), client_ref="K1-000001")
    gift_sale = await till([TillLineIn(variant_id=vg)], [card])
    async with db.reader() as s:
        [sold_card] = await cards_sold_by(s, gift_sale)
    out.gift_code = sold_card.code

    async with db.uow() as uow:
        cid = (await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Jaana", last_name=f"J{uuid.uuid4().hex[:6]}"))).id
        await uow.commit()
    credit_sale = await till([TillLineIn(variant_id=va)], [TillPaymentIn(method="cash")],
                             customer_id=cid)

    async def give_back(order_id: int, method: str, location: int = shop.store1,
                        line_no: int = 1) -> None:
        ret, _ = await returns.take_return(db, cashier, order_id, ReturnIn(
            location_id=location, reason="changed mind", refund_method=method,  # type: ignore[arg-type]
            drawer_session_id=sid, lines=[ReturnLineIn(line_no=line_no, quantity=1)]),
            idempotency_key=None)
        out.return_ids.append(ret.id)

    await give_back(credit_sale, "store_credit")
    await till([TillLineIn(variant_id=vf)], [TillPaymentIn(method="store_credit")],
               customer_id=cid)
    await give_back(cash_sale, "cash", line_no=2)

    # The webshop.
    async def web(c: object) -> int:
        order, _ = await place_web_order(db, settings, c, customer_id=None,  # type: ignore[arg-type]
                                         key=uuid.uuid4().hex)
        out.order_ids.append(order.id)
        if order.status == "pending":
            await pay_web_order(db, settings, order)
        return order.id

    home_order, _ = await place_web_order(db, settings, cmd(va), customer_id=None,
                                          key=uuid.uuid4().hex)
    assert home_order.delivery is not None and home_order.delivery.fee_cents == DELIVERY
    out.order_ids.append(home_order.id)
    await pay_web_order(db, settings, home_order)
    await web(cmd(vf, 2, delivery="pickup", store=shop.store1))
    await web(cmd(va, delivery="pickup", store=shop.store2).model_copy(
        update={"gift_card_code": out.gift_code}))
    # Returned at the store: a full withdrawal, so the delivery fee goes back too.
    await give_back(home_order.id, "original")
    async with db.uow() as uow:  # the refund job's "ok" from Paytrail
        await uow.session.execute(update(Refund).where(
            Refund.order_id == home_order.id, Refund.method == "paytrail")
            .values(status="ok"))
        await uow.commit()

    cancelled, _ = await place_web_order(db, settings, cmd(va), customer_id=None,
                                         key=uuid.uuid4().hex)
    async with db.uow() as uow:
        row = await uow.session.get(Order, cancelled.id)
        assert row is not None
        await transition(uow, row, OrderStatus.CANCELLED, values={"payment_due_at": None},
                         data={"reason": "not_paid"})
        await uow.commit()
    out.cancelled_id = cancelled.id
    out.order_ids.append(cancelled.id)
    await move_to_day(db, out, day)
    return out


async def move_to_day(db: Database, built: JournalDay, day: date, hour: int = 12) -> None:
    """Every row the day made (orders, payments, returns, refunds, gift card entries)
    at noon of `day`, Helsinki time."""
    at = datetime.combine(day, time(hour), ZoneInfo("Europe/Helsinki")).astimezone(UTC)
    ids, rids = built.order_ids, built.return_ids
    async with db.uow() as uow:
        s = uow.session
        await s.execute(update(Order).where(Order.id.in_(ids)).values(created_at=at))
        await s.execute(update(Order).where(Order.id.in_(ids), Order.sold_at.is_not(None))
                        .values(sold_at=at))
        await s.execute(update(Payment).where(Payment.order_id.in_(ids)).values(created_at=at))
        await s.execute(update(Refund).where(Refund.order_id.in_(ids)).values(created_at=at))
        await s.execute(update(Return).where(Return.id.in_(rids))
                        .values(created_at=at, received_at=at))
        cards = (await s.scalars(select(GiftCardEntry.gift_card_id).where(
            or_(GiftCardEntry.order_id.in_(ids), GiftCardEntry.return_id.in_(rids))))).all()
        await s.execute(update(GiftCardEntry).where(GiftCardEntry.gift_card_id.in_(cards))
                        .values(created_at=at))
        await s.execute(update(GiftCard).where(GiftCard.id.in_(cards)).values(created_at=at))
        await uow.commit()
