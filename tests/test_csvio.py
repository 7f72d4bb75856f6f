"""CSV import and export in the core (both databases): the dry run lists every row's
errors and writes nothing; the import creates and updates; re-importing the same file
changes nothing (no rows, movements, price history or events); stock posts only the
differences; customers with consents; export -> re-import is a round trip."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import Category, Product, Variant, VariantBarcode
from saumaton.core.actor import SYSTEM
from saumaton.core.errors import Forbidden
from saumaton.csvio import jobs
from saumaton.csvio.files import parse_euros
from saumaton.customers.consents import current_consents
from saumaton.customers.models import Customer, CustomerConsent, CustomerIdentity
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.inventory.models import StockLevel, StockMovement
from saumaton.pricing.models import PriceChange
from tests.support import Shop, make_variants, new_ean, staff_actor

COUNTED = (Product, Variant, VariantBarcode, PriceChange, StockMovement, OutboxEvent,
           AuditEntry, Customer, CustomerIdentity, CustomerConsent)


async def counts(db: Database) -> dict[str, int]:
    async with db.reader() as s:
        return {m.__tablename__: int(await s.scalar(select(func.count()).select_from(m)) or 0)
                for m in COUNTED}


def write(tmp_path: Path, text: str, *, bom: bool = False, name: str = "") -> Path:
    path = tmp_path / (name or f"{uuid.uuid4().hex}.csv")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


async def import_file(db: Database, path: Path, kind: str, actor: object = SYSTEM
                      ) -> tuple[jobs.ImportJob, jobs.ImportJob]:
    job_id = await jobs.create_job(db, actor, kind, path.name, path)  # type: ignore[arg-type]
    previewed = await jobs.preview(db, actor, job_id)  # type: ignore[arg-type]
    if previewed.error_count:
        return previewed, previewed
    await jobs.start(db, actor, job_id)  # type: ignore[arg-type]
    done = await jobs.run(db, actor, job_id)  # type: ignore[arg-type]
    return previewed, done


def products_csv(tag: str, eans: list[str], *, price: str = "12,90", sep: str = ";",
                 category: str = "") -> str:
    head = ["product", "name", "name_en", "brand", "category", "vat_class", "description",
            "active", "sku", "ean", "barcodes", "variant_name", "attributes", "price",
            "cost_price", "variant_active"]
    rows = [sep.join(head)]
    rows.append(sep.join([f"lip-{tag}", "Huulipuna", "Lipstick", "Brand", category,
                          "standard", "Kaunis", "yes", f"L-{tag}-1", eans[0], eans[2],
                          "Ruby", "shade=Ruby|size=4 g", price, "4,50", "yes"]))
    rows.append(sep.join([f"lip-{tag}", "Huulipuna", "Lipstick", "Brand", category,
                          "standard", "Kaunis", "yes", f"L-{tag}-2", eans[1], "",
                          "Rose", "shade=Rose", "13.5", "", "no"]))
    return "\r\n".join(rows) + "\r\n"


def test_parse_euros() -> None:
    assert parse_euros("12,90") == 1290
    assert parse_euros("1 234.5") == 123450
    assert parse_euros("") is None
    for bad in ("12,345", "-1", "abc", "1e3x"):
        with pytest.raises(ValueError):
            parse_euros(bad)


def test_reading_sniffs_the_delimiter_and_ignores_empty_columns(tmp_path: Path) -> None:
    from saumaton.csvio.files import CsvRows

    path = write(tmp_path, "\ufeffSKU;Quantity;;\r\n'=A;3;;\r\n;;;\r\n\"b;c\";4\r\n")
    rows = list(CsvRows(path, ("sku", "quantity"), ("sku",)))
    assert rows == [(2, {"sku": "=A", "quantity": "3", "": ""}),
                    (4, {"sku": "b;c", "quantity": "4", "": ""})]
    path = write(tmp_path, "sku,quantity\r\nA,1\r\n")
    assert list(CsvRows(path, ("sku",), ("sku",))) == [(2, {"sku": "A", "quantity": "1"})]


async def test_products_dry_run_lists_every_rows_errors_and_changes_nothing(
        db: Database, shop: Shop, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    text = ("product;name;sku;ean;price;attributes;vat_class\r\n"
            f"lip-{tag};Ok;OK-{tag};{new_ean()};10,00;;\r\n"
            f"Bad Slug;;B-{tag};4006381333932x;12,345;shade;nosuch\r\n"
            f"lip-{tag};Ok;OK-{tag};1234567890123;abc;;\r\n")
    before = await counts(db)
    job, _ = await import_file(db, write(tmp_path, text), "products")
    assert await counts(db) == {**before, "audit_log": before["audit_log"]}
    got = {(e["row"], e["field"], e["code"]) for e in job.errors}
    assert {(3, "product", "invalid_slug"), (3, "name", "required"), (3, "ean", "invalid_ean"),
            (3, "price", "invalid_price"), (3, "attributes", "invalid_attributes"),
            (3, "vat_class", "unknown_vat_class"), (4, "ean", "invalid_ean"),
            (4, "price", "invalid_price")} <= got
    assert job.summary["new"] == 1 and job.summary["errors"] == 2
    assert job.summary["statuses"] == "nee"
    with pytest.raises(jobs.Conflict):
        await jobs.start(db, SYSTEM, job.id)


async def test_rows_of_one_product_must_agree_and_skus_not_repeat(
        db: Database, shop: Shop, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    text = ("product;name;brand;sku;price\r\n"
            f"p-{tag};Voide;A;S-{tag}-1;1\r\n"
            f"p-{tag};Voide;B;S-{tag}-2;1\r\n"
            f"q-{tag};Voide;A;S-{tag}-1;1\r\n")
    job, _ = await import_file(db, write(tmp_path, text), "products")
    assert [(e["row"], e["field"], e["code"]) for e in job.errors] == [
        (3, "brand", "product_differs"), (4, "sku", "duplicate_sku")]


async def test_products_import_creates_updates_and_reimport_changes_nothing(
        db: Database, shop: Shop, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        uow.session.add(Category(slug=f"cat-{tag}", name="Huulet"))
        await uow.commit()
    eans = [new_ean(), new_ean(), new_ean()]
    first = write(tmp_path, products_csv(tag, eans, category=f"cat-{tag}"), bom=True)
    _, done = await import_file(db, first, "products")
    assert done.status == "done" and done.summary["new"] == 2, done.errors
    async with db.reader() as s:
        p = (await s.execute(select(Product).where(Product.slug == f"lip-{tag}"))).scalar_one()
        vs = (await s.scalars(select(Variant).where(Variant.product_id == p.id)
                              .order_by(Variant.position))).all()
        codes = (await s.scalars(select(VariantBarcode.code).where(
            VariantBarcode.variant_id == vs[0].id))).all()
        audit = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "import.run", AuditEntry.subject_id == done.id))).all()
    assert (p.name, p.name_en, p.brand) == ("Huulipuna", "Lipstick", "Brand")
    assert [(v.sku, v.ean, v.price_cents, v.cost_cents, v.active) for v in vs] == [
        (f"L-{tag}-1", eans[0], 1290, 450, True), (f"L-{tag}-2", eans[1], 1350, None, False)]
    assert vs[0].attributes == {"shade": "Ruby", "size": "4 g"}
    assert list(codes) == [eans[2]]
    assert len(audit) == 1 and audit[0].data["new"] == 2

    # The same file again (with a comma as the delimiter, no BOM): nothing changes.
    before = await counts(db)
    again = write(tmp_path, products_csv(tag, eans, sep=",", category=f"cat-{tag}")
                  .replace("12,90", "12.90").replace("4,50", "4.50"))
    previewed, done = await import_file(db, again, "products")
    assert previewed.summary["unchanged"] == 2 and done.summary["unchanged"] == 2
    after = await counts(db)
    assert after == {**before, "audit_log": before["audit_log"] + 1}  # only import.run

    # A new price: one row updated, one price history row, one price.changed.
    changed = write(tmp_path, products_csv(tag, eans, price="14,90", category=f"cat-{tag}"))
    _, done = await import_file(db, changed, "products")
    assert (done.summary["updated"], done.summary["unchanged"]) == (1, 1)
    async with db.reader() as s:
        history = (await s.execute(select(PriceChange.old_price_cents, PriceChange.price_cents)
                                   .where(PriceChange.variant_id == vs[0].id))).all()
    assert [tuple(h) for h in history] == [(1290, 1490)]
    assert (await counts(db))["price_changes"] == after["price_changes"] + 1


async def test_a_cashier_may_not_import_products(db: Database, shop: Shop,
                                                 tmp_path: Path) -> None:
    cashier = await staff_actor(db, shop, "cashier1")
    with pytest.raises(Forbidden):
        await jobs.create_job(db, cashier, "products", "x.csv", tmp_path / "x.csv")


async def test_a_file_not_in_utf8_is_refused_clearly(db: Database, shop: Shop,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("product;name;sku;price\r\nx;Hyvä;S;1\r\n".encode("latin-1"))
    job, _ = await import_file(db, path, "products")
    assert [(e["row"], e["code"]) for e in job.errors] == [(1, "not_utf8")]
    assert "UTF-8" in job.errors[0]["message"]


async def test_stock_import_posts_only_the_differences(db: Database, shop: Shop,
                                                       tmp_path: Path) -> None:
    a, b = await make_variants(db, [1000, 2000], stock={shop.store1: 5})
    text = ("location;sku;ean;quantity\r\n"
            f"store-1;{a['sku']};;5\r\n"          # unchanged
            f"store-1;;{b['ean']};8\r\n"          # +3 by EAN
            f"store-2;{a['sku']};;2\r\n"          # new level
            f"nowhere;{a['sku']};;1\r\n"          # error
            f"store-1;{a['sku']};;x\r\n")         # error (and a repeat)
    job, _ = await import_file(db, write(tmp_path, text), "stock")
    assert {(e["row"], e["code"]) for e in job.errors} == {
        (5, "unknown_location"), (6, "invalid_quantity")}
    ok = "".join(text.splitlines(keepends=True)[:4])
    before = await counts(db)
    previewed, done = await import_file(db, write(tmp_path, ok), "stock")
    assert previewed.summary["statuses"] == "=uu" and done.status == "done"
    async with db.reader() as s:
        moves = (await s.execute(select(StockMovement.variant_id, StockMovement.location_id,
                                        StockMovement.kind, StockMovement.quantity)
                                 .where(StockMovement.reference == f"import:{done.id}"))).all()
        level = await s.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == b["id"], StockLevel.location_id == shop.store1))
    assert sorted(tuple(m) for m in moves) == sorted([
        (b["id"], shop.store1, "count", 3), (a["id"], shop.store2, "count", 2)])
    assert level == 8
    assert (await counts(db))["stock_movements"] == before["stock_movements"] + 2
    before = await counts(db)
    _, done = await import_file(db, write(tmp_path, ok), "stock")
    assert done.summary["unchanged"] == 3
    assert await counts(db) == {**before, "audit_log": before["audit_log"] + 1}

    # A level flagged "needs a count": the import is its count (no movement if equal).
    async with db.uow() as uow:
        await uow.session.execute(update(StockLevel).where(
            StockLevel.variant_id == a["id"], StockLevel.location_id == shop.store1)
            .values(needs_count=True))
        await uow.commit()
    before = await counts(db)
    _, done = await import_file(db, write(tmp_path, ok), "stock")
    assert done.summary["statuses"] == "u=="
    assert (await counts(db))["stock_movements"] == before["stock_movements"]
    async with db.reader() as s:
        assert await s.scalar(select(StockLevel.needs_count).where(
            StockLevel.variant_id == a["id"], StockLevel.location_id == shop.store1)) is False

    manager1 = await staff_actor(db, shop, "manager1")
    job, _ = await import_file(db, write(tmp_path, ok), "stock", manager1)
    assert {(e["row"], e["code"]) for e in job.errors} == {(4, "forbidden")}


async def test_customers_import_with_consents_and_reimport(db: Database, shop: Shop,
                                                           tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    text = ("first_name,last_name,email,phone,marketing_email,marketing_sms,consent_source\r\n"
            f"Anna,Aalto,Anna.{tag}@Example.com,,yes,no,store form\r\n"
            f"Bea,,bea.{tag}@example.com,,,,\r\n"
            f"Bad,,not-an-email,040,maybe,,\r\n")
    job, _ = await import_file(db, write(tmp_path, text), "customers")
    assert {(e["row"], e["field"], e["code"]) for e in job.errors} == {
        (4, "email", "invalid_email"), (4, "phone", "invalid_phone"),
        (4, "marketing_email", "invalid_bool")}
    ok = "".join(text.splitlines(keepends=True)[:3])
    _, done = await import_file(db, write(tmp_path, ok), "customers")
    assert done.summary["new"] == 2
    async with db.reader() as s:
        cid = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.value == f"anna.{tag}@example.com"))
        assert cid is not None
        assert await current_consents(s, cid) == {"marketing_email": True,
                                                  "marketing_sms": False}
        channels = (await s.scalars(select(CustomerConsent.channel).where(
            CustomerConsent.customer_id == cid))).all()
    assert list(channels) == ["store form"]
    before = await counts(db)
    _, done = await import_file(db, write(tmp_path, ok), "customers")
    assert done.summary["unchanged"] == 2
    assert await counts(db) == {**before, "audit_log": before["audit_log"] + 1}
    # A phone added and a consent withdrawn: one row updated. (The phone is this run's
    # own: the database is shared with every other test's customers.)
    phone = f"040{int(tag, 16) % 10**7:07d}"
    upd = ok.replace(f"Anna.{tag}@Example.com,,yes", f"anna.{tag}@example.com,{phone},no")
    _, done = await import_file(db, write(tmp_path, upd), "customers")
    assert (done.summary["updated"], done.summary["unchanged"]) == (1, 1)
    async with db.reader() as s:
        assert (await current_consents(s, cid))["marketing_email"] is False
        assert f"+358{phone[1:]}" in (await s.scalars(select(CustomerIdentity.value).where(
            CustomerIdentity.customer_id == cid))).all()


async def exported(db: Database, kind: str) -> str:
    return "".join([chunk async for chunk in jobs.export_lines(db, kind, page=7)])


def only(text: str, keep: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join([lines[0]] + [x for x in lines[1:] if keep in x])


@pytest.mark.parametrize("kind", ["products", "stock", "customers"])
async def test_export_reimports_unchanged(db: Database, shop: Shop, tmp_path: Path,
                                          kind: str) -> None:
    tag = uuid.uuid4().hex[:8]
    await import_file(db, write(tmp_path, products_csv(tag, [new_ean() for _ in range(3)])),
                      "products")
    made = await make_variants(db, [990, 1990, 2990], stock={shop.store1: 4, shop.warehouse: 2})
    keep = str(made[0]["sku"])[:12] if kind == "stock" else tag
    await import_file(db, write(tmp_path, (
        "first_name;last_name;email;phone;marketing_email;marketing_sms\r\n"
        f"Eeva;Ex;eeva.{tag}@example.com;+358 40 {int(tag, 16) % 10_000_000:07d};kyllä;ei\r\n"
        f"=SUM(1+2);@x;formula.{tag}@example.com;;;\r\n"
    )), "customers")
    text = await exported(db, kind)
    assert text.startswith("\ufeff") and "\r\n" in text and ";" in text.splitlines()[0]
    if kind == "products":
        assert f"lip-{tag};Huulipuna;Lipstick" in text and ";12,90;4,50;" in text
    if kind == "customers":  # Excel must not run a name as a formula
        assert f"'=SUM(1+2);'@x;formula.{tag}@example.com;" in text
    mine = only(text, keep)
    before = await counts(db)
    previewed, done = await import_file(db, write(tmp_path, mine), kind)
    assert previewed.error_count == 0, previewed.errors[:5]
    assert done.summary["rows"] == done.summary["unchanged"] > 0
    assert await counts(db) == {**before, "audit_log": before["audit_log"] + 1}
    assert only(await exported(db, kind), keep) == mine


async def test_cli_import_and_export(db: Database, shop: Shop, database_url: str,
                                     tmp_path: Path) -> None:
    from tests.test_cli import run_cli

    tag = uuid.uuid4().hex[:8]
    bad = write(tmp_path, products_csv(tag, [new_ean(), "123", new_ean()]))
    r = await run_cli(database_url, tmp_path, "import", "products", str(bad))
    assert r.code == 1 and "row 3 ean: invalid_ean" in r.out and "nothing imported" in r.out
    good = write(tmp_path, products_csv(tag, [new_ean() for _ in range(3)]))
    r = await run_cli(database_url, tmp_path, "import", "products", str(good), "--dry-run")
    assert r.code == 0 and "2 new" in r.out and "dry run" in r.out, r.out
    async with db.reader() as s:
        assert await s.scalar(select(Product.id).where(Product.slug == f"lip-{tag}")) is None
    r = await run_cli(database_url, tmp_path, "import", "products", str(good))
    assert r.code == 0 and "imported" in r.out, r.out
    out = tmp_path / "export.csv"
    r = await run_cli(database_url, tmp_path, "export", "products", str(out))
    assert r.code == 0, r.out
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and f"lip-{tag};Huulipuna".encode() in data


async def test_two_starts_of_one_import_run_it_once(db: Database, shop: Shop,
                                                    tmp_path: Path) -> None:
    import asyncio

    tag = uuid.uuid4().hex[:8]
    path = write(tmp_path, products_csv(tag, [new_ean() for _ in range(3)]))
    job_id = await jobs.create_job(db, SYSTEM, "products", path.name, path)
    await jobs.preview(db, SYSTEM, job_id)
    results = await asyncio.gather(jobs.start(db, SYSTEM, job_id),
                                   jobs.start(db, SYSTEM, job_id), return_exceptions=True)
    refused = [r for r in results if isinstance(r, jobs.Conflict)]
    assert len(refused) == 1 and refused[0].code == "import_running"


async def test_a_row_the_register_refuses_on_import_is_an_error_of_that_row_only(
        db: Database, shop: Shop, tmp_path: Path) -> None:
    from saumaton.customers.contact import add_identity

    tag = uuid.uuid4().hex[:8]
    phone = f"+35850{int(tag, 16) % 10_000_000:07d}"
    _, done = await import_file(db, write(tmp_path, (
        f"first_name;email;phone\r\nMaija;m0.{tag}@example.com;{phone}\r\n")), "customers")
    async with db.reader() as s:
        cid = await s.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.value == f"m0.{tag}@example.com"))
    async with db.uow() as uow:
        for i in range(1, 10):  # ten e-mails: the register's limit
            await add_identity(uow, SYSTEM, int(cid or 0), "email", f"m{i}.{tag}@example.com")
        await uow.commit()
    before = await counts(db)
    _, done = await import_file(db, write(tmp_path, (
        f"first_name;email;phone\r\nMaija;m10.{tag}@example.com;{phone}\r\n"
        f"Ville;ville.{tag}@example.com;\r\n")), "customers")
    assert done.status == "done" and done.summary["statuses"] == "en"
    assert (done.summary["errors"], done.summary["new"]) == (1, 1)
    assert [(e["row"], e["code"]) for e in done.errors] == [(2, "too_many_identities")]
    after = await counts(db)
    assert after["customers"] == before["customers"] + 1
    assert after["customer_identities"] == before["customer_identities"] + 1
