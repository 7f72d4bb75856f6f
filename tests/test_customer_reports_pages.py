"""The customer report pages (both databases): owner and finance see them, a store
manager gets the 403 page; every figure's CSV has the table's figures (UTF-8 BOM, `;`,
decimal comma); a bad date is refused next to its field in the page's language."""

from __future__ import annotations

import csv
import io

import httpx

from saumaton.core.actor import SYSTEM
from saumaton.csvio.files import format_euros
from saumaton.db.uow import Database
from saumaton.reports.journeys import journey_report, refresh_journeys
from tests.support import Shop, staff_login, text_of

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
