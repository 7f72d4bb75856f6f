"""Reserve to try in a store, from the product page: choose a store that has the
variant, give a name and a phone number or an e-mail address (or be signed in), get a
code. Routes only translate HTTP to `tryon.services` (docs/reserve-to-try.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from saumaton.catalogue.cached import product_by_slug
from saumaton.checkout.pickup import customer_contact
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, NotFound
from saumaton.core.types import MAX_ID
from saumaton.i18n import localized
from saumaton.locations.models import Location
from saumaton.tryon import services as tryon
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    page_lang,
    page_router,
    render,
    settings_of,
)
from saumaton.web.route_access import public
from saumaton.web.shop import views
from saumaton.web.shopper import current_customer_id

router = page_router("/shop", dependencies=[public(
    "reserve to try: any shopper may hold a unit at a store without an account")])
VariantQ = Annotated[int | None, Query(ge=1, le=MAX_ID)]

# The page's words for the service's codes (the service's own are its msgids).
MESSAGES = {
    "try_unavailable": N_("Sorry, that store has no unit free any more: it was just sold "
                          "or reserved. Choose another store."),
    "try_limit": N_("You already hold %(limit)s reservations to try. Try or release one "
                    "of them first."),
}


async def _form(request: Request, slug: str, variant: int | None, *,
                values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                status: int = 200) -> HTMLResponse:
    db = db_of(request)
    customer_id = current_customer_id(request)
    async with db.reader() as s:
        product = await product_by_slug(db, s, slug)
        current = views.choose_variant(product, variant, strict=False)
        stores = await tryon.store_choices(s, current.id)
        name, email = await customer_contact(s, customer_id)
    lang = page_lang(request)
    vals = {"name": name, "email": email, "phone": "", "store": "", **(values or {})}
    return render(request, "shop/try.html", {
        "title": gettext(request, N_("Reserve to try in a store")),
        "product": product, "product_name": localized(product, "name", lang),
        "variant": current, "stores": stores, "values": vals, "errors": errors or {},
        "signed_in": customer_id is not None}, status=status)


@router.get("/p/{slug}/try")
async def try_form(request: Request, slug: str, variant: VariantQ = None) -> Response:
    return await _form(request, slug, variant)


@router.post("/p/{slug}/try")
async def try_reserve(request: Request, slug: str, variant: VariantQ = None) -> Response:
    """Hold a unit; every bad field answered at once (422), a unit gone meanwhile or the
    shopper's limit reached: 409 with the reason by the field; nothing changed."""
    form = await checked_form(request)
    values = {k: str(form.get(k) or "").strip()[:320] for k in ("store", "name", "phone",
                                                                  "email")}
    db = db_of(request)
    async with db.reader() as s:
        product = await product_by_slug(db, s, slug)
        current = views.choose_variant(product, variant, strict=False)
        store_id = None
        if values["store"].isdigit():
            loc = await s.get(Location, int(values["store"]))
            store_id = loc.id if loc is not None else None
    errors: dict[str, str] = {}
    try:
        async with db.uow() as uow:
            out = await tryon.reserve(uow, _shopper(current_customer_id(request)), tryon.TryIn(
                current.id, store_id or 0, name=values["name"], phone=values["phone"],
                email=values["email"], customer_id=current_customer_id(request),
                language=page_lang(request)), settings=settings_of(request))
            await uow.commit()
    except tryon.TryInputInvalid as exc:
        for e in exc.errors:
            errors.setdefault("store" if e.field == "location_id" else e.field,
                              gettext(request, e.message))
        return await _form(request, slug, current.id, values=values, errors=errors,
                           status=exc.status)
    except DomainError as exc:
        text = MESSAGES.get(exc.code)
        msg = (gettext(request, text, **{k: v for k, v in exc.extra.items()
                                         if k == "limit"})
               if text else error_message(request, exc))
        return await _form(request, slug, current.id, values=values,
                           errors={"store": msg}, status=exc.status)
    return RedirectResponse(f"/shop/try/{out.code}", status_code=303)


@router.get("/try/{try_code}")
async def try_done(request: Request,
                   try_code: Annotated[str, Path(max_length=16)]) -> Response:
    """The code to show at the till, the store and until when the unit waits."""
    db = db_of(request)
    async with db.reader() as s:
        r = await tryon.get_by_code(s, try_code)
        if r is None:
            raise NotFound("no such reservation to try", code="try_not_found")
        loc = await s.get(Location, r.location_id)
        store = loc.name if loc is not None else ""
        names = await tryon.variant_names(s, [r.variant_id])
    ctx: dict[str, Any] = {"title": gettext(request, N_("Reserved to try")), "r": r,
                           "store": store, "product": names.get(r.variant_id)}
    response = render(request, "shop/try_done.html", ctx)
    response.headers["Cache-Control"] = "no-store"
    return response


def _shopper(customer_id: int | None) -> Actor:
    label = f"customer:{customer_id}" if customer_id is not None else "web:shopper"
    return Actor(label=label, name="shopper")
