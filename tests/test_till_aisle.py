"""Endless aisle at the till (`tills.aisle` through `tills.sales.sell`), on both databases:
a line that ships from another location sold with home delivery or pickup at the store,
its stock (strict, holds count), the order in the shipping location's fulfilment queue,
the e-mails, the receipt's lines still to come, bad input, offline, and the race of two
tills for the last unit (real concurrent sales on PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.checkout.pickup import hand_over
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, ValidationFailed
from saumaton.customers.addresses import AddressIn, add_address
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.fulfilment.queue import OrderQuery, order_page, pick_list
from saumaton.fulfilment.steps import cancel_order, mark_packed, mark_ready, mark_shipped
from saumaton.inventory.models import (
    StockLevel,
    StockMovement,
    StockReservation,
    StockTransfer,
    StockTransferLine,
)
from saumaton.inventory.services import reserve
from saumaton.inventory.transfers import receive, send_requested
from saumaton.locations.services import channel_by_code
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.services import business_day
from saumaton.payments.terminal import TerminalResult
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from saumaton.returns.services import take_return
from saumaton.tills.aisle import AisleDeliveryIn
from saumaton.tills.catalogue import build_catalogue
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import (
    Server,
    Shop,
    csrf_of,
    make_variants,
    open_drawer,
    staff_actor,
    staff_login,
    text_of,
)
from tests.test_till_api import headers, till

HOME = {"method": "home", "email": "aila.asiakas@example.com", "name": "Aila Asiakas",
        "street": "Hämeenkatu 1", "postcode": "33100", "city": "Tampere"}


def _sale(session_id: int, lines: list[dict[str, Any]], *, delivery: dict[str, Any] | None
          = None, **kw: Any) -> TillSaleIn:
    return TillSaleIn(key=uuid.uuid4().hex, session_id=session_id,
                      lines=[TillLineIn(**ln) for ln in lines],
                      payments=[TillPaymentIn(method="card", terminal_confirmed=True)],
                      delivery=AisleDeliveryIn(**delivery) if delivery else None, **kw)


async def _level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        row = (await s.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
            StockLevel.variant_id == variant_id,
            StockLevel.location_id == location_id))).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _mails(db: Database, reference: str) -> list[tuple[str, str]]:
    async with db.reader() as s:
        return [(str(r[0]), str(r[1])) for r in (await s.execute(
            select(OutgoingMail.kind, OutgoingMail.to_addr)
            .where(OutgoingMail.reference == reference).order_by(OutgoingMail.id))).all()]


async def test_home_delivery_from_the_warehouse(db: Database, shop: Shop,
                                                settings: Settings) -> None:
    here, there = await make_variants(db, [1500, 2900], stock={shop.store2: 3,
                                                               shop.warehouse: 2})
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": here["id"]},
        {"variant_id": there["id"], "quantity": 2, "ship_from": shop.warehouse},
    ], delivery=HOME), settings=settings)
    assert order.status == "paid" and order.delivery is not None
    assert order.delivery.method == "home"
    assert order.delivery.address and order.delivery.address["city"] == "Tampere"
    assert order.email == "aila.asiakas@example.com" and order.receipt_no
    taken, to_come = order.lines
    assert taken.taken_at_sale and taken.location_id == shop.store2
    assert not to_come.taken_at_sale and to_come.location_id == shop.warehouse
    assert to_come.still_to_come(order.delivery) and not taken.still_to_come(order.delivery)
    # The store's unit left now; the warehouse's two left its stock at the sale.
    assert await _level(db, int(here["id"]), shop.store2) == (2, 0)
    assert await _level(db, int(there["id"]), shop.warehouse) == (0, 0)
    assert await _mails(db, order.number) == [("order_confirmation",
                                               "aila.asiakas@example.com")]
    async with db.reader() as s:
        text = str(await s.scalar(select(OutgoingMail.body_text).where(
            OutgoingMail.reference == order.number)))
    # The e-mail marks the line taken in the store; the other is still to come.
    assert text.count("otettu mukaan myymälästä") == 1 and "Hämeenkatu 1" in text

    # The warehouse's fulfilment queue and pick list have it; the store's pick list not.
    manager = await staff_actor(db, shop, "manager")
    async with db.reader() as s:
        page = await order_page(s, manager, OrderQuery(status="open",
                                                      location_id=shop.warehouse),
                                timezone=settings.timezone)
        assert order.number in [r.number for r in page.rows]
        picks = await pick_list(s, shop.warehouse)
        assert order.number in picks.order_numbers
        assert [ln.quantity for ln in picks.lines if ln.variant_id == there["id"]] == [2]
        assert order.number not in (await pick_list(s, shop.store2)).order_numbers
    # A sale paid at the till is not cancelled from the fulfilment pages.
    async with db.uow() as uow:
        with pytest.raises(Conflict) as exc:
            await cancel_order(uow, manager, settings, order.id)
    assert exc.value.code == "paid_at_till"
    await _pack_and_ship(db, manager, settings, order, "JJFI123")


async def _pack_and_ship(db: Database, manager: Actor, settings: Settings, order: Any,
                         tracking: str) -> None:
    """The warehouse packs and ships the order by Posti: it is shipped, and its buyer has
    had the confirmation and the shipping e-mail, nothing else."""
    async with db.uow() as uow:
        await mark_packed(uow, manager, order.id)
        shipped = await mark_shipped(uow, manager, settings, order.id, "Posti", tracking)
        await uow.commit()
    assert shipped.status == "shipped"
    assert [k for k, _ in await _mails(db, order.number)] == ["order_confirmation",
                                                              "order_shipped"]


async def test_pickup_here_with_a_transfer(db: Database, shop: Shop,
                                           settings: Settings) -> None:
    [v] = await make_variants(db, [4200], stock={shop.store1: 1})
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": v["id"], "ship_from": shop.store1},
    ], delivery={"method": "pickup", "email": "noutaja@example.com"}), settings=settings)
    assert order.status == "paid" and order.delivery and order.delivery.method == "pickup"
    assert order.location_id == shop.store2
    assert await _level(db, int(v["id"]), shop.store1) == (1, 1)  # held there to send
    async with db.reader() as s:
        t = await s.scalar(select(StockTransfer).where(StockTransfer.order_id == order.id))
        assert t is not None and t.status == "requested"
        assert (t.from_location_id, t.to_location_id) == (shop.store1, shop.store2)
        transfer_id = int(t.id)
        # Helsinki ships it: its queue lists the order.
        page = await order_page(s, await staff_actor(db, shop, "manager"),
                                OrderQuery(status="open", location_id=shop.store1),
                                timezone=settings.timezone)
        assert order.number in [r.number for r in page.rows]
    manager = await staff_actor(db, shop, "manager")
    async with db.uow() as uow:
        await send_requested(uow, manager, transfer_id)
        await uow.commit()
    assert await _level(db, int(v["id"]), shop.store1) == (0, 0)  # in transit
    async with db.uow() as uow:
        await receive(uow, manager, transfer_id)
        await uow.commit()
    # Held at Tampere for the order: nobody else sells it there.
    assert await _level(db, int(v["id"]), shop.store2) == (1, 1)
    async with db.uow() as uow:
        await mark_ready(uow, manager, settings, order.id)
        await uow.commit()
    async with db.uow() as uow:
        out = await hand_over(uow, cashier, order.id, shop.store2, True)
        await uow.commit()
    assert out.status == "collected"
    assert await _level(db, int(v["id"]), shop.store2) == (0, 0)
    assert [k for k, _ in await _mails(db, order.number)] == ["order_confirmation",
                                                              "pickup_ready"]


async def test_customer_register_fills_the_delivery(db: Database, shop: Shop,
                                                    settings: Settings) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 5})
    tag = uuid.uuid4().hex[:6]
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Rekisteri", last_name="Asiakas", email=f"r-{tag}@example.com"))
        await add_address(uow, c.id, AddressIn(name="Rekisteri Asiakas", street="Katu 2",
                                               postcode="00100", city="Helsinki"))
        await uow.commit()
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(
        sid, [{"variant_id": v["id"], "ship_from": shop.warehouse}],
        delivery={"method": "home"}, customer_id=c.id), settings=settings)
    assert order.email == f"r-{tag}@example.com"
    assert order.delivery and order.delivery.address
    assert order.delivery.address["street"] == "Katu 2"


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"delivery": None}, "delivery_required", "delivery.method"),
    ({"delivery": {**HOME, "email": ""}}, "email_required", "delivery.email"),
    ({"delivery": {**HOME, "street": ""}}, "address_required", "delivery.street"),
    ({"delivery": {**HOME, "postcode": "331"}}, "invalid_postcode", "delivery.postcode"),
    ({"ship_from": 999_999}, "unknown_location", "lines.0.ship_from"),
])
async def test_bad_input_changes_nothing(db: Database, shop: Shop, settings: Settings,
                                         change: dict[str, Any], code: str,
                                         field: str) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    line = {"variant_id": v["id"], "ship_from": change.get("ship_from", shop.warehouse)}
    with pytest.raises(ValidationFailed) as exc:
        await sell(db, cashier, shop.store2, _sale(
            sid, [line], delivery=change.get("delivery", HOME)), settings=settings)
    assert (exc.value.code, exc.value.field) == (code, field)
    assert await _level(db, int(v["id"]), shop.warehouse) == (1, 0)


async def test_offline_refused_and_delivery_alone_refused(db: Database, shop: Shop,
                                                          settings: Settings) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1, shop.store2: 1})
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    with pytest.raises(ValidationFailed) as exc:
        await sell(db, cashier, shop.store2, _sale(sid, [
            {"variant_id": v["id"], "ship_from": shop.warehouse, "unit_price_cents": 990}],
            delivery=HOME, offline=True, sold_at=utcnow()), settings=settings)
    assert exc.value.code == "aisle_needs_network"
    with pytest.raises(ValidationFailed) as exc:
        await sell(db, cashier, shop.store2, _sale(sid, [{"variant_id": v["id"]}],
                                                   delivery=HOME), settings=settings)
    assert exc.value.code == "delivery_without_aisle_lines"


async def test_holds_count_and_sold_out_is_clear(db: Database, shop: Shop,
                                                 settings: Settings) -> None:
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    vid = int(v["id"])
    async with db.uow() as uow:  # a web checkout holds the only unit
        rid = await reserve(uow, SYSTEM, vid, shop.warehouse, 1, reference="web-hold",
                            ttl=timedelta(minutes=15))
        await uow.commit()
    # The till's snapshot shows nothing available at the warehouse.
    async with db.reader() as s:
        snap = await build_catalogue(s, await channel_by_code(s, "pos-2"), utcnow(),
                                     business_day(utcnow()))
    row = next(x for x in snap.body["variants"] if x["id"] == vid)
    assert str(shop.warehouse) not in row.get("stock", {})
    assert {loc["id"] for loc in snap.body["locations"]} >= {shop.store2, shop.warehouse}
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store2, _sale(
            sid, [{"variant_id": vid, "ship_from": shop.warehouse}], delivery=HOME),
            settings=settings)
    assert exc.value.code == "aisle_sold_out" and exc.value.field == "lines.0.ship_from"
    assert exc.value.extra["location_id"] == shop.warehouse
    async with db.reader() as s:
        assert (await s.get(StockReservation, rid)) is not None
    assert await _level(db, vid, shop.warehouse) == (1, 1)


class _CountingTerminal:
    """An integrated card terminal that counts what it was asked to charge."""

    def __init__(self) -> None:
        self.charged: list[int] = []

    async def charge(self, amount_cents: int, sale_key: str) -> TerminalResult:
        self.charged.append(amount_cents)
        return TerminalResult(True, reference="T-1")


async def test_a_sold_out_line_charges_no_card(db: Database, shop: Shop,
                                               settings: Settings) -> None:
    """The other location's units are held before the integrated terminal is asked:
    a sale that finds them gone charges nothing."""
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    vid = int(v["id"])
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    terminal = _CountingTerminal()
    await sell(db, cashier, shop.store2, _sale(
        sid, [{"variant_id": vid, "ship_from": shop.warehouse}], delivery=HOME),
        terminal, settings=settings)
    assert terminal.charged == [990]
    with pytest.raises(Conflict) as exc:
        await sell(db, cashier, shop.store2, _sale(
            sid, [{"variant_id": vid, "ship_from": shop.warehouse}], delivery=HOME),
            terminal, settings=settings)
    assert exc.value.code == "aisle_sold_out"
    assert terminal.charged == [990]  # the second sale charged nothing
    async with db.reader() as s:
        assert await s.scalar(select(StockReservation.id).where(
            StockReservation.variant_id == vid,
            StockReservation.status == "active")) is None


async def test_two_tills_race_for_the_last_unit(db: Database, shop: Shop,
                                                settings: Settings, backend: str) -> None:
    """Two tills (Helsinki and Tampere) sell the warehouse's last unit at the same moment:
    one sale is recorded, the other is refused with aisle_sold_out and writes nothing.
    On PostgreSQL the two run truly at once, each on its own connection."""
    [v] = await make_variants(db, [990], stock={shop.warehouse: 1})
    vid = int(v["id"])
    tills = [(await staff_actor(db, shop, "cashier1"), shop.store1,
              await open_drawer(db, shop.store1)),
             (await staff_actor(db, shop, "cashier2"), shop.store2,
              await open_drawer(db, shop.store2))]

    async def one(actor: Any, store: int, sid: int) -> Any:
        try:
            order, _ = await sell(db, actor, store, _sale(
                sid, [{"variant_id": vid, "ship_from": shop.warehouse}],
                delivery={"method": "pickup" if store == shop.store1 else "home", **(
                    {} if store == shop.store1 else HOME), "email": "k@example.com"}),
                settings=settings)
            return order
        except Conflict as exc:
            return exc

    results = await asyncio.gather(*(one(*t) for t in tills))
    won = [r for r in results if not isinstance(r, Conflict)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].code == "aisle_sold_out"
    # home delivery: sold off the shelf; pickup: held on it until the transfer is sent
    assert await _level(db, vid, shop.warehouse) in ((0, 0), (1, 1))


async def test_two_till_clients_race_over_http(db: Database, shop: Shop,
                                               server: Server) -> None:
    """The same race through the till's JSON endpoint of a real server process: two
    logged-in tills post at once; exactly one 201, the other 409 aisle_sold_out with
    the line, the location and its name, at once."""
    [v] = await make_variants(db, [1290], stock={shop.warehouse: 1})
    vid = int(v["id"])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as c1, \
            httpx.AsyncClient(base_url=server.base_url, timeout=30) as c2:
        tills = [(c1, await till(c1, shop, db, "cashier1", "store-1"), "store-1"),
                 (c2, await till(c2, shop, db, "cashier2", "store-2"), "store-2")]
        bodies = [(c, code, cfg, {
            "key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
            "lines": [{"variant_id": vid, "ship_from": shop.warehouse}],
            "payments": [{"method": "card", "terminal_confirmed": True}],
            "delivery": HOME}) for c, cfg, code in tills]
        answers = await asyncio.gather(*(
            c.post(f"/pos/{code}/api/sales", headers=headers(cfg), json=body)
            for c, code, cfg, body in bodies))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409).json()
    assert refused["code"] == "aisle_sold_out" and refused["field"] == "lines.0.ship_from"
    assert refused["location_id"] == shop.warehouse
    assert refused["location_name"] == "Warehouse"
    assert await _level(db, vid, shop.warehouse) == (0, 0)


async def test_the_till_pages_show_the_aisle_sale(web: httpx.AsyncClient, db: Database,
                                                  shop: Shop) -> None:
    """Through the till's endpoints in process: the snapshot's stock, the customer's
    delivery for the form, the sale, its receipt (what is still to come) and its page
    in the store's web orders (read only there: the warehouse ships it)."""
    [v] = await make_variants(db, [2500], stock={shop.warehouse: 4})
    vid = int(v["id"])
    cfg = await till(web, shop, db, "cashier2", "store-2")
    assert cfg["locationId"] == shop.store2
    assert cfg["strings"]["to_come"] == "Tulossa: {location}"
    snap = (await web.get("/pos/store-2/api/catalogue")).json()
    row = next(x for x in snap["variants"] if x["id"] == vid)
    assert row["stock"] == {str(shop.warehouse): 4}
    r = await web.get("/pos/store-2/api/customers/999999999/delivery")
    assert r.status_code == 200 and r.json()["email"] == ""
    r = await web.post("/pos/store-2/api/sales", headers=headers(cfg), json={
        "key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
        "lines": [{"variant_id": vid, "ship_from": shop.warehouse}],
        "payments": [{"method": "cash", "tendered_cents": 3000}], "delivery": HOME})
    assert r.status_code == 201, r.text
    order = r.json()["order"]
    assert order["status"] == "paid" and order["delivery"]["method"] == "home"
    receipt = (await web.get(r.json()["receipt_url"])).text
    assert 'data-testid="receipt-to-come"' in receipt and "Hämeenkatu 1" in receipt
    page = await web.get(f"/pos/store-2/orders/{order['id']}")
    assert page.status_code == 200
    assert 'data-testid="step-packed"' not in page.text  # the warehouse packs it
    # Bad input: 422 with the code and the field, nothing written.
    r = await web.post("/pos/store-2/api/sales", headers=headers(cfg), json={
        "key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
        "lines": [{"variant_id": vid, "ship_from": shop.warehouse}],
        "payments": [{"method": "cash"}], "delivery": {**HOME, "city": ""}})
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("address_required", "delivery.city")
    assert await _level(db, vid, shop.warehouse) == (3, 0)


