"""Tags on customers ("vip", "kampanja 2026", "herkkä iho"): free words staff put on a
customer in any channel, and the back office's list of the customers with a tag.

A tag is stored normalised: trimmed, single spaces, lower case; 1–50 letters (any
alphabet, ä ö å included), digits, spaces, '-' or '_'. Adding and removing need what
writing notes needs (`customers.write`), emit `customer.updated` so open cards and
timelines refresh, and are audited (`customer.tag_add` / `customer.tag_remove`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.customers.models import Customer, CustomerTag
from saumaton.db.uow import UnitOfWork

MAX_TAG = 50
# Letters of any alphabet, ASCII digits, space, '-' and '_'.
_TAG = re.compile(r"(?:[^\W\d_]|[0-9 _-])+")
MAX_LISTED = 200


@dataclass(frozen=True)
class TagCount:
    tag: str
    customers: int


def normalise_tag(raw: str) -> str:
    """'  VIP  asiakas ' -> 'vip asiakas'; anything else than a valid tag is a 422
    `invalid_tag` on the field `tag`."""
    tag = " ".join(raw.split()).lower()
    if not 1 <= len(tag) <= MAX_TAG or not _TAG.fullmatch(tag):
        raise ValidationFailed(
            f"a tag is 1–{MAX_TAG} letters, digits, spaces, '-' or '_'",
            code="invalid_tag", field="tag", extra={"max": MAX_TAG})
    return tag


async def _customer(uow: UnitOfWork, customer_id: int) -> None:
    if await uow.session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")


async def add_tag(uow: UnitOfWork, actor: Actor, customer_id: int, raw: str) -> str:
    """Put the tag on the customer (nothing happens if they have it); returns it as
    stored."""
    actor.require("customers.write")
    tag = normalise_tag(raw)
    await _customer(uow, customer_id)
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(CustomerTag)
    added = (await uow.session.execute(
        ins.values(customer_id=customer_id, tag=tag, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["customer_id", "tag"])
        .returning(CustomerTag.tag))).scalar()
    if added is not None:
        await record(uow, actor, "customer.tag_add", "customer", customer_id, {"tag": tag})
        uow.emit("customer.updated", {"customer_id": customer_id, "tag": tag})
    return tag


async def remove_tag(uow: UnitOfWork, actor: Actor, customer_id: int, raw: str) -> bool:
    """Take the tag off the customer; whether they had it."""
    actor.require("customers.write")
    tag = normalise_tag(raw)
    await _customer(uow, customer_id)
    gone = (await uow.session.execute(
        delete(CustomerTag).where(CustomerTag.customer_id == customer_id,
                                  CustomerTag.tag == tag)
        .returning(CustomerTag.tag))).scalar()
    if gone is None:
        return False
    await record(uow, actor, "customer.tag_remove", "customer", customer_id, {"tag": tag})
    uow.emit("customer.updated", {"customer_id": customer_id, "tag": tag})
    return True


async def tags_of(session: AsyncSession, customer_id: int) -> list[str]:
    return [str(t) for t in (await session.scalars(
        select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id)
        .order_by(CustomerTag.tag))).all()]


async def tags_of_many(session: AsyncSession, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for cid, tag in (await session.execute(
                select(CustomerTag.customer_id, CustomerTag.tag)
                .where(CustomerTag.customer_id.in_(ids))
                .order_by(CustomerTag.customer_id, CustomerTag.tag))).all():
            out[int(cid)].append(str(tag))
    return out


def _listed() -> list[ColumnElement[bool]]:
    """Customers a list shows: not merged into another, not erased."""
    return [Customer.merged_into_id.is_(None), Customer.erased_at.is_(None)]


async def all_tags(session: AsyncSession, actor: Actor) -> list[TagCount]:
    """Every tag in use, with how many customers have it; alphabetical."""
    actor.require("customers.read")
    rows = (await session.execute(
        select(CustomerTag.tag, func.count())
        .join(Customer, Customer.id == CustomerTag.customer_id).where(*_listed())
        .group_by(CustomerTag.tag).order_by(CustomerTag.tag))).all()
    return [TagCount(str(t), int(n)) for t, n in rows]


async def tagged_customer_ids(session: AsyncSession, actor: Actor, raw: str,
                              limit: int = MAX_LISTED) -> list[int]:
    """The customers with the tag, by name; at most `limit`. The tag is normalised
    first, so '  VIP' finds 'vip' (422 `invalid_tag` if it cannot be a tag)."""
    actor.require("customers.read")
    tag = normalise_tag(raw)
    return [int(i) for i in (await session.scalars(
        select(Customer.id).join(CustomerTag, CustomerTag.customer_id == Customer.id)
        .where(CustomerTag.tag == tag, *_listed())
        .order_by(Customer.last_name, Customer.first_name, Customer.id)
        .limit(limit))).all()]
