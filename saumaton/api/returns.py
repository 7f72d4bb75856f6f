"""/api/v1 returns: goods taken back from any order, refunded by the rules of
saumaton.returns (docs/returns.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Path, Request, Response
from pydantic import Field, model_validator

from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotFound, ValidationFailed
from saumaton.core.types import MAX_ID, Input
from saumaton.locations.services import location_by_code
from saumaton.payments.paytrail_refunds import send_due_refunds
from saumaton.returns import services as returns
from saumaton.returns.schemas import (
    RefundChoice,
    ReturnIn,
    ReturnLineIn,
    ReturnOut,
    check_return_lines,
)
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["returns"])


class ApiReturnIn(Input):
    location: str = Field(min_length=1, max_length=32,
                          description="the code of the location the goods came back to")
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    refund_method: RefundChoice = "original"
    reason: str = Field(min_length=1, max_length=200)
    override_reason: str = Field(default="", max_length=200)
    drawer_session_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    terminal_confirmed: bool = False
    terminal_reference: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _distinct(self) -> ApiReturnIn:
        check_return_lines(self.lines, self.reason)
        return self


@router.post(
    "/orders/{order_id}/returns", response_model=ReturnOut, status_code=201,
    summary="Take goods of an order back and refund them",
    responses={200: {"description": "replay: this Idempotency-Key was seen; same return"},
               409: {"description": "return_exceeds_sold, return_window_closed, "
                                    "refund_exceeds_paid, drawer_closed or "
                                    "idempotency_key_reused"}},
)
async def create_return(
    request: Request, response: Response, body: ApiReturnIn, background: BackgroundTasks,
    order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    actor: Annotated[Actor, api_requires("returns.create")],
    idempotency_key: Annotated[str | None, Header(
        min_length=8, max_length=200,
        description="any unique string (a UUID); a retry with the same key returns the "
                    "same return and never refunds twice")] = None,
) -> ReturnOut:
    db = db_of(request)
    async with db.reader() as s:
        try:
            location = await location_by_code(s, body.location)
        except NotFound as exc:
            raise ValidationFailed(f"no location {body.location!r}", code="unknown_location",
                                   field="location") from exc
    cmd = ReturnIn(location_id=location.id, **body.model_dump(exclude={"location"}))
    out, replayed = await returns.take_return(db, actor, order_id, cmd, channel="api",
                                              idempotency_key=idempotency_key,
                                              settings=settings_of(request))
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    elif any(r.method == "paytrail" and r.status == "due" for r in out.refunds):
        # Asked for right after the answer (the checkout job asks again if this fails).
        background.add_task(send_due_refunds, db, request.app.state.paytrail,
                            settings_of(request), order_id=order_id)
    response.headers["Location"] = f"/api/v1/returns/{out.id}"
    return out


@router.get("/returns/{return_id}", response_model=ReturnOut)
async def get_return(request: Request, return_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                     actor: Annotated[Actor, api_requires("orders.read")]) -> ReturnOut:
    async with db_of(request).reader() as s:
        out = await returns.get_return(s, return_id)
    if not (actor.can("orders.read", out.location_id) or actor.can("returns.create")):
        raise Forbidden("you may not read this return", code="forbidden")
    return out
