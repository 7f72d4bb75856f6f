"""Prices and campaigns in the back office: change prices now or at a set time (in the
shop's time zone), cancel a scheduled change, read a variant's price history; list,
create, edit and end campaigns of every kind; the price-parity page.

Thin: the rules are in `pricing.changes`, `pricing.campaigns`, `pricing.services` and
`pricing.parity`. Forms check every field at once and answer 422 with each error next
to its field; nothing is changed then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from saumaton.catalogue.models import Category, Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_INT32
from saumaton.customers.segments import list_segments
from saumaton.i18n import money, rate
from saumaton.pricing import campaigns as campaign_svc
from saumaton.pricing import changes
from saumaton.pricing.changes import PriceChangeIn
from saumaton.pricing.parity import (
    BundleDifference,
    ChannelInfo,
    price_parity,
    selling_channels,
)
from saumaton.pricing.services import TIERS, CampaignIn, create_campaign
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_, parse_money
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_lang,
    page_router,
    render,
    settings_of,
)

router = page_router()
PRICES, CAMPAIGNS, PARITY = "/backoffice/prices", "/backoffice/campaigns", \
    "/backoffice/price-parity"
Id = Annotated[int, Path(ge=1, le=MAX_INT32)]
MAX_EUROS_CENTS = 100_000_000
KINDS = ("percent", "fixed", "x_for_y", "buy_x_get_y", "set_price")
KIND_LABELS = {
    "percent": N_("Percent off each unit"),
    "fixed": N_("Amount off each unit"),
    "x_for_y": N_("X for Y (e.g. 3 for 2)"),
    "buy_x_get_y": N_("Buy X, get Y free or at a discount"),
    "set_price": N_("A fixed price for a set"),
}
TIER_LABELS = {"member": N_("Members"), "silver": N_("Silver members and up"),
               "gold": N_("Gold members")}
STATE_LABELS = {"running": N_("Running"), "scheduled": N_("Scheduled"), "ended": N_("Ended")}
MESSAGES = {
    "unknown_variant": N_("There is no such product."),
    "variant_not_found": N_("There is no such product."),
    "price_change_not_found": N_("There is no such price change."),
    "price_change_not_scheduled": N_("This change is no longer scheduled."),
    "campaign_not_found": N_("There is no such campaign."),
    "unknown_channel": N_("There is no such channel."),
    "invalid_price": N_("Give a price between 0 and 1 000 000 €."),
    "campaign_ended": N_("This campaign has ended and can no longer be changed. Create a "
                         "new one."),
}


# --- time in the shop's time zone -----------------------------------------------------------

def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(settings_of(request).timezone)


def local_moment(request: Request, day: str, clock: str) -> datetime | None:
    """A date (YYYY-MM-DD) and time (HH:MM or HH:MM:SS) in the shop's time zone, in UTC;
    None when either does not parse."""
    try:
        d = datetime.strptime(day.strip(), "%Y-%m-%d").date()
        parts = [int(p) for p in clock.strip().split(":")] if clock.strip() else []
        if len(parts) not in (2, 3):
            return None
        t = time(parts[0], parts[1], parts[2] if len(parts) == 3 else 0)
        return datetime.combine(d, t, tzinfo=_zone(request)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def local_parts(request: Request, at: datetime | None) -> tuple[str, str]:
    if at is None:
        return "", ""
    local = at.astimezone(_zone(request))
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S" if local.second else "%H:%M")


def _codes(text: str) -> list[str]:
    return [c for c in re.split(r"[\s,;]+", text) if c][:5000]


def _ids(values: list[Any]) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, str) and v.isdigit() and 0 < int(v) <= MAX_INT32:
            out.append(int(v))
    return out


def _t(request: Request, message: str, **values: Any) -> str:
    return gettext(request, message, **values)


# --- price changes ------------------------------------------------------------------------

async def _prices_page(request: Request, actor: Actor, *, q: str = "",
                       picked: list[int] | None = None, errors: dict[str, str] | None = None,
                       values: dict[str, Any] | None = None, notice: str = "",
                       status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        found = await changes.search_variants(s, q) if q.strip() else []
        chosen = await changes.variant_picks(s, picked or [])
        scheduled = await changes.list_changes(s, status=changes.SCHEDULED, limit=300)
        recent = await changes.list_changes(s, status=changes.APPLIED, limit=30)
    chosen_ids = {v.id for v in chosen}
    return render(request, "backoffice/prices.html", {
        "title": _t(request, N_("Price changes")), "nav_key": "prices", "q": q,
        "found": [v for v in found if v.id not in chosen_ids], "chosen": chosen,
        "scheduled": scheduled, "recent": recent, "errors": errors or {},
        "values": values or {}, "notice": notice, "base": PRICES,
        "may_write": actor.can("prices.write", everywhere=True),
        "timezone": settings_of(request).timezone}, status=status)


@router.get("/backoffice/prices")
async def prices(request: Request, actor: Annotated[Actor, requires("prices.read")],
                 q: Annotated[str, Query(max_length=200)] = "",
                 variant_id: Annotated[list[int] | None, Query(max_length=500)] = None,
                 done: Annotated[str, Query(max_length=16)] = "") -> Response:
    notice = {"changed": _t(request, N_("The new price is in force in every channel.")),
              "scheduled": _t(request, N_("The price change is scheduled.")),
              "cancelled": _t(request, N_("The scheduled change is cancelled."))}.get(done, "")
    picked = [i for i in (variant_id or []) if 0 < i <= MAX_INT32]
    return await _prices_page(request, actor, q=q, picked=picked, notice=notice)


@router.post("/backoffice/prices")
async def change_prices(request: Request,
                        actor: Annotated[Actor, requires("prices.write", everywhere=True)]
                        ) -> Response:
    form = await checked_form(request)
    codes_text = str(form.get("codes", ""))[:100_000]
    picked = _ids(form.getlist("variant_id"))
    whole = form.get("whole_product") == "1"
    raw_price, when = str(form.get("price", "")), str(form.get("when", "now"))
    day, clock, note = str(form.get("date", "")), str(form.get("time", "")), \
        str(form.get("note", "")).strip()
    values = {"codes": codes_text, "price": raw_price, "when": when, "date": day,
              "time": clock, "note": note, "whole_product": whole}
    errors: dict[str, str] = {}
    async with db_of(request).reader() as s:
        found, missing = await changes.find_by_codes(s, _codes(codes_text),
                                                     whole_product=whole)
        if whole and picked:
            more = await s.scalars(select(Variant.id).where(Variant.product_id.in_(
                select(Variant.product_id).where(Variant.id.in_(picked)))))
            picked += list(more.all())
    ids = list(dict.fromkeys([*picked, *(v.id for v in found)]))
    if missing:
        errors["codes"] = _t(request, N_("No product has the code %(codes)s."),
                             codes=", ".join(missing[:10]))
    elif not ids:
        errors["codes"] = _t(request, N_("Choose at least one variant: search, or type or "
                                         "scan SKUs or EANs."))
    try:
        cents = parse_money(raw_price)
    except ValueError:
        cents = None
    if cents is None or not 0 <= cents <= MAX_EUROS_CENTS:
        errors["price"] = _t(request, MESSAGES["invalid_price"])
    effective_at = None
    if when == "later":
        effective_at = local_moment(request, day, clock)
        if effective_at is None:
            errors["when"] = _t(request, N_("Give the date and time of the change."))
        elif effective_at <= utcnow():
            errors["when"] = _t(request, N_("This time has passed: choose a later time or "
                                            "“now”."))
    if len(note) > 200:
        errors["note"] = _t(request, N_("Use at most 200 characters."))
    if errors or cents is None:
        return await _prices_page(request, actor, picked=ids, errors=errors, values=values,
                                  status=422)
    try:
        async with db_of(request).uow() as uow:
            await changes.change_prices(uow, actor, PriceChangeIn(
                variant_ids=ids, price_cents=cents, effective_at=effective_at, note=note))
            await uow.commit()
    except DomainError as exc:
        return await _prices_page(request, actor, picked=ids, values=values, status=exc.status,
                                  errors={"codes": error_message(request, exc, MESSAGES)})
    done = "scheduled" if effective_at else "changed"
    return RedirectResponse(f"{PRICES}?done={done}", status_code=303)


@router.post("/backoffice/prices/changes/{change_id}/cancel")
async def cancel_change(request: Request, change_id: Id,
                        actor: Annotated[Actor, requires("prices.write", everywhere=True)]
                        ) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await changes.cancel_change(uow, actor, change_id)
            await uow.commit()
    except DomainError as exc:
        return error_page(request, exc.status, error_message(request, exc, MESSAGES))
    return RedirectResponse(f"{PRICES}?done=cancelled", status_code=303)


@router.get("/backoffice/prices/variants/{variant_id}")
async def price_history(request: Request, variant_id: Id,
                        actor: Annotated[Actor, requires("prices.read")]) -> Response:
    async with db_of(request).reader() as s:
        picks = await changes.variant_picks(s, [variant_id])
        if not picks:
            return error_page(request, 404, _t(request, MESSAGES["variant_not_found"]))
        history = await changes.price_history(s, variant_id)
    return render(request, "backoffice/price_history.html", {
        "title": _t(request, N_("Price history: %(name)s"), name=picks[0].name),
        "nav_key": "prices", "variant": picks[0], "history": history, "base": PRICES,
        "may_write": actor.can("prices.write", everywhere=True)})


# --- campaigns ----------------------------------------------------------------------------

def describe(request: Request,
             c: campaign_svc.CampaignOut | CampaignIn | BundleDifference) -> str:
    """'20 % off', '3 for 2', 'buy 2 get 1 free', '3 for 10,00 €' in the page's language."""
    lang = page_lang(request)
    if c.kind == "percent":
        return _t(request, N_("%(rate)s %% off"), rate=rate(c.value, lang))
    if c.kind == "fixed":
        return _t(request, N_("%(amount)s off each"), amount=money(c.value, lang))
    if c.kind == "x_for_y":
        return _t(request, N_("%(buy)s for %(pay)s"), buy=c.buy_quantity, pay=c.pay_quantity)
    if c.kind == "buy_x_get_y":
        if c.value >= 10000:
            return _t(request, N_("buy %(buy)s, get %(get)s free"), buy=c.buy_quantity,
                      get=c.get_quantity)
        return _t(request, N_("buy %(buy)s, get %(get)s at %(rate)s %% off"),
                  buy=c.buy_quantity, get=c.get_quantity, rate=rate(c.value, lang))
    return _t(request, N_("%(buy)s for %(amount)s"), buy=c.buy_quantity,
              amount=money(c.value, lang))