async def test_the_emailed_receipt_says_what_is_still_to_come(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    """The receipt the till e-mails has what the printed one has: the lines still to
    come (not the one she took), where they go and the order's number and e-mail;
    a pickup says it is collected at this store."""
    [here, there] = await make_variants(db, [1500, 2500], stock={shop.store2: 2,
                                                                 shop.warehouse: 4})
    cfg = await till(web, shop, db, "cashier2", "store-2")
    mails = []
    for delivery in (HOME, {"method": "pickup", "email": "nouto@example.com"}):
        r = await web.post("/pos/store-2/api/sales", headers=headers(cfg), json={
            "key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
            "lines": [{"variant_id": int(here["id"])},
                      {"variant_id": int(there["id"]), "ship_from": shop.warehouse}],
            "payments": [{"method": "cash", "tendered_cents": 5000}],
            "delivery": delivery})
        assert r.status_code == 201, r.text
        order = r.json()["order"]
        page = (await web.get(r.json()["receipt_url"])).text
        csrf = csrf_of(page[page.index('data-testid="receipt-email-form"'):])
        sent_to = f"kuitti-{uuid.uuid4().hex[:8]}@example.com"
        r = await web.post(f"/pos/store-2/receipt/{order['id']}/email",
                           data={"email": sent_to, "csrf_token": csrf})
        assert r.status_code == 303, r.text
        async with db.reader() as s:
            mail = (await s.scalars(select(OutgoingMail).where(
                OutgoingMail.kind == "receipt", OutgoingMail.to_addr == sent_to))).one()
        mails.append((order, mail))

    (home, mail), (pickup, mail2) = mails
    taken, shipped = (ln["name"] for ln in home["lines"])
    text = mail.body_text
    assert taken in text  # among the items paid for
    to_come = text[text.index("Tulossa myöhemmin:"):]
    assert f"1 × {shipped}" in to_come and taken not in to_come
    assert "Toimitetaan osoitteeseen: Aila Asiakas, Hämeenkatu 1, 33100 Tampere" in to_come
    assert (f"Tilaus {home['number']}: toimituksen tiedot osoitteeseen "
            "aila.asiakas@example.com") in to_come
    assert "Tulossa myöhemmin" in mail.body_html and "Hämeenkatu 1" in mail.body_html
    text2 = mail2.body_text
    assert f"1 × {shipped}" in text2[text2.index("Tulossa myöhemmin:"):]
    assert "Noudetaan tästä myymälästä" in text2 and "Hämeenkatu" not in text2
    assert pickup["number"] in text2


async def test_pickup_here_sent_received_made_ready_and_handed_over(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    """The pickup path through the pages: the warehouse holds the unit for the order
    (its queue lists the order), marks the transfer sent (in transit, once), Tampere
    receives it (held there), the order cannot be made ready before, then is — the
    customer gets the click & collect ready e-mail — and it is handed over at the till."""
    [v] = await make_variants(db, [3900], stock={shop.warehouse: 2})
    vid = int(v["id"])
    cfg = await till(web, shop, db, "cashier2", "store-2")
    address = f"nouto-{uuid.uuid4().hex[:8]}@example.com"
    r = await web.post("/pos/store-2/api/sales", headers=headers(cfg), json={
        "key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
        "lines": [{"variant_id": vid, "ship_from": shop.warehouse}],
        "payments": [{"method": "cash", "tendered_cents": 4000}],
        "delivery": {"method": "pickup", "email": address}})
    assert r.status_code == 201, r.text
    order = r.json()["order"]
    async with db.reader() as s:
        t = (await s.scalars(select(StockTransfer).where(
            StockTransfer.order_id == order["id"]))).one()
    assert (t.status, t.from_location_id, t.to_location_id) == (
        "requested", shop.warehouse, shop.store2)
    assert await _level(db, vid, shop.warehouse) == (2, 1)  # on the shelf, held for it

    async with httpx.AsyncClient(transport=web._transport, base_url="http://test") as office:
        await staff_login(office, shop, "manager")
        queue = (await office.get("/backoffice/orders", params={
            "location": shop.warehouse, "status": "open"})).text
        assert f'data-testid="order-open-{order["number"]}"' in queue
        page = (await office.get(f"/backoffice/orders/{order['id']}")).text
        assert f'href="/backoffice/stock/transfers/{t.id}"' in page
        assert text_of(page, "order-transfer-status") == "Lähetettävä"
        # Not ready before the goods came: 409 with the reason, nothing changed.
        r = await office.post(f"/backoffice/orders/{order['id']}/ready",
                              data={"csrf_token": csrf_of(page)})
        assert r.status_code == 409
        assert "eivät ole vielä saapuneet" in r.text
        # The warehouse marks the transfer sent: off its shelf, in transit.
        page = (await office.get(f"/backoffice/stock/transfers/{t.id}")).text
        assert text_of(page, "transfer-status") == "Lähetettävä"
        r = await office.post(f"/backoffice/stock/transfers/{t.id}/send",
                              data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303, r.text
        assert await _level(db, vid, shop.warehouse) == (1, 0)
        again = await office.post(f"/backoffice/stock/transfers/{t.id}/send",
                                  data={"csrf_token": csrf_of(page)})
        assert again.status_code == 409
        assert "ei enää odoteta" in text_of(again.text, "error-form")
        assert await _level(db, vid, shop.warehouse) == (1, 0)  # sent once
        # Tampere receives it: held there for the order.
        page = (await office.get(f"/backoffice/stock/transfers/{t.id}")).text
        assert text_of(page, "transfer-status") == "Matkalla"
        r = await office.post(f"/backoffice/stock/transfers/{t.id}/receive",
                              data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303, r.text
        assert await _level(db, vid, shop.store2) == (1, 1)
        # Ready: the customer is told, with the pickup code.
        page = (await office.get(f"/backoffice/orders/{order['id']}")).text
        assert text_of(page, "order-transfer-status") == "Vastaanotettu"
        r = await office.post(f"/backoffice/orders/{order['id']}/ready",
                              data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303, r.text
    assert await _mails(db, order["number"]) == [("order_confirmation", address),
                                                 ("pickup_ready", address)]
    cashier = await staff_actor(db, shop, "cashier2")
    async with db.uow() as uow:
        out = await hand_over(uow, cashier, order["id"], shop.store2, True)
        await uow.commit()
    assert out.status == "collected"
    assert await _level(db, vid, shop.store2) == (0, 0)


async def test_the_api_lists_and_sends_a_requested_transfer(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    """/api/v1/stock/transfers: the pickup's transfer listed as requested; sent by the
    sender's staff only, once (409 transfer_not_requested after)."""
    [v] = await make_variants(db, [1200], stock={shop.store1: 1})
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": v["id"], "ship_from": shop.store1},
    ], delivery={"method": "pickup", "email": "api-nouto@example.com"}), settings=settings)
    async with db.reader() as s:
        tid = int(await s.scalar(select(StockTransfer.id).where(
            StockTransfer.order_id == order.id)) or 0)
    r = await client.get("/api/v1/stock/transfers", headers=shop.auth("manager"),
                         params={"status": "requested", "limit": 200})
    assert tid in [t["id"] for t in r.json()["items"]]
    r = await client.post(f"/api/v1/stock/transfers/{tid}/send",
                          headers=shop.auth("cashier2"))
    assert r.status_code == 403  # Tampere's cashier may not send Helsinki's stock
    assert await _level(db, int(v["id"]), shop.store1) == (1, 1)
    r = await client.post(f"/api/v1/stock/transfers/{tid}/send",
                          headers=shop.auth("manager"))
    assert r.status_code == 200 and r.json()["status"] == "in_transit"
    assert await _level(db, int(v["id"]), shop.store1) == (0, 0)
    r = await client.post(f"/api/v1/stock/transfers/{tid}/send",
                          headers=shop.auth("manager"))
    assert (r.status_code, r.json()["code"]) == (409, "transfer_not_requested")
    assert await _level(db, int(v["id"]), shop.store1) == (0, 0)


async def _status(db: Database, order_id: int) -> str:
    async with db.reader() as s:
        return str(await s.scalar(select(Order.status).where(Order.id == order_id)))


async def _in_queue(db: Database, shop: Shop, settings: Settings, number: str,
                    location_id: int) -> tuple[bool, dict[int, int]]:
    """Whether the order is in the location's open queue, and its pick list's units by
    variant for that order."""
    manager = await staff_actor(db, shop, "manager")
    async with db.reader() as s:
        page = await order_page(s, manager, OrderQuery(status="open",
                                                      location_id=location_id),
                                timezone=settings.timezone)
        picks = await pick_list(s, location_id)
    return (number in [r.number for r in page.rows],
            {ln.variant_id: ln.quantity for ln in picks.lines if number in ln.orders})


async def _half_shipped_sale(db: Database, shop: Shop, settings: Settings
                             ) -> tuple[int, int, Actor, Any]:
    """At Tampere's till: one lipstick (15.00) taken home and two foundations (29.00)
    to be sent from the warehouse to the customer's home. Returns the two variants, the
    cashier and the order."""
    here, there = (int(x["id"]) for x in await make_variants(
        db, [1500, 2900], stock={shop.store2: 3, shop.warehouse: 2}))
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": here},
        {"variant_id": there, "quantity": 2, "ship_from": shop.warehouse},
    ], delivery=HOME), settings=settings)
    return here, there, cashier, order


