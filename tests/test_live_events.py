"""Live events over server-sent events (GET /api/v1/events) from a real server.

A subscriber connects, the stream says `ready`, a sale is made and the
`stock.changed` event for that variant and location arrives with the new
levels. Staff topics need the permission of their kind: customer topics
`customers.read`, chats a service desk agent. Every wait is bounded; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from saumaton.core.actor import SYSTEM
from saumaton.customers.consents import set_consent
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.orders.schemas import OrderIn
from saumaton.orders.services import place_order
from saumaton.service.chat import new_visitor_token, post_visitor_message
from saumaton.staff.services import actor_for_token, create_api_token, create_staff
from tests.support import Server, Shop, make_variants

WAIT = 15.0  # seconds: the most any single event may take to arrive
BURST = 1500  # more events than one replay page (and than a subscriber's queue holds)


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SseStream:
    """Reads an httpx streaming response as server-sent events."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next_event(self) -> SseEvent:
        event, data, eid = "message", [], None
        async for line in self._lines:
            if line == "":
                if data:
                    return SseEvent(event, "\n".join(data), eid)
                event, eid = "message", None  # a comment-only block (ping)
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                eid = value
        raise AssertionError("event stream ended")

    async def wait_for(self, accept: Callable[[SseEvent], bool]) -> SseEvent:
        async with asyncio.timeout(WAIT):
            while True:
                ev = await self.next_event()
                if accept(ev):
                    return ev

    async def take(self, n: int, accept: Callable[[SseEvent], bool]) -> list[SseEvent]:
        async with asyncio.timeout(WAIT):
            out: list[SseEvent] = []
            while len(out) < n:
                ev = await self.next_event()
                if accept(ev):
                    out.append(ev)
            return out


@asynccontextmanager
async def subscribe(base_url: str, params: dict[str, Any],
                    headers: dict[str, str] | None = None) -> AsyncIterator[SseStream]:
    """Open the event stream and return once the server says the subscription is live."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0, read=None)) as http,
        http.stream("GET", "/api/v1/events", params=params, headers=headers or {}) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = SseStream(r)
        first = await stream.wait_for(lambda e: True)
        assert first.event == "ready", first
        yield stream


def stock_event_at(variant_id: int, location_id: int, on_hand: int | None = None
                   ) -> Callable[[SseEvent], bool]:
    """Matches stock.changed for this variant and location (and level, if given).

    Matching the level matters on SQLite: the server's poller may deliver the
    receipt that stocked the variant (written by this test process a moment
    before subscribing) after the subscription is live.
    """
    def accept(e: SseEvent) -> bool:
        if e.event != "stock.changed":
            return False
        p = e.json["payload"]
        return bool(p["variant_id"] == variant_id and p["location_id"] == location_id
                    and (on_hand is None or p["on_hand"] == on_hand))
    return accept


async def pos_sale(base_url: str, shop: Shop, variant_id: int, quantity: int = 1
                   ) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        r = await http.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
            "channel": "pos-1", "lines": [{"variant_id": variant_id, "quantity": quantity}],
            "payments": [{"method": "cash"}]})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _vid(v: dict[str, object]) -> int:
    value = v["id"]
    assert isinstance(value, int)
    return value


async def test_pos_sale_pushes_stock_changed_to_subscribers(
    server: Server, db: Database, shop: Shop
) -> None:
    [v, other] = await make_variants(db, [700, 800], stock={shop.store1: 5})
    vid = _vid(v)
    params = {"topic": "stock.changed", "variant_id": vid}
    received: list[SseEvent] = []

    def sale_arrived(e: SseEvent) -> bool:
        received.append(e)
        return stock_event_at(vid, shop.store1, on_hand=3)(e)

    async with subscribe(server.base_url, params) as sse:
        await pos_sale(server.base_url, shop, _vid(other))  # filtered out: another variant
        order = await pos_sale(server.base_url, shop, vid, quantity=2)
        ev = await sse.wait_for(sale_arrived)
    # only this variant's events pass the filter, never the other one's
    assert {e.json["payload"]["variant_id"] for e in received} == {vid}
    assert ev.event == "stock.changed"
    assert ev.id is not None and int(ev.id) == ev.json["id"]
    assert ev.json["topic"] == "stock.changed"
    assert ev.json["payload"] == {"variant_id": vid, "location_id": shop.store1, "on_hand": 3,
                                  "reserved": 0, "available": 3, "needs_count": False}
    assert order["lines"][0]["location_id"] == shop.store1


async def test_reconnect_with_last_event_id_replays_missed_events(
    server: Server, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [650], stock={shop.store1: 10})
    vid = _vid(v)
    params = {"topic": "stock.changed", "variant_id": vid}
    at_store = stock_event_at(vid, shop.store1)
    async with subscribe(server.base_url, params) as sse:
        await pos_sale(server.base_url, shop, vid)
        seen = await sse.wait_for(stock_event_at(vid, shop.store1, on_hand=9))
    assert seen.id is not None

    # while disconnected, two more sales happen
    await pos_sale(server.base_url, shop, vid)
    await pos_sale(server.base_url, shop, vid, quantity=3)

    async with subscribe(server.base_url, params, {"Last-Event-ID": seen.id}) as sse:
        missed = await sse.take(2, at_store)
        assert [e.json["payload"]["on_hand"] for e in missed] == [8, 5]
        assert all(int(e.id or 0) > int(seen.id) for e in missed)
        assert int(missed[0].id or 0) < int(missed[1].id or 0)
        # and the stream goes on live after the replay, without repeating anything
        await pos_sale(server.base_url, shop, vid)
        live = await sse.wait_for(at_store)
    assert live.json["payload"]["on_hand"] == 4  # the next event is the new sale, no repeat
    assert int(live.id or 0) > int(missed[1].id or 0)


async def test_replay_finds_missed_events_behind_a_burst_of_other_events(
    server: Server, db: Database, shop: Shop
) -> None:
    """A client that was away while more than a page of other events happened (a busy
    shop, or the server cutting off a subscriber whose 1000-event queue overflowed,
    which is exactly when clients reconnect with Last-Event-ID) still gets its own
    variant's missed events replayed."""
    [v, busy] = await make_variants(db, [500, 600], stock={shop.store1: 10})
    vid, busy_id = _vid(v), _vid(busy)
    params = {"topic": "stock.changed", "variant_id": vid}
    async with subscribe(server.base_url, params) as sse:
        await pos_sale(server.base_url, shop, vid)
        seen = await sse.wait_for(stock_event_at(vid, shop.store1, on_hand=9))
    assert seen.id is not None

    # A burst of another variant's stock changes, then one sale of ours. The burst goes
    # through the unit of work's outbox like any change (1500 real ledger moves would
    # take seconds); only its levels are made up.
    async with db.uow() as uow:
        for n in range(BURST):
            uow.emit("stock.changed", {
                "variant_id": busy_id, "location_id": shop.store2, "on_hand": n,
                "reserved": 0, "available": n, "needs_count": False})
        await uow.commit()
    await pos_sale(server.base_url, shop, vid, quantity=2)

    async with subscribe(server.base_url, params, {"Last-Event-ID": seen.id}) as sse:
        # a live sale after reconnecting marks the end of whatever was replayed
        await pos_sale(server.base_url, shop, vid)
        got: list[SseEvent] = []

        def until_the_live_sale(e: SseEvent) -> bool:
            if not stock_event_at(vid, shop.store1)(e):
                return False
            got.append(e)
            return bool(e.json["payload"]["on_hand"] == 6)

        await sse.wait_for(until_the_live_sale)
    on_hand = [e.json["payload"]["on_hand"] for e in got]
    assert on_hand == [7, 6], (
        f"the sale made while away (on_hand 7, behind {BURST} other events) was not "
        f"replayed; received {on_hand}")
    assert int(seen.id) < int(got[0].id or 0) < int(got[1].id or 0)


