"""Offline sales to review: every flag an offline till sale carries is an item, open until
a manager of the store resolves it with a note (or, for an unconfirmed card payment,
until the card terminal's report confirms it). Filter by store, flag, state and period;
the list downloads as CSV (`?format=csv`).

Thin: the rules are in `saumaton.cardcash.flags`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.cardcash import flags
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.csvio.files import BOM, csv_line, excel_text, format_euros
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations
from saumaton.reports.period import Period, parse_period
from saumaton.web.auth import db_of, reports_db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    page_router,
    render,
    settings_of,
)

router = page_router()
BASE = "/backoffice/flags"
FLAG_LABELS = {
    "card_unconfirmed": N_("Card payment not confirmed"),
    "price_mismatch": N_("Price differs from the price list"),
    "discount_over_limit": N_("Discount over the cashier's limit"),
    "negative_stock": N_("Stock went below zero"),
    "after_close": N_("Sold after the drawer was closed"),
}
FLAG_HELP = {
    "card_unconfirmed": N_("The till was offline: the card terminal took the payment but "
                           "the till could not confirm it. Cleared by the terminal's report."),
    "price_mismatch": N_("The offline till charged a price (or campaign) other than the "
                         "price list's at the time of the sale."),
    "discount_over_limit": N_("An offline cashier gave a manual discount above the cashier's "
                              "limit."),
    "negative_stock": N_("The sale took the store's stock below zero: count the shelf."),
    "after_close": N_("The sale reached the server after its drawer's Z report."),
}
STATES = {"open": N_("Open"), "resolved": N_("Resolved"), "all": N_("All")}
MESSAGES = {
    "note_required": N_("Write what you checked and why the flag can be closed."),
    "note_too_long": N_("Use at most 500 characters."),
    "flag_resolved": N_("This flag has been resolved already."),
    "flag_not_found": N_("This sale has no such flag."),
}


async def _stores(request: Request, actor: Actor) -> list[Location]:
    async with reports_db_of(request).reader() as s:
        return [loc for loc in await list_locations(s)
                if loc.kind == "store" and actor.can("reports.read", loc.id)]


async def _page(request: Request, actor: Actor, *, store: str, flag: str, state: str,
                since: str, until: str, fmt: str = "",
                errors: dict[tuple[int, str], dict[str, str]] | None = None,
                values: dict[tuple[int, str], str] | None = None, notice: str = "",
                status: int = 200) -> Response:
    tz = settings_of(request).timezone
    stores = await _stores(request, actor)
    chosen = [loc for loc in stores if loc.code == store] or stores
    by_id = {loc.id: loc for loc in stores}
    flag = flag if flag in flags.REVIEW_FLAGS else ""
    state = state if state in STATES else "open"
    filter_error = ""
    today = utcnow().astimezone(ZoneInfo(tz)).date()
    try:
        # Open flags of any age by default; a period narrows the list.
        period = parse_period(since or None, until or None, today) if since or until \
            else Period(date(today.year - 2, 1, 1), today)
    except DomainError:
        period = Period(date(today.year - 2, 1, 1), today)
        filter_error = gettext(request, N_(
            "Give the period as two dates YYYY-MM-DD, at most three years apart."))
        status = 422
    async with reports_db_of(request).reader() as s:
        items, cut = await flags.review_items(s, flags.ReviewQuery(
            tuple(loc.id for loc in chosen), period, flag, state), tz=tz)
    if fmt == "csv" and not filter_error:
        body = BOM + csv_line(("store", "order", "receipt", "sold_at_utc", "total", "flag",
                               "state", "note", "resolved_by", "resolved_at_utc",
                               "automatic"))
        for i in items:
            body += csv_line((
                by_id[i.location_id].code, i.number, excel_text(i.receipt),
                i.sold_at.isoformat(), format_euros(i.total_cents), i.flag,
                "resolved" if i.resolved else "open", excel_text(i.note),
                excel_text(i.resolved_by),
                i.resolved_at.isoformat() if i.resolved_at else "",
                "yes" if i.automatic else "no"))
        return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="offline-flags-{state}.csv"',
                                 "Cache-Control": "no-store"})
    query = {"store": store if chosen != stores else "", "flag": flag, "state": state,
             "since": since, "until": until}
    given = {k: v for k, v in query.items() if v}
    back = f"{BASE}?{urlencode(given)}"
    return render(request, "backoffice/flags.html", {
        "title": gettext(request, N_("Offline sales to review")), "nav_key": "flags",
        "base": BASE, "stores": stores, "by_id": by_id, "store": query["store"],
        "flag": flag, "state": state, "since": since, "until": until, "items": items,
        "cut": cut, "flag_labels": FLAG_LABELS, "flag_help": FLAG_HELP, "states": STATES,
        "review_flags": flags.REVIEW_FLAGS, "errors": errors or {}, "values": values or {},
        "filter_error": filter_error, "notice": notice, "back": back,
        "may_resolve": lambda location_id: actor.can("flags.resolve", location_id),
        "csv_href": f"{BASE}?{urlencode({**given, 'format': 'csv'})}",
    }, status=status)


@router.get(BASE)
async def review(request: Request, actor: Annotated[Actor, requires("reports.read")],
                 store: Annotated[str, Query(max_length=32)] = "",
                 flag: Annotated[str, Query(max_length=32)] = "",
                 state: Annotated[str, Query(max_length=16)] = "open",
                 since: Annotated[str, Query(max_length=10)] = "",
                 until: Annotated[str, Query(max_length=10)] = "",
                 format: Annotated[str, Query(max_length=8)] = "",
                 done: Annotated[str, Query(max_length=8)] = "") -> Response:
    notice = gettext(request, N_("The flag is resolved.")) if done == "1" else ""
    return await _page(request, actor, store=store, flag=flag, state=state, since=since,
                       until=until, fmt=format, notice=notice)


@router.post(BASE + "/{order_id}")
async def resolve(request: Request, order_id: int,
                  actor: Annotated[Actor, requires("flags.resolve")]) -> Response:
    form = await checked_form(request)
    flag = str(form.get("flag", ""))[:32]
    note = str(form.get("note", ""))
    back = str(form.get("back", ""))
    back = back if back.startswith(BASE) and "//" not in back else BASE
    try:
        async with db_of(request).uow() as uow:
            await flags.resolve(uow, actor, order_id, flag, note)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        key = (order_id, flag)
        shown = {k: v[:32] for k, v in parse_qsl(urlsplit(back).query)}  # the list's filters
        return await _page(
            request, actor, store=shown.get("store", ""), flag=shown.get("flag", ""),
            state=shown.get("state", "open"), since=shown.get("since", ""),
            until=shown.get("until", ""),
            errors={key: {"note": error_message(request, exc, MESSAGES)}},
            values={key: note[:500]}, status=exc.status)
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done=1", status_code=303)