def channel_label(request: Request, ch: ChannelInfo) -> str:
    if ch.kind == "webshop":
        return _t(request, N_("Webshop"))
    if ch.kind == "pos":
        return _t(request, N_("Till: %(store)s"), store=ch.location_name or ch.name)
    if ch.kind == "service_desk":
        return _t(request, N_("Service desk"))
    if ch.kind == "api":
        return _t(request, N_("API"))
    return ch.name


def limits_text(request: Request, codes: tuple[str, ...] | list[str],
                labels: dict[str, str]) -> str:
    if not codes:
        return _t(request, N_("every channel"))
    return _t(request, N_("only: %(channels)s"),
              channels=", ".join(labels.get(c, c) for c in codes))


@router.get("/backoffice/campaigns")
async def campaigns(request: Request, actor: Annotated[Actor, requires("prices.read")],
                    state: Annotated[str, Query(max_length=16)] = "",
                    q: Annotated[str, Query(max_length=200)] = "",
                    kind: Annotated[str, Query(max_length=16)] = "",
                    done: Annotated[str, Query(max_length=16)] = "") -> Response:
    state = state if state in campaign_svc.STATES else ""
    kind = kind if kind in KINDS else ""
    async with db_of(request).reader() as s:
        found = await campaign_svc.list_campaigns(s, state=state or None, q=q.strip(),
                                                  kind=kind or None)
        channels = await selling_channels(s)
    labels = {ch.code: channel_label(request, ch) for ch in channels}
    notice = {"created": _t(request, N_("The campaign is saved.")),
              "saved": _t(request, N_("The campaign is saved.")),
              "ended": _t(request, N_("The campaign has ended in every channel."))
              }.get(done, "")
    return render(request, "backoffice/campaigns.html", {
        "title": _t(request, N_("Campaigns")), "nav_key": "campaigns", "found": found,
        "state": state, "q": q, "kind": kind, "kinds": KINDS, "kind_labels": KIND_LABELS,
        "state_labels": STATE_LABELS, "tier_labels": TIER_LABELS, "notice": notice,
        "describe": lambda c: describe(request, c),
        "limits": lambda c: limits_text(request, c.channels, labels),
        "may_write": actor.can("prices.write", everywhere=True), "base": CAMPAIGNS})


