"""/api/v1 customers: one register, looked up by e-mail, phone or card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, NoNul
from saumaton.customers import services as customers
from saumaton.customers.services import CustomerIn, CustomerOut
from saumaton.web.auth import db_of, require_actor

router = APIRouter(prefix="/api/v1", tags=["customers"])


@router.post("/customers", response_model=CustomerOut, status_code=201)
async def create_customer(request: Request, body: CustomerIn,
                          actor: Actor = Depends(require_actor)) -> CustomerOut:
    async with db_of(request).uow() as uow:
        out = await customers.create_customer(uow, actor, body)
        await uow.commit()
    return out


@router.get("/customers/lookup", response_model=CustomerOut,
            summary="Find a customer by e-mail, phone or loyalty card")
async def lookup_customer(
    request: Request, q: Annotated[str, Query(min_length=1, max_length=320), NoNul],
    kind: Annotated[str | None, Query(pattern="^(email|phone|card)$")] = None,
    actor: Actor = Depends(require_actor),
) -> CustomerOut:
    async with db_of(request).reader() as s:
        return await customers.lookup_customer(s, actor, q, kind)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
async def get_customer(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                       actor: Actor = Depends(require_actor)) -> CustomerOut:
    async with db_of(request).reader() as s:
        return await customers.get_customer(s, actor, customer_id)
