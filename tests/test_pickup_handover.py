"""Click & collect at the till: pickup codes, finding orders, handing over (stock leaves
the reservation), and the add-on suggestions."""

from __future__ import annotations

import html
import random
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.checkout.pickup import (
    LAPSED_FLAG,
    find_pickups,
    hand_over,
    order_id_from_code,
    pickup_code,
)
from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers.models import Customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.inventory.models import StockLevel, StockMovement, StockReservation
from saumaton.inventory.services import Move, apply_moves, release, verify_ledger
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.orders.suggestions import suggestions
from saumaton.payments.services import PaymentIn
from saumaton.staff.models import Staff
from saumaton.staff.services import staff_names
from tests.support import Shop, make_variants, pay_web_order

SECRET = "test-secret-key-0123456789"
CASHIER1 = Actor(label="staff:test cashier1", staff_id=None, name="Cashier 1",
                 grants=(RoleGrant("cashier", None),))


def new_phone() -> str:
    return f"040 {random.randrange(10**6, 10**7)}"


async def paid_pickup(db: Database, settings: Settings, store: int, lines: list[tuple[int, int]],
                      *, last_name: str | None = None, phone: str | None = None,
                      pay: bool = True) -> tuple[OrderOut, str, str]:
    """A click & collect order placed in the webshop (and paid): (order, last name, phone)."""
    tag = uuid.uuid4().hex[:8]
    last = last_name or f"Noutaja{tag}"
    phone = phone or new_phone()
    cmd = CheckoutIn(email=f"cc-{tag}@example.fi", phone=phone, first_name="Paula",
                     last_name=last, delivery="pickup", pickup_location_id=store,
                     lines=[LineIn(variant_id=v, quantity=q) for v, q in lines])
    order, _ = await place_web_order(db, settings, cmd, customer_id=None, key=f"cc-{tag}")
    if pay:
        await pay_web_order(db, settings, order)
    return order, last, phone


async def level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        row = (await s.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
            StockLevel.variant_id == variant_id, StockLevel.location_id == location_id))).one()
    return int(row[0]), int(row[1])


async def do_hand_over(db: Database, order_id: int, location_id: int, *,
                       id_checked: bool = True, actor: Actor = CASHIER1) -> OrderOut:
    async with db.uow() as uow:
        out = await hand_over(uow, actor, order_id, location_id, id_checked)
        await uow.commit()
    return out


# --- codes --------------------------------------------------------------------------------

def test_pickup_code_round_trip_and_tampering() -> None:
    code = pickup_code(123, SECRET)
    assert code.startswith("NT000123") and len(code) == 12 and code[2:].isdigit()
    assert order_id_from_code(code, SECRET) == 123
    assert order_id_from_code(code.lower(), SECRET) == 123
    assert order_id_from_code(f" {code[:2]} {code[2:8]} {code[8:]} ", SECRET) == 123
    # another order's number with this order's check digits, changed digits, other key
    assert order_id_from_code("NT000124" + code[-4:], SECRET) is None
    bad = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert order_id_from_code(bad, SECRET) is None
    assert order_id_from_code(code, "another-secret") is None
    for junk in ("", "NT", "NT123", "XX0001234567", "NT00012345678x", "NT0000000000"):
        assert order_id_from_code(junk, SECRET) is None
    # big order numbers keep working (more digits)
    assert order_id_from_code(pickup_code(12_345_678, SECRET), SECRET) == 12_345_678
    # the codes of consecutive orders do not follow a pattern
    checks = {pickup_code(n, SECRET)[-4:] for n in range(1, 50)}
    assert len(checks) > 40


# --- finding ------------------------------------------------------------------------------

async def test_find_by_code_number_name_phone_and_email(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [1200], stock={shop.store1: 4})
    vid = int(str(v["id"]))
    order, last, phone = await paid_pickup(db, settings, shop.store1, [(vid, 1)])
    secret = settings.resolved_secret_key()
    code = pickup_code(order.id, secret)
    async with db.reader() as s:
        async def ids(q: str, store: int = shop.store1) -> list[int]:
            return [p.order.id for p in await find_pickups(s, store, q, secret)]

        assert await ids(code) == [order.id]
        assert await ids(code.lower()) == [order.id]
        assert await ids(str(order.id)) == [order.id]
        assert await ids(order.number) == [order.id]
        assert order.id in await ids(last)
        assert order.id in await ids(f"paula {last.lower()}")
        assert await ids(phone) == [order.id]
        assert await ids(phone.replace(" ", "")) == [order.id]
        assert await ids(order.email.upper()) == [order.id]
        found = await find_pickups(s, shop.store1, code, secret)
        assert found[0].ready and found[0].customer_name == f"Paula {last}"
        # a tampered code, another store, nonsense: nothing
        bad = code[:-1] + str((int(code[-1]) + 1) % 10)
        assert await ids(bad) == []
        assert await ids(code, shop.store2) == []
        assert await ids(last, shop.store2) == []
        assert await ids("Zyxwvut" + uuid.uuid4().hex) == []
        assert await ids("   ") == []
    await do_hand_over(db, order.id, shop.store1)
    async with db.reader() as s:
        assert await find_pickups(s, shop.store1, code, secret) == []  # no longer waiting


