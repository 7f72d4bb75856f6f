"""Endless aisle at the till: selling a line that ships from another location.

The till shows every location's stock of a product (the catalogue snapshot's `stock`,
kept current by `stock.changed` events). A line the store does not have is sold with
`ship_from` (the location that has it) and the sale gets a `delivery`:

* Before anything is charged, the units are held at the shipping location with a
  strict reservation (one conditional UPDATE: on hand − reserved must cover them),
  so two tills selling its last unit at once cannot both have it: one sale is
  recorded, the other is refused with 409 `aisle_sold_out`, nothing of it is written
  and no card is charged.
* `home`: delivered to the customer's address. The held units leave the shipping
  location's stock at the sale (consumed: a `sale` row with the order number, like a
  paid web order's home delivery). The shipping location packs and ships the order
  from its fulfilment queue (`fulfilment.steps`); the customer gets the shipped
  e-mail.
* `pickup`: sent to this store, where the customer collects it. The units go on a
  stock transfer tied to the order, `requested` (`inventory.transfers.
  request_for_order`): held on the shipping location's shelf for it, in its
  fulfilment queue and pick list. Its staff pack them and mark the transfer sent
  (`send_requested`: they leave the shelf and are in transit); when the store
  receives the transfer they are held there for the order; the store marks the
  order ready (the customer gets the click & collect ready e-mail with the pickup
  code) and hands it over at the till as any click & collect order.

The sale is one order in the one order book: paid at the till as usual (into the
drawer, its Z report, its receipt number), status `paid` with the delivery, the lines
taken from the store's shelf marked `taken_at_sale` (never picked or handed over
again), the others still to come. The customer gets the order confirmation as a web
order does. Offline such a sale cannot be made (the stock of another location and the
hold need the server): `aisle_needs_network`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.checkout.pickup import customer_contact
from saumaton.checkout.services import order_status_path
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import Conflict, OutOfStock, ValidationFailed
from saumaton.core.types import Input
from saumaton.customers.addresses import default_address
from saumaton.customers.identities import normalise_email, normalise_phone
from saumaton.customers.models import CustomerIdentity
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.services import consume, release, reserve
from saumaton.inventory.transfers import request_for_order
from saumaton.locations.models import Location
from saumaton.mail.messages import order_confirmation
from saumaton.mail.queue import queue_mail
from saumaton.orders.schemas import OrderOut

METHODS = ("home", "pickup")


class AisleDeliveryIn(Input):
    """How the lines that ship from another location reach the customer. Empty
    contact and address fields are taken from the attached customer's register entry
    (first e-mail and phone, default address)."""

    method: str = Field(max_length=6, pattern="^(home|pickup)$",
                        description="home: to the address; pickup: to this store")
    email: str = Field(default="", max_length=320)
    phone: str = Field(default="", max_length=40)
    name: str = Field(default="", max_length=200)
    street: str = Field(default="", max_length=200)
    postcode: str = Field(default="", max_length=16)
    city: str = Field(default="", max_length=100)
    country: str = Field(default="FI", max_length=2, pattern="^[A-Z]{2}$")
    language: str = Field(default="", max_length=2, pattern="^(|fi|en)$")


class AisleSoldOut(Conflict):
    code = "aisle_sold_out"


@dataclass(frozen=True)
class AislePlan:
    method: str  # home | pickup
    ships_from: dict[int, int]  # line index -> location
    email: str
    phone: str
    language: str
    address: dict[str, str] | None  # home only
    names: dict[int, str]  # location id -> name
    access_token: str

    def location_of(self, index: int, store_id: int) -> int:
        return self.ships_from.get(index, store_id)


async def customer_delivery(s: AsyncSession, customer_id: int | None) -> dict[str, str]:
    """What the register knows for a delivery: the customer's name, first e-mail and
    phone, and default address ("" where unknown). The till shows it to the cashier to
    confirm; the sale fills the fields left empty with the same."""
    out = dict.fromkeys(("name", "email", "phone", "street", "postcode", "city"), "")
    out["country"] = "FI"
    if customer_id is None:
        return out
    out["name"], out["email"] = await customer_contact(s, customer_id)
    out["phone"] = str(await s.scalar(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "phone")
        .order_by(CustomerIdentity.id).limit(1)) or "")
    known = await default_address(s, customer_id)
    if known is not None:
        out.update(name=known.name or out["name"], street=known.street,
                   postcode=known.postcode, city=known.city, country=known.country or "FI")
    return out


def remote_lines(lines: Sequence[Any], store_id: int) -> dict[int, int]:
    """line index -> the other location it ships from (`ship_from` naming the store
    itself is a line in hand)."""
    return {i: int(ln.ship_from) for i, ln in enumerate(lines)
            if getattr(ln, "ship_from", None) is not None and ln.ship_from != store_id}


async def plan_aisle(uow: UnitOfWork, store_id: int, lines: Sequence[Any],
                     delivery: AisleDeliveryIn | None, *, offline: bool,
                     customer_id: int | None, gift_cards: set[int], exchange: bool,
                     default_language: str) -> AislePlan | None:
    """The endless-aisle part of a till sale, checked; None for a sale in hand only.
    Every refusal is a 4xx with a code and the field, before anything is written."""
    remote = remote_lines(lines, store_id)
    if not remote:
        if delivery is not None:
            raise ValidationFailed("a delivery is given only with a line that ships from "
                                   "another location", code="delivery_without_aisle_lines",
                                   field="delivery")
        return None
    first = min(remote)
    if offline:
        raise ValidationFailed("a line that ships from another location needs the network",
                               code="aisle_needs_network", field=f"lines.{first}.ship_from")
    if exchange:
        raise ValidationFailed("an exchange is sold from the store's shelf only",
                               code="aisle_in_exchange", field=f"lines.{first}.ship_from")
    for i in sorted(remote):
        if lines[i].variant_id in gift_cards:
            raise ValidationFailed("a gift card is not shipped", code="aisle_gift_card",
                                   field=f"lines.{i}.ship_from")
    s = uow.session
    names = {int(r[0]): str(r[1]) for r in (await s.execute(
        select(Location.id, Location.name).where(Location.id.in_(
            set(remote.values()) | {store_id})))).all()}
    for i in sorted(remote):
        if remote[i] not in names:
            raise ValidationFailed(f"line {i + 1}: no location {remote[i]}",
                                   code="unknown_location", field=f"lines.{i}.ship_from")
    if delivery is None:
        raise ValidationFailed("choose how the lines from other locations reach the "
                               "customer: home delivery or pickup here",
                               code="delivery_required", field="delivery.method")
    known = await customer_delivery(s, customer_id)
    raw_email = delivery.email.strip() or known["email"]
    if not raw_email:
        raise ValidationFailed("an e-mail address is needed to tell the customer when the "
                               "order is on its way", code="email_required",
                               field="delivery.email")
    try:
        email = normalise_email(raw_email)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, code=exc.code, field="delivery.email") from None
    raw_phone = delivery.phone.strip() or known["phone"]
    try:
        phone = normalise_phone(raw_phone) if raw_phone else ""
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, code=exc.code, field="delivery.phone") from None
    address = None
    if delivery.method == "home":
        address = _address(delivery, known)
    return AislePlan(delivery.method, remote, email, phone,
                     delivery.language or default_language, address, names,
                     secrets.token_urlsafe(24))


def _address(d: AisleDeliveryIn, known: dict[str, str]) -> dict[str, str]:
    """The typed address; none typed: the customer's default address."""
    typed = any(x.strip() for x in (d.street, d.postcode, d.city))
    if not typed and known["street"]:
        return {k: known[k] for k in ("name", "street", "postcode", "city", "country")}
    out = {"name": d.name.strip() or known["name"], "street": d.street.strip(),
           "postcode": d.postcode.strip(), "city": d.city.strip(), "country": d.country}
    for key in ("name", "street", "postcode", "city"):
        if not out[key]:
            raise ValidationFailed(f"home delivery needs the {key}", code="address_required",
                                   field=f"delivery.{key}")
    pc = out["postcode"]
    if out["country"] == "FI" and not (len(pc) == 5 and pc.isascii() and pc.isdigit()):
        raise ValidationFailed("a Finnish postcode has five digits", code="invalid_postcode",
                               field="delivery.postcode")
    return out


