"""The cash drawer (both databases): opening with a float, cash in and out, a day of
till sales made with `sell`, and the Z report whose every figure must equal the sums
computed here straight from the rows; closing numbers the reports 1, 2, … per store,
also when two registers close at the same moment; reprints return what was stored."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.db.uow import Database
from saumaton.orders.discounts import DiscountIn
from saumaton.orders.models import Order, OrderLine, SaleVoid
from saumaton.payments.models import Payment
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.tills.drawer import (
    DrawerOut,
    cash_movement,
    close_session,
    ensure_register,
    open_session,
    open_session_at,
)
from saumaton.tills.models import CashMovement, DrawerSession, Register
from saumaton.tills.sales import (
    TillLineIn,
    TillPaymentIn,
    TillSaleIn,
    VoidIn,
    VoidsIn,
    record_voids,
    sell,
)
from saumaton.tills.zreport import ZReport, get_report, list_reports, z_report
from tests.support import NewStore, make_variants, new_store

OWNER = Actor(label="staff:test owner", name="Olli Omistaja",
              grants=(RoleGrant("owner", None),))


Store = NewStore


def key() -> str:
    return uuid.uuid4().hex


async def open_drawer(db: Database, store: Store, float_cents: int = 15000,
                      k: str | None = None, actor: Actor | None = None) -> DrawerOut:
    async with db.uow() as uow:
        out = await open_session(uow, actor or store.cashier, store.id, float_cents,
                                 k or key())
        await uow.commit()
    return out


async def move(db: Database, store: Store, session_id: int, kind: str, amount: int | None,
               reason: str, k: str | None = None) -> None:
    async with db.uow() as uow:
        await cash_movement(uow, store.cashier, session_id, kind, amount, reason, k or key())
        await uow.commit()


async def close(db: Database, actor: Actor, session_id: int, counted: int | None,
                note: str = "") -> ZReport:
    async with db.uow() as uow:
        report = await close_session(uow, actor, session_id, counted, note)
        await uow.commit()
    return report


async def x_report(db: Database, session_id: int) -> ZReport:
    async with db.reader() as s:
        return await z_report(s, session_id)


# --- opening ----------------------------------------------------------------------------

async def test_open_is_idempotent_and_a_second_open_is_refused(db: Database) -> None:
    store = await new_store(db)
    async with db.reader() as s:
        assert await open_session_at(s, store.id) is None
    k = key()
    first = await open_drawer(db, store, 15000, k)
    again = await open_drawer(db, store, 15000, k)  # a double tap
    assert again == first
    assert (first.register_name, first.float_cents, first.opened_by) == (
        "Kassa 1", 15000, "Kaisa Kassa")
    with pytest.raises(Conflict) as exc:
        await open_drawer(db, store, 15000)  # another key: the register is open
    assert exc.value.code == "drawer_already_open"
    with pytest.raises(Conflict) as exc:
        await open_drawer(db, store, 20000, k)  # the same key with another float
    assert exc.value.code == "idempotency_key_reused"

    # Both taps at the same moment still give one session.
    store2 = await new_store(db)
    k2 = key()
    a, b = await asyncio.gather(open_drawer(db, store2, 5000, k2),
                                open_drawer(db, store2, 5000, k2))
    assert a.id == b.id
    async with db.reader() as s:
        assert await open_session_at(s, store.id) == first
        sessions = (await s.scalars(select(DrawerSession.id).where(
            DrawerSession.location_id.in_([store.id, store2.id])))).all()
        registers = (await s.scalars(select(Register.id).where(
            Register.location_id.in_([store.id, store2.id])))).all()
    assert len(sessions) == 2 and len(registers) == 2


async def test_open_validation_and_permissions(db: Database) -> None:
    store, other = await new_store(db), await new_store(db)
    for bad in (-1, 10_000_001):
        with pytest.raises(ValidationFailed) as exc:
            await open_drawer(db, store, bad)
        assert exc.value.field == "float"
    with pytest.raises(Forbidden):
        await open_drawer(db, store, actor=other.cashier)
    async with db.reader() as s:
        assert await open_session_at(s, store.id) is None
        assert await s.scalar(select(Register.id).where(Register.location_id == store.id)) \
            is None
    async with db.uow() as uow:  # the register is made once
        r1 = await ensure_register(uow, store.id)
        r2 = await ensure_register(uow, store.id)
        await uow.commit()
    assert r1.id == r2.id and r1.name == "Kassa 1"
    drawer = await open_drawer(db, store, 0)
    assert drawer.register_id == r1.id and drawer.float_cents == 0


# --- cash in and out --------------------------------------------------------------------

async def test_cash_movements(db: Database) -> None:
    store, other = await new_store(db), await new_store(db)
    drawer = await open_drawer(db, store, 10000)
    k = key()
    await move(db, store, drawer.id, "in", 5000, "  Vaihtokolikot   pankista ", k)
    await move(db, store, drawer.id, "in", 5000, "Vaihtokolikot pankista", k)  # retried
    await move(db, store, drawer.id, "out", 1250, "Postimerkit")
    bad: list[tuple[str, int | None, str, str]] = [
        ("in", 0, "x", "amount"), ("out", -5, "x", "amount"), ("in", None, "x", "amount"),
        ("in", 10_000_001, "x", "amount"), ("in", 100, "   ", "reason"),
        ("in", 100, "x" * 201, "reason"), ("sideways", 100, "x", "kind"),
    ]
    for kind, amount, reason, field in bad:
        with pytest.raises(ValidationFailed) as exc:
            await move(db, store, drawer.id, kind, amount, reason)
        assert exc.value.field == field, (kind, amount, reason)
    with pytest.raises(Conflict) as conflict:  # the same key for another movement
        await move(db, store, drawer.id, "out", 5000, "Vaihtokolikot pankista", k)
    assert conflict.value.code == "idempotency_key_reused"
    with pytest.raises(Forbidden):
        async with db.uow() as uow:
            await cash_movement(uow, other.cashier, drawer.id, "out", 100, "x", key())
    with pytest.raises(NotFound):
        await move(db, store, 2**40, "out", 100, "x")

    report = await x_report(db, drawer.id)
    assert [(m.kind, m.amount_cents, m.reason) for m in report.movements] == [
        ("in", 5000, "Vaihtokolikot pankista"), ("out", 1250, "Postimerkit")]
    assert (report.cash_in_cents, report.cash_out_cents) == (5000, 1250)
    assert report.expected_cents == 10000 + 5000 - 1250
    assert report.z_number is None and report.counted_cents is None

    await close(db, store.cashier, drawer.id, 13750)
    with pytest.raises(Conflict) as conflict:
        await move(db, store, drawer.id, "in", 100, "after closing")
    assert conflict.value.code == "drawer_closed"
    async with db.reader() as s:
        n = len((await s.scalars(select(CashMovement.id).where(
            CashMovement.session_id == drawer.id))).all())
    assert n == 2


# --- a day of sales and its Z report ---------------------------------------------------

def cash(tendered: int | None = None, amount: int | None = None) -> TillPaymentIn:
    return TillPaymentIn(method="cash", tendered_cents=tendered, amount_cents=amount)


def card(amount: int | None = None, confirmed: bool = True) -> TillPaymentIn:
    return TillPaymentIn(method="card", amount_cents=amount, terminal_confirmed=confirmed)


async def day_of_sales(db: Database, store: Store, session_id: int) -> list[int]:
    """Cash with rounding, card, split tender, a manual discount, a campaign, a void,
    an offline card sale to confirm, voids of a cancelled sale; returns the order ids."""
    std = await make_variants(db, [1999, 1234], stock={store.id: 2})
    [food] = await make_variants(db, [1234], vat_class="food", stock={store.id: 10})
    a, b, f = int(str(std[0]["id"])), int(str(std[1]["id"])), int(str(food["id"]))
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name=f"camp-{uuid.uuid4().hex[:6]}", kind="percent", value=1000,
            starts_at=utcnow() - timedelta(days=1), variant_ids=[b],
            channel_codes=[store.channel]))
        await uow.commit()

    def line(v: int, q: int = 1, **kw: Any) -> TillLineIn:
        return TillLineIn(variant_id=v, quantity=q, **kw)

    sales = [
        # cash, 19,99 rounded to 20,00, 50,00 handed over
        TillSaleIn(key=key(), session_id=session_id, lines=[line(a)], payments=[cash(5000)]),
        # card: two food items at 13,5 %
        TillSaleIn(key=key(), session_id=session_id, lines=[line(f, 2)], payments=[card()]),
        # split tender: 10,00 by card, the rest (and its rounding) in cash
        TillSaleIn(key=key(), session_id=session_id, lines=[line(a), line(f)],
                   payments=[card(1000), cash(3000)]),
        # a manual discount (10 %) and the campaign item, exact cash
        TillSaleIn(key=key(), session_id=session_id, lines=[
            line(a, discount=DiscountIn(percent_bp=1000, reason="Kolhiintunut pakkaus")),
            line(b)], payments=[cash()]),
        # a voided line: scanned, taken out, the rest paid by card
        TillSaleIn(key=key(), session_id=session_id, lines=[line(f)], payments=[card()],
                   voids=[VoidIn(variant_id=a, quantity=2, amount_cents=3998,
                                 reason="Asiakas muutti mielensä")]),
        # offline: the card terminal could not confirm; sold beyond the stock
        TillSaleIn(key=key(), session_id=session_id, lines=[line(a, 3, unit_price_cents=1999)],
                   payments=[card()], offline=True, sold_at=utcnow() - timedelta(minutes=5),
                   client_ref="K1-000001"),
    ]
    ids = []
    for cmd in sales:
        order, replayed = await sell(db, store.cashier, store.id, cmd)
        assert not replayed
        ids.append(order.id)
    again, replayed = await sell(db, store.cashier, store.id, sales[0])  # a double tap
    assert replayed and again.id == ids[0]
    assert await record_voids(db, store.cashier, store.id, VoidsIn(
        key=key(), session_id=session_id,
        voids=[VoidIn(variant_id=f, quantity=1, amount_cents=1234, reason="Peruttu")])) == 1
    return ids


def _sums(orders: list[Order], lines: list[OrderLine], payments: list[Payment],
          voids: list[SaleVoid], movements: list[CashMovement], float_cents: int
          ) -> dict[str, Any]:
    """The Z report's figures, computed independently from the rows."""
    vat: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for ln in lines:
        vat[ln.vat_rate_bp][0] += ln.total_cents
        vat[ln.vat_rate_bp][1] += ln.vat_cents
    cash_p = [p for p in payments if p.method == "cash"]
    collected = sum(p.amount_cents + p.rounding_cents for p in cash_p)
    cash_in = sum(m.amount_cents for m in movements if m.kind == "in")
    cash_out = sum(m.amount_cents for m in movements if m.kind == "out")
    return {
        "sales_count": len(orders),
        "first_receipt": min(o.receipt_no for o in orders),  # one register: same length
        "last_receipt": max(o.receipt_no for o in orders),
        "units_sold": sum(ln.quantity for ln in lines),
        "gross_sales_cents": sum(o.subtotal_cents for o in orders),
        "discount_cents": sum(o.discount_cents for o in orders),
        "campaign_discount_cents": sum(ln.discount_cents - ln.manual_discount_cents
                                       for ln in lines),
        "manual_discount_cents": sum(ln.manual_discount_cents for ln in lines),
        "manual_discount_count": sum(1 for ln in lines if ln.manual_discount_cents),
        "net_sales_cents": sum(o.total_cents for o in orders),
        "vat_cents": sum(o.vat_cents for o in orders),
        "vat": [(r, g - v, v, g) for r, (g, v) in sorted(vat.items(), reverse=True)],
        "cash": (len(cash_p), sum(p.amount_cents for p in cash_p),
                 sum(p.rounding_cents for p in cash_p), collected,
                 sum(p.tendered_cents or 0 for p in cash_p),
                 sum(p.change_cents for p in cash_p)),
        "card": (sum(1 for p in payments if p.method == "card" and p.status == "captured"),
                 sum(p.amount_cents for p in payments
                     if p.method == "card" and p.status == "captured")),
        "card_to_confirm": (
            sum(1 for p in payments if p.method == "card" and p.status == "to_confirm"),
            sum(p.amount_cents for p in payments
                if p.method == "card" and p.status == "to_confirm")),
        "voids": (len(voids), sum(v.quantity for v in voids),
                  sum(v.amount_cents for v in voids)),
        "cash_in_cents": cash_in, "cash_out_cents": cash_out,
        "expected_cents": float_cents + collected + cash_in - cash_out,
        "offline_count": sum(1 for o in orders if o.offline),
        "flags": {f: sum(1 for o in orders if f in o.flags.split())
                  for f in ("negative_stock", "price_mismatch", "card_unconfirmed")},
        "flagged_count": sum(1 for o in orders if o.flags.strip()),
    }


