"""Races on the last unit through a real server process, with real concurrent HTTP
clients (each its own cookies and connection; both databases — on PostgreSQL the
requests truly overlap in the database):

- two shoppers press *Reserve to try* for the store's last unit at once: exactly one
  gets a code, the other a 409 page that says the store has no unit free any more;
- a shopper reserves the last unit while the store's till sells it: exactly one wins;
  a lost reservation is 409 ``try_unavailable``, a lost sale 409 ``try_held`` with the
  reservation's code (sell it with the reservation, or release it first).

The endless aisle's race (two tills selling another location's last unit) is proven
through the till's endpoint in tests/test_till_aisle.py (test_two_till_clients_race_over_http).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.inventory.services import availability, verify_ledger
from saumaton.tryon.models import TryReservation
from tests.support import Server, Shop, csrf_of, make_variants, text_of
from tests.test_till_api import headers, sale, till

ROUNDS = 3  # each a new last unit: the order of arrival differs from round to round


def _client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=30,
                             limits=httpx.Limits(max_keepalive_connections=0))


async def _level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        loc = (await availability(s, [variant_id]))[variant_id].at(location_id)
        assert await verify_ledger(s) == []
    assert loc is not None
    return loc.on_hand, loc.reserved


async def _tries(db: Database, variant_id: int) -> list[TryReservation]:
    async with db.reader() as s:
        return list((await s.scalars(select(TryReservation).where(
            TryReservation.variant_id == variant_id))).all())


async def _form(c: httpx.AsyncClient, slug: object, vid: int) -> tuple[str, str]:
    url = f"/shop/p/{slug}/try?variant={vid}"
    page = await c.get(url)
    assert page.status_code == 200
    return url, csrf_of(page.text)


def _shopper(n: int) -> dict[str, str]:
    return {"name": f"Kokeilija {n}", "phone": f"040{random.randrange(10**6, 10**7)}"}


async def test_two_shoppers_reserve_the_last_unit_at_once(server: Server, db: Database,
                                                          shop: Shop) -> None:
    for _ in range(ROUNDS):
        [v] = await make_variants(db, [2490], stock={shop.store1: 1})
        vid = int(str(v["id"]))
        async with _client(server) as a, _client(server) as b:
            forms = [await _form(c, v["product_slug"], vid) for c in (a, b)]
            answers = await asyncio.gather(*(
                c.post(url, data={"csrf_token": csrf, "store": str(shop.store1),
                                  **_shopper(n)})
                for n, (c, (url, csrf)) in enumerate(zip((a, b), forms, strict=True))))
        codes = sorted(r.status_code for r in answers)
        assert codes == [303, 409], [r.text[:300] for r in answers]
        lost = next(r for r in answers if r.status_code == 409)
        assert "ei ole enää vapaata" in text_of(lost.text, "try-store-error")
        [won] = await _tries(db, vid)
        assert won.status == "active"
        assert await _level(db, vid, shop.store1) == (1, 1)


async def test_a_reservation_and_a_till_sale_race_for_the_last_unit(
        server: Server, db: Database, shop: Shop) -> None:
    seen: set[str] = set()
    async with _client(server) as cashier:
        cfg = await till(cashier, shop, db, "cashier1", "store-1")
        for n in range(ROUNDS):
            [v] = await make_variants(db, [1990], stock={shop.store1: 1})
            vid = int(str(v["id"]))
            async with _client(server) as shopper:
                url, csrf = await _form(shopper, v["product_slug"], vid)
                reserved, sold = await asyncio.gather(
                    shopper.post(url, data={"csrf_token": csrf, "store": str(shop.store1),
                                            **_shopper(n)}),
                    cashier.post("/pos/store-1/api/sales", headers=headers(cfg),
                                 json=sale(cfg, [{"variant_id": vid}])))
            if reserved.status_code == 303:  # the shopper first: the till is refused
                seen.add("reservation")
                assert sold.status_code == 409, sold.text
                body: dict[str, Any] = sold.json()
                [held] = await _tries(db, vid)
                assert (body["code"], body["field"]) == ("try_held", "lines.0")
                assert body["codes"] == [held.code]
                assert await _level(db, vid, shop.store1) == (1, 1)
            else:  # the till first: the shopper is told the unit is gone
                seen.add("sale")
                assert (reserved.status_code, sold.status_code) == (409, 201), \
                    (reserved.text[:300], sold.text)
                assert "ei ole enää vapaata" in text_of(reserved.text, "try-store-error")
                assert await _tries(db, vid) == []
                assert await _level(db, vid, shop.store1) == (0, 0)
    assert seen  # which won is up to the timing; exactly one did in every round


async def test_the_till_sells_a_held_unit_only_with_its_reservation(
        server: Server, db: Database, shop: Shop) -> None:
    """In order: the unit held for a shopper is refused to a plain sale (nothing
    recorded), sold with its reservation, and then the reservation is closed."""
    [v] = await make_variants(db, [1990], stock={shop.store1: 1})
    vid = int(str(v["id"]))
    async with _client(server) as shopper, _client(server) as cashier:
        url, csrf = await _form(shopper, v["product_slug"], vid)
        r = await shopper.post(url, data={"csrf_token": csrf, "store": str(shop.store1),
                                          **_shopper(0)})
        assert r.status_code == 303
        [held] = await _tries(db, vid)
        cfg = await till(cashier, shop, db, "cashier1", "store-1")
        refused = await cashier.post("/pos/store-1/api/sales", headers=headers(cfg),
                                     json=sale(cfg, [{"variant_id": vid}]))
        assert refused.status_code == 409
        assert refused.json()["code"] == "try_held"
        assert refused.json()["codes"] == [held.code]
        async with db.reader() as s:
            assert await s.scalar(select(func.count()).select_from(TryReservation).where(
                TryReservation.variant_id == vid, TryReservation.status == "active")) == 1
        assert await _level(db, vid, shop.store1) == (1, 1)
        ok = await cashier.post("/pos/store-1/api/sales", headers=headers(cfg),
                                json=sale(cfg, [{"variant_id": vid}], try_ids=[held.id]))
        assert ok.status_code == 201, ok.text
    [after] = await _tries(db, vid)
    assert after.status == "sold" and after.order_id == ok.json()["order"]["id"]
    assert await _level(db, vid, shop.store1) == (0, 0)