@dataclass
class CampaignForm:
    values: dict[str, Any]
    errors: dict[str, str]
    data: CampaignIn | None = None


_MODEL_ERRORS = (  # CampaignIn's own checks, by what they say, to the form's fields
    ("at most 10000 basis points", "percent"), ("value must be greater", "value"),
    ("x_for_y needs", "buy_quantity"), ("buy_x_get_y needs", "buy_quantity"),
    ("set_price needs", "buy_quantity"), ("UTC offset", "starts_at"),
    ("time out of range", "starts_at"), ("ends_at must be after", "ends_at"),
    ("at least one variant", "targets"),
)


def _quantity(raw: str, low: int = 1) -> int | None:
    raw = raw.strip()
    if not raw.isdigit() or not low <= int(raw) <= 100:
        return None
    return int(raw)


async def read_campaign_form(request: Request, form: FormData) -> CampaignForm:
    """Every field checked at once; `data` only when all are right."""
    def get(name: str, limit: int = 200) -> str:
        value = form.get(name, "")
        return str(value)[:limit * 50] if isinstance(value, str) else ""

    v: dict[str, Any] = {
        "name": get("name").strip(), "kind": get("kind"), "percent": get("percent"),
        "amount": get("amount"), "buy_quantity": get("buy_quantity"),
        "pay_quantity": get("pay_quantity"), "get_quantity": get("get_quantity"),
        "variant_codes": get("variant_codes", 2000), "product_codes": get("product_codes", 2000),
        "category_ids": [str(x) for x in form.getlist("category_id")],
        "channels": [str(x) for x in form.getlist("channel")], "min_tier": get("min_tier"),
        "segment_id": get("segment_id", 1),
        "start_date": get("start_date"), "start_time": get("start_time"),
        "end_date": get("end_date"), "end_time": get("end_time")}
    e: dict[str, str] = {}
    if not v["name"]:
        e["name"] = _t(request, N_("Give the campaign a name."))
    elif len(v["name"]) > 200:
        e["name"] = _t(request, N_("Use at most 200 characters."))
    kind = v["kind"]
    if kind not in KINDS:
        e["kind"] = _t(request, N_("Choose the kind of campaign."))
    value = 0
    buy = pay = get_q = None
    if kind in ("percent", "buy_x_get_y"):
        try:
            bp = parse_money(v["percent"])
        except ValueError:
            bp = -1
        if bp is None and kind == "buy_x_get_y":
            bp = 10000  # "get one free"
        if bp is None or not 1 <= bp <= 10000:
            e["percent"] = _t(request, N_("Give a percentage between 0,01 and 100."))
        else:
            value = bp
    if kind in ("fixed", "set_price"):
        try:
            cents = parse_money(v["amount"])
        except ValueError:
            cents = None
        if cents is None or not 1 <= cents <= MAX_EUROS_CENTS:
            e["amount"] = _t(request, N_("Give an amount between 0,01 and 1 000 000 €."))
        else:
            value = cents
    if kind in ("x_for_y", "buy_x_get_y", "set_price"):
        buy = _quantity(v["buy_quantity"], 2 if kind != "buy_x_get_y" else 1)
        if buy is None:
            e["buy_quantity"] = _t(request, N_("Give how many units make the set (%(low)s–100)."),
                                   low=2 if kind != "buy_x_get_y" else 1)
    if kind == "x_for_y":
        pay = _quantity(v["pay_quantity"])
        if pay is None or (buy is not None and pay >= buy):
            e["pay_quantity"] = _t(request, N_("Give how many of them are paid for: at least "
                                               "1 and fewer than in the set."))
    if kind == "buy_x_get_y":
        get_q = _quantity(v["get_quantity"])
        if get_q is None:
            e["get_quantity"] = _t(request, N_("Give how many units the customer gets "
                                               "(1–100)."))
    starts_at = local_moment(request, v["start_date"], v["start_time"] or "00:00")
    if starts_at is None:
        e["starts_at"] = _t(request, N_("Give the start date and time."))
    ends_at = None
    if v["end_date"].strip() or v["end_time"].strip():
        ends_at = local_moment(request, v["end_date"], v["end_time"] or "00:00")
        if ends_at is None:
            e["ends_at"] = _t(request, N_("Check the end date and time."))
        elif starts_at is not None and ends_at <= starts_at:
            e["ends_at"] = _t(request, N_("The end must be after the start."))
    tier = v["min_tier"] or None
    if tier is not None and tier not in TIERS:
        e["min_tier"] = _t(request, N_("Choose a tier."))
    async with db_of(request).reader() as s:
        variants, missing_v = await changes.find_by_codes(s, _codes(v["variant_codes"]))
        product_codes = _codes(v["product_codes"])
        products, missing_p = await changes.find_by_codes(s, product_codes)
        category_ids = _ids(v["category_ids"])
        known_categories = set((await s.scalars(select(Category.id).where(
            Category.id.in_(category_ids)))).all()) if category_ids else set()
        channel_codes = {ch.code for ch in await selling_channels(s)}
        known_segments = {seg.id for seg in await list_segments(s)}
    if missing_v:
        e["variant_codes"] = _t(request, N_("No product has the code %(codes)s."),
                                codes=", ".join(missing_v[:10]))
    if missing_p:
        e["product_codes"] = _t(request, N_("No product has the code %(codes)s."),
                                codes=", ".join(missing_p[:10]))
    if set(category_ids) - known_categories:
        e["category_ids"] = _t(request, N_("There is no such category."))
    product_ids = sorted({p.product_id for p in products})
    if not (variants or product_ids or category_ids) and "variant_codes" not in e \
            and "product_codes" not in e:
        e["targets"] = _t(request, N_("Choose what the campaign is on: variants, products or "
                                      "categories."))
    segment_id = int(v["segment_id"]) if v["segment_id"].isdigit() else None
    if v["segment_id"] and segment_id not in known_segments:
        e["segment_id"] = _t(request, N_("There is no such segment."))
    elif segment_id is not None and tier is not None:
        e["segment_id"] = _t(request, N_("A campaign is for a loyalty tier or for a segment, "
                                         "not both."))
    elif segment_id is not None and kind not in ("percent", "fixed"):
        e["segment_id"] = _t(request, N_("A segment price is a percent or an amount off "
                                         "each unit."))
    chosen_channels = [c for c in v["channels"] if c in channel_codes]
    if len(chosen_channels) != len(v["channels"]):
        e["channels"] = _t(request, MESSAGES["unknown_channel"])
    if e or starts_at is None:
        return CampaignForm(v, e)
    try:
        data = CampaignIn(
            name=v["name"], kind=kind, value=value, buy_quantity=buy, pay_quantity=pay,
            get_quantity=get_q, starts_at=starts_at, ends_at=ends_at,
            variant_ids=[x.id for x in variants], product_ids=product_ids,
            category_ids=category_ids, channel_codes=chosen_channels, min_tier=tier,
            segment_id=segment_id)
    except ValidationError as exc:
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else ""
            field = loc or next((f for text, f in _MODEL_ERRORS if text in err["msg"]), "form")
            if field == "value":
                field = "amount" if kind in ("fixed", "set_price") else "percent"
            e.setdefault(field, str(err["msg"]).removeprefix("Value error, "))
        return CampaignForm(v, e)
    return CampaignForm(v, e, data)