async def test_staff_topics_need_staff_and_unknown_topics_are_refused(
    server: Server, db: Database, shop: Shop
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        r = await http.get("/api/v1/events", params={"topic": "order.created"})
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "forbidden"
        r = await http.get("/api/v1/events", params={"topic": ["stock.changed", "nonsense"]})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "unknown_topic" and r.json()["field"] == "topic"

    # with a staff token the same topic streams orders as they are placed
    [v] = await make_variants(db, [300], stock={shop.store1: 3})
    async with subscribe(server.base_url, {"topic": "order.created"}, shop.auth("owner")) as sse:
        order = await pos_sale(server.base_url, shop, _vid(v))
        ev = await sse.wait_for(lambda e: e.event == "order.created"
                                and e.json["payload"]["order_id"] == order["id"])
    p = ev.json["payload"]
    assert (p["channel"], p["location_id"], p["status"], p["total_cents"]) == (
        "pos-1", shop.store1, "completed", 300)


async def test_customer_topics_need_customers_read_and_chats_an_agent(
    server: Server, db: Database, shop: Shop
) -> None:
    async with db.uow() as uow:  # a staff member with no role yet: may read nothing
        nobody = await create_staff(uow, f"norole.{uuid.uuid4().hex[:8]}@test.example",
                                    "No Role", "pw-norole-secret", [])
        token = await create_api_token(uow, nobody.id, "no role")
        await uow.commit()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        r = await http.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"},
                           params={"topic": ["stock.changed", "customer.updated",
                                             "order.cancelled"]})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert r.json()["topics"] == ["customer.updated", "order.cancelled"]
        # a cashier reads customers but does not answer chats
        r = await http.get("/api/v1/events", headers=shop.auth("cashier1"),
                           params={"topic": ["customer.updated", "chat.message"]})
        assert r.status_code == 403 and r.json()["topics"] == ["chat.message"]
        r = await http.get("/api/v1/events", params={"topic": "loyalty.changed"})
        assert r.status_code == 403  # no login at all

    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name="Aino",
                                                          last_name="Tapahtuma"))
        await uow.commit()
    topics = {"topic": ["customer.updated", "loyalty.changed", "nps.answered",
                        "order.cancelled", "refund.ok"]}
    async with subscribe(server.base_url, topics, shop.auth("cashier1")) as sse:
        async with db.uow() as uow:
            assert await set_consent(uow, c.id, "marketing_email", True, "web")
            await uow.commit()
        ev = await sse.wait_for(lambda e: e.event == "customer.updated"
                                and e.json["payload"]["customer_id"] == c.id)
    assert ev.json["payload"] == {"customer_id": c.id, "consent": "marketing_email",
                                  "granted": True}

    visitor = new_visitor_token()
    async with subscribe(server.base_url, {"topic": ["chat.message", "chat.updated"]},
                         shop.auth("service")) as sse:
        async with db.uow() as uow:
            msg = await post_visitor_message(uow, visitor, "Onko teillä näytteitä?", None)
            await uow.commit()
        ev = await sse.wait_for(lambda e: e.event == "chat.message"
                                and e.json["payload"]["message_id"] == msg.id)
    assert ev.json["payload"]["conversation_id"] == msg.conversation_id
    assert ev.json["payload"]["sender"] == "visitor"


