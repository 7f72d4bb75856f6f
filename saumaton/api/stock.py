"""/api/v1 stock: receipts, adjustments, counts, transfers and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, MAX_INT32, Input, SmallId
from saumaton.inventory import services as inventory
from saumaton.inventory.services import LevelAfter
from saumaton.web.auth import db_of, require_actor

router = APIRouter(prefix="/api/v1/stock", tags=["stock"])


class LevelOut(BaseModel):
    variant_id: int
    location_id: int
    on_hand: int
    reserved: int
    available: int
    needs_count: bool


def _level(a: LevelAfter) -> LevelOut:
    return LevelOut(variant_id=a.variant_id, location_id=a.location_id, on_hand=a.on_hand,
                    reserved=a.reserved, available=a.available, needs_count=a.needs_count)


class ReceiptIn(Input):
    variant_id: SmallId
    location_id: SmallId
    quantity: int = Field(ge=1, le=1_000_000)
    reason: str = Field(default="", max_length=200)
    reference: str = Field(default="", max_length=100)


class AdjustmentIn(Input):
    variant_id: SmallId
    location_id: SmallId
    quantity: int = Field(ge=-1_000_000, le=1_000_000, description="signed; not zero")
    reason: str = Field(min_length=1, max_length=200)
    reference: str = Field(default="", max_length=100)


class CountIn(Input):
    variant_id: SmallId
    location_id: SmallId
    counted: int = Field(ge=0, le=10_000_000)
    reference: str = Field(default="", max_length=100)


class TransferIn(Input):
    variant_id: SmallId
    from_location_id: SmallId
    to_location_id: SmallId
    quantity: int = Field(ge=1, le=1_000_000)
    reference: str = Field(default="", max_length=100)


@router.post("/receipts", response_model=LevelOut, status_code=201)
async def receive(request: Request, body: ReceiptIn,
                  actor: Actor = Depends(require_actor)) -> LevelOut:
    async with db_of(request).uow() as uow:
        after = await inventory.receive(uow, actor, body.variant_id, body.location_id,
                                        body.quantity, reason=body.reason,
                                        reference=body.reference)
        await uow.commit()
    return _level(after)


@router.post("/adjustments", response_model=LevelOut, status_code=201)
async def adjust(request: Request, body: AdjustmentIn,
                 actor: Actor = Depends(require_actor)) -> LevelOut:
    async with db_of(request).uow() as uow:
        after = await inventory.adjust(uow, actor, body.variant_id, body.location_id,
                                       body.quantity, reason=body.reason,
                                       reference=body.reference)
        await uow.commit()
    return _level(after)


@router.post("/counts", response_model=LevelOut, status_code=201)
async def count(request: Request, body: CountIn,
                actor: Actor = Depends(require_actor)) -> LevelOut:
    async with db_of(request).uow() as uow:
        after = await inventory.count(uow, actor, body.variant_id, body.location_id,
                                      body.counted, reference=body.reference)
        await uow.commit()
    return _level(after)


@router.post("/transfers", response_model=list[LevelOut], status_code=201)
async def transfer(request: Request, body: TransferIn,
                   actor: Actor = Depends(require_actor)) -> list[LevelOut]:
    async with db_of(request).uow() as uow:
        afters = await inventory.transfer(uow, actor, body.variant_id, body.from_location_id,
                                          body.to_location_id, body.quantity,
                                          reference=body.reference)
        await uow.commit()
    return [_level(a) for a in afters]


class MovementOut(BaseModel):
    id: int
    variant_id: int
    location_id: int
    kind: str
    quantity: int
    balance_after: int
    reason: str
    reference: str
    order_id: int | None
    actor: str
    created_at: datetime


@router.get("/movements", response_model=list[MovementOut], summary="The ledger, newest first")
async def movements(
    request: Request, actor: Actor = Depends(require_actor),
    variant_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[MovementOut]:
    # Staff scoped to some locations read those locations' ledgers, one at a time.
    actor.require("stock.read", location_id, everywhere=location_id is None)
    async with db_of(request).reader() as s:
        rows = await inventory.movements(s, variant_id=variant_id, location_id=location_id,
                                         limit=limit, before_id=before_id)
    return [MovementOut.model_validate(r, from_attributes=True) for r in rows]
