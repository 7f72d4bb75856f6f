"""Till receipt numbers (both databases): each register's own sequence ("1-000042"),
given in the sale's transaction by the till, by a sale synced after being made offline
and by a store sale through the order API; web orders in between do not open gaps; the
Z report's range is the session's first..last receipt number, and a sale returned later
still counts in it. On PostgreSQL, sales at one register at the same moment get
distinct, consecutive numbers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict
from saumaton.db.uow import Database
from saumaton.orders.lifecycle import OrderStatus, transition_row
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from saumaton.tills.receipts import format_receipt_no, next_receipt_no, receipt_seq
from saumaton.tills.sales import TillLineIn, TillSaleIn, sell
from tests.support import Shop, make_variants
from tests.test_drawer import OWNER, cash, close, key, new_store, open_drawer, x_report


def till_sale(session_id: int, variant_id: int) -> TillSaleIn:
    return TillSaleIn(key=key(), session_id=session_id,
                      lines=[TillLineIn(variant_id=variant_id, quantity=1)],
                      payments=[cash()])


def test_format() -> None:
    assert format_receipt_no(1, 42) == "1-000042"
    assert format_receipt_no(12, 1234567) == "12-1234567"  # never cut
    assert receipt_seq("12-1234567") == 1234567
    assert receipt_seq("000104") is None and receipt_seq("") is None


async def test_each_register_numbers_its_own_receipts(db: Database, shop: Shop) -> None:
    store = await new_store(db)
    [v] = await make_variants(db, [1000], stock={store.id: 50})
    vid = int(str(v["id"]))
    drawer = await open_drawer(db, store)
    reg = drawer.register_id

    first, _ = await sell(db, store.cashier, store.id, till_sale(drawer.id, vid))
    # A web order between two till sales takes an order number, not a receipt number.
    web, _ = await place_order(db, OWNER, OrderIn(
        channel="web", location_id=store.id, lines=[LineIn(variant_id=vid)]))
    assert web.receipt_no == ""
    second, _ = await sell(db, store.cashier, store.id, till_sale(drawer.id, vid))
    # A store sale through the order API goes into the open drawer: the same sequence.
    api, _ = await place_order(db, OWNER, OrderIn(
        channel=store.channel, lines=[LineIn(variant_id=vid)],
        payments=[PaymentIn(method="cash")]))
    assert api.drawer_session_id == drawer.id
    # Made offline (its till-made number kept), synced now: numbered at sync.
    offline, _ = await sell(db, store.cashier, store.id, TillSaleIn(
        key=key(), session_id=drawer.id,
        lines=[TillLineIn(variant_id=vid, quantity=1, unit_price_cents=1000)],
        payments=[cash()], offline=True, sold_at=utcnow() - timedelta(minutes=3),
        client_ref="K1-000007"))
    assert int(second.number) > int(web.number) > int(first.number)  # a gap in order numbers
    assert [o.receipt_no for o in (first, second, api, offline)] == [
        f"{reg}-000001", f"{reg}-000002", f"{reg}-000003", f"{reg}-000004"]
    assert offline.client_ref == "K1-000007"

    # A sale refused (price changed) takes no number: the next sale gets 5.
    with pytest.raises(Conflict):
        await sell(db, store.cashier, store.id, TillSaleIn(
            key=key(), session_id=drawer.id, lines=[TillLineIn(variant_id=vid)],
            payments=[cash()], expected_total_cents=1))
    fifth, _ = await sell(db, store.cashier, store.id, till_sale(drawer.id, vid))
    assert fifth.receipt_no == f"{reg}-000005"

    # The Z report: the register's range, not the order numbers (the web order's inside).
    x = await x_report(db, drawer.id)
    assert (x.sales_count, x.first_receipt, x.last_receipt) == (
        5, f"{reg}-000001", f"{reg}-000005")

    # A sale returned later (wholly or partly) is still one of the session's sales.
    async with db.uow() as uow:
        await transition_row(uow, first.id, OrderStatus.COMPLETED, OrderStatus.RETURNED)
        await transition_row(uow, second.id, OrderStatus.COMPLETED,
                             OrderStatus.PARTLY_RETURNED)
        await uow.commit()
    report = await close(db, OWNER, drawer.id, x.expected_cents)
    assert (report.sales_count, report.net_sales_cents, report.first_receipt,
            report.last_receipt) == (5, 5000, f"{reg}-000001", f"{reg}-000005")
    assert report.cash.amount_cents == 5000 and report.difference_cents == 0

    # The next session at the register goes on with its sequence; another store's
    # register starts its own.
    drawer2 = await open_drawer(db, store)
    assert drawer2.register_id == reg
    sixth, _ = await sell(db, store.cashier, store.id, till_sale(drawer2.id, vid))
    assert sixth.receipt_no == f"{reg}-000006"
    other = await new_store(db)
    [w] = await make_variants(db, [500], stock={other.id: 5})
    other_drawer = await open_drawer(db, other)
    elsewhere, _ = await sell(db, other.cashier, other.id,
                              till_sale(other_drawer.id, int(str(w["id"]))))
    assert elsewhere.receipt_no == f"{other_drawer.register_id}-000001"


async def test_next_receipt_no_moves_the_register_on(db: Database) -> None:
    store = await new_store(db)
    drawer = await open_drawer(db, store)
    async with db.uow() as uow:
        a = await next_receipt_no(uow, drawer.register_id)
        b = await next_receipt_no(uow, drawer.register_id)
        await uow.commit()
    async with db.uow() as uow:  # not committed: the number is not used up
        await next_receipt_no(uow, drawer.register_id)
    async with db.uow() as uow:
        c = await next_receipt_no(uow, drawer.register_id)
        await uow.commit()
    r = drawer.register_id
    assert (a, b, c) == (f"{r}-000001", f"{r}-000002", f"{r}-000003")


async def test_simultaneous_sales_at_one_register_get_consecutive_numbers(
    db: Database, backend: str,
) -> None:
    store = await new_store(db)
    [v] = await make_variants(db, [700], stock={store.id: 100})
    vid = int(str(v["id"]))
    drawer = await open_drawer(db, store)
    n = 12 if backend == "postgresql" else 4
    # The till and API clients sell into the same drawer session at once.
    till = [sell(db, store.cashier, store.id, till_sale(drawer.id, vid))
            for _ in range(n // 2)]
    api = [place_order(db, OWNER, OrderIn(channel=store.channel, lines=[LineIn(
        variant_id=vid)], payments=[PaymentIn(method="cash")])) for _ in range(n // 2)]
    done = await asyncio.gather(*till, *api)
    numbers = sorted(receipt_seq(o.receipt_no) or 0 for o, _ in done)
    assert numbers == list(range(1, n + 1))
    x = await x_report(db, drawer.id)
    assert (x.first_receipt, x.last_receipt) == (
        format_receipt_no(drawer.register_id, 1), format_receipt_no(drawer.register_id, n))
