"""Gift cards as the back office handles them, through /api/v1 on both databases: the
list (codes masked; kind, status, customer filters; cursor pages), a card closed with
a reason (balance written off, audited), and the liability on unspent cards."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from saumaton.audit.models import AuditEntry
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.giftcards.models import GiftCard
from tests.api_pages import all_pages
from tests.support import Shop


async def issue(client: httpx.AsyncClient, shop: Shop, cents: int) -> dict[str, object]:
    r = await client.post("/api/v1/gift-cards", headers=shop.auth("manager")
                          | {"Idempotency-Key": uuid.uuid4().hex},
                          json={"amount_cents": cents})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_cards_are_listed_masked_and_filtered(client: httpx.AsyncClient, shop: Shop,
                                                   db: Database) -> None:
    cards = [await issue(client, shop, 1000 * (i + 1)) for i in range(5)]
    # The third card ran out of time (the expiry job has not written it off yet).
    async with db.uow() as uow:
        await uow.session.execute(update(GiftCard).where(
            GiftCard.code == cards[2]["code"]).values(expires_at=utcnow() - timedelta(days=1)))
        await uow.commit()
    r = await client.get("/api/v1/gift-cards", headers=shop.auth("cashier1"),
                         params={"limit": 2})
    assert r.status_code == 200, r.text
    newest = r.json()["items"]
    assert [c["masked_code"] for c in newest] == [
        "•••• " + str(c["code"])[-4:] for c in (cards[4], cards[3])]
    assert all("code" not in c for c in newest)  # never the whole code in a list
    assert newest[0]["initial_cents"] == 5000 and newest[0]["status"] == "active"

    every, pages = await all_pages(client, "/api/v1/gift-cards", shop.auth("finance"),
                                   limit=2, params={"kind": "gift_card"})
    ids = [c["id"] for c in every]
    assert ids == sorted(ids, reverse=True) and pages >= 3
    masked = {c["masked_code"]: c for c in every}
    assert masked["•••• " + str(cards[2]["code"])[-4:]]["status"] == "expired"
    assert masked["•••• " + str(cards[2]["code"])[-4:]]["usable_cents"] == 0
    expired, _ = await all_pages(client, "/api/v1/gift-cards", shop.auth("finance"),
                                 limit=50, params={"status": "expired"})
    assert "•••• " + str(cards[2]["code"])[-4:] in {c["masked_code"] for c in expired}
    assert {c["status"] for c in expired} == {"expired"}
    active, _ = await all_pages(client, "/api/v1/gift-cards", shop.auth("finance"),
                                limit=200, params={"status": "active"})
    assert {c["status"] for c in active} == {"active"}

    r = await client.get("/api/v1/gift-cards", headers=shop.auth("finance"),
                         params={"status": "lost"})
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = await client.get("/api/v1/gift-cards")
    assert r.status_code == 401


async def test_a_card_is_closed_with_a_reason(client: httpx.AsyncClient, shop: Shop,
                                             db: Database) -> None:
    card = await issue(client, shop, 2500)
    before = (await client.get("/api/v1/gift-card-liability",
                               headers=shop.auth("finance"))).json()
    url = f"/api/v1/gift-cards/{card['display_code']}/void"
    for who in ("cashier1", "finance", "manager1"):
        r = await client.post(url, headers=shop.auth(who), json={"reason": "lost"})
        assert r.status_code == 403, who
    for blank in ("", "   ", "\u00a0", "\u2003\u2003"):
        r = await client.post(url, headers=shop.auth("manager"), json={"reason": blank})
        assert r.status_code == 422 and r.json()["field"] == "reason", blank
    r = await client.post(url, headers=shop.auth("manager"), json={"reason": "x" * 201})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = await client.post(url, headers=shop.auth("manager"), json={"reason": 5})
    assert r.status_code == 422
    r = await client.post("/api/v1/gift-cards/1234/void", headers=shop.auth("manager"),
                          json={"reason": "lost"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_gift_card_code"

    r = await client.post(url, headers=shop.auth("manager"),
                          json={"reason": "reported stolen"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "void" and r.json()["balance_cents"] == 0
    assert r.json()["entries"][0]["kind"] == "void"
    r = await client.post(url, headers=shop.auth("manager"), json={"reason": "again"})
    assert r.status_code == 409 and r.json()["code"] == "gift_card_void"
    after = (await client.get("/api/v1/gift-card-liability",
                              headers=shop.auth("finance"))).json()
    assert after["gift_card_cents"] <= before["gift_card_cents"] - 2500
    assert after["total_cents"] == after["gift_card_cents"] + after["store_credit_cents"]
    async with db.reader() as s:
        card_id = await s.scalar(select(GiftCard.id).where(GiftCard.code == card["code"]))
        details = (await s.scalars(select(AuditEntry.data).where(
            AuditEntry.action == "giftcard.void", AuditEntry.subject_id == card_id))).all()
    assert [d["reason"] for d in details] == ["reported stolen"]
    voided, _ = await all_pages(client, "/api/v1/gift-cards", shop.auth("finance"),
                                limit=200, params={"status": "void"})
    assert card_id in {c["id"] for c in voided}
    r = await client.get("/api/v1/gift-card-liability", headers=shop.auth("service"))
    assert r.status_code == 200