def _figures(r: ZReport) -> dict[str, Any]:
    return {
        "sales_count": r.sales_count, "first_receipt": r.first_receipt,
        "last_receipt": r.last_receipt, "units_sold": r.units_sold,
        "gross_sales_cents": r.gross_sales_cents, "discount_cents": r.discount_cents,
        "campaign_discount_cents": r.campaign_discount_cents,
        "manual_discount_cents": r.manual_discount_cents,
        "manual_discount_count": r.manual_discount_count,
        "net_sales_cents": r.net_sales_cents, "vat_cents": r.vat_cents,
        "vat": [(v.rate_bp, v.net_cents, v.vat_cents, v.gross_cents) for v in r.vat],
        "cash": (r.cash.count, r.cash.amount_cents, r.cash.rounding_cents,
                 r.cash.collected_cents, r.cash.tendered_cents, r.cash.change_cents),
        "card": (r.card.count, r.card.amount_cents),
        "card_to_confirm": (r.card_to_confirm.count, r.card_to_confirm.amount_cents),
        "voids": (r.void_count, r.void_units, r.void_cents),
        "cash_in_cents": r.cash_in_cents, "cash_out_cents": r.cash_out_cents,
        "expected_cents": r.expected_cents, "offline_count": r.offline_count,
        "flags": {f: r.flags.get(f, 0)
                  for f in ("negative_stock", "price_mismatch", "card_unconfirmed")},
        "flagged_count": r.flagged_count,
    }