async def test_a_take_home_line_returned_leaves_the_warehouse_line_to_ship(
        db: Database, shop: Shop, settings: Settings) -> None:
    """The customer brings back the line she took home while the warehouse line still
    waits: the order keeps its fulfilment status (paid), stays in the warehouse's queue
    and pick list with that line, is shipped and e-mailed as usual; the return is
    recorded, audited and announced. The shipped line returned later: returned."""
    here, there, cashier, order = await _half_shipped_sale(db, shop, settings)
    ret, _ = await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1)],
        reason="väärä sävy", terminal_confirmed=True))
    assert ret.status == "completed" and ret.refund_cents == 1500
    assert await _status(db, order.id) == "paid"
    assert await _level(db, here, shop.store2) == (3, 0)  # 3 − 1 sold + 1 back
    assert await _in_queue(db, shop, settings, order.number, shop.warehouse) == (
        True, {there: 2})
    async with db.reader() as s:
        events = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "return.completed"))).all()
        audited = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "order", AuditEntry.subject_id == order.id))).all()
    assert [e["return_id"] for e in events if e["order_id"] == order.id] == [ret.id]
    assert "return.created" in audited
    assert "order.partly_returned" not in audited

    manager = await staff_actor(db, shop, "manager")
    await _pack_and_ship(db, manager, settings, order, "JJFI124")
    store_before = await _level(db, there, shop.store2)
    assert (await _in_queue(db, shop, settings, order.number, shop.warehouse))[0] is False

    # one of the shipped units back: partly returned; the other: returned
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="ei sopinut", terminal_confirmed=True))
    assert await _status(db, order.id) == "partly_returned"
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="ei sopinut", terminal_confirmed=True))
    assert await _status(db, order.id) == "returned"
    # shipped goods come back where they were handed in
    assert await _level(db, there, shop.store2) == (store_before[0] + 2, store_before[1])


