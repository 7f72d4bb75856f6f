"""Importing settlements and matching their lines to our payments and refunds.

Matching is set-based: the lines go in with one statement and each matching rule is
one UPDATE … FROM over the whole settlement (no query per line), so a settlement of
100,000 payments imports in seconds. The rules, in order (the first that finds
something wins):

payments  1. stamp = paytrail_payments.stamp (ours, unique per attempt)
          2. reference = the order number we sent → that order's paid attempt
          3. archive number / transaction id = paytrail_payments.transaction_id
refunds   1. stamp = refunds.refund_stamp   2. transaction id = refunds.provider_refund_id

A line no rule matches is `settled_unknown`; a matched line whose amount differs from
ours `amount_mismatch`; one settling a payment we do not hold as paid (or a refund we
do not hold as sent) `status_mismatch`; a payment or refund settled twice `duplicate`.
What is missing from the settlements (`not_settled`, `refund_not_deducted`) is found
when reading, against the grace period in business days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.payments.models import PaytrailPayment, Refund
from saumaton.reports.period import Period
from saumaton.settlements.models import PaytrailSettlement, SettlementLine
from saumaton.settlements.parsing import ParsedLine, ParsedReport, ParsedSettlement

CAUSES = ("settled_unknown", "amount_mismatch", "status_mismatch", "duplicate",
          "not_settled", "refund_not_deducted")
LINES = "paytrail_settlement_lines"


@dataclass
class ImportOutcome:
    imported: list[int] = field(default_factory=list)  # our settlement ids
    unchanged: list[int] = field(default_factory=list)  # already imported: kept as they were
    ignored_rows: int = 0


async def import_report(uow: UnitOfWork, actor: Actor, report: ParsedReport, *, source: str,
                        filename: str = "", bank_cents: int | None = None) -> ImportOutcome:
    """Import every settlement of `report` that is not imported yet, and match its lines.
    A settlement already imported (same Paytrail id) is left exactly as it is."""
    actor.require("reconcile.write")
    if bank_cents is not None and len(report.settlements) != 1:
        raise ValidationFailed("the bank amount belongs to one settlement; this report "
                               "holds several", code="bank_amount_many", field="bank_amount")
    out = ImportOutcome(ignored_rows=report.ignored_rows)
    for ps in report.settlements:
        existing = await uow.session.scalar(select(PaytrailSettlement.id).where(
            PaytrailSettlement.paytrail_id == ps.paytrail_id))
        if existing is not None:
            out.unchanged.append(int(existing))
            continue
        settlement = await _import_one(uow, actor, ps, source, filename, bank_cents)
        out.imported.append(settlement.id)
    return out


async def _import_one(uow: UnitOfWork, actor: Actor, ps: ParsedSettlement, source: str,
                      filename: str, bank_cents: int | None) -> PaytrailSettlement:
    s = uow.session
    settlement = PaytrailSettlement(
        paytrail_id=ps.paytrail_id, reference=ps.reference[:40], settled_on=ps.settled_on,
        source=source, filename=filename[:200], payments_cents=ps.payments_cents,
        refunds_cents=ps.refunds_cents, fees_cents=ps.fees_cents,
        stated_payout_cents=ps.stated_payout_cents, bank_cents=bank_cents,
        line_count=len(ps.lines), discrepancy_count=0, imported_by=actor.label)
    s.add(settlement)
    await s.flush()
    await _insert_lines(s, uow.db.is_postgres, settlement.id, ps.lines)
    settlement.discrepancy_count = int(await s.scalar(
        select(func.count()).select_from(SettlementLine).where(
            SettlementLine.settlement_id == settlement.id,
            SettlementLine.state == "discrepancy")) or 0)
    await record(uow, actor, "settlement.import", "paytrail_settlement", settlement.id, {
        "paytrail_id": ps.paytrail_id, "source": source, "filename": filename[:200],
        "lines": len(ps.lines), "discrepancies": settlement.discrepancy_count,
        "payout_cents": settlement.payout_cents, "bank_cents": bank_cents})
    return settlement


def _reference_order(reference: str) -> int | None:
    """The order a reference names, when it is one of our order numbers (digits)."""
    return int(reference) if reference.isdigit() and len(reference) <= 15 else None


async def _insert_lines(s: AsyncSession, postgres: bool, settlement_id: int,
                        lines: list[ParsedLine]) -> None:
    """Insert the lines, matched. PostgreSQL: one INSERT … SELECT that matches while it
    inserts (each line written once); SQLite: insert, then one UPDATE per rule. The
    same rules, and the same tests on both."""
    if not lines:
        return
    if postgres:
        await _insert_matched_pg(s, settlement_id, lines)
        return
    # order_id starts as the order the reference names (a candidate for rule 2); the
    # matching replaces it, or clears it when nothing matched.
    await s.execute(insert(SettlementLine), [{
        "settlement_id": settlement_id, "row": x.row, "kind": x.kind, "stamp": x.stamp,
        "reference": x.reference, "transaction_id": x.transaction_id,
        "original_reference": x.original_reference, "status": x.status,
        "entry_date": x.entry_date, "amount_cents": x.amount_cents, "fee_cents": x.fee_cents,
        "commission_cents": x.commission_cents,
        "shop_commission_cents": x.shop_commission_cents,
        "order_id": _reference_order(x.reference), "state": "matched", "cause": ""}
        for x in lines])
    await match_lines(s, settlement_id)


_FIELDS = ("row", "kind", "stamp", "reference", "transaction_id", "original_reference",
           "status", "entry_date", "amount_cents", "fee_cents", "commission_cents",
           "shop_commission_cents")
_TYPES = ("int[]", "text[]", "text[]", "text[]", "text[]", "text[]", "text[]", "date[]",
          "bigint[]", "int[]", "int[]", "int[]")
_INSERT_MATCHED_PG = (
    f"INSERT INTO {LINES} (settlement_id, {', '.join(_FIELDS)}, order_id, "
    "paytrail_payment_id, refund_id, state, cause) "
    "WITH u AS (SELECT * FROM unnest("
    + ", ".join(f"CAST(:{f} AS {t})" for f, t in zip(_FIELDS, _TYPES, strict=True))
    + ", CAST(:ref_order AS bigint[])) WITH ORDINALITY AS u("
    + ", ".join(_FIELDS) + ", ref_order, ord)), "
    # rules in order: payments by stamp, by reference (the order's paid attempt: looked
    # up only for a line its stamp did not match), by transaction id; refunds by refund
    # stamp, by Paytrail's refund id
    "m AS (SELECT u.*, CASE WHEN u.kind = 'payment' THEN COALESCE(ps.id, pr.id, pt.id) END "
    "AS pid, CASE WHEN u.kind = 'refund' THEN COALESCE(rs.id, rt.id) END AS rid FROM u "
    "LEFT JOIN paytrail_payments ps ON u.kind = 'payment' AND u.stamp <> '' "
    "AND ps.stamp = u.stamp "
    "LEFT JOIN LATERAL (SELECT MIN(x.id) AS id FROM paytrail_payments x "
    "WHERE ps.id IS NULL AND u.kind = 'payment' AND u.ref_order IS NOT NULL "
    "AND x.order_id = u.ref_order AND x.status = 'ok') pr ON true "
    "LEFT JOIN paytrail_payments pt ON u.kind = 'payment' AND u.transaction_id <> '' "
    "AND pt.transaction_id = u.transaction_id "
    "LEFT JOIN refunds rs ON u.kind = 'refund' AND u.stamp <> '' "
    "AND rs.refund_stamp = u.stamp AND rs.method = 'paytrail' "
    "LEFT JOIN LATERAL (SELECT MIN(y.id) AS id FROM refunds y WHERE rs.id IS NULL "
    "AND u.kind = 'refund' AND u.transaction_id <> '' "
    "AND y.provider_refund_id = u.transaction_id AND y.method = 'paytrail') rt ON true), "
    # a payment or refund on two lines of this settlement: the later ones are duplicates
    "d AS (SELECT kind, COALESCE(pid, rid) AS oid, MIN(ord) AS first FROM m "
    "WHERE COALESCE(pid, rid) IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1), "
    "k AS (SELECT m.*, p.order_id AS p_order, r.order_id AS r_order, CASE "
    "WHEN m.pid IS NULL AND m.rid IS NULL THEN 'settled_unknown' "
    "WHEN m.pid IS NOT NULL AND p.amount_cents <> m.amount_cents THEN 'amount_mismatch' "
    "WHEN m.rid IS NOT NULL AND r.amount_cents <> m.amount_cents THEN 'amount_mismatch' "
    "WHEN m.pid IS NOT NULL AND p.status <> 'ok' THEN 'status_mismatch' "
    "WHEN m.rid IS NOT NULL AND r.status NOT IN ('ok', 'pending') THEN 'status_mismatch' "
    "WHEN d.first IS NOT NULL AND m.ord > d.first THEN 'duplicate' "
    f"WHEN m.pid IS NOT NULL AND EXISTS (SELECT 1 FROM {LINES} o "
    "WHERE o.paytrail_payment_id = m.pid) THEN 'duplicate' "
    f"WHEN m.rid IS NOT NULL AND EXISTS (SELECT 1 FROM {LINES} o "
    "WHERE o.refund_id = m.rid) THEN 'duplicate' ELSE '' END AS cause FROM m "
    "LEFT JOIN paytrail_payments p ON p.id = m.pid LEFT JOIN refunds r ON r.id = m.rid "
    "LEFT JOIN d ON d.kind = m.kind AND d.oid = COALESCE(m.pid, m.rid)) "
    # ORDER BY: every row is worked out before the first is inserted (the EXISTS above
    # must never read the rows this statement is writing), and ids follow the report.
    f"SELECT :sid, {', '.join(_FIELDS)}, COALESCE(p_order, r_order), pid, rid, "
    "CASE WHEN cause = '' THEN 'matched' ELSE 'discrepancy' END, cause FROM k ORDER BY ord"
)


async def _insert_matched_pg(s: AsyncSession, settlement_id: int,
                             lines: list[ParsedLine]) -> None:
    params: dict[str, Any] = {f: [getattr(x, f) for x in lines] for f in _FIELDS}
    params["ref_order"] = [_reference_order(x.reference) for x in lines]
    params["sid"] = settlement_id
    # Room for the hash joins of a large settlement, and no JIT: the per-row lookups
    # make the estimated cost high enough to compile for seconds what runs in less
    # (this transaction only).
    await s.execute(text("SET LOCAL work_mem = '64MB'"))
    await s.execute(text("SET LOCAL jit = off"))
    await s.execute(text(_INSERT_MATCHED_PG), params)


_MATCH = (
    # payments by stamp
    f"UPDATE {LINES} AS l SET paytrail_payment_id = p.id, order_id = p.order_id "
    "FROM paytrail_payments AS p WHERE l.settlement_id = :sid AND l.kind = 'payment' "
    "AND l.stamp <> '' AND p.stamp = l.stamp",
    # payments by reference (the order number): that order's paid attempt
    f"UPDATE {LINES} AS l SET paytrail_payment_id = p.id FROM ("
    "SELECT order_id, MIN(id) AS id FROM paytrail_payments WHERE status = 'ok' "
    f"AND order_id IN (SELECT order_id FROM {LINES} WHERE settlement_id = :sid "
    "AND kind = 'payment' AND paytrail_payment_id IS NULL AND order_id IS NOT NULL) "
    "GROUP BY order_id) AS p WHERE l.settlement_id = :sid AND l.kind = 'payment' "
    "AND l.paytrail_payment_id IS NULL AND l.order_id = p.order_id",
    # payments by transaction id / archive number
    f"UPDATE {LINES} AS l SET paytrail_payment_id = p.id, order_id = p.order_id "
    "FROM paytrail_payments AS p WHERE l.settlement_id = :sid AND l.kind = 'payment' "
    "AND l.paytrail_payment_id IS NULL AND l.transaction_id <> '' "
    "AND p.transaction_id = l.transaction_id",
    # refunds by refund stamp, then by Paytrail's refund id
    f"UPDATE {LINES} AS l SET refund_id = r.id, order_id = r.order_id "
    "FROM refunds AS r WHERE l.settlement_id = :sid AND l.kind = 'refund' "
    "AND l.stamp <> '' AND r.refund_stamp = l.stamp AND r.method = 'paytrail'",
    f"UPDATE {LINES} AS l SET refund_id = r.id, order_id = r.order_id "
    "FROM refunds AS r WHERE l.settlement_id = :sid AND l.kind = 'refund' "
    "AND l.refund_id IS NULL AND l.transaction_id <> '' "
    "AND r.provider_refund_id = l.transaction_id AND r.method = 'paytrail'",
    # what nothing matched: not ours (and the candidate order was no match)
    f"UPDATE {LINES} SET state = 'discrepancy', cause = 'settled_unknown', "
    "order_id = NULL WHERE settlement_id = :sid AND paytrail_payment_id IS NULL "
    "AND refund_id IS NULL",
    f"UPDATE {LINES} AS l SET state = 'discrepancy', cause = 'amount_mismatch' "
    "FROM paytrail_payments AS p WHERE l.settlement_id = :sid "
    "AND l.paytrail_payment_id = p.id AND p.amount_cents <> l.amount_cents",
    f"UPDATE {LINES} AS l SET state = 'discrepancy', cause = 'amount_mismatch' "
    "FROM refunds AS r WHERE l.settlement_id = :sid "
    "AND l.refund_id = r.id AND r.amount_cents <> l.amount_cents",
    f"UPDATE {LINES} AS l SET state = 'discrepancy', cause = 'status_mismatch' "
    "FROM paytrail_payments AS p WHERE l.settlement_id = :sid AND l.cause = '' "
    "AND l.paytrail_payment_id = p.id AND p.status <> 'ok'",
    f"UPDATE {LINES} AS l SET state = 'discrepancy', cause = 'status_mismatch' "
    "FROM refunds AS r WHERE l.settlement_id = :sid AND l.cause = '' "
    "AND l.refund_id = r.id AND r.status NOT IN ('ok', 'pending')",
    # settled twice: in an earlier settlement, or earlier in this one
    f"UPDATE {LINES} AS l SET state = 'discrepancy', cause = 'duplicate' "
    "WHERE l.settlement_id = :sid AND l.cause = '' AND l.paytrail_payment_id IS NOT NULL "
    f"AND EXISTS (SELECT 1 FROM {LINES} AS o WHERE o.paytrail_payment_id = "
    "l.paytrail_payment_id AND o.id <> l.id AND (o.settlement_id <> l.settlement_id "
    "OR o.id < l.id))",
    f"UPDATE {LINES} AS l SET state = 'discrepancy', cause = 'duplicate' "
    "WHERE l.settlement_id = :sid AND l.cause = '' AND l.refund_id IS NOT NULL "
    f"AND EXISTS (SELECT 1 FROM {LINES} AS o WHERE o.refund_id = l.refund_id "
    "AND o.id <> l.id AND (o.settlement_id <> l.settlement_id OR o.id < l.id))",
)


async def match_lines(s: AsyncSession, settlement_id: int) -> None:
    """Match a settlement's lines (all at once, one statement per rule; SQLite)."""
    for sql in _MATCH:
        await s.execute(text(sql), {"sid": settlement_id})


