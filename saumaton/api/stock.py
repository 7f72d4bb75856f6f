"""/api/v1 stock: receipts, adjustments, counts, transfers and the ledger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from saumaton.api.pagination import (
    CursorQuery,
    Page,
    id_after,
    offset_from,
    offset_page,
    page_of,
)
from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotFound
from saumaton.core.types import MAX_ID, MAX_INT32, Input, SmallId
from saumaton.db.idempotency import fingerprint, run_once
from saumaton.db.uow import UnitOfWork
from saumaton.inventory import counts as stock_counts
from saumaton.inventory import services as inventory
from saumaton.inventory import transfers
from saumaton.inventory.receiving import receive_delivery, variant_by_code, write_off
from saumaton.inventory.services import LevelAfter
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/stock", tags=["stock"])


class LevelOut(BaseModel):
    variant_id: int
    location_id: int
    on_hand: int
    reserved: int
    available: int
    needs_count: bool


def _may(actor: Actor, permission: str, *location_ids: int) -> Authorise:
    async def check() -> None:
        for location_id in location_ids:
            actor.require(permission, location_id)
    return check


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


class TransferLineIn(Input):
    variant_id: SmallId
    quantity: int = Field(ge=1, le=1_000_000)


class TransferSendIn(Input):
    from_location_id: SmallId
    to_location_id: SmallId
    lines: list[TransferLineIn] = Field(min_length=1, max_length=500)
    note: str = Field(default="", max_length=200)


class ReceivedLineIn(Input):
    variant_id: SmallId
    quantity_received: int = Field(ge=0, le=1_000_000)


class TransferReceiveIn(Input):
    lines: list[ReceivedLineIn] = Field(default_factory=list, max_length=500)
    note: str = Field(default="", max_length=200)


class CountOpenIn(Input):
    location_id: SmallId
    scope: str = Field(default="", max_length=200)
    full: bool = False


class CountLineIn(Input):
    variant_id: SmallId | None = None
    code: str = Field(default="", max_length=64, description="a scanned EAN, barcode or SKU")
    add: int = Field(default=1, ge=1, le=10_000, description="units a scan adds")
    counted: int | None = Field(default=None, ge=0, le=10_000_000,
                                description="set the counted quantity instead")


class DeliveryLineIn(Input):
    variant_id: SmallId
    quantity: int = Field(ge=1, le=1_000_000)


class DeliveryIn(Input):
    location_id: SmallId
    reference: str = Field(min_length=1, max_length=100, description="delivery note number")
    supplier: str = Field(default="", max_length=150)
    lines: list[DeliveryLineIn] = Field(min_length=1, max_length=500)


class WriteOffIn(Input):
    variant_id: SmallId
    location_id: SmallId
    quantity: int = Field(ge=1, le=1_000_000)
    reason: str = Field(min_length=1, max_length=200)


class _Empty(BaseModel):
    pass


B = TypeVar("B", bound=BaseModel)

IdempotencyKey = Annotated[str | None, Header(
    min_length=8, max_length=200,
    description="a retry with the same key returns the first answer and moves no stock "
                "twice")]


Authorise = Callable[[], Awaitable[None]]


async def _once(request: Request, response: Response, scope: str, key: str | None,
                body: BaseModel, work: Callable[[UnitOfWork], Awaitable[Any]],
                authorise: Authorise) -> Any:
    """Run `work` once per Idempotency-Key; a replay answers 200 with the first body.
    `authorise` raises unless the caller may do this work: it runs before a replay
    too, so a key never hands another location's answer to a caller (issue 14, F3)."""
    await authorise()
    result, replayed = await run_once(db_of(request), scope, key,
                                      fingerprint(body.model_dump_json()), work)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.post("/receipts", response_model=LevelOut, status_code=201,
             operation_id="receive_stock")
async def receive(request: Request, response: Response, body: ReceiptIn,
                  actor: Annotated[Actor, api_requires("stock.write")],
                  idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        after = await inventory.receive(uow, actor, body.variant_id, body.location_id,
                                        body.quantity, reason=body.reason,
                                        reference=body.reference)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.receipts", idempotency_key, body, work,
                       _may(actor, "stock.write", body.location_id))


