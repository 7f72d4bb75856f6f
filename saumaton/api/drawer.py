"""/api/v1 cash drawer: what the till's drawer pages do (web/pos/drawer.py) — open the
store's register with a float, cash in and out, close with the count (the Z report), the
open drawer's X report and the stored Z reports. Amounts are integer cents.

Opening, cash movements and closing need `orders.create` at the store (a cashier of that
store); reading Z reports `orders.read` there. Opening and cash movements take an
`Idempotency-Key`: a retry returns the first answer and never moves cash twice.
Thin: the rules are in saumaton.tills.drawer and saumaton.tills.zreport.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt

from saumaton.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, page_of
from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, MAX_INT32, Input
from saumaton.locations.models import Location
from saumaton.locations.services import location_by_code
from saumaton.mail.receipts import email_receipt
from saumaton.tills.drawer import (
    MAX_CENTS,
    CashMovementOut,
    DrawerOut,
    cash_movement,
    close_session,
    open_session,
    open_session_at,
)
from saumaton.tills.zreport import ZReport, ZReportSummary, get_report, list_reports, z_report
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["till"])
Seller = Annotated[Actor, api_requires("orders.create")]
Reader = Annotated[Actor, api_requires("orders.read")]
StoreCode = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$",
                                description="the store's code")]
SessionId = Annotated[int, Path(ge=1, le=MAX_ID)]
Key = Annotated[str, Header(min_length=8, max_length=200,
                            description="any unique string (a UUID); a retry with the same "
                                        "key returns the first answer")]
DRAWER_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "location_not_found, drawer_not_found"},
    409: {"description": "drawer_closed, idempotency_key_reused"}}


async def _store(request: Request, actor: Actor, code: str, permission: str) -> Location:
    async with db_of(request).reader() as s:
        location = await location_by_code(s, code)
    actor.require(permission, location.id)
    return location


class DrawerStatusOut(BaseModel):
    drawer: DrawerOut | None = Field(description="the open session; null: the till is "
                                                 "closed")
    x_report: ZReport | None = Field(description="the open session's figures so far")


@router.get("/locations/{code}/drawer", response_model=DrawerStatusOut,
            responses={404: {"description": "location_not_found"}},
            summary="The store's drawer: open or not, and its X report (orders.create at "
                    "the store)")
async def drawer_status(request: Request, code: StoreCode, actor: Seller) -> DrawerStatusOut:
    store = await _store(request, actor, code, "orders.create")
    async with db_of(request).reader() as s:
        drawer = await open_session_at(s, store.id)
        report = None if drawer is None else await z_report(s, drawer.id)
    return DrawerStatusOut(drawer=drawer, x_report=report)


class OpenIn(Input):
    float_cents: StrictInt = Field(ge=0, le=MAX_CENTS, description="cash put in the drawer")


@router.post("/locations/{code}/drawer", response_model=DrawerOut, status_code=201,
             responses={404: {"description": "location_not_found"},
                        409: {"description": "drawer_already_open"}},
             summary="Open the store's till with a float (orders.create at the store)")
async def open_drawer(request: Request, response: Response, code: StoreCode, body: OpenIn,
                      actor: Seller, idempotency_key: Key) -> DrawerOut:
    store = await _store(request, actor, code, "orders.create")
    async with db_of(request).uow() as uow:
        out = await open_session(uow, actor, store.id, body.float_cents,
                                 f"api:{idempotency_key}")
        await uow.commit()
    response.headers["Location"] = f"/api/v1/drawer-sessions/{out.id}"
    return out


class CashIn(Input):
    kind: Literal["in", "out"]
    amount_cents: StrictInt = Field(ge=1, le=MAX_CENTS)
    reason: str = Field(min_length=1, max_length=200)


@router.post("/drawer-sessions/{session_id}/cash", response_model=CashMovementOut,
             status_code=201, responses=DRAWER_ERRORS,
             summary="Put cash into or take it out of an open drawer, with the reason "
                     "(orders.create at the store)")
async def cash(request: Request, session_id: SessionId, body: CashIn, actor: Seller,
               idempotency_key: Key) -> CashMovementOut:
    async with db_of(request).uow() as uow:
        out = await cash_movement(uow, actor, session_id, body.kind, body.amount_cents,
                                  body.reason, f"api:{idempotency_key}")
        await uow.commit()
    return out


class CloseIn(Input):
    counted_cents: StrictInt = Field(ge=0, le=MAX_CENTS,
                                     description="the cash counted in the drawer")
    note: str = Field("", max_length=500)
    confirm_difference: StrictBool = Field(
        False, description="a count that differs from the expected cash by more than the "
                           "shop's limit is refused (422 difference_needs_confirmation) "
                           "unless this is true: count again first")


@router.post("/drawer-sessions/{session_id}/close", response_model=ZReport,
             responses={**DRAWER_ERRORS, 422: {"description": "difference_needs_"
                                                              "confirmation (the difference "
                                                              "in `difference_cents`)"}},
             summary="Close the drawer with the count: the Z report (orders.create at the "
                     "store)")
async def close(request: Request, session_id: SessionId, body: CloseIn,
                actor: Seller) -> ZReport:
    async with db_of(request).uow() as uow:
        report = await close_session(
            uow, actor, session_id, body.counted_cents, body.note,
            confirm_over_cents=None if body.confirm_difference
            else settings_of(request).pos_close_confirm_cents)
        await uow.commit()
    return report


@router.get("/locations/{code}/z-reports", response_model=Page[ZReportSummary],
            responses={404: {"description": "location_not_found"}},
            summary="The store's Z reports, newest first (orders.read at the store)")
async def z_reports(request: Request, code: StoreCode, actor: Reader,
                    cursor: CursorQuery = None, limit: LimitQuery = 50
                    ) -> Page[ZReportSummary]:
    store = await _store(request, actor, code, "orders.read")
    key = decode_cursor(cursor, "z")
    async with db_of(request).reader() as s:
        rows = await list_reports(s, store.id, limit + 1,
                                  before=int(key["z"]) if key is not None else None)
    return page_of(rows, limit, lambda r: {"z": r.z_number})


@router.get("/locations/{code}/z-reports/{z_number}", response_model=ZReport,
            responses={404: {"description": "location_not_found, z_report_not_found"}},
            summary="A stored Z report, for a reprint (orders.read at the store)")
async def z_report_of(request: Request, code: StoreCode, actor: Reader,
                      z_number: Annotated[int, Path(ge=1, le=MAX_INT32)]) -> ZReport:
    store = await _store(request, actor, code, "orders.read")
    async with db_of(request).reader() as s:
        return await get_report(s, store.id, z_number)


class ReceiptEmailIn(Input):
    email: str = Field(min_length=3, max_length=320)


class ReceiptEmailOut(BaseModel):
    order_id: int
    to: str = Field(description="the address, normalised")


@router.post("/orders/{order_id}/receipt-email", response_model=ReceiptEmailOut,
             status_code=202,
             responses={404: {"description": "order_not_found"},
                        422: {"description": "invalid_email, not_a_store_sale"}},
             summary="E-mail a store sale's receipt (orders.create at the sale's store)")
async def receipt_email(request: Request, order_id: SessionId, body: ReceiptEmailIn,
                        actor: Seller) -> ReceiptEmailOut:
    async with db_of(request).uow() as uow:
        to = await email_receipt(uow, actor, order_id, body.email,
                                 settings=settings_of(request))
        await uow.commit()
    return ReceiptEmailOut(order_id=order_id, to=to)
