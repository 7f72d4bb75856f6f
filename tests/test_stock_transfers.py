"""Transfers in transit, stock counts, deliveries and write-offs through the API and the
core (both databases)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.db.uow import Database
from saumaton.inventory import counts, receiving, transfers
from saumaton.inventory.models import StockCountLine, StockLevel
from saumaton.inventory.services import availability, verify_ledger
from saumaton.staff.services import actor_for_token
from tests.support import Server, Shop, make_variants


async def api(client: httpx.AsyncClient, shop: Shop, path: str, who: str = "manager",
              **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/stock/{path}", json=body, headers=shop.auth(who))


async def on_hand(db: Database, variant_id: int, location_id: int) -> tuple[int, bool]:
    async with db.reader() as s:
        lv = await s.get(StockLevel, (variant_id, location_id))
    return (lv.on_hand, bool(lv.needs_count)) if lv else (0, False)


async def audit_actions(db: Database, subject_type: str, subject_id: int) -> list[str]:
    async with db.reader() as s:
        return list((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id)
            .order_by(AuditEntry.id))).all())


async def test_transfer_in_transit_received_with_a_difference(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 2000], stock={shop.warehouse: 10})
    r = await api(client, shop, "transfers", from_location_id=shop.warehouse,
                  to_location_id=shop.store2, note="weekly",
                  lines=[{"variant_id": a["id"], "quantity": 6},
                         {"variant_id": b["id"], "quantity": 4}])
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["status"] == "in_transit"
    assert [ln["quantity_received"] for ln in t["lines"]] == [None, None]
    # On no shelf: the sender has 4 and 6 left, the receiver nothing yet.
    assert await on_hand(db, int(str(a["id"])), shop.warehouse) == (4, False)
    assert await on_hand(db, int(str(a["id"])), shop.store2) == (0, False)
    async with db.reader() as s:
        av = (await availability(s, [int(str(a["id"]))]))[int(str(a["id"]))]
        transit = await transfers.in_transit(s, variant_ids=[int(str(a["id"]))])
    at2 = av.at(shop.store2)
    assert at2 is not None and at2.available == 0
    assert av.online == 4  # the warehouse ships web orders: 4 left, 6 on the road
    assert transit == {(a["id"], shop.store2): 6}
    # Only the receiving store posts the receipt: Helsinki's manager may not.
    r = await api(client, shop, f"transfers/{t['id']}/receive", who="manager1")
    assert r.status_code == 403
    r = await api(client, shop, f"transfers/{t['id']}/receive", who="cashier2")
    assert r.status_code == 403  # a cashier reads stock, does not receive it
    # 5 of 6 arrived; b in full (left out: all that was sent).
    r = await api(client, shop, f"transfers/{t['id']}/receive", who="manager",
                  lines=[{"variant_id": a["id"], "quantity_received": 5}], note="one broken")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "received"
    assert {ln["variant_id"]: ln["difference"] for ln in got["lines"]} == {a["id"]: -1,
                                                                           b["id"]: 0}
    assert "one broken" in got["note"]
    assert await on_hand(db, int(str(a["id"])), shop.store2) == (5, False)
    assert await on_hand(db, int(str(b["id"])), shop.store2) == (4, False)
    async with db.reader() as s:
        assert await transfers.in_transit(s, variant_ids=[int(str(a["id"]))]) == {}
        assert await verify_ledger(s) == []
    # Received once: a second receipt (or a cancel) is refused and moves nothing.
    again = await api(client, shop, f"transfers/{t['id']}/receive")
    assert again.status_code == 409
    assert again.json()["code"] == "transfer_not_in_transit"
    assert (await api(client, shop, f"transfers/{t['id']}/cancel")).status_code == 409
    assert await on_hand(db, int(str(a["id"])), shop.store2) == (5, False)
    assert await audit_actions(db, "stock_transfer", t["id"]) == [
        "stock.transfer.send", "stock.transfer.receive"]
    one = await client.get(f"/api/v1/stock/transfers/{t['id']}", headers=shop.auth("cashier2"))
    assert one.status_code == 200 and one.json()["status"] == "received"
    listed = await client.get("/api/v1/stock/transfers", headers=shop.auth("manager"),
                              params={"location_id": shop.store2, "status": "received"})
    assert t["id"] in [x["id"] for x in listed.json()["items"]]


async def test_transfer_refuses_more_than_the_sender_has_and_cancel_returns_the_units(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1000], stock={shop.store1: 3})
    r = await api(client, shop, "transfers", from_location_id=shop.store1,
                  to_location_id=shop.store2,
                  lines=[{"variant_id": a["id"], "quantity": 2},
                         {"variant_id": b["id"], "quantity": 4}])
    assert r.status_code == 409
    assert r.json()["code"] == "out_of_stock"
    assert r.json()["variant_id"] == b["id"]
    assert await on_hand(db, int(str(a["id"])), shop.store1) == (3, False)  # nothing moved
    # Helsinki's manager sends from Helsinki, but not from Tampere.
    r = await api(client, shop, "transfers", who="manager1", from_location_id=shop.store2,
                  to_location_id=shop.store1, lines=[{"variant_id": a["id"], "quantity": 1}])
    assert r.status_code == 403
    key = {"Idempotency-Key": f"t-{uuid.uuid4().hex}", **shop.auth("manager1")}
    body = {"from_location_id": shop.store1, "to_location_id": shop.store2,
            "lines": [{"variant_id": a["id"], "quantity": 2}]}
    r = await client.post("/api/v1/stock/transfers", json=body, headers=key)
    assert r.status_code == 201
    replay = await client.post("/api/v1/stock/transfers", json=body, headers=key)
    assert replay.status_code == 200 and replay.json()["id"] == r.json()["id"]
    assert await on_hand(db, int(str(a["id"])), shop.store1) == (1, False)  # sent once
    tid = r.json()["id"]
    assert (await api(client, shop, f"transfers/{tid}/cancel", who="cashier1")).status_code \
        == 403
    c = await api(client, shop, f"transfers/{tid}/cancel", who="manager1")
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    assert await on_hand(db, int(str(a["id"])), shop.store1) == (3, False)
    assert (await api(client, shop, f"transfers/{tid}/receive")).status_code == 409
    async with db.reader() as s:
        assert await transfers.in_transit(s, variant_ids=[int(str(a["id"]))]) == {}
        assert await verify_ledger(s) == []
    bad = await api(client, shop, "transfers", from_location_id=shop.store1,
                    to_location_id=shop.store1, lines=[{"variant_id": a["id"], "quantity": 1}])
    assert bad.status_code == 422 and bad.json()["code"] == "same_location"


async def test_partial_count_posts_only_the_variances_and_clears_the_flag(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    a, b, c = await make_variants(db, [1000, 1000, 1000], stock={shop.store1: 5})
    # A sale into negative flags c... here an adjustment flags it below zero.
    r = await api(client, shop, "adjustments", variant_id=c["id"], location_id=shop.store1,
                  quantity=-7, reason="test")
    assert r.json()["needs_count"] is True
    r = await api(client, shop, "counts", who="cashier1", location_id=shop.store1,
                  scope="shelf A3")
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["status"] == "open" and r.json()["full"] is False
    for _ in range(3):  # three scans of a
        s = await api(client, shop, f"counts/{cid}/lines", who="cashier1", code=a["ean"])
        assert s.status_code == 200, s.text
    assert s.json()["counted"] == 3
    s = await api(client, shop, f"counts/{cid}/lines", who="cashier1", variant_id=b["id"],
                  counted=5)
    assert s.json()["counted"] == 5
    s = await api(client, shop, f"counts/{cid}/lines", who="cashier1", variant_id=c["id"],
                  counted=1)
    unknown = await api(client, shop, f"counts/{cid}/lines", who="cashier1", code="0000")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_code"
    # Tampere's cashier may not scan into Helsinki's count.
    assert (await api(client, shop, f"counts/{cid}/lines", who="cashier2",
                      code=a["ean"])).status_code == 403
    view = (await client.get(f"/api/v1/stock/counts/{cid}", headers=shop.auth("cashier1")))
    lines = {ln["variant_id"]: ln for ln in view.json()["lines"]}
    assert (lines[a["id"]]["expected"], lines[a["id"]]["counted"],
            lines[a["id"]]["variance"]) == (5, 3, -2)
    assert lines[b["id"]]["variance"] == 0
    assert (lines[c["id"]]["expected"], lines[c["id"]]["variance"]) == (-2, 3)
    # A cashier collects the counts; posting is a stock write (the manager).
    assert (await api(client, shop, f"counts/{cid}/post", who="cashier1")).status_code == 403
    p = await api(client, shop, f"counts/{cid}/post", who="manager1")
    assert p.status_code == 200, p.text
    assert p.json()["status"] == "posted"
    assert await on_hand(db, int(str(a["id"])), shop.store1) == (3, False)
    assert await on_hand(db, int(str(b["id"])), shop.store1) == (5, False)
    assert await on_hand(db, int(str(c["id"])), shop.store1) == (1, False)  # flag cleared
    moves = (await client.get("/api/v1/stock/movements", headers=shop.auth("manager"),
                              params={"variant_id": b["id"]})).json()["items"]
    assert [m["kind"] for m in moves] == ["receipt"]  # no variance: no movement
    async with db.reader() as s:
        stored = {v: e for v, e in (await s.execute(
            select(StockCountLine.variant_id, StockCountLine.expected)
            .where(StockCountLine.count_id == cid))).all()}
        assert await verify_ledger(s) == []
    assert stored == {a["id"]: 5, b["id"]: 5, c["id"]: -2}
    late = await api(client, shop, f"counts/{cid}/lines", who="cashier1", code=a["ean"])
    assert late.status_code == 409 and late.json()["code"] == "count_not_open"
    assert await audit_actions(db, "stock_count", cid) == ["stock.count.open",
                                                           "stock.count.post"]


async def test_full_count_takes_what_was_not_counted_as_zero(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    # A location of its own: a full count covers every variant with stock there.
    from saumaton.locations.models import Location
    async with db.uow() as uow:
        loc = Location(code=f"back-{uuid.uuid4().hex[:6]}", name="Back room", kind="warehouse")
        uow.session.add(loc)
        await uow.session.flush()
        loc_id = loc.id
        uow.emit("settings.changed", {"keys": ["locations"]})  # processes' copies
        await uow.commit()
    a, b = await make_variants(db, [1000, 1000], stock={loc_id: 4})
    r = await api(client, shop, "counts", who="owner", location_id=loc_id, full=True)
    cid = r.json()["id"]
    await api(client, shop, f"counts/{cid}/lines", who="owner", variant_id=a["id"], counted=4)
    view = (await client.get(f"/api/v1/stock/counts/{cid}", headers=shop.auth("owner"))).json()
    lines = {ln["variant_id"]: ln for ln in view["lines"]}
    assert lines[b["id"]] == {"variant_id": b["id"], "sku": b["sku"], "expected": 4,
                              "counted": 0, "variance": -4, "scanned": False}
    p = await api(client, shop, f"counts/{cid}/post", who="owner")
    assert p.status_code == 200
    assert await on_hand(db, int(str(a["id"])), loc_id) == (4, False)
    assert await on_hand(db, int(str(b["id"])), loc_id) == (0, False)
    # Manager of Helsinki only: no count elsewhere.
    r = await api(client, shop, "counts", who="manager1", location_id=shop.store2, full=True)
    assert r.status_code == 403


async def test_cancelled_count_moves_nothing(client: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    [a] = await make_variants(db, [1000], stock={shop.store2: 2})
    cid = (await api(client, shop, "counts", who="cashier2", location_id=shop.store2,
                     scope="till shelf")).json()["id"]
    await api(client, shop, f"counts/{cid}/lines", who="cashier2", code=a["ean"])
    r = await api(client, shop, f"counts/{cid}/cancel", who="cashier2")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await api(client, shop, f"counts/{cid}/post")).status_code == 409
    assert await on_hand(db, int(str(a["id"])), shop.store2) == (2, False)


async def test_concurrent_scans_lose_nothing(server: Server, db: Database, shop: Shop) -> None:
    """Four scanners (separate HTTP connections to a real server, so separate database
    connections) scan the same two items at once: every scan counts."""
    a, b = await make_variants(db, [1000, 1000], stock={shop.store1: 1})
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits,
                                 timeout=60) as c:
        r = await c.post("/api/v1/stock/counts", headers=shop.auth("cashier1"),
                         json={"location_id": shop.store1, "scope": "concurrent"})
        cid = r.json()["id"]

        async def scanner(codes: list[str]) -> None:
            for code in codes:
                s = await c.post(f"/api/v1/stock/counts/{cid}/lines",
                                 headers=shop.auth("cashier1"), json={"code": code})
                assert s.status_code == 200, s.text

        plan = [[str(a["ean"]), str(b["ean"])] * 10 for _ in range(4)]
        await asyncio.gather(*(scanner(p) for p in plan))
        view = (await c.get(f"/api/v1/stock/counts/{cid}",
                            headers=shop.auth("cashier1"))).json()
    assert {ln["variant_id"]: ln["counted"] for ln in view["lines"]} == {a["id"]: 40,
                                                                         b["id"]: 40}


async def test_delivery_and_write_off(db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1000])
    async with db.reader() as s:
        manager1 = await actor_for_token(s, shop.tokens["manager1"])
        cashier1 = await actor_for_token(s, shop.tokens["cashier1"])
        assert manager1 is not None and cashier1 is not None
        assert (await receiving.variant_by_code(s, str(a["ean"])))[0] == a["id"]
    async with db.uow() as uow:
        await receiving.receive_delivery(uow, manager1, shop.store1,
                                         [(int(str(a["id"])), 2), (int(str(b["id"])), 3),
                                          (int(str(a["id"])), 1)],
                                         reference="DN-1", supplier="Lumene")
        await receiving.write_off(uow, manager1, int(str(b["id"])), shop.store1, 1,
                                  reason="broken")
        await uow.commit()
    assert await on_hand(db, int(str(a["id"])), shop.store1) == (3, False)
    assert await on_hand(db, int(str(b["id"])), shop.store1) == (2, False)
    assert await audit_actions(db, "variant", int(str(b["id"]))) == ["stock.write_off"]
    import pytest

    from saumaton.core.errors import Forbidden, ValidationFailed
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await receiving.receive_delivery(uow, manager1, shop.store2,
                                             [(int(str(a["id"])), 1)], reference="x")
        with pytest.raises(Forbidden):
            await receiving.write_off(uow, cashier1, int(str(a["id"])), shop.store1, 1,
                                      reason="x")
        with pytest.raises(ValidationFailed):
            await receiving.write_off(uow, manager1, int(str(a["id"])), shop.store1, 1,
                                      reason=" ")
        with pytest.raises(ValidationFailed):
            await receiving.receive_delivery(uow, manager1, shop.store1, [], reference="x")
    async with db.reader() as s:
        c = await counts.list_counts(s, manager1)
        assert all(x.location_id == shop.store1 for x in c)


async def test_receive_and_cancel_at_the_same_moment_only_one_wins(
        server: Server, db: Database, shop: Shop) -> None:
    [a] = await make_variants(db, [1000], stock={shop.warehouse: 5})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as c:
        r = await c.post("/api/v1/stock/transfers", headers=shop.auth("manager"), json={
            "from_location_id": shop.warehouse, "to_location_id": shop.store1,
            "lines": [{"variant_id": a["id"], "quantity": 5}]})
        tid = r.json()["id"]
        answers = await asyncio.gather(
            c.post(f"/api/v1/stock/transfers/{tid}/receive", headers=shop.auth("manager"),
                   json={}),
            c.post(f"/api/v1/stock/transfers/{tid}/cancel", headers=shop.auth("manager")),
            c.post(f"/api/v1/stock/transfers/{tid}/receive", headers=shop.auth("owner"),
                   json={}))
    codes = sorted(x.status_code for x in answers)
    assert codes == [200, 409, 409], [x.text for x in answers]
    won = next(x.json() for x in answers if x.status_code == 200)
    total = (await on_hand(db, int(str(a["id"])), shop.warehouse))[0] + \
        (await on_hand(db, int(str(a["id"])), shop.store1))[0]
    assert total == 5  # moved once, either way
    assert (await on_hand(db, int(str(a["id"])), shop.store1))[0] == (
        5 if won["status"] == "received" else 0)
    async with db.reader() as s:
        assert await verify_ledger(s) == []


async def test_delivery_and_write_off_through_the_api(client: httpx.AsyncClient, db: Database,
                                                      shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1000])
    headers = {"Idempotency-Key": f"d-{uuid.uuid4().hex}", **shop.auth("manager1")}
    body = {"location_id": shop.store1, "reference": "DN-7", "supplier": "Lumene",
            "lines": [{"variant_id": a["id"], "quantity": 4},
                      {"variant_id": b["id"], "quantity": 2}]}
    r = await client.post("/api/v1/stock/deliveries", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert [x["on_hand"] for x in r.json()] == [4, 2]
    again = await client.post("/api/v1/stock/deliveries", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert await on_hand(db, int(str(a["id"])), shop.store1) == (4, False)
    r = await client.post("/api/v1/stock/deliveries", json={**body, "location_id":
                                                            shop.store2},
                          headers=shop.auth("manager1"))
    assert r.status_code == 403
    r = await api(client, shop, "write-offs", who="manager1", variant_id=a["id"],
                  location_id=shop.store1, quantity=1, reason="broken")
    assert r.status_code == 201 and r.json()["on_hand"] == 3
    r = await api(client, shop, "write-offs", who="cashier1", variant_id=a["id"],
                  location_id=shop.store1, quantity=1, reason="broken")
    assert r.status_code == 403
    r = await api(client, shop, "write-offs", variant_id=a["id"], location_id=shop.store1,
                  quantity=1, reason="")
    assert r.status_code == 422 and r.json()["field"] == "reason"
    moves = (await client.get("/api/v1/stock/movements", headers=shop.auth("manager"),
                              params={"variant_id": a["id"]})).json()["items"]
    assert [(m["kind"], m["quantity"], m["reference"]) for m in moves] == [
        ("write_off", -1, ""), ("receipt", 4, "DN-7")]
