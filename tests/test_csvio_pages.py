"""The import and export pages (in-process app, both databases): upload -> preview
with every row's errors next to the row -> import refused; a good file -> import ->
progress reaches 100 %; permissions; exports streamed in the Finnish Excel format."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.core.actor import SYSTEM
from saumaton.csvio import jobs
from saumaton.db.uow import Database
from tests.support import Shop, make_variants, new_ean, staff_actor, staff_login, text_of

BASE = "/backoffice/import-export"


async def upload(c: httpx.AsyncClient, csrf: str, kind: str, text: str,
                 raw: bytes | None = None) -> httpx.Response:
    return await c.post(BASE, data={"csrf_token": csrf, "kind": kind},
                        files={"file": ("import.csv", raw if raw is not None
                                        else text.encode(), "text/csv")})


def good_products(tag: str, n: int = 3) -> str:
    lines = ["product;name;sku;ean;price;attributes"]
    lines += [f"imp-{tag};Voide {tag};IMP-{tag}-{i};{new_ean()};{10 + i},50;size={i}0 ml"
              for i in range(n)]
    return "\r\n".join(lines) + "\r\n"


async def test_upload_preview_with_errors_next_to_rows_then_refused(
        web: httpx.AsyncClient, shop: Shop) -> None:
    csrf = await staff_login(web, shop, "owner")
    tag = uuid.uuid4().hex[:8]
    text = good_products(tag, 2) + f"imp-{tag};Voide;IMP-{tag}-9;123;abc;\r\n"
    r = await upload(web, csrf, "products", text)
    assert r.status_code == 303, r.text
    job_url = r.headers["location"]
    page = (await web.get(job_url)).text
    assert text_of(page, "count-errors") == "1" and text_of(page, "count-new") == "2"
    row = re.search(r'data-testid="row-4".*?</tr>', page, re.S)
    assert row is not None
    assert 'data-field="ean"' in row[0] and 'data-field="price"' in row[0]
    assert "tarkistusnumero" in row[0]  # in the page's language (Finnish by default)
    assert 'data-testid="run-import"' not in page and 'data-testid="fix-errors"' in page
    r = await web.post(job_url + "/run", data={"csrf_token": csrf})
    assert r.status_code == 303 and "problem=import_errors" in r.headers["location"]
    only = (await web.get(job_url + "?errors=1")).text
    assert 'data-testid="row-4"' in only and 'data-testid="row-2"' not in only


async def test_upload_import_and_progress_reaches_100(web: httpx.AsyncClient, shop: Shop,
                                                      db: Database) -> None:
    csrf = await staff_login(web, shop, "owner")
    tag = uuid.uuid4().hex[:8]
    r = await upload(web, csrf, "products", good_products(tag))
    job_url = r.headers["location"]
    job_id = int(job_url.rsplit("/", 1)[1])
    page = (await web.get(job_url)).text
    assert text_of(page, "count-new") == "3" and 'data-testid="run-import"' in page
    r = await web.post(job_url + "/run", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == job_url
    await jobs.wait(job_id)
    for _ in range(50):  # bounded: the task has ended; its last commit is visible
        progress = (await web.get(job_url + "/progress")).text
        if 'data-status="done"' in progress:
            break
    assert text_of(progress, "progress-text") == "100 %"
    assert 'hx-trigger="every 1s"' not in progress
    assert "3" in text_of(progress, "import-done")
    async with db.reader() as s:
        audit = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "import.run", AuditEntry.subject_id == job_id))).all()
    assert [a.data["new"] for a in audit] == [3]


async def test_a_file_not_in_utf8_is_refused_next_to_the_field(web: httpx.AsyncClient,
                                                                shop: Shop) -> None:
    csrf = await staff_login(web, shop, "owner")
    r = await upload(web, csrf, "customers", "", raw="first_name;email\r\nÄijä;a@b.fi\r\n"
                     .encode("cp1252"))
    assert r.status_code == 422
    assert "UTF-8" in text_of(r.text, "error-file")
    assert 'aria-describedby="file-error"' in r.text


@pytest.mark.parametrize("who,status", [("cashier1", 403), ("finance", 403),
                                        ("manager1", 422)])
async def test_who_may_import_products(web: httpx.AsyncClient, shop: Shop, who: str,
                                       status: int) -> None:
    csrf = await staff_login(web, shop, who)
    r = await upload(web, csrf, "products", good_products(uuid.uuid4().hex[:8]))
    assert r.status_code == status
    if status == 422:  # a manager of one store may import stock, not the chain's catalogue
        assert text_of(r.text, "error-kind")
        assert (await web.get(BASE)).status_code == 200


async def test_exports_stream_in_the_finnish_excel_format(
        web: httpx.AsyncClient, shop: Shop, db: Database,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    await make_variants(db, [1290, 990, 4500], stock={shop.store1: 3})
    await make_variants(db, [100])
    await make_variants(db, [200])
    await staff_login(web, shop, "owner")
    tag = uuid.uuid4().hex[:8]
    path = tmp_path / "customers.csv"
    path.write_text("email;marketing_email\r\n" + "".join(
        f"vienti{i}.{tag}@example.com;yes\r\n" for i in range(5)), encoding="utf-8")
    job_id = await jobs.create_job(db, SYSTEM, "customers", path.name, path)
    await jobs.preview(db, SYSTEM, job_id)
    await jobs.start(db, SYSTEM, job_id)
    await jobs.run(db, SYSTEM, job_id)
    monkeypatch.setattr(jobs, "EXPORT_PAGE", 2)
    for kind in ("products", "stock", "customers"):
        async with web.stream("GET", f"{BASE}/export/{kind}") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/csv")
            assert "attachment" in r.headers["content-disposition"]
            assert "content-length" not in r.headers  # streamed, not one body
            body = b"".join([c async for c in r.aiter_raw()])
        # The generator behind it reads and yields page by page.
        chunks = [c async for c in jobs.export_lines(db, kind)]
        assert len(chunks) > 2
        assert body.startswith(b"\xef\xbb\xbf")
        text = body.decode("utf-8-sig")
        assert "\r\n" in text and text.splitlines()[0].count(";") >= 3
        if kind == "products":
            assert ";12,90;" in text and ";45,00;" in text
    async with db.reader() as s:
        assert await s.scalar(select(AuditEntry.id).where(
            AuditEntry.action == "customers.export").limit(1)) is not None
    await staff_login(web, shop, "cashier1")
    assert (await web.get(f"{BASE}/export/products")).status_code == 403
    assert (await web.get(BASE)).status_code == 403


@pytest.mark.parametrize("who", ["owner", "manager1", "cashier1", "service", "finance"])
async def test_every_route_answers_each_role(web: httpx.AsyncClient, shop: Shop,
                                             who: str) -> None:
    from saumaton.core.actor import ROLE_PERMISSIONS

    role = {"manager1": "manager", "cashier1": "cashier"}.get(who, who)
    perms = ROLE_PERMISSIONS[role]
    csrf = await staff_login(web, shop, who)
    routes = [(BASE, "imports.run"), (f"{BASE}/jobs/999999", "imports.run"),
              (f"{BASE}/jobs/999999/progress", "imports.run"),
              (f"{BASE}/export/products", "catalogue.read"),
              (f"{BASE}/export/stock", "stock.read"),
              (f"{BASE}/export/customers", "customers.read")]
    for url, perm in routes:
        allowed = "*" in perms or perm in perms
        r = await web.get(url)
        assert r.status_code in ((200, 303, 404) if allowed else (403,)), (url, r.status_code)
        assert r.headers["content-type"].startswith("text/csv" if allowed and "/export/" in url
                                                    else "text/html")
    for url in (BASE, f"{BASE}/jobs/999999/run", f"{BASE}/jobs/999999/discard"):
        r = await web.post(url, data={"csrf_token": csrf})
        allowed = "*" in perms or "imports.run" in perms
        assert r.status_code in ((404, 422) if allowed else (403,)), (url, r.status_code)
        assert r.headers["content-type"].startswith("text/html")


async def test_an_import_whose_process_died_shows_stopped_and_runs_again(
        web: httpx.AsyncClient, shop: Shop, db: Database) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from saumaton.core.clock import utcnow
    from saumaton.csvio.models import ImportJob

    csrf = await staff_login(web, shop, "owner")
    tag = uuid.uuid4().hex[:8]
    r = await upload(web, csrf, "products", good_products(tag, 4))
    job_url = r.headers["location"]
    job_id = int(job_url.rsplit("/", 1)[1])
    owner = await staff_actor(db, shop, "owner")
    await jobs.start(db, owner, job_id)  # "running", but no process runs it
    r = await web.post(job_url + "/run", data={"csrf_token": csrf})
    assert "problem=import_running" in r.headers["location"]
    long_ago = utcnow() - timedelta(minutes=10)
    async with db.uow() as uow:
        await uow.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
            started_at=long_ago, summary={"heartbeat": long_ago.isoformat()}))
        await uow.commit()
    page = (await web.get(job_url)).text
    assert 'data-testid="import-failed"' in page and 'data-testid="run-import"' in page
    r = await web.post(job_url + "/run", data={"csrf_token": csrf})
    assert r.headers["location"] == job_url
    await jobs.wait(job_id)
    assert (await jobs.get_job(db, job_id)).status == "done"
    assert 'data-status="done"' in (await web.get(job_url + "/progress")).text
