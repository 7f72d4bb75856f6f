"""Finding returns: by their state, kind, order, location, and a search (the return's
code, the order's number, pickup code, phone or e-mail, the customer's name), newest
first, a page at a time (keyset on the id)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.customers.models import Customer
from saumaton.orders.lookup import search_conditions
from saumaton.orders.models import Order
from saumaton.returns.models import Return
from saumaton.returns.schemas import ReturnOut
from saumaton.returns.services import get_return


def search_filter(q: str, secret: str | None) -> ColumnElement[bool]:
    """SQL: the returns `q` can mean (their code, their order, their customer's name)."""
    text = q.strip()[:200]
    compact = text.replace(" ", "").upper()
    conds: list[ColumnElement[bool]] = [Return.code == compact]
    conds += [Return.order_id.in_(select(Order.id).where(c))
              for c in search_conditions(text, secret)]
    words = [w for w in text.lower().split() if w.isalpha()][:3]
    if words:
        conds.append(Return.customer_id.in_(select(Customer.id).where(*[
            or_(func.lower(Customer.first_name).contains(w, autoescape=True),
                func.lower(Customer.last_name).contains(w, autoescape=True))
            for w in words])))
    return or_(*conds)


def readable_by(actor: Actor) -> ColumnElement[bool] | None:
    """SQL limiting returns to those a staff member may see (None: every return): the
    ones at their locations, and postal returns still on their way (no location yet),
    which any location of theirs may receive."""
    if actor.can("orders.read", everywhere=True) or actor.can("returns.create",
                                                              everywhere=True):
        return None
    mine = [g.location_id for g in actor.grants if g.location_id is not None
            and (actor.can("orders.read", g.location_id)
                 or actor.can("returns.create", g.location_id))]
    return or_(Return.location_id.in_(mine), Return.location_id.is_(None))


async def list_returns(s: AsyncSession, actor: Actor, *, status: str | None = None,
                       kind: str | None = None, order_id: int | None = None,
                       location_id: int | None = None, q: str = "",
                       secret: str | None = None, before_id: int | None = None,
                       limit: int = 50) -> list[ReturnOut]:
    """Returns newest first, those before `before_id`; at most `limit` rows."""
    query = select(Return.id)
    if (scope := readable_by(actor)) is not None:
        query = query.where(scope)
    if status:
        query = query.where(Return.status == status)
    if kind:
        query = query.where(Return.kind == kind)
    if order_id is not None:
        query = query.where(Return.order_id == order_id)
    if location_id is not None:
        query = query.where(Return.location_id == location_id)
    if q.strip():
        query = query.where(search_filter(q, secret))
    if before_id is not None:
        query = query.where(Return.id < before_id)
    ids = (await s.scalars(query.order_by(Return.id.desc()).limit(limit))).all()
    return [await get_return(s, int(i)) for i in ids]
