"""The daily journal for the accountant (docs/journal.md): pick a day or a range and a
location, read the journal as tables, download the same figures as CSV.

Owners and finance see every location and the gift card ledger; a store's manager only
their stores' rows. Thin: the figures are `reports.journal`'s, read through the
reports database (a replica when configured).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.locations.models import Channel, Location
from saumaton.reports.journal import (
    COMPANY,
    MAX_JOURNAL_DAYS,
    Journal,
    build_journal,
    journal_period,
    to_csv,
    vat_percent,
)
from saumaton.web.auth import reports_db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_router, render, settings_of

router = page_router("/backoffice")
PERMISSION = "reports.read"

# What each journal line is called on the page (the CSV keeps the keys).
LABELS: dict[str, str] = {
    "sales.goods": N_("Sales of goods"),
    "sales.delivery": N_("Delivery fees"),
    "returns.goods": N_("Returns of goods"),
    "returns.delivery": N_("Delivery fees given back"),
    "gift_cards.sold": N_("Gift cards sold (liability, no VAT)"),
    "rounding.sales": N_("Cash rounding on sales"),
    "rounding.refunds": N_("Cash rounding on refunds"),
    "clearing.payments_not_sales_of_day": N_(
        "Paid today for another day's sale or for an order that is not a sale"),
    "clearing.sales_paid_other_day": N_("Today's sales paid on another day"),
    "clearing.refunds_not_returns_of_day": N_(
        "Refunded today for another day's return or a cancelled order"),
    "clearing.returns_refunded_other_day": N_("Today's returns refunded on another day"),
    "payments.cash": N_("Cash received (rounding included)"),
    "payments.card": N_("Card"),
    "payments.card_to_confirm": N_("Card taken offline, still to confirm"),
    "payments.paytrail": N_("Paytrail"),
    "payments.gift_card": N_("Gift cards spent"),
    "payments.store_credit": N_("Store credit spent"),
    "payments.points": N_("Loyalty points spent"),
    "payments.exchange": N_("Goods exchanged"),
    "refunds.cash": N_("Cash paid out (rounding included)"),
    "refunds.card": N_("Card refunds"),
    "refunds.paytrail": N_("Paytrail refunds"),
    "refunds.gift_card": N_("Back onto gift cards"),
    "refunds.store_credit": N_("Store credit issued"),
    "refunds.bank_transfer": N_("Bank transfers"),
    "refunds.exchange": N_("Into an exchange"),
    "refunds.points": N_("Given back as loyalty points"),
    "check.money": N_("Money in and out"),
    "check.movements": N_("Revenue and liability movements"),
    "check.difference": N_("Difference (should be 0)"),
    "liability.gift_card.opening": N_("Gift cards: held at the start of the day"),
    "liability.gift_card.issue": N_("Gift cards: issued"),
    "liability.gift_card.credit": N_("Gift cards: credited"),
    "liability.gift_card.refund": N_("Gift cards: refunded onto cards"),
    "liability.gift_card.spend": N_("Gift cards: spent"),
    "liability.gift_card.expire": N_("Gift cards: expired"),
    "liability.gift_card.void": N_("Gift cards: closed"),
    "liability.gift_card.closing": N_("Gift cards: held at the end of the day"),
    "liability.store_credit.opening": N_("Store credit: held at the start of the day"),
    "liability.store_credit.issue": N_("Store credit: opened"),
    "liability.store_credit.credit": N_("Store credit: credited"),
    "liability.store_credit.refund": N_("Store credit: refunded onto it"),
    "liability.store_credit.spend": N_("Store credit: spent"),
    "liability.store_credit.expire": N_("Store credit: expired"),
    "liability.store_credit.void": N_("Store credit: closed"),
    "liability.store_credit.closing": N_("Store credit: held at the end of the day"),
}
SECTION_TITLES: dict[str, str] = {
    "sales": N_("Sales by VAT rate"), "returns": N_("Returns by VAT rate"),
    "gift_cards": N_("Gift cards sold"), "rounding": N_("Cash rounding"),
    "clearing": N_("Clearing (other days)"), "payments": N_("Payments received"),
    "refunds": N_("Refunds paid"),
    "check": N_("Balance check"), "liability": N_("Gift card and store credit liability"),
}
MESSAGES = {
    "invalid_date": N_("Write the date as YYYY-MM-DD, e.g. 2026-03-10."),
    "invalid_period": N_("The last day is before the first."),
    "period_too_long": N_("A journal covers at most %(days)s days."),
    "unknown_location": N_("Choose a location from the list."),
}


def _store_ids(actor: Actor) -> set[int] | None:
    """None: every location (owner, finance); else the stores the actor may read."""
    if actor.can(PERMISSION, everywhere=True):
        return None
    return {loc for loc in actor.location_ids if loc is not None and actor.can(PERMISSION, loc)}


async def _choices(request: Request, store_ids: set[int] | None) -> list[tuple[str, str]]:
    async with reports_db_of(request).reader() as s:
        stores = (await s.execute(select(Location.id, Location.code, Location.name)
                                  .where(Location.kind == "store").order_by(Location.name))).all()
        channels = [] if store_ids is not None else (await s.execute(
            select(Channel.code, Channel.name).where(Channel.kind != "pos")
            .order_by(Channel.name))).all()
    out = [(str(code), str(name)) for lid, code, name in stores
           if store_ids is None or lid in store_ids]
    out += [(str(code), str(name)) for code, name in channels]
    if store_ids is None:
        out.append((COMPANY, gettext(request, N_("Gift cards and store credit"))))
    return out


def _parse(text: str, field: str, errors: dict[str, str], request: Request) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors[field] = gettext(request, MESSAGES["invalid_date"])
        return None


@router.get("/journal")
async def journal_page(
        request: Request, actor: Annotated[Actor, requires(PERMISSION)],
        day: Annotated[str, Query(alias="date", max_length=20)] = "",
        until: Annotated[str, Query(max_length=20)] = "",
        location: Annotated[str, Query(max_length=40)] = "",
        format: Annotated[str, Query(max_length=8)] = "") -> Response:
    settings = settings_of(request)
    today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
    store_ids = _store_ids(actor)
    choices = await _choices(request, store_ids)
    errors: dict[str, str] = {}
    first = _parse(day, "date", errors, request) if day else today
    last = _parse(until, "until", errors, request) if until else first
    if location and location not in {code for code, _ in choices}:
        errors["location"] = gettext(request, MESSAGES["unknown_location"])
    journal: Journal | None = None
    if first is not None and last is not None and not errors:
        try:
            period = journal_period(first, last)
        except ValidationFailed as e:
            errors[e.field or "until"] = gettext(request, MESSAGES.get(e.code, e.detail),
                                                 days=str(MAX_JOURNAL_DAYS))
        else:
            async with reports_db_of(request).reader() as s:
                journal = await build_journal(
                    s, period, settings.timezone,
                    locations={location} if location else None, store_ids=store_ids)
    values = {"date": day or (first.isoformat() if first else ""), "until": until,
              "location": location}
    if journal is not None and format == "csv":
        name = f"journal-{journal.period.first.isoformat()}"
        if journal.period.last != journal.period.first:
            name += f"--{journal.period.last.isoformat()}"
        if location:
            name += f"-{'company' if location == COMPANY else location}"
        return Response(to_csv(journal).encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    blocks = []
    if journal is not None:
        for d in journal.days():
            for loc, loc_name in journal.locations(d):
                blocks.append({"day": d, "location": loc, "name": loc_name,
                               "lines": journal.block(d, loc)})
    csv_query = urlencode([(k, v) for k, v in (("date", values["date"]), ("until", until),
                                               ("location", location), ("format", "csv")) if v])
    return render(request, "backoffice/journal.html", {
        "title": gettext(request, N_("Daily journal")), "nav_key": "journal",
        "values": values, "errors": errors, "choices": choices, "blocks": blocks,
        "labels": LABELS, "sections": SECTION_TITLES, "vat_percent": vat_percent,
        "company": COMPANY, "csv_href": f"/backoffice/journal?{csv_query}"},
        status=400 if errors else 200)
