"""POST /api/v1/orders/{id}/returns, GET /api/v1/returns/{id}, the order's returned
quantities and refunds, and two tills returning the same line at once through a real
server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from saumaton.checkout.services import place_web_order, record_payment_status, start_payment
from saumaton.config import TEST_MERCHANT, Settings
from saumaton.db.uow import Database
from saumaton.payments.models import PaytrailPayment
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from tests.support import Server, Shop, eventually, make_variants
from tests.test_checkout import cmd


async def sale(c: httpx.AsyncClient, db: Database, shop: Shop, qty: int = 2,
               price: int = 1990) -> tuple[int, int]:
    [v] = await make_variants(db, [price], stock={shop.store1: 10, shop.store2: 10})
    r = await c.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": qty}],
        "payments": [{"method": "card", "terminal_confirmed": True}]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), int(str(v["id"]))


def body(qty: int = 1, **kw: object) -> dict[str, object]:
    return {"location": "store-2", "lines": [{"line_no": 1, "quantity": qty}],
            "refund_method": "card", "terminal_confirmed": True, "reason": "wrong shade", **kw}


async def test_return_and_read_it_back(client: httpx.AsyncClient, db: Database,
                                       shop: Shop) -> None:
    order_id, _ = await sale(client, db, shop)
    key = {"Idempotency-Key": f"ret-{uuid.uuid4().hex}"}
    r = await client.post(f"/api/v1/orders/{order_id}/returns", json=body(),
                          headers=shop.auth("cashier2") | key)
    assert r.status_code == 201, r.text
    out = r.json()
    assert r.headers["Location"] == f"/api/v1/returns/{out['id']}"
    assert (out["status"], out["refund_cents"], out["location_id"]) == (
        "completed", 1990, shop.store2)
    assert [(x["method"], x["amount_cents"]) for x in out["refunds"]] == [("card", 1990)]
    assert out["vat"][0]["vat_cents"] > 0
    again = await client.post(f"/api/v1/orders/{order_id}/returns", json=body(),
                              headers=shop.auth("cashier2") | key)
    assert again.status_code == 200 and again.json()["id"] == out["id"]
    got = await client.get(f"/api/v1/returns/{out['id']}", headers=shop.auth("finance"))
    assert got.status_code == 200 and got.json()["code"] == out["code"]
    order = (await client.get(f"/api/v1/orders/{order_id}", headers=shop.auth())).json()
    assert order["lines"][0]["returned_quantity"] == 1
    assert order["status"] == "partly_returned" and order["refunded_cents"] == 1990
    assert [(x["method"], x["return_id"]) for x in order["refunds"]] == [("card", out["id"])]


async def test_bad_returns_are_clear_problems(client: httpx.AsyncClient, db: Database,
                                              shop: Shop) -> None:
    order_id, _ = await sale(client, db, shop, qty=1)
    url = f"/api/v1/orders/{order_id}/returns"
    r = await client.post(url, json=body(2), headers=shop.auth("cashier2"))
    assert r.status_code == 409 and r.json()["code"] == "return_exceeds_sold"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.post(url, json=body(location="nowhere"), headers=shop.auth("cashier2"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_location"
    r = await client.post(url, json=body(refund_method="bitcoin"),
                          headers=shop.auth("cashier2"))
    assert r.status_code == 422
    for bad in (body(reason="   "), {**body(), "lines": [{"line_no": 1, "quantity": 1}] * 2},
                body(0)):
        r = await client.post(url, json=bad, headers=shop.auth("cashier2"))
        assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    r = await client.post(url, json=body(), headers=shop.auth("finance"))
    assert r.status_code == 403
    # the cashier of store 2 may not take a return at store 1
    r = await client.post(url, json=body(location="store-1"), headers=shop.auth("cashier2"))
    assert r.status_code == 403
    r = await client.get("/api/v1/returns/999999999", headers=shop.auth())
    assert r.status_code == 404 and r.json()["code"] == "return_not_found"
    order = (await client.get(f"/api/v1/orders/{order_id}", headers=shop.auth())).json()
    assert order["refunded_cents"] == 0 and order["lines"][0]["returned_quantity"] == 0


async def test_two_tills_return_the_same_line_at_once(
        server: Server, client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    order_id, _ = await sale(client, db, shop, qty=3)  # each till returns 2 of the 3
    url = f"{server.base_url}/api/v1/orders/{order_id}/returns"
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as a, \
            httpx.AsyncClient(timeout=30.0, limits=limits) as b:
        results = await asyncio.gather(*[
            c.post(url, json=body(2), headers=shop.auth("cashier2")
                   | {"Idempotency-Key": f"till-{n}-{uuid.uuid4().hex}"})
            for n, c in enumerate((a, b))])
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409], [r.text for r in results]
    [lost] = [r for r in results if r.status_code == 409]
    assert lost.json()["code"] == "return_exceeds_sold"
    order = (await client.get(f"/api/v1/orders/{order_id}", headers=shop.auth())).json()
    assert order["lines"][0]["returned_quantity"] == 2
    assert order["refunded_cents"] == 3980 and len(order["refunds"]) == 1


async def test_web_order_returned_through_the_api_is_refunded_by_paytrail(
        server: Server, db: Database, shop: Shop, settings: Settings) -> None:
    """End to end: the server's own Paytrail simulator takes the payment; the return's
    Paytrail refund is sent right after the answer and Paytrail's refund callback
    comes back to the server."""
    [v] = await make_variants(db, [2590], stock={shop.warehouse: 2})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=f"api-ret-{uuid.uuid4().hex}")
    sim = server.base_url + "/paytrail-sim"
    async with httpx.AsyncClient(base_url=sim, timeout=30.0) as http:
        paytrail = PaytrailClient(PaytrailConfig(*TEST_MERCHANT, sim), http)
        href = await start_payment(db, paytrail, settings, order)
        assert (await http.post(href.removeprefix(sim) + "/success?callbacks=0")
                ).status_code == 303
    async with db.reader() as s:
        attempt = (await s.scalars(select(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id))).one()
    await record_payment_status(db, settings, attempt.stamp, str(attempt.transaction_id),
                                "ok", order.total_cents)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as c:
        r = await c.post(f"/api/v1/orders/{order.id}/returns", headers=shop.auth("cashier1"),
                         json={"location": "store-1", "reason": "does not suit",
                               "lines": [{"line_no": 1, "quantity": 1}]})
        assert r.status_code == 201, r.text
        [refund] = r.json()["refunds"]
        assert (refund["method"], refund["status"]) == ("paytrail", "due")
        async def refunded() -> dict[str, Any] | None:  # sent after the server's answer
            got = (await c.get(f"/api/v1/orders/{order.id}", headers=shop.auth())).json()
            return got if got["refunds"][0]["status"] == "ok" else None
        got = await eventually(refunded, within=20, what="the Paytrail refund sent")
    # everything back: a full withdrawal, the delivery fee refunded too
    assert got["status"] == "returned"
    assert got["refunds"][0]["amount_cents"] == got["refunded_cents"] == order.total_cents


async def test_the_z_report_page_shows_the_refunds(client: httpx.AsyncClient, db: Database,
                                                   shop: Shop) -> None:
    from saumaton.returns.schemas import ReturnIn, ReturnLineIn
    from saumaton.returns.services import take_return
    from saumaton.tills.drawer import close_session
    from tests.support import open_drawer, staff_actor, staff_login, text_of
    order_id, _ = await sale(client, db, shop, qty=1, price=1999)
    cashier = await staff_actor(db, shop, "cashier2")
    drawer = await open_drawer(db, shop.store2)
    await take_return(db, cashier, order_id, ReturnIn(
        location_id=shop.store2, lines=[ReturnLineIn(line_no=1, quantity=1)],
        refund_method="cash", drawer_session_id=drawer, reason="wrong shade"))
    async with db.uow() as uow:
        report = await close_session(uow, cashier, drawer, 10000 - 2000)
        await uow.commit()
    await staff_login(client, shop, "cashier2")
    page = await client.get(f"/pos/store-2/reports/{report.z_number}")
    assert page.status_code == 200
    assert text_of(page.text, "z-return-count") == "1"
    assert text_of(page.text, "z-cash-refunded") == "20,00 €"
    assert text_of(page.text, "z-expected") == "80,00 €"