# --- handing over -------------------------------------------------------------------------

async def test_hand_over_consumes_the_reservation(
        db: Database, shop: Shop, settings: Settings) -> None:
    a, b = await make_variants(db, [1500, 900], stock={shop.store1: 5, shop.warehouse: 3})
    va, vb = int(str(a["id"])), int(str(b["id"]))
    order, _, _ = await paid_pickup(db, settings, shop.store1, [(va, 2), (vb, 1)])
    assert await level(db, va, shop.store1) == (5, 2)
    assert await level(db, vb, shop.store1) == (5, 1)

    with pytest.raises(ValidationFailed) as e:
        await do_hand_over(db, order.id, shop.store1, id_checked=False)
    assert e.value.code == "id_not_checked" and e.value.field == "id_checked"
    assert await level(db, va, shop.store1) == (5, 2)  # nothing changed

    out = await do_hand_over(db, order.id, shop.store1)
    assert out.status == "collected" and out.collected_at is not None
    assert out.collected_by == CASHIER1.label
    assert LAPSED_FLAG not in out.flags
    assert await level(db, va, shop.store1) == (3, 0)
    assert await level(db, vb, shop.store1) == (4, 0)
    assert await level(db, va, shop.warehouse) == (3, 0)  # other locations untouched
    async with db.reader() as s:
        moves = (await s.execute(select(StockMovement.variant_id, StockMovement.quantity,
                                        StockMovement.kind, StockMovement.location_id,
                                        StockMovement.order_id)
                                 .where(StockMovement.reference == order.number))).all()
        assert sorted(moves) == sorted([(va, -2, "sale", shop.store1, order.id),
                                        (vb, -1, "sale", shop.store1, order.id)])
        statuses = (await s.scalars(select(StockReservation.status).where(
            StockReservation.reference == order.number))).all()
        assert set(statuses) == {"consumed"}
        events = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "order.collected"))).all()
        assert any(p["order_id"] == order.id and p["location_id"] == shop.store1
                   and p["lapsed"] == [] for p in events)
        row = (await s.execute(select(Order.status, Order.collected_by)
                               .where(Order.id == order.id))).one()
        assert tuple(row) == ("collected", CASHIER1.label)
        mismatches = await verify_ledger(s)
        assert not [m for m in mismatches if m.variant_id in (va, vb)]

    with pytest.raises(Conflict) as c:
        await do_hand_over(db, order.id, shop.store1)
    assert c.value.code == "already_collected" and c.value.status == 409
    assert await level(db, va, shop.store1) == (3, 0)


async def test_hand_over_refuses_unpaid_other_store_and_home_delivery(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [700], stock={shop.store1: 5, shop.store2: 5,
                                                shop.warehouse: 5})
    vid = int(str(v["id"]))
    pending, _, _ = await paid_pickup(db, settings, shop.store1, [(vid, 1)], pay=False)
    with pytest.raises(Conflict) as c:
        await do_hand_over(db, pending.id, shop.store1)
    assert c.value.code == "pickup_not_paid"

    paid, _, _ = await paid_pickup(db, settings, shop.store1, [(vid, 1)])
    with pytest.raises(NotFound):
        await do_hand_over(db, paid.id, shop.store2)  # another store's order
    store2_cashier = Actor(label="staff:c2", name="C2",
                           grants=(RoleGrant("cashier", shop.store2),))
    with pytest.raises(Forbidden):
        await do_hand_over(db, paid.id, shop.store1, actor=store2_cashier)

    cmd = CheckoutIn(email="home@example.fi", phone="", first_name="H", last_name="D",
                     delivery="home", address=AddressIn(name="H D", street="Katu 1",
                                                         postcode="00100", city="Helsinki"),
                     lines=[LineIn(variant_id=vid, quantity=1)])
    home, _ = await place_web_order(db, settings, cmd, customer_id=None,
                                    key=f"home-{uuid.uuid4().hex}")
    with pytest.raises(NotFound) as n:
        await do_hand_over(db, home.id, shop.store1)
    assert n.value.code == "pickup_not_found"
    assert await level(db, vid, shop.store1) == (5, 2)  # nothing taken


