"""Orders, returns and customers written straight into the tables, at chosen moments:
the customer reports read history (a purchase three months ago, an offline sale synced
the next day), which the services can only make "now"."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from saumaton.customers.models import Customer
from saumaton.db.uow import Database
from saumaton.locations.models import Channel
from saumaton.orders.models import Order, OrderLine
from saumaton.returns.models import Return, ReturnLine


async def new_customer(db: Database, name: str, *, at: datetime | None = None) -> int:
    async with db.uow() as uow:
        c = Customer(first_name=name, last_name="Report")
        if at is not None:
            c.created_at = at
        uow.session.add(c)
        await uow.session.flush()
        await uow.commit()
        return int(c.id)


async def channel_ids(db: Database) -> dict[str, int]:
    async with db.reader() as s:
        return {c.code: c.id for c in (await s.scalars(select(Channel))).all()}


async def add_order(db: Database, *, channel_id: int, customer_id: int | None, at: datetime,
                    lines: list[tuple[int, int]], status: str = "completed",
                    sold_at: datetime | None = None, delivery_fee_cents: int = 0,
                    location_id: int | None = None) -> tuple[int, list[int]]:
    """An order of `lines` (variant id, total cents; one unit, 25.5 % VAT) created at
    `at`; returns its id and its line ids."""
    total = sum(c for _, c in lines) + delivery_fee_cents
    async with db.uow() as uow:
        o = Order(channel_id=channel_id, location_id=location_id, customer_id=customer_id,
                  status=status, subtotal_cents=total, discount_cents=0, total_cents=total,
                  vat_cents=0, paid_cents=total, created_at=at, sold_at=sold_at,
                  delivery_fee_cents=delivery_fee_cents,
                  delivery_method="home" if delivery_fee_cents else None)
        uow.session.add(o)
        await uow.session.flush()
        ols = [OrderLine(order_id=o.id, line_no=i + 1, variant_id=v, sku=f"SKU-{v}",
                         name=f"Item {v}", quantity=1, unit_price_cents=c, discount_cents=0,
                         total_cents=c, vat_rate_bp=2550, vat_cents=c * 2550 // 12550)
               for i, (v, c) in enumerate(lines)]
        uow.session.add_all(ols)
        await uow.session.flush()
        await uow.commit()
        return int(o.id), [int(line.id) for line in ols]


async def add_return(db: Database, *, order_id: int, line_id: int, variant_id: int,
                     refund_cents: int, at: datetime, status: str = "completed",
                     customer_id: int | None = None) -> int:
    async with db.uow() as uow:
        r = Return(order_id=order_id, customer_id=customer_id,
                   code=uuid.uuid4().hex[:12].upper(), status=status, kind="in_store",
                   channel="pos", refund_method="cash", refund_cents=refund_cents,
                   created_at=at, received_at=at if status == "completed" else None)
        uow.session.add(r)
        await uow.session.flush()
        uow.session.add(ReturnLine(return_id=r.id, order_line_id=line_id, line_no=1,
                                   variant_id=variant_id, sku=f"SKU-{variant_id}",
                                   name="Item", quantity=1, refund_cents=refund_cents,
                                   vat_rate_bp=2550,
                                   vat_cents=refund_cents * 2550 // 12550))
        await uow.commit()
        return int(r.id)
