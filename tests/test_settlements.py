"""Paytrail settlement reconciliation: a settlement file is imported, every line matched
to our payment or refund (by stamp, reference or transaction id) or listed with its
cause, the payout checked, a re-import changes nothing; bad files are refused whole."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from saumaton.audit.models import AuditEntry
from saumaton.config import Settings
from saumaton.core.errors import Forbidden
from saumaton.db.uow import Database
from saumaton.payments.models import PaytrailPayment
from saumaton.reports.period import Period
from saumaton.settlements.models import PaytrailSettlement, SettlementLine
from saumaton.settlements.parsing import ReportInvalid, euros_to_cents, parse_report
from saumaton.settlements.services import (
    discrepancies,
    grace_cutoff,
    import_report,
    month_view,
    set_bank_amount,
)
from tests.settlement_files import (
    Row,
    paid_web_order,
    paytrail_refund,
    report_csv,
    report_json,
    row_for,
)
from tests.support import Shop, staff_actor

TZ = "Europe/Helsinki"
LATER = date(2026, 1, 30)  # "today" for the checks: every grace period has passed


def test_euros_are_read_exactly() -> None:
    assert euros_to_cents(Decimal("25.55")) == 2555
    assert euros_to_cents("0,10") == 10
    assert euros_to_cents("-4,00", signed=True) == -400
    for bad in ("12.345", "abc", "", "-1"):
        with pytest.raises(ValueError):
            euros_to_cents(bad)
    # JSON numbers become Decimal, never binary floats: 0.1 + 0.2 is exactly 30 cents
    report = parse_report(b'[{"amount": 0.1, "stamp": "a", "status": "Paid", '
                          b'"settlementId": 1, "paymentMethodFee": 0.2}]')
    [line] = report.settlements[0].lines
    assert (line.amount_cents, line.fee_cents) == (10, 20)


def test_grace_counts_business_days() -> None:
    assert grace_cutoff(date(2026, 12, 7), 1) == date(2026, 12, 4)  # Monday → Friday
    assert grace_cutoff(date(2026, 12, 9), 7) == date(2026, 11, 30)


async def _scenario(db: Database, settings: Settings, shop: Shop, month: int, fmt: str
                    ) -> tuple[bytes, dict[str, object]]:
    """Three payments settled (matched by stamp, by transaction id, by reference), a
    refund deducted, fees, one payment not ours, one of ours missing."""
    day = date(2025, month, 3)
    p1, p2, p3, missing = [await paid_web_order(db, settings, shop, price, day)
                           for price in (2000, 3590, 1250, 990)]
    refund = await paytrail_refund(db, p1, 500, date(2025, month, 4))
    rows = [row_for(p1, fee=25), row_for(p2, fee=25, commission=54),
            row_for(p3, fee=25)]
    rows[1].stamp = rows[1].reference = ""  # only the transaction id
    rows[2].stamp = rows[2].archive = ""  # only the reference (order number)
    if fmt == "json":  # the refund as a row of its own
        rows.append(Row(-500, stamp=refund.refund_stamp or "", archive=refund.provider_refund_id
                        or "", original=p1.order.number))
    else:  # the refund in the payment's refunditems
        rows[0].refunditems = [(refund.refund_stamp or "", -500)]
    rows.append(Row(1234, stamp="not-ours-" + fmt, reference="RF-x", archive="arch-x",
                    fee=25))
    sid = f"{fmt}-{month}"
    build = report_json if fmt == "json" else report_csv
    data = build(sid, f"4566737{month}", date(2025, month, 10), rows)
    return data, {"p": (p1, p2, p3), "missing": missing, "refund": refund, "sid": sid,
                  "period": Period.month(2025, month)}


@pytest.mark.parametrize(("fmt", "month"), [("json", 3), ("csv", 4)])
async def test_settlement_with_exactly_two_discrepancies(
        db: Database, settings: Settings, shop: Shop, fmt: str, month: int) -> None:
    data, sc = await _scenario(db, settings, shop, month, fmt)
    finance = await staff_actor(db, shop, "finance")
    report = parse_report(data, f"report.{fmt}")
    async with db.uow() as uow:
        out = await import_report(uow, finance, report, source="file", filename=f"r.{fmt}")
        await uow.commit()
    [sid] = out.imported
    p1, p2, p3 = sc["p"]  # type: ignore[misc]
    async with db.reader() as s:
        settlement = await s.get(PaytrailSettlement, sid)
        assert settlement is not None
        lines = (await s.scalars(select(SettlementLine).where(
            SettlementLine.settlement_id == sid).order_by(SettlementLine.id))).all()
        found = await discrepancies(s, sc["period"], TZ, LATER, 7)  # type: ignore[arg-type]
        view = await month_view(s, sc["period"], TZ, LATER, 7)  # type: ignore[arg-type]
    got = sorted((x.kind, x.paytrail_payment_id or 0, x.refund_id or 0, x.order_id or 0,
                   x.state, x.cause) for x in lines)
    assert got == sorted([
        ("payment", p1.payment_id, 0, p1.order.id, "matched", ""),
        ("payment", p2.payment_id, 0, p2.order.id, "matched", ""),
        ("payment", p3.payment_id, 0, p3.order.id, "matched", ""),
        ("refund", 0, sc["refund"].id, p1.order.id, "matched", ""),  # type: ignore[attr-defined]
        ("payment", 0, 0, 0, "discrepancy", "settled_unknown")])
    # exactly two discrepancies: the payment not ours, ours never settled
    assert sorted((d.cause, d.stamp) for d in found) == [
        ("not_settled", sc["missing"].stamp),  # type: ignore[attr-defined]
        ("settled_unknown", f"not-ours-{fmt}")]
    payments = p1.amount_cents + p2.amount_cents + p3.amount_cents + 1234
    fees = 4 * 25 + 54
    assert (settlement.payments_cents, settlement.refunds_cents, settlement.fees_cents) == (
        payments, 500, fees)
    assert settlement.payout_cents == payments - 500 - fees
    assert settlement.discrepancy_count == 1 and settlement.line_count == 5
    assert settlement.settled_on == date(2025, month, 10)
    assert settlement.reference == f"4566737{month}" and settlement.payout_ok
    assert (view.fees_cents, view.reconciled, view.discrepancies, len(view.missing)) == (
        fees, 4, 1, 1)
    # before the grace period has passed, the missing payment is not yet a discrepancy
    async with db.reader() as s:
        early = await discrepancies(s, sc["period"], TZ, date(2025, month, 10), 7)  # type: ignore[arg-type]
    assert [d.cause for d in early] == ["settled_unknown"]


async def test_reimporting_changes_nothing(db: Database, settings: Settings,
                                           shop: Shop) -> None:
    data, _sc = await _scenario(db, settings, shop, 5, "json")
    finance = await staff_actor(db, shop, "finance")

    async def state() -> tuple[int, int, int]:
        async with db.reader() as s:
            return (int(await s.scalar(select(func.count()).select_from(PaytrailSettlement)) or 0),
                    int(await s.scalar(select(func.count()).select_from(SettlementLine)) or 0),
                    int(await s.scalar(select(func.count()).select_from(AuditEntry)) or 0))

    async with db.uow() as uow:
        first = await import_report(uow, finance, parse_report(data), source="file")
        await uow.commit()
    before = await state()
    for _ in range(2):
        async with db.uow() as uow:
            again = await import_report(uow, finance, parse_report(data), source="api",
                                        bank_cents=1)
            await uow.commit()
        assert again.imported == [] and again.unchanged == first.imported
    assert await state() == before
    async with db.reader() as s:
        settlement = await s.get(PaytrailSettlement, first.imported[0])
    assert settlement is not None and settlement.source == "file" and settlement.bank_cents is None


async def test_payout_check_finds_a_bank_amount_that_differs(
        db: Database, settings: Settings, shop: Shop) -> None:
    data, _sc = await _scenario(db, settings, shop, 6, "json")
    finance = await staff_actor(db, shop, "finance")
    report = parse_report(data)
    payout = (report.settlements[0].payments_cents - report.settlements[0].refunds_cents
              - report.settlements[0].fees_cents)
    async with db.uow() as uow:
        [sid] = (await import_report(uow, finance, report, source="file",
                                     bank_cents=payout - 100)).imported
        await uow.commit()
    async with db.reader() as s:
        view = await month_view(s, Period.month(2025, 6), TZ, LATER, 7)
    [settlement] = view.settlements
    assert settlement.payout_cents == payout and not settlement.payout_ok
    assert view.payout_mismatches == 1
    async with db.uow() as uow:
        await set_bank_amount(uow, finance, sid, payout)
        await uow.commit()
    async with db.reader() as s:
        view = await month_view(s, Period.month(2025, 6), TZ, LATER, 7)
    assert view.settlements[0].payout_ok and view.payout_mismatches == 0


async def test_amounts_refunds_and_duplicates(db: Database, settings: Settings,
                                              shop: Shop) -> None:
    day = date(2025, 7, 1)
    a, b = [await paid_web_order(db, settings, shop, 1500, day) for _ in range(2)]
    kept = await paytrail_refund(db, a, 300, day)  # never deducted
    finance = await staff_actor(db, shop, "finance")
    first = report_json("dup-1", "1", date(2025, 7, 8), [row_for(a, amount=1400),
                                                          row_for(b)])
    second = report_json("dup-2", "2", date(2025, 7, 15), [row_for(b)])
    async with db.uow() as uow:
        for data in (first, second):
            await import_report(uow, finance, parse_report(data), source="file")
        await uow.commit()
    async with db.reader() as s:
        found = await discrepancies(s, Period.month(2025, 7), TZ, LATER, 7)
    assert sorted((d.cause, d.paytrail_id, d.amount_cents, d.ours_cents) for d in found) == [
        ("amount_mismatch", "dup-1", 1400, a.amount_cents),
        ("duplicate", "dup-2", b.amount_cents, b.amount_cents),
        ("refund_not_deducted", "", 300, 300)]
    [not_deducted] = [d for d in found if d.cause == "refund_not_deducted"]
    assert (not_deducted.order_id, not_deducted.stamp) == (a.order.id, kept.refund_stamp)


def test_a_bad_file_is_refused_with_every_error() -> None:
    data = (b"amount;status;stamp;entryDate;settlementId;paymentMethodFee\r\n"
            b"12,50;Paid and settled;a;01-03-2025;7;0,25\r\n"
            b"12,345;Paid and settled;b;01-03-2025;7;0,25\r\n"
            b"10,00;Done;c;31-06-2019;7;x\r\n"
            b"10,00;Paid;;01-03-2025;;0\r\n")
    with pytest.raises(ReportInvalid) as err:
        parse_report(data, "bad.csv")
    assert [(e.row, e.field, e.code) for e in err.value.errors] == [
        (3, "amount", "invalid_amount"),
        (4, "status", "unknown_status"),
        (4, "paymentMethodFee", "invalid_amount"),
        (4, "entryDate", "invalid_date"),
        (5, "settlementId", "required"),
        (5, "stamp", "no_identifier")]
    with pytest.raises(ReportInvalid) as err:
        parse_report(b'{"payments": [{"amount": "1.2.3"}', "x.json")
    assert err.value.errors[0].code == "invalid_json"


async def test_only_finance_and_the_owner_import(db: Database, shop: Shop) -> None:
    report = parse_report(b'[{"amount": 1, "stamp": "perm", "status": "Paid", '
                          b'"settlementId": "perm-1"}]')
    for who in ("manager", "cashier1", "service"):
        actor = await staff_actor(db, shop, who)
        async with db.uow() as uow:
            with pytest.raises(Forbidden):
                await import_report(uow, actor, report, source="file")


async def test_settled_but_failed_with_us_and_a_stated_payout(
        db: Database, settings: Settings, shop: Shop) -> None:
    """A payment we hold as failed is settled (status_mismatch); the report's envelope
    states a payout that differs from payments − refunds − fees; a refund both as a row
    and in refunditems counts once."""
    day = date(2025, 8, 4)
    ok, failed = [await paid_web_order(db, settings, shop, 2000, day) for _ in range(2)]
    async with db.uow() as uow:
        await uow.session.execute(update(PaytrailPayment).where(
            PaytrailPayment.id == failed.payment_id).values(status="fail"))
        await uow.commit()
    refund = await paytrail_refund(db, ok, 700, day)
    rows = [row_for(ok, fee=25), row_for(failed, fee=25),
            Row(-700, stamp=refund.refund_stamp or "", archive="x", original=ok.order.number)]
    rows[0].refunditems = [(refund.refund_stamp or "", -700)]
    envelope = {"settlementId": "env-8", "settlementReference": "123",
                "settledAt": "11-08-2025", "payout": 1.00,
                "payments": json.loads(report_json("env-8", "123", date(2025, 8, 11), rows))}
    for item in envelope["payments"]:  # type: ignore[union-attr]
        del item["settlementId"]
    report = parse_report(json.dumps(envelope).encode(), "env.json")
    [ps] = report.settlements
    assert (ps.paytrail_id, ps.stated_payout_cents, ps.refunds_cents) == ("env-8", 100, 700)
    finance = await staff_actor(db, shop, "finance")
    async with db.uow() as uow:
        [sid] = (await import_report(uow, finance, report, source="file")).imported
        await uow.commit()
    async with db.reader() as s:
        settlement = await s.get(PaytrailSettlement, sid)
        lines = (await s.scalars(select(SettlementLine).where(
            SettlementLine.settlement_id == sid).order_by(SettlementLine.row))).all()
    assert sorted((x.kind, x.state, x.cause) for x in lines) == [
        ("payment", "discrepancy", "status_mismatch"), ("payment", "matched", ""),
        ("refund", "matched", "")]
    assert settlement is not None and not settlement.payout_ok
    assert settlement.payout_difference == 100 - (ok.amount_cents + failed.amount_cents
                                                  - 700 - 50)
