"""Card and cash (both databases): the card terminal's daily report confirms the card
payments taken offline and lists every mismatch; importing it again changes nothing; a
bad file is refused whole with every error; cash per till per day comes from real
closed drawer sessions; the offline flags are resolved by a manager of the store with a
note, audited; the pages answer each role as it may."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from saumaton.audit.models import AuditEntry
from saumaton.cardcash import cash, flags, terminal_reports
from saumaton.cardcash.models import FlagResolution, TerminalImport, TerminalRow
from saumaton.cardcash.terminal_reports import TerminalReportInvalid
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, ValidationFailed
from saumaton.db.uow import Database
from saumaton.payments.models import Payment
from saumaton.reports.period import Period
from saumaton.returns import services as returns
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from saumaton.tills.drawer import close_session, open_session
from tests.card_cash_builders import TZ, card_sale, card_store, local, terminal_file
from tests.support import Shop, csrf_of, open_drawer, staff_actor, staff_login, text_of

FINANCE = Actor(label="staff:test finance", name="Fiia Finanssi",
                grants=(RoleGrant("finance", None),))


OWNER = Actor(label="staff:test owner", name="Olli Omistaja",
                       grants=(RoleGrant("owner", None),))


def today() -> date:
    return utcnow().astimezone(TZ).date()


async def _import(db: Database, data: bytes, actor: Actor = FINANCE
                  ) -> terminal_reports.ImportResult:
    async with db.uow() as uow:
        result = await terminal_reports.import_report(uow, actor, "terminal.csv", data,
                                                      tz="Europe/Helsinki")
        await uow.commit()
    return result


async def _status(db: Database, order_id: int) -> str:
    async with db.reader() as s:
        return str(await s.scalar(select(Payment.status).where(Payment.order_id == order_id)))


async def _counts(db: Database) -> tuple[int, ...]:
    async with db.reader() as s:
        return tuple([int(await s.scalar(select(func.count()).select_from(t)) or 0)
                      for t in (TerminalRow, TerminalImport, AuditEntry, FlagResolution)])


async def test_terminal_report_confirms_offline_card_payments_and_lists_mismatches(
        db: Database) -> None:
    store = await card_store(db)
    day = today() - timedelta(days=3)
    a = await card_sale(db, store, 2500, offline_at=local(day, 10, 0))
    c1 = await card_sale(db, store, 4000, offline_at=local(day, 13, 0))
    c2 = await card_sale(db, store, 4000, offline_at=local(day, 13, 20))
    assert "card_unconfirmed" in a.flags and a.payments[0].status == "to_confirm"
    tag = uuid.uuid4().hex[:6]
    data = terminal_file([
        (day.isoformat(), "10:03:10", f"T{tag}", store.code, "25,00", "purchase", "Visa",
         "************1234", "A1B2C3", f"TX-{tag}-1"),
        (day.strftime("%d.%m.%Y"), "13:17:00", f"T{tag}", store.code, "40,00", "purchase",
         "Mastercard", "5413********0042", "", f"TX-{tag}-2"),
        (day.isoformat(), "12:00:00", f"T{tag}", store.code, "9,90", "purchase", "Visa",
         "************9999", "ZZ9", f"TX-{tag}-3"),
    ])
    result = await _import(db, data)
    assert (result.new, result.unchanged, result.matched, result.confirmed) == (3, 0, 2, 2)
    assert [await _status(db, o.id) for o in (a, c1, c2)] == [
        "captured", "to_confirm", "captured"]  # the nearer of the two 40,00 € sales

    async with db.reader() as s:
        day_view = await terminal_reports.card_day(s, [store.id], day, tz="Europe/Helsinki")
        pay_ids = list((await s.scalars(select(Payment.id).where(
            Payment.order_id.in_([a.id, c1.id, c2.id])))).all())
        confirms = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "card_payment.confirm", AuditEntry.subject_type == "payment",
            AuditEntry.subject_id.in_(pay_ids)))).all()
        resolved = (await s.scalars(select(FlagResolution).where(
            FlagResolution.order_id.in_([a.id, c1.id, c2.id])))).all()
        imported = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "terminal_report.import",
            AuditEntry.subject_id == result.import_id))).all()
        flag_audit = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "flag.resolve", AuditEntry.subject_type == "order",
            AuditEntry.subject_id.in_([a.id, c2.id])))).all()
    assert sorted((m.kind, m.terminal_amount_cents, m.till_amount_cents, m.order_id)
                  for m in day_view.mismatches) == [
        ("terminal_only", 990, None, None), ("till_only", None, 4000, c1.id)]
    assert {r.reference: r.status for r in day_view.rows} == {
        f"TX-{tag}-1": "confirmed", f"TX-{tag}-2": "confirmed", f"TX-{tag}-3": "terminal_only"}
    assert sorted(int(e.data["order_id"]) for e in confirms) == sorted([a.id, c2.id])
    assert all(e.actor == FINANCE.label for e in confirms)
    assert sorted((r.order_id, r.flag, r.automatic) for r in resolved) == sorted([
        (a.id, "card_unconfirmed", True), (c2.id, "card_unconfirmed", True)])
    assert any(f"TX-{tag}-1" in r.note for r in resolved)
    assert len(flag_audit) == 2
    assert [(e.actor, e.data["new"], e.data["confirmed"]) for e in imported] == [
        (FINANCE.label, 3, 2)]

    # The same file again, and its rows in another file: nothing changes.
    before = await _counts(db)
    again = await _import(db, data)
    assert (again.import_id, again.new, again.unchanged, again.matched, again.confirmed) == (
        None, 0, 3, 0, 0)
    lines = data.decode("utf-8").splitlines()
    await _import(db, "\r\n".join([lines[0], lines[2], lines[1]]).encode())
    assert await _counts(db) == before
    assert await _status(db, c1.id) == "to_confirm"


async def test_reference_match_with_another_amount_is_listed_not_confirmed(
        db: Database) -> None:
    store = await card_store(db)
    tag = uuid.uuid4().hex[:6]
    d = await card_sale(db, store, 3000, reference=f"REF-{tag}")
    e = await card_sale(db, store, 1500)
    now = utcnow().astimezone(TZ)
    data = terminal_file([
        (now.date().isoformat(), now.strftime("%H:%M:%S"), "T2", store.code, "31,00",
         "purchase", "Visa", "************1111", "", f"REF-{tag}"),
        (now.date().isoformat(), now.strftime("%H:%M:%S"), "T2", store.code, "15,00",
         "purchase", "Visa", "************2222", "", f"OTHER-{tag}"),
    ])
    result = await _import(db, data)
    assert (result.matched, result.confirmed) == (2, 0)  # both were captured online
    async with db.reader() as s:
        view = await terminal_reports.card_day(s, [store.id], now.date(), tz="Europe/Helsinki")
    assert [(m.kind, m.terminal_amount_cents, m.till_amount_cents, m.order_id)
            for m in view.mismatches] == [("amount_differs", 3100, 3000, d.id)]
    assert {r.reference: (r.status, r.matched_by, r.order_id) for r in view.rows} == {
        f"REF-{tag}": ("amount_differs", "reference", d.id),
        f"OTHER-{tag}": ("matched", "amount_time", e.id)}


async def test_card_refunds_are_matched_to_the_terminal_refunds(db: Database) -> None:
    store = await card_store(db)
    tag = uuid.uuid4().hex[:6]
    sale = await card_sale(db, store, 2500, reference=f"P-{tag}")
    manager = Actor(label="staff:m", name="M", grants=(RoleGrant("manager", store.id),))
    refund, _ = await returns.take_return(db, manager, sale.id, ReturnIn(
        location_id=store.id, reason="wrong shade",
        lines=[ReturnLineIn(line_no=1, quantity=1, restock=True)],
        terminal_confirmed=True, terminal_reference=f"RF-{tag}"))
    assert [(r.method, r.amount_cents) for r in refund.refunds] == [("card", 2500)]
    now = utcnow().astimezone(TZ)
    day, at = now.date().isoformat(), now.strftime("%H:%M:%S")
    await _import(db, terminal_file([
        (day, at, "T4", store.code, "25,00", "purchase", "Visa", "****5555", "", f"P-{tag}"),
        (day, at, "T4", store.code, "25,00", "refund", "Visa", "****5555", "", f"RF-{tag}"),
        (day, at, "T4", store.code, "7,00", "refund", "Visa", "****5555", "", f"RX-{tag}")]))
    async with db.reader() as s:
        view = await terminal_reports.card_day(s, [store.id], now.date(), tz="Europe/Helsinki")
    assert {r.reference: (r.kind, r.status, r.order_id) for r in view.rows} == {
        f"P-{tag}": ("purchase", "matched", sale.id),
        f"RF-{tag}": ("refund", "matched", sale.id),
        f"RX-{tag}": ("refund", "terminal_only", None)}
    assert [(m.kind, m.card_kind, m.terminal_amount_cents) for m in view.mismatches] == [
        ("terminal_only", "refund", 700)]


async def test_offline_payment_matched_by_reference_with_another_amount_stays_unconfirmed(
        db: Database) -> None:
    """An amount that differs never confirms: the payment waits, listed as a mismatch."""
    store = await card_store(db)
    day = today() - timedelta(days=2)
    order = await card_sale(db, store, 2000, offline_at=local(day, 9, 0))
    await _import(db, terminal_file([(day.isoformat(), "09:01:00", "T3", store.code, "20,50",
                                      "purchase", "Visa", "****3333", "",
                                      f"R-{uuid.uuid4().hex[:6]}")]))
    assert await _status(db, order.id) == "to_confirm"  # 20,50 € is not 20,00 €: no pair
    async with db.reader() as s:
        view = await terminal_reports.card_day(s, [store.id], day, tz="Europe/Helsinki")
    assert sorted(m.kind for m in view.mismatches) == ["terminal_only", "till_only"]


async def test_a_bad_file_is_refused_whole_with_every_error(db: Database) -> None:
    store = await card_store(db)
    day = today().isoformat()
    before = await _counts(db)
    data = terminal_file([
        (day, "10:00:00", "T1", store.code, "10,00", "purchase", "Visa", "****1234", "",
         "OK-1"),  # a good row: not saved either
        ("2026-13-01", "25:00:00", "T1", store.code, "12.90", "sale", "Visa",
         "4111111111111111", "", "BAD-1"),
        (day, "10:05:00", "T1", "no-such-store", "5,00", "refund", "Visa", "****1234", "",
         "BAD-2"),
        (day, "10:06:00", "T1", store.code, "5,00", "purchase", "", "****1234", "!!",
         "OK-1"),
    ])
    with pytest.raises(TerminalReportInvalid) as exc:
        await _import(db, data)
    assert exc.value.status == 422 and exc.value.code == "terminal_report_invalid"
    assert sorted((e.row, e.field, e.code) for e in exc.value.errors) == sorted([
        (3, "date", "invalid_date"), (3, "time", "invalid_time"),
        (3, "amount", "invalid_amount"), (3, "type", "invalid_type"),
        (3, "masked_pan", "invalid_pan"), (4, "store", "unknown_store"),
        (5, "card_brand", "invalid_brand"), (5, "auth_code", "invalid_auth_code")])
    assert await _counts(db) == before
    with pytest.raises(TerminalReportInvalid) as header:
        await _import(db, b"date;time;amount\r\n2026-01-01;10:00:00;1,00\r\n")
    assert [(e.row, e.code) for e in header.value.errors] == [(1, "bad_header")]
    with pytest.raises(TerminalReportInvalid) as latin:
        await _import(db, terminal_file([]).replace(b"date", "päivä".encode("latin-1")))
    assert [e.code for e in latin.value.errors] == ["not_utf8"]
    cashier = Actor(label="staff:c", grants=(RoleGrant("cashier", store.id),))
    with pytest.raises(Forbidden):
        await _import(db, data, cashier)


async def test_cash_per_till_per_day_from_closed_drawers(db: Database) -> None:
    store = await card_store(db)
    manager = Actor(label="staff:m", name="Maija Manageri",
                    grants=(RoleGrant("manager", store.id),))
    counts = []
    for i, (counted_delta, float_cents) in enumerate(((-30, 15000), (120, 10000))):
        async with db.uow() as uow:
            opened = await open_session(uow, store.cashier, store.id, float_cents,
                                        uuid.uuid4().hex)
            await uow.commit()
        async with db.uow() as uow:
            z = await close_session(uow, manager, opened.id, float_cents + counted_delta,
                                    "" if i == 0 else "found a coin")
            await uow.commit()
        counts.append((opened.id, z.z_number, float_cents, float_cents + counted_delta))
    async with db.reader() as s:
        rows = await cash.till_days(s, [store.id], Period.day(today()), tz="Europe/Helsinki")
    assert [(r.session_id, r.z_number, r.expected_cents, r.counted_cents, r.difference_cents,
             r.closed_by, r.opened_by, r.day, r.z_href) for r in rows] == [
        (sid, zn, exp, cnt, cnt - exp, "Maija Manageri", "Kaisa Kassa", today(),
         f"/pos/{store.code}/reports/{zn}") for sid, zn, exp, cnt in counts]
    [per_day] = cash.totals(rows)
    [per_month] = cash.totals(rows, monthly=True)
    assert (per_day.sessions, per_day.expected_cents, per_day.counted_cents,
            per_day.difference_cents) == (2, 25000, 25090, 90)
    assert per_month.day == today().replace(day=1) and per_month.difference_cents == 90


async def test_flags_are_resolved_by_a_manager_of_the_store_with_a_note(
        db: Database, shop: Shop) -> None:
    sid = await open_drawer(db, shop.store1)
    store = await card_store(db)
    sold_at = utcnow() - timedelta(hours=1)
    sold_on = sold_at.astimezone(TZ).date()  # the sale's business day (not today's, at 0–1 am)
    order = await card_sale(db, store, 2000, offline_at=sold_at,
                            unit_price_cents=1800, location_id=shop.store1, session_id=sid,
                            cashier=await staff_actor(db, shop, "cashier1"))
    assert {"price_mismatch", "card_unconfirmed"} <= set(order.flags)
    tampere = Actor(label="staff:t", grants=(RoleGrant("manager", shop.store2),))
    helsinki = await staff_actor(db, shop, "manager1")

    async def resolve(actor: Actor, note: str, flag: str = "price_mismatch") -> None:
        async with db.uow() as uow:
            await flags.resolve(uow, actor, order.id, flag, note)
            await uow.commit()

    with pytest.raises(Forbidden):
        await resolve(tampere, "checked")
    with pytest.raises(ValidationFailed) as missing:
        await resolve(helsinki, "   ")
    assert (missing.value.code, missing.value.field) == ("note_required", "note")
    with pytest.raises(Forbidden):
        await resolve(await staff_actor(db, shop, "cashier1"), "checked")
    await resolve(helsinki, "The shelf label was old; price list is right.")
    with pytest.raises(Conflict):
        await resolve(helsinki, "again")
    async with db.reader() as s:
        items, _ = await flags.review_items(s, flags.ReviewQuery(
            (shop.store1,), Period.day(sold_on), "", "all"), tz="Europe/Helsinki")
        audit = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "flag.resolve", AuditEntry.subject_id == order.id))).all()
        open_now = await flags.open_count(s, [shop.store1])
    mine = {i.flag: i for i in items if i.order_id == order.id}
    assert mine["price_mismatch"].resolved and mine["price_mismatch"].note.startswith("The")
    assert mine["price_mismatch"].resolved_by == helsinki.label
    assert not mine["card_unconfirmed"].resolved
    assert [(e.actor, e.data["flag"], e.data["automatic"]) for e in audit] == [
        (helsinki.label, "price_mismatch", False)]
    async with db.reader() as s:
        open_items, _ = await flags.review_items(s, flags.ReviewQuery(
            (shop.store1,), Period.day(sold_on), "price_mismatch", "open"),
            tz="Europe/Helsinki")
    assert order.id not in {i.order_id for i in open_items}
    assert open_now >= 1  # card_unconfirmed is still open


# --- pages ---------------------------------------------------------------------------------

async def _client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url="http://test")


async def test_card_cash_page_imports_shows_and_exports(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    store = await card_store(db)
    day = today() - timedelta(days=4)
    order = await card_sale(db, store, 1990, offline_at=local(day, 15, 0))
    tag = uuid.uuid4().hex[:6]
    good = terminal_file([(day.isoformat(), "15:02:00", "T9", store.code, "19,90",
                           "purchase", "Visa", "****4321", "OK", f"W-{tag}"),
                          (day.isoformat(), "16:00:00", "T9", store.code, "5,00",
                           "purchase", "Visa", "****4321", "OK", f"W-{tag}-x")])
    async with await _client(client) as finance, await _client(client) as manager, \
            await _client(client) as cashier:
        token = await staff_login(finance, shop, "finance")
        bad = await finance.post("/backoffice/card-cash", data={"csrf_token": token}, files={
            "file": ("t.csv", terminal_file([("1.1.2026", "x", "T9", store.code, "1",
                                              "purchase", "Visa", "1234", "", "Q")]),
                     "text/csv")}, headers={"Accept-Language": "en"})
        assert bad.status_code == 422
        assert bad.text.count('data-testid="file-error"') == 3  # time, amount, card number
        assert "Row 2, amount:" in bad.text
        ok = await finance.post("/backoffice/card-cash", data={"csrf_token": token},
                                files={"file": ("t.csv", good, "text/csv")})
        assert ok.status_code == 303, ok.text
        page = await finance.get(ok.headers["location"])
        assert page.status_code == 200 and 'data-testid="import-result"' in page.text
        assert await _status(db, order.id) == "captured"
        exported = await finance.get("/backoffice/card-cash", params={
            "day": day.isoformat(), "store": store.code, "format": "csv",
            "table": "mismatches"})
        assert exported.headers["content-type"].startswith("text/csv")
        text = exported.content.decode("utf-8")
        assert text.startswith("\ufeffstore;time_utc;kind;")
        assert f"{store.code};" in text and ";terminal_only;purchase;5,00;;W-" in text
        async with db.uow() as uow:  # the store's drawer closed 30 cents short
            await close_session(uow, OWNER, store.session_id, 9970)
            await uow.commit()
        cash_csv = (await finance.get("/backoffice/card-cash", params={
            "format": "csv", "table": "cash", "store": store.code})).content.decode("utf-8")
        [line] = [ln for ln in cash_csv.splitlines() if ln.startswith(f"{store.code};")]
        assert line.split(";")[3:] == ["1", "test", line.split(";")[5], "Olli Omistaja",
                                       line.split(";")[7], "100,00", "99,70", "-0,30"]
        for table in ("terminal", "cash", "cash_days", "cash_months"):
            r = await finance.get("/backoffice/card-cash", params={"format": "csv",
                                                                    "table": table})
            assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbfstore;")

        await staff_login(manager, shop, "manager1")
        seen = await manager.get("/backoffice/card-cash")
        assert seen.status_code == 200
        assert "Store Helsinki" in seen.text and "Store Tampere" not in seen.text
        assert 'data-testid="terminal-upload"' not in seen.text
        m_token = csrf_of(seen.text)
        refused = await manager.post("/backoffice/card-cash", data={"csrf_token": m_token},
                                     files={"file": ("t.csv", good, "text/csv")})
        assert refused.status_code == 403
        await staff_login(cashier, shop, "cashier1")
        assert (await cashier.get("/backoffice/card-cash")).status_code == 403
        assert (await cashier.get("/backoffice/flags")).status_code == 403


async def test_flags_page_resolves_for_the_managers_own_store_only(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    store = await card_store(db)
    orders = {}
    for where, who in ((shop.store1, "cashier1"), (shop.store2, "cashier2")):
        orders[where] = await card_sale(
            db, store, 2000, offline_at=utcnow() - timedelta(minutes=20), unit_price_cents=1700,
            location_id=where, session_id=await open_drawer(db, where),
            cashier=await staff_actor(db, shop, who))
    h, t = orders[shop.store1].id, orders[shop.store2].id
    async with await _client(client) as manager:
        token = await staff_login(manager, shop, "manager1")
        page = await manager.get("/backoffice/flags", params={"flag": "price_mismatch"})
        assert page.status_code == 200
        assert f'data-testid="flag-{h}-price_mismatch"' in page.text
        assert f'data-testid="flag-{t}-price_mismatch"' not in page.text  # not her store
        empty = await manager.post(f"/backoffice/flags/{h}", data={
                                   "csrf_token": token, "flag": "price_mismatch", "note": " ",
                                   "back": "/backoffice/flags?flag=price_mismatch&state=open"},
                                   headers={"Accept-Language": "en"})
        assert empty.status_code == 422 and 'data-testid="error-note"' in empty.text
        assert "Write what you checked" in empty.text
        assert '<option value="price_mismatch" selected>' in empty.text  # filters kept
        home = (await manager.get("/backoffice/")).text
        open_before = int(text_of(home, "todo-flags-count"))
        assert open_before >= 2  # both of this sale's flags at least
        other = await manager.post(f"/backoffice/flags/{t}", data={
                                   "csrf_token": token, "flag": "price_mismatch", "note": "x"})
        assert other.status_code == 403
        done = await manager.post(f"/backoffice/flags/{h}", data={
            "csrf_token": token, "flag": "price_mismatch", "note": "Old shelf label",
            "back": "/backoffice/flags"})
        assert done.status_code == 303
        home = (await manager.get("/backoffice/")).text
        assert int(text_of(home, "todo-flags-count")) == open_before - 1
        assert 'href="/backoffice/flags"' in home
        resolved = await manager.get("/backoffice/flags", params={"state": "resolved",
                                                                   "flag": "price_mismatch"})
        assert f'data-testid="flag-{h}-price_mismatch"' in resolved.text
        assert "Old shelf label" in resolved.text
        csv_text = (await manager.get("/backoffice/flags", params={
            "state": "resolved", "format": "csv"})).content.decode("utf-8")
        assert csv_text.startswith("\ufeffstore;order;") and "Old shelf label" in csv_text