async def _campaign_form(request: Request, actor: Actor, *, campaign_id: int | None,
                         values: dict[str, Any], errors: dict[str, str] | None = None,
                         status: int = 200, info: campaign_svc.CampaignOut | None = None
                         ) -> Response:
    async with db_of(request).reader() as s:
        channels = await selling_channels(s)
        categories = (await s.execute(select(Category.id, Category.name)
                                      .order_by(Category.name, Category.id))).all()
        segments = [(seg.id, seg.name) for seg in await list_segments(s)]
    title = _t(request, N_("Edit campaign")) if campaign_id else _t(request, N_("New campaign"))
    return render(request, "backoffice/campaign_form.html", {
        "title": title, "nav_key": "campaigns", "values": values, "errors": errors or {},
        "campaign_id": campaign_id, "info": info, "kinds": KINDS, "kind_labels": KIND_LABELS,
        "tier_labels": TIER_LABELS, "tiers": TIERS, "state_labels": STATE_LABELS,
        "channels": [(ch.code, channel_label(request, ch)) for ch in channels],
        "categories": categories, "segments": segments, "base": CAMPAIGNS,
        "action": f"{CAMPAIGNS}/{campaign_id}" if campaign_id else CAMPAIGNS,
        "may_write": actor.can("prices.write", everywhere=True)
        and (info is None or info.active),
        "ended_note": _t(request, MESSAGES["campaign_ended"])
        if info is not None and not info.active else "",
        "timezone": settings_of(request).timezone}, status=status)


