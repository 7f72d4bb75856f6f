"""The settlement pages: upload a report (errors next to the file, all at once, in the
page's language), a settlement's lines and payout check, the month, the discrepancies,
CSV exports; Paytrail's report callback (token, idempotent); and "fetch from Paytrail"
end to end on a real server with payments and a refund made through the simulator."""

from __future__ import annotations

import csv
import html as html_mod
import io
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import date

import httpx
from sqlalchemy import func, select

from saumaton.checkout.services import place_web_order, record_payment_status, start_payment
from saumaton.config import TEST_MERCHANT, Settings
from saumaton.csvio.files import format_euros
from saumaton.db.uow import Database
from saumaton.payments.models import PaytrailPayment, Refund
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.settlements.models import (
    PaytrailSettlement,
    SettlementLine,
    SettlementReportRequest,
)
from tests.settlement_files import Row, paid_web_order, report_csv, report_json, row_for
from tests.support import Server, Shop, csrf_of, eventually, make_variants, staff_login, text_of
from tests.test_checkout import cmd

BASE = "/backoffice/settlements"


async def _upload(c: httpx.AsyncClient, data: bytes, name: str, bank: str = "",
                  lang: str = "fi") -> httpx.Response:
    page = await c.get(f"{BASE}/import?lang={lang}")
    assert page.status_code == 200
    return await c.post(f"{BASE}/import", data={"csrf_token": csrf_of(page.text),
                                                "bank_amount": bank},
                        files={"file": (name, data, "application/octet-stream")})


async def test_upload_shows_the_settlement_and_its_discrepancies(
        web: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop) -> None:
    day = date(2025, 9, 2)
    a, b = [await paid_web_order(db, settings, shop, price, day) for price in (2500, 1000)]
    data = report_csv("page-9", "777", date(2025, 9, 9), [
        row_for(a, fee=30), row_for(b, fee=30), Row(990, stamp="stranger", fee=30)])
    await staff_login(web, shop, "finance")
    r = await _upload(web, data, "settlement.csv", bank="40,00")
    assert r.status_code == 303, r.text
    page = await web.get(r.headers["location"])
    assert text_of(page.text, "notice") == "Tilitys tuotiin."
    assert page.text.count('data-state="matched"') == 2
    assert 'data-cause="settled_unknown"' in page.text
    payout = a.amount_cents + b.amount_cents + 990 - 90
    assert text_of(page.text, "payout") == f"{payout // 100},{payout % 100:02d} €"
    # the bank amount entered differs from the payout: shown as such
    diff = 4000 - payout
    assert text_of(page.text, "payout-state") == (
        f"Tilityksen tarkistus: tilitys poikkeaa {'-' if diff < 0 else ''}"
        f"{abs(diff) // 100},{abs(diff) % 100:02d} €.")
    # the same file again: nothing changes
    again = await _upload(web, data, "settlement.csv")
    assert again.status_code == 303 and "unchanged=1" in again.headers["location"]
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(PaytrailSettlement).where(
            PaytrailSettlement.paytrail_id == "page-9")) == 1
    # CSV of every line: BOM, ';', decimal comma
    sid = r.headers["location"].split("/")[-1].split("?")[0]
    got = await web.get(f"{BASE}/{sid}?format=csv")
    assert got.headers["content-type"].startswith("text/csv")
    assert got.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(got.text.lstrip("\ufeff")), delimiter=";"))
    assert [(x["kind"], x["state"], x["cause"], x["amount"], x["payment_method_fee"])
            for x in rows] == [
        ("payment", "matched", "", format_euros(a.amount_cents), "0,30"),
        ("payment", "matched", "", format_euros(b.amount_cents), "0,30"),
        ("payment", "discrepancy", "settled_unknown", "9,90", "0,30")]
    # the month and the discrepancy list (with the CSV behind it)
    month = await web.get(f"{BASE}?month=2025-09&lang=en")
    assert text_of(month.text, "fig-discrepancies") == "1"
    assert text_of(month.text, "year-2025-09").startswith("September 2025")
    year = await web.get(f"{BASE}?month=2025-09&format=year-csv")
    [sep] = [x for x in csv.DictReader(io.StringIO(year.text.lstrip("\ufeff")), delimiter=";")
             if x["month"] == "2025-09"]
    assert (sep["settlements"], sep["fees"]) == ("1", "0,90")
    assert 'data-testid="settlement-page-9"' in month.text
    disc = await web.get(f"{BASE}/discrepancies?month=2025-09&format=csv")
    lines = list(csv.DictReader(io.StringIO(disc.text.lstrip("\ufeff")), delimiter=";"))
    assert [(x["cause"], x["settlement"], x["stamp"]) for x in lines] == [
        ("settled_unknown", "page-9", "stranger")]