async def set_bank_amount(uow: UnitOfWork, actor: Actor, settlement_id: int,
                          bank_cents: int | None) -> PaytrailSettlement:
    """Finance enters (or clears) what the bank received for the settlement."""
    actor.require("reconcile.write")
    settlement = await uow.session.get(PaytrailSettlement, settlement_id)
    if settlement is None:
        raise NotFound("no such settlement", code="settlement_not_found")
    before = settlement.bank_cents
    settlement.bank_cents = bank_cents
    await record(uow, actor, "settlement.bank_amount", "paytrail_settlement", settlement.id,
                 {"before": before, "after": bank_cents})
    return settlement


# --- reading ------------------------------------------------------------------------------

def grace_cutoff(today: date, business_days: int) -> date:
    """The day `business_days` working days (Mon-Fri) before `today`: something paid
    before it should be in a settlement by now."""
    day = today
    left = business_days
    while left > 0:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(UTC)


@dataclass(frozen=True)
class Missing:
    """A payment paid (or a refund sent) with us that no settlement holds."""

    cause: str  # not_settled | refund_not_deducted
    id: int  # paytrail_payments.id or refunds.id
    order_id: int
    stamp: str
    transaction_id: str
    amount_cents: int
    at: datetime


async def missing_from_settlements(s: AsyncSession, period: Period, tz: str, today: date,
                                   grace_days: int, limit: int = 1000) -> list[Missing]:
    """Paid payments and ok Paytrail refunds of `period` (their business day) older than
    the grace period and in no settlement."""
    start, end = period.bounds(tz)
    end = min(end, _local_midnight(grace_cutoff(today, grace_days), tz))
    if end <= start:
        return []
    in_lines = select(SettlementLine.id).where(
        SettlementLine.paytrail_payment_id == PaytrailPayment.id).exists()
    payments = (await s.execute(
        select(PaytrailPayment.id, PaytrailPayment.order_id, PaytrailPayment.stamp,
               PaytrailPayment.transaction_id, PaytrailPayment.amount_cents,
               PaytrailPayment.created_at)
        .where(PaytrailPayment.status == "ok", PaytrailPayment.created_at >= start,
               PaytrailPayment.created_at < end, ~in_lines)
        .order_by(PaytrailPayment.created_at, PaytrailPayment.id).limit(limit))).all()
    refund_in_lines = select(SettlementLine.id).where(
        SettlementLine.refund_id == Refund.id).exists()
    refunds = (await s.execute(
        select(Refund.id, Refund.order_id, Refund.refund_stamp, Refund.provider_refund_id,
               Refund.amount_cents, Refund.created_at)
        .where(Refund.method == "paytrail", Refund.status == "ok",
               Refund.created_at >= start, Refund.created_at < end, ~refund_in_lines)
        .order_by(Refund.created_at, Refund.id).limit(limit))).all()
    return ([Missing("not_settled", r[0], r[1], r[2], r[3] or "", r[4], r[5])
             for r in payments]
            + [Missing("refund_not_deducted", r[0], r[1], r[2] or "", r[3] or "", r[4], r[5])
               for r in refunds])


