"""A reservation to try sold at the till is the shopper's sale (both databases): with no
customer chosen, the till's sale (tills.sales.sell) is recorded for who reserved — signed
in, her own record; a guest, the registered customer whose e-mail address or phone number
she gave — so she earns the points, the sale is in her purchases and timeline, and the
channel journeys count it as reserved online, bought in a store. A customer the cashier
chose stays; a customer the cashier took off stays off. Service level on a database of
this module's own (the journey figures are known); the till's JSON endpoints and the
receipt through the app."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.customers.card import customer_card
from saumaton.customers.duplicates import merge_customers
from saumaton.customers.gdpr import erase_customer
from saumaton.customers.services import CustomerOut
from saumaton.customers.timeline import timeline
from saumaton.db.uow import Database
from saumaton.loyalty.ledger import balance, points_for
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.reports.journey_tables import CustomerJourney
from saumaton.reports.journeys import JourneyReport, journey_report, refresh_journeys
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from saumaton.tryon import services as tryon
from saumaton.tryon.models import TryReservation
from tests.builders import a_customer, a_till_sale, a_try_reservation
from tests.support import (
    Shop,
    make_variants,
    open_drawer,
    own_shop,
    staff_actor,
    staff_login,
    text_of,
)
from tests.test_till_api import headers, till

OWNER = Actor(label="staff:o", name="Olli Owner", grants=(RoleGrant("owner", None),))
PRICE = 2490  # the tried product, VAT incl.


@dataclass
class World:
    db: Database
    shop: Shop
    variant: int


@pytest.fixture(scope="module")
async def world(backend: str, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[World]:
    async with own_shop(backend, tmp_path_factory.mktemp("try-customer")) as (db, shop):
        [v] = await make_variants(db, [PRICE], stock={shop.store1: 40})
        yield World(db, shop, int(str(v["id"])))


async def guest_reservation(w: World, *, email: str = "", phone: str = "") -> tryon.TryOut:
    """A guest's reservation (no account) with the contact she typed."""
    async with w.db.uow() as uow:
        out = await tryon.reserve(uow, Actor(label="web:shopper", name="shopper"),
                                  tryon.TryIn(w.variant, w.shop.store1, name="Vieras",
                                              email=email, phone=phone),
                                  settings=Settings(), notify=False)
        await uow.commit()
    return out


async def points_of(w: World, customer_id: int) -> int:
    async with w.db.reader() as s:
        return await balance(s, customer_id)


async def stored_customer(w: World, order_id: int) -> int | None:
    async with w.db.reader() as s:
        found = await s.scalar(select(Order.customer_id).where(Order.id == order_id))
    return None if found is None else int(found)


async def refreshed_report(w: World) -> JourneyReport:
    async with w.db.uow() as uow:
        await refresh_journeys(uow)
        await uow.commit()
    async with w.db.reader() as s:
        return await journey_report(s, OWNER)


def web_to_store_only(r: JourneyReport) -> int:
    return {j.key: j.customers for j in r.journeys}.get("web_to_store-only", 0)


async def journey_of(w: World, customer_id: int) -> tuple[str, int, int] | None:
    async with w.db.reader() as s:
        row = await s.get(CustomerJourney, customer_id)
    return None if row is None else (row.first_kind, row.orders, row.revenue_cents)


async def test_her_reservation_sold_without_picking_her_is_her_purchase(
        world: World) -> None:
    w = world
    before = web_to_store_only(await refreshed_report(w))
    her = await a_customer(w.db)
    r = await a_try_reservation(w.db, w.shop, w.variant, customer_id=her.id)
    sale = await a_till_sale(w.db, w.shop, [w.variant], try_ids=[r.id])  # nobody picked

    assert sale.customer_id == her.id
    assert await stored_customer(w, sale.id) == her.id
    assert await points_of(w, her.id) == points_for(PRICE, Settings()) > 0
    async with w.db.reader() as s:
        sold = await tryon.get_by_code(s, r.code)
        card = await customer_card(s, OWNER, her.id, settings=Settings())
        events = await timeline(s, OWNER, her.id)
    assert sold is not None and (sold.status, sold.order_id) == ("sold", sale.id)
    assert (card.purchase_count, [p.number for p in card.recent]) == (1, [sale.number])
    assert [e.number for e in events if e.kind == "order"] == [sale.number]
    # The channel journeys after the refresh: reserved online, bought in a store.
    after = await refreshed_report(w)
    assert await journey_of(w, her.id) == ("web_to_store", 1, PRICE)
    assert web_to_store_only(after) == before + 1


