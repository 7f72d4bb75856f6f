"""/api/v1/reports (both databases): the sales reports and the journal as JSON read the
reports database and give the figures the report services (and so the back-office pages)
give for the known month — totals, channel rows, comparisons, VAT, the series, top
products, staff sales, returns by reason; the customer reports (loyalty, journeys, NPS,
funnel) equal theirs; a manager sees only their store (and no chain-wide customer
report); a bad period or filter is 422, a role without reports.read 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from saumaton.config import Settings
from saumaton.core.actor import Actor, RoleGrant
from saumaton.db.uow import Database
from saumaton.reports.funnel_report import funnel_report
from saumaton.reports.journal import build_journal
from saumaton.reports.journeys import journey_report
from saumaton.reports.loyalty_report import loyalty_report
from saumaton.reports.nps_report import nps_report
from saumaton.reports.period import Grain
from saumaton.reports.sales import sales_report
from saumaton.web.app import create_app
from tests.known_month import MONTH, TZ, KnownMonth, known_month_database
from tests.support import Shop

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


@pytest.fixture(scope="module")
async def km(backend: str, tmp_path_factory: pytest.TempPathFactory,
             settings: Settings) -> AsyncIterator[KnownMonth]:
    async with known_month_database(backend, tmp_path_factory.mktemp("known-month-api"),
                                    settings) as month:
        yield month


@pytest.fixture(scope="module")
async def api(km: KnownMonth, settings: Settings, shop: Shop, db: Database,
              session_tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the shared shop's database (the callers' tokens), reporting from the
    known month's."""
    replica = settings.model_copy(update={"reports_database_url": km.db.url})
    app = create_app(replica)
    async with app.router.lifespan_context(app):
        yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _get(api: httpx.AsyncClient, shop: Shop, who: str, path: str,
               **params: Any) -> dict[str, Any]:
    r = await api.get(path, headers=shop.auth(who), params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_sales_report_equals_the_report_service(api: httpx.AsyncClient, shop: Shop,
                                                       km: KnownMonth) -> None:
    async with km.db.reader() as s:
        want = await sales_report(s, MONTH, tz=TZ)
    body = await _get(api, shop, "owner", "/api/v1/reports/sales", **OCTOBER)
    assert body["filters"] == {"period": {"from": "2026-10-01", "to": "2026-10-31",
                                          "days": 31},
                               "granularity": "day", "view": "sold", "location": None,
                               "channel": None}
    total = body["total"]
    assert total["net_cents"] == want.total.net_cents
    assert total["orders"] == 7 and total["gift_cards_cents"] == 5000
    assert total["margin_cents"] == want.total.margin_cents
    assert body["previous"]["figures"]["net_cents"] == 50000
    assert body["previous"]["period"] == {"from": "2026-09-01", "to": "2026-09-30",
                                          "days": 30}
    assert body["previous"]["net_change_bp"] == round(
        (want.total.net_cents - 50000) * 10_000 / 50000)
    assert body["year_earlier"]["figures"]["net_cents"] == 2000
    # Rows sum to the total, to the cent; each row names its channel and location by code.
    assert sum(r["figures"]["net_cents"] for r in body["channels"]) == want.total.net_cents
    assert {r["channel"] for r in body["channels"]} >= {"web", "pos-1", "pos-2", "api"}
    assert [(r["channel"], r["location"]) for r in body["channels"]
            if r["channel"] == "pos-1"] == [("pos-1", "store-1")]
    assert [v["vat_rate_bp"] for v in body["vat"]] == [2550, 1350]
    assert sum(v["net_cents"] for v in body["vat"]) == want.total.net_cents
    assert len(body["series"]) == 31
    weekly = await _get(api, shop, "finance", "/api/v1/reports/sales", granularity="week",
                        **OCTOBER)
    assert [b["start"] for b in weekly["series"]][:2] == ["2026-09-28", "2026-10-05"]
    assert sum(b["net_cents"] for b in weekly["series"]) == want.total.net_cents
    assert all(b["net_cents"] == sum(x["net_cents"] for x in b["rows"])
               for b in weekly["series"])

    # The channel filter: only the web's rows, and their sum is the total.
    web = await _get(api, shop, "owner", "/api/v1/reports/sales", channel="web", **OCTOBER)
    web_rows = [r for r in body["channels"] if r["channel"] == "web"]
    assert {r["channel"] for r in web["channels"]} == {"web"}
    assert web["total"]["net_cents"] == sum(r["figures"]["net_cents"] for r in web_rows)
    assert web["filters"]["channel"] == "web"


async def test_a_manager_sees_only_their_store(api: httpx.AsyncClient, shop: Shop) -> None:
    body = await _get(api, shop, "manager1", "/api/v1/reports/sales", **OCTOBER)
    assert [r["channel"] for r in body["channels"]] == ["pos-1"]
    assert body["total"]["sales_cents"] == 5300
    done = await _get(api, shop, "manager1", "/api/v1/reports/sales", view="fulfilled",
                      **OCTOBER)
    assert {(r["location"], r["channel"]) for r in done["channels"]} == {
        ("store-1", "pos-1"), ("store-1", "web")}
    r = await api.get("/api/v1/reports/sales", headers=shop.auth("manager1"),
                      params={"location": "store-2", **OCTOBER})
    assert r.status_code == 403, r.text
    staff = await _get(api, shop, "manager1", "/api/v1/reports/sales/staff", **OCTOBER)
    assert [(r["location"], r["staff"].split()[-1]) for r in staff["rows"]] == [
        ("store-1", "cashier1@test.example")]
    for who in ("cashier1", "service"):
        r = await api.get("/api/v1/reports/sales", headers=shop.auth(who), params=OCTOBER)
        assert r.status_code == 403, who
    assert (await api.get("/api/v1/reports/sales", params=OCTOBER)).status_code == 401


async def test_detail_reports(api: httpx.AsyncClient, shop: Shop) -> None:
    products = await _get(api, shop, "owner", "/api/v1/reports/sales/top", **OCTOBER)
    assert [i["net_cents"] for i in products["items"]] == [3800, 3000, 2000]
    assert products["by"] == "product" and all(i["sku"] for i in products["items"])
    categories = await _get(api, shop, "owner", "/api/v1/reports/sales/top", by="category",
                            **OCTOBER)
    assert sum(i["net_cents"] for i in categories["items"]) == 8800
    staff = await _get(api, shop, "owner", "/api/v1/reports/sales/staff", **OCTOBER)
    assert {(r["location"], r["staff"].split()[-1], r["sales_cents"])
            for r in staff["rows"]} == {("store-1", "cashier1@test.example", 5300),
                                        ("store-2", "cashier2@test.example", 1000)}
    returns = await _get(api, shop, "finance", "/api/v1/reports/sales/returns", **OCTOBER)
    assert [(r["reason"], r["channel"], r["returned_at"], r["refund_cents"])
            for r in returns["reasons"]] == [("wrong shade", "Webshop", "Store Helsinki", 1000)]


async def test_bad_periods_and_filters(api: httpx.AsyncClient, shop: Shop) -> None:
    owner = shop.auth("owner")
    for params, code in [
        ({"from": "2026-10-31", "to": "2026-10-01"}, "invalid_period"),
        ({"from": "2020-01-01", "to": "2026-10-01"}, "period_too_long"),
        ({"from": "2026-13-01", "to": "2026-10-01"}, "validation_error"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "validation_error"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "validation_error"),
        ({"to": "2026-10-01"}, "validation_error"),
        ({**OCTOBER, "granularity": "year"}, "validation_error"),
        ({**OCTOBER, "view": "x"}, "validation_error"),
        ({**OCTOBER, "location": "nowhere"}, "unknown_location"),
        ({**OCTOBER, "channel": "nowhere"}, "unknown_channel"),
    ]:
        r = await api.get("/api/v1/reports/sales", headers=owner, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["code"] == code, (params, r.text)
    r = await api.get("/api/v1/reports/sales/top", headers=owner,
                      params={**OCTOBER, "by": "brand"})
    assert r.status_code == 422


async def test_journal_equals_the_journal_service(api: httpx.AsyncClient, shop: Shop,
                                                  km: KnownMonth) -> None:
    async with km.db.reader() as s:
        want = await build_journal(s, MONTH, TZ)
    body = await _get(api, shop, "finance", "/api/v1/reports/journal", **OCTOBER)
    assert body["lines"] == [{**ln.as_dict(), "date": ln.day.isoformat()}
                             for ln in want.lines]
    assert body["lines"]
    mine = await _get(api, shop, "manager1", "/api/v1/reports/journal", **OCTOBER)
    assert mine["lines"] and {ln["location"] for ln in mine["lines"]} == {"store-1"}
    r = await api.get("/api/v1/reports/journal", headers=shop.auth("manager1"),
                      params={**OCTOBER, "location": "store-2"})
    assert r.status_code == 403
    r = await api.get("/api/v1/reports/journal", headers=shop.auth("manager1"),
                      params={**OCTOBER, "location": "*"})
    assert r.status_code == 403
    one = await _get(api, shop, "owner", "/api/v1/reports/journal", location="store-2",
                     **OCTOBER)
    assert {ln["location"] for ln in one["lines"]} == {"store-2"}
    r = await api.get("/api/v1/reports/journal", headers=shop.auth("owner"),
                      params={"from": "2026-08-01", "to": "2026-10-31"})
    assert r.status_code == 422 and r.json()["code"] == "period_too_long"


async def test_customer_reports_equal_their_services(api: httpx.AsyncClient, shop: Shop,
                                                     km: KnownMonth) -> None:
    owner = Actor(label="test", grants=(RoleGrant("owner", None),))
    async with km.db.reader() as s:
        loyalty = await loyalty_report(s, owner, MONTH, km.settings)
        journeys = await journey_report(s, owner)
        nps = await nps_report(s, owner, MONTH, Grain.MONTH, TZ)
        funnel = await funnel_report(s, owner, MONTH, TZ)
    body = await _get(api, shop, "finance", "/api/v1/reports/customers/loyalty", **OCTOBER)
    assert (body["members"], body["new_members"], body["issued"], body["used"],
            body["expired"]) == (loyalty.members, loyalty.new_members, loyalty.issued,
                                 loyalty.used, loyalty.expired)
    assert body["points"] == loyalty.points and body["end_tiers"] == loyalty.end_tiers
    body = await _get(api, shop, "owner", "/api/v1/reports/customers/journeys")
    assert (body["customers"], body["revenue_cents"]) == (journeys.customers,
                                                          journeys.revenue_cents)
    assert [j["key"] for j in body["journeys"]] == [j.key for j in journeys.journeys]
    body = await _get(api, shop, "owner", "/api/v1/reports/customers/nps", **OCTOBER)
    assert body["total"]["responses"] == nps.total.responses
    assert len(body["series"]) == len(nps.buckets) == 1
    body = await _get(api, shop, "owner", "/api/v1/reports/customers/funnel", **OCTOBER)
    assert body["total"]["events"] == {k: funnel.total.events.get(k, 0)
                                       for k in body["total"]["events"]}
    # Chain-wide: a store manager (and a cashier) may not.
    for who in ("manager1", "cashier1"):
        for path in ("loyalty", "nps", "funnel"):
            r = await api.get(f"/api/v1/reports/customers/{path}", headers=shop.auth(who),
                              params=OCTOBER)
            assert r.status_code == 403, (who, path)
        r = await api.get("/api/v1/reports/customers/journeys", headers=shop.auth(who))
        assert r.status_code == 403, who
    r = await api.get("/api/v1/reports/customers/nps", headers=shop.auth("owner"),
                      params={**OCTOBER, "granularity": "hour"})
    assert r.status_code == 422
    r = await api.get("/api/v1/reports/customers/loyalty", headers=shop.auth("owner"),
                      params={"from": "2026-10-31", "to": "2026-10-01"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_period"
