"""/api/v1 reservations to try (docs/reserve-to-try.md): list a store's reservations by
status, read one by its code, reserve a unit for a shopper (a customer of the register,
or a name with a phone number or an e-mail address), release one. Selling it is the
till's job (the till sale's `try_ids`).

Reading needs `orders.read` at the reservation's store, reserving and releasing
`orders.create` there — the same as the till's list. Thin: the rules are in
saumaton.tryon.services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from saumaton.api.fields import cursor_ints
from saumaton.api.pagination import CursorQuery, LimitQuery, Page, page_of
from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound
from saumaton.core.types import MAX_ID, MAX_INT32, Input
from saumaton.tryon import services as tryon
from saumaton.tryon.services import TryIn, TryOut
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/try-reservations", tags=["reserve to try"])
Status = Literal["active", "sold", "released", "expired"]
Code = Annotated[str, Path(min_length=4, max_length=16, pattern=r"^[A-Za-z0-9 -]+$",
                           description="the shopper's code, e.g. KT7MXH3A (any case)")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "try_not_found"}}


class TryReservationIn(Input):
    variant_id: int = Field(ge=1, le=MAX_ID)
    location_id: int = Field(ge=1, le=MAX_INT32, description="the store that holds the unit")
    customer_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="a customer of the register (then name and "
                                           "contact may be left out)")
    name: str = Field("", max_length=200)
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=320)
    language: Literal["fi", "en"] = Field("fi", description="of the e-mails she gets")


class TryReservationOut(BaseModel):
    id: int
    code: str
    status: Status
    variant_id: int
    sku: str
    product: str = Field(description="product and variant name")
    location_id: int
    customer_id: int | None
    name: str
    phone: str
    email: str
    language: str
    expires_at: datetime = Field(description="when the hold ends (a no-show is released "
                                             "then, with a note)")
    created_at: datetime
    closed_at: datetime | None
    order_id: int | None = Field(description="the till sale that sold it")


async def _outs(request: Request, rows: list[TryOut]) -> list[TryReservationOut]:
    async with db_of(request).reader() as s:
        names = await tryon.variant_names(s, [r.variant_id for r in rows])
    result = []
    for r in rows:
        n = names.get(r.variant_id)
        result.append(TryReservationOut(
            id=r.id, code=r.code, status=r.status,
            variant_id=r.variant_id, sku=n.sku if n else "",
            product=(f"{n.product} – {n.variant}" if n.variant else n.product) if n else "",
            location_id=r.location_id, customer_id=r.customer_id, name=r.name,
            phone=r.phone, email=r.email, language=r.language, expires_at=r.expires_at,
            created_at=r.created_at, closed_at=r.closed_at, order_id=r.order_id))
    return result


async def _by_code(request: Request, actor: Actor, code: str, permission: str) -> TryOut:
    async with db_of(request).reader() as s:
        found = await tryon.get_by_code(s, code)
    # Another store's reservation is as unknown to the caller as a code never given.
    if found is None or not actor.can(permission, found.location_id):
        raise NotFound("no such reservation to try", code="try_not_found", field="try_code")
    return found


@router.get("", response_model=Page[TryReservationOut],
            summary="Reservations to try, newest first, by store and status (orders.read)",
            responses={403: {"description": "forbidden: no orders.read at location_id"}})
async def list_reservations(
    request: Request, actor: Annotated[Actor, api_requires("orders.read")],
    cursor: CursorQuery = None, limit: LimitQuery = 50,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    status: Annotated[Status | None, Query(description="active: still held")] = None,
) -> Page[TryReservationOut]:
    if location_id is not None:
        actor.require("orders.read", location_id)
        stores: list[int] | None = [location_id]
    elif actor.can("orders.read", everywhere=True):
        stores = None
    else:  # the stores the caller's roles name
        stores = sorted(i for i in actor.location_ids
                        if i is not None and actor.can("orders.read", i))
    before = cursor_ints(cursor, "id")
    async with db_of(request).reader() as s:
        rows = await tryon.list_reservations(s, stores, status=status or "",
                                             before_id=before[0] if before else None,
                                             limit=limit + 1)
    return page_of(await _outs(request, rows), limit, lambda r: {"id": r.id})


@router.get("/{try_code}", response_model=TryReservationOut, responses=NOT_FOUND,
            summary="One reservation to try by its code (orders.read at its store)")
async def get_reservation(request: Request, try_code: Code,
                          actor: Annotated[Actor, api_requires("orders.read")]
                          ) -> TryReservationOut:
    [out] = await _outs(request, [await _by_code(request, actor, try_code, "orders.read")])
    return out


@router.post(
    "", response_model=TryReservationOut, status_code=201,
    summary="Reserve a unit to try at a store for a shopper (orders.create there)",
    description="Holds one unit without payment until the store closes on the next day "
                "(the shop's settings), like the webshop's *Reserve to try*. With an "
                "e-mail address she gets the code by e-mail. Every field error at once "
                "(422, `errors`); nothing was reserved then.",
    responses={200: {"description": "replay: this Idempotency-Key was seen; the same "
                                    "reservation"},
               403: {"description": "forbidden: no orders.create at the store"},
               404: {"description": "variant_not_found, customer_not_found"},
               409: {"description": "try_unavailable (no unit free at the store any "
                                    "more), try_limit (the shopper holds the most "
                                    "reservations at once), idempotency_key_reused"},
               422: {"description": "name_required, contact_required, invalid_phone, "
                                    "invalid_email, invalid_store …"}})
async def create_reservation(
    request: Request, response: Response, body: TryReservationIn,
    actor: Annotated[Actor, api_requires("orders.create")],
    idempotency_key: Annotated[str | None, Header(
        min_length=8, max_length=180,
        description="any unique string (a UUID); a retry with the same key returns the "
                    "same reservation and never holds a second unit")] = None,
) -> TryReservationOut:
    actor.require("orders.create", body.location_id)
    cmd = TryIn(variant_id=body.variant_id, location_id=body.location_id, name=body.name,
                phone=body.phone, email=body.email, customer_id=body.customer_id,
                language=body.language)
    settings = settings_of(request)
    replayed = False
    try:
        async with db_of(request).uow() as uow:
            if idempotency_key:
                out, replayed = await tryon.reserve_once(uow, actor, cmd,
                                                         f"api:{idempotency_key}",
                                                         settings=settings)
            else:
                out = await tryon.reserve(uow, actor, cmd, settings=settings)
            await uow.commit()
    except IntegrityError:  # the same key at the same moment: the other insert won
        if not idempotency_key:
            raise
        async with db_of(request).uow() as uow:
            out, replayed = await tryon.reserve_once(uow, actor, cmd,
                                                     f"api:{idempotency_key}",
                                                     settings=settings)
            await uow.commit()
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/try-reservations/{out.code}"
    [result] = await _outs(request, [out])
    return result


@router.post("/{try_code}/release", response_model=TryReservationOut,
             summary="Release a reservation: the unit is back on the shelf "
                     "(orders.create at its store)",
             responses={**NOT_FOUND, 409: {"description": "try_closed: already sold, "
                                                          "released or lapsed"}})
async def release_reservation(request: Request, try_code: Code,
                              actor: Annotated[Actor, api_requires("orders.create")]
                              ) -> TryReservationOut:
    found = await _by_code(request, actor, try_code, "orders.create")
    async with db_of(request).uow() as uow:
        out = await tryon.release(uow, actor, found.id, location_id=found.location_id)
        await uow.commit()
    [result] = await _outs(request, [out])
    return result