@dataclass
class MonthView:
    period: Period
    settlements: list[PaytrailSettlement]
    payments_cents: int
    refunds_cents: int
    fees_cents: int
    payout_cents: int
    lines: int
    discrepancies: int
    payout_mismatches: int
    missing: list[Missing]

    @property
    def reconciled(self) -> int:
        return self.lines - self.discrepancies


async def month_view(s: AsyncSession, period: Period, tz: str, today: date,
                     grace_days: int) -> MonthView:
    """The settlements paid out in `period` and what is still missing from them."""
    rows = list((await s.scalars(
        select(PaytrailSettlement)
        .where(PaytrailSettlement.settled_on >= period.first,
               PaytrailSettlement.settled_on <= period.last)
        .order_by(PaytrailSettlement.settled_on.desc(), PaytrailSettlement.id.desc()))).all())
    return MonthView(
        period, rows, sum(x.payments_cents for x in rows), sum(x.refunds_cents for x in rows),
        sum(x.fees_cents for x in rows), sum(x.payout_cents for x in rows),
        sum(x.line_count for x in rows), sum(x.discrepancy_count for x in rows),
        sum(1 for x in rows if not x.payout_ok),
        await missing_from_settlements(s, period, tz, today, grace_days))


@dataclass(frozen=True)
class MonthTotals:
    month: date  # its first day
    settlements: int
    payments_cents: int
    refunds_cents: int
    fees_cents: int
    discrepancies: int

    @property
    def payout_cents(self) -> int:
        return self.payments_cents - self.refunds_cents - self.fees_cents


