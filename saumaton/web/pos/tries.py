"""Reserve to try at the till: the store's list, finding one by code, phone or name,
selling it (the till's sale carries the reservation: `?add=<ean>&try=<id>`) or
releasing it. Routes only translate HTTP to `tryon.services`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID
from saumaton.tryon import services as tryon
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import checked_form, error_message, gettext, page_router, render
from saumaton.web.pos.routes import Till, till_requires

router = page_router("/pos")
CLOSED_SHOWN = timedelta(hours=24)  # how far back the list shows closed reservations
TryId = Annotated[int, Path(ge=1, le=MAX_ID)]

MESSAGES = {
    "try_closed": N_("This reservation was already closed."),
    "try_not_found": N_("There is no such reservation to try at this store."),
}


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def _page(request: Request, till: Till, q: str, *, error: str = "", done: str = "",
                status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        rows = (await tryon.find(s, till.location.id, q) if q
                else await tryon.store_list(s, till.location.id))
        closed = ([] if q else
                  await tryon.recently_closed(s, till.location.id, utcnow() - CLOSED_SHOWN))
        names = await tryon.variant_names(s, [r.variant_id for r in [*rows, *closed]])
    errors: dict[str, str] = {}
    if error:
        errors["q"] = error
    elif q and not rows:
        errors["q"] = gettext(request, N_("No reservation here matches %(q)s."), q=q)
    return _no_cache(render(request, "pos/tries.html", {
        "title": gettext(request, N_("Reserved to try")), "till": till, "rows": rows,
        "names": names, "closed": closed, "q": q, "errors": errors, "done": done}, status=status))


@router.get("/{code}/tries")
async def tries(request: Request, till: Annotated[Till, till_requires("orders.read")],
                q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """The store's active reservations to try, soonest ending first, and those closed in
    the last 24 hours (what became of them); `q`: a code, a phone number or a name."""
    return await _page(request, till, q.strip(),
                       done=request.query_params.get("released", "")[:16])


@router.post("/{code}/tries/{try_id}/release")
async def release(request: Request, till: Annotated[Till, till_requires("orders.create")],
                  try_id: TryId) -> Response:
    """The "Release" button: the unit goes back to the shelf."""
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            out = await tryon.release(uow, till.actor, try_id, location_id=till.location.id)
            await uow.commit()
    except DomainError as exc:
        text = MESSAGES.get(exc.code)
        msg = gettext(request, text) if text else error_message(request, exc)
        return await _page(request, till, "", error=msg, status=exc.status)
    return RedirectResponse(f"{till.base}/tries?released={out.code}", status_code=303)