async def rows_of(db: Database, session_id: int) -> dict[str, Any]:
    async with db.reader() as s:
        ds = await s.get(DrawerSession, session_id)
        assert ds is not None
        orders = list((await s.scalars(select(Order).where(
            Order.drawer_session_id == session_id,
            Order.status.in_(("completed", "partly_returned", "returned"))))).all())
        ids = [o.id for o in orders]
        lines = list((await s.scalars(select(OrderLine).where(
            OrderLine.order_id.in_(ids)))).all())
        payments = list((await s.scalars(select(Payment).where(
            Payment.order_id.in_(ids)))).all())
        voids = list((await s.scalars(select(SaleVoid).where(
            SaleVoid.drawer_session_id == session_id))).all())
        movements = list((await s.scalars(select(CashMovement).where(
            CashMovement.session_id == session_id))).all())
    return _sums(orders, lines, payments, voids, movements, ds.float_cents)


async def test_z_report_equals_the_sums_of_the_days_sales(db: Database) -> None:
    store = await new_store(db)
    drawer = await open_drawer(db, store, 15000)
    ids = await day_of_sales(db, store, drawer.id)
    await move(db, store, drawer.id, "in", 2000, "Kolikoita pankista")
    await move(db, store, drawer.id, "out", 5000, "Tilitys pankkiin")
    # A sale at another register of the same store is not in this drawer.
    async with db.uow() as uow:
        uow.session.add(Register(location_id=store.id, name="Kassa 2", active=True))
        await uow.commit()
    async with db.reader() as s:
        reg2 = await s.scalar(select(Register.id).where(Register.location_id == store.id,
                                                        Register.name == "Kassa 2"))
    async with db.uow() as uow:
        ds2 = DrawerSession(register_id=reg2, location_id=store.id, float_cents=0,
                            opened_by="x", opened_at=utcnow())
        uow.session.add(ds2)
        await uow.commit()
    [other] = await make_variants(db, [500], stock={store.id: 1})
    await sell(db, store.cashier, store.id, TillSaleIn(
        key=key(), session_id=ds2.id, lines=[TillLineIn(variant_id=int(str(other["id"])),
                                                        quantity=1)], payments=[cash()]))

    expected = await rows_of(db, drawer.id)
    x = await x_report(db, drawer.id)
    assert _figures(x) == expected
    # The day as made above, worked out by hand.
    assert x.sales_count == x.receipt_count == 6
    # The register's own sequence (this store's first register), not the order numbers.
    assert (x.first_receipt, x.last_receipt) == (f"{drawer.register_id}-000001",
                                                 f"{drawer.register_id}-000006")
    async with db.reader() as s:
        numbers = dict((await s.execute(select(Order.id, Order.receipt_no)
                                        .where(Order.id.in_(ids)))).all())
    assert [numbers[i] for i in ids] == [f"{drawer.register_id}-{n:06d}" for n in range(1, 7)]
    assert x.cash.rounding_cents == 1 + 2 + 0  # 19,99→20,00; 22,33→22,35; 29,10
    assert x.manual_discount_count == 1 and x.manual_discount_cents == 200
    assert x.campaign_discount_cents == 123
    assert x.gross_sales_cents - x.discount_cents == x.net_sales_cents
    assert x.discount_cents == x.campaign_discount_cents + x.manual_discount_cents
    assert [v.rate_bp for v in x.vat] == [2550, 1350]
    assert sum(v.gross_cents for v in x.vat) == x.net_sales_cents
    assert sum(v.vat_cents for v in x.vat) == x.vat_cents
    assert x.payments_cents == x.net_sales_cents
    assert x.card_to_confirm.count == 1 and x.card_to_confirm.amount_cents == 3 * 1999
    assert (x.void_count, x.void_units, x.void_cents) == (2, 3, 3998 + 1234)
    assert x.offline_count == 1
    assert x.flags["card_unconfirmed"] == 1 and x.flags["negative_stock"] >= 1
    assert x.expected_cents == 15000 + x.cash.collected_cents + 2000 - 5000

    counted = x.expected_cents - 30  # 30 cents short
    z = await close(db, store.cashier, drawer.id, counted, "Kolikko lattialla")
    assert z.z_number == 1 and z.status == "closed"
    assert _figures(z) == expected
    assert (z.counted_cents, z.difference_cents) == (counted, -30)
    assert (z.closed_by, z.opened_by, z.note) == ("Kaisa Kassa", "Kaisa Kassa",
                                                  "Kolikko lattialla")
    async with db.reader() as s:
        ds = await s.get(DrawerSession, drawer.id)
        assert ds is not None
        assert (ds.status, ds.counted_cents, ds.expected_cents, ds.z_number) == (
            "closed", counted, x.expected_cents, 1)
        assert await open_session_at(s, store.id) is None
        # Reprints return exactly what was stored at closing.
        assert await get_report(s, store.id, 1) == z
        assert await z_report(s, drawer.id) == z
        [listed] = await list_reports(s, store.id, 10)
    assert (listed.z_number, listed.net_sales_cents, listed.difference_cents) == (
        1, z.net_sales_cents, -30)


