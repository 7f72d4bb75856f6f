"""Gift cards through the API on both databases: a manager issues a card (Idempotency-Key
honoured), staff look one up, others are refused; the expiry job writes off expired
cards once; and 20 tills and web orders spending one card worth 5 purchases at once
through a real server: exactly 5 succeed, the balance ends at 0, the rest get 409."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.giftcards import ledger
from saumaton.giftcards.jobs import expire_once
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from tests.support import Server, Shop, make_variants


async def test_manager_issues_a_card_once_per_key(client: httpx.AsyncClient,
                                                  shop: Shop) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = await client.post("/api/v1/gift-cards", headers=shop.auth("manager") | key,
                          json={"amount_cents": 5000})
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["balance_cents"] == card["initial_cents"] == 5000
    assert card["status"] == "active" and card["kind"] == "gift_card"
    assert len(card["code"]) == 16 and ledger.clean_code(card["code"]) == card["code"]
    days = (card["expires_at"][:10], (utcnow() + timedelta(days=3 * 365)).date().isoformat())
    assert days[0] == days[1]  # valid three years by default
    assert r.headers["location"] == f"/api/v1/gift-cards/{card['code']}"
    again = await client.post("/api/v1/gift-cards", headers=shop.auth("manager") | key,
                              json={"amount_cents": 5000})
    assert again.status_code == 200 and again.json()["code"] == card["code"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/api/v1/gift-cards", headers=shop.auth("manager") | key,
                              json={"amount_cents": 9000})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"

    r = await client.get(f"/api/v1/gift-cards/{card['display_code']}",
                         headers=shop.auth("cashier2"))
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["balance_cents"] == 5000 and seen["usable_cents"] == 5000
    assert [(e["kind"], e["amount_cents"]) for e in seen["entries"]] == [("issue", 5000)]


async def test_gift_card_api_refusals(client: httpx.AsyncClient, shop: Shop) -> None:
    r = await client.post("/api/v1/gift-cards", headers=shop.auth("cashier1"),
                          json={"amount_cents": 5000})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await client.post("/api/v1/gift-cards", headers=shop.auth("manager"),
                          json={"amount_cents": 0})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/api/v1/gift-cards/1234567812345678", headers=shop.auth("manager"))
    assert r.status_code == 422 and r.json()["code"] == "invalid_gift_card_code"
    r = await client.get(f"/api/v1/gift-cards/{ledger.new_code()}",
                         headers=shop.auth("finance"))
    assert r.status_code == 404 and r.json()["code"] == "gift_card_not_found"
    r = await client.get(f"/api/v1/gift-cards/{ledger.new_code()}")
    assert r.status_code == 401


async def test_expiry_job_writes_off_expired_cards_once(
    client: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    r = await client.post("/api/v1/gift-cards", headers=shop.auth("manager"),
                          json={"amount_cents": 1234})
    code = r.json()["code"]
    async with db.uow() as uow:
        await uow.session.execute(update(GiftCard).where(GiftCard.code == code)
                                  .values(expires_at=utcnow() - timedelta(minutes=1)))
        await uow.commit()
    ran = await asyncio.gather(expire_once(db), expire_once(db))
    assert sum(ran) >= 1
    r = await client.get(f"/api/v1/gift-cards/{code}", headers=shop.auth("manager"))
    card = r.json()
    assert card["status"] == "expired" and card["balance_cents"] == 0
    assert [e["kind"] for e in card["entries"]] == ["expire", "issue"]


SPENDERS = 20
PURCHASES = 5
PRICE = 1290


async def test_twenty_spends_of_a_card_worth_five_never_go_below_zero(
    server: Server, db: Database, shop: Shop
) -> None:
    [v] = await make_variants(db, [PRICE], stock={shop.store1: 50, shop.store2: 50,
                                                  shop.warehouse: 50})
    async with db.uow() as uow:
        card = await ledger.issue(uow, SYSTEM, PRICE * PURCHASES, valid_days=30)
        await uow.commit()
    where = [("pos-1", "cashier1"), ("pos-2", "cashier2"), ("web", "owner")]
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=httpx.Timeout(90.0),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=0),
    ) as http:
        async def spend(i: int) -> tuple[int, Any]:
            channel, who = where[i % len(where)]
            r = await http.post("/api/v1/orders", headers=shop.auth(who), json={
                "channel": channel, "lines": [{"variant_id": v["id"]}],
                "payments": [{"method": "gift_card", "code": card.code}]})
            return r.status_code, r.json()

        async with asyncio.timeout(120):
            results = await asyncio.gather(*(spend(i) for i in range(SPENDERS)))
    status = Counter(code for code, _ in results)
    assert status == {201: PURCHASES, 409: SPENDERS - PURCHASES}, results
    for code, body in results:
        if code == 409:
            assert body["code"] == "insufficient_gift_card_balance", body
    async with db.reader() as s:
        view = await ledger.card_by_code(s, card.code)
        total = await s.scalar(select(func.sum(GiftCardEntry.amount_cents))
                               .where(GiftCardEntry.gift_card_id == card.id))
    assert view.balance_cents == 0 and total == 0