async def test_a_line_returned_before_it_was_shipped(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    """A warehouse line given back at the till before the warehouse shipped it: its
    units are not picked, and they go back on sale at the warehouse (they never left
    it), not onto the store's shelf. Once nothing is left to send the order leaves the
    queue as partly returned."""
    _, there, cashier, order = await _half_shipped_sale(db, shop, settings)
    assert await _level(db, there, shop.warehouse) == (0, 0)
    store_before = await _level(db, there, shop.store2)
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="ei tarvitse", terminal_confirmed=True))
    assert await _status(db, order.id) == "paid"
    assert await _in_queue(db, shop, settings, order.number, shop.warehouse) == (
        True, {there: 1})
    assert await _level(db, there, shop.warehouse) == (1, 0)
    assert await _level(db, there, shop.store2) == store_before
    # the packer's page marks the returned unit; the return is listed
    await staff_login(web, shop, "manager")
    page = (await web.get(f"/backoffice/orders/{order.id}")).text
    assert "1 palautettu: jätä ne pois" in page and 'data-testid="order-returns"' in page
    assert 'data-testid="step-packed"' in page

    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="ei tarvitse", terminal_confirmed=True))
    assert await _status(db, order.id) == "partly_returned"  # the lipstick is kept
    assert await _in_queue(db, shop, settings, order.number, shop.warehouse) == (False, {})
    assert await _level(db, there, shop.warehouse) == (2, 0)
    assert await _level(db, there, shop.store2) == store_before