async def test_close_numbers_reports_and_refuses_bad_counts(db: Database) -> None:
    store = await new_store(db)
    numbers = []
    for day in range(3):
        drawer = await open_drawer(db, store, 10000)
        for bad in (-1, None, 10_000_001):
            with pytest.raises(ValidationFailed) as exc:
                await close(db, store.cashier, drawer.id, bad)
            assert exc.value.field == "counted"
        with pytest.raises(ValidationFailed) as exc:
            await close(db, store.cashier, drawer.id, 0, "n" * 501)
        assert exc.value.field == "note"
        async with db.reader() as s:  # nothing changed
            ds = await s.get(DrawerSession, drawer.id)
            assert ds is not None and ds.status == "open" and ds.z_number is None
        z = await close(db, OWNER, drawer.id, 10000 + day)
        numbers.append(z.z_number)
        assert z.difference_cents == day and z.closed_by == "Olli Omistaja"
        with pytest.raises(Conflict) as conflict:
            await close(db, store.cashier, drawer.id, 10000)
        assert conflict.value.code == "drawer_closed"
    assert numbers == [1, 2, 3]
    async with db.reader() as s:
        listed = await list_reports(s, store.id, 10)
        assert [r.z_number for r in listed] == [3, 2, 1]
        assert [r.z_number for r in await list_reports(s, store.id, 2)] == [3, 2]
        with pytest.raises(NotFound):
            await get_report(s, store.id, 4)
        other = await new_store(db)
        with pytest.raises(NotFound):
            await get_report(s, other.id, 1)