@router.post("/deliveries", response_model=list[LevelOut], status_code=201,
             operation_id="receive_delivery",
             summary="A supplier delivery: one receipt per line, in one transaction")
async def delivery(request: Request, response: Response, body: DeliveryIn,
                   actor: Annotated[Actor, api_requires("stock.write")],
                   idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        afters = await receive_delivery(uow, actor, body.location_id,
                                        [(ln.variant_id, ln.quantity) for ln in body.lines],
                                        reference=body.reference, supplier=body.supplier)
        return [_level(a).model_dump(mode="json") for a in afters]
    return await _once(request, response, "stock.deliveries", idempotency_key, body, work,
                       _may(actor, "stock.write", body.location_id))


@router.post("/write-offs", response_model=LevelOut, status_code=201,
             operation_id="write_off_stock",
             summary="Take units off the shelf for good, with a reason")
async def write_off_units(request: Request, response: Response, body: WriteOffIn,
                          actor: Annotated[Actor, api_requires("stock.write")],
                          idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        after = await write_off(uow, actor, body.variant_id, body.location_id, body.quantity,
                                reason=body.reason)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.write_offs", idempotency_key, body, work,
                       _may(actor, "stock.write", body.location_id))


@router.post("/adjustments", response_model=LevelOut, status_code=201,
             operation_id="adjust_stock")
async def adjust(request: Request, response: Response, body: AdjustmentIn,
                 actor: Annotated[Actor, api_requires("stock.write")],
                 idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        after = await inventory.adjust(uow, actor, body.variant_id, body.location_id,
                                       body.quantity, reason=body.reason,
                                       reference=body.reference)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.adjustments", idempotency_key, body, work,
                       _may(actor, "stock.write", body.location_id))


def parse_body(model: type[B], raw: Any) -> B:
    """Validate a body read as JSON; errors answer as FastAPI's own would."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


# One path, two commands (told apart by their fields): the single-variant count of
# before, and a count session of a location or a part of it.
COUNT_BODY = Body(openapi_examples={
    "one variant": {"value": {"variant_id": 1, "location_id": 1, "counted": 5}},
    "open a count": {"value": {"location_id": 1, "scope": "shelf A3", "full": False}}})


@router.post("/counts", status_code=201, response_model=None, operation_id="count_stock",
             summary="Count one variant now, or open a count of a location (or a shelf)")
async def count(request: Request, response: Response, raw: Annotated[Any, COUNT_BODY],
                actor: Annotated[Actor, api_requires("stock.count")],
                idempotency_key: IdempotencyKey = None) -> Any:
    if isinstance(raw, dict) and "counted" not in raw and "variant_id" not in raw:
        opened = parse_body(CountOpenIn, raw)

        async def open_work(uow: UnitOfWork) -> Any:
            count_id = await stock_counts.open_count(uow, actor, opened.location_id,
                                                     scope=opened.scope, full=opened.full)
            return (await stock_counts.get_count(uow.session, count_id)).as_json()
        return await _once(request, response, "stock.counts.open", idempotency_key, opened,
                           open_work, _may(actor, "stock.count", opened.location_id))
    body = parse_body(CountIn, raw)

    async def work(uow: UnitOfWork) -> Any:
        after = await inventory.count(uow, actor, body.variant_id, body.location_id,
                                      body.counted, reference=body.reference)
        return _level(after).model_dump(mode="json")
    return await _once(request, response, "stock.counts", idempotency_key, body, work,
                       _may(actor, "stock.write", body.location_id))


TRANSFER_BODY = Body(openapi_examples={
    "send (in transit)": {"value": {"from_location_id": 3, "to_location_id": 2,
                                    "lines": [{"variant_id": 1, "quantity": 10}]}},
    "instant, one variant": {"value": {"variant_id": 1, "from_location_id": 3,
                                       "to_location_id": 2, "quantity": 1}}})


@router.post("/transfers", status_code=201, response_model=None,
             operation_id="transfer_stock",
             summary="Send goods (in transit until received), or move one variant at once")
async def transfer(request: Request, response: Response, raw: Annotated[Any, TRANSFER_BODY],
                   actor: Annotated[Actor, api_requires("stock.write")],
                   idempotency_key: IdempotencyKey = None) -> Any:
    if isinstance(raw, dict) and "lines" in raw:
        sent = parse_body(TransferSendIn, raw)

        async def send_work(uow: UnitOfWork) -> Any:
            out = await transfers.send(uow, actor, sent.from_location_id, sent.to_location_id,
                                       [(ln.variant_id, ln.quantity) for ln in sent.lines],
                                       note=sent.note)
            return out.as_json()
        return await _once(request, response, "stock.transfers.send", idempotency_key, sent,
                           send_work, _may(actor, "stock.write", sent.from_location_id))
    body = parse_body(TransferIn, raw)

    async def work(uow: UnitOfWork) -> Any:
        afters = await inventory.transfer(uow, actor, body.variant_id, body.from_location_id,
                                          body.to_location_id, body.quantity,
                                          reference=body.reference)
        return [_level(a).model_dump(mode="json") for a in afters]
    return await _once(request, response, "stock.transfers", idempotency_key, body, work,
                       _may(actor, "stock.write", body.from_location_id,
                            body.to_location_id))


TransferId = Annotated[int, Path(ge=1, le=MAX_ID)]
CountId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/transfers", summary="Transfers, newest first", response_model=None)
async def list_transfers(
    request: Request, actor: Annotated[Actor, api_requires("stock.read")],
    status: Annotated[Literal["", "requested", "in_transit", "received", "cancelled"],
                      Query(description="requested: held at the sender for an order, "
                                        "to send")] = "",
    location_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200, description="items per page")] = 50,
    offset: Annotated[int | None, Query(
        ge=0, le=1_000_000, deprecated=True,
        description="the old way to page: use `cursor`")] = None,
) -> dict[str, Any]:
    actor.require("stock.read", location_id)
    start = offset if offset is not None and cursor is None else offset_from(cursor)
    async with db_of(request).reader() as s:
        rows = await transfers.list_transfers(s, actor, status=status, location_id=location_id,
                                              limit=limit + 1, offset=start)
    return offset_page([t.as_json() for t in rows], limit, start).model_dump(mode="json")


@router.get("/transfers/{transfer_id}", summary="One transfer with its lines")
async def get_transfer(request: Request, transfer_id: TransferId,
                       actor: Annotated[Actor, api_requires("stock.read")]) -> dict[str, Any]:
    async with db_of(request).reader() as s:
        t = await transfers.get_transfer(s, transfer_id)
    if not transfers.may_read(actor, t):
        raise Forbidden(f"{actor.name or actor.label} may not stock.read", code="forbidden")
    return t.as_json()


@router.post("/transfers/{transfer_id}/receive",
             summary="Post what arrived (lines left out: all that was sent)")
async def receive_transfer(request: Request, response: Response, transfer_id: TransferId,
                           body: TransferReceiveIn,
                           actor: Annotated[Actor, api_requires("stock.write")],
                           idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        got = {ln.variant_id: ln.quantity_received for ln in body.lines}
        if len(got) != len(body.lines):
            raise RequestValidationError([{"loc": ("body", "lines"), "type": "value_error",
                                           "msg": "a variant is listed twice"}])
        return (await transfers.receive(uow, actor, transfer_id, got,
                                        note=body.note)).as_json()
    async def authorise() -> None:
        async with db_of(request).reader() as s:
            t = await transfers.get_transfer(s, transfer_id)
        actor.require("stock.write", t.to_location_id)
    return await _once(request, response, f"stock.transfers.receive.{transfer_id}",
                       idempotency_key, body, work, authorise)


@router.post("/transfers/{transfer_id}/send",
             summary="Mark a requested transfer sent (stock.write at the sender)",
             description="An endless-aisle pickup's transfer waits, `requested`, with its "
                         "goods held at the sender; this takes them off the sender's "
                         "shelf: in transit until received. 409 `transfer_not_requested` "
                         "when it was sent already.")
async def send_requested_transfer(request: Request, transfer_id: TransferId,
                                  actor: Annotated[Actor, api_requires("stock.write")]
                                  ) -> Any:
    async with db_of(request).uow() as uow:
        out = await transfers.send_requested(uow, actor, transfer_id)
        await uow.commit()
    return out.as_json()


@router.post("/transfers/{transfer_id}/cancel", summary="Call back a transfer in transit")
async def cancel_transfer(request: Request, transfer_id: TransferId,
                          actor: Annotated[Actor, api_requires("stock.write")]) -> Any:
    async with db_of(request).uow() as uow:
        out = await transfers.cancel(uow, actor, transfer_id)
        await uow.commit()
    return out.as_json()


def _count_may(request: Request, actor: Actor, permission: str, count_id: int) -> Authorise:
    async def check() -> None:
        async with db_of(request).reader() as s:
            c = await stock_counts.get_count(s, count_id)
        actor.require(permission, c.location_id)
    return check


async def _readable_count(request: Request, actor: Actor, count_id: int
                          ) -> stock_counts.CountOut:
    async with db_of(request).reader() as s:
        c = await stock_counts.get_count(s, count_id)
    if not (actor.can("stock.read", c.location_id) or actor.can("stock.count", c.location_id)):
        raise Forbidden(f"{actor.name or actor.label} may not stock.read", code="forbidden")
    return c


@router.get("/counts/{count_id}",
            summary="A count with its variances (expected, counted, variance per line)")
async def get_count(request: Request, count_id: CountId,
                    actor: Annotated[Actor, api_requires("stock.read")]) -> dict[str, Any]:
    return (await _readable_count(request, actor, count_id)).as_json()


@router.post("/counts/{count_id}/lines", summary="A scan (adds 1) or a typed quantity (sets)")
async def count_line(request: Request, response: Response, count_id: CountId,
                     body: CountLineIn, actor: Annotated[Actor, api_requires("stock.count")],
                     idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        if body.variant_id is not None:
            vid = body.variant_id
        elif body.code:
            vid, _, _ = await variant_by_code(uow.session, body.code)
        else:
            raise NotFound("give variant_id or code", code="unknown_code", field="code")
        if body.counted is not None:
            n = await stock_counts.record_scan(uow, actor, count_id, vid, body.counted,
                                               replace=True)
        else:
            n = await stock_counts.record_scan(uow, actor, count_id, vid, body.add)
        return {"count_id": count_id, "variant_id": vid, "counted": n}
    return await _once(request, response, f"stock.counts.lines.{count_id}", idempotency_key,
                       body, work, _count_may(request, actor, "stock.count", count_id))


@router.post("/counts/{count_id}/post",
             summary="Post the reviewed variances as count movements")
async def post_count(request: Request, response: Response, count_id: CountId,
                     actor: Annotated[Actor, api_requires("stock.write")],
                     idempotency_key: IdempotencyKey = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        return (await stock_counts.post(uow, actor, count_id)).as_json()
    return await _once(request, response, f"stock.counts.post.{count_id}", idempotency_key,
                       _Empty(), work, _count_may(request, actor, "stock.write", count_id))


@router.post("/counts/{count_id}/cancel", summary="Cancel an open count (nothing moves)")
async def cancel_count(request: Request, count_id: CountId,
                       actor: Annotated[Actor, api_requires("stock.count")]) -> Any:
    async with db_of(request).uow() as uow:
        await stock_counts.cancel(uow, actor, count_id)
        await uow.commit()
    return (await _readable_count(request, actor, count_id)).as_json()


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


@router.get("/movements", response_model=Page[MovementOut], operation_id="list_movements",
            summary="The ledger, newest first")
async def movements(
    request: Request, actor: Annotated[Actor, api_requires("stock.read")],
    variant_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 100,
    before_id: Annotated[int | None, Query(
        ge=1, le=MAX_ID, deprecated=True,
        description="the old way to page: use `cursor`")] = None,
) -> Page[MovementOut]:
    after = id_after(cursor)
    # Staff scoped to some locations read those locations' ledgers, one at a time.
    actor.require("stock.read", location_id, everywhere=location_id is None)
    async with db_of(request).reader() as s:
        rows = await inventory.movements(s, variant_id=variant_id, location_id=location_id,
                                         limit=limit + 1,
                                         before_id=after if after is not None else before_id)
    return page_of([MovementOut.model_validate(r, from_attributes=True) for r in rows], limit,
                   lambda m: {"id": m.id})