async def test_a_pickup_with_lines_returned_is_still_sent_and_handed_over(
        db: Database, shop: Shop, settings: Settings) -> None:
    """A pickup at Tampere: the lipstick taken home and one of three foundations (still
    to send from Helsinki) come back before the transfer is sent. The order stays paid
    in Helsinki's queue with two foundations to pick; they are sent and received (held
    at Tampere); one more comes back while the order is ready: its hold is released,
    nothing booked in twice. The handover takes only the last unit, no lapsed hold,
    and the stock adds up."""
    here, there = (int(x["id"]) for x in await make_variants(
        db, [1500, 4200], stock={shop.store2: 2, shop.store1: 4}))
    cashier = await staff_actor(db, shop, "cashier2")
    manager = await staff_actor(db, shop, "manager")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": here},
        {"variant_id": there, "quantity": 3, "ship_from": shop.store1},
    ], delivery={"method": "pickup", "email": "noutaja@example.com"}), settings=settings)
    on_hand, reserved = await _level(db, there, shop.store2)
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1),
                                        ReturnLineIn(line_no=2, quantity=1)],
        reason="muutti mielensä", terminal_confirmed=True))
    assert await _status(db, order.id) == "paid"
    assert await _in_queue(db, shop, settings, order.number, shop.store1) == (
        True, {there: 2})
    assert await _transfer_of(db, order.id) == ("requested", {there: 2})
    async with db.reader() as s:
        tid = int(await s.scalar(select(StockTransfer.id).where(
            StockTransfer.order_id == order.id)) or 0)
    async with db.uow() as uow:
        await send_requested(uow, manager, tid)
        await uow.commit()
    async with db.uow() as uow:
        await receive(uow, manager, tid)
        await uow.commit()
    assert await _level(db, there, shop.store2) == (on_hand + 2, reserved + 2)
    async with db.uow() as uow:
        await mark_ready(uow, manager, settings, order.id)
        await uow.commit()
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="muutti mielensä", terminal_confirmed=True))
    assert await _status(db, order.id) == "ready"
    # the unit never left the shelf: its hold is released, it is not booked in again
    assert await _level(db, there, shop.store2) == (on_hand + 2, reserved + 1)
    async with db.uow() as uow:
        out = await hand_over(uow, cashier, order.id, shop.store2, True)
        await uow.commit()
    assert out.status == "collected" and "reservation_lapsed" not in out.flags
    assert await _level(db, there, shop.store2) == (on_hand + 1, reserved)
    assert await _level(db, there, shop.store1) == (2, 0)
    assert [k for k, _ in await _mails(db, order.number)] == ["order_confirmation",
                                                              "pickup_ready"]
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="muutti mielensä", terminal_confirmed=True))
    assert await _status(db, order.id) == "returned"
    assert await _level(db, there, shop.store2) == (on_hand + 2, reserved)