@router.get("/backoffice/campaigns/new")
async def new_campaign(request: Request,
                       actor: Annotated[Actor, requires("prices.write", everywhere=True)]
                       ) -> Response:
    day, clock = local_parts(request, utcnow().replace(second=0, microsecond=0)
                             + timedelta(minutes=1))
    return await _campaign_form(request, actor, campaign_id=None, values={
        "kind": "percent", "start_date": day, "start_time": clock, "channels": [],
        "category_ids": []})


@router.post("/backoffice/campaigns")
async def create(request: Request,
                 actor: Annotated[Actor, requires("prices.write", everywhere=True)]
                 ) -> Response:
    form = await read_campaign_form(request, await checked_form(request))
    if form.data is None:
        return await _campaign_form(request, actor, campaign_id=None, values=form.values,
                                    errors=form.errors, status=422)
    try:
        async with db_of(request).uow() as uow:
            await create_campaign(uow, actor, form.data)
            await uow.commit()
    except DomainError as exc:
        return await _campaign_form(request, actor, campaign_id=None, values=form.values,
                                    errors={exc.field or "form": error_message(
                                        request, exc, MESSAGES)}, status=exc.status)
    return RedirectResponse(f"{CAMPAIGNS}?done=created", status_code=303)


async def _values_of(request: Request, c: campaign_svc.CampaignOut) -> dict[str, Any]:
    lang = page_lang(request)
    async with db_of(request).reader() as s:
        skus = (await s.scalars(select(Variant.sku).where(
            Variant.id.in_(c.ids("variant"))).order_by(Variant.sku))).all() \
            if c.ids("variant") else []
        slugs = (await s.scalars(select(Product.slug).where(
            Product.id.in_(c.ids("product"))).order_by(Product.slug))).all() \
            if c.ids("product") else []
    start_day, start_clock = local_parts(request, c.starts_at)
    end_day, end_clock = local_parts(request, c.ends_at)
    return {
        "name": c.name, "kind": c.kind,
        "percent": rate(c.value, lang) if c.kind in ("percent", "buy_x_get_y") else "",
        "amount": f"{c.value / 100:.2f}".replace(".", "," if lang == "fi" else ".")
        if c.kind in ("fixed", "set_price") else "",
        "buy_quantity": str(c.buy_quantity or ""), "pay_quantity": str(c.pay_quantity or ""),
        "get_quantity": str(c.get_quantity or ""), "variant_codes": "\n".join(skus),
        "product_codes": "\n".join(slugs),
        "category_ids": [str(i) for i in c.ids("category")], "channels": list(c.channels),
        "min_tier": c.min_tier or "", "segment_id": str(c.segment_id or ""),
        "start_date": start_day, "start_time": start_clock,
        "end_date": end_day, "end_time": end_clock}


