"""Stock at the till (the till's layout, a cashier's device): look up what this store
has of a scanned item (on hand, available, on its way here), start a stock count and
count by scanning. Posting a count stays in the back office (`stock.write`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from saumaton.core.errors import DomainError, Forbidden, NotFound
from saumaton.core.types import MAX_ID
from saumaton.inventory import counts as stock_counts
from saumaton.inventory import services as inventory
from saumaton.inventory import transfers
from saumaton.inventory.models import StockCount
from saumaton.inventory.receiving import variant_by_code
from saumaton.web.auth import db_of
from saumaton.web.backoffice.stock import MESSAGES, count_view, readable_count, scan_into_count
from saumaton.web.i18n import N_
from saumaton.web.pages import checked_form, error_message, error_page, gettext, page_router, render
from saumaton.web.pos.routes import Till, till_requires

router = page_router()
CountId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/pos/{code}/stock")
async def till_stock(request: Request,
        till: Annotated[Till, till_requires("stock.read")],
                     item: Annotated[str, Query(alias="code", max_length=64)] = "") -> Response:
    found = None
    errors: dict[str, str] = {}
    async with db_of(request).reader() as s:
        if item.strip():
            try:
                vid, sku, name = await variant_by_code(s, item)
            except NotFound as exc:
                errors["code"] = error_message(request, exc, MESSAGES, code=item.strip())
            else:
                at = (await inventory.availability(s, [vid]))[vid].at(till.location.id)
                transit = (await transfers.in_transit(
                    s, variant_ids=[vid], location_id=till.location.id)).get(
                    (vid, till.location.id), 0)
                found = {"sku": sku, "name": name, "on_hand": at.on_hand if at else 0,
                         "available": (at.on_hand - at.reserved) if at else 0,
                         "in_transit": transit, "variant_id": vid}
        open_counts = list((await s.scalars(
            select(StockCount).where(StockCount.location_id == till.location.id,
                                     StockCount.status == "open")
            .order_by(StockCount.id.desc()).limit(20))).all())
    return _no_cache(render(request, "backoffice/stock/till_stock.html", {
        "title": gettext(request, N_("Stock")), "till": till, "found": found, "q": item,
        "errors": errors, "open_counts": open_counts,
        "may_count": till.actor.can("stock.count", till.location.id)},
        status=422 if errors else 200))


@router.post("/pos/{code}/counts")
async def till_open_count(request: Request,
        till: Annotated[Till, till_requires("stock.count")]) -> Response:
    form = await checked_form(request)
    scope = str(form.get("scope", ""))[:250]
    try:
        async with db_of(request).uow() as uow:
            count_id = await stock_counts.open_count(uow, till.actor, till.location.id,
                                                     scope=scope)
            await uow.commit()
    except Forbidden:
        raise
    except DomainError as exc:
        return error_page(request, exc.status, error_message(request, exc, MESSAGES))
    return RedirectResponse(f"{till.base}/counts/{count_id}", status_code=303)


async def _count_base(request: Request, till: Till, count_id: int) -> str:
    """The count's address at this till (404 for a count of another store)."""
    c = await readable_count(request, till.actor, count_id)
    if c is None or c.location_id != till.location.id:
        raise NotFound("no such count at this store", code="count_not_found")
    return f"{till.base}/counts/{count_id}"


@router.get("/pos/{code}/counts/{count_id}")
async def till_count(request: Request,
        till: Annotated[Till, till_requires("stock.count")], count_id: CountId,
                     last: Annotated[str, Query(max_length=200)] = "") -> Response:
    base = await _count_base(request, till, count_id)
    notice = gettext(request, N_("Counted: %(what)s"), what=last) if last else ""
    return _no_cache(await count_view(request, till.actor, count_id,
                                      template="backoffice/stock/till_count.html", base=base,
                                      extra={"till": till}, notice=notice))


@router.post("/pos/{code}/counts/{count_id}/lines")
async def till_count_lines(request: Request,
        till: Annotated[Till, till_requires("stock.count")], count_id: CountId) -> Response:
    base = await _count_base(request, till, count_id)
    form = await checked_form(request)
    actor = till.actor
    what, errors, values = await scan_into_count(request, actor, count_id, form)
    if errors:
        return await count_view(request, actor, count_id,
                                template="backoffice/stock/till_count.html", base=base,
                                extra={"till": till}, errors=errors, values=values,
                                status=422)
    return RedirectResponse(f"{base}?{urlencode({'last': what})}" if what else base,
                            status_code=303)
