"""The till's JSON endpoints: catalogue snapshot, sales and voids (online or synced).

Session auth (`open_till`), CSRF in the `X-CSRF-Token` header. Errors are JSON
(`{"code", "detail", "field", …}`, the API's problem form): these routes use a plain
router, so a DomainError reaches the app's JSON error handlers, not the HTML pages'.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import MAX_ID, MAX_INT32
from saumaton.customers.card import customer_card
from saumaton.giftcards import services as giftcards
from saumaton.locations.services import channel_by_code
from saumaton.orders.services import business_day
from saumaton.orders.suggestions import suggestions
from saumaton.tills import aisle, sales
from saumaton.tills.catalogue import build_catalogue
from saumaton.tryon import services as tryon
from saumaton.web.auth import check_csrf, db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, settings_of
from saumaton.web.pos.routes import Till, till_requires

router = APIRouter(prefix="/pos", include_in_schema=False)
MAX_BODY = 1_000_000
M = TypeVar("M", bound=BaseModel)


async def _checked_json(request: Request, model: type[M]) -> M:
    """The body as `model`, after the CSRF header check. Bad JSON or values: 422 with
    the field (dotted path, e.g. `lines.0.quantity`)."""
    check_csrf(request, request.headers.get("x-csrf-token"))
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ValidationFailed("the request is too large", code="too_large")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise ValidationFailed(f"{field}: {first.get('msg', 'invalid')}" if field
                               else str(first.get("msg", "invalid")),
                               field=field or None) from None


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/{code}/api/catalogue")
async def catalogue(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    at = utcnow()
    async with db_of(request).reader() as s:
        channel = await channel_by_code(s, till.channel_code)
        snap = await build_catalogue(s, channel, at, business_day(at))
    headers = {"ETag": snap.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == snap.etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(snap.body, headers=headers)


def _receipt_url(till: Till, order_id: int) -> str:
    return f"{till.base}/receipt/{order_id}"


@router.post("/{code}/api/sales")
async def sell(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    cmd = await _checked_json(request, sales.TillSaleIn)
    order, replayed = await sales.sell(db_of(request), till.actor, till.location.id, cmd,
                                       settings=settings_of(request))
    return _json({"order": order.model_dump(mode="json"),
                  "receipt_url": _receipt_url(till, order.id)},
                 200 if replayed else 201)


@router.post("/{code}/api/voids")
async def voids(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    cmd = await _checked_json(request, sales.VoidsIn)
    recorded = await sales.record_voids(db_of(request), till.actor, till.location.id, cmd)
    return _json({"recorded": recorded})


MAX_SUGGESTION_LINES = 50


@router.get("/{code}/api/suggestions")
async def sale_suggestions(
        request: Request, till: Annotated[Till, till_requires("orders.create")],
        variant: Annotated[list[int], Query(max_length=MAX_SUGGESTION_LINES)],
        customer: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    """Add-ons for the current sale's lines (`variant`, repeated) and its customer, in
    stock at this store, from the one suggestion engine (`orders.suggestions`); the till
    marks a line taken from them `source: "upsell"`."""
    if any(not 1 <= v <= MAX_INT32 for v in variant):
        raise ValidationFailed("a variant id is out of range", field="variant")
    async with db_of(request).reader() as s:
        found = await suggestions(s, till.location.id, customer, variant)
    return _json({"suggestions": [
        {"variant_id": g.variant_id, "name": g.name, "sku": g.sku,
         "price_cents": g.price_cents, "list_cents": g.list_cents, "available": g.available,
         "reason": g.reason} for g in found]})


@router.get("/{code}/api/customers/{customer_id}/delivery")
async def customer_delivery(request: Request,
        till: Annotated[Till, till_requires("customers.read")],
        customer_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """An endless-aisle sale's delivery as the register knows it (tills.aisle): the
    attached customer's name, e-mail, phone and default address, for the cashier to
    confirm."""
    async with db_of(request).reader() as s:
        return _json(await aisle.customer_delivery(s, customer_id))


@router.get("/{code}/api/tries/{try_id}/customer")
async def try_customer(request: Request,
        till: Annotated[Till, till_requires("orders.create")],
        try_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Who a reservation to try that the till is selling is for, by the rule the sale
    itself follows (`tryon.services.reserved_for`): `customer` is what the till attaches
    (as the customer card's *Add to sale* does: name, points, tier, segments, store
    credit), or null when the reservation names nobody in the register."""
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        r = await tryon.get(s, try_id, till.location.id)
        who = await tryon.reserved_for(s, [r.id], till.location.id)
        card = (None if who is None
                else await customer_card(s, till.actor, who, settings=settings))
    customer = None if card is None else {
        "id": card.id, "name": card.name,
        "points": card.loyalty.points if card.loyalty else 0,
        "point_value_cents": settings.loyalty_point_value_cents,
        "tier": (card.loyalty.status.tier or "") if card.loyalty else "",
        "segments": list(card.segments),
        "store_credit_cents": card.store_credit.balance_cents if card.store_credit else 0,
        "labels": {"use": gettext(request, N_("Points")),
                   "remove": gettext(request, N_("Do not use points")),
                   "balance": gettext(request, N_("Loyalty points: {points} ({value})")),
                   "used": gettext(request, N_("Paid with points: {amount} ({points} points)"))},
    }
    return _json({"id": r.id, "code": r.code, "name": r.name, "customer": customer})


@router.get("/{code}/api/gift-cards/{card}")
async def gift_card(request: Request,
        till: Annotated[Till, till_requires("giftcards.read")],
                    card: Annotated[str, Path(max_length=40)]) -> Response:
    """A scanned or typed card: its balance and expiry (what the cashier tells the
    customer, and what the till takes as payment: at most this)."""
    async with db_of(request).reader() as s:
        out = await giftcards.lookup(s, till.actor, card, entries=0)
    return _json(out.model_dump(mode="json"))