@router.get("/backoffice/campaigns/{campaign_id}")
async def edit_campaign(request: Request, campaign_id: Id,
                        actor: Annotated[Actor, requires("prices.read")]) -> Response:
    try:
        async with db_of(request).reader() as s:
            info = await campaign_svc.get_campaign(s, campaign_id)
    except DomainError:
        return error_page(request, 404, _t(request, MESSAGES["campaign_not_found"]))
    return await _campaign_form(request, actor, campaign_id=campaign_id, info=info,
                                values=await _values_of(request, info))


@router.post("/backoffice/campaigns/{campaign_id}")
async def update(request: Request, campaign_id: Id,
                 actor: Annotated[Actor, requires("prices.write", everywhere=True)]
                 ) -> Response:
    form = await read_campaign_form(request, await checked_form(request))
    async with db_of(request).reader() as s:
        try:
            info = await campaign_svc.get_campaign(s, campaign_id)
        except DomainError:
            return error_page(request, 404, _t(request, MESSAGES["campaign_not_found"]))
    if form.data is None:
        return await _campaign_form(request, actor, campaign_id=campaign_id, info=info,
                                    values=form.values, errors=form.errors, status=422)
    try:
        async with db_of(request).uow() as uow:
            await campaign_svc.update_campaign(uow, actor, campaign_id, form.data)
            await uow.commit()
    except DomainError as exc:
        return await _campaign_form(request, actor, campaign_id=campaign_id, info=info,
                                    values=form.values, status=exc.status,
                                    errors={exc.field or "form": error_message(
                                        request, exc, MESSAGES)})
    return RedirectResponse(f"{CAMPAIGNS}?done=saved", status_code=303)


