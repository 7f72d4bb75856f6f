"""Postal returns in the back office: the returns on their way (search by code, order
number, customer), a parcel inspected and completed at the warehouse (or another
location the staff member may receive at), and the credit receipt.

Thin: `returns.services.receive_post_return` holds every rule.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations
from saumaton.returns.services import credit_receipt, get_return
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    gettext,
    page_router,
    render,
    require_staff,
    settings_of,
)
from saumaton.web.returns_forms import messages, post_returns, receive

router = page_router("/backoffice")
ReturnId = Annotated[int, Path(ge=1, le=MAX_ID)]
STATES = ("requested", "completed", "cancelled")


async def _receiving_locations(request: Request, actor: Actor) -> list[Location]:
    async with db_of(request).reader() as s:
        return [loc for loc in await list_locations(s)
                if loc.kind in ("warehouse", "store") and actor.can("returns.create", loc.id)]


@router.get("/returns")
async def returns_list(request: Request,
        _allowed: Annotated[Actor, requires("returns.create")],
        q: Annotated[str, Query(max_length=200)] = "",
                       status: Annotated[str, Query(max_length=16)] = "requested"
                       ) -> Response:
    actor = await require_staff(request)
    actor.require("returns.create")
    typed = q.strip()
    state = status if status in STATES else "requested"
    async with db_of(request).reader() as s:
        found = await post_returns(s, typed, status=state,
                                   secret=settings_of(request).resolved_secret_key())
    if typed and len(found) == 1:
        return RedirectResponse(f"/backoffice/returns/{found[0].id}", status_code=303)
    errors: dict[str, str] = {}
    if typed and not found:
        errors["q"] = gettext(request, N_("No return matches %(q)s."), q=typed)
    return render(request, "backoffice/returns.html", {
        "title": gettext(request, N_("Returns by post")), "q": typed, "found": found,
        "errors": errors, "base": "/backoffice/returns", "status": state})


async def _page(request: Request, actor: Actor, return_id: int, *,
                errors: dict[str, str] | None = None, status: int = 200) -> Response:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
        receipt = await credit_receipt(s, ret.id, settings) \
            if ret.status == "completed" else None
    return render(request, "backoffice/return.html", {
        "title": gettext(request, N_("Return %(code)s"), code=ret.code), "ret": ret,
        "receipt": receipt, "errors": errors or {},
        "done": request.query_params.get("done") == "1",
        "locations": await _receiving_locations(request, actor),
        "action": f"/backoffice/returns/{ret.id}"}, status=status)


@router.get("/returns/{return_id}")
async def return_page(request: Request,
        _allowed: Annotated[Actor, requires("returns.create")],
        return_id: ReturnId) -> Response:
    actor = await require_staff(request)
    actor.require("returns.create")
    return await _page(request, actor, return_id)


@router.post("/returns/{return_id}")
async def receive_parcel(request: Request,
        _allowed: Annotated[Actor, requires("returns.create")],
        return_id: ReturnId) -> Response:
    actor = await require_staff(request)
    posted = await checked_form(request)
    locations = {loc.id: loc for loc in await _receiving_locations(request, actor)}
    raw = posted.get("location")
    location_id = int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 10 \
        else 0
    if location_id not in locations:
        return await _page(request, actor, return_id, errors={"location": gettext(
            request, N_("Choose where the parcel was received."))}, status=422)
    async with db_of(request).reader() as s:
        ret = await get_return(s, return_id)
    try:
        async with db_of(request).uow() as uow:
            await receive(uow, actor, settings_of(request), ret, posted,
                          location_id=location_id, drawer_session_id=None)
            await uow.commit()
    except DomainError as exc:
        return await _page(request, actor, return_id,
                           errors={"general": messages(request, exc)}, status=exc.status)
    return RedirectResponse(f"/backoffice/returns/{return_id}?done=1", status_code=303)
