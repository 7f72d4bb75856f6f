"""Shared builders for tests that need "a customer", "a till sale", "a paid web order",
"a reservation to try sold at the till" or "a category" without caring how each is made
(tests/support.py has the shop and the products)."""

from __future__ import annotations

import random
import uuid

from saumaton.catalogue.editing import CategoryEdit, save_category
from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.services import CustomerOut
from saumaton.db.uow import Database
from saumaton.orders.schemas import LineIn, OrderOut
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from saumaton.tryon import services as tryon
from tests.support import Shop, open_drawer, pay_web_order, staff_actor

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))


async def a_category(db: Database, name: str = "", parent_id: int | None = None
                     ) -> tuple[int, str]:
    """A new product category: (id, slug)."""
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        out = await save_category(uow, SYSTEM, None, CategoryEdit(
            name=f"{name or 'Kategoria'} {tag}", name_en=f"{name or 'Category'} {tag}",
            parent_id=parent_id))
        await uow.commit()
    return out.id, out.slug


async def a_customer(db: Database, *, consent: bool = True, email: bool = True,
                     first_name: str = "Anna") -> CustomerOut:
    """A customer added at the till with a phone number and (by default) an e-mail
    address, allowing marketing e-mail or not."""
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040 {random.randrange(10**7):07d}", first_name=first_name,
            last_name="Asiakas",
            email=f"c.{uuid.uuid4().hex[:10]}@example.fi" if email else "",
            marketing_email=consent))
        await uow.commit()
    return out


async def a_till_sale(db: Database, shop: Shop, variant_ids: list[int], *,
                      customer_id: int | None = None, who: str = "cashier1",
                      try_ids: list[int] | None = None) -> OrderOut:
    """A sale at the Helsinki store's till, paid by card (tills.sales.sell, as the till
    sends it); `try_ids`: the reservations to try it sells."""
    actor = await staff_actor(db, shop, who)
    session_id = await open_drawer(db, shop.store1)
    order, _ = await sell(db, actor, shop.store1, TillSaleIn(
        key=f"t-{uuid.uuid4().hex}", session_id=session_id, customer_id=customer_id,
        lines=[TillLineIn(variant_id=v) for v in variant_ids],
        payments=[TillPaymentIn(method="card", terminal_confirmed=True)],
        try_ids=try_ids or []))
    return order


async def a_try_reservation(db: Database, shop: Shop, variant_id: int, *,
                            customer_id: int | None = None) -> tryon.TryOut:
    """A reservation to try at the Helsinki store, made on the webshop's product page (a
    signed-in shopper's if `customer_id`, else a guest's with a phone number). The
    variant needs a free unit there."""
    shopper = Actor(label=f"customer:{customer_id}" if customer_id else "web:shopper",
                    name="shopper")
    async with db.uow() as uow:
        out = await tryon.reserve(uow, shopper, tryon.TryIn(
            variant_id, shop.store1, name="" if customer_id else "Kokeilija",
            phone="" if customer_id else f"040 {random.randrange(10**7):07d}",
            customer_id=customer_id), settings=Settings(), notify=False)
        await uow.commit()
    return out


async def a_try_sold_at_the_till(db: Database, shop: Shop, variant_id: int, *,
                                 customer_id: int | None) -> tuple[tryon.TryOut, OrderOut]:
    """A reservation to try made on the web and bought at the Helsinki store's till (the
    cashier sells it with the reservation, the customer attached): (the reservation,
    the sale)."""
    reserved = await a_try_reservation(db, shop, variant_id, customer_id=customer_id)
    order = await a_till_sale(db, shop, [variant_id], customer_id=customer_id,
                              try_ids=[reserved.id])
    return reserved, order


async def a_paid_web_order(db: Database, settings: Settings, variant_ids: list[int], *,
                           email: str, customer_id: int | None = None,
                           marketing_email: bool = False, language: str = "fi",
                           pickup_at: int | None = None) -> OrderOut:
    """A webshop order paid through (simulated) Paytrail: delivered home, or with
    `pickup_at` (a store's id) click & collect there."""
    cmd = CheckoutIn(email=email, phone="040 123 4567" if pickup_at else "",
                     first_name="Anna", last_name="Asiakas",
                     delivery="pickup" if pickup_at else "home", pickup_location_id=pickup_at,
                     marketing_email=marketing_email,
                     language=language,  # type: ignore[arg-type]
                     address=None if pickup_at else AddressIn(
                         name="Anna Asiakas", street="Katu 1", postcode="00100",
                         city="Helsinki"),
                     lines=[LineIn(variant_id=v, quantity=1) for v in variant_ids])
    order, _ = await place_web_order(db, settings, cmd, customer_id=customer_id,
                                     key=f"w-{uuid.uuid4().hex}")
    await pay_web_order(db, settings, order)
    return order
