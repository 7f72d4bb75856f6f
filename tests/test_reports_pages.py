"""The sales report pages read through the reports database (SAUMATON_REPORTS_DATABASE_URL):
an app whose main database is the shared test shop and whose reports database is the
known month's (a different SQLite file / a different PostgreSQL database) shows the
known month's figures. Tables, CSV, managers' scope, errors next to the fields."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from saumaton import i18n
from saumaton.config import Settings
from saumaton.csvio.files import format_euros
from saumaton.db.uow import Database
from saumaton.reports.sales import sales_report
from saumaton.web.app import create_app
from tests.known_month import MONTH, TZ, KnownMonth, known_month_database
from tests.support import (
    Shop,
    staff_login,
    text_of,
)

OCTOBER = "since=2026-10-01&until=2026-10-31"


@pytest.fixture(scope="module")
async def km(backend: str, tmp_path_factory: pytest.TempPathFactory,
             settings: Settings) -> AsyncIterator[KnownMonth]:
    async with known_month_database(backend, tmp_path_factory.mktemp("known-month-pages"),
                                    settings) as month:
        yield month


@pytest.fixture(scope="module")
async def app_client(km: KnownMonth, settings: Settings, shop: Shop, db: Database,
                     session_tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the shared shop's database, reporting from the known month's."""
    replica = settings.model_copy(update={"reports_database_url": km.db.url})
    app = create_app(replica)
    async with app.router.lifespan_context(app):
        assert app.state.reports_db is not app.state.db
        assert app.state.reports_db.url == km.db.url
        yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _as(app_client: httpx.AsyncClient, shop: Shop, who: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=app_client._transport, base_url="http://test",
                          headers={"Accept-Language": "en"})
    await staff_login(c, shop, who)
    return c


def _csv(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))


async def test_pages_read_the_reports_database(app_client: httpx.AsyncClient, km: KnownMonth,
                                               shop: Shop, db: Database) -> None:
    async with km.db.reader() as s:
        want = await sales_report(s, MONTH, tz=TZ)
    async with db.reader() as s:  # the main database has other figures for October
        main = await sales_report(s, MONTH, tz=TZ, compare=False)
    assert main.total.net_cents != want.total.net_cents
    c = await _as(app_client, shop, "owner")
    page = await c.get(f"/backoffice/reports?{OCTOBER}")
    assert page.status_code == 200
    assert text_of(page.text, "card-net-value") == i18n.money(want.total.net_cents, "en")
    assert 'data-testid="figure-channels"' in page.text and "<svg" in page.text
    assert "Webshop" in text_of(page.text, "figure-channels-table")
    rows = _csv(await c.get(f"/backoffice/reports?{OCTOBER}&format=csv&figure=channels"))
    total = rows[-1]
    assert total["net_sales_eur"] == format_euros(want.total.net_cents)
    assert total["orders"] == "7"
    assert total["gift_cards_sold_eur"] == "50,00"
    assert total["net_previous_eur"] == "500,00"
    # Rows sum to the total line, to the cent.
    cents = [int(r["net_sales_eur"].replace(",", "")) for r in rows[:-1]]
    assert sum(cents) == want.total.net_cents
    vat = _csv(await c.get(f"/backoffice/reports?{OCTOBER}&format=csv&figure=vat"))
    assert [r["vat_rate_pct"] for r in vat[:-1]] == ["25,5", "13,5"]
    assert vat[-1]["net_eur"] == format_euros(want.total.net_cents)
    series = _csv(await c.get(f"/backoffice/reports?{OCTOBER}&grain=week&format=csv"
                              "&figure=series"))
    assert sum(int(r["net_eur_all"].replace(",", "")) for r in series) == want.total.net_cents


async def test_manager_sees_only_their_store(app_client: httpx.AsyncClient, shop: Shop,
                                             km: KnownMonth) -> None:
    c = await _as(app_client, shop, "manager1")
    rows = _csv(await c.get(f"/backoffice/reports?{OCTOBER}&format=csv&figure=channels"))
    assert [r["channel"] for r in rows] == ["POS Helsinki", "All channels"]
    assert rows[-1]["sales_eur"] == "53,00"
    done = _csv(await c.get(f"/backoffice/reports?{OCTOBER}&view=fulfilled&format=csv"
                            "&figure=channels"))
    assert {r["channel"] for r in done[:-1]} == {"Store Helsinki · POS Helsinki",
                                                 "Store Helsinki · Webshop"}
    r = await c.get(f"/backoffice/reports?{OCTOBER}&location={km.shop.store2}")
    assert r.status_code == 400 and "error-location" in r.text


async def test_errors_next_to_the_fields_all_at_once(app_client: httpx.AsyncClient,
                                                     shop: Shop) -> None:
    c = await _as(app_client, shop, "finance")
    r = await c.get("/backoffice/reports?since=2026-13-01&grain=year&view=x&location=abc")
    assert r.status_code == 400
    for field in ("since", "grain", "view", "location"):
        assert f'data-testid="error-{field}"' in r.text, field
    assert "YYYY-MM-DD" in text_of(r.text, "error-since")
    r = await c.get("/backoffice/reports?since=2026-10-31&until=2026-10-01",
                    headers={"Accept-Language": "fi"})
    assert r.status_code == 400
    assert "päättyy ennen" in text_of(r.text, "error-until")
    r = await c.get(f"/backoffice/reports?{OCTOBER}&format=csv&figure=nope")
    assert r.status_code == 404


async def test_detail_pages_and_their_csv(app_client: httpx.AsyncClient, shop: Shop) -> None:
    c = await _as(app_client, shop, "owner")
    for path, figure in (("products", "products"), ("products", "categories"),
                         ("staff", "staff"), ("returns", "reasons"), ("returns", "channels")):
        page = await c.get(f"/backoffice/reports/sales/{path}?{OCTOBER}")
        assert page.status_code == 200, path
        assert f'data-testid="figure-{figure}"' in page.text
    products = _csv(await c.get(f"/backoffice/reports/sales/products?{OCTOBER}&format=csv"
                                "&figure=products"))
    assert [r["net_sales_eur"] for r in products] == ["38,00", "30,00", "20,00"]
    staff = _csv(await c.get(f"/backoffice/reports/sales/staff?{OCTOBER}&format=csv"))
    assert {(r["location"], r["staff"], r["sales_eur"]) for r in staff} == {
        ("Store Helsinki", "cashier1@test.example", "53,00"),
        ("Store Tampere", "cashier2@test.example", "10,00")}
    reasons = _csv(await c.get(f"/backoffice/reports/sales/returns?{OCTOBER}&format=csv"
                               "&figure=reasons"))
    assert [(r["reason"], r["channel"], r["returned_at"], r["refund_eur"]) for r in reasons] == [
        ("wrong shade", "Webshop", "Store Helsinki", "10,00")]


async def test_staff_home_tile_names_the_reports(client: httpx.AsyncClient, shop: Shop) -> None:
    await staff_login(client, shop, "finance")
    home = (await client.get("/staff/", headers={"Accept-Language": "fi"})).text
    assert "Myynti kanavittain, asiakkaat, täsmäytys" in home