def sold_out(exc: OutOfStock, plan: AislePlan, lines: Sequence[Any],
             line_names: Sequence[str]) -> AisleSoldOut:
    """The refusal when another sale took the units first (nothing of this one is
    written): which line, which location."""
    variant_id = exc.extra.get("variant_id")
    location_id = exc.extra.get("location_id")
    index = next((i for i, loc in sorted(plan.ships_from.items())
                  if lines[i].variant_id == variant_id
                  and (location_id is None or loc == location_id)), min(plan.ships_from))
    where = plan.names.get(plan.ships_from[index], "")
    return AisleSoldOut(
        f"{line_names[index]} is no longer available at {where}: another sale took it. "
        "Choose another location or take the line off the sale.",
        field=f"lines.{index}.ship_from",
        extra={"variant_id": lines[index].variant_id,
               "location_id": plan.ships_from[index], "location_name": where})


def aisle_order_fields(plan: AislePlan | None) -> dict[str, Any]:
    """The order's delivery columns (orders.writer.OrderRecord) for an aisle sale."""
    if plan is None:
        return {}
    return {"email": plan.email, "phone": plan.phone, "language": plan.language,
            "delivery_method": plan.method, "shipping_address": plan.address,
            "access_token": plan.access_token}


# A sale's hold lives only until its own commit (consumed or released in the same
# transaction); the expiry is a safety net.
HOLD_TTL = timedelta(minutes=10)


