"""/api/v1 returns as the back office and the till's service desk handle them: the
returns list (state, kind, order, location, a search), a postal return's parcel
received and inspected (goods back on the shelf or written off, the refund made),
a postal return called off, an order's returnable lines, and the credit receipt (read
or e-mailed). Taking goods back at a counter is `POST /orders/{id}/returns`
(api.returns).

The rules are in `returns.services` (the same functions the pages call): the location
the parcel is received at must be one where the caller may take returns, and the
window is judged when the return was requested.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from saumaton.api.fields import Reason200, StrictInput, cursor_ints
from saumaton.api.pagination import CursorQuery, LimitQuery, Page, page_of
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, Forbidden
from saumaton.core.types import MAX_ID, MAX_INT32, NoNul
from saumaton.customers.identities import normalise_email
from saumaton.returns import postal
from saumaton.returns import services as returns
from saumaton.returns.listing import list_returns
from saumaton.returns.schemas import (
    BankAccountIn,
    CreditReceipt,
    PostReturnIn,
    ReceiveIn,
    ReceiveLineIn,
    RefundChoice,
    ReturnableOrder,
    ReturnIn,
    ReturnLineIn,
    ReturnOut,
)
from saumaton.returns.services import ExchangeOut
from saumaton.tills.sales import TillSaleIn
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["returns"])
ReturnId = Annotated[int, Path(ge=1, le=MAX_ID)]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
TakesReturns = Annotated[Actor, api_requires("returns.create")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "return_not_found"}}


def _may_read(actor: Actor, ret: ReturnOut) -> bool:
    """As GET /returns/{id}: staff of the return's location, or anyone taking returns
    (a postal return is received wherever its parcel arrives)."""
    return actor.can("orders.read", ret.location_id) or actor.can("returns.create")


@router.get("/returns", response_model=Page[ReturnOut],
            summary="Returns, newest first (postal returns on their way: "
                    "status=requested&kind=post)")
async def get_returns(
    request: Request, actor: TakesReturns, cursor: CursorQuery = None,
    limit: LimitQuery = 50,
    status: Annotated[Literal["requested", "completed", "cancelled"] | None, Query()] = None,
    kind: Annotated[Literal["post", "in_store"] | None, Query()] = None,
    order_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_INT32,
                                             description="where the goods came back")]
    = None,
    q: Annotated[str, Query(max_length=200, description=(
        "the return's code, the order's number or pickup code, the customer's phone, "
        "e-mail or name")), NoNul] = "",
) -> Page[ReturnOut]:
    before = cursor_ints(cursor, "id")
    async with db_of(request).reader() as s:
        rows = await list_returns(
            s, actor, status=status, kind=kind, order_id=order_id, location_id=location_id,
            q=q, secret=settings_of(request).resolved_secret_key(),
            before_id=before[0] if before else None, limit=limit + 1)
    return page_of(rows, limit, lambda r: {"id": r.id})


class InspectedLineIn(StrictInput):
    line_no: int = Field(ge=1, le=10_000)
    restock: bool = Field(description="false: found damaged, written off instead of "
                                      "going back on the shelf")


class ReceiveParcelIn(StrictInput):
    location_id: int = Field(ge=1, le=MAX_INT32, description="where the parcel was opened")
    lines: list[InspectedLineIn] = Field(
        default_factory=list, max_length=500,
        description="lines inspected; a line left out goes back on the shelf")
    drawer_session_id: int | None = Field(
        default=None, ge=1, le=MAX_ID,
        description="the drawer a cash or card refund belongs to (default: the "
                    "location's open one)")
    terminal_confirmed: bool = Field(default=False, description="a card refund was made "
                                                                "on the terminal")
    terminal_reference: str = Field(default="", max_length=100)

    @field_validator("lines")
    @classmethod
    def _distinct(cls, lines: list[InspectedLineIn]) -> list[InspectedLineIn]:
        if len({ln.line_no for ln in lines}) != len(lines):
            raise ValueError("a line is listed twice")
        return lines


@router.post("/returns/{return_id}/receive", response_model=ReturnOut,
             summary="A postal return's parcel arrived and was inspected: goods back, "
                     "refund made (receiving it again answers the same return)",
             responses={**_NOT_FOUND,
                        403: {"description": "forbidden: no returns.create at location_id"},
                        409: {"description": "return_not_open (cancelled), drawer_closed, "
                                             "refund_exceeds_paid"},
                        422: {"description": "unknown_location"}})
async def receive_parcel(request: Request, return_id: ReturnId, body: ReceiveParcelIn,
                         actor: TakesReturns) -> ReturnOut:
    async with db_of(request).uow() as uow:
        ret = await returns.get_return(uow.session, return_id)
        out = await returns.receive_post_return(
            uow, actor, ret.code, ReceiveIn(
                location_id=body.location_id,
                lines=[ReceiveLineIn(line_no=ln.line_no, restock=ln.restock)
                       for ln in body.lines],
                drawer_session_id=body.drawer_session_id,
                terminal_confirmed=body.terminal_confirmed,
                terminal_reference=body.terminal_reference),
            settings=settings_of(request))
        await uow.commit()
    return out


@router.post("/returns/{return_id}/cancel", response_model=ReturnOut,
             summary="Call off a postal return still on its way (its units are "
                     "returnable again)",
             responses={**_NOT_FOUND, 409: {"description": "return_not_open"}})
async def cancel_return(request: Request, return_id: ReturnId,
                        actor: TakesReturns) -> ReturnOut:
    async with db_of(request).uow() as uow:
        ret = await returns.get_return(uow.session, return_id)
        if ret.kind != "post":
            raise Conflict("only a postal return on its way can be called off",
                                   code="return_not_open")
        out = await returns.cancel_post_return(uow, actor, ret.code)
        await uow.commit()
    return out


class PostLineIn(StrictInput):
    line_no: int = Field(ge=1, le=10_000, description="the order line's number")
    quantity: int = Field(ge=1, le=10_000)


class PostReturnApiIn(StrictInput):
    lines: list[PostLineIn] = Field(min_length=1, max_length=500)
    reason: Reason200
    refund_method: Literal["original", "store_credit"] = "original"
    bank_account: BankAccountIn | None = Field(
        default=None, description="where a refund by bank transfer goes (a store sale "
                                  "paid in cash or by card, when that is the shop's rule)")
    note: str = Field(default="", max_length=500)
    email_customer: bool = Field(default=True, description="e-mail the shopper the code "
                                                           "and where to send the parcel")
    lang: Literal["fi", "en"] = "fi"

    @field_validator("lines")
    @classmethod
    def _once_each(cls, lines: list[PostLineIn]) -> list[PostLineIn]:
        if len({ln.line_no for ln in lines}) != len(lines):
            raise ValueError("name each order line once")
        return lines


@router.post("/orders/{order_id}/post-returns", response_model=ReturnOut, status_code=201,
             summary="Start a postal return for the shopper (as the service desk does): "
                     "units set aside, code e-mailed; refunded when the parcel arrives",
             responses={200: {"description": "replay: this Idempotency-Key was seen; "
                                             "same return, no second e-mail"},
                        404: {"description": "order_not_found"},
                        409: {"description": "return_exceeds_sold, return_window_closed, "
                                             "idempotency_key_reused"},
                        422: {"description": "bank_account_required"}})
async def start_post_return(
    request: Request, response: Response, order_id: OrderId, body: PostReturnApiIn,
    actor: TakesReturns,
    idempotency_key: Annotated[str | None, Header(
        min_length=8, max_length=180,
        description="a retry with the same key returns the same return")] = None,
) -> ReturnOut:
    settings = settings_of(request)
    cmd = PostReturnIn(lines=[ReturnLineIn(line_no=ln.line_no, quantity=ln.quantity)
                              for ln in body.lines],
                       reason=body.reason, refund_method=body.refund_method,
                       bank_account=body.bank_account, note=body.note)
    async with db_of(request).uow() as uow:
        email = await postal.order_email(uow, order_id) if body.email_customer else ""
        out, replayed = await postal.start_post_return(
            uow, actor, order_id, cmd, channel="api", customer_id=None,
            idempotency_key=f"api-post-return:{idempotency_key}" if idempotency_key
            else None, settings=settings, email=email, lang=body.lang,
            page_url=f"{settings.resolved_public_url()}/account/returns/")
        await uow.commit()
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/returns/{out.id}"
    return out


class ExchangeApiIn(StrictInput):
    """Goods of an order back at a store and new goods sold there, in one transaction:
    the returned value pays the new sale first; the customer pays the rest with
    `sale.payments`, or the difference is refunded by `refund_method`."""

    location_id: int = Field(ge=1, le=MAX_INT32, description="the store of the exchange")
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    reason: Reason200
    refund_method: RefundChoice = "original"
    override_reason: str = Field(default="", max_length=200,
                                 description="a manager's reason outside the return window")
    terminal_confirmed: bool = False
    terminal_reference: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=500)
    sale: TillSaleIn = Field(description="the new goods, as a till sale: its key makes the "
                                         "exchange idempotent; expected_total_cents is "
                                         "required")

    @field_validator("lines")
    @classmethod
    def _once(cls, lines: list[ReturnLineIn]) -> list[ReturnLineIn]:
        if len({ln.line_no for ln in lines}) != len(lines):
            raise ValueError("name each order line once")
        return lines


@router.post("/orders/{order_id}/exchanges", response_model=ExchangeOut, status_code=201,
             summary="Exchange at a store: goods back and new goods sold in one "
                     "transaction (as the till does); preview=true answers the figures "
                     "and keeps nothing",
             responses={200: {"description": "a preview, or a replay of the sale's key"},
                        403: {"description": "forbidden: no returns.create at location_id"},
                        404: {"description": "order_not_found"},
                        409: {"description": "price_changed (the quote is in `quote`), "
                                             "return_exceeds_sold, return_window_closed, "
                                             "drawer_closed, out_of_stock, "
                                             "idempotency_key_reused"},
                        422: {"description": "expected_total_required"}})
async def exchange(
    request: Request, response: Response, order_id: OrderId, body: ExchangeApiIn,
    actor: TakesReturns,
    preview: Annotated[bool, Query(description="run it, answer the figures, keep "
                                               "nothing")] = False,
) -> ExchangeOut:
    settings = settings_of(request)
    cmd = ReturnIn(location_id=body.location_id, lines=body.lines, reason=body.reason,
                   refund_method=body.refund_method, override_reason=body.override_reason,
                   drawer_session_id=body.sale.session_id,
                   terminal_confirmed=body.terminal_confirmed,
                   terminal_reference=body.terminal_reference, note=body.note)
    if preview:
        async with db_of(request).uow() as uow:
            try:
                out = await returns.exchange(uow, actor, order_id, cmd, body.sale,
                                             channel="api", settings=settings)
            finally:
                await uow.rollback()
        response.status_code = 200
        return out
    out, replayed = await returns.take_exchange(db_of(request), actor, order_id, cmd,
                                                body.sale, channel="api", settings=settings)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.get("/orders/{order_id}/returnable", response_model=ReturnableOrder,
            summary="An order as a return screen shows it: what can still come back, "
                    "the return window, how it was paid",
            responses={404: {"description": "order_not_found"}})
async def returnable(request: Request, order_id: OrderId,
                     actor: TakesReturns) -> ReturnableOrder:
    async with db_of(request).reader() as s:
        return await returns.returnable_lines(s, order_id, settings=settings_of(request))


@router.get("/returns/{return_id}/credit-receipt", response_model=CreditReceipt,
            summary="The credit receipt of a completed return (amounts negative)",
            responses={**_NOT_FOUND, 409: {"description": "return_not_completed"}})
async def get_credit_receipt(request: Request, return_id: ReturnId,
                             actor: Annotated[Actor, api_requires("orders.read")]
                             ) -> CreditReceipt:
    async with db_of(request).reader() as s:
        ret = await returns.get_return(s, return_id)
        if not _may_read(actor, ret):
            raise Forbidden("you may not read this return", code="forbidden")
        return await returns.credit_receipt(s, return_id, settings_of(request))


class ReceiptMailIn(StrictInput):
    email: str = Field(min_length=3, max_length=320)
    lang: Literal["fi", "en"] = "fi"


class MailQueued(BaseModel):
    mail_id: int
    to: str


@router.post("/returns/{return_id}/credit-receipt/email", response_model=MailQueued,
             status_code=202, summary="E-mail the credit receipt (sent by the mail job)",
             responses={**_NOT_FOUND,
                        403: {"description": "forbidden: no returns.create at the "
                                             "return's location"},
                        409: {"description": "return_not_completed"},
                        422: {"description": "invalid_email"}})
async def email_credit_receipt(request: Request, return_id: ReturnId, body: ReceiptMailIn,
                               actor: TakesReturns) -> MailQueued:
    to = normalise_email(body.email)
    async with db_of(request).uow() as uow:
        ret = await returns.get_return(uow.session, return_id)
        # The till e-mails its own store's receipts only.
        actor.require("returns.create", ret.location_id)
        mail_id = await returns.email_credit_receipt(uow, return_id, to, lang=body.lang,
                                                     settings=settings_of(request))
        await uow.commit()
    return MailQueued(mail_id=mail_id, to=to)