async def _transfer_of(db: Database, order_id: int) -> tuple[str, dict[int, int]]:
    async with db.reader() as s:
        t = await s.scalar(select(StockTransfer).where(StockTransfer.order_id == order_id))
        assert t is not None
        lines = (await s.execute(select(StockTransferLine.variant_id,
                                        StockTransferLine.quantity_sent)
                                 .where(StockTransferLine.transfer_id == t.id))).all()
    return str(t.status), {int(v): int(q) for v, q in lines}


async def _holds(db: Database, order_id: int) -> list[tuple[int, int, str]]:
    """The transfer's holds at the sender: (variant, units, status)."""
    async with db.reader() as s:
        tid = await s.scalar(select(StockTransfer.id).where(StockTransfer.order_id == order_id))
        rows = (await s.execute(select(StockReservation.variant_id, StockReservation.quantity,
                                       StockReservation.status)
                                .where(StockReservation.reference == f"transfer:{tid}")
                                .order_by(StockReservation.id))).all()
    return [(int(v), int(q), str(st)) for v, q, st in rows]


async def test_a_return_before_the_transfer_was_sent_calls_it_back(
        db: Database, shop: Shop, settings: Settings) -> None:
    """A pickup line returned at the till before the shipping location sent it: the
    units never left Helsinki's shelf, so they come off the transfer (its hold released)
    instead of onto Tampere's shelf; the last of them cancels the transfer."""
    v, w = (int(x["id"]) for x in await make_variants(db, [4200, 1500],
                                                         stock={shop.store1: 5}))
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": v, "quantity": 2, "ship_from": shop.store1},
        {"variant_id": w, "ship_from": shop.store1},
    ], delivery={"method": "pickup", "email": "noutaja@example.com"}), settings=settings)
    assert await _transfer_of(db, order.id) == ("requested", {v: 2, w: 1})
    assert await _level(db, v, shop.store1) == (5, 2)
    tampere = (await _level(db, v, shop.store2), await _level(db, w, shop.store2))

    # one of the two foundations back: one unit stays on the transfer, held
    ret = await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1)],
        reason="muutti mielensä", terminal_confirmed=True))
    assert ret[0].refund_cents == 4200
    assert await _transfer_of(db, order.id) == ("requested", {v: 1, w: 1})
    assert await _level(db, v, shop.store1) == (5, 1)  # one hold released, nothing moved
    assert sorted(h for h in await _holds(db, order.id) if h[2] == "active") == sorted(
        [(v, 1, "active"), (w, 1, "active")])

    # the rest back: the transfer is cancelled, every hold released
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1),
                                        ReturnLineIn(line_no=2, quantity=1)],
        reason="muutti mielensä", terminal_confirmed=True))
    assert (await _transfer_of(db, order.id))[0] == "cancelled"
    assert all(st != "active" for _, _, st in await _holds(db, order.id))
    assert (await _level(db, v, shop.store1), await _level(db, w, shop.store1)) == (
        (5, 0), (5, 0))  # all sellable in Helsinki again
    # nothing came back to Tampere's shelf: the goods never got there
    assert (await _level(db, v, shop.store2), await _level(db, w, shop.store2)) == tampere
    async with db.reader() as s:
        moved = (await s.scalars(select(StockMovement.kind).where(
            StockMovement.order_id == order.id,
            StockMovement.variant_id.in_([v, w])))).all()
        status = await s.scalar(select(Order.status).where(Order.id == order.id))
        audit = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "stock_transfer",
            AuditEntry.subject_id == select(StockTransfer.id).where(
                StockTransfer.order_id == order.id).scalar_subquery())
            .order_by(AuditEntry.id))).all()
    assert list(moved) == [] and status == "returned"
    assert list(audit) == ["stock.transfer.request", "stock.transfer.reduce",
                           "stock.transfer.cancel"]
    manager = await staff_actor(db, shop, "manager")
    async with db.uow() as uow:  # the sender can no longer send it
        with pytest.raises(Conflict) as exc:
            tid = await uow.session.scalar(select(StockTransfer.id).where(
                StockTransfer.order_id == order.id))
            assert tid is not None
            await send_requested(uow, manager, int(tid))
    assert exc.value.code == "transfer_not_requested"


