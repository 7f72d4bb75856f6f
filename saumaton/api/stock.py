"""/api/v1 stock: receipts, adjustments, counts, transfers and the ledger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, MAX_INT32, Input, SmallId
from saumaton.db.idempotency import fingerprint, run_once
from saumaton.db.uow import UnitOfWork
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


IdempotencyKey = Annotated[str | None, Header(
    min_length=8, max_length=200,
    description="a retry with the same key returns the first answer and moves no stock "
                "twice")]


async def _once(request: Request, response: Response, scope: str, key: str | None,
                body: BaseModel, work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
    """Run `work` once per Idempotency-Key; a replay answers 200 with the first body."""
    result, replayed = await run_once(db_of(request), scope, key,
                                      fingerprint(body.model_dump_json()), work)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.post("/receipts", response_model=LevelOut, status_code=201)
async def receive(request: Request, response: Response, body: ReceiptIn,
                  actor: Actor = Depends(require_actor),
                  idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        after = await inventory.receive(uow, actor, body.variant_id, body.location_id,
                                        body.quantity, reason=body.reason,
                                        reference=body.reference)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.receipts", idempotency_key, body, work)


@router.post("/adjustments", response_model=LevelOut, status_code=201)
async def adjust(request: Request, response: Response, body: AdjustmentIn,
                 actor: Actor = Depends(require_actor),
                 idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        after = await inventory.adjust(uow, actor, body.variant_id, body.location_id,
                                       body.quantity, reason=body.reason,
                                       reference=body.reference)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.adjustments", idempotency_key, body, work)


@router.post("/counts", response_model=LevelOut, status_code=201)
async def count(request: Request, response: Response, body: CountIn,
                actor: Actor = Depends(require_actor),
                idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        after = await inventory.count(uow, actor, body.variant_id, body.location_id,
                                      body.counted, reference=body.reference)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.counts", idempotency_key, body, work)


@router.post("/transfers", response_model=list[LevelOut], status_code=201)
async def transfer(request: Request, response: Response, body: TransferIn,
                   actor: Actor = Depends(require_actor),
                   idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        afters = await inventory.transfer(uow, actor, body.variant_id, body.from_location_id,
                                          body.to_location_id, body.quantity,
                                          reference=body.reference)
        return [_level(a).model_dump(mode="json") for a in afters]
    return await _once(request, response, "stock.transfers", idempotency_key, body, work)


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
