"""The shop's settings in the back office (both databases): every bad value is refused at
once next to its field and nothing is saved; a saved change is audited and what the shop
does changes at once — the checkout's delivery fee and free-delivery limit, the till's
receipt details and cashier discount limit, a store's return window — and another app
process (a real uvicorn) follows after the "settings.changed" event; restoring a
default removes the override. Only the owner may open the page.
The form in a real browser: tests/test_settings_browser.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Forbidden, ValidationFailed
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.locations.models import Location
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.orders.models import Order
from saumaton.shopsettings import services
from saumaton.shopsettings.live import LiveSettings
from saumaton.shopsettings.models import ShopSetting
from saumaton.shopsettings.registry import BY_KEY, store_field
from saumaton.shopsettings.services import FieldError
from tests.support import (
    Server,
    Shop,
    csrf_of,
    eventually,
    make_variants,
    staff_actor,
    staff_login,
    text_of,
)
from tests.test_checkout_form import checkout_page
from tests.test_till_api import config_of, headers, open_drawer, sale

URL = "/backoffice/settings"


def live_of(client: httpx.AsyncClient) -> LiveSettings:
    app: Any = client._transport.app  # type: ignore[attr-defined]
    live: LiveSettings = app.state.live_settings
    return live


async def restore_settings(db: Database, live: LiveSettings, days: dict[int, int]) -> None:
    """Every setting back to its default and the stores' return days as they were (the
    database is shared by the whole session), announced to every process."""
    async with db.uow() as uow:
        for key in BY_KEY:
            await services.reset(uow, SYSTEM, live.base, key)
        for location_id, n in days.items():
            await uow.session.execute(update(Location).where(Location.id == location_id)
                                      .values(return_days=n))
        uow.emit(services.TOPIC, {"keys": ["restored"]})
        await uow.commit()
    await live.refresh(db)


@pytest.fixture
async def restore(db: Database, client: httpx.AsyncClient) -> AsyncIterator[LiveSettings]:
    async with db.reader() as s:
        days = {st.location_id: st.return_days for st in await services.store_return_days(s)}
    live = live_of(client)
    yield live
    await restore_settings(db, live, days)


async def owner_page(web: httpx.AsyncClient, shop: Shop) -> str:
    await staff_login(web, shop, "owner")
    page = await web.get(URL)
    assert page.status_code == 200, page.text
    return page.text


async def post(web: httpx.AsyncClient, page: str, **fields: str) -> httpx.Response:
    return await web.post(URL, data={"csrf_token": csrf_of(page), **fields})


async def stored(db: Database) -> dict[str, Any]:
    async with db.reader() as s:
        return {r.key: r.value for r in (await s.scalars(select(ShopSetting))).all()}


async def audit_count(db: Database) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.action == "settings.change")) or 0)


async def test_every_bad_value_is_refused_at_once_and_nothing_is_saved(
        web: httpx.AsyncClient, db: Database, shop: Shop, restore: LiveSettings) -> None:
    page = await owner_page(web, shop)
    before, audits = await stored(db), await audit_count(db)
    r = await post(web, page, business_name="Uusi Nimi Oy", business_id="1234567-8",
                   home_delivery_fee_cents="-5", free_delivery_from_cents="paljon",
                   web_return_days="7", pos_cashier_max_discount_pct="abc",
                   loyalty_silver_from_cents="500", loyalty_gold_from_cents="100",
                   business_address="  ", **{store_field(shop.store1): "0"})
    assert r.status_code == 422
    assert {k: text_of(r.text, f"error-{k}") for k in (
        "business_id", "home_delivery_fee_cents", "free_delivery_from_cents",
        "web_return_days", "pos_cashier_max_discount_pct", "loyalty_gold_from_cents",
        "business_address", store_field(shop.store1))} == {
        "business_id": "Tämä ei ole kelvollinen Y-tunnus, esim. 1234567-1.",
        "home_delivery_fee_cents": "Anna vähintään 0,00 €.",
        "free_delivery_from_cents": "Anna summa euroina, esim. 5,90.",
        "web_return_days": "Anna vähintään 14.",
        "pos_cashier_max_discount_pct": "Anna kokonaisluku.",
        "loyalty_gold_from_cents": "Kultatason rajan on oltava vähintään hopeatason raja "
                                   "(500,00 €).",
        "business_address": "Täytä tämä kenttä.",
        store_field(shop.store1): "Anna vähintään 1.",
    }
    assert "korjaa alla merkityt kentät (8)" in text_of(r.text, "settings-errors")
    assert 'id="business_id" name="business_id" value="1234567-8"' in r.text  # kept
    assert ('aria-describedby="web_return_days-error web_return_days-help" '
            'aria-invalid="true"') in r.text
    assert "error-business_name" not in r.text  # the good one has no error
    # Nothing saved, not even the valid business name; nothing audited.
    assert await stored(db) == before and await audit_count(db) == audits
    assert live_of(web).current.business_name == restore.base.business_name

    # The same rules in the core: every error at once.
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as exc:
            await services.save(uow, SYSTEM, restore.base, {
                "business_id": "ei", "home_delivery_fee_cents": "-1,00",
                "web_return_days": "13", "pickup_reminder_days_before": "20",
                "gift_card_valid_days": "1.5"})
    errors: dict[str, FieldError] = exc.value.extra["errors"]
    assert {k: (e.code, e.limit) for k, e in errors.items()} == {
        "business_id": ("invalid_business_id", None),
        "home_delivery_fee_cents": ("too_small", 0),
        "web_return_days": ("too_small", 14),
        "pickup_reminder_days_before": ("reminder_not_before_hold", 14),
        "gift_card_valid_days": ("not_a_number", None)}


async def test_only_the_owner_may_change_settings(
        web: httpx.AsyncClient, db: Database, shop: Shop, restore: LiveSettings) -> None:
    for who in ("manager", "manager1", "cashier1", "finance"):
        await staff_login(web, shop, who)
        r = await web.get(URL)
        assert r.status_code == 403 and 'data-testid="error-page"' in r.text, who
        csrf = csrf_of((await web.get("/staff/")).text)
        r = await web.post(URL, data={"csrf_token": csrf, "web_return_days": "20"})
        assert r.status_code == 403, who
        web.cookies.clear()
    manager = await staff_actor(db, shop, "manager")
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await services.save(uow, manager, restore.base, {"web_return_days": "20"})
    assert "web_return_days" not in await stored(db)


async def test_the_checkout_uses_a_new_delivery_fee_at_once_and_the_change_is_audited(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop,
        restore: LiveSettings) -> None:
    owner = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    async with owner:
        page = await owner_page(owner, shop)
        assert text_of(page, "default-home_delivery_fee_cents") == "Oletus: 5,90 €"
        assert 'data-testid="setting-home_delivery_fee_cents" data-overridden="no"' in page

        shopper = await checkout_page(web, db, shop)  # one item of 19,90 €
        home = _home_label(shopper)
        assert "5,90 €" in home and "Maksuton yli 50,00 € tilauksiin" in home

        r = await post(owner, page, home_delivery_fee_cents="7,5",
                       free_delivery_from_cents="100")
        assert r.status_code == 303 and r.headers["location"] == f"{URL}?done=saved"
        saved = await owner.get(r.headers["location"])
        assert "Asetukset tallennettu" in text_of(saved.text, "settings-notice")
        assert 'data-testid="setting-home_delivery_fee_cents" data-overridden="yes"' \
            in saved.text
        assert 'name="home_delivery_fee_cents" value="7,50"' in saved.text
        assert await stored(db) == {"home_delivery_fee_cents": 750,
                                    "free_delivery_from_cents": 10000}

        home = _home_label((await web.get("/shop/checkout")).text)
        assert "7,50 €" in home and "Maksuton yli 100,00 € tilauksiin" in home
        # The checkout's summary (what the order is charged) says the same.
        r = await web.post("/shop/checkout/summary", data={
            "csrf_token": csrf_of(shopper), "delivery": "home"})
        summary = r.text.replace("\xa0", " ")
        assert "7,50 €" in summary and "27,40 €" in summary

        # Free from 15 €: the 19,90 € cart ships free.
        r = await post(owner, saved.text, free_delivery_from_cents="15,00")
        assert r.status_code == 303
        assert "Maksuton" in _home_label((await web.get("/shop/checkout")).text)

        async with db.reader() as s:
            entries = (await s.scalars(
                select(AuditEntry).where(AuditEntry.action == "settings.change")
                .order_by(AuditEntry.id.desc()).limit(3))).all()
        assert [(e.subject_type, e.data) for e in reversed(entries)] == [
            ("setting", {"key": "home_delivery_fee_cents", "old": 590, "new": 750}),
            ("setting", {"key": "free_delivery_from_cents", "old": 5000, "new": 10000}),
            ("setting", {"key": "free_delivery_from_cents", "old": 10000, "new": 1500}),
        ]
        owner_actor = await staff_actor(db, shop, "owner")
        assert {e.actor for e in entries} == {owner_actor.label}

        # Restore the default: the override is gone, the fee is the default again.
        page = (await owner.get(URL)).text
        r = await owner.post(f"{URL}/free_delivery_from_cents/reset",
                             data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303 and r.headers["location"] == f"{URL}?done=reset"
        assert await stored(db) == {"home_delivery_fee_cents": 750}
        home = _home_label((await web.get("/shop/checkout")).text)
        assert "Maksuton yli 50,00 € tilauksiin" in home
        r = await owner.post(f"{URL}/no_such_setting/reset", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 404 and 'data-testid="error-page"' in r.text
        # Saving the default value again removes the override too.
        r = await post(owner, page, home_delivery_fee_cents="5,90")
        assert r.status_code == 303 and await stored(db) == {}


def _home_label(page: str) -> str:
    m = re.search(r'<label for="delivery-home">(.*?)</label>', page, re.S)
    assert m, "no home delivery choice"
    return " ".join(re.sub(r"<[^>]+>", " ", m[1]).replace("\xa0", " ").split())


async def test_the_till_uses_new_receipt_details_and_discount_limit_at_once(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop,
        restore: LiveSettings) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 10})
    owner = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    async with owner:
        page = await owner_page(owner, shop)
        await staff_login(web, shop, "cashier1")
        await open_drawer(db, shop.store1)
        cfg = config_of((await web.get("/pos/store-1")).text)
        assert cfg["maxDiscountPct"] == 20 and cfg["seller"]["name"] == "Saumaton Demo Oy"
        line = {"variant_id": v["id"], "quantity": 1,
                "discount": {"percent_bp": 1500, "reason": "Asiakas"}}
        r = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                           content=json.dumps(sale(cfg, [line])))
        assert r.status_code == 201, r.text  # 15 % is within 20 %

        r = await post(owner, page, pos_cashier_max_discount_pct="10",
                       business_name="Kauneus ja Koti Oy", business_id="15728600",
                       business_address="Hämeenkatu 5, 33100 Tampere")
        assert r.status_code == 303, r.text

        # The till page (a reload) hands till.js the new limit and seller.
        cfg = config_of((await web.get("/pos/store-1")).text)
        assert cfg["maxDiscountPct"] == 10
        assert cfg["seller"] == {"name": "Kauneus ja Koti Oy", "id": "1572860-0",
                                 "address": "Hämeenkatu 5, 33100 Tampere"}
        # The core refuses the same 15 % discount now, and says the limit.
        r = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                           content=json.dumps(sale(cfg, [line])))
        assert r.status_code == 403 and r.json()["code"] == "discount_over_limit", r.text
        ok = {**line, "discount": {"percent_bp": 1000, "reason": "Asiakas"}}
        r = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                           content=json.dumps(sale(cfg, [ok])))
        assert r.status_code == 201, r.text
        receipt = (await web.get(r.json()["receipt_url"])).text
        assert text_of(receipt, "business-name") == "Kauneus ja Koti Oy"
        assert text_of(receipt, "business-id") == "1572860-0"
        assert "Hämeenkatu 5, 33100 Tampere" in receipt


async def test_a_store_return_window_follows_the_store_setting(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop,
        restore: LiveSettings) -> None:
    [v] = await make_variants(db, [1000], stock={shop.store1: 10})
    await staff_login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    cfg = config_of((await web.get("/pos/store-1")).text)
    r = await web.post("/pos/store-1/api/sales", headers=headers(cfg),
                       content=json.dumps(sale(cfg, [{"variant_id": v["id"]}])))
    assert r.status_code == 201, r.text
    order_id = r.json()["order"]["id"]
    async with db.uow() as uow:  # sold ten days ago
        await uow.session.execute(update(Order).where(Order.id == order_id).values(
            sold_at=utcnow() - timedelta(days=10), created_at=utcnow() - timedelta(days=10)))
        await uow.commit()
    owner = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    async with owner:
        page = await owner_page(owner, shop)
        r = await post(owner, page, **{store_field(shop.store1): "30"})
        assert r.status_code == 303
        window = text_of((await web.get(f"/pos/store-1/returns/orders/{order_id}")).text,
                         "window")
        assert "(30 päivää)" in window and "auki" in window

        r = await post(owner, page, **{store_field(shop.store1): "5"})
        assert r.status_code == 303
        window = text_of((await web.get(f"/pos/store-1/returns/orders/{order_id}")).text,
                         "window")
        assert "(5 päivää)" in window and "auki" not in window
        # The API refuses the return too (no manager's reason given).
        r = await client.post(f"/api/v1/orders/{order_id}/returns",
                              headers=shop.auth("owner"), json={
                                  "location": "store-1", "reason": "Ei sopinut",
                                  "lines": [{"line_no": 1, "quantity": 1}]})
        assert r.status_code == 409 and r.json()["code"] == "return_window_closed", r.text
    async with db.reader() as s:
        entry = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "settings.change", AuditEntry.subject_type == "location",
            AuditEntry.subject_id == shop.store1).order_by(AuditEntry.id.desc()))).first()
    assert entry is not None and entry.data["new"] == 5 and entry.data["old"] == 30


async def test_another_app_process_follows_the_change(
        server: Server, db: Database, shop: Shop, restore: LiveSettings) -> None:
    """A real uvicorn process against the same database learns of the change from the
    "settings.changed" event (PostgreSQL NOTIFY / the SQLite poll), not by a restart."""
    name = f"Toinen Prosessi {uuid.uuid4().hex[:6]} Oy"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
        assert name not in (await c.get("/shop/")).text
        page = await owner_page(c, shop)
        r = await post(c, page, business_name=name, web_return_days="30")
        assert r.status_code == 303
        # The change came through the server itself; now one made by another process
        # (this test's own unit of work), announced only by the event.
        async with db.uow() as uow:
            await services.save(uow, SYSTEM, restore.base, {"pickup_hold_days": "9"})
            await uow.commit()
        async def seen() -> bool:
            return 'name="pickup_hold_days" value="9"' in (await c.get(URL)).text
        await eventually(seen, within=20, what="the other process sees the change")
        assert name in (await c.get("/shop/")).text
    await restore_settings(db, restore, {})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
        async def restored() -> bool:
            return name not in (await c.get("/shop/")).text
        await eventually(restored, within=20, what="the restore reaches the other process")


async def test_loyalty_rates_apply_to_the_next_sale(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop,
        restore: LiveSettings) -> None:
    async with db.uow() as uow:
        customer = await create_customer(uow, SYSTEM, CustomerIn(
            first_name="Lea", last_name=f"L{uuid.uuid4().hex[:6]}", issue_card=True))
        await uow.commit()
    [v] = await make_variants(db, [2000], stock={shop.store1: 10})
    owner = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    async with owner:
        page = await owner_page(owner, shop)
        r = await post(owner, page, loyalty_points_per_euro="3",
                       loyalty_points_valid_days="10")
        assert r.status_code == 303
    await staff_login(web, shop, "cashier1")
    await open_drawer(db, shop.store1)
    cfg = config_of((await web.get("/pos/store-1")).text)
    before = utcnow()
    r = await web.post("/pos/store-1/api/sales", headers=headers(cfg), content=json.dumps(
        sale(cfg, [{"variant_id": v["id"]}], customer_id=customer.id)))
    assert r.status_code == 201, r.text
    async with db.reader() as s:
        [earned] = (await s.scalars(select(LoyaltyEntry).where(
            LoyaltyEntry.customer_id == customer.id, LoyaltyEntry.kind == "earn"))).all()
    assert earned.points == 60  # 20 € × 3 (the default is 1 a euro)
    assert earned.expires_at is not None
    expires = earned.expires_at.replace(tzinfo=before.tzinfo) \
        if earned.expires_at.tzinfo is None else earned.expires_at
    assert timedelta(days=9) < expires - before < timedelta(days=11)


async def test_the_page_in_english(web: httpx.AsyncClient, shop: Shop,
                                   restore: LiveSettings) -> None:
    await staff_login(web, shop, "owner")
    page = (await web.get(URL, params={"lang": "en"})).text
    assert text_of(page, "default-free_delivery_from_cents") == "Default: €50.00"
    assert '<label for="web_return_days">Web order returns (days)</label>' in page
    assert 'name="home_delivery_fee_cents" value="5.90"' in page  # a decimal point
    r = await post(web, page, web_return_days="10", home_delivery_fee_cents="5,90 €",
                   business_id="ABC")
    assert r.status_code == 422
    assert text_of(r.text, "error-web_return_days") == "Give at least 14."
    assert text_of(r.text, "error-business_id") == (
        "This is not a valid business ID (Y-tunnus), e.g. 1234567-1.")
    assert "error-home_delivery_fee_cents" not in r.text  # "5,90 €" is a fine amount
