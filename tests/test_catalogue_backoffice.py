"""The catalogue pages of the back office (both databases): a product created through the
form (every error at once next to its field, nothing saved; a valid one saved and on
sale), edited, taken off sale; variants with further barcodes; categories as a tree;
pictures uploaded, resized and served with long cache headers; English names on the
webshop's English pages; the list's search and filters."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy import func, select

from saumaton.audit.models import AuditEntry
from saumaton.catalogue import editing
from saumaton.catalogue.models import Category, Product, ProductImage, Variant
from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.inventory.services import Move, apply_moves
from tests.support import Shop, csrf_of, make_variants, new_ean, staff_login, text_of


def product_form(csrf: str, tag: str, **over: str) -> dict[str, str]:
    form = {"csrf_token": csrf, "name": f"Huulipuna {tag}", "name_en": f"Lipstick {tag}",
            "brand": "Kaunis Iho", "description": "Kermainen.", "description_en": "Creamy.",
            "category_id": "", "vat_class": "standard", "sku": f"BO-{tag}", "ean": new_ean(),
            "variant_name": "Puolukka", "variant_name_en": "Lingonberry", "shade": "101",
            "size": "4 g", "attributes": "finish: matte", "price": "19,90", "cost": "6,50"}
    form.update(over)
    return form


async def count_products(db: Database, name: str) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.count()).select_from(Product)
                                  .where(Product.name == name)) or 0)


async def test_a_bad_form_shows_every_error_next_to_its_field_and_saves_nothing(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    csrf = await staff_login(web, shop, "owner")
    page = await web.get("/backoffice/products/new")
    assert page.status_code == 200 and 'data-testid="product-form"' in page.text
    taken = (await make_variants(db, [500]))[0]
    tag = uuid.uuid4().hex[:8]
    bad_ean = new_ean()
    bad_ean = bad_ean[:-1] + str((int(bad_ean[-1]) + 1) % 10)
    form = product_form(csrf, tag, name="", ean=bad_ean, sku=str(taken["sku"]), price="abc",
                        cost="x1", attributes="no colon here")
    r = await web.post("/backoffice/products/new", data=form)
    assert r.status_code == 422
    assert "Täytä tämä kenttä" in text_of(r.text, "error-name")
    assert "EAN" in text_of(r.text, "error-ean")
    assert "SKU" in text_of(r.text, "error-sku")
    assert text_of(r.text, "error-price") and text_of(r.text, "error-cost")
    assert text_of(r.text, "error-attributes")
    assert 'aria-describedby="name-error"' in r.text and 'aria-invalid="true"' in r.text
    assert f'value="{form["name_en"]}"' in r.text  # what was typed stays
    assert await count_products(db, f"Lipstick {tag}") == 0
    async with db.reader() as s:
        assert await s.scalar(select(Variant.id).where(Variant.sku == f"BO-{tag}")) is None

    # An EAN another variant has is refused next to the EAN field (English page).
    r = await web.post("/backoffice/products/new?lang=en", data=product_form(
        csrf, tag, ean=str(taken["ean"])))
    assert r.status_code == 422
    assert "already has this barcode" in text_of(r.text, "error-ean")
    assert await count_products(db, f"Huulipuna {tag}") == 0


async def test_a_valid_product_is_saved_audited_and_for_sale_in_english_too(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    csrf = await staff_login(web, shop, "owner")
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        parent = Category(slug=f"meikit-{tag}", name=f"Meikit {tag}", name_en=f"Makeup {tag}")
        uow.session.add(parent)
        await uow.session.flush()
        child = Category(slug=f"huulet-{tag}", name=f"Huulipunat {tag}",
                         name_en=f"Lipsticks {tag}", parent_id=parent.id)
        uow.session.add(child)
        await uow.commit()
    form = product_form(csrf, tag, category_id=str(child.id))
    r = await web.post("/backoffice/products/new", data=form)
    assert r.status_code == 303, r.text
    page = await web.get(r.headers["location"])
    assert "Tuote on tallennettu" in text_of(page.text, "notice")
    async with db.reader() as s:
        product = await s.scalar(select(Product).where(Product.name == f"Huulipuna {tag}"))
        assert product is not None and product.active and product.name_en == f"Lipstick {tag}"
        variant = await s.scalar(select(Variant).where(Variant.product_id == product.id))
        assert variant is not None
        assert variant.ean == form["ean"] and variant.price_cents == 1990
        assert variant.cost_cents == 650 and variant.name_en == "Lingonberry"
        assert variant.attributes == {"shade": "101", "size": "4 g", "finish": "matte"}
        audited = await s.scalar(select(AuditEntry.action).where(
            AuditEntry.subject_type == "product", AuditEntry.subject_id == product.id))
        assert audited == "product.create"
    assert f'/backoffice/prices?variant_id={variant.id}' in page.text  # "Change price"

    async with db.uow() as uow:  # a second variant: the shop's picker of names
        await editing.add_variant(uow, SYSTEM, product.id, editing.VariantCreate(
            sku=f"BO2-{tag}", name="Karpalo", name_en="Cranberry", price_cents=1990))
        await uow.commit()

    # The webshop in English: product, variant and category names in English.
    shop_page = await client.get(f"/shop/p/{product.slug}", params={"lang": "en"})
    assert shop_page.status_code == 200
    assert text_of(shop_page.text, "product-name") == f"Lipstick {tag}"
    assert text_of(shop_page.text, "variant-name") == "Lingonberry"
    assert "Creamy." in text_of(shop_page.text, "description")
    assert text_of(shop_page.text, "picker-variant") == "Lingonberry Cranberry"
    fi_page = await client.get(f"/shop/p/{product.slug}", params={"lang": "fi"})
    assert text_of(fi_page.text, "product-name") == f"Huulipuna {tag}"
    listing = await client.get(f"/shop/c/{child.slug}", params={"lang": "en"})
    assert text_of(listing.text, "listing-title") == f"Lipsticks {tag}"
    assert f"Makeup {tag}" in listing.text and f"Meikit {tag}" not in listing.text
    assert f"Lipstick {tag}" in listing.text
    found = await client.get("/shop/search", params={"q": f"Lipstick {tag}", "lang": "en"})
    assert f"Lipstick {tag}" in found.text
    await client.get("/shop/?lang=fi")  # the shared client's language back to Finnish


async def test_edit_take_off_sale_variants_and_barcodes(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    csrf = await staff_login(web, shop, "manager")
    v = (await make_variants(db, [1000]))[0]
    pid, vid = int(str(v["product_id"])), int(str(v["id"]))
    page = await web.get(f"/backoffice/products/{pid}")
    assert page.status_code == 200 and text_of(page.text, "product-title").startswith("Product")
    edit = {"csrf_token": csrf, "name": "", "name_en": "", "brand": "B", "description": "",
            "description_en": "", "category_id": "999999", "vat_class": "nope"}
    r = await web.post(f"/backoffice/products/{pid}", data=edit)
    assert r.status_code == 422
    assert text_of(r.text, "error-name") and text_of(r.text, "error-vat_class")
    assert text_of(r.text, "error-category_id")
    edit.update(name="Renamed", vat_class="standard", category_id="")  # active unticked
    r = await web.post(f"/backoffice/products/{pid}", data=edit)
    assert r.status_code == 303
    async with db.reader() as s:
        product = await s.get(Product, pid)
        assert product is not None and product.name == "Renamed" and not product.active
    assert (await client.get(f"/shop/p/{v['product_slug']}")).status_code == 404

    # A further barcode; the same code again (or another's EAN) is refused by the field.
    code = new_ean()
    r = await web.post(f"/backoffice/products/{pid}/variants/{vid}/barcodes",
                       data={"csrf_token": csrf, "code": code})
    assert r.status_code == 303
    r = await web.post(f"/backoffice/products/{pid}/variants/{vid}/barcodes",
                       data={"csrf_token": csrf, "code": code})
    assert r.status_code == 409 and text_of(r.text, "error-bc-code")
    r = await web.post(f"/backoffice/products/{pid}/variants/{vid}/barcodes",
                       data={"csrf_token": csrf, "code": "12345"})
    assert r.status_code == 422 and "EAN" in text_of(r.text, "error-bc-code")
    page = await web.get(f"/backoffice/products/{pid}/variants/{vid}")
    assert code in text_of(page.text, "barcode-list")

    # A new variant (price entered once), then edited; its SKU must be free.
    r = await web.post(f"/backoffice/products/{pid}/variants/new", data={
        "csrf_token": csrf, "sku": str(v["sku"]), "ean": code, "price": "", "active": "yes"})
    assert r.status_code == 422
    assert text_of(r.text, "error-sku") and text_of(r.text, "error-ean")
    assert text_of(r.text, "error-price")
    sku = f"NEW-{uuid.uuid4().hex[:8]}"
    r = await web.post(f"/backoffice/products/{pid}/variants/new", data={
        "csrf_token": csrf, "sku": sku, "ean": "", "price": "12,50", "active": "yes",
        "variant_name": "Iso"})
    assert r.status_code == 303, r.text
    new_id = int(r.headers["location"].split("/variants/")[1].split("?")[0])
    r = await web.post(f"/backoffice/products/{pid}/variants/{new_id}", data={
        "csrf_token": csrf, "sku": sku, "ean": "", "variant_name": "Iso", "cost": "3",
        "shade": "", "size": "50 ml"})  # active unticked: off sale
    assert r.status_code == 303
    async with db.reader() as s:
        nv = await s.get(Variant, new_id)
        assert nv is not None and nv.price_cents == 1250 and nv.cost_cents == 300
        assert nv.attributes == {"size": "50 ml"} and not nv.active
        actions = set((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "variant",
            AuditEntry.subject_id.in_([vid, new_id])))).all())
    assert {"barcode.add", "variant.create", "variant.update"} <= actions


async def test_categories_tree_refuses_a_cycle(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    csrf = await staff_login(web, shop, "owner")
    tag = uuid.uuid4().hex[:8]
    r = await web.post("/backoffice/categories", data={
        "csrf_token": csrf, "name": "", "name_en": "", "parent_id": "", "position": "x"})
    assert r.status_code == 422
    assert text_of(r.text, "error-name") and text_of(r.text, "error-position")
    for name, parent in ((f"Iho {tag}", ""), (f"Seerumit {tag}", None)):
        if parent is None:
            async with db.reader() as s:
                parent = str(await s.scalar(select(Category.id).where(
                    Category.name == f"Iho {tag}")))
        r = await web.post("/backoffice/categories", data={
            "csrf_token": csrf, "name": name, "name_en": "", "parent_id": parent,
            "position": "1"})
        assert r.status_code == 303, r.text
    async with db.reader() as s:
        top = await s.scalar(select(Category).where(Category.name == f"Iho {tag}"))
        sub = await s.scalar(select(Category).where(Category.name == f"Seerumit {tag}"))
    assert top is not None and sub is not None and sub.parent_id == top.id
    page = await web.get("/backoffice/categories")
    assert f"Seerumit {tag}" in text_of(page.text, "category-tree")
    r = await web.post(f"/backoffice/categories/{top.id}", data={
        "csrf_token": csrf, "name": f"Iho {tag}", "name_en": "Skin", "parent_id": str(sub.id),
        "position": "0"})
    assert r.status_code == 422 and "alaluokkansa" in text_of(r.text, "error-parent_id")
    r = await web.post(f"/backoffice/categories/{top.id}", data={
        "csrf_token": csrf, "name": f"Iho {tag}", "name_en": "Skin", "parent_id": "",
        "position": "0"})
    assert r.status_code == 303
    async with db.reader() as s:
        again = await s.get(Category, top.id)
        assert again is not None and again.name_en == "Skin" and again.parent_id is None
    assert (await web.get("/backoffice/categories/2147483000")).status_code == 404


def picture(kind: str, size: tuple[int, int] = (900, 600)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(buf, kind)
    return buf.getvalue()


async def test_pictures_are_uploaded_resized_cached_and_removed(
        web: httpx.AsyncClient, client: httpx.AsyncClient, db: Database, shop: Shop,
        tmp_path: Path) -> None:
    csrf = await staff_login(web, shop, "owner")
    v = (await make_variants(db, [900]))[0]
    pid = int(str(v["product_id"]))
    url = f"/backoffice/products/{pid}/images"
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    r = await web.post(url, data={"csrf_token": csrf, "alt": ""},
                       files={"image": ("a.gif", gif.getvalue(), "image/gif")})
    assert r.status_code == 422 and "JPEG-, PNG-" in text_of(r.text, "error-img-image")
    r = await web.post(url, data={"csrf_token": csrf, "alt": ""},
                       files={"image": ("a.txt", b"not a picture", "image/png")})
    assert r.status_code == 422 and text_of(r.text, "error-img-image")
    big = b"\xff\xd8" + b"0" * (10 * 1024 * 1024 + 10)
    r = await web.post(url, data={"csrf_token": csrf, "alt": ""},
                       files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 422 and "10 Mt" in text_of(r.text, "error-img-image")

    for kind, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        r = await web.post(url, data={"csrf_token": csrf, "alt": f"Kuva {kind}",
                                      "variant_id": str(v["id"]) if kind == "PNG" else ""},
                           files={"image": (f"p.{kind.lower()}", picture(kind), mime)})
        assert r.status_code == 303, r.text
    async with db.reader() as s:
        rows = list((await s.scalars(select(ProductImage).where(
            ProductImage.product_id == pid).order_by(ProductImage.position))).all())
    assert [r.alt for r in rows] == ["Kuva JPEG", "Kuva PNG", "Kuva WEBP"]
    assert rows[1].variant_id == v["id"] and [r.position for r in rows] == [0, 1, 2]
    first = rows[0].url
    assert first.startswith("/media/products/") and first.endswith("-400.webp")
    served = await client.get(first)
    assert served.status_code == 200
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    with Image.open(io.BytesIO(served.content)) as img:
        assert img.size == (400, 400) and img.format == "WEBP"
    for size in (64, 128, 800):
        other = await client.get(first.replace("-400.", f"-{size}."))
        assert other.status_code == 200
        with Image.open(io.BytesIO(other.content)) as img:
            assert img.size == (size, size)
    product_page = await client.get(f"/shop/p/{v['product_slug']}")
    assert first in product_page.text
    assert f'{first} 1x, {first.replace("-400.", "-800.")} 2x' in product_page.text  # srcset
    assert first.replace("-400.", "-128.") in product_page.text  # the 64 px thumbnails

    r = await web.post(f"{url}/{rows[0].id}", data={"csrf_token": csrf, "delete": "yes"})
    assert r.status_code == 303
    async with db.reader() as s:
        assert await s.get(ProductImage, rows[0].id) is None
        actions = list((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "product", AuditEntry.subject_id == pid))).all())
    assert actions.count("image.add") == 3 and "image.delete" in actions


async def test_the_list_searches_and_filters(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    await staff_login(web, shop, "finance")  # reads the catalogue, may not change it
    stocked = (await make_variants(db, [100], stock={shop.store1: 20}))[0]
    low = (await make_variants(db, [100], stock={shop.store1: 2}))[0]
    out = (await make_variants(db, [100]))[0]
    negative = (await make_variants(db, [100], stock={shop.store1: 1}))[0]
    async with db.uow() as uow:
        await apply_moves(uow, SYSTEM, [Move(int(str(negative["id"])), shop.store1, -3,
                                             "adjustment")])
        await uow.commit()
    cases = {"in": stocked, "low": low, "out": out, "negative": negative}
    for state in cases:
        for other_state, other in cases.items():
            r = await web.get("/backoffice/products",
                              params={"stock": state, "q": str(other["sku"])})
            assert r.status_code == 200
            row = f'data-testid="product-row-{other["product_id"]}"'
            assert (row in r.text) == (other_state == state), (state, other_state)
    r = await web.get("/backoffice/products", params={"q": str(low["ean"])})
    assert f'product-row-{low["product_id"]}' in r.text and "1 " in text_of(r.text,
                                                                            "product-count")
    r = await web.get("/backoffice/products", params={"q": str(low["sku"]).lower()})
    assert f'product-row-{low["product_id"]}' in r.text
    r = await web.get("/backoffice/products", params={"active": "no", "q": str(low["sku"])})
    assert f'product-row-{low["product_id"]}' not in r.text
    assert 'data-testid="new-product"' not in r.text  # finance reads only
    assert (await web.get("/backoffice/products/new")).status_code == 403
    r = await web.post(f"/backoffice/products/{low['product_id']}",
                       data={"csrf_token": csrf_of(r.text), "name": "x"})
    assert r.status_code == 403
    assert (await web.get("/backoffice/products/2147483000")).status_code == 404