async def test_a_big_difference_needs_the_count_confirmed(db: Database) -> None:
    store = await new_store(db)
    drawer = await open_drawer(db, store, 10000)
    with pytest.raises(ValidationFailed) as exc:
        async with db.uow() as uow:
            await close_session(uow, store.cashier, drawer.id, 8999,
                                confirm_over_cents=1000)
    assert exc.value.code == "difference_needs_confirmation"
    assert exc.value.extra == {"difference_cents": -1001, "expected_cents": 10000}
    async with db.reader() as s:  # nothing changed
        ds = await s.get(DrawerSession, drawer.id)
        assert ds is not None and ds.status == "open" and ds.z_number is None
    async with db.uow() as uow:  # exactly the limit passes; confirmed, anything does
        z = await close_session(uow, store.cashier, drawer.id, 9000, confirm_over_cents=1000)
        await uow.commit()
    assert z.difference_cents == -1000


async def test_concurrent_closes_of_two_registers_get_distinct_numbers(db: Database) -> None:
    store = await new_store(db)
    async with db.uow() as uow:
        regs = [Register(location_id=store.id, name=f"Kassa {i}", active=True)
                for i in (1, 2, 3, 4)]
        uow.session.add_all(regs)
        await uow.session.flush()
        sessions = [DrawerSession(register_id=r.id, location_id=store.id, float_cents=100 * i,
                                  opened_by="x", opened_at=utcnow())
                    for i, r in enumerate(regs)]
        uow.session.add_all(sessions)
        await uow.commit()
    # Each close on its own connection, all at once.
    reports = await asyncio.gather(*(close(db, store.cashier, ds.id, ds.float_cents)
                                     for ds in sessions))
    assert sorted(r.z_number or 0 for r in reports) == [1, 2, 3, 4]
    async with db.reader() as s:
        stored = {ds.z_number: ds.id for ds in (await s.scalars(select(DrawerSession).where(
            DrawerSession.location_id == store.id))).all()}
    assert stored == {r.z_number: r.session_id for r in reports}