async def test_lapsed_reservation_takes_the_units_from_the_shelf(
        db: Database, shop: Shop, settings: Settings) -> None:
    [v] = await make_variants(db, [2500], stock={shop.store1: 4})
    vid = int(str(v["id"]))
    order, _, _ = await paid_pickup(db, settings, shop.store1, [(vid, 3)])
    async with db.uow() as uow:  # the hold ran out and the expiry job released it
        rid = await uow.session.scalar(select(StockReservation.id).where(
            StockReservation.reference == order.number))
        assert rid is not None and await release(uow, rid)
        await uow.commit()
    assert await level(db, vid, shop.store1) == (4, 0)
    out = await do_hand_over(db, order.id, shop.store1)
    assert out.status == "collected" and LAPSED_FLAG in out.flags
    assert await level(db, vid, shop.store1) == (1, 0)
    async with db.reader() as s:
        moves = (await s.execute(select(StockMovement.quantity, StockMovement.kind).where(
            StockMovement.reference == order.number))).all()
        assert [tuple(m) for m in moves] == [(-3, "sale")]
        events = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "order.collected"))).all()
        assert any(p["order_id"] == order.id and p["lapsed"] == [{"variant_id": vid,
                                                                  "quantity": 3}]
                   for p in events)


# --- suggestions ----------------------------------------------------------------------------

async def store_sale(db: Database, lines: list[int], customer_id: int | None = None,
                     days_ago: int = 0) -> int:
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=v, quantity=1) for v in lines],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"sg-{uuid.uuid4().hex}")
    if days_ago:
        async with db.uow() as uow:
            await uow.session.execute(update(Order).where(Order.id == order.id).values(
                created_at=utcnow() - timedelta(days=days_ago)))
            await uow.commit()
    return order.id


async def test_suggestions_bought_together_and_repeat_purchases(
        db: Database, shop: Shop) -> None:
    # Five products (one variant each): A is in the order.
    made = [(await make_variants(db, [1000 + i * 100], stock={shop.store1: 10}))[0]
            for i in range(6)]
    a, b, c, d, r, r2 = (int(str(x["id"])) for x in made)
    [e] = await make_variants(db, [500], stock={shop.store2: 10})  # none at store 1
    ve = int(str(e["id"]))
    for _ in range(3):
        await store_sale(db, [a, b])
    await store_sale(db, [a, c])
    for _ in range(4):
        await store_sale(db, [a, ve])
    await store_sale(db, [b, d])  # d never with a
    async with db.uow() as uow:
        customer = Customer(first_name="Toistuva", last_name="Asiakas")
        uow.session.add(customer)
        await uow.commit()
        cid = customer.id
    await store_sale(db, [r], cid, days_ago=60)
    await store_sale(db, [r], cid, days_ago=40)
    await store_sale(db, [r], cid, days_ago=35)
    await store_sale(db, [r2], cid, days_ago=50)
    await store_sale(db, [r2], cid, days_ago=5)  # bought lately: not suggested

    async with db.reader() as s:
        got = await suggestions(s, shop.store1, cid, [a])
    a_name = f"Product {str(made[0]['product_slug'])[2:]} – V0"
    assert [g.variant_id for g in got] == [r, b, c]
    rep, tog, tog2 = got
    assert rep.reason == "repeat" and rep.times == 3 and rep.reason_text == \
        "bought 3 times before"
    assert tog.reason == "together" and tog.score == 3 and tog.with_name == a_name
    assert tog.reason_text.startswith("often bought with ")
    assert tog2.score == 1
    assert [g.available for g in got] == [7, 6, 9]  # 10 each, less what the sales took
    assert [g.price_cents for g in got] == [1400, 1100, 1200]
    assert ve not in [g.variant_id for g in got]  # not in stock at this store
    assert a not in [g.variant_id for g in got]  # already in the order

    async with db.reader() as s:
        no_customer = await suggestions(s, shop.store1, None, [a], limit=1)
        assert [g.variant_id for g in no_customer] == [b]
        at_store2 = await suggestions(s, shop.store2, None, [a])
        assert [g.variant_id for g in at_store2] == [ve]

    # B gone from store 1's shelf: no longer suggested
    async with db.uow() as uow:
        await apply_moves(uow, SYSTEM, [Move(b, shop.store1, -9, "adjustment", reason="t")])
        await uow.commit()
    assert await level(db, b, shop.store1) == (10 - 4 - 9, 0)  # sold 4, adjusted 9
    async with db.reader() as s:
        got = await suggestions(s, shop.store1, cid, [a])
    assert b not in [g.variant_id for g in got]


