"""The daily journal (docs/journal.md) on a known day (tests/journal_day.py): every figure
per location to the cent, the balance check 0, the gift card ledger's movements and
balances, a manager seeing only their store, the page's CSV equal to the CLI's, and a
clear error for a bad date."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import uuid
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from saumaton.checkout.services import place_web_order
from saumaton.config import Settings
from saumaton.core.money import vat_included
from saumaton.db.uow import Database
from saumaton.orders.models import Order
from saumaton.payments.models import Payment, Refund
from saumaton.reports.journal import (
    COMPANY,
    CSV_COLUMNS,
    Journal,
    build_journal,
    journal_period,
    to_csv,
)
from saumaton.returns import services as returns
from saumaton.returns.models import Return
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from tests.journal_day import (
    DELIVERY,
    GIFT,
    A,
    F,
    JournalDay,
    build_journal_day,
    move_to_day,
)
from tests.support import (
    ROOT,
    Shop,
    make_variants,
    pay_web_order,
    staff_actor,
    staff_login,
    text_of,
)
from tests.test_checkout import cmd
from tests.test_cli import CLI
from tests.test_returns import customer, ret, take, till_sale

DAY = date(2026, 3, 10)
TZ = "Europe/Helsinki"
_built: dict[str, JournalDay] = {}


@pytest.fixture
async def day(db: Database, settings: Settings, shop: Shop, backend: str) -> JournalDay:
    """The day is built once per database (the session's)."""
    if backend not in _built:
        _built[backend] = await build_journal_day(db, settings, shop, DAY)
    return _built[backend]


async def journal(db: Database, **kw: object) -> Journal:
    async with db.reader() as s:
        return await build_journal(s, journal_period(DAY), TZ, **kw)  # type: ignore[arg-type]


def vat(gross: int, bp: int) -> int:
    return vat_included(gross, bp)


def rows(j: Journal, loc: str) -> dict[tuple[str, str, int | None], tuple[int | None, ...]]:
    return {(ln.section, ln.key, ln.vat_rate_bp): (ln.net_cents, ln.vat_cents, ln.gross_cents)
            for ln in j.block(DAY, loc)}


async def test_store_figures_to_the_cent(db: Database, day: JournalDay) -> None:
    j = await journal(db)
    got = rows(j, "store-1")
    a_vat, f_vat = vat(A, 2550), vat(F, 1350)
    assert got == {
        # A three times (cash, card, the customer's cash sale), F three times (cash,
        # offline card, paid with store credit); the gift card is not a sale.
        ("sales", "goods", 2550): (3 * (A - a_vat), 3 * a_vat, 3 * A),
        ("sales", "goods", 1350): (3 * (F - f_vat), 3 * f_vat, 3 * F),
        # Taken back here: the customer's A, the web order's A (and its delivery fee),
        # the first sale's F.
        ("returns", "goods", 2550): (-2 * (A - a_vat), -2 * a_vat, -2 * A),
        ("returns", "goods", 1350): (-(F - f_vat), -f_vat, -F),
        ("returns", "delivery", 2550): (-(DELIVERY - vat(DELIVERY, 2550)),
                                        -vat(DELIVERY, 2550), -DELIVERY),
        ("gift_cards", "sold", None): (None, None, GIFT),
        ("rounding", "sales", None): (None, None, 2 + 1),  # 32.33 → 32.35, 19.99 → 20.00
        ("rounding", "refunds", None): (None, None, -1),  # 12.34 paid out as 12.35
        ("payments", "cash", None): (None, None, 3235 + 2000),
        ("payments", "card", None): (None, None, A + GIFT),
        ("payments", "card_to_confirm", None): (None, None, F),
        ("payments", "store_credit", None): (None, None, F),
        ("refunds", "store_credit", None): (None, None, -A),
        ("refunds", "cash", None): (None, None, -1235),
        ("refunds", "paytrail", None): (None, None, -(A + DELIVERY)),
        ("check", "money", None): (None, None, 8879),
        ("check", "movements", None): (None, None, 8879),
        ("check", "difference", None): (None, None, 0),
    }
    # the order of the block: sales, returns, gift cards, rounding, payments, refunds, check
    sections = [ln.section for ln in j.block(DAY, "store-1")]
    assert sections == sorted(sections, key=["sales", "returns", "gift_cards", "rounding",
                                             "payments", "refunds", "check"].index)


async def test_webshop_figures_and_the_cancelled_order(db: Database, day: JournalDay) -> None:
    j = await journal(db)
    got = rows(j, "web")
    a_vat, f_vat = vat(A, 2550), vat(F, 1350)
    # home delivery A + fee, click & collect 2 × F (a web sale, not store 1's), the
    # gift-card-paid A; the cancelled A is nowhere.
    assert got == {
        ("sales", "goods", 2550): (2 * (A - a_vat), 2 * a_vat, 2 * A),
        ("sales", "goods", 1350): (2 * F - vat(2 * F, 1350), vat(2 * F, 1350), 2 * F),
        ("sales", "delivery", 2550): (DELIVERY - vat(DELIVERY, 2550), vat(DELIVERY, 2550),
                                      DELIVERY),
        ("payments", "paytrail", None): (None, None, A + DELIVERY + 2 * F),
        ("payments", "gift_card", None): (None, None, A),
        ("check", "money", None): (None, None, 2 * A + 2 * F + DELIVERY),
        ("check", "movements", None): (None, None, 2 * A + 2 * F + DELIVERY),
        ("check", "difference", None): (None, None, 0),
    }
    assert f_vat  # the reduced rate is really on the lines
    assert {loc for loc, _ in j.locations(DAY)} == {"store-1", "web", COMPANY}
    assert j.locations(DAY)[[c for c, _ in j.locations(DAY)].index("web")][1] == "Webshop"
    assert all(ln.gross_cents == 0 for ln in j.differences())


async def test_gift_card_and_store_credit_liability(db: Database, day: JournalDay) -> None:
    j = await journal(db)
    got = {ln.key: ln.gross_cents for ln in j.block(DAY, COMPANY)}
    assert got["gift_card.issue"] == GIFT and got["gift_card.spend"] == -A
    assert got["store_credit.issue"] == A and got["store_credit.spend"] == -F
    for kind, moved in (("gift_card", GIFT - A), ("store_credit", A - F)):
        assert got[f"{kind}.closing"] - got[f"{kind}.opening"] == moved
    assert got["difference"] == 0
    # The day before ends where this one starts.
    async with db.reader() as s:
        before = await build_journal(s, journal_period(date(2026, 3, 9)), TZ)
    prev = {ln.key: ln.gross_cents for ln in before.block(date(2026, 3, 9), COMPANY)}
    assert prev["gift_card.closing"] == got["gift_card.opening"]


async def test_a_manager_sees_only_their_store(db: Database, shop: Shop,
                                              day: JournalDay) -> None:
    j = await journal(db, store_ids={shop.store1})
    assert {loc for loc, _ in j.locations(DAY)} == {"store-1"}
    j2 = await journal(db, store_ids={shop.store2})
    assert j2.lines == []  # nothing was sold or returned at store 2 on the day
    only_web = await journal(db, locations={"web"})
    assert {loc for loc, _ in only_web.locations(DAY)} == {"web"}


async def test_csv_layout_and_the_cli_prints_the_page_s_csv(
        db: Database, shop: Shop, web: httpx.AsyncClient, database_url: str,
        day: JournalDay) -> None:
    j = await journal(db)
    text = to_csv(j)
    assert text.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert tuple(parsed[0]) == CSV_COLUMNS
    row = next(r for r in parsed if r[1] == "store-1" and r[3] == "sales" and r[5] == "13,5")
    assert row[0] == "2026-03-10" and row[8] == "37,02"  # 3 × 12.34, decimal comma
    assert next(r for r in parsed if r[1] == "store-1" and r[4] == "difference")[8] == "0,00"

    await staff_login(web, shop, "finance")
    r = await web.get("/backoffice/journal", params={"date": DAY.isoformat(),
                                                     "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "journal-2026-03-10.csv" in r.headers["content-disposition"]
    page_csv = r.content
    assert page_csv.decode("utf-8") == text
    env = dict(os.environ, SAUMATON_DATABASE_URL=database_url,
               SAUMATON_REPORTS_DATABASE_URL=database_url)
    done = await asyncio.to_thread(
        subprocess.run, [*CLI, "report", "journal", "--date", DAY.isoformat(),
                         "--format", "csv"], env=env, cwd=ROOT, capture_output=True,
        timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == page_csv
    table = await asyncio.to_thread(
        subprocess.run, [*CLI, "report", "journal", "--date", DAY.isoformat(),
                         "--location", "store-1"], env=env, cwd=ROOT, capture_output=True,
        timeout=120)
    assert table.returncode == 0, table.stderr.decode()
    out = table.stdout.decode()
    assert "check/difference" in out and "37,02" in out and "Webshop" not in out
    as_json = await asyncio.to_thread(
        subprocess.run, [*CLI, "report", "journal", "--date", DAY.isoformat(),
                         "--format", "json"], env=env, cwd=ROOT, capture_output=True,
        timeout=120)
    assert as_json.returncode == 0, as_json.stderr.decode()
    assert json.loads(as_json.stdout) == j.as_dict()
    bad = await asyncio.to_thread(
        subprocess.run, [*CLI, "report", "journal", "--date", "10.3.2026"], env=env,
        cwd=ROOT, capture_output=True, timeout=120)
    assert bad.returncode == 2 and b"YYYY-MM-DD" in bad.stdout + bad.stderr


async def test_the_page_shows_the_tables_and_refuses_a_bad_date(
        db: Database, shop: Shop, web: httpx.AsyncClient, day: JournalDay) -> None:
    await staff_login(web, shop, "finance")
    r = await web.get("/backoffice/journal", params={"date": DAY.isoformat()})
    assert r.status_code == 200
    assert text_of(r.text, "line-check.difference").endswith(" 0,00 €")
    assert "37,02" in text_of(r.text, "line-sales.goods-1350")
    assert 'data-testid="journal-2026-03-10-web"' in r.text
    r = await web.get("/backoffice/journal", params={"date": "10.3.2026", "until": "x",
                                                     "location": "nowhere", "lang": "fi"})
    assert r.status_code == 400
    for f in ("date", "until", "location"):  # every error at once, next to its field
        assert f'data-testid="error-{f}"' in r.text
    assert text_of(r.text, "error-date").startswith("Kirjoita päivä muodossa VVVV-KK-PP")
    assert text_of(r.text, "error-location") == "Valitse toimipaikka listasta."
    r = await web.get("/backoffice/journal", params={"date": "2026-03-10",
                                                     "until": "2026-03-01"})
    assert r.status_code == 400 and 'data-testid="error-until"' in r.text


async def test_a_store_manager_gets_only_their_store_on_the_page(
        db: Database, shop: Shop, web: httpx.AsyncClient, day: JournalDay) -> None:
    await staff_login(web, shop, "manager1")
    r = await web.get("/backoffice/journal", params={"date": DAY.isoformat()})
    assert r.status_code == 200
    assert 'data-testid="journal-2026-03-10-store-1"' in r.text
    assert 'data-testid="journal-2026-03-10-web"' not in r.text
    r = await web.get("/backoffice/journal", params={"date": DAY.isoformat(),
                                                     "location": "web"})
    assert r.status_code == 400 and 'data-testid="error-location"' in r.text
    await staff_login(web, shop, "cashier1")
    r = await web.get("/backoffice/journal")
    assert r.status_code == 403


async def test_money_on_another_day_than_the_sale_or_the_return_is_cleared(
        db: Database, settings: Settings, shop: Shop) -> None:
    """A web order placed late on the 20th and paid on the 21st; returned at store 2 on
    the 22nd, its Paytrail refund going out on the 23rd: each day balances through its
    clearing row."""
    [v] = await make_variants(db, [A], stock={shop.warehouse: 5})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))), customer_id=None,
                                     key=uuid.uuid4().hex)
    await pay_web_order(db, settings, order)
    cashier = await staff_actor(db, shop, "cashier2")
    ret, _ = await returns.take_return(db, cashier, order.id, ReturnIn(
        location_id=shop.store2, reason="too small",
        lines=[ReturnLineIn(line_no=1, quantity=1)]), idempotency_key=None)
    d20, d21, d22, d23 = (date(2026, 3, n) for n in (20, 21, 22, 23))
    at = {d: datetime.combine(d, time(23, 50), ZoneInfo(TZ)).astimezone(UTC)
          for d in (d20, d21, d22, d23)}
    async with db.uow() as uow:
        s = uow.session
        await s.execute(update(Order).where(Order.id == order.id).values(created_at=at[d20]))
        await s.execute(update(Payment).where(Payment.order_id == order.id)
                        .values(created_at=at[d21]))
        await s.execute(update(Return).where(Return.id == ret.id)
                        .values(created_at=at[d22], received_at=at[d22]))
        await s.execute(update(Refund).where(Refund.order_id == order.id)
                        .values(created_at=at[d23], status="ok"))
        await uow.commit()
    total = A + DELIVERY
    async with db.reader() as s:
        j = await build_journal(s, journal_period(d20, d23), TZ, locations={"web", "store-2"})
    assert j.figure(d20, "web", "sales", "goods") == A
    assert j.figure(d20, "web", "clearing", "sales_paid_other_day") == -total
    assert j.figure(d21, "web", "payments", "paytrail") == total
    assert j.figure(d21, "web", "clearing", "payments_not_sales_of_day") == total
    # the return counts where the goods came back, its refund there too
    assert j.figure(d22, "store-2", "returns", "goods") == -A
    assert j.figure(d22, "store-2", "returns", "delivery") == -DELIVERY
    assert j.figure(d22, "store-2", "clearing", "returns_refunded_other_day") == total
    assert j.figure(d23, "store-2", "refunds", "paytrail") == -total
    assert j.figure(d23, "store-2", "clearing", "refunds_not_returns_of_day") == -total
    diffs = {(ln.day, ln.location): ln.gross_cents for ln in j.differences()}
    assert diffs == {(d20, "web"): 0, (d21, "web"): 0, (d22, "store-2"): 0,
                     (d23, "store-2"): 0}
    # A sale paid twice is not hidden: the difference shows it until it is refunded.
    async with db.uow() as uow:
        uow.session.add(Payment(order_id=order.id, method="paytrail", status="captured",
                                amount_cents=100, created_at=at[d20]))
        await uow.commit()
    async with db.reader() as s:
        j = await build_journal(s, journal_period(d20), TZ, locations={"web"})
    assert [ln.gross_cents for ln in j.differences()] == [100]


