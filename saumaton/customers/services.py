"""The one customer register, shared by every channel."""

from __future__ import annotations

import secrets

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.types import Input, OptionalName
from saumaton.customers.identities import guess_kinds, normalise
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.uow import UnitOfWork


class CustomerIn(Input):
    first_name: OptionalName = Field(default="", max_length=100)
    last_name: OptionalName = Field(default="", max_length=100)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    card: str | None = Field(default=None, max_length=40,
                             description="loyalty card number; one is issued when 'issue_card'")
    issue_card: bool = False


class CustomerOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    card: str | None


def new_card_number() -> str:
    """12 digits, the last a Luhn check digit so typos at the till are caught."""
    body = "9" + "".join(secrets.choice("0123456789") for _ in range(10))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


async def add_card(session: AsyncSession, customer_id: int) -> str:
    """Give the customer a new, unused loyalty card number (a few numbers are tried);
    409 `card_not_issued` if none was free. The caller holds the customer's lock."""
    for _ in range(5):
        number = new_card_number()
        taken = await session.scalar(select(CustomerIdentity.id).where(
            CustomerIdentity.kind == "card", CustomerIdentity.value == number))
        if taken is None:
            session.add(CustomerIdentity(customer_id=customer_id, kind="card", value=number))
            await session.flush()
            return number
    raise Conflict("could not issue a card number", code="card_not_issued", field="card")


async def _out(session: AsyncSession, customer: Customer) -> CustomerOut:
    ids: dict[str, str] = dict((await session.execute(
        select(CustomerIdentity.kind, CustomerIdentity.value)
        .where(CustomerIdentity.customer_id == customer.id)
    )).all())
    return CustomerOut(id=customer.id, first_name=customer.first_name,
                       last_name=customer.last_name, email=ids.get("email"),
                       phone=ids.get("phone"), card=ids.get("card"))


async def create_customer(uow: UnitOfWork, actor: Actor, data: CustomerIn) -> CustomerOut:
    actor.require("customers.write")
    identities: dict[str, str] = {}
    for kind in ("email", "phone", "card"):
        raw = getattr(data, kind)
        if raw:
            identities[kind] = normalise(kind, raw)
    if data.issue_card and "card" not in identities:
        identities["card"] = new_card_number()
    # OptionalName made a name of spaces only (also no-break, em or zero-width) "".
    if not identities and not (data.first_name or data.last_name):
        raise ValidationFailed("give a name or at least one of e-mail, phone, card",
                               code="customer_empty")
    s = uow.session
    for kind, value in identities.items():
        owner = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == kind, CustomerIdentity.value == value))
        if owner is not None:
            raise Conflict(f"a customer with this {kind} exists (customer {owner})",
                           code="customer_exists", field=kind,
                           extra={"customer_id": owner})
    customer = Customer(first_name=data.first_name.strip(), last_name=data.last_name.strip())
    s.add(customer)
    await s.flush()
    s.add_all(CustomerIdentity(customer_id=customer.id, kind=k, value=v)
              for k, v in identities.items())
    await s.flush()
    uow.emit("customer.created", {"customer_id": customer.id})
    return await _out(s, customer)


async def get_customer(session: AsyncSession, actor: Actor, customer_id: int) -> CustomerOut:
    actor.require("customers.read")
    # Deferred: duplicates loads every model of the app (db.models), which imports us.
    from saumaton.customers.duplicates import resolve_customer_id

    c = await session.get(Customer, await resolve_customer_id(session, customer_id))
    if c is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    return await _out(session, c)


async def lookup_customer(session: AsyncSession, actor: Actor, value: str,
                          kind: str | None = None) -> CustomerOut:
    """Find a customer by e-mail, phone or loyalty card, however it was typed."""
    actor.require("customers.read")
    kinds = [kind] if kind else guess_kinds(value)
    for i, k in enumerate(kinds):
        try:
            normal = normalise(k, value)
        except ValidationFailed:
            if i == len(kinds) - 1:
                raise
            continue
        cid = await session.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == k, CustomerIdentity.value == normal))
        if cid is not None:
            return await get_customer(session, actor, cid)
    raise NotFound(f"no customer with {' or '.join(kinds)} '{value.strip()}'",
                   code="customer_not_found")