# --- the pages ------------------------------------------------------------------------------

async def test_handover_pages_over_http(client: httpx.AsyncClient, db: Database, shop: Shop,
                                        settings: Settings) -> None:
    [v] = await make_variants(db, [1800], stock={shop.store1: 2})
    vid = int(str(v["id"]))
    order, last, _ = await paid_pickup(db, settings, shop.store1, [(vid, 1)])
    code = pickup_code(order.id, settings.resolved_secret_key())
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        page = (await c.get("/staff/login")).text
        email, password = shop.logins["cashier1"]
        token = re.search(r'name="csrf_token" value="([^"]*)"', page)
        assert token
        r = await c.post("/staff/login", data={"email": email, "password": password,
                                               "csrf_token": html.unescape(token[1])})
        assert r.status_code == 303
        base = "/pos/store-1/pickups"
        r = await c.get(f"{base}/find", params={"q": code})
        assert r.status_code == 303 and r.headers["location"] == f"{base}/{order.id}"
        r = await c.get(f"{base}/find", params={"q": "NT0000000000"})
        assert r.status_code == 200 and 'data-testid="pickup-q-error"' in r.text
        assert 'aria-invalid="true"' in r.text
        r = await c.get(f"{base}/find", params={"q": ""})
        assert 'data-testid="pickup-q-error"' in r.text
        page = (await c.get(f"{base}/{order.id}")).text
        assert f"Paula {last}" in page and code in page
        csrf = html.unescape(re.findall(r'name="csrf_token" value="([^"]*)"', page)[-1])
        # no CSRF token: refused, nothing changes
        r = await c.post(f"{base}/{order.id}", data={"id_checked": "1"})
        assert r.status_code == 403
        r = await c.post(f"{base}/{order.id}", data={"csrf_token": csrf})
        assert r.status_code == 422 and 'data-testid="id-checked-error"' in r.text
        assert await level(db, vid, shop.store1) == (2, 1)
        r = await c.post(f"{base}/{order.id}", data={"csrf_token": csrf, "id_checked": "1"})
        assert r.status_code == 303 and r.headers["location"] == f"{base}/{order.id}?handed=1"
        assert 'data-testid="handed-over"' in (await c.get(r.headers["location"])).text
        assert await level(db, vid, shop.store1) == (1, 0)
        r = await c.post(f"{base}/{order.id}", data={"csrf_token": csrf, "id_checked": "1"})
        assert r.status_code == 409 and "Tilaus on jo luovutettu." in r.text
        # another store's page: 404; another store's cashier: no access
        assert (await c.get(f"/pos/store-2/pickups/{order.id}")).status_code == 403
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c2:
        page = (await c2.get("/staff/login")).text
        email, password = shop.logins["owner"]
        token = re.search(r'name="csrf_token" value="([^"]*)"', page)
        assert token
        await c2.post("/staff/login", data={"email": email, "password": password,
                                            "csrf_token": html.unescape(token[1])})
        r = await c2.get(f"/pos/store-2/pickups/{order.id}")
        assert r.status_code == 404
        assert "Tässä myymälässä ei ole tällaista noutotilausta." in r.text


async def test_handover_shows_the_staff_members_name(db: Database, shop: Shop) -> None:
    """`collected_by` keeps the actor label (who exactly, by id); pages show the name."""
    email = shop.logins["cashier1"][0]
    async with db.reader() as s:
        staff_id = await s.scalar(select(Staff.id).where(Staff.email == email))
        label = f"staff:{staff_id} {email}"
        names = await staff_names(s, [label, "system", "staff:999999999 gone@x.fi",
                                      "Kaisa Kassa", ""])
    assert names == {label: "Cashier1", "system": "system",
                     "staff:999999999 gone@x.fi": "staff:999999999 gone@x.fi",
                     "Kaisa Kassa": "Kaisa Kassa", "": ""}
