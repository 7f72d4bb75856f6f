"""The staff home (what this person's roles open: a till per store, the service desk,
the back office, reports) and the back office's front page.

One staff login leads here; every staff page links back (the "Home" link in each
header)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Request
from fastapi.responses import Response

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.locations.services import list_locations
from saumaton.overview import todos
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import nav_for, requires, staff_session
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_router, render

router = page_router()


@dataclass(frozen=True)
class Tile:
    key: str
    href: str
    title: str
    text: str


async def _tiles(request: Request, actor: Actor) -> list[Tile]:
    async with db_of(request).reader() as s:
        stores = [loc for loc in await list_locations(s)
                  if loc.kind == "store" and loc.sells_in_person
                  and actor.can("orders.create", loc.id)]
    tiles = [Tile(f"till-{loc.code}", f"/pos/{loc.code}",
                  gettext(request, N_("Till: %(store)s"), store=loc.name),
                  gettext(request, N_("Sell, returns, click & collect, cash drawer")))
             for loc in stores]
    if actor.can("customers.read") and actor.can("orders.create"):
        tiles.append(Tile("service", "/service", gettext(request, N_("Service desk")),
                          gettext(request, N_("Chat, e-mail, phone orders and returns"))))
    if nav_for(actor):
        tiles.append(Tile("backoffice", "/backoffice/", gettext(request, N_("Back office")),
                          gettext(request, N_(
                              "Orders, catalogue, prices, stock, customers, staff"))))
    if actor.can("reports.read"):
        tiles.append(Tile("reports", "/backoffice/reports", gettext(request, N_("Reports")),
                          gettext(request, N_("Sales per channel, customers, reconciliation"))))
    return tiles


@router.get("/staff/")
async def staff_home(request: Request,
        actor: Annotated[Actor, staff_session()]) -> Response:
    response = render(request, "staff/home.html", {
        "title": gettext(request, N_("Home")), "tiles": await _tiles(request, actor)})
    response.headers["Cache-Control"] = "no-store"
    return response


# What each to-do figure means and where its rows are.
WORK_LINKS: dict[str, tuple[str, str]] = {
    "orders": (N_("Web orders to prepare"), "/backoffice/orders?status=open"),
    "returns": (N_("Returns on their way by post"), "/backoffice/returns"),
    "counts": (N_("Shelves that need a count"), "/backoffice/stock/needs-count"),
    "negative": (N_("Variants with negative stock"), "/backoffice/stock?state=negative"),
    "transfers": (N_("Transfers to send or in transit"), "/backoffice/stock/transfers"),
    "price_changes": (N_("Scheduled price changes"), "/backoffice/prices"),
    "campaigns": (N_("Campaigns running now"), "/backoffice/campaigns"),
    "flags": (N_("Offline sales to review"), "/backoffice/flags"),
}


@router.get("/backoffice/")
async def backoffice_home(request: Request,
                          actor: Annotated[Actor, requires("orders.read")]) -> Response:
    async with db_of(request).reader() as s:
        found = await todos(s, actor, utcnow())
    figures = [(t.key, t.count, gettext(request, WORK_LINKS[t.key][0]), WORK_LINKS[t.key][1])
               for t in found]
    return render(request, "backoffice/home.html", {
        "title": gettext(request, N_("Back office")), "groups": nav_for(actor),
        "figures": figures, "nav_key": "home"})