async def test_a_return_after_the_transfer_was_sent_leaves_it(
        db: Database, shop: Shop, settings: Settings) -> None:
    """Sent already: the goods are on their way and the return takes them back at the
    store as any return; the transfer is not touched."""
    [x] = await make_variants(db, [4200], stock={shop.store1: 3})
    v = int(x["id"])
    cashier = await staff_actor(db, shop, "cashier2")
    sid = await open_drawer(db, shop.store2)
    order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
        {"variant_id": v, "ship_from": shop.store1},
    ], delivery={"method": "pickup", "email": "noutaja@example.com"}), settings=settings)
    async with db.reader() as s:
        tid = await s.scalar(select(StockTransfer.id).where(StockTransfer.order_id == order.id))
    assert tid is not None
    async with db.uow() as uow:
        await send_requested(uow, await staff_actor(db, shop, "manager"), int(tid))
        await uow.commit()
    before = await _level(db, v, shop.store2)
    await take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1)],
        reason="muutti mielensä", terminal_confirmed=True))
    assert await _transfer_of(db, order.id) == ("in_transit", {v: 1})
    assert await _level(db, v, shop.store2) == (before[0] + 1, before[1])
    assert await _level(db, v, shop.store1) == (2, 0)


async def _send_now(db: Database, actor: Any, transfer_id: int) -> str:
    try:
        async with db.uow() as uow:
            await send_requested(uow, actor, transfer_id)
            await uow.commit()
        return "sent"
    except Conflict as exc:
        return exc.code


