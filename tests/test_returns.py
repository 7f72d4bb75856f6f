"""Returns in every channel: partial quantities, never more than sold, windows and
overrides, the price paid back by the right method, stock at the receiving store,
damaged goods written off, points, postal returns, idempotency."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from saumaton.audit.models import AuditEntry
from saumaton.checkout.services import place_web_order, record_payment_status
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, Forbidden, ValidationFailed
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.giftcards.ledger import store_credit_of
from saumaton.inventory.models import StockLevel, StockMovement
from saumaton.inventory.services import verify_ledger
from saumaton.loyalty.ledger import balance
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.payments.models import Refund
from saumaton.returns import services as returns
from saumaton.returns.schemas import (
    BankAccountIn,
    PostReturnIn,
    ReceiveIn,
    ReceiveLineIn,
    ReturnIn,
    ReturnLineIn,
)
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import Shop, make_variants, open_drawer, staff_actor
from tests.test_checkout import attempt, cmd


async def customer(db: Database) -> int:
    async with db.uow() as uow:
        out = await create_customer(uow, staff_actor_system(), CustomerIn(
            first_name="Anna", last_name=f"R{uuid.uuid4().hex[:6]}", issue_card=True))
        await uow.commit()
    return out.id


def staff_actor_system() -> Actor:
    from saumaton.core.actor import SYSTEM
    return SYSTEM


async def till_sale(db: Database, shop: Shop, prices: list[int], *, qty: int = 1,
                    customer_id: int | None = None,
                    payments: list[dict[str, Any]] | None = None) -> tuple[int, list[int]]:
    variants = await make_variants(db, prices, stock={shop.store1: 10, shop.store2: 10})
    sid = await open_drawer(db, shop.store1)
    order, _ = await sell(db, await staff_actor(db, shop, "cashier1"), shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, customer_id=customer_id,
        lines=[TillLineIn(variant_id=int(str(v["id"])), quantity=qty) for v in variants],
        payments=[TillPaymentIn(**p) for p in (payments or [{"method": "cash"}])]))
    return order.id, [int(str(v["id"])) for v in variants]


def ret(location: int, lines: list[tuple[int, int]], **kw: Any) -> ReturnIn:
    return ReturnIn(location_id=location, reason=kw.pop("reason", "wrong shade"),
                    lines=[ReturnLineIn(line_no=n, quantity=q, restock=kw.pop(f"r{n}", True))
                           for n, q in lines], **kw)


async def take(db: Database, actor: Actor, order_id: int, cmd_: ReturnIn,
               key: str | None = None) -> Any:
    out, _ = await returns.take_return(db, actor, order_id, cmd_, idempotency_key=key)
    return out


async def on_hand(db: Database, variant_id: int, location_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)) or 0)


async def order_row(db: Database, order_id: int) -> Order:
    async with db.reader() as s:
        o = await s.get(Order, order_id)
        assert o is not None
        return o


async def test_partial_cash_return_at_another_store(db: Database, shop: Shop) -> None:
    order_id, [vid] = await till_sale(db, shop, [1999], qty=3)
    cashier2 = await staff_actor(db, shop, "cashier2")
    drawer2 = await open_drawer(db, shop.store2)
    before = await on_hand(db, vid, shop.store2)
    out = await take(db, cashier2, order_id, ret(shop.store2, [(1, 2)], refund_method="cash",
                                                 drawer_session_id=drawer2))
    # 2 of 3 units: floor(5997 × 2 / 3) = 3998, paid out rounded to 4000 in cash.
    assert out.status == "completed" and out.refund_cents == 3998
    [cash] = out.refunds
    assert (cash.method, cash.amount_cents, cash.rounding_cents, cash.status) == (
        "cash", 3998, 2, "ok")
    assert out.drawer_session_id == drawer2 and out.receipt_no.endswith("-000001")
    assert await on_hand(db, vid, shop.store2) == before + 2  # where it came back
    o = await order_row(db, order_id)
    assert (o.status, o.refunded_cents) == ("partly_returned", 3998)
    # The last unit: exactly the rest of what was paid.
    out2 = await take(db, cashier2, order_id, ret(shop.store2, [(1, 1)], refund_method="cash",
                                                  drawer_session_id=drawer2))
    assert out2.refund_cents == 1999
    o = await order_row(db, order_id)
    assert (o.status, o.refunded_cents) == ("returned", o.paid_cents)
    with pytest.raises(Conflict) as e:
        await take(db, cashier2, order_id, ret(shop.store2, [(1, 1)], refund_method="cash"))
    assert e.value.code == "order_not_returnable"


async def test_more_than_sold_is_refused_and_changes_nothing(db: Database, shop: Shop) -> None:
    order_id, [vid, _] = await till_sale(db, shop, [1000, 2000])
    cashier = await staff_actor(db, shop, "cashier1")
    stock = await on_hand(db, vid, shop.store1)
    with pytest.raises(Conflict) as e:
        await take(db, cashier, order_id, ret(shop.store1, [(1, 1), (2, 2)],
                                              refund_method="cash"))
    assert e.value.code == "return_exceeds_sold" and e.value.field == "lines.1.quantity"
    assert e.value.extra["returnable_quantity"] == 1
    assert await on_hand(db, vid, shop.store1) == stock
    o = await order_row(db, order_id)
    assert (o.status, o.refunded_cents) == ("completed", 0)
    async with db.reader() as s:
        view = await returns.returnable_lines(s, order_id)
    assert [ln.returnable_quantity for ln in view.lines] == [1, 1]
    with pytest.raises(ValidationFailed) as v:
        await take(db, cashier, order_id, ret(shop.store1, [(7, 1)], refund_method="cash"))
    assert v.value.code == "unknown_line"


async def test_damaged_goods_are_written_off(db: Database, shop: Shop) -> None:
    order_id, [vid] = await till_sale(db, shop, [1500])
    stock = await on_hand(db, vid, shop.store1)
    out = await take(db, await staff_actor(db, shop, "cashier1"), order_id,
                     ret(shop.store1, [(1, 1)], refund_method="cash", r1=False,
                         reason="broken"))
    assert out.lines[0].restock is False
    assert await on_hand(db, vid, shop.store1) == stock
    async with db.reader() as s:
        kinds = (await s.scalars(select(StockMovement.kind).where(
            StockMovement.order_id == order_id).order_by(StockMovement.id))).all()
        assert await verify_ledger(s) == []
    assert sorted(kinds) == ["return", "sale", "write_off"]


async def test_card_refund_needs_the_terminal(db: Database, shop: Shop) -> None:
    order_id, _ = await till_sale(db, shop, [2500],
                                  payments=[{"method": "card", "terminal_confirmed": True}])
    cashier = await staff_actor(db, shop, "cashier1")
    with pytest.raises(ValidationFailed) as e:
        await take(db, cashier, order_id, ret(shop.store1, [(1, 1)]))
    assert e.value.code == "card_not_confirmed"
    assert (await order_row(db, order_id)).refunded_cents == 0
    out = await take(db, cashier, order_id, ret(shop.store1, [(1, 1)], terminal_confirmed=True,
                                                terminal_reference="T-1"))
    assert [(r.method, r.amount_cents, r.reference) for r in out.refunds] == [
        ("card", 2500, "T-1")]


async def test_window_closed_needs_a_managers_reason(db: Database, shop: Shop) -> None:
    order_id, _ = await till_sale(db, shop, [3000])
    sold = (await order_row(db, order_id)).created_at
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order_id).values(
            created_at=sold - timedelta(days=40)))
        await uow.commit()
    cashier = await staff_actor(db, shop, "cashier1")
    with pytest.raises(Conflict) as e:
        await take(db, cashier, order_id, ret(shop.store1, [(1, 1)], refund_method="cash"))
    assert e.value.code == "return_window_closed"
    with pytest.raises(Forbidden):
        await take(db, cashier, order_id, ret(shop.store1, [(1, 1)], refund_method="cash",
                                              override_reason="regular customer"))
    manager = await staff_actor(db, shop, "manager")
    out = await take(db, manager, order_id, ret(shop.store1, [(1, 1)], refund_method="cash",
                                                override_reason="regular customer"))
    assert out.override_reason == "regular customer"
    async with db.reader() as s:
        audited = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "order", AuditEntry.subject_id == order_id))).all()
    assert "return.override" in audited


async def test_a_key_replays_and_refuses_another_body(db: Database, shop: Shop) -> None:
    order_id, _ = await till_sale(db, shop, [1000], qty=2)
    cashier = await staff_actor(db, shop, "cashier1")
    key = f"rk-{uuid.uuid4().hex}"
    first, replayed = await returns.take_return(
        db, cashier, order_id, ret(shop.store1, [(1, 1)], refund_method="cash"),
        idempotency_key=key)
    again, replayed2 = await returns.take_return(
        db, cashier, order_id, ret(shop.store1, [(1, 1)], refund_method="cash"),
        idempotency_key=key)
    assert (replayed, replayed2) == (False, True) and again.id == first.id
    assert (await order_row(db, order_id)).refunded_cents == 1000  # once
    with pytest.raises(Conflict) as e:
        await returns.take_return(db, cashier, order_id,
                                  ret(shop.store1, [(1, 2)], refund_method="cash"),
                                  idempotency_key=key)
    assert e.value.code == "idempotency_key_reused"


async def test_store_credit_needs_a_customer(db: Database, shop: Shop) -> None:
    cashier = await staff_actor(db, shop, "cashier1")
    anon, _ = await till_sale(db, shop, [1200])
    with pytest.raises(ValidationFailed) as e:
        await take(db, cashier, anon, ret(shop.store1, [(1, 1)], refund_method="store_credit"))
    assert e.value.code == "store_credit_needs_customer"
    cid = await customer(db)
    order_id, _ = await till_sale(db, shop, [1200], customer_id=cid)
    out = await take(db, cashier, order_id, ret(shop.store1, [(1, 1)],
                                                refund_method="store_credit"))
    assert [(r.method, r.amount_cents) for r in out.refunds] == [("store_credit", 1200)]
    async with db.reader() as s:
        card = await store_credit_of(s, cid)
    assert card is not None and card.balance_cents == 1200


async def test_points_come_back_in_proportion_and_earned_ones_go(
        db: Database, shop: Shop) -> None:
    cid = await customer(db)
    await till_sale(db, shop, [50000], customer_id=cid)  # earns 500 points
    async with db.reader() as s:
        start = await balance(s, cid)
    # 2 units for 20.00 each: 400 points (4.00) and 36.00 cash.
    order_id, _ = await till_sale(db, shop, [2000], qty=2, customer_id=cid, payments=[
        {"method": "points", "amount_cents": 400}, {"method": "cash"}])
    async with db.reader() as s:
        after_sale = await balance(s, cid)
    assert after_sale == start - 400 + 36  # earned on the 36.00 paid in cash
    out = await take(db, await staff_actor(db, shop, "cashier1"), order_id,
                     ret(shop.store1, [(1, 1)], refund_method="cash"))
    # Half the goods: half the points back (200), the rest in cash (18.00), and the
    # points earned on that cash taken back.
    assert (out.points_returned, out.refund_cents, out.points_reversed) == (200, 1800, 18)
    async with db.reader() as s:
        assert await balance(s, cid) == after_sale + 200 - 18


async def test_web_order_returned_in_store_goes_back_to_paytrail(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v1, v2] = await make_variants(db, [1500, 2000], stock={shop.warehouse: 5})
    c = cmd(int(str(v1["id"])))
    c = c.model_copy(update={"lines": [*c.lines, c.lines[0].model_copy(
        update={"variant_id": int(str(v2["id"]))})]})
    order, _ = await place_web_order(db, settings, c, customer_id=None,
                                     key=f"wr-{uuid.uuid4().hex}")
    assert order.delivery is not None and order.delivery.fee_cents == 590
    stamp, txn = await attempt(db, order)
    await record_payment_status(db, settings, stamp, txn, "ok", order.total_cents)
    cashier = await staff_actor(db, shop, "cashier1")
    first = await take(db, cashier, order.id, ret(shop.store1, [(1, 1)]))
    assert [(r.method, r.status, r.amount_cents, r.reference) for r in first.refunds] == [
        ("paytrail", "due", 1500, txn)]
    assert first.delivery_fee_cents == 0
    # The rest: a full withdrawal, so the delivery fee comes back too.
    rest = await take(db, cashier, order.id, ret(shop.store1, [(2, 1)]))
    assert rest.delivery_fee_cents == 590 and rest.refund_cents == 2000 + 590
    o = await order_row(db, order.id)
    assert (o.status, o.refunded_cents) == ("returned", order.total_cents)
    assert await on_hand(db, int(str(v1["id"])), shop.store1) == 1
    async with db.reader() as s:
        receipt = await returns.credit_receipt(s, rest.id)
    assert receipt.total_cents == -(2000 + 590) and receipt.business_id
    assert sum(v.vat_cents for v in receipt.vat) < 0


async def test_post_return_of_a_cash_sale(db: Database, shop: Shop) -> None:
    cid = await customer(db)
    order_id, [vid] = await till_sale(db, shop, [2400], qty=2, customer_id=cid)
    service = await staff_actor(db, shop, "service")
    async with db.uow() as uow:
        req = await returns.request_post_return(uow, service, order_id, PostReturnIn(
            lines=[ReturnLineIn(line_no=1, quantity=1)], reason="too small"),
            channel="service")
        await uow.commit()
    assert req.status == "requested" and req.code.startswith("R")
    # Set aside: only one more unit can be returned meanwhile.
    async with db.reader() as s:
        view = await returns.returnable_lines(s, order_id)
    assert view.lines[0].returnable_quantity == 1
    manager = await staff_actor(db, shop, "manager")
    stock = await on_hand(db, vid, shop.warehouse)
    async with db.uow() as uow:
        got = await returns.receive_post_return(uow, manager, req.code.lower(), ReceiveIn(
            location_id=shop.warehouse, lines=[ReceiveLineIn(line_no=1, restock=True)]))
        await uow.commit()
    # Paid in cash at a till; back by post: store credit (the merchant's rule).
    assert got.status == "completed"
    assert [(r.method, r.amount_cents) for r in got.refunds] == [("store_credit", 2400)]
    assert await on_hand(db, vid, shop.warehouse) == stock + 1
    async with db.uow() as uow:  # received twice: nothing more
        again = await returns.receive_post_return(uow, manager, req.code, ReceiveIn(
            location_id=shop.warehouse))
        await uow.commit()
    assert again.refund_cents == 2400 and len(again.refunds) == 1
    async with db.reader() as s:
        assert (await s.get(Order, order_id)).refunded_cents == 2400  # type: ignore[union-attr]


async def test_post_return_without_customer_needs_a_bank_account(
        db: Database, shop: Shop) -> None:
    order_id, _ = await till_sale(db, shop, [990])
    service = await staff_actor(db, shop, "service")
    async with db.uow() as uow:
        req = await returns.request_post_return(uow, service, order_id, PostReturnIn(
            lines=[ReturnLineIn(line_no=1, quantity=1)], reason="faulty",
            bank_account=BankAccountIn(holder="Anna Asiakas", iban="FI21 1234 5600 0007 85")))
        await uow.commit()
    async with db.uow() as uow:
        got = await returns.receive_post_return(
            uow, await staff_actor(db, shop, "manager"), req.code,
            ReceiveIn(location_id=shop.warehouse))
        await uow.commit()
    [r] = got.refunds
    assert (r.method, r.status, r.amount_cents) == ("bank_transfer", "due", 990)
    assert r.reference.startswith("FI2112345600000785 Anna")
    async with db.reader() as s:
        rows = (await s.scalars(select(Refund).where(Refund.order_id == order_id))).all()
    assert len(rows) == 1


async def test_refunds_are_on_the_tills_x_and_z_report(db: Database, shop: Shop) -> None:
    from saumaton.tills.zreport import z_report
    order_id, _ = await till_sale(db, shop, [1999], qty=2)
    async with db.reader() as s:
        sold_in = (await s.get(Order, order_id)).drawer_session_id  # type: ignore[union-attr]
        assert sold_in is not None
        sale_report = await z_report(s, sold_in)
    drawer = await open_drawer(db, shop.store2)
    cashier2 = await staff_actor(db, shop, "cashier2")
    await take(db, cashier2, order_id, ret(shop.store2, [(1, 1)], refund_method="cash",
                                           drawer_session_id=drawer))
    async with db.reader() as s:
        report = await z_report(s, drawer)
        after = await z_report(s, sold_in)
    assert (report.return_count, report.returned_units, report.refund_cents) == (1, 1, 1999)
    c = report.cash_refunds
    assert (c.count, c.amount_cents, c.rounding_cents, c.paid_out_cents) == (1, 1999, 1, 2000)
    assert report.expected_cents == report.float_cents - 2000
    assert [(v.rate_bp, v.gross_cents) for v in report.return_vat] == [(2550, 1999)]
    # The sale stays on the report of the day it was made.
    assert (after.sales_count, after.net_sales_cents) == (sale_report.sales_count,
                                                          sale_report.net_sales_cents)


async def test_credit_receipt_by_email(db: Database, shop: Shop, settings: Settings) -> None:
    from saumaton.mail.messages import credit_receipt
    order_id, _ = await till_sale(db, shop, [1250])
    drawer = await open_drawer(db, shop.store1)
    out = await take(db, await staff_actor(db, shop, "cashier1"), order_id,
                     ret(shop.store1, [(1, 1)], refund_method="cash", drawer_session_id=drawer))
    async with db.reader() as s:
        receipt = await returns.credit_receipt(s, out.id, settings)
    assert receipt.receipt_no == out.receipt_no and receipt.total_cents == -1250
    mail = credit_receipt(receipt, settings=settings, lang="fi")
    assert mail.subject.startswith(f"Hyvityskuitti {out.receipt_no}")
    for text in (mail.text, mail.html):
        assert settings.business_id in text and out.order_number in text
        assert "-12,50" in text.replace("−", "-").replace("\xa0", " ")
    async with db.uow() as uow:
        mail_id = await returns.email_credit_receipt(uow, out.id, "anna@example.fi",
                                                     settings=settings)
        await uow.commit()
    async with db.reader() as s:
        queued = await s.get(OutgoingMail, mail_id)
    assert queued is not None and queued.to_addr == "anna@example.fi"
    assert queued.subject == mail.subject  # the shop's language: Finnish


def exchange_sale(sid: int, variant_id: int, expected: int, **kw: Any) -> TillSaleIn:
    return TillSaleIn(key=uuid.uuid4().hex, session_id=sid, expected_total_cents=expected,
                      lines=[TillLineIn(variant_id=variant_id)],
                      payments=[TillPaymentIn(**p) for p in kw.pop(
                          "payments", [{"method": "cash"}])], **kw)


async def test_exchange_for_dearer_goods_pays_the_difference(db: Database, shop: Shop) -> None:
    from saumaton.tills.zreport import z_report
    order_id, [old] = await till_sale(db, shop, [2490])
    [new] = await make_variants(db, [3290], stock={shop.store1: 3})
    nid = int(str(new["id"]))
    drawer = await open_drawer(db, shop.store1)
    cashier = await staff_actor(db, shop, "cashier1")
    old_stock, new_stock = await on_hand(db, old, shop.store1), await on_hand(db, nid, shop.store1)
    sale = exchange_sale(drawer, nid, 3290)
    out, replayed = await returns.take_exchange(
        db, cashier, order_id, ret(shop.store1, [(1, 1)], reason="other shade"), sale)
    assert not replayed and out.difference_cents == 800
    assert out.return_.exchange_order_id == out.sale.id
    assert [(r.method, r.amount_cents) for r in out.return_.refunds] == [("exchange", 2490)]
    assert [(p.method, p.amount_cents) for p in out.sale.payments] == [
        ("exchange", 2490), ("cash", 800)]
    assert await on_hand(db, old, shop.store1) == old_stock + 1
    assert await on_hand(db, nid, shop.store1) == new_stock - 1
    again, replayed = await returns.take_exchange(
        db, cashier, order_id, ret(shop.store1, [(1, 1)], reason="other shade"), sale)
    assert replayed and again.sale.id == out.sale.id
    async with db.reader() as s:
        report = await z_report(s, drawer)
    assert report.exchange.amount_cents == 2490 and report.cash.amount_cents == 800
    assert report.expected_cents == report.float_cents + 800  # only the difference in cash


async def test_exchange_for_cheaper_goods_refunds_the_rest(db: Database, shop: Shop) -> None:
    order_id, _ = await till_sale(db, shop, [3000])
    [new] = await make_variants(db, [1000], stock={shop.store1: 3})
    drawer = await open_drawer(db, shop.store1)
    out, _ = await returns.take_exchange(
        db, await staff_actor(db, shop, "cashier1"), order_id,
        ret(shop.store1, [(1, 1)], refund_method="cash"),
        exchange_sale(drawer, int(str(new["id"])), 1000))
    assert out.difference_cents == -2000
    assert [(p.method, p.amount_cents) for p in out.sale.payments] == [("exchange", 1000)]
    assert sorted((r.method, r.amount_cents) for r in out.return_.refunds) == [
        ("cash", 2000), ("exchange", 1000)]
    o = await order_row(db, order_id)
    assert (o.status, o.refunded_cents) == ("returned", 3000)
    # A price that changed meanwhile: nothing of the exchange is written.
    order2, _ = await till_sale(db, shop, [3000])
    with pytest.raises(Conflict) as e:
        await returns.take_exchange(
            db, await staff_actor(db, shop, "cashier1"), order2,
            ret(shop.store1, [(1, 1)], refund_method="cash"),
            exchange_sale(drawer, int(str(new["id"])), 999))
    assert e.value.code == "price_changed"
    assert (await order_row(db, order2)).status == "completed"


async def test_a_shopper_starts_a_post_return_and_cancels_it(db: Database, shop: Shop) -> None:
    from saumaton.core.actor import SYSTEM
    from saumaton.core.errors import NotFound
    cid, other = await customer(db), await customer(db)
    order_id, _ = await till_sale(db, shop, [1800], qty=2, customer_id=cid)
    wanted = PostReturnIn(lines=[ReturnLineIn(line_no=1, quantity=2)], reason="allergy")
    with pytest.raises(NotFound):  # not her order: as if it did not exist
        async with db.uow() as uow:
            await returns.request_post_return(uow, SYSTEM, order_id, wanted, customer_id=other)
    async with db.uow() as uow:
        req = await returns.request_post_return(uow, SYSTEM, order_id, wanted,
                                                customer_id=cid)
        await uow.commit()
    async with db.reader() as s:
        assert (await returns.returnable_lines(s, order_id)).lines[0].returnable_quantity == 0
    with pytest.raises(NotFound):
        async with db.uow() as uow:
            await returns.cancel_post_return(uow, SYSTEM, req.code, customer_id=other)
    async with db.uow() as uow:
        cancelled = await returns.cancel_post_return(uow, SYSTEM, req.code, customer_id=cid)
        await uow.commit()
    assert cancelled.status == "cancelled"
    async with db.reader() as s:
        view = await returns.returnable_lines(s, order_id)
        assert view.lines[0].returnable_quantity == 2 and view.window_open
        assert await returns.find_order(s, view.number) == order_id
    with pytest.raises(NotFound):  # a cancelled return cannot be received
        async with db.uow() as uow:
            await returns.receive_post_return(uow, await staff_actor(db, shop, "manager"),
                                              "RNOPE-00000", ReceiveIn(location_id=shop.store1))
    with pytest.raises(Conflict) as e:
        async with db.uow() as uow:
            await returns.receive_post_return(uow, await staff_actor(db, shop, "manager"),
                                              req.code, ReceiveIn(location_id=shop.store1))
    assert e.value.code == "return_not_open"