async def test_a_bad_file_is_refused_with_every_error_in_the_pages_language(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    data = (b"amount;status;stamp;entryDate;settlementId\r\n"
            b"12,345;Paid and settled;a;01-03-2025;bad-1\r\n"
            b"10,00;Done;b;31-06-2019;bad-1\r\n")
    await staff_login(web, shop, "finance")
    for lang, expected in (("fi", ["Rivi 2, amount: ”12,345” ei ole euromäärä enintään "
                                   "kahdella desimaalilla.",
                                   "Rivi 3, status: ”Done” ei ole mikään Paytrailin tiloista.",
                                   "Rivi 3, entryDate: ”31-06-2019” ei ole päivämäärä "
                                   "(PP-KK-VVVV)."]),
                           ("en", ["Row 2, amount: “12,345” is not an amount in euros with "
                                   "at most two decimals.",
                                   "Row 3, status: “Done” is not one of Paytrail's statuses.",
                                   "Row 3, entryDate: “31-06-2019” is not a date "
                                   "(DD-MM-YYYY)."])):
        r = await _upload(web, data, "bad.csv", lang=lang)
        assert r.status_code == 422
        items = re.findall(r"<li>(.*?)</li>", r.text.split('data-testid="error-file"')[1]
                           .split("</ul>")[0])
        assert [html_mod.unescape(x) for x in items] == expected
        assert 'aria-describedby="file-error"' in r.text
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(PaytrailSettlement).where(
            PaytrailSettlement.paytrail_id == "bad-1")) == 0


async def test_who_may_see_and_import(web: httpx.AsyncClient, shop: Shop) -> None:
    for who, month, importing in (("finance", 200, 200), ("owner", 200, 200),
                                  ("manager", 200, 403), ("manager1", 403, 403),
                                  ("cashier1", 403, 403)):
        web.cookies.clear()
        await staff_login(web, shop, who)
        assert (await web.get(BASE)).status_code == month, who
        assert (await web.get(f"{BASE}/import")).status_code == importing, who


async def test_report_callback_needs_its_token_and_imports_once(
        client: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop) -> None:
    paid = await paid_web_order(db, settings, shop, 1800, date(2025, 10, 1))
    token = secrets.token_urlsafe(32)
    async with db.uow() as uow:
        uow.session.add(SettlementReportRequest(token=token, paytrail_id="cb-1",
                                                reference="555", settled_on=date(2025, 10, 6),
                                                requested_by="test"))
        await uow.commit()
    body = report_json("cb-1", "555", date(2025, 10, 6), [row_for(paid, fee=25)])
    url = f"/paytrail/settlement-report/{token}"
    assert (await client.post("/paytrail/settlement-report/" + "x" * 43,
                              content=body)).status_code == 404
    r1 = await client.post(url, content=body)
    r2 = await client.post(url, content=body)  # Paytrail re-sends
    assert (r1.status_code, r1.text, r2.status_code, r2.text) == (
        200, "imported", 200, "already imported")
    async with db.reader() as s:
        settlement = (await s.scalars(select(PaytrailSettlement).where(
            PaytrailSettlement.paytrail_id == "cb-1"))).one()
        req = (await s.scalars(select(SettlementReportRequest).where(
            SettlementReportRequest.token == token))).one()
        lines = (await s.scalars(select(SettlementLine).where(
            SettlementLine.settlement_id == settlement.id))).all()
    assert settlement.source == "api" and settlement.reference == "555"
    assert (req.status, req.settlement_id) == ("imported", settlement.id)
    assert [(x.paytrail_payment_id, x.state) for x in lines] == [(paid.payment_id, "matched")]