def ship_units(plan: AislePlan | None, lines: Sequence[Any], infos: Sequence[Any]
               ) -> dict[tuple[int, int], int]:
    """(variant, shipping location) -> units of the lines that ship from elsewhere."""
    out: dict[tuple[int, int], int] = {}
    if plan is None:
        return out
    for i, loc in plan.ships_from.items():
        if not infos[i].gift_card:
            k = (lines[i].variant_id, loc)
            out[k] = out.get(k, 0) + lines[i].quantity
    return out


async def hold_remote(uow: UnitOfWork, actor: Actor, plan: AislePlan,
                      shipped: dict[tuple[int, int], int], key: str, lines: Sequence[Any],
                      line_names: Sequence[str]) -> list[tuple[int, int, int]]:
    """Reserve the units at the shipping locations, strictly (one conditional UPDATE
    each: available = on hand − reserved must cover them), in stock-row order, before
    anything is charged; [(variant, location, reservation id)]. 409 `aisle_sold_out`
    when another sale has taken them (the caller's transaction then writes nothing)."""
    held: list[tuple[int, int, int]] = []
    for (vid, loc), qty in sorted(shipped.items()):
        try:
            rid = await reserve(uow, actor, vid, loc, qty, reference=key[:100],
                                ttl=HOLD_TTL)
        except OutOfStock as exc:
            raise sold_out(exc, plan, lines, line_names) from None
        held.append((vid, loc, rid))
    return held


async def ship_held(uow: UnitOfWork, actor: Actor, plan: AislePlan,
                    held: list[tuple[int, int, int]], shipped: dict[tuple[int, int], int],
                    store_id: int, order_id: int, number: str) -> None:
    """The sale is written: home delivery sells the held units (they leave the
    shipping location's stock, a `sale` row with the order number, as a paid web
    order's home delivery); pickup holds them for a transfer to this store tied to
    the order, for the shipping location to send (the sale's short hold released and
    the transfer's taken in the same transaction: nobody can take them between)."""
    if plan.method == "home":
        for _, _, rid in held:
            await consume(uow, actor, rid, order_id=order_id, reference=number)
        return
    for _, _, rid in held:
        await release(uow, rid)
    await send_for_pickup(uow, actor, plan, shipped, store_id, order_id, number)


async def send_for_pickup(uow: UnitOfWork, actor: Actor, plan: AislePlan,
                          shipped: dict[tuple[int, int], int], store_id: int, order_id: int,
                          number: str) -> None:
    """One requested transfer per shipping location, tied to the order, to this store:
    the units held at the sender until it marks them sent."""
    by_location: dict[int, list[tuple[int, int]]] = {}
    for (vid, loc), qty in sorted(shipped.items()):
        by_location.setdefault(loc, []).append((vid, qty))
    for loc, lines in sorted(by_location.items()):
        await request_for_order(
            uow, actor, loc, store_id, lines,
            note=f"order {number}: pickup at {plan.names.get(store_id, '')}",
            idempotency_key=f"order:{order_id}:{loc}", order_id=order_id)


async def confirm_aisle_order(uow: UnitOfWork, settings: Settings, plan: AislePlan,
                              order: OrderOut, store_id: int) -> None:
    """The order confirmation a web order gets when it is paid: what is still to come,
    the delivery, the status link."""
    mail = order_confirmation(
        order, status_url=settings.resolved_public_url() + order_status_path(
            order.id, plan.access_token), lang=plan.language, settings=settings,
        pickup_store_name=plan.names.get(store_id) if plan.method == "pickup" else None)
    await queue_mail(uow, kind="order_confirmation", to=plan.email, subject=mail.subject,
                     text=mail.text, html=mail.html, reference=order.number)
