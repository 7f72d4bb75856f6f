"""Gift cards in the back office (both databases): a manager issues a card and finds it
by its code with every entry; closing it needs a reason, writes off what was left and
stops it from paying; a cashier may look a card up but not issue or close one; the
outstanding total is what the cards still hold."""

from __future__ import annotations

import uuid

import httpx

from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.giftcards import ledger
from tests.support import Shop, csrf_of, staff_login, text_of


async def test_manager_issues_finds_and_closes_a_card(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    await staff_login(web, shop, "manager")
    page = await web.get("/backoffice/gift-cards")
    assert page.status_code == 200 and 'data-testid="nav-gift-cards"' in page.text
    before = text_of(page.text, "outstanding")

    # Bad amounts are refused next to the field, in Finnish; nothing is issued.
    for bad in ("", "abc", "0", "-5", "20000"):
        r = await web.post("/backoffice/gift-cards", data={
            "csrf_token": csrf_of(page.text), "amount": bad, "key": uuid.uuid4().hex})
        assert r.status_code == 422, bad
        assert "Anna summa väliltä" in text_of(r.text, "error-amount")
    assert text_of((await web.get("/backoffice/gift-cards")).text, "outstanding") == before

    key = uuid.uuid4().hex
    form = {"csrf_token": csrf_of(page.text), "amount": "25,50", "email": "anna@example.fi",
            "key": key}
    r = await web.post("/backoffice/gift-cards", data=form)
    assert r.status_code == 303
    again = await web.post("/backoffice/gift-cards", data=form)  # a double submit
    assert again.headers["location"] == r.headers["location"]
    card_page = await web.get(r.headers["location"])
    assert "Kortti on luotu" in text_of(card_page.text, "notice")
    assert text_of(card_page.text, "card-balance") == "25,50 €"
    code = text_of(card_page.text, "card-display-code").replace(" ", "")
    assert ledger.clean_code(code) == code

    # Spent partly at a till: the entry shows; then found by the code as typed.
    async with db.uow() as uow:
        await ledger.spend(uow, SYSTEM, code, 500, order_id=None)
        await uow.commit()
    found = await web.get("/backoffice/gift-cards", params={"code": ledger.display_code(code)})
    assert text_of(found.text, "card-balance") == "20,50 €"
    assert "Käytetty" in text_of(found.text, "card-entries")
    typo = code[:-1] + ("1" if code[-1] == "0" else "0")  # the check digit fails
    wrong = await web.get("/backoffice/gift-cards", params={"code": typo})
    assert wrong.status_code == 422 and "16 numeroa" in text_of(wrong.text, "error-code")

    # Closing needs a reason; then what was left is written off and it cannot pay.
    r = await web.post("/backoffice/gift-cards/void", data={
        "csrf_token": csrf_of(found.text), "code": code, "reason": "   "})
    assert r.status_code == 422 and "Kerro, miksi" in text_of(r.text, "error-reason")
    r = await web.post("/backoffice/gift-cards/void", data={
        "csrf_token": csrf_of(found.text), "code": code, "reason": "Asiakas kadotti kortin"})
    assert r.status_code == 303
    closed = await web.get(r.headers["location"])
    assert text_of(closed.text, "card-status") == "suljettu"
    assert text_of(closed.text, "card-balance") == "0,00 €"
    assert 'data-testid="void-form"' not in closed.text
    r = await web.post("/backoffice/gift-cards/void", data={
        "csrf_token": csrf_of(found.text), "code": code, "reason": "again"})
    assert r.status_code == 409 and "jo suljettu" in text_of(r.text, "error-void")
    async with db.uow() as uow:
        try:
            await ledger.spend(uow, SYSTEM, code, 100, order_id=None)
        except Exception as exc:
            assert getattr(exc, "code", "") == "gift_card_void"
        else:
            raise AssertionError("a closed card paid")
    async with db.reader() as s:
        card = await ledger.card_by_code(s, code)
        rows = await ledger.entries(s, card.id)
    assert [(e.kind, e.amount_cents) for e in rows] == [
        ("void", -2050), ("spend", -500), ("issue", 2550)]
    assert sum(e.amount_cents for e in rows) == card.balance_cents == 0


async def test_cashier_looks_up_but_does_not_issue_or_close(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    async with db.uow() as uow:
        card = await ledger.issue(uow, SYSTEM, 1000, valid_days=30)
        await uow.commit()
    await staff_login(web, shop, "cashier1")
    page = await web.get("/backoffice/gift-cards", params={"code": card.code})
    assert page.status_code == 200
    assert text_of(page.text, "card-balance") == "10,00 €"
    assert 'data-testid="issue-form"' not in page.text
    assert 'data-testid="void-form"' not in page.text
    r = await web.post("/backoffice/gift-cards", data={
        "csrf_token": csrf_of(page.text), "amount": "10", "key": uuid.uuid4().hex})
    assert r.status_code == 403
    r = await web.post("/backoffice/gift-cards/void", data={
        "csrf_token": csrf_of(page.text), "code": card.code, "reason": "no"})
    assert r.status_code == 403
    async with db.reader() as s:
        assert (await ledger.card_by_code(s, card.code)).balance_cents == 1000
