"""/api/v1 reconciliation (both databases): finance imports a Paytrail settlement report
sent as the body and reads the month, the settlement's lines a page at a time and the
discrepancies; enters the bank amount; imports a card terminal report and reads the
card day and the cash status; a manager closes an offline sale's review flag. Each
answer is what the settlement and card-and-cash services hold; roles without the
permission get 403, a manager nothing of another store."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx

from saumaton.cardcash import cash
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.reports.period import Period
from tests.card_cash_builders import TZ, card_sale, card_store, local, terminal_file
from tests.settlement_files import Row, paid_web_order, report_json, row_for
from tests.support import Shop


async def test_settlement_import_month_lines_discrepancies_and_bank_amount(
        client: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop) -> None:
    finance = shop.auth("finance")
    a, b = [await paid_web_order(db, settings, shop, price, date(2023, 5, 2))
            for price in (2500, 1000)]
    sid = f"api-{uuid.uuid4().hex[:8]}"
    data = report_json(sid, "888", date(2023, 5, 9), [
        row_for(a, fee=30), row_for(b, fee=30), Row(990, stamp="stranger", fee=30)])
    r = await client.post("/api/v1/settlements/import", headers={
        **finance, "Content-Type": "application/json"}, content=data)
    assert r.status_code == 201, r.text
    [our_id] = r.json()["imported"]
    r = await client.post("/api/v1/settlements/import", headers={
        **finance, "Content-Type": "application/json"}, content=data)
    assert r.status_code == 200 and r.json()["unchanged"] == [our_id], r.text

    month = (await client.get("/api/v1/settlements", headers=finance,
                              params={"month": "2023-05"})).json()
    [mine] = [x for x in month["settlements"] if x["paytrail_id"] == sid]
    payout = a.amount_cents + b.amount_cents + 990 - 90
    assert (mine["payout_cents"], mine["line_count"], mine["discrepancy_count"]) == (
        payout, 3, 1)
    assert month["payout_cents"] >= payout

    detail = (await client.get(f"/api/v1/settlements/{our_id}", headers=finance,
                               params={"limit": 2})).json()
    assert [ln["state"] for ln in detail["lines"]["items"]] == ["matched", "matched"]
    more = (await client.get(f"/api/v1/settlements/{our_id}", headers=finance,
                             params={"cursor": detail["lines"]["next_cursor"]})).json()
    assert [(ln["state"], ln["cause"]) for ln in more["lines"]["items"]] == [
        ("discrepancy", "settled_unknown")]
    assert more["lines"]["next_cursor"] is None
    found = (await client.get("/api/v1/settlements/discrepancies", headers=finance,
                              params={"month": "2023-05", "limit": 200})).json()
    assert [(d["cause"], d["amount_cents"]) for d in found["items"]
            if d["paytrail_id"] == sid] == [("settled_unknown", 990)]

    r = await client.put(f"/api/v1/settlements/{our_id}/bank-amount", headers=finance,
                         json={"bank_cents": payout - 1})
    assert r.status_code == 200 and r.json()["bank_cents"] == payout - 1
    assert r.json()["payout_ok"] is False
    r = await client.put(f"/api/v1/settlements/{our_id}/bank-amount", headers=finance,
                         json={"bank_cents": "100"})
    assert r.status_code == 422
    r = await client.put("/api/v1/settlements/999999999/bank-amount", headers=finance,
                         json={"bank_cents": None})
    assert r.status_code == 404 and r.json()["code"] == "settlement_not_found"

    # Every error of a bad file at once; nothing imported.
    r = await client.post("/api/v1/settlements/import", headers={
        **finance, "Content-Type": "application/json"}, content=b'[{"amount": "x"}]')
    assert r.status_code == 422 and r.json()["code"] == "invalid_settlement_report"
    assert r.json()["errors"]
    r = await client.post("/api/v1/settlements/import", headers=finance, content=b"")
    assert r.status_code == 422 and r.json()["code"] == "file_required"
    # Who may: the month is chain-wide (not one store's manager's), importing is finance's.
    for who in ("manager1", "cashier1"):
        r = await client.get("/api/v1/settlements", headers=shop.auth(who),
                             params={"month": "2023-05"})
        assert r.status_code == 403, who
    r = await client.post("/api/v1/settlements/import", headers={
        **shop.auth("manager"), "Content-Type": "application/json"}, content=data)
    assert r.status_code == 403
    for month in ("2023-13", "0000-01", "23-01"):
        r = await client.get("/api/v1/settlements", headers=finance, params={"month": month})
        assert r.status_code == 422, month


async def test_card_day_cash_and_review_flags(client: httpx.AsyncClient, db: Database,
                                              shop: Shop) -> None:
    store = await card_store(db)
    day = utcnow().astimezone(TZ).date() - timedelta(days=1)
    offline = await card_sale(db, store, 2500, offline_at=local(day, 10, 0))
    assert "card_unconfirmed" in offline.flags
    owner, finance = shop.auth("owner"), shop.auth("finance")
    one_day = {"from": day.isoformat(), "to": day.isoformat(), "store": store.code}

    flags = (await client.get("/api/v1/flags", headers=owner, params=one_day)).json()
    assert [(f["order_id"], f["flag"], f["state"]) for f in flags["items"]] == [
        (offline.id, "card_unconfirmed", "open")]
    # The Helsinki store's manager sees nothing of this store.
    r = await client.get("/api/v1/flags", headers=shop.auth("manager1"), params=one_day)
    assert r.status_code == 403
    r = await client.post(f"/api/v1/flags/{offline.id}/resolve", headers=shop.auth("manager1"),
                          json={"flag": "card_unconfirmed", "note": "checked"})
    assert r.status_code == 403

    tag = uuid.uuid4().hex[:6]
    data = terminal_file([(day.isoformat(), "10:01:00", f"T{tag}", store.code, "25,00",
                           "purchase", "Visa", "************1234", "A1", f"TX-{tag}")])
    r = await client.post("/api/v1/card-cash/terminal-reports",
                          headers={**shop.auth("manager1"), "Content-Type": "text/csv"},
                          content=data)
    assert r.status_code == 403
    r = await client.post("/api/v1/card-cash/terminal-reports",
                          headers={**finance, "Content-Type": "text/csv"}, content=data)
    assert r.status_code == 201, r.text
    result = r.json()
    assert (result["new"], result["matched"], result["confirmed"]) == (1, 1, 1)
    assert result["days"] == [{"store": store.code, "date": day.isoformat()}]
    r = await client.post("/api/v1/card-cash/terminal-reports",
                          headers={**finance, "Content-Type": "text/csv"},
                          content=b"date;time\r\nnot;a report\r\n")
    assert r.status_code == 422 and r.json()["code"] == "terminal_report_invalid"

    card = (await client.get("/api/v1/card-cash/card-day", headers=finance,
                             params={"date": day.isoformat(), "store": store.code})).json()
    assert [(x["reference"], x["status"], x["order_id"], x["amount_cents"])
            for x in card["rows"]] == [(f"TX-{tag}", "confirmed", offline.id, 2500)]
    assert card["reported"] == [store.code] and card["mismatches"] == []

    # The confirmation closed the flag by itself; the list says so.
    done = (await client.get("/api/v1/flags", headers=owner,
                             params={**one_day, "state": "resolved"})).json()
    assert [(f["flag"], f["automatic"]) for f in done["items"]] == [("card_unconfirmed", True)]
    r = await client.post(f"/api/v1/flags/{offline.id}/resolve", headers=owner,
                          json={"flag": "card_unconfirmed", "note": "checked"})
    assert r.status_code == 409 and r.json()["code"] == "flag_resolved"

    # A price mismatch flag is closed by hand, with a note.
    other = await card_sale(db, store, 1200, offline_at=local(day, 11, 0),
                            unit_price_cents=1000)
    assert "price_mismatch" in other.flags
    for body in ({"flag": "price_mismatch", "note": ""},
                 {"flag": "price_mismatch", "note": "x" * 501},
                 {"flag": "no_such_flag", "note": "x"}):
        r = await client.post(f"/api/v1/flags/{other.id}/resolve", headers=owner, json=body)
        assert r.status_code == 422, body
    r = await client.post(f"/api/v1/flags/{other.id}/resolve", headers=owner,
                          json={"flag": "price_mismatch", "note": "old shelf label"})
    assert r.status_code == 200, r.text
    assert r.json()["note"] == "old shelf label"
    page = (await client.get("/api/v1/flags", headers=owner,
                             params={**one_day, "state": "all", "limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (await client.get("/api/v1/flags", headers=owner, params={
        **one_day, "state": "all", "cursor": page["next_cursor"]})).json()
    assert len(page["items"]) + len(rest["items"]) >= 3

    # The cash status is the cash service's.
    period = {"from": (day - timedelta(days=3)).isoformat(), "to": day.isoformat()}
    body = (await client.get("/api/v1/card-cash/cash", headers=finance, params=period)).json()
    async with db.reader() as s:
        want = await cash.till_days(s, [shop.store1, shop.store2, store.id],
                                    Period(day - timedelta(days=3), day), tz=str(TZ))
    mine = {(t["store"], t["session_id"], t["difference_cents"]) for t in body["sessions"]}
    assert mine >= {(t.store_code, t.session_id, t.difference_cents) for t in want}
    r = await client.get("/api/v1/card-cash/cash", headers=shop.auth("manager1"),
                         params={**period, "store": store.code})
    assert r.status_code == 403
    r = await client.get("/api/v1/card-cash/cash", headers=finance,
                         params={"from": day.isoformat(), "to": "2000-01-01"})
    assert r.status_code == 422


async def test_fetch_from_paytrail_is_finance_s(client: httpx.AsyncClient, shop: Shop) -> None:
    period = {"from": "2026-10-01", "to": "2026-10-31"}
    r = await client.post("/api/v1/settlements/fetch", headers=shop.auth("manager"),
                          json=period)
    assert r.status_code == 403
    r = await client.post("/api/v1/settlements/fetch", headers=shop.auth("finance"),
                          json={"from": "2026-10-31", "to": "2026-10-01"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_period"
    for body in ({**period, "extra": 1}, {"from": 0, "to": "2026-10-01"},
                 {"from": "2020-01-01", "to": "2026-10-01"}):
        r = await client.post("/api/v1/settlements/fetch", headers=shop.auth("finance"),
                              json=body)
        assert r.status_code == 422, (body, r.text)
    # The test app's Paytrail is its simulator, which the in-process client may not
    # reach: either the reports are asked for, or a 502 says why not.
    r = await client.post("/api/v1/settlements/fetch", headers=shop.auth("finance"),
                          json=period)
    assert r.status_code in (202, 502), r.text
    if r.status_code == 502:
        assert r.json()["code"] == "paytrail_unavailable"
    else:
        assert r.json()["found"] >= len(r.json()["requested"])