async def _paid_at_the_simulator(server: Server, db: Database, settings: Settings,
                                 shop: Shop, price: int) -> PaytrailPayment:
    """A web order paid at the server's own Paytrail simulator."""
    [v] = await make_variants(db, [price], stock={shop.warehouse: 2})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=f"settle-{secrets.token_hex(8)}")
    sim = server.base_url + "/paytrail-sim"
    async with httpx.AsyncClient(base_url=sim, timeout=30.0) as http:
        paytrail = PaytrailClient(PaytrailConfig(*TEST_MERCHANT, sim), http)
        href = await start_payment(db, paytrail, settings, order)
        assert (await http.post(href.removeprefix(sim) + "/success?callbacks=0",
                                data={"provider": "osuuspankki"})).status_code == 303
    async with db.reader() as s:
        attempt = (await s.scalars(select(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id))).one()
    await record_payment_status(db, settings, attempt.stamp, str(attempt.transaction_id),
                                "ok", order.total_cents)
    return attempt


async def test_fetch_from_paytrail_end_to_end(server: Server, db: Database, shop: Shop,
                                              settings: Settings) -> None:
    """Two web orders paid at the simulator, one returned and refunded through Paytrail;
    finance fetches the settlements: the simulator's report arrives at the callback and
    these payments and the refund are matched, with the simulator's fees."""
    first = await _paid_at_the_simulator(server, db, settings, shop, 1590)
    second = await _paid_at_the_simulator(server, db, settings, shop, 2290)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as c:
        r = await c.post(f"/api/v1/orders/{first.order_id}/returns",
                         headers=shop.auth("cashier1"),
                         json={"location": "store-1", "reason": "does not suit",
                               "lines": [{"line_no": 1, "quantity": 1}]})
        assert r.status_code == 201, r.text

        async def refunded() -> Refund | None:
            async with db.reader() as s:
                refund = (await s.scalars(select(Refund).where(
                    Refund.order_id == first.order_id))).one()
            return refund if refund.status == "ok" else None
        refund = await eventually(refunded, within=20, what="the Paytrail refund sent")
        await staff_login(c, shop, "finance")
        page = await c.get(f"{BASE}/import")
        today = date.today().isoformat()
        r = await c.post(f"{BASE}/fetch", data={"csrf_token": csrf_of(page.text),
                                               "since": today, "until": today})
        assert r.status_code == 200, r.text
        assert "raporttia pyydetty" in text_of(r.text, "notice")

        async def imported() -> list[SettlementLine]:
            async with db.reader() as s:
                return list((await s.scalars(select(SettlementLine).where(
                    (SettlementLine.paytrail_payment_id.in_([first.id, second.id]))
                    | (SettlementLine.refund_id == refund.id)))).all())
        lines = await eventually(lambda: _at_least(imported, 3), within=20,
                                 what="the report imported")
        # fetching again asks nothing new for what is imported
        page = await c.get(f"{BASE}/import")
        assert 'data-state="imported"' in page.text
    got = sorted((x.kind, x.paytrail_payment_id or x.refund_id, x.amount_cents, x.fee_cents,
                  x.state) for x in lines)
    assert got == sorted([
        ("payment", first.id, first.amount_cents, 25, "matched"),  # OP: 0,25 € a payment
        ("payment", second.id, second.amount_cents, 25, "matched"),
        ("refund", refund.id, refund.amount_cents, 0, "matched")])
    async with db.reader() as s:
        settlement = await s.get(PaytrailSettlement, lines[0].settlement_id)
    assert settlement is not None and settlement.source == "api" and settlement.reference


async def _at_least(check: Callable[[], Awaitable[list[SettlementLine]]], n: int
                    ) -> list[SettlementLine] | None:
    got = await check()
    return got if len(got) >= n else None
