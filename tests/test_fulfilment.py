"""Fulfilment of web orders: the staff's steps (picking, ready, packed, shipped, cancel)
through the service and the API, the order lists and pick list, and the uncollected
pickup job (reminder once, expiry once, also with two job runs at once)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.fulfilment.pickups import uncollected_pickups
from saumaton.fulfilment.queue import OrderQuery, order_page, pick_list
from saumaton.fulfilment.steps import mark_ready
from saumaton.inventory.models import StockReservation
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderOut
from saumaton.payments.models import Refund
from tests.support import Shop, make_variants, pay_web_order, staff_actor
from tests.test_pickup_handover import level, new_phone


async def paid_web_order(db: Database, settings: Settings, lines: list[tuple[int, int]], *,
                         store: int | None = None, last_name: str = "Tilaaja"
                         ) -> tuple[OrderOut, str]:
    """A web order paid through Paytrail: click & collect at `store`, else home
    delivery. Returns (order, Paytrail transaction id)."""
    tag = uuid.uuid4().hex[:8]
    cmd = CheckoutIn(
        email=f"ff-{tag}@example.fi", phone=new_phone(), first_name="Fanni",
        last_name=f"{last_name}{tag}", delivery="pickup" if store else "home",
        pickup_location_id=store,
        address=None if store else AddressIn(name="Fanni", street="Katu 1", postcode="00100",
                                            city="Helsinki"),
        lines=[LineIn(variant_id=v, quantity=q) for v, q in lines])
    order, _ = await place_web_order(db, settings, cmd, customer_id=None, key=f"ff-{tag}")
    return order, await pay_web_order(db, settings, order)


async def mails(db: Database, number: str, kind: str) -> list[OutgoingMail]:
    async with db.reader() as s:
        return list((await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == number, OutgoingMail.kind == kind))).all())


async def refunds(db: Database, order_id: int) -> list[Refund]:
    async with db.reader() as s:
        return list((await s.scalars(select(Refund).where(Refund.order_id == order_id))).all())


# --- click & collect -----------------------------------------------------------------------

async def test_pickup_is_picked_made_ready_and_handed_over_through_the_api(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1990], stock={shop.store1: 5})
    vid = int(str(v["id"]))
    order, _ = await paid_web_order(db, settings, [(vid, 2)], store=shop.store1)
    url = f"/api/v1/orders/{order.id}"
    # the other store's cashier may not prepare it; a pickup is never packed or shipped
    r = await client.post(f"{url}/picking", headers=shop.auth("cashier2"))
    assert r.status_code == 403, r.text
    r = await client.post(f"{url}/packed", headers=shop.auth("cashier1"))
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    r = await client.post(f"{url}/picking", headers=shop.auth("cashier1"))
    assert r.status_code == 200 and r.json()["status"] == "picking"
    r = await client.post(f"{url}/picking", headers=shop.auth("cashier1"))
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    assert "picking" in r.json()["detail"]

    r = await client.post(f"{url}/ready", headers=shop.auth("cashier1"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and r.json()["ready_at"]
    [mail] = await mails(db, order.number, "pickup_ready")
    assert mail.to_addr == order.email
    assert "Store Helsinki" in mail.body_text and "NT" + order.number in mail.body_text
    assert 'data-pickup-code="NT' + order.number in mail.body_html
    # still held at the store, and past the hold, so the pickup job ends it
    async with db.reader() as s:
        expires = (await s.scalars(select(StockReservation.expires_at).where(
            StockReservation.reference == order.number,
            StockReservation.status == "active"))).all()
    assert expires and all(e > utcnow() + timedelta(days=settings.pickup_hold_days)
                           for e in expires)
    listed = await client.get("/api/v1/orders", params={
        "status": "ready", "delivery_method": "pickup", "location_id": shop.store1},
        headers=shop.auth("cashier1"))
    assert listed.status_code == 200
    assert order.id in [o["id"] for o in listed.json()["items"]]
    assert all(o["status"] == "ready" for o in listed.json()["items"])

    r = await client.post(f"{url}/collected", json={"id_checked": False},
                          headers=shop.auth("cashier1"))
    assert r.status_code == 422 and r.json()["code"] == "id_not_checked"
    r = await client.post(f"{url}/collected", json={"id_checked": True},
                          headers=shop.auth("cashier1"))
    assert r.status_code == 200 and r.json()["status"] == "collected"
    assert await level(db, vid, shop.store1) == (3, 0)
    r = await client.post(f"{url}/cancel", headers=shop.auth("manager"))
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


# --- home delivery ---------------------------------------------------------------------------

async def test_home_delivery_is_packed_and_shipped_with_a_tracking_number(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [2500], stock={shop.warehouse: 5})
    order, _ = await paid_web_order(db, settings, [(int(str(v["id"])), 1)])
    url = f"/api/v1/orders/{order.id}"
    r = await client.post(f"{url}/ready", headers=shop.auth("manager"))
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    r = await client.post(f"{url}/packed", headers=shop.auth("manager"))
    assert r.status_code == 200 and r.json()["status"] == "packed"
    r = await client.post(f"{url}/shipped", json={"carrier": " ", "tracking_number": ""},
                          headers=shop.auth("manager"))
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"carrier", "tracking_number"}
    r = await client.post(f"{url}/shipped", json={"carrier": "Posti",
                                                 "tracking_number": "JJFI6400123"},
                          headers=shop.auth("manager"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["carrier"], body["tracking_number"]) == (
        "shipped", "Posti", "JJFI6400123")
    [mail] = await mails(db, order.number, "order_shipped")
    assert "JJFI6400123" in mail.body_text and "Posti" in mail.body_text
    r = await client.post(f"{url}/cancel", headers=shop.auth("manager"))
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


async def test_cancelling_a_paid_home_delivery_restocks_and_records_the_refund_due(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [3000], stock={shop.warehouse: 4})
    vid = int(str(v["id"]))
    order, txn = await paid_web_order(db, settings, [(vid, 2)])
    assert await level(db, vid, shop.warehouse) == (2, 0)
    r = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=shop.auth("cashier1"))
    assert r.status_code == 403  # the warehouse's order, not the Helsinki store's
    r = await client.post(f"/api/v1/orders/{order.id}/cancel", json={"reason": "customer"},
                          headers=shop.auth("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["order"]["status"] == "cancelled"
    assert r.json()["refund_cents"] == order.total_cents
    assert await level(db, vid, shop.warehouse) == (4, 0)
    [refund] = await refunds(db, order.id)
    assert (refund.method, refund.status, refund.amount_cents, refund.reference) == (
        "paytrail", "due", order.total_cents, txn)
    assert len(await mails(db, order.number, "order_cancelled")) == 1
    r = await client.post(f"/api/v1/orders/{order.id}/cancel", headers=shop.auth("manager"))
    assert r.status_code == 409
    assert len(await refunds(db, order.id)) == 1


# --- lists ---------------------------------------------------------------------------------

async def test_store_queue_search_and_pick_list(
        db: Database, shop: Shop, settings: Settings) -> None:
    [a, b] = await make_variants(db, [1000, 1200], stock={shop.store2: 10})
    [gc] = await make_variants(db, [2500], gift_card=True)  # e-mailed, not picked
    va, vb, vgc = int(str(a["id"])), int(str(b["id"])), int(str(gc["id"]))
    first, _ = await paid_web_order(db, settings, [(vb, 1), (va, 2), (vgc, 1)],
                                    store=shop.store2, last_name="Queue")
    second, _ = await paid_web_order(db, settings, [(va, 1)], store=shop.store2)
    cashier = await staff_actor(db, shop, "cashier2")
    async with db.reader() as s:
        page = await order_page(s, cashier, OrderQuery(status="open", location_id=shop.store2),
                                timezone=settings.timezone, page_size=1)
        assert page.total >= 2 and page.pages >= 2 and len(page.rows) == 1
        assert page.rows[0].id == second.id  # newest first
        found = await order_page(s, cashier, OrderQuery(q=first.phone),
                                 timezone=settings.timezone)
        assert [r.id for r in found.rows] == [first.id]
        found = await order_page(s, cashier, OrderQuery(q="queue" + first.email[3:11]),
                                 timezone=settings.timezone)
        assert first.id in [r.id for r in found.rows]
        # the Helsinki cashier sees no Tampere orders
        other = await order_page(s, await staff_actor(db, shop, "cashier1"),
                                 OrderQuery(q=first.number), timezone=settings.timezone)
        assert other.rows == []
        picks = await pick_list(s, shop.store2)
    mine = {ln.variant_id: ln for ln in picks.lines if ln.variant_id in (va, vb)}
    assert mine[va].quantity == 3 and set(mine[va].orders) == {first.number, second.number}
    assert mine[vb].quantity == 1
    assert vgc not in {ln.variant_id for ln in picks.lines}
    names = [ln.name for ln in picks.lines]
    assert names == sorted(names)


# --- uncollected pickups -------------------------------------------------------------------

async def ready_pickup(db: Database, settings: Settings, shop: Shop, vid: int,
                       days_ago: float) -> OrderOut:
    order, _ = await paid_web_order(db, settings, [(vid, 1)], store=shop.store1)
    manager = await staff_actor(db, shop, "manager")
    async with db.uow() as uow:
        await mark_ready(uow, manager, settings, order.id,
                         now=utcnow() - timedelta(days=days_ago))
        await uow.commit()
    return order


async def test_uncollected_pickup_is_reminded_once_then_cancelled_once(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 3})
    vid = int(str(v["id"]))
    hold, before = settings.pickup_hold_days, settings.pickup_reminder_days_before
    fresh = await ready_pickup(db, settings, shop, vid, days_ago=1)
    order = await ready_pickup(db, settings, shop, vid, days_ago=hold - before + 0.5)
    assert await level(db, vid, shop.store1) == (3, 2)

    await uncollected_pickups(db, settings)
    await uncollected_pickups(db, settings)
    assert len(await mails(db, order.number, "pickup_reminder")) == 1
    assert await mails(db, fresh.number, "pickup_reminder") == []
    async with db.reader() as s:
        assert await s.scalar(select(Order.status).where(Order.id == order.id)) == "ready"

    later = utcnow() + timedelta(days=before)
    await uncollected_pickups(db, settings, now=later)
    await uncollected_pickups(db, settings, now=later)
    async with db.reader() as s:
        assert await s.scalar(select(Order.status).where(Order.id == order.id)) == "cancelled"
        assert await s.scalar(select(Order.status).where(Order.id == fresh.id)) == "ready"
    assert await level(db, vid, shop.store1) == (3, 1)  # back on sale
    [refund] = await refunds(db, order.id)
    assert (refund.method, refund.status, refund.amount_cents) == ("paytrail", "due", 1500)
    [mail] = await mails(db, order.number, "order_cancelled")
    assert "1,50" not in mail.body_text and "15,00" in mail.body_text


async def test_two_job_runs_at_once_remind_and_cancel_each_pickup_once(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [900], stock={shop.store1: 12})
    vid = int(str(v["id"]))
    hold = settings.pickup_hold_days
    due = [await ready_pickup(db, settings, shop, vid, days_ago=hold + 1) for _ in range(4)]
    remind = [await ready_pickup(db, settings, shop, vid, days_ago=hold - 1)
              for _ in range(4)]
    # The app's own background job may take part too (it runs the same function): what
    # matters is that each order is reminded or cancelled exactly once, whoever did it.
    await asyncio.gather(*(uncollected_pickups(db, settings) for _ in range(2)))
    async with db.reader() as s:
        states = set((await s.scalars(select(Order.status).where(
            Order.id.in_([o.id for o in due])))).all())
    assert states == {"cancelled"}
    for o in due:
        assert len(await refunds(db, o.id)) == 1
        assert len(await mails(db, o.number, "order_cancelled")) == 1
    for o in remind:
        assert len(await mails(db, o.number, "pickup_reminder")) == 1
    async with db.reader() as s:
        active = await s.scalar(select(func.count()).select_from(StockReservation).where(
            StockReservation.reference.in_([o.number for o in due]),
            StockReservation.status == "active"))
    assert active == 0
    assert await level(db, vid, shop.store1) == (12, 4)


# --- staff pages and the shopper's order page ----------------------------------------------

async def test_store_pages_mark_ready_and_the_shopper_sees_it(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    from saumaton.checkout.services import access_token_of
    from tests.support import csrf_of, staff_login, text_of

    [v] = await make_variants(db, [1290], stock={shop.store1: 3})
    order, _ = await paid_web_order(db, settings, [(int(str(v["id"])), 1)], store=shop.store1)
    await staff_login(web, shop, "cashier1")
    page = await web.get("/pos/store-1/orders")
    assert page.status_code == 200
    assert text_of(page.text, f"order-status-{order.number}") == "Maksettu, valmisteltava"
    picks = await web.get("/pos/store-1/orders/picklist")
    assert str(v["sku"]) in picks.text and "hyllypaikkoja" in picks.text
    detail = await web.get(f"/pos/store-1/orders/{order.id}")
    assert 'data-testid="step-ready"' in detail.text and "step-packed" not in detail.text
    r = await web.post(f"/pos/store-1/orders/{order.id}/ready",
                       data={"csrf_token": csrf_of(detail.text)})
    assert r.status_code == 303
    detail = await web.get(r.headers["location"])
    assert text_of(detail.text, "order-status") == "Valmis noudettavaksi"
    assert "step-ready" not in detail.text
    # the Tampere store's queue does not show it; its page there is not found
    assert (await web.get(f"/pos/store-1/orders?q={order.number}")).status_code == 200
    async with db.reader() as s:
        token = await access_token_of(s, order.id)
    shopper = await web.get(f"/shop/orders/{order.number}?t={token}")
    assert text_of(shopper.text, "order-state") == "Valmis noudettavaksi"
    assert "pickup-code" in shopper.text


async def test_back_office_lists_every_order_and_ships_with_tracking(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    from tests.support import csrf_of, staff_login, text_of

    [v] = await make_variants(db, [4100], stock={shop.warehouse: 3})
    order, _ = await paid_web_order(db, settings, [(int(str(v["id"])), 1)])
    await staff_login(web, shop, "manager")
    listed = await web.get("/backoffice/orders", params={"delivery": "home", "q": order.email})
    assert text_of(listed.text, "orders-count") == "1 tilausta"
    detail = await web.get(f"/backoffice/orders/{order.id}")
    token = csrf_of(detail.text)
    r = await web.post(f"/backoffice/orders/{order.id}/shipped",
                       data={"csrf_token": token, "carrier": "", "tracking_number": ""})
    assert r.status_code == 422
    assert text_of(r.text, "error-carrier") == "Anna kuljetusliike."
    assert text_of(r.text, "error-tracking_number") == "Anna paketin seurantakoodi."
    r = await web.post(f"/backoffice/orders/{order.id}/shipped",
                       data={"csrf_token": token, "carrier": "Posti",
                             "tracking_number": "JJFI1"})
    assert r.status_code == 303
    detail = await web.get(r.headers["location"])
    assert text_of(detail.text, "order-status") == "Lähetetty"
    assert "JJFI1" in text_of(detail.text, "order-tracking")
    history = text_of(detail.text, "order-history")
    # who took each step by name, the steps in words, each once
    assert "Tilattu" in history and "Lähetetty · Manager" in history, history
    assert history.count("Lähetetty") == 1 and "staff:" not in history
    assert "Paytrail · 46,90 € · maksettu" in text_of(detail.text, "order-payments")