async def _postgres_listen_notify_across_two_server_processes(
    server: Server, database_url: str, shop: Shop, vid: int, tmp: Path
) -> None:
    """A subscriber on process A receives the event of a sale made through process B."""
    other = await asyncio.to_thread(Server, database_url, tmp / "second-server")
    try:
        async with subscribe(server.base_url, {"topic": "stock.changed", "variant_id": vid}
                             ) as sse:
            await pos_sale(other.base_url, shop, vid, quantity=2)
            ev = await sse.wait_for(stock_event_at(vid, shop.store1, on_hand=2))
    finally:
        await asyncio.to_thread(other.stop)
    assert ev.json["payload"]["available"] == 2 and ev.json["topic"] == "stock.changed"


async def _sqlite_poller_delivers_a_write_made_outside_the_server(
    server: Server, db: Database, shop: Shop, vid: int
) -> None:
    """SQLite: the sale is committed by this test process, not the server; the
    server's outbox poll must still push it to its subscriber."""
    async with subscribe(server.base_url, {"topic": "stock.changed", "variant_id": vid}) as sse:
        async with db.reader() as s:
            cashier = await actor_for_token(s, shop.tokens["cashier1"])
        order, replayed = await place_order(db, cashier, OrderIn.model_validate({
            "channel": "pos-1", "lines": [{"variant_id": vid, "quantity": 2}],
            "payments": [{"method": "cash"}]}))
        assert not replayed and order.status == "completed"
        ev = await sse.wait_for(stock_event_at(vid, shop.store1, on_hand=2))
    assert ev.json["payload"]["available"] == 2 and ev.json["topic"] == "stock.changed"


async def test_event_written_by_another_process_reaches_subscribers(
    backend: str, server: Server, db: Database, database_url: str, shop: Shop,
    tmp_path: Path,
) -> None:
    [v] = await make_variants(db, [450], stock={shop.store1: 4})
    if backend == "postgresql":
        await _postgres_listen_notify_across_two_server_processes(
            server, database_url, shop, _vid(v), tmp_path)
    else:
        assert backend == "sqlite"
        await _sqlite_poller_delivers_a_write_made_outside_the_server(
            server, db, shop, _vid(v))


async def test_a_product_page_follows_edits_of_its_own_product(
    server: Server, db: Database, shop: Shop
) -> None:
    """The public product page subscribes to product.updated for its product only (it
    reloads itself when the back office edits names, pictures or takes it off sale)."""
    [v] = await make_variants(db, [1200])
    [other] = await make_variants(db, [1300])
    pid, other_pid = int(str(v["product_id"])), int(str(other["product_id"]))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        page = (await http.get(f"/shop/p/{v['product_slug']}")).text
        assert "product.updated" in page and f"product_id={pid}" in page

        params = {"topic": "product.updated", "product_id": pid}
        async with subscribe(server.base_url, params) as sse:  # no login: a shopper
            for target, name in ((other_pid, "Not this one"), (pid, "Uusi nimi")):
                r = await http.patch(f"/api/v1/products/{target}", json={"name": name},
                                     headers=shop.auth("owner"))
                assert r.status_code == 200, r.text
            ev = await sse.wait_for(lambda e: e.event == "product.updated")
    assert ev.json["payload"]["product_id"] == pid  # the other product's edit was filtered