async def test_points_paid_part_of_a_return_comes_back_as_points(
        db: Database, shop: Shop) -> None:
    cid = await customer(db)
    await till_sale(db, shop, [50000], customer_id=cid)  # earns the points (stays today)
    # 2 × 20.00: 4.00 in points, 36.00 in cash; one unit back: 2.00 as points, 18.00 cash
    order_id, _ = await till_sale(db, shop, [2000], qty=2, customer_id=cid, payments=[
        {"method": "points", "amount_cents": 400}, {"method": "cash"}])
    out = await take(db, await staff_actor(db, shop, "cashier1"), order_id,
                     ret(shop.store1, [(1, 1)], refund_method="cash"))
    day = date(2026, 3, 25)
    await move_to_day(db, JournalDay(day, [order_id], [out.id]), day)
    async with db.reader() as s:
        j = await build_journal(s, journal_period(day), TZ, locations={"store-1"})
    got = {(ln.section, ln.key): ln.gross_cents for ln in j.block(day, "store-1")}
    assert got == {("sales", "goods"): 4000, ("returns", "goods"): -2000,
                   ("payments", "cash"): 3600, ("payments", "points"): 400,
                   ("refunds", "cash"): -1800, ("refunds", "points"): -200,
                   ("check", "money"): 2000, ("check", "movements"): 2000,
                   ("check", "difference"): 0}
