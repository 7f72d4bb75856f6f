"""Catalogue administration through /api/v1 on both databases: categories (list, read,
create, change, move), product pictures (upload, list, alt/position/variant, reorder,
delete) and further barcodes (list, remove) — each with its refusals (who may not,
what is not valid) and its pages walked with the cursor."""

from __future__ import annotations

import io
import uuid

import httpx
from PIL import Image
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.db.uow import Database
from tests.api_pages import all_pages
from tests.support import Shop, make_variants, new_ean


def picture(kind: str, size: tuple[int, int] = (300, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (20, 120, 60)).save(buf, kind)
    return buf.getvalue()


async def audit_actions(db: Database, entity: str, entity_id: int) -> list[str]:
    async with db.reader() as s:
        return list((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == entity, AuditEntry.subject_id == entity_id)
            .order_by(AuditEntry.id))).all())


async def test_categories_are_created_listed_moved_and_renamed(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    tag = uuid.uuid4().hex[:6]
    r = await client.post("/api/v1/categories", headers=shop.auth("manager"),
                          json={"name": f"Iho {tag}", "name_en": "Skin", "position": 3})
    assert r.status_code == 201, r.text
    top = r.json()
    assert top["name"] == f"Iho {tag}" and top["parent_id"] is None and top["position"] == 3
    assert top["slug"].startswith("skin")
    assert r.headers["location"] == f"/api/v1/categories/{top['id']}"
    kids = []
    for i in range(5):
        r = await client.post("/api/v1/categories", headers=shop.auth("owner"),
                              json={"name": f"Lapsi {tag} {i}", "parent_id": top["id"]})
        assert r.status_code == 201, r.text
        kids.append(r.json()["id"])

    items, pages = await all_pages(client, "/api/v1/categories", shop.auth("finance"),
                                   limit=2, params={"parent_id": top["id"]})
    assert [c["id"] for c in items] == kids and pages == 3
    everything, _ = await all_pages(client, "/api/v1/categories", shop.auth("finance"),
                                    limit=50)
    assert {top["id"], *kids} <= {c["id"] for c in everything}

    r = await client.patch(f"/api/v1/categories/{kids[0]}", headers=shop.auth("manager"),
                           json={"name": f"Kasvot {tag}"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == f"Kasvot {tag}" and r.json()["parent_id"] == top["id"]
    # A category cannot go under its own child; nothing changes.
    r = await client.patch(f"/api/v1/categories/{top['id']}", headers=shop.auth("manager"),
                           json={"parent_id": kids[1]})
    assert r.status_code == 422 and r.json()["code"] == "category_cycle"
    assert r.json()["field"] == "parent_id"
    # parent_id null: to the top level.
    r = await client.patch(f"/api/v1/categories/{kids[2]}", headers=shop.auth("manager"),
                           json={"parent_id": None, "position": 7})
    assert r.status_code == 200 and r.json()["parent_id"] is None
    assert r.json()["position"] == 7 and r.json()["name"] == f"Lapsi {tag} 2"
    r = await client.get(f"/api/v1/categories/{top['id']}", headers=shop.auth("finance"))
    assert r.status_code == 200 and r.json() == top
    assert await audit_actions(db, "category", kids[0]) == ["category.create",
                                                            "category.update"]


async def test_category_refusals(client: httpx.AsyncClient, shop: Shop) -> None:
    for blank in ("   ", "\u00a0\u00a0", "\u2003", "\u200b"):
        r = await client.post("/api/v1/categories", headers=shop.auth("owner"),
                              json={"name": blank})
        assert r.status_code == 422 and r.json()["field"] == "name", (blank, r.text)
    r = await client.post("/api/v1/categories", headers=shop.auth("owner"),
                          json={"name": "x" * 201})
    assert r.status_code == 422 and r.json()["field"] == "name"
    r = await client.post("/api/v1/categories", headers=shop.auth("owner"),
                          json={"name": "Ok", "position": True})
    assert r.status_code == 422
    r = await client.post("/api/v1/categories", headers=shop.auth("owner"),
                          json={"name": "Ok", "parent_id": 2_000_000_000})
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"
    for who in ("cashier1", "finance", "service"):
        r = await client.post("/api/v1/categories", headers=shop.auth(who),
                              json={"name": "Nope"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden", who
    # A store's manager is not a manager of the shared catalogue.
    r = await client.post("/api/v1/categories", headers=shop.auth("manager1"),
                          json={"name": "Nope"})
    assert r.status_code == 403
    r = await client.get("/api/v1/categories", headers=shop.auth("cashier1"))
    assert r.status_code == 403
    r = await client.get("/api/v1/categories")
    assert r.status_code == 401
    r = await client.get("/api/v1/categories/2000000000", headers=shop.auth("finance"))
    assert r.status_code == 404 and r.json()["code"] == "category_not_found"
    r = await client.patch("/api/v1/categories/2000000000", headers=shop.auth("owner"),
                           json={"name": "X"})
    assert r.status_code == 404
    r = await client.get("/api/v1/categories", headers=shop.auth("finance"),
                         params={"cursor": "bm90LWEtY3Vyc29y"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"


async def test_pictures_are_uploaded_listed_reordered_and_deleted(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    v = (await make_variants(db, [1200, 1300]))
    pid = int(str(v[0]["product_id"]))
    url = f"/api/v1/products/{pid}/images"
    ids = []
    for kind, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        r = await client.post(url, headers=shop.auth("manager"),
                              data={"alt": f"Kuva {kind}"},
                              files={"image": (f"p.{kind.lower()}", picture(kind), mime)})
        assert r.status_code == 201, r.text
        img = r.json()
        assert img["alt"] == f"Kuva {kind}" and img["url"].endswith("-400.webp")
        assert set(img["sizes"]) == {"64", "128", "400", "800"}
        assert r.headers["location"] == f"{url}/{img['id']}"
        ids.append(img["id"])
    items, pages = await all_pages(client, url, shop.auth("finance"), limit=2)
    assert [i["id"] for i in items] == ids and pages == 2
    assert [i["position"] for i in items] == [0, 1, 2]

    r = await client.patch(f"{url}/{ids[1]}", headers=shop.auth("owner"),
                           json={"alt": "Sävy", "variant_id": v[1]["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["alt"] == "Sävy" and r.json()["variant_id"] == v[1]["id"]
    assert r.json()["position"] == 1
    r = await client.patch(f"{url}/{ids[1]}", headers=shop.auth("owner"),
                           json={"variant_id": None})
    assert r.status_code == 200 and r.json()["variant_id"] is None
    assert r.json()["alt"] == "Sävy"

    r = await client.put(f"{url}/order", headers=shop.auth("owner"),
                         json={"image_ids": [ids[2], ids[0], ids[1]]})
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [ids[2], ids[0], ids[1]]
    for wrong in ([ids[2], ids[0]], [ids[0], ids[0], ids[1], ids[2]],
                  [ids[0], ids[1], ids[2], 2_000_000_000]):
        r = await client.put(f"{url}/order", headers=shop.auth("owner"),
                             json={"image_ids": wrong})
        assert r.status_code == 422 and r.json()["code"] == "invalid_image_order"
        assert r.json()["field"] == "image_ids"

    r = await client.delete(f"{url}/{ids[0]}", headers=shop.auth("owner"))
    assert r.status_code == 204
    items, _ = await all_pages(client, url, shop.auth("finance"), limit=10)
    assert [i["id"] for i in items] == [ids[2], ids[1]]
    r = await client.delete(f"{url}/{ids[0]}", headers=shop.auth("owner"))
    assert r.status_code == 404 and r.json()["code"] == "image_not_found"
    assert (await audit_actions(db, "product", pid))[-3:] == [
        "image.update", "image.reorder", "image.delete"]


async def test_picture_refusals(client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    v = (await make_variants(db, [900]))[0]
    other = (await make_variants(db, [900]))[0]
    pid = int(str(v["product_id"]))
    url = f"/api/v1/products/{pid}/images"
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    r = await client.post(url, headers=shop.auth("owner"),
                          files={"image": ("a.gif", gif.getvalue(), "image/gif")})
    assert r.status_code == 422 and r.json()["code"] == "image_type"
    assert r.json()["field"] == "image"
    r = await client.post(url, headers=shop.auth("owner"),
                          files={"image": ("a.png", b"not a picture", "image/png")})
    assert r.status_code == 422 and r.json()["code"] == "image_type"
    r = await client.post(url, headers=shop.auth("owner"), data={"alt": "x"})
    assert r.status_code == 422 and r.json()["field"] == "image"
    r = await client.post(url, headers=shop.auth("owner"), data={"alt": "x" * 301},
                          files={"image": ("p.png", picture("PNG"), "image/png")})
    assert r.status_code == 422 and r.json()["field"] == "alt"
    r = await client.post(url, headers=shop.auth("owner"),
                          data={"variant_id": str(other["id"])},
                          files={"image": ("p.png", picture("PNG"), "image/png")})
    assert r.status_code == 422 and r.json()["code"] == "variant_not_of_product"
    r = await client.post("/api/v1/products/2000000000/images", headers=shop.auth("owner"),
                          files={"image": ("p.png", picture("PNG"), "image/png")})
    assert r.status_code == 404 and r.json()["code"] == "product_not_found"
    for who in ("cashier1", "finance", "manager1"):
        r = await client.post(url, headers=shop.auth(who),
                              files={"image": ("p.png", picture("PNG"), "image/png")})
        assert r.status_code == 403, who
    r = await client.post(url, headers=shop.auth("owner"),
                          files={"image": ("p.png", picture("PNG"), "image/png")})
    image_id = r.json()["id"]
    r = await client.patch(f"{url}/{image_id}", headers=shop.auth("owner"),
                           json={"position": 10_001})
    assert r.status_code == 422 and r.json()["field"] == "position"
    r = await client.patch(f"{url}/{image_id}", headers=shop.auth("owner"),
                           json={"colour": "red"})
    assert r.status_code == 422
    r = await client.delete(f"{url}/{image_id}", headers=shop.auth("finance"))
    assert r.status_code == 403
    r = await client.get(url, headers=shop.auth("cashier1"))
    assert r.status_code == 403
    r = await client.get("/api/v1/products/2000000000/images", headers=shop.auth("finance"))
    assert r.status_code == 404


async def test_further_barcodes_are_listed_and_removed(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    v = (await make_variants(db, [500]))[0]
    vid = v["id"]
    codes = [new_ean() for _ in range(3)]
    for code in codes:
        r = await client.post(f"/api/v1/variants/{vid}/barcodes", headers=shop.auth("owner"),
                              json={"code": code})
        assert r.status_code == 201, r.text
    url = f"/api/v1/variants/{vid}/barcodes"
    items, pages = await all_pages(client, url, shop.auth("finance"), limit=2)
    assert [b["code"] for b in items] == codes and pages == 2
    assert {b["variant_id"] for b in items} == {vid}

    r = await client.delete(f"{url}/{items[0]['id']}", headers=shop.auth("cashier1"))
    assert r.status_code == 403
    r = await client.delete(f"{url}/{items[0]['id']}", headers=shop.auth("manager"))
    assert r.status_code == 204
    items2, _ = await all_pages(client, url, shop.auth("finance"), limit=2)
    assert [b["code"] for b in items2] == codes[1:]
    # The code is free again: the scanner finds no variant by it.
    r = await client.get("/api/v1/variants", params={"code": codes[0]})
    assert r.status_code == 404
    r = await client.delete(f"{url}/{items[0]['id']}", headers=shop.auth("manager"))
    assert r.status_code == 404 and r.json()["code"] == "barcode_not_found"
    r = await client.get("/api/v1/variants/2000000000/barcodes", headers=shop.auth("finance"))
    assert r.status_code == 404 and r.json()["code"] == "variant_not_found"
    assert (await audit_actions(db, "variant", vid))[-1] == "barcode.remove"


async def test_product_list_has_inactive_products_filters_and_pages(
        client: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    made = [await make_variants(db, [700], stock={shop.store1: n}) for n in (0, 2, 10)]
    pids = [int(str(v[0]["product_id"])) for v in made]
    brand = f"Merkki {uuid.uuid4().hex[:6]}"
    for pid in pids:
        r = await client.patch(f"/api/v1/products/{pid}", headers=shop.auth("manager"),
                               json={"brand": brand})
        assert r.status_code == 200, r.text
    # Deactivated: gone from the shop's list, still in this one, and back again.
    r = await client.patch(f"/api/v1/products/{pids[0]}", headers=shop.auth("manager"),
                           json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    shop_list = await client.get("/api/v1/products", params={"q": brand})
    assert pids[0] not in {p["id"] for p in shop_list.json()["items"]}
    url = "/api/v1/catalogue/products"
    rows, pages = await all_pages(client, url, shop.auth("finance"), limit=2,
                                  params={"brand": brand})
    assert [r["id"] for r in rows] == pids and pages == 2
    assert [(r["active"], r["stock"], r["on_hand"]) for r in rows] == [
        (False, "out", 0), (True, "low", 2), (True, "in", 10)]
    r = await client.get(url, headers=shop.auth("finance"),
                         params={"brand": brand, "active": "false"})
    assert [x["id"] for x in r.json()["items"]] == [pids[0]]
    r = await client.get(url, headers=shop.auth("finance"),
                         params={"brand": brand, "stock": "low"})
    assert [x["id"] for x in r.json()["items"]] == [pids[1]]
    r = await client.get(url, headers=shop.auth("finance"),
                         params={"q": str(made[2][0]["ean"])})
    assert [x["id"] for x in r.json()["items"]] == [pids[2]]
    r = await client.patch(f"/api/v1/products/{pids[0]}", headers=shop.auth("manager"),
                           json={"active": True})
    assert r.status_code == 200 and r.json()["active"] is True
    r = await client.get(url, headers=shop.auth("finance"),
                         params={"brand": brand, "active": "false"})
    assert r.json()["items"] == []
    r = await client.get(url, headers=shop.auth("cashier1"))
    assert r.status_code == 403
    r = await client.get(url, headers=shop.auth("finance"), params={"stock": "some"})
    assert r.status_code == 422 and r.json()["field"] == "stock"


async def test_an_empty_category_is_removed(client: httpx.AsyncClient, shop: Shop,
                                            db: Database) -> None:
    tag = uuid.uuid4().hex[:6]
    top = (await client.post("/api/v1/categories", headers=shop.auth("owner"),
                             json={"name": f"Poistuva {tag}"})).json()
    kid = (await client.post("/api/v1/categories", headers=shop.auth("owner"),
                             json={"name": f"Ala {tag}", "parent_id": top["id"]})).json()
    v = (await make_variants(db, [100]))[0]
    pid = int(str(v["product_id"]))
    r = await client.patch(f"/api/v1/products/{pid}", headers=shop.auth("owner"),
                           json={"category_id": kid["id"]})
    assert r.status_code == 200, r.text
    r = await client.delete(f"/api/v1/categories/{top['id']}", headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["code"] == "category_not_empty"
    assert (r.json()["subcategories"], r.json()["products"]) == (1, 0)
    r = await client.delete(f"/api/v1/categories/{kid['id']}", headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["products"] == 1
    r = await client.patch(f"/api/v1/products/{pid}", headers=shop.auth("owner"),
                           json={"category_id": None})
    assert r.status_code == 200, r.text
    # A campaign aimed at the category keeps it too, until it is aimed elsewhere.
    campaign = {"name": f"Ale {tag}", "kind": "percent", "value": 1000,
                "starts_at": "2030-01-01T00:00:00Z", "category_ids": [kid["id"]]}
    r = await client.post("/api/v1/campaigns", headers=shop.auth("owner"), json=campaign)
    assert r.status_code == 201, r.text
    campaign_id = r.json()["id"]
    r = await client.delete(f"/api/v1/categories/{kid['id']}", headers=shop.auth("owner"))
    assert r.status_code == 409 and r.json()["campaigns"] == 1
    r = await client.put(f"/api/v1/campaigns/{campaign_id}", headers=shop.auth("owner"),
                         json={**campaign, "category_ids": [], "variant_ids": [v["id"]]})
    assert r.status_code == 200, r.text
    r = await client.delete(f"/api/v1/categories/{kid['id']}", headers=shop.auth("finance"))
    assert r.status_code == 403
    r = await client.delete(f"/api/v1/categories/{kid['id']}", headers=shop.auth("manager"))
    assert r.status_code == 204
    r = await client.delete(f"/api/v1/categories/{top['id']}", headers=shop.auth("manager"))
    assert r.status_code == 204
    r = await client.get(f"/api/v1/categories/{top['id']}", headers=shop.auth("finance"))
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/categories/{top['id']}", headers=shop.auth("manager"))
    assert r.status_code == 404 and r.json()["code"] == "category_not_found"
    assert (await audit_actions(db, "category", kid["id"]))[-1] == "category.delete"