async def year_totals(s: AsyncSession, year: int) -> list[MonthTotals]:
    """The fees (and payments, refunds, payouts) booked per month of `year`, by the
    settlements' payout day; months without settlements are left out."""
    rows = (await s.execute(
        select(PaytrailSettlement.settled_on, PaytrailSettlement.payments_cents,
               PaytrailSettlement.refunds_cents, PaytrailSettlement.fees_cents,
               PaytrailSettlement.discrepancy_count)
        .where(PaytrailSettlement.settled_on >= date(year, 1, 1),
               PaytrailSettlement.settled_on <= date(year, 12, 31)))).all()
    by_month: dict[date, list[int]] = {}
    for day, pay, ref, fees, disc in rows:
        if day is None:
            continue
        m = by_month.setdefault(day.replace(day=1), [0, 0, 0, 0, 0])
        for i, v in enumerate((1, pay, ref, fees, disc)):
            m[i] += int(v)
    return [MonthTotals(k, *v) for k, v in sorted(by_month.items())]


async def get_settlement(s: AsyncSession, settlement_id: int) -> PaytrailSettlement:
    settlement = await s.get(PaytrailSettlement, settlement_id)
    if settlement is None:
        raise NotFound("no such settlement", code="settlement_not_found")
    return settlement


async def settlement_lines(s: AsyncSession, settlement_id: int, *, only_discrepancies: bool
                           = False, limit: int | None = None) -> list[SettlementLine]:
    stmt = select(SettlementLine).where(SettlementLine.settlement_id == settlement_id)
    if only_discrepancies:
        stmt = stmt.where(SettlementLine.state == "discrepancy")
    stmt = stmt.order_by(SettlementLine.row, SettlementLine.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await s.scalars(stmt)).all())