async def _return_now(db: Database, shop: Shop, actor: Any, order_id: int) -> str:
    await take_return(db, actor, order_id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1)],
        reason="ei tarvitse", terminal_confirmed=True))
    return "returned"


async def test_a_return_and_mark_sent_at_once(db: Database, shop: Shop,
                                              settings: Settings) -> None:
    """The till takes the pickup line back while Helsinki presses *Mark sent* at the same
    moment (on PostgreSQL truly at once, each on its own connection): either the return
    wins (transfer cancelled, the send refused, nothing moved) or the send does (in
    transit, and the return takes the goods back at Tampere as any return). Never both,
    never neither: the stock adds up either way."""
    for _ in range(3):
        [x] = await make_variants(db, [4200], stock={shop.store1: 2})
        v = int(x["id"])
        cashier = await staff_actor(db, shop, "cashier2")
        manager = await staff_actor(db, shop, "manager")
        sid = await open_drawer(db, shop.store2)
        order, _ = await sell(db, cashier, shop.store2, _sale(sid, [
            {"variant_id": v, "ship_from": shop.store1},
        ], delivery={"method": "pickup", "email": "noutaja@example.com"}), settings=settings)
        async with db.reader() as s:
            tid = await s.scalar(select(StockTransfer.id).where(
                StockTransfer.order_id == order.id))
        assert tid is not None

        sent, returned = await asyncio.gather(_send_now(db, manager, int(tid)),
                                              _return_now(db, shop, cashier, order.id))
        assert returned == "returned"
        status, _ = await _transfer_of(db, order.id)
        if sent == "sent":  # the send won: on its way, taken back at Tampere
            assert status == "in_transit"
            assert await _level(db, v, shop.store1) == (1, 0)
            assert await _level(db, v, shop.store2) == (1, 0)
        else:  # the return won: nothing left to send
            assert (sent, status) == ("transfer_not_requested", "cancelled")
            assert await _level(db, v, shop.store1) == (2, 0)
            assert await _level(db, v, shop.store2) == (0, 0)
