"""A known month across every channel, for the reports' reconciliation tests (sales,
journal): October 2026 in a fresh shop, every sale made through its real service and
then moved to its day (the reports read orders.created_at / sold_at and
returns.created_at / received_at).

What happens (local time, Europe/Helsinki; prices VAT incl.):

| when | what |
|---|---|
| 2025-10-10 | store 2 till: C × 1 (20,00), cash (a year earlier) |
| 2026-09-20 | store 1 till: A × 50 (500,00) to a member, card: 500 points (month before) |
| 10-03 | web, home delivery from the warehouse: A × 2 (20,00) + delivery fee, Paytrail |
| 10-05 | web, click & collect at store 2: B × 1 (5,00), Paytrail |
| 10-07 | store 1 till (cashier1): A × 1 (10,00), C × 1 with 10 % off (18,00), card |
| 10-09 | store 2 till offline (cashier2): B × 2 (10,00), cash; synced in December |
| 10-11 | API order, shipped from the warehouse: A × 1 (10,00), card |
| 10-13 | store 1 till: a gift card (50,00), cash |
| 10-15 | store 1 till: C × 1 (20,00) paid with that gift card |
| 10-17 | store 1 till: B × 1 (5,00) to the member, 3,00 in points + cash |
| 10-20 | the home-delivered web order: 1 × A returned at store 1 (wrong shade), store credit |
| 10-22 | web order A × 1 never paid: cancelled |

A: standard VAT (25,5 %), cost 4,00. B: food VAT (13,5 %), cost 2,00. C: standard VAT,
no cost price. G: gift card (no VAT, not a sale).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from saumaton.catalogue.models import Variant
from saumaton.checkout.services import cancel_unpaid_orders, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.giftcards.models import GiftCard
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn as OrderLineIn
from saumaton.orders.schemas import OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from saumaton.reports.period import Period
from saumaton.returns import services as returns
from saumaton.returns.models import Return
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import (
    Shop,
    build_shop,
    drop_pg_database,
    fresh_database,
    make_variants,
    open_drawer,
    pay_web_order,
    staff_actor,
)
from tests.test_checkout import cmd

TZ = "Europe/Helsinki"
MONTH = Period.month(2026, 10)


def local(d: date, hour: int = 12) -> datetime:
    return datetime.combine(d, time(hour), ZoneInfo(TZ))


@dataclass
class KnownMonth:
    db: Database
    shop: Shop
    settings: Settings
    a: int = 0  # variant ids
    b: int = 0
    c: int = 0
    g: int = 0
    orders: dict[str, int] = field(default_factory=dict)  # name -> order id
    return_id: int = 0
    delivery_fee_cents: int = 0
    delivery_vat_rate_bp: int = 0
    delivery_vat_cents: int = 0
    gift_card_code: str = ""


async def _at(db: Database, order_id: int, when: datetime, *, sold_at: bool = False) -> None:
    async with db.uow() as uow:
        values = {"sold_at": when} if sold_at else {"created_at": when}
        await uow.session.execute(update(Order).where(Order.id == order_id).values(**values))
        await uow.commit()


async def build_known_month(settings: Settings, database_url: str) -> KnownMonth:
    """The month above in the fresh database at `database_url` (migrated, empty: e.g.
    `tests.support.fresh_database`). The caller disposes of `KnownMonth.db`."""
    db = Database(database_url)
    shop = await build_shop(db)
    km = KnownMonth(db, shop, settings)
    [a] = await make_variants(db, [1000], stock={shop.warehouse: 10, shop.store1: 100})
    [b] = await make_variants(db, [500], vat_class="food",
                              stock={shop.warehouse: 5, shop.store1: 5, shop.store2: 10})
    [c] = await make_variants(db, [2000], stock={shop.store1: 5, shop.store2: 5})
    [g] = await make_variants(db, [5000], gift_card=True)
    km.a, km.b, km.c, km.g = (int(str(v["id"])) for v in (a, b, c, g))
    async with db.uow() as uow:
        for vid, cost in ((km.a, 400), (km.b, 200)):
            await uow.session.execute(update(Variant).where(Variant.id == vid)
                                      .values(cost_cents=cost))
        await uow.commit()
    async with db.uow() as uow:
        member = (await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Maija", last_name=f"M{uuid.uuid4().hex[:6]}", issue_card=True))).id
        await uow.commit()
    cashier1 = await staff_actor(db, shop, "cashier1")
    cashier2 = await staff_actor(db, shop, "cashier2")
    d1, d2 = await open_drawer(db, shop.store1), await open_drawer(db, shop.store2)

    def till(sid: int, lines: list[TillLineIn], payments: list[TillPaymentIn],
             **kw: object) -> TillSaleIn:
        return TillSaleIn(key=uuid.uuid4().hex, session_id=sid, lines=lines,
                          payments=payments, **kw)  # type: ignore[arg-type]

    # A year earlier and the month before.
    o, _ = await sell(db, cashier2, shop.store2, till(
        d2, [TillLineIn(variant_id=km.c)], [TillPaymentIn(method="cash")]))
    km.orders["year_earlier"] = o.id
    await _at(db, o.id, local(date(2025, 10, 10)))
    o, _ = await sell(db, cashier1, shop.store1, till(
        d1, [TillLineIn(variant_id=km.a, quantity=50)],
        [TillPaymentIn(method="card", terminal_confirmed=True)], customer_id=member))
    km.orders["previous"] = o.id
    await _at(db, o.id, local(date(2026, 9, 20)))

    # 10-03 web home delivery, paid.
    w1, _ = await place_web_order(db, settings, cmd(km.a, 2), customer_id=None,
                                  key=f"km-w1-{uuid.uuid4().hex}")
    await pay_web_order(db, settings, w1)
    assert w1.delivery is not None
    km.orders["web_home"] = w1.id
    async with db.reader() as s:
        row = await s.get(Order, w1.id)
        assert row is not None
        km.delivery_fee_cents = row.delivery_fee_cents
        km.delivery_vat_rate_bp = row.delivery_vat_rate_bp
        km.delivery_vat_cents = row.delivery_vat_cents
    # 10-05 click & collect at store 2, paid.
    w2, _ = await place_web_order(db, settings, cmd(km.b, 1, delivery="pickup",
                                                    store=shop.store2),
                                  customer_id=None, key=f"km-w2-{uuid.uuid4().hex}")
    await pay_web_order(db, settings, w2)
    km.orders["web_pickup"] = w2.id
    await _at(db, w2.id, local(date(2026, 10, 5)))
    # 10-07 store 1: a discount on C.
    o, _ = await sell(db, cashier1, shop.store1, till(
        d1, [TillLineIn(variant_id=km.a),
             TillLineIn(variant_id=km.c, discount={  # type: ignore[arg-type]
                 "percent_bp": 1000, "reason": "damaged box"})],
        [TillPaymentIn(method="card", terminal_confirmed=True)]))
    km.orders["store1_discount"] = o.id
    await _at(db, o.id, local(date(2026, 10, 7)))
    # 10-09 store 2 offline, synced now: it counts on the till's day (sold_at).
    o, _ = await sell(db, cashier2, shop.store2, till(
        d2, [TillLineIn(variant_id=km.b, quantity=2, unit_price_cents=500)],
        [TillPaymentIn(method="cash")], offline=True,
        sold_at=utcnow() - timedelta(minutes=5), client_ref="K2-000001"))
    km.orders["store2_offline"] = o.id
    await _at(db, o.id, local(date(2026, 10, 9)), sold_at=True)
    # 10-11 API order.
    o, _ = await place_order(db, SYSTEM, OrderIn(
        channel="api", lines=[OrderLineIn(variant_id=km.a, quantity=1)],
        payments=[PaymentIn(method="card", terminal_confirmed=True, reference="ext-1")]))
    km.orders["api"] = o.id
    await _at(db, o.id, local(date(2026, 10, 11)))
    # 10-13 a gift card sold, 10-15 spent.
    o, _ = await sell(db, cashier1, shop.store1, till(
        d1, [TillLineIn(variant_id=km.g)], [TillPaymentIn(method="cash")]))
    km.orders["gift_card_sold"] = o.id
    await _at(db, o.id, local(date(2026, 10, 13)))
    async with db.reader() as s:
        code = await s.scalar(select(GiftCard.code).where(GiftCard.order_id == o.id))
    assert code
    km.gift_card_code = str(code)
    o, _ = await sell(db, cashier1, shop.store1, till(
        d1, [TillLineIn(variant_id=km.c)],
        [TillPaymentIn(method="gift_card", code=km.gift_card_code)]))
    km.orders["gift_card_spent"] = o.id
    await _at(db, o.id, local(date(2026, 10, 15)))
    # 10-17 points.
    o, _ = await sell(db, cashier1, shop.store1, till(
        d1, [TillLineIn(variant_id=km.b)],
        [TillPaymentIn(method="points", amount_cents=300), TillPaymentIn(method="cash")],
        customer_id=member))
    km.orders["points"] = o.id
    await _at(db, o.id, local(date(2026, 10, 17)))
    # 10-20 the web order returned at store 1.
    out, _ = await returns.take_return(db, cashier1, w1.id, ReturnIn(
        location_id=shop.store1, reason="wrong shade", refund_method="store_credit",
        lines=[ReturnLineIn(line_no=1, quantity=1)]), settings=settings)
    km.return_id = out.id
    await _at(db, w1.id, local(date(2026, 10, 3)))  # after the return: in its window
    async with db.uow() as uow:
        await uow.session.execute(update(Return).where(Return.id == out.id).values(
            created_at=local(date(2026, 10, 20)), received_at=local(date(2026, 10, 20))))
        await uow.commit()
    # 10-22 never paid: cancelled.
    x, _ = await place_web_order(db, settings, cmd(km.a, 1), customer_id=None,
                                 key=f"km-x-{uuid.uuid4().hex}")
    async with db.uow() as uow:
        assert await cancel_unpaid_orders(uow, now=utcnow() + timedelta(days=30)) == 1
        await uow.commit()
    km.orders["cancelled"] = x.id
    await _at(db, x.id, local(date(2026, 10, 22)))
    return km


@asynccontextmanager
async def known_month_database(backend: str, tmp: Path,
                               settings: Settings) -> AsyncIterator[KnownMonth]:
    """The known month in a database of its own (dropped afterwards on PostgreSQL)."""
    url = await fresh_database(backend, tmp)
    month = await build_known_month(settings, url)
    try:
        yield month
    finally:
        await month.db.dispose()
        if backend == "postgresql":
            await drop_pg_database(url)
