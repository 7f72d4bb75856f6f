"""The prices and campaigns pages (both databases, httpx): a price change now and
scheduled through the form, errors next to their fields, cancel, the price history;
campaigns created, listed, edited and ended; the price-parity page; who may do what."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import Variant
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.pricing.models import Campaign, PriceChange
from tests.support import Shop, csrf_of, make_variants, staff_login, text_of

TZ = ZoneInfo("Europe/Helsinki")


async def price_of(db: Database, variant_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(Variant.price_cents).where(Variant.id == variant_id))
                   or 0)


async def test_price_change_form_now_scheduled_cancel_and_history(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    v1, v2 = await make_variants(db, [1000, 1200])
    await staff_login(web, shop, "manager")
    page = await web.get("/backoffice/prices", params={"variant_id": v1["id"]})
    assert page.status_code == 200 and 'data-testid="nav-prices"' in page.text
    assert f'data-testid="pick-{v1["sku"]}"' in page.text  # preselected
    token = csrf_of(page.text)

    # Every error at once, next to its field, in Finnish; nothing changes.
    r = await web.post("/backoffice/prices", data={
        "csrf_token": token, "codes": "NO-SUCH-SKU", "price": "abc", "when": "later",
        "date": "2020-01-01", "time": "06:00"})
    assert r.status_code == 422
    assert "NO-SUCH-SKU" in text_of(r.text, "error-codes")
    assert "Anna hinta" in text_of(r.text, "error-price")
    assert "mennyt" in text_of(r.text, "error-when")
    assert 'aria-describedby="pr-price-error"' in r.text
    assert await price_of(db, int(v1["id"])) == 1000

    # Now: by SKU and the preselected checkbox; both change at once.
    r = await web.post("/backoffice/prices", data={
        "csrf_token": token, "variant_id": str(v1["id"]), "codes": str(v2["ean"]),
        "price": "9,90", "when": "now", "note": "kevät"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=changed")
    assert await price_of(db, int(v1["id"])) == 990
    assert await price_of(db, int(v2["id"])) == 990

    # Scheduled for Monday 06:00 next week, Helsinki time.
    today = utcnow().astimezone(TZ).date()
    monday = today + timedelta(days=7 - today.weekday())
    r = await web.post("/backoffice/prices", data={
        "csrf_token": token, "codes": str(v1["sku"]), "price": "8", "when": "later",
        "date": monday.isoformat(), "time": "06:00"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=scheduled")
    async with db.reader() as s:
        change = (await s.scalars(select(PriceChange).where(
            PriceChange.variant_id == int(v1["id"]), PriceChange.status == "scheduled"))).one()
    local = change.effective_at.astimezone(TZ)
    assert (local.date(), local.hour, local.minute) == (monday, 6, 0)
    listing = await web.get("/backoffice/prices")
    assert f'data-testid="scheduled-{change.id}"' in listing.text
    assert await price_of(db, int(v1["id"])) == 990

    r = await web.post(f"/backoffice/prices/changes/{change.id}/cancel",
                       data={"csrf_token": token})
    assert r.status_code == 303
    async with db.reader() as s:
        assert (await s.get(PriceChange, change.id)).status == "cancelled"  # type: ignore[union-attr]
    again = await web.post(f"/backoffice/prices/changes/{change.id}/cancel",
                           data={"csrf_token": token})
    assert again.status_code == 409 and "<html" in again.text

    hist = await web.get(f"/backoffice/prices/variants/{v1['id']}")
    assert hist.status_code == 200
    table = text_of(hist.text, "price-history")
    assert "10,00" in table and "9,90" in table and "kevät" in table and "peruttu" in table
    assert (await web.get("/backoffice/prices/variants/2000000000")).status_code == 404


async def test_who_may_change_prices(web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    (v,) = await make_variants(db, [700])
    await staff_login(web, shop, "finance")  # may read, not write
    page = await web.get("/backoffice/prices")
    assert page.status_code == 200 and 'data-testid="price-form"' not in page.text
    r = await web.post("/backoffice/prices", data={
        "csrf_token": csrf_of(page.text), "codes": str(v["sku"]), "price": "1"})
    assert r.status_code == 403 and "<html" in r.text
    assert (await web.get("/backoffice/campaigns/new")).status_code == 403
    assert (await web.get("/backoffice/price-parity")).status_code == 200
    english = await web.get("/backoffice/prices", params={"lang": "en"})
    assert "<h1>Price changes</h1>" in english.text and "Latest changes" in english.text
    assert await price_of(db, int(v["id"])) == 700
    web.cookies.clear()
    await staff_login(web, shop, "cashier1")
    assert (await web.get("/backoffice/campaigns")).status_code == 403


async def test_campaign_pages_create_edit_end_and_parity(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    v1, _v2, v3 = await make_variants(db, [1000, 1000, 1000])
    name = f"3 for 2 {uuid.uuid4().hex[:6]}"
    await staff_login(web, shop, "owner")
    form_page = await web.get("/backoffice/campaigns/new")
    assert form_page.status_code == 200
    assert 'data-testid="channel-pos-1"' in form_page.text  # stores as their tills
    token = csrf_of(form_page.text)

    # Every error at once, each next to its field.
    r = await web.post("/backoffice/campaigns", data={
        "csrf_token": token, "name": "", "kind": "x_for_y", "buy_quantity": "2",
        "pay_quantity": "2", "start_date": "2026-13-40", "start_time": "10:00",
        "variant_codes": "NOPE-1"})
    assert r.status_code == 422
    for field in ("name", "pay_quantity", "starts_at", "variant_codes"):
        assert text_of(r.text, f"error-{field}"), field
    assert 'aria-describedby="cp-name-error"' in r.text
    r = await web.post("/backoffice/campaigns", data={
        "csrf_token": token, "name": "x", "kind": "percent", "percent": "120",
        "start_date": "2026-01-01", "start_time": "10:00", "end_date": "2025-01-01"})
    assert r.status_code == 422
    for field in ("percent", "ends_at", "targets"):
        assert text_of(r.text, f"error-{field}"), field
    async with db.reader() as s:
        assert not (await s.scalars(select(Campaign).where(Campaign.name == name))).all()

    # A "3 for 2" on one product, only in store 1's till.
    start = utcnow().astimezone(TZ) - timedelta(hours=1)
    r = await web.post("/backoffice/campaigns", data={
        "csrf_token": token, "name": name, "kind": "x_for_y", "buy_quantity": "3",
        "pay_quantity": "2", "product_codes": str(v1["product_slug"]),
        "channel": "pos-1", "start_date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M")})
    assert r.status_code == 303, r.text
    async with db.reader() as s:
        cid = (await s.scalars(select(Campaign.id).where(Campaign.name == name))).one()
    listing = await web.get("/backoffice/campaigns", params={"state": "running", "q": name})
    row = text_of(listing.text, f"campaign-{cid}")
    assert "osta 3, maksa 2" in row
    assert "Helsinki" in row and "Käynnissä" in row
    # The parity page lists the bundle as a difference, with where it is limited.
    parity = await web.get("/backoffice/price-parity")
    assert parity.status_code == 200
    assert name in text_of(parity.text, f"bundle-{cid}")

    # Edit: 20 % off the variant, only in the webshop; the parity page shows the cause.
    edit = await web.get(f"/backoffice/campaigns/{cid}")
    assert edit.status_code == 200 and str(v1["product_slug"]) in edit.text
    r = await web.post(f"/backoffice/campaigns/{cid}", data={
        "csrf_token": csrf_of(edit.text), "name": name, "kind": "percent", "percent": "20",
        "variant_codes": str(v3["sku"]), "channel": "web",
        "start_date": start.date().isoformat(), "start_time": start.strftime("%H:%M")})
    assert r.status_code == 303, r.text
    parity = await web.get("/backoffice/price-parity")
    cause = text_of(parity.text, f"difference-{v3['id']}")
    assert name in cause and "Verkkokauppa" in cause and "8,00" in cause
    async with db.reader() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "campaign", AuditEntry.subject_id == cid)
            .order_by(AuditEntry.id))).all()
    assert list(actions) == ["campaign.create", "campaign.update"]

    r = await web.post(f"/backoffice/campaigns/{cid}/end", data={"csrf_token": token})
    assert r.status_code == 303
    ended = await web.get("/backoffice/campaigns", params={"state": "ended", "q": name})
    assert "Päättynyt" in text_of(ended.text, f"campaign-{cid}")
    ended_form = await web.get(f"/backoffice/campaigns/{cid}")
    assert "päättynyt" in text_of(ended_form.text, "campaign-ended")
    assert 'data-testid="campaign-save"' not in ended_form.text
    r = await web.post(f"/backoffice/campaigns/{cid}", data={
        "csrf_token": token, "name": name, "kind": "percent", "percent": "20",
        "variant_codes": str(v3["sku"]), "start_date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M")})
    assert r.status_code == 409 and "päättynyt" in text_of(r.text, "error-form")
    parity = await web.get("/backoffice/price-parity")
    assert f'data-testid="difference-{v3["id"]}"' not in parity.text
    assert (await web.get("/backoffice/campaigns/2000000000")).status_code == 404
    bad = await web.get("/backoffice/price-parity", params={"date": "2026-02-31"})
    assert bad.status_code == 422 and text_of(bad.text, "error-at")


ROUTES = ["/backoffice/prices", "/backoffice/prices/variants/1", "/backoffice/campaigns",
          "/backoffice/campaigns/new", "/backoffice/campaigns/1", "/backoffice/price-parity"]
POSTS = ["/backoffice/prices", "/backoffice/prices/changes/1/cancel", "/backoffice/campaigns",
         "/backoffice/campaigns/1", "/backoffice/campaigns/1/end"]


async def test_every_page_answers_each_role(web: httpx.AsyncClient, shop: Shop) -> None:
    readers = {"owner", "manager", "manager1", "finance"}
    writers = {"owner", "manager"}
    for who in ("owner", "manager", "manager1", "cashier1", "service", "finance", None):
        web.cookies.clear()
        if who:
            await staff_login(web, shop, who)
        for path in ROUTES:
            r = await web.get(path)
            may = who in (writers if path.endswith("/new") else readers)
            if who is None:
                assert r.status_code == 303 and "/staff/login" in r.headers["location"], path
            elif may:
                assert r.status_code in (200, 404), (who, path, r.status_code)
                assert "<html" in r.text
            else:
                assert r.status_code == 403 and "<html" in r.text, (who, path)
        for path in POSTS:
            r = await web.post(path, data={})
            if who is None:
                assert r.status_code in (303, 204), (path, r.status_code)
            elif who not in writers:
                assert r.status_code == 403 and "<html" in r.text, (who, path)


async def test_every_kind_through_the_form_and_back(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    (v,) = await make_variants(db, [1000])
    await staff_login(web, shop, "manager")
    token = csrf_of((await web.get("/backoffice/campaigns/new")).text)
    start = utcnow().astimezone(TZ) + timedelta(days=1)
    common = {"csrf_token": token, "variant_codes": str(v["sku"]),
              "start_date": start.date().isoformat(), "start_time": "06:00",
              "min_tier": "silver", "channel": ["web", "pos-2"]}
    cases = [
        ({"kind": "percent", "percent": "12,5"}, (1250, None, None, None)),
        ({"kind": "fixed", "amount": "2,50"}, (250, None, None, None)),
        ({"kind": "x_for_y", "buy_quantity": "3", "pay_quantity": "2"}, (0, 3, 2, None)),
        ({"kind": "buy_x_get_y", "buy_quantity": "2", "get_quantity": "1"},
         (10000, 2, None, 1)),
        ({"kind": "buy_x_get_y", "buy_quantity": "2", "get_quantity": "1", "percent": "50"},
         (5000, 2, None, 1)),
        ({"kind": "set_price", "buy_quantity": "3", "amount": "25"}, (2500, 3, None, None)),
    ]
    for fields, expected in cases:
        name = f"kind-{uuid.uuid4().hex[:6]}"
        r = await web.post("/backoffice/campaigns", data={**common, "name": name, **fields})
        assert r.status_code == 303, (fields, r.text)
        async with db.reader() as s:
            c = (await s.scalars(select(Campaign).where(Campaign.name == name))).one()
        assert (c.kind, c.value, c.buy_quantity, c.pay_quantity, c.get_quantity) == (
            fields["kind"], *expected)
        assert c.min_tier == "silver"
        local = c.starts_at.astimezone(TZ)
        assert (local.date(), local.hour) == (start.date(), 6)
        # The edit form shows it as saved; saving it unchanged keeps it the same.
        edit = await web.get(f"/backoffice/campaigns/{c.id}")
        assert 'value="pos-2" checked' in edit.text and 'value="web" checked' in edit.text
        form = {k: html_value(edit.text, k) for k in (
            "name", "percent", "amount", "buy_quantity", "pay_quantity", "get_quantity",
            "start_date", "start_time", "end_date", "end_time")}
        r = await web.post(f"/backoffice/campaigns/{c.id}", data={
            **form, "csrf_token": token, "kind": fields["kind"], "min_tier": "silver",
            "variant_codes": str(v["sku"]), "channel": ["web", "pos-2"]})
        assert r.status_code == 303, (fields, r.text)
        async with db.reader() as s:
            again = await s.get(Campaign, c.id)
            assert again is not None
            await s.refresh(again)
        assert (again.kind, again.value, again.buy_quantity, again.pay_quantity,
                again.get_quantity, again.starts_at) == (
            c.kind, c.value, c.buy_quantity, c.pay_quantity, c.get_quantity, c.starts_at)


def html_value(page: str, name: str) -> str:
    m = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    return html.unescape(m[1]) if m else ""