async def test_a_customer_the_cashier_chose_stays(world: World) -> None:
    w = world
    her, picked = await a_customer(w.db), await a_customer(w.db, first_name="Bea")
    r = await a_try_reservation(w.db, w.shop, w.variant, customer_id=her.id)
    sale = await a_till_sale(w.db, w.shop, [w.variant], customer_id=picked.id,
                             try_ids=[r.id])
    assert sale.customer_id == picked.id
    assert await stored_customer(w, sale.id) == picked.id
    assert (await points_of(w, her.id), await points_of(w, picked.id)) == (
        0, points_for(PRICE, Settings()))
    await refreshed_report(w)
    assert await journey_of(w, her.id) is None  # she bought nothing
    assert await journey_of(w, picked.id) == ("web_to_store", 1, PRICE)


async def test_a_guest_is_matched_by_the_email_or_phone_she_gave(world: World) -> None:
    w = world
    anna, bea = await a_customer(w.db), await a_customer(w.db, first_name="Bea")
    assert anna.email and anna.phone and bea.email and bea.phone

    async def sold_to(r: tryon.TryOut) -> int | None:
        sale = await a_till_sale(w.db, w.shop, [w.variant], try_ids=[r.id])
        assert await stored_customer(w, sale.id) == sale.customer_id
        return sale.customer_id

    by_email = await guest_reservation(w, email=anna.email.upper())
    assert await sold_to(by_email) == anna.id
    national = "0" + anna.phone.removeprefix("+358")  # typed as she would: 040…
    assert await sold_to(await guest_reservation(w, phone=national)) == anna.id
    both = await guest_reservation(w, email=anna.email, phone=anna.phone)
    assert await sold_to(both) == anna.id
    # Her e-mail address is one customer's, her phone number another's: nobody.
    assert await sold_to(await guest_reservation(w, email=anna.email, phone=bea.phone)) \
        is None
    unknown = f"uusi.{uuid.uuid4().hex[:8]}@example.fi"
    assert await sold_to(await guest_reservation(w, email=unknown)) is None


async def test_reservations_of_two_customers_in_one_sale_attach_nobody(
        world: World) -> None:
    w = world
    anna, bea = await a_customer(w.db), await a_customer(w.db, first_name="Bea")
    ra = await a_try_reservation(w.db, w.shop, w.variant, customer_id=anna.id)
    rb = await a_try_reservation(w.db, w.shop, w.variant, customer_id=bea.id)
    sale = await a_till_sale(w.db, w.shop, [w.variant, w.variant], try_ids=[ra.id, rb.id])
    assert sale.customer_id is None
    # Two of hers in one sale (and a guest's with no contact in the register): hers.
    r1 = await a_try_reservation(w.db, w.shop, w.variant, customer_id=anna.id)
    r2 = await a_try_reservation(w.db, w.shop, w.variant, customer_id=anna.id)
    guest = await guest_reservation(w, phone="040 765 4321")
    sale = await a_till_sale(w.db, w.shop, [w.variant] * 3, try_ids=[r1.id, r2.id, guest.id])
    assert sale.customer_id == anna.id


async def sell_cmd(w: World, try_ids: list[int], **extra: Any) -> OrderOut:
    actor = await staff_actor(w.db, w.shop, "cashier1")
    sid = await open_drawer(w.db, w.shop.store1)
    lines = [TillLineIn(variant_id=w.variant, unit_price_cents=PRICE)
             if extra.get("offline") else TillLineIn(variant_id=w.variant)]
    order, _ = await sell(w.db, actor, w.shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, lines=lines,
        payments=[TillPaymentIn(method="cash", tendered_cents=3000)], try_ids=try_ids,
        **extra))
    return order


async def test_the_cashier_took_her_off_the_sale(world: World) -> None:
    w = world
    her = await a_customer(w.db)
    r = await a_try_reservation(w.db, w.shop, w.variant, customer_id=her.id)
    sale = await sell_cmd(w, [r.id], anonymous=True)
    assert (sale.customer_id, await stored_customer(w, sale.id)) == (None, None)
    assert await points_of(w, her.id) == 0
    with pytest.raises(ValidationError, match="not anonymous"):
        TillSaleIn(key=uuid.uuid4().hex, session_id=1, customer_id=her.id, anonymous=True,
                   lines=[TillLineIn(variant_id=w.variant)],
                   payments=[TillPaymentIn(method="cash")])


async def test_an_offline_sale_synced_later_is_hers_even_after_the_hold_lapsed(
        world: World) -> None:
    w = world
    her = await a_customer(w.db)
    r = await a_try_reservation(w.db, w.shop, w.variant, customer_id=her.id)
    sale = await sell_cmd(w, [r.id], offline=True, sold_at=utcnow())
    assert (sale.customer_id, await points_of(w, her.id)) == (
        her.id, points_for(PRICE, Settings()))
    # Rung up offline while her hold ran out; the sync comes after the no-show sweep.
    late = await a_try_reservation(w.db, w.shop, w.variant, customer_id=her.id)
    async with w.db.uow() as uow:
        await uow.session.execute(update(TryReservation).where(
            TryReservation.id == late.id).values(expires_at=utcnow() - timedelta(minutes=5)))
        await uow.commit()
    async with w.db.uow() as uow:
        assert late.id in [x.id for x in await tryon.expire_due(uow, Settings())]
        await uow.commit()
    synced = await sell_cmd(w, [late.id], offline=True,
                            sold_at=utcnow() - timedelta(minutes=10))
    assert synced.customer_id == her.id
    async with w.db.reader() as s:
        closed = await tryon.get_by_code(s, late.code)
    assert closed is not None and (closed.status, closed.order_id) == ("expired", None)


