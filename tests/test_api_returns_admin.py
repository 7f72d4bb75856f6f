"""Returns as the back office and the till handle them, through /api/v1 on both
databases: the list (state, kind, order, search; scoped to the caller's stores; cursor
pages), a postal return's parcel received with a damaged line, a postal return called
off, an order's returnable lines, and the credit receipt read and e-mailed."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.returns import services as returns
from saumaton.returns.schemas import PostReturnIn, ReturnLineIn
from tests.api_pages import all_pages
from tests.support import Shop, make_variants, open_drawer, staff_actor
from tests.test_fulfilment import paid_web_order
from tests.test_returns import customer, on_hand, till_sale


async def post_return(db: Database, shop: Shop, order_id: int, quantity: int = 1) -> str:
    service = await staff_actor(db, shop, "service")
    async with db.uow() as uow:
        req = await returns.request_post_return(uow, service, order_id, PostReturnIn(
            lines=[ReturnLineIn(line_no=1, quantity=quantity)], reason="too small"),
            channel="service")
        await uow.commit()
    return req.code


async def test_a_postal_return_is_found_received_and_its_receipt_emailed(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    cid = await customer(db)
    order_id, [vid] = await till_sale(db, shop, [2400], qty=2, customer_id=cid)
    code = await post_return(db, shop, order_id, quantity=2)

    r = await client.get(f"/api/v1/orders/{order_id}/returnable",
                         headers=shop.auth("cashier2"))
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["returnable_quantity"] == 0  # both set aside

    r = await client.get("/api/v1/returns", headers=shop.auth("cashier2"),
                         params={"q": code.lower(), "status": "requested"})
    assert r.status_code == 200, r.text
    [found] = r.json()["items"]
    assert found["code"] == code and found["kind"] == "post"
    rid = found["id"]
    r = await client.get("/api/v1/returns", headers=shop.auth("manager"),
                         params={"q": f"{order_id:06d}"})
    assert [x["id"] for x in r.json()["items"]] == [rid]

    # A till's cashier receives only at her own store.
    r = await client.post(f"/api/v1/returns/{rid}/receive", headers=shop.auth("cashier2"),
                          json={"location_id": shop.store1})
    assert r.status_code == 403
    r = await client.post(f"/api/v1/returns/{rid}/receive", headers=shop.auth("cashier2"),
                          json={"location_id": shop.store2, "lines": [
                              {"line_no": 1, "restock": True}, {"line_no": 1,
                                                                "restock": False}]})
    assert r.status_code == 422 and r.json()["field"] == "lines"
    r = await client.post(f"/api/v1/returns/{rid}/receive", headers=shop.auth("cashier2"),
                          json={"location_id": shop.store2, "lines": [
                              {"line_no": 1, "restock": "no"}]})
    assert r.status_code == 422
    stock = await on_hand(db, vid, shop.store2)
    r = await client.post(f"/api/v1/returns/{rid}/receive", headers=shop.auth("cashier2"),
                          json={"location_id": shop.store2,
                                "lines": [{"line_no": 1, "restock": False}]})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["location_id"] == shop.store2
    assert [(x["method"], x["amount_cents"]) for x in done["refunds"]] == [
        ("store_credit", 4800)]
    assert await on_hand(db, vid, shop.store2) == stock  # damaged: written off
    again = await client.post(f"/api/v1/returns/{rid}/receive",
                              headers=shop.auth("cashier2"),
                              json={"location_id": shop.store2})
    assert again.status_code == 200 and again.json()["refunds"] == done["refunds"]

    r = await client.get(f"/api/v1/returns/{rid}/credit-receipt",
                         headers=shop.auth("finance"))
    assert r.status_code == 200, r.text
    assert r.json()["total_cents"] == -4800 and r.json()["order_number"] == f"{order_id:06d}"
    r = await client.post(f"/api/v1/returns/{rid}/credit-receipt/email",
                          headers=shop.auth("cashier1"), json={"email": "a@example.fi"})
    assert r.status_code == 403  # another store's return
    r = await client.post(f"/api/v1/returns/{rid}/credit-receipt/email",
                          headers=shop.auth("cashier2"), json={"email": "not an address"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_email"
    r = await client.post(f"/api/v1/returns/{rid}/credit-receipt/email",
                          headers=shop.auth("cashier2"),
                          json={"email": "Anna@Example.fi", "lang": "en"})
    assert r.status_code == 202, r.text
    assert r.json()["to"] == "anna@example.fi"
    async with db.reader() as s:
        mail = await s.get(OutgoingMail, r.json()["mail_id"])
    assert mail is not None and mail.to_addr == "anna@example.fi"
    assert mail.reference == f"return:{rid}"


async def test_a_postal_return_is_called_off(client: httpx.AsyncClient, shop: Shop,
                                             db: Database) -> None:
    cid = await customer(db)
    order_id, _ = await till_sale(db, shop, [1000], customer_id=cid)
    code = await post_return(db, shop, order_id)
    r = await client.get("/api/v1/returns", headers=shop.auth("service"),
                         params={"q": code})
    rid = r.json()["items"][0]["id"]
    r = await client.post(f"/api/v1/returns/{rid}/cancel", headers=shop.auth("finance"))
    assert r.status_code == 403
    r = await client.post(f"/api/v1/returns/{rid}/cancel", headers=shop.auth("service"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await client.post(f"/api/v1/returns/{rid}/cancel", headers=shop.auth("service"))
    assert r.status_code == 409 and r.json()["code"] == "return_not_open"
    r = await client.post(f"/api/v1/returns/{rid}/receive", headers=shop.auth("manager"),
                          json={"location_id": shop.warehouse})
    assert r.status_code == 409 and r.json()["code"] == "return_not_open"
    r = await client.get(f"/api/v1/returns/{rid}/credit-receipt",
                         headers=shop.auth("manager"))
    assert r.status_code == 409 and r.json()["code"] == "return_not_completed"
    r = await client.get(f"/api/v1/orders/{order_id}/returnable",
                         headers=shop.auth("manager"))
    assert r.json()["lines"][0]["returnable_quantity"] == 1  # returnable again
    r = await client.get("/api/v1/returns", headers=shop.auth("manager"),
                         params={"order_id": order_id, "status": "cancelled"})
    assert [x["id"] for x in r.json()["items"]] == [rid]


async def test_returns_list_pages_scope_and_refusals(client: httpx.AsyncClient, shop: Shop,
                                                     db: Database) -> None:
    cid = await customer(db)
    order_id, _ = await till_sale(db, shop, [500, 600, 700], customer_id=cid)
    owner = await staff_actor(db, shop, "manager")
    made = []
    for line_no, loc in ((1, shop.store1), (2, shop.store2), (3, shop.store1)):
        out, _ = await returns.take_return(db, owner, order_id, returns.ReturnIn(
            location_id=loc, reason="changed mind",
            lines=[ReturnLineIn(line_no=line_no, quantity=1)]))
        made.append(out.id)
    every, pages = await all_pages(client, "/api/v1/returns", shop.auth("manager"), limit=2,
                                   params={"order_id": order_id})
    assert [x["id"] for x in every] == made[::-1] and pages == 2
    mine, _ = await all_pages(client, "/api/v1/returns", shop.auth("cashier1"), limit=2,
                              params={"order_id": order_id})
    assert [x["id"] for x in mine] == [made[2], made[0]]
    r = await client.get("/api/v1/returns", headers=shop.auth("manager"),
                         params={"order_id": order_id, "location_id": shop.store2,
                                 "kind": "in_store"})
    assert [x["id"] for x in r.json()["items"]] == [made[1]]
    # Finance reads orders but takes no returns: the back office's returns pages refuse
    # them, and so does this list.
    r = await client.get("/api/v1/returns", headers=shop.auth("finance"))
    assert r.status_code == 403
    r = await client.get("/api/v1/returns", headers=shop.auth("manager"),
                         params={"status": "lost"})
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = await client.get("/api/v1/returns", headers=shop.auth("manager"),
                         params={"q": "x" * 201})
    assert r.status_code == 422 and r.json()["field"] == "q"
    r = await client.get("/api/v1/returns", headers=shop.auth("manager"),
                         params={"cursor": "eyJpZCI6IngifQ"})  # {"id":"x"}
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    r = await client.post(f"/api/v1/returns/{made[0]}/cancel",
                          headers=shop.auth("manager"))
    assert r.status_code == 409  # an in-store return is done at once
    r = await client.post("/api/v1/returns/999999999/receive", headers=shop.auth("manager"),
                          json={"location_id": shop.warehouse})
    assert r.status_code == 404 and r.json()["code"] == "return_not_found"
    r = await client.get("/api/v1/orders/999999999/returnable", headers=shop.auth("manager"))
    assert r.status_code == 404
    async with db.reader() as s:
        assert (await s.scalar(select(OutgoingMail.id).where(
            OutgoingMail.reference == f"return:{made[0]}"))) is None


async def test_service_desk_starts_a_postal_return_through_the_api(
        client: httpx.AsyncClient, shop: Shop, db: Database, settings: Settings) -> None:
    [v] = await make_variants(db, [3500], stock={shop.warehouse: 5})
    order, _ = await paid_web_order(db, settings, [(int(str(v["id"])), 2)])
    url = f"/api/v1/orders/{order.id}/post-returns"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"lines": [{"line_no": 1, "quantity": 1}], "reason": "too big", "lang": "en"}
    r = await client.post(url, headers=shop.auth("finance") | key, json=body)
    assert r.status_code == 403
    for bad, field in (({**body, "reason": "\u00a0 "}, "reason"),
                       ({**body, "lines": [{"line_no": 1, "quantity": 1}] * 2}, "lines"),
                       ({**body, "lines": [{"line_no": 1, "quantity": "1"}]},
                        "lines.0.quantity"),
                       ({**body, "refund_method": "cash"}, "refund_method")):
        r = await client.post(url, headers=shop.auth("service") | key, json=bad)
        assert r.status_code == 422 and r.json()["field"] == field, (bad, r.text)
    r = await client.post(url, headers=shop.auth("service") | key, json={
        **body, "lines": [{"line_no": 1, "quantity": 3}]})
    assert r.status_code == 409, r.text

    r = await client.post(url, headers=shop.auth("service") | key, json=body)
    assert r.status_code == 201, r.text
    ret = r.json()
    assert ret["kind"] == "post" and ret["status"] == "requested"
    assert ret["channel"] == "api" and r.headers["location"] == f"/api/v1/returns/{ret['id']}"
    again = await client.post(url, headers=shop.auth("service") | key, json=body)
    assert again.status_code == 200 and again.json()["id"] == ret["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post(url, headers=shop.auth("service") | key,
                              json={**body, "reason": "too small"})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    async with db.reader() as s:
        sent = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == ret["code"]))).all()
    assert [(m.kind, m.to_addr) for m in sent] == [("return_started", order.email)]
    assert ret["code"] in sent[0].body_text

    r = await client.post(f"/api/v1/returns/{ret['id']}/receive",
                          headers=shop.auth("manager"), json={"location_id": shop.warehouse})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert [(x["method"], x["amount_cents"]) for x in r.json()["refunds"]] == [
        ("paytrail", 3500)]


async def test_an_exchange_through_the_api(client: httpx.AsyncClient, shop: Shop,
                                           db: Database) -> None:
    order_id, [old] = await till_sale(db, shop, [2490])
    [new] = await make_variants(db, [3290], stock={shop.store1: 3})
    nid = int(str(new["id"]))
    drawer = await open_drawer(db, shop.store1)
    url = f"/api/v1/orders/{order_id}/exchanges"
    body = {"location_id": shop.store1, "lines": [{"line_no": 1, "quantity": 1}],
            "reason": "other shade",
            "sale": {"key": uuid.uuid4().hex, "session_id": drawer,
                     "lines": [{"variant_id": nid, "quantity": 1}],
                     "payments": [{"method": "cash"}], "expected_total_cents": 3290}}
    old_stock, new_stock = await on_hand(db, old, shop.store1), await on_hand(db, nid,
                                                                             shop.store1)
    r = await client.post(url, headers=shop.auth("cashier2"), json=body)
    assert r.status_code == 403  # not her store
    r = await client.post(url, headers=shop.auth("cashier1"), json={**body, "reason": " "})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = await client.post(url, headers=shop.auth("cashier1"),
                          json={**body, "sale": {**body["sale"],
                                                 "expected_total_cents": 3000}})
    assert r.status_code == 409 and r.json()["code"] == "price_changed"

    r = await client.post(url, headers=shop.auth("cashier1"), params={"preview": "true"},
                          json=body)
    assert r.status_code == 200, r.text
    assert r.json()["difference_cents"] == 800
    assert await on_hand(db, nid, shop.store1) == new_stock  # a preview keeps nothing
    r = await client.get(f"/api/v1/orders/{order_id}/returnable",
                         headers=shop.auth("cashier1"))
    assert r.json()["lines"][0]["returnable_quantity"] == 1

    r = await client.post(url, headers=shop.auth("cashier1"), json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["difference_cents"] == 800
    assert out["return"]["exchange_order_id"] == out["sale"]["id"]
    assert [(p["method"], p["amount_cents"]) for p in out["sale"]["payments"]] == [
        ("exchange", 2490), ("cash", 800)]
    assert await on_hand(db, old, shop.store1) == old_stock + 1
    assert await on_hand(db, nid, shop.store1) == new_stock - 1
    again = await client.post(url, headers=shop.auth("cashier1"), json=body)
    assert again.status_code == 200 and again.json()["sale"]["id"] == out["sale"]["id"]
    assert again.headers["idempotent-replayed"] == "true"
