"""Editing the catalogue through the core (both databases): product and variant updates
audited and emitted as product.updated; chain-wide permission; further barcodes unique
across EANs and barcodes and found by every lookup (API, webshop, till snapshot, API
order); the category tree refuses cycles; an inactive product or variant is off sale
in every channel at once (till sale, API order, web cart, shop page, till snapshot)
while an order already made is untouched."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.catalogue import editing
from saumaton.catalogue.search import product_for_code
from saumaton.catalogue.services import find_variant_by_code
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, ValidationFailed
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.locations.services import channel_by_code
from saumaton.orders.services import business_day
from saumaton.tills.catalogue import build_catalogue
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import Shop, make_variants, new_ean, open_drawer, staff_actor


def product_edit(**over: object) -> editing.ProductEdit:
    data: dict[str, object] = {"name": "Muokattu", "name_en": "Edited", "brand": "B",
                               "description": "", "description_en": "", "vat_class": "standard",
                               "active": True}
    data.update(over)
    return editing.ProductEdit.model_validate(data)


async def events_for(db: Database, topic: str, product_id: int) -> list[dict[str, object]]:
    async with db.reader() as s:
        rows = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == topic).order_by(OutboxEvent.id.desc()).limit(200))).all()
    return [p for p in rows if p.get("product_id") == product_id]


async def test_update_product_is_audited_and_emitted_and_needs_chain_wide_rights(
        db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 2000])
    pid = int(str(a["product_id"]))
    manager1 = await staff_actor(db, shop, "manager1")  # manages one store only
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await editing.update_product(uow, manager1, pid, product_edit())
    manager = await staff_actor(db, shop, "manager")
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as exc:
            await editing.update_product(uow, manager, pid, product_edit(vat_class="nope"))
        assert exc.value.code == "unknown_vat_class" and exc.value.field == "vat_class"
    async with db.uow() as uow:
        await editing.update_product(uow, manager, pid, product_edit(active=False))
        await uow.commit()
    [event] = await events_for(db, "product.updated", pid)
    assert event["variant_ids"] == sorted([a["id"], b["id"]])
    async with db.reader() as s:
        entry = await s.scalar(select(AuditEntry).where(
            AuditEntry.subject_type == "product", AuditEntry.subject_id == pid,
            AuditEntry.action == "product.update"))
    assert entry is not None and entry.actor == manager.label
    assert entry.data["changed"]["active"] == [True, False]
    assert entry.data["changed"]["name_en"] == ["", "Edited"]


async def test_further_barcodes_are_unique_and_found_everywhere(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1500, 2500], stock={shop.store1: 5})
    code = new_ean()
    async with db.uow() as uow:
        assert await editing.add_barcode(uow, SYSTEM, int(str(a["id"])), f" {code} ") == code
        await uow.commit()
    for taken in (code, str(b["ean"])):  # another's further code or main EAN
        async with db.uow() as uow:
            with pytest.raises(Conflict) as exc:
                await editing.add_barcode(uow, SYSTEM, int(str(b["id"])), taken)
            assert exc.value.code == "duplicate_ean"
    async with db.uow() as uow:  # nor may a variant take it as its EAN
        problems = await editing.variant_problems(uow.session, editing.VariantEdit(
            sku=str(b["sku"]), ean=code), int(str(b["id"])))
        assert [p.code for p in problems] == ["duplicate_ean"]
        with pytest.raises(ValidationFailed) as bad:
            await editing.add_barcode(uow, SYSTEM, int(str(b["id"])), "4006381333932"[:-1] + "0")
        assert bad.value.code == "invalid_ean"

    async with db.reader() as s:
        assert (await find_variant_by_code(s, code)).id == a["id"]
        assert await product_for_code(s, code) == (a["product_slug"], a["id"])
        channel = await channel_by_code(s, "pos-1")
        now = utcnow()
        snapshot = await build_catalogue(s, channel, now, business_day(now))
    [row] = [v for v in snapshot.body["variants"] if v["id"] == a["id"]]
    assert row["codes"] == [code]
    r = await client.get("/api/v1/variants", params={"code": code})
    assert r.status_code == 200 and r.json()["id"] == a["id"]
    r = await client.get("/shop/search", params={"q": code})
    assert r.status_code == 303 and f"variant={a['id']}" in r.headers["location"]
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"ean": code, "quantity": 1}],
        "payments": [{"method": "cash", "tendered_cents": 2000}]})
    assert r.status_code == 201, r.text
    assert r.json()["lines"][0]["variant_id"] == a["id"]

    # Removed, the code finds nothing and is free again.
    async with db.uow() as uow:
        [(barcode_id, _)] = (await editing.barcodes_of(uow.session, [int(str(a["id"]))]))[
            int(str(a["id"]))]
        await editing.remove_barcode(uow, SYSTEM, int(str(a["id"])), barcode_id)
        await uow.commit()
    assert (await client.get("/api/v1/variants", params={"code": code})).status_code == 404


async def test_the_category_tree_refuses_cycles(db: Database) -> None:
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        top = await editing.save_category(uow, SYSTEM, None, editing.CategoryEdit(f"A {tag}"))
        mid = await editing.save_category(uow, SYSTEM, None,
                                          editing.CategoryEdit(f"B {tag}", parent_id=top.id))
        low = await editing.save_category(uow, SYSTEM, None,
                                          editing.CategoryEdit(f"C {tag}", parent_id=mid.id))
        await uow.commit()
    for parent in (top.id, low.id):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as exc:
                await editing.save_category(uow, SYSTEM, top.id, editing.CategoryEdit(
                    f"A {tag}", parent_id=parent))
            assert exc.value.code == "category_cycle"
    async with db.uow() as uow:  # moving a leaf elsewhere is fine
        moved = await editing.save_category(uow, SYSTEM, low.id, editing.CategoryEdit(
            f"C {tag}", name_en="C en", parent_id=top.id, position=3))
        await uow.commit()
    assert moved.parent_id == top.id and moved.slug == low.slug


async def test_inactive_is_off_sale_everywhere_and_old_orders_stay(
        client: httpx.AsyncClient, web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1200, 1300], stock={shop.store1: 5, shop.warehouse: 5})
    sold = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": a["id"]}],
        "payments": [{"method": "cash", "tendered_cents": 2000}]})
    assert sold.status_code == 201
    # The web cart holds b; then b (the variant) goes off sale, and a's whole product.
    page = await web.get(f"/shop/p/{b['product_slug']}?variant={b['id']}")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = await web.post("/shop/cart/add", data={"csrf_token": csrf, "variant_id": str(b["id"]),
                                               "quantity": "1"})
    assert r.status_code == 303
    async with db.uow() as uow:
        await editing.update_variant(uow, SYSTEM, int(str(b["id"])), editing.VariantEdit(
            sku=str(b["sku"]), ean=str(b["ean"]), name=str(b["name"]), active=False))
        await uow.commit()

    cart = await web.get("/shop/cart")
    assert str(b["sku"]) not in cart.text and f"variant={b['id']}" not in cart.text
    r = await web.post("/shop/cart/add", data={"csrf_token": csrf, "variant_id": str(b["id"]),
                                               "quantity": "1"})
    assert r.status_code == 422
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"variant_id": b["id"]}],
        "payments": [{"method": "cash", "tendered_cents": 2000}]})
    assert r.status_code == 422 and r.json()["code"] == "variant_inactive"
    cashier = await staff_actor(db, shop, "cashier1")
    session_id = await open_drawer(db, shop.store1)
    with pytest.raises(ValidationFailed) as exc:
        await sell(db, cashier, shop.store1, TillSaleIn(
            key=uuid.uuid4().hex, session_id=session_id,
            lines=[TillLineIn(variant_id=int(str(b["id"])))],
            payments=[TillPaymentIn(method="cash")]))
    assert exc.value.code == "variant_inactive"
    async with db.reader() as s:
        channel = await channel_by_code(s, "pos-1")
        now = utcnow()
        ids = {v["id"] for v in (await build_catalogue(s, channel, now, business_day(now))
                                 ).body["variants"]}
    assert b["id"] not in ids and a["id"] in ids
    shown = await client.get(f"/shop/p/{b['product_slug']}")
    assert shown.status_code == 200 and f"variant={b['id']}" not in shown.text

    async with db.uow() as uow:  # the whole product off sale
        await editing.update_product(uow, SYSTEM, int(str(a["product_id"])),
                                     product_edit(active=False))
        await uow.commit()
    assert (await client.get(f"/shop/p/{a['product_slug']}")).status_code == 404
    r = await client.post("/api/v1/orders", headers=shop.auth("cashier1"), json={
        "channel": "pos-1", "lines": [{"ean": a["ean"]}],
        "payments": [{"method": "cash", "tendered_cents": 2000}]})
    assert r.status_code == 422 and r.json()["code"] == "variant_inactive"
    found = await client.get("/shop/search", params={"q": str(a["sku"])})
    assert f"/shop/p/{a['product_slug']}" not in found.text
    order = await client.get(f"/api/v1/orders/{sold.json()['id']}",
                             headers=shop.auth("cashier1"))
    assert order.status_code == 200 and order.json()["lines"][0]["variant_id"] == a["id"]


async def test_the_api_edits_products_variants_and_barcodes(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [990])
    pid, vid = v["product_id"], v["id"]
    r = await client.patch(f"/api/v1/products/{pid}", headers=shop.auth("manager1"),
                           json={"name_en": "Edited"})
    assert r.status_code == 403  # one store's manager: not the chain's catalogue
    r = await client.patch(f"/api/v1/products/{pid}", headers=shop.auth("manager"),
                           json={"name_en": "Edited", "description_en": "In English."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name_en"] == "Edited" and body["name"].startswith("Product ")  # kept
    assert body["description_en"] == "In English." and body["active"] is True
    r = await client.patch(f"/api/v1/products/{pid}", headers=shop.auth("manager"),
                           json={"vat_class": "nope"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_vat_class"

    sku = f"API-{uuid.uuid4().hex[:8]}"
    r = await client.post(f"/api/v1/products/{pid}/variants", headers=shop.auth("manager"),
                          json={"sku": sku, "ean": str(v["ean"]), "price_cents": 1500})
    assert r.status_code == 409 and r.json()["code"] == "duplicate_ean"
    ean = new_ean()
    r = await client.post(f"/api/v1/products/{pid}/variants", headers=shop.auth("manager"),
                          json={"sku": sku, "ean": ean, "price_cents": 1500,
                                "name": "Iso", "name_en": "Large", "cost_cents": 400,
                                "attributes": {"size": "100 ml"}})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["ean"] == ean and new["price_cents"] == 1500 and new["name_en"] == "Large"
    r = await client.patch(f"/api/v1/variants/{new['id']}", headers=shop.auth("manager"),
                           json={"active": False, "cost_cents": 450})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["sku"] == sku
    code = new_ean()
    r = await client.post(f"/api/v1/variants/{vid}/barcodes", headers=shop.auth("manager"),
                          json={"code": code})
    assert r.status_code == 201 and r.json() == {"code": code}
    r = await client.post(f"/api/v1/variants/{new['id']}/barcodes",
                          headers=shop.auth("manager"), json={"code": code})
    assert r.status_code == 409
    events = await events_for(db, "product.updated", int(str(pid)))
    assert len(events) >= 4 and events[0]["variant_ids"] == sorted([vid, new["id"]])
