"""/api/v1 customers: one register, looked up by e-mail, phone or card."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, NoNul
from saumaton.customers import services as customers
from saumaton.customers.services import CustomerIn, CustomerOut
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["customers"])


@router.post("/customers", response_model=CustomerOut, status_code=201)
async def create_customer(request: Request, body: CustomerIn,
                          actor: Annotated[Actor, api_requires("customers.write")]
                          ) -> CustomerOut:
    async with db_of(request).uow() as uow:
        out = await customers.create_customer(uow, actor, body)
        await uow.commit()
    return out


@router.get("/customers/lookup", response_model=CustomerOut,
            summary="Find a customer by e-mail, phone or loyalty card")
async def lookup_customer(
    request: Request, q: Annotated[str, Query(min_length=1, max_length=320), NoNul],
    actor: Annotated[Actor, api_requires("customers.read")],
    kind: Annotated[Literal["email", "phone", "card"] | None, Query()] = None,
) -> CustomerOut:
    async with db_of(request).reader() as s:
        return await customers.lookup_customer(s, actor, q, kind)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
async def get_customer(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                       actor: Annotated[Actor, api_requires("customers.read")]
                       ) -> CustomerOut:
    async with db_of(request).reader() as s:
        return await customers.get_customer(s, actor, customer_id)