@dataclass(frozen=True)
class Discrepancy:
    cause: str
    settlement_id: int | None
    paytrail_id: str
    row: int | None
    kind: str
    stamp: str
    reference: str
    transaction_id: str
    amount_cents: int  # in the settlement, or ours for what is missing
    ours_cents: int | None
    order_id: int | None


async def discrepancies(s: AsyncSession, period: Period, tz: str, today: date,
                        grace_days: int, limit: int = 5000) -> list[Discrepancy]:
    """Every discrepancy of the settlements paid out in `period`, then what is missing
    from the settlements (paid in `period`)."""
    pay = PaytrailPayment.__table__
    ref = Refund.__table__
    lines = (await s.execute(
        select(SettlementLine, PaytrailSettlement.paytrail_id, pay.c.amount_cents,
               ref.c.amount_cents)
        .join(PaytrailSettlement, PaytrailSettlement.id == SettlementLine.settlement_id)
        .outerjoin(pay, pay.c.id == SettlementLine.paytrail_payment_id)
        .outerjoin(ref, ref.c.id == SettlementLine.refund_id)
        .where(PaytrailSettlement.settled_on >= period.first,
               PaytrailSettlement.settled_on <= period.last,
               SettlementLine.state == "discrepancy")
        .order_by(PaytrailSettlement.settled_on, SettlementLine.settlement_id,
                  SettlementLine.row, SettlementLine.id).limit(limit))).all()
    out = [Discrepancy(x.cause, x.settlement_id, pid, x.row, x.kind, x.stamp, x.reference,
                       x.transaction_id, x.amount_cents,
                       pay_cents if x.kind == "payment" else ref_cents, x.order_id)
           for x, pid, pay_cents, ref_cents in lines]
    for m in await missing_from_settlements(s, period, tz, today, grace_days):
        out.append(Discrepancy(m.cause, None, "", None,
                               "payment" if m.cause == "not_settled" else "refund",
                               m.stamp, "", m.transaction_id, m.amount_cents,
                               m.amount_cents, m.order_id))
    return out


def summary_of(view: MonthView) -> dict[str, Any]:
    """The month's figures as plain values (for tests and the CLI)."""
    return {"settlements": len(view.settlements), "payments_cents": view.payments_cents,
            "refunds_cents": view.refunds_cents, "fees_cents": view.fees_cents,
            "payout_cents": view.payout_cents, "lines": view.lines,
            "discrepancies": view.discrepancies, "missing": len(view.missing)}
