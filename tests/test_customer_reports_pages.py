"""The customer report pages (both databases): owner and finance see them, a store
manager gets the 403 page; every figure's CSV has the table's figures (UTF-8 BOM, `;`,
decimal comma); a bad date is refused next to its field in the page's language."""

from __future__ import annotations

import csv
import html
import io
import uuid

import httpx

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.csvio.files import format_euros
from saumaton.db.uow import Database
from saumaton.reports.journeys import journey_report, refresh_journeys
from saumaton.service.models import NpsSurvey
from tests.report_orders import add_order, channel_ids, new_customer
from tests.support import Shop, make_variants, staff_login, text_of

PAGES = ("customers", "nps", "funnel", "loyalty")


def rows_of(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


async def test_chain_wide_roles_only(client: httpx.AsyncClient, shop: Shop) -> None:
    for who, status in (("owner", 200), ("finance", 200), ("manager1", 403),
                        ("cashier1", 403)):
        client.cookies.clear()
        await staff_login(client, shop, who)
        for page in PAGES:
            r = await client.get(f"/backoffice/reports/{page}")
            assert r.status_code == status, (who, page, r.status_code)
            assert r.headers["content-type"].startswith("text/html")
        if status == 200:  # the tab row links every page
            for page in PAGES:
                assert f'data-testid="cr-tab-{page}"' in r.text


async def test_journey_csv_has_the_tables_figures(client: httpx.AsyncClient, shop: Shop,
                                                  db: Database) -> None:
    async with db.uow() as uow:
        await refresh_journeys(uow, full=True)
        await uow.commit()
    async with db.reader() as s:
        report = await journey_report(s, SYSTEM)
    await staff_login(client, shop, "owner")
    page = await client.get("/backoffice/reports/customers?lang=en")
    assert page.status_code == 200
    assert "as of" in text_of(page.text, "cr-as-of")
    r = await client.get("/backoffice/reports/customers?format=csv&table=omnichannel")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = rows_of(r.content)
    assert rows[0] == ["group", "customers", "customers_pct", "revenue_eur", "revenue_pct"]
    assert rows[1][1] == str(report.omni_kinds.customers)
    assert rows[3][1:4:2] == [str(report.customers), format_euros(report.revenue_cents)]
    assert len(rows) == 4
    matrix = rows_of((await client.get(
        "/backoffice/reports/customers?format=csv&table=matrix")).content)
    assert matrix[0][:2] == ["first_channel", "customers"]
    assert [int(row[1]) for row in matrix[1:]] == [row.customers for row in report.rows]
    ltv = rows_of((await client.get("/backoffice/reports/customers?format=csv&table=ltv"))
                  .content)
    assert [row[1] for row in ltv[1:-2]] == [j.key for j in report.journeys]
    assert (await client.get("/backoffice/reports/customers?format=csv&table=nope")
            ).status_code == 422


async def test_period_errors_next_to_the_field(client: httpx.AsyncClient, shop: Shop) -> None:
    await staff_login(client, shop, "owner")
    r = await client.get("/backoffice/reports/nps?since=2026-13-01&grain=year&lang=fi")
    assert r.status_code == 422
    assert text_of(r.text, "error-since") == "Kirjoita päivämäärä muodossa VVVV-KK-PP."
    assert text_of(r.text, "error-grain") == "Valitse päivä, viikko tai kuukausi."
    r = await client.get("/backoffice/reports/funnel?since=2026-09-10&until=2026-09-01")
    assert r.status_code == 422 and 'data-testid="error-until"' in r.text


async def test_other_pages_csv(client: httpx.AsyncClient, shop: Shop) -> None:
    await staff_login(client, shop, "finance")
    q = "since=2026-09-01&until=2026-09-30"
    for page, table, header in (
            ("nps", "channels", ["channel", "nps", "responses", "promoters", "passives",
                                 "detractors", "sent", "response_rate_pct"]),
            ("funnel", "devices", ["device", "visit", "product_view", "product_view_step_pct"]),
            ("loyalty", "tiers", ["tier", "members_at_start", "members_at_end"])):
        r = await client.get(f"/backoffice/reports/{page}?{q}&format=csv&table={table}")
        assert r.status_code == 200, (page, r.text[:300])
        rows = rows_of(r.content)
        assert rows[0][:len(header)] == header
        html = (await client.get(f"/backoffice/reports/{page}?{q}")).text
        assert (f'href="/backoffice/reports/{page}?format=csv&amp;table={table}&amp;'
                + q.replace("&", "&amp;")) in html


async def test_nps_comments_with_the_customer_link(client: httpx.AsyncClient, shop: Shop,
                                                   db: Database) -> None:
    ch = await channel_ids(db)
    [v] = await make_variants(db, [1000])
    customer = await new_customer(db, "Kommentoija")
    now = utcnow()
    order_id, _ = await add_order(db, channel_id=ch["pos-2"], customer_id=customer, at=now,
                                  lines=[(int(str(v["id"])), 1000)])
    comment = f"Ihana <b>palvelu</b> {uuid.uuid4().hex[:6]}"
    async with db.uow() as uow:
        uow.session.add(NpsSurvey(customer_id=customer, order_id=order_id,
                                  token_hash=uuid.uuid4().hex * 2, sent_at=now, score=2,
                                  comment=comment, answered_at=now))
        await uow.commit()
    await staff_login(client, shop, "owner")
    page = await client.get("/backoffice/reports/nps?grain=week&lang=en")
    assert page.status_code == 200
    assert html.escape(comment, quote=False) in page.text and "<b>palvelu" not in page.text
    assert f'href="/backoffice/customers/{customer}"' in page.text
    rows = rows_of((await client.get(
        "/backoffice/reports/nps?grain=week&format=csv&table=comments")).content)
    assert rows[0] == ["answered_at", "score", "channel", "comment", "customer_id"]
    mine = [row for row in rows[1:] if row[3] == comment]
    assert mine and mine[0][1:3] == ["2", "POS Tampere"] and mine[0][4] == str(customer)
