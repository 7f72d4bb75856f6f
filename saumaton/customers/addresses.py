"""A shopper's address book: delivery addresses, one of them the default."""

from __future__ import annotations

import re
from dataclasses import dataclass

from babel import Locale
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.core.types import reject_nul
from saumaton.customers.identities import normalise_phone
from saumaton.customers.models import CustomerAddress
from saumaton.db.uow import UnitOfWork

MAX_ADDRESSES = 20
_COUNTRIES = frozenset(Locale.parse("en").territories)
_POSTCODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z -]{1,14}")


@dataclass(frozen=True)
class AddressIn:
    name: str
    street: str
    postcode: str
    city: str
    country: str = "FI"
    phone: str = ""


@dataclass(frozen=True)
class AddressOut:
    id: int
    name: str
    street: str
    postcode: str
    city: str
    country: str
    phone: str
    is_default: bool

    def as_shipping(self) -> dict[str, str]:
        """The shape an order keeps: name, street, postcode, city, country."""
        return {"name": self.name, "street": self.street, "postcode": self.postcode,
                "city": self.city, "country": self.country}


def _out(a: CustomerAddress) -> AddressOut:
    return AddressOut(a.id, a.name, a.street, a.postcode, a.city, a.country, a.phone,
                      a.is_default)


def _text(value: str, field: str, max_len: int) -> str:
    v = " ".join(value.split())
    try:
        reject_nul(v)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_text", field=field) from exc
    if not v:
        raise ValidationFailed(f"{field} is required", code="required", field=field)
    if len(v) > max_len:
        raise ValidationFailed(f"{field} is at most {max_len} characters", code="too_long",
                               field=field, extra={"max": max_len})
    return v


def clean_address(data: AddressIn) -> AddressIn:
    """Trimmed and checked; a Finnish postcode is five digits."""
    country = data.country.strip().upper() or "FI"
    if country not in _COUNTRIES or not country.isalpha() or len(country) != 2:
        raise ValidationFailed(f"unknown country '{data.country}'", code="invalid_country",
                               field="country")
    postcode = data.postcode.strip().replace(" ", "") if country == "FI" \
        else " ".join(data.postcode.split()).upper()
    if country == "FI" and not (len(postcode) == 5 and postcode.isascii()
                                and postcode.isdigit()):
        raise ValidationFailed("a Finnish postcode is five digits", code="invalid_postcode",
                               field="postcode")
    if not _POSTCODE.fullmatch(postcode):
        raise ValidationFailed("not a postcode", code="invalid_postcode", field="postcode")
    phone = normalise_phone(data.phone, country) if data.phone.strip() else ""
    return AddressIn(name=_text(data.name, "name", 200), street=_text(data.street, "street", 200),
                     postcode=postcode, city=_text(data.city, "city", 100), country=country,
                     phone=phone)


async def list_addresses(session: AsyncSession, customer_id: int) -> list[AddressOut]:
    """The default first, then newest first."""
    rows = (await session.scalars(
        select(CustomerAddress).where(CustomerAddress.customer_id == customer_id)
        .order_by(CustomerAddress.is_default.desc(), CustomerAddress.id.desc())
    )).all()
    return [_out(a) for a in rows]


async def default_address(session: AsyncSession, customer_id: int) -> AddressOut | None:
    found = await list_addresses(session, customer_id)
    return found[0] if found and found[0].is_default else None


async def _own(uow: UnitOfWork, customer_id: int, address_id: int) -> CustomerAddress:
    a = await uow.session.get(CustomerAddress, address_id)
    if a is None or a.customer_id != customer_id:
        raise NotFound(f"no address {address_id}", code="address_not_found")
    return a


async def _make_default(uow: UnitOfWork, customer_id: int, address_id: int) -> None:
    await uow.session.execute(
        update(CustomerAddress).where(CustomerAddress.customer_id == customer_id)
        .values(is_default=CustomerAddress.id == address_id)
        .execution_options(synchronize_session="fetch"))


async def add_address(uow: UnitOfWork, customer_id: int, data: AddressIn, *,
                      make_default: bool = False) -> AddressOut:
    """The first address is the default."""
    clean = clean_address(data)
    count = int(await uow.session.scalar(
        select(func.count()).select_from(CustomerAddress)
        .where(CustomerAddress.customer_id == customer_id)) or 0)
    if count >= MAX_ADDRESSES:
        raise ValidationFailed(f"at most {MAX_ADDRESSES} addresses", code="too_many_addresses")
    a = CustomerAddress(customer_id=customer_id, name=clean.name, street=clean.street,
                        postcode=clean.postcode, city=clean.city, country=clean.country,
                        phone=clean.phone, is_default=False)
    uow.session.add(a)
    await uow.session.flush()
    if make_default or count == 0:
        await _make_default(uow, customer_id, a.id)
    await uow.session.refresh(a)
    return _out(a)


async def update_address(uow: UnitOfWork, customer_id: int, address_id: int,
                         data: AddressIn) -> AddressOut:
    a = await _own(uow, customer_id, address_id)
    clean = clean_address(data)
    a.name, a.street, a.postcode = clean.name, clean.street, clean.postcode
    a.city, a.country, a.phone = clean.city, clean.country, clean.phone
    await uow.session.flush()
    return _out(a)


async def delete_address(uow: UnitOfWork, customer_id: int, address_id: int) -> None:
    """Deleting the default makes the newest remaining address the default."""
    a = await _own(uow, customer_id, address_id)
    was_default = a.is_default
    await uow.session.delete(a)
    await uow.session.flush()
    if was_default:
        newest = await uow.session.scalar(
            select(func.max(CustomerAddress.id))
            .where(CustomerAddress.customer_id == customer_id))
        if newest is not None:
            await _make_default(uow, customer_id, int(newest))


async def set_default_address(uow: UnitOfWork, customer_id: int, address_id: int) -> None:
    await _own(uow, customer_id, address_id)
    await _make_default(uow, customer_id, address_id)
