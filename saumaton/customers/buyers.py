"""The customer a new sale or order is recorded for.

A till that attached a customer before a merge (or synced an offline sale after one)
still sends the old id: it stands for the kept customer now, so the order, its points
and its member prices go there, never to the emptied record. An erased customer takes
no new orders.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.customers.duplicates import resolve_customer_id
from saumaton.customers.models import Customer


class CustomerErased(Conflict):
    """The customer's personal data was erased; a sale can't be recorded for them."""


async def buyer_id(session: AsyncSession, customer_id: int) -> int:
    """`customer_id`, or the customer it was merged into. 422 `unknown_customer` for no
    such customer; 409 `customer_erased` (`CustomerErased`) for an erased one."""
    row = (await session.execute(select(Customer.merged_into_id, Customer.erased_at)
                                 .where(Customer.id == customer_id))).first()
    if row is None:
        raise ValidationFailed(f"no customer {customer_id}", code="unknown_customer",
                               field="customer_id")
    if row[0] is not None:
        customer_id = await resolve_customer_id(session, customer_id)
        row = (await session.execute(select(Customer.merged_into_id, Customer.erased_at)
                                     .where(Customer.id == customer_id))).first()
    if row is not None and row[1] is not None:
        raise CustomerErased(f"customer {customer_id} has been erased", code="customer_erased",
                             field="customer_id")
    return customer_id
