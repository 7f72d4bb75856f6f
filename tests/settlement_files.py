"""Builders for the settlement tests: paid web orders (backdated), Paytrail refunds, and
Paytrail payment reports as JSON or CSV files, written the way Paytrail writes them
(euros as decimals, DD-MM-YYYY dates, documented status strings)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import select, update

from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.orders.schemas import LineIn, OrderOut
from saumaton.payments.models import PaytrailPayment, Refund
from tests.support import Shop, make_variants, pay_web_order


@dataclass
class Paid:
    order: OrderOut
    stamp: str
    transaction_id: str
    payment_id: int

    @property
    def amount_cents(self) -> int:
        return self.order.total_cents


async def paid_web_order(db: Database, settings: Settings, shop: Shop, price: int,
                         paid_on: date) -> Paid:
    """A web order paid through Paytrail's "ok" result, its payment dated `paid_on`."""
    [v] = await make_variants(db, [price], stock={shop.warehouse: 5})
    cmd = CheckoutIn(email="settle@example.fi", phone="0401234567", first_name="Sanna",
                     last_name="Selvitys", delivery="home",
                     address=AddressIn(name="Sanna", street="Katu 1", postcode="00100",
                                       city="Helsinki"),
                     lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)])
    order, _ = await place_web_order(db, settings, cmd, customer_id=None,
                                     key=f"s-{uuid.uuid4().hex}")
    txn = await pay_web_order(db, settings, order)
    at = datetime.combine(paid_on, time(10, 0), UTC)
    async with db.uow() as uow:
        p = (await uow.session.scalars(select(PaytrailPayment).where(
            PaytrailPayment.transaction_id == txn))).one()
        await uow.session.execute(update(PaytrailPayment).where(
            PaytrailPayment.id == p.id).values(created_at=at, updated_at=at))
        await uow.commit()
    return Paid(order, p.stamp, txn, p.id)


async def paytrail_refund(db: Database, paid: Paid, amount: int, on: date) -> Refund:
    """An ok Paytrail refund of `paid` (as the refund job records it)."""
    at = datetime.combine(on, time(12, 0), UTC)
    async with db.uow() as uow:
        r = Refund(order_id=paid.order.id, method="paytrail", status="ok",
                   amount_cents=amount, reference=paid.transaction_id,
                   refund_stamp=f"rf-{uuid.uuid4().hex}",
                   provider_refund_id=str(uuid.uuid4()), created_at=at, updated_at=at)
        uow.session.add(r)
        await uow.commit()
    return r


@dataclass
class Row:
    amount_cents: int  # negative: a refund row
    stamp: str = ""
    reference: str = ""
    archive: str = ""
    status: str = "Paid and settled"
    fee: int = 0
    commission: int = 0
    original: str = ""
    refunditems: list[tuple[str, int]] = field(default_factory=list)  # (stamp, -cents)
    entry: date = date(2025, 3, 3)


def row_for(paid: Paid, *, fee: int = 0, commission: int = 0,
            amount: int | None = None) -> Row:
    return Row(paid.amount_cents if amount is None else amount, stamp=paid.stamp,
               reference=paid.order.number, archive=paid.transaction_id, fee=fee,
               commission=commission)


def _euros(cents: int) -> float:
    return cents / 100  # its repr is the two-decimal text (25.55), as Paytrail writes it


def _comma(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


def _fields(r: Row, settlement_id: str, reference: str, settled_on: date) -> dict[str, object]:
    return {"entryDate": r.entry.strftime("%d-%m-%Y"), "created": "10:15",
            "amount": _euros(r.amount_cents), "status": r.status, "stamp": r.stamp,
            "reference": r.reference, "archiveNumber": r.archive,
            "paymentMethod": "nordea", "settlementId": settlement_id,
            "settlementDate": settled_on.strftime("%d-%m-%Y"),
            "settlementReference": reference, "originalTradeReference": r.original,
            "paymentMethodFee": _euros(r.fee), "paymentMethodCommission": _euros(r.commission),
            "shopInShopCommission": 0}


def report_json(settlement_id: str, reference: str, settled_on: date, rows: list[Row]) -> bytes:
    out = []
    for r in rows:
        item = _fields(r, settlement_id, reference, settled_on)
        item["refunditems"] = "|".join(f"{s}:{_comma(c).replace(',', '.')}"
                                       for s, c in r.refunditems)
        out.append(item)
    return json.dumps(out).encode()


def report_csv(settlement_id: str, reference: str, settled_on: date, rows: list[Row]) -> bytes:
    header = [*_fields(rows[0], settlement_id, reference, settled_on), "refunditems"]
    lines = [";".join(header)]
    for r in rows:
        f = _fields(r, settlement_id, reference, settled_on)
        for k in ("amount", "paymentMethodFee", "paymentMethodCommission"):
            f[k] = _comma(round(float(str(f[k])) * 100))
        items = "|".join(f"{s}:{_comma(c)}" for s, c in r.refunditems)
        values = [str(v) for v in f.values()] + [f'"{items}"' if items else ""]
        lines.append(";".join(values))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