@router.post("/backoffice/campaigns/{campaign_id}/end")
async def end_campaign(request: Request, campaign_id: Id,
                       actor: Annotated[Actor, requires("prices.write", everywhere=True)]
                       ) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await campaign_svc.end_now(uow, actor, campaign_id)
            await uow.commit()
    except DomainError as exc:
        return error_page(request, exc.status, error_message(request, exc, MESSAGES))
    return RedirectResponse(f"{CAMPAIGNS}?done=ended", status_code=303)


# --- price parity -------------------------------------------------------------------------

@router.get("/backoffice/price-parity")
async def parity(request: Request, actor: Annotated[Actor, requires("prices.read")],
                 date: Annotated[str, Query(max_length=10)] = "",
                 time: Annotated[str, Query(max_length=8)] = "",
                 tier: Annotated[str, Query(max_length=16)] = "",
                 all: Annotated[str, Query(max_length=1)] = "") -> Response:
    now = utcnow()
    errors: dict[str, str] = {}
    at = now
    if date or time:
        parsed = local_moment(request, date, time or "00:00")
        if parsed is None:
            errors["at"] = _t(request, N_("Check the date and time."))
        else:
            at = parsed
    chosen_tier = tier if tier in TIERS else None
    async with db_of(request).reader() as s:
        report = await price_parity(s, at, tier=chosen_tier, now=now, include_all=all == "1")
    labels = {ch.code: channel_label(request, ch) for ch in report.channels}
    day, clock = local_parts(request, at.replace(microsecond=0))
    return render(request, "backoffice/price_parity.html", {
        "title": _t(request, N_("Price parity")), "nav_key": "price-parity",
        "report": report, "labels": labels, "errors": errors,
        "values": {"date": date or day, "time": time or clock, "tier": tier or "",
                   "all": all == "1"},
        "tier_labels": TIER_LABELS, "tiers": TIERS, "kind_labels": KIND_LABELS,
        "describe": lambda c: describe(request, c),
        "limits": lambda codes: limits_text(request, codes, labels),
        "timezone": settings_of(request).timezone,
        "all_url": f"{PARITY}?" + urlencode({"date": day, "time": clock, "tier": tier,
                                             "all": "1"})},
        status=422 if errors else 200)