async def test_a_merged_shopper_is_the_kept_record_an_erased_one_nobody(
        world: World) -> None:
    w = world
    old, kept = await a_customer(w.db), await a_customer(w.db, email=False)
    r = await a_try_reservation(w.db, w.shop, w.variant, customer_id=old.id)
    async with w.db.uow() as uow:
        await merge_customers(uow, OWNER, kept.id, old.id)
        await uow.commit()
    assert (await a_till_sale(w.db, w.shop, [w.variant], try_ids=[r.id])).customer_id \
        == kept.id
    gone = await a_customer(w.db)
    r = await a_try_reservation(w.db, w.shop, w.variant, customer_id=gone.id)
    async with w.db.uow() as uow:
        await erase_customer(uow, OWNER, gone.id, "asked for it")
        await uow.commit()
    assert (await a_till_sale(w.db, w.shop, [w.variant], try_ids=[r.id])).customer_id \
        is None


# --- the till's endpoints and the receipt (the shared shop) ---------------------------


async def her_reservation(db: Database, shop: Shop) -> tuple[CustomerOut, tryon.TryOut, int]:
    [v] = await make_variants(db, [PRICE], stock={shop.store1: 3})
    vid = int(str(v["id"]))
    her = await a_customer(db)
    return her, await a_try_reservation(db, shop, vid, customer_id=her.id), vid


async def test_the_till_asks_who_reserved_and_the_json_sale_is_hers(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    her, r, vid = await her_reservation(db, shop)
    cfg = await till(web, shop, db)
    got = await web.get(f"/pos/store-1/api/tries/{r.id}/customer")
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["code"], body["customer"]["id"], body["customer"]["name"]) == (
        r.code, her.id, "Anna Asiakas")
    assert body["customer"]["points"] == 0 and body["customer"]["labels"]["use"]
    guest = await a_try_reservation(db, shop, vid)  # a phone number nobody has
    assert (await web.get(f"/pos/store-1/api/tries/{guest.id}/customer")).json()[
        "customer"] is None
    other = await web.get("/pos/store-2/api/tries/1/customer")  # not cashier1's store
    assert other.status_code == 403
    missing = await web.get(f"/pos/store-1/api/tries/{10**9}/customer")
    assert (missing.status_code, missing.json()["code"]) == (404, "try_not_found")

    def sale(try_ids: list[int], **extra: Any) -> dict[str, Any]:
        return {"key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
                "lines": [{"variant_id": vid}], "payments": [{"method": "cash"}],
                "try_ids": try_ids, **extra}

    bad = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                         content=json.dumps(sale([r.id], anonymous=True,
                                                 customer_id=her.id)))
    assert bad.status_code == 422, bad.text
    ok = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                        content=json.dumps(sale([r.id])))
    assert ok.status_code == 201, ok.text
    order = ok.json()["order"]
    assert order["customer_id"] == her.id
    # The receipt names her and offers to e-mail it to her address.
    receipt = await web.get(ok.json()["receipt_url"])
    assert receipt.status_code == 200
    assert 'data-testid="receipt-email"' in receipt.text
    assert f'value="{her.email}"' in receipt.text
    # Taken off the sale by the cashier: the till says so, and the sale is nobody's.
    r2 = await a_try_reservation(db, shop, vid, customer_id=her.id)
    off = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                         content=json.dumps(sale([r2.id], anonymous=True)))
    assert off.status_code == 201, off.text
    assert off.json()["order"]["customer_id"] is None


async def test_the_tries_page_links_the_sale_to_the_till(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    """The list's *Sell at the till* carries the reservation; the till page has the
    chip's reservation mark and the note for a customer kept, in the page's language."""
    her, r, _ = await her_reservation(db, shop)
    await staff_login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    page = (await web.get(f"/pos/store-1/tries?q={r.code}")).text
    assert f"try={r.id}" in page and her.first_name in page
    fi = (await web.get("/pos/store-1?lang=fi")).text
    assert 'data-testid="sale-customer-from"' in fi and 'data-testid="try-customer-kept"' in fi
    assert "myynti pysyy valitsemallasi asiakkaalla" in fi
    en = (await web.get("/pos/store-1?lang=en")).text
    assert "the sale stays with the customer you chose" in en
    assert text_of(en, "sale-customer-from") == ""
