"""The POS pages: store picker, the till, receipt.

The till is a client-side app (static/pos/till.js): it prices the sale from the
catalogue snapshot (`GET /pos/{store}/api/catalogue`) with pricing.js, a mirror of
the core's pricing, and sells through the JSON endpoints in `web/pos/api.py`
(`tills.sales.sell`, idempotent on the sale's key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.checkout.pickup import customer_contact
from saumaton.checkout.services import pickup_orders, ready_pickup_count
from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, NotFound
from saumaton.core.types import MAX_ID
from saumaton.giftcards.qr import sold_cards
from saumaton.giftcards.sales import cards_sold_by
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations, location_by_code, pos_channel_for
from saumaton.orders.services import get_order
from saumaton.tills.catalogue import max_discount_pct
from saumaton.tills.drawer import open_session_at
from saumaton.web.auth import csrf_token, db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    gettext,
    is_htmx,
    page_lang,
    page_router,
    render,
    require_staff,
    settings_of,
)

router = page_router("/pos")
Code = Annotated[str, Path(max_length=32)]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]


STORE_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class Till:
    actor: Actor
    location: Location
    channel_code: str

    @property
    def base(self) -> str:
        return f"/pos/{self.location.code}"


async def open_till(request: Request, code: str, permission: str = "orders.create") -> Till:
    """The store's till for the logged-in staff member, if they may use it."""
    actor = await require_staff(request)
    db = db_of(request)

    async def load() -> tuple[Location, str]:
        async with db.reader() as s:
            location = await location_by_code(s, code)  # unknown: raises, not cached
            return location, (await pos_channel_for(s, location.id)).code

    # Reference rows read by every till request (each scan, sale, sync).
    location, channel_code = await db.cached(("till", code), STORE_CACHE_SECONDS, load)
    actor.require(permission, location.id)
    return Till(actor, location, channel_code)


class TillPermission:
    """A till route's declaration: a staff session holding `permission` at the store
    named by the path's `{code}` (the login page, or 403, otherwise). The route gets
    the store's `Till`."""

    def __init__(self, permission: str) -> None:
        self.permission = permission

    async def __call__(self, request: Request, code: Code) -> Till:
        return await open_till(request, code, self.permission)


def till_requires(permission: str = "orders.create") -> Any:
    """`till: Annotated[Till, till_requires("orders.read")]` on a /pos/{code}/... route."""
    return Depends(TillPermission(permission))


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/")
async def pos_home(request: Request,
        actor: Annotated[Actor, requires("orders.create")]) -> Response:
    """The stores where the person may sell (one: straight to its till)."""
    async with db_of(request).reader() as s:
        stores = [loc for loc in await list_locations(s)
                  if loc.kind == "store" and loc.sells_in_person
                  and actor.can("orders.create", loc.id)]
    if not stores:
        raise Forbidden(f"{actor.name} may not sell in any store", code="forbidden")
    if len(stores) == 1:
        return RedirectResponse(f"/pos/{stores[0].code}", status_code=303)
    return _no_cache(render(request, "pos/picker.html", {
        "title": gettext(request, N_("Choose a store")), "stores": stores}))


# --- the till ---------------------------------------------------------------------------

@router.get("/{code}/pickups")
async def pickups(request: Request,
        till: Annotated[Till, till_requires("orders.read")]) -> Response:
    """Click & collect orders waiting at this store (handover comes with the till work)."""
    if request.query_params.get("count") == "1":  # the header's badge
        async with db_of(request).reader() as s:
            n = await ready_pickup_count(s, till.location.id)
        return _no_cache(Response(str(n) if n else "", media_type="text/plain"))
    async with db_of(request).reader() as s:
        waiting = await pickup_orders(s, till.location.id)
    return _no_cache(render(request, "pos/pickups.html", {
        "title": gettext(request, N_("Click & collect")), "till": till, "waiting": waiting}))


@router.get("/{code}")
async def till_page(request: Request,
        till: Annotated[Till, till_requires("orders.create")]) -> Response:
    """The till: a client-side sale (static/pos/till.js) on the catalogue snapshot."""
    async with db_of(request).reader() as s:
        drawer = await open_session_at(s, till.location.id)
    if drawer is None:
        return RedirectResponse(f"{till.base}/drawer", status_code=303)
    settings = settings_of(request)
    location = till.location
    config: dict[str, Any] = {
        "code": location.code, "base": till.base, "storeName": location.name,
        "locationId": location.id,
        "storeAddress": location.address or "",
        "sessionId": drawer.id, "registerName": drawer.register_name,
        "staffName": till.actor.name, "csrfToken": csrf_token(request),
        "maxDiscountPct": max_discount_pct(till.actor, location.id,
                                           settings.pos_cashier_max_discount_pct),
        "offlineCard": settings.pos_offline_card, "lang": page_lang(request),
        "timezone": settings.timezone,
        "seller": {"name": settings.business_name, "id": settings.business_id,
                   "address": settings.business_address},
    }
    return _no_cache(render(request, "pos/till.html", {
        "title": location.name, "till": till, "config": config, "drawer": drawer}))


@router.get("/{code}/receipt/{order_id}")
async def receipt(request: Request,
        till: Annotated[Till, till_requires("orders.read")], order_id: OrderId) -> Response:
    async with db_of(request).reader() as s:
        order = await get_order(s, order_id)
        name, email = await customer_contact(s, order.customer_id)
        cards = sold_cards(await cards_sold_by(s, order_id))  # printed: code and QR
    if order.location_id != till.location.id:
        raise NotFound(f"no order {order_id} at {till.location.code}", code="order_not_found")
    who = {"customer_name": name, "receipt_email": order.email or email,
           "gift_cards": cards}
    if is_htmx(request):  # the till shows the receipt of the sale just paid in place
        return _no_cache(render(request, "pos/_receipt_panel.html", {
            "till": till, "order": order, "just_paid": True, **who}))
    return _no_cache(render(request, "pos/receipt.html", {
        "title": gettext(request, N_("Receipt %(number)s"),
                         number=order.receipt_no or order.number),
        "till": till, "order": order, "just_paid": False, **who}))
