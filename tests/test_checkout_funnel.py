"""The checkout records its funnel events once each: checkout started, payment
started, order placed (whichever Paytrail answer settles the payment)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saumaton.analytics.models import AnalyticsEvent
from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.web.app import create_app
from tests.support import Shop, make_variants


@pytest.fixture(scope="module")
async def app(settings: Settings, shop: Shop) -> AsyncIterator[FastAPI]:
    """The app in-process, paying through its own mounted simulator."""
    settings = settings.model_copy(update={"public_url": "http://shop.test"})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        sim = "http://shop.test/paytrail-sim"
        application.state.paytrail = PaytrailClient(
            PaytrailConfig("375917", "SAIPPUAKAUPPIAS", sim),
            httpx.AsyncClient(transport=transport, base_url=sim))
        yield application


async def test_funnel_events_once_each(app: FastAPI, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1500], stock={shop.store1: 3})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as h:
        page = await h.get(f"/shop/p/{v['product_slug']}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = await h.post("/shop/cart/add", data={"csrf_token": token.group(1),
                                                 "variant_id": str(v["id"])})
        assert r.status_code == 303
        form = await h.get("/shop/checkout")
        key = re.search(r'name="key" value="([^"]+)"', form.text)
        assert key
        r = await h.post("/shop/checkout", data={
            "csrf_token": token.group(1), "key": key.group(1), "email": "funnel@example.fi",
            "first_name": "Fia", "last_name": "Funnel", "delivery": "pickup",
            "phone": "0401234567", "pickup_location_id": str(shop.store1)})
        assert r.status_code == 303, r.text
        paid = await h.post(r.headers["location"] + "/success?callbacks=0")
        back = paid.headers["location"]
        # Paytrail's callback settles it first; the shopper's return finds it paid.
        assert (await h.get(back.replace("/return/", "/callback/"))).status_code == 200
        assert (await h.get(back)).status_code == 200
        number = back.split("checkout-reference=")[1].split("&")[0]
    await app.state.analytics.flush()
    async with db.reader() as s:
        rows = (await s.execute(select(AnalyticsEvent.kind, AnalyticsEvent.order_id,
                                       AnalyticsEvent.customer_id)
                                .where(AnalyticsEvent.order_id == int(number)))).all()
    kinds = Counter(k for k, _, _ in rows)
    assert kinds == {"payment_started": 1, "order_placed": 1}
    placed = next(r for r in rows if r[0] == "order_placed")
    assert placed[2] is not None  # the buyer, although the callback has no session


async def test_pickup_at_a_store_without_the_item_says_so(app: FastAPI, db: Database,
                                                          shop: Shop) -> None:
    [v] = await make_variants(db, [1500], stock={shop.warehouse: 3})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as h:
        page = await h.get(f"/shop/p/{v['product_slug']}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        await h.post("/shop/cart/add", data={"csrf_token": token.group(1),
                                             "variant_id": str(v["id"])})
        form = await h.get("/shop/checkout")
        assert 'id="store-' + str(shop.store1) + '"' in form.text
        r = await h.post("/shop/checkout", data={
            "csrf_token": token.group(1), "key": "k" * 20, "email": "nostore@example.fi",
            "first_name": "N", "last_name": "S", "delivery": "pickup",
            "phone": "0401234567", "pickup_location_id": str(shop.store1)})
    assert r.status_code == 409
    assert "ei ole saatavilla tässä myymälässä" in r.text
    async with db.reader() as s:
        from saumaton.orders.models import Order
        assert await s.scalar(select(Order.id).where(Order.email == "nostore@example.fi")) \
            is None


async def test_odd_input_gets_a_clear_4xx_and_changes_nothing(app: FastAPI) -> None:
    """Non-ASCII secrets and oversized ids: refused as bad input, never a 500."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as h:
        assert (await h.get("/shop/orders/000001", params={"t": "é"})).status_code == 404
        forged = {"checkout-account": "375917", "checkout-algorithm": "sha256",
                  "checkout-status": "ok", "checkout-stamp": "x", "signature": "é"}
        for path in ("/shop/checkout/return/success", "/shop/checkout/callback/success",
                     "/shop/checkout/refund/success"):
            assert (await h.get(path, params=forged)).status_code == 400, path
        page = await h.get("/shop/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = await h.post("/shop/cart/add", data={"csrf_token": "é", "variant_id": "1"})
        assert r.status_code == 403
        r = await h.post("/shop/cart/add", data={"csrf_token": token.group(1),
                                                 "variant_id": "9" * 20})
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        assert (await h.get("/shop/cart/count")).text == ""  # nothing was added
