"""Two `saumaton serve` processes on one PostgreSQL behind a round-robin nginx behave as
one system (docs/deployment.md): a staff session made on one works on the other and a
logout on one ends it on both; a live event subscribed on one server shows an order
placed on the other; the mail outbox sends each mail once although both processes run
the sender; a scheduled price change applies once although both run the price job; a
webhook subscription made through one server gets every order placed on either, once,
although both processes run the webhook worker.

PostgreSQL only: several processes on one SQLite file is not a supported layout
(`saumaton serve --workers 2` refuses it; tested here too).
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import Variant
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.jobs import JOBS
from saumaton.mail.models import OutgoingMail
from saumaton.mail.queue import queue_mail
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.pricing import changes
from saumaton.pricing.changes import PriceChangeIn
from saumaton.pricing.models import PriceChange
from saumaton.web.app import create_app
from tests.cluster import SECRET, Cluster
from tests.support import (
    ROOT,
    create_pg_database,
    drop_pg_database,
    eventually,
    fresh_database,
    make_variants,
    pay_web_order,
    staff_login,
)
from tests.test_live_events import subscribe
from tests.webhook_receiver import Receiver

# A JSON route that a staff session may read: 200 logged in, 401 not.
PROBE = "/api/v1/orders?limit=1"


async def test_a_session_made_on_one_server_works_on_both_and_logout_ends_it_on_both(
        two_servers: Cluster) -> None:
    c = two_servers
    async with httpx.AsyncClient(base_url=c.base_url, timeout=30) as browser:
        csrf = await staff_login(browser, c.shop, "manager")
        answered: list[str] = []
        for _ in range(6):
            r = await browser.get(PROBE)
            assert r.status_code == 200, r.text
            answered.append(c.answered_by(r).name)
        # Round robin: the one session was served by both processes.
        assert set(answered) == {"app1", "app2"}, answered
        cookie = dict(browser.cookies)
        # The same cookie straight to each server, no proxy between.
        for server in c.servers:
            async with httpx.AsyncClient(base_url=server.base_url, cookies=cookie) as direct:
                assert (await direct.get(PROBE)).status_code == 200

        # Log out through the first server; a copy of the cookie is dead on both.
        a, b = c.servers
        async with httpx.AsyncClient(base_url=a.base_url, cookies=cookie) as on_a:
            r = await on_a.post("/staff/logout", data={"csrf_token": csrf})
            assert r.status_code == 303, r.text
        async with httpx.AsyncClient(base_url=a.base_url, cookies=cookie) as copy_a:
            assert (await copy_a.get(PROBE)).status_code == 401
        async with httpx.AsyncClient(base_url=b.base_url, cookies=cookie) as copy_b:
            # B learns of the logout from the outbox event (LISTEN/NOTIFY) and drops its
            # cached session: bounded by the event's delivery, not by the 30 s cache.
            async def refused_on_b() -> bool:
                return (await copy_b.get(PROBE)).status_code == 401
            await eventually(refused_on_b, within=5.0, what="logout reaches server B")
            # a write with the old cookie is refused too
            r = await copy_b.post("/api/v1/orders", headers={"X-CSRF-Token": csrf}, json={
                "channel": "pos-1", "lines": [], "payments": [{"method": "cash"}]})
            assert r.status_code in (401, 403), r.text


async def test_an_order_placed_on_one_server_reaches_a_live_subscriber_of_the_other(
        two_servers: Cluster) -> None:
    c = two_servers
    a, b = c.servers
    [v] = await make_variants(c.db, [990], stock={c.shop.store1: 5})
    params = {"topic": ["order.created", "stock.changed"], "variant_id": v["id"]}
    async with subscribe(a.base_url, params, headers=c.shop.auth("owner")) as on_a:
        async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as http:
            r = await http.post("/api/v1/orders", headers=c.shop.auth("cashier1"), json={
                "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": 2}],
                "payments": [{"method": "cash"}]})
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
        created = await on_a.wait_for(lambda e: e.event == "order.created"
                                      and e.json["payload"].get("order_id") == order_id)
        stock = await on_a.wait_for(lambda e: e.event == "stock.changed"
                                    and e.json["payload"]["on_hand"] == 3)
    assert created.json["payload"]["order_id"] == order_id
    assert stock.json["payload"]["location_id"] == c.shop.store1
    # Through the proxy too (the stream is not buffered by nginx).
    async with subscribe(c.base_url, params, headers=c.shop.auth("owner")) as via_proxy:
        async with httpx.AsyncClient(base_url=c.base_url, timeout=30) as http:
            r = await http.post("/api/v1/orders", headers=c.shop.auth("cashier1"), json={
                "channel": "pos-1", "lines": [{"variant_id": v["id"], "quantity": 1}],
                "payments": [{"method": "cash"}]})
        assert r.status_code == 201, r.text
        await via_proxy.wait_for(lambda e: e.event == "stock.changed"
                                 and e.json["payload"]["on_hand"] == 2)


def _mail_files(c: Cluster) -> dict[int, list[Path]]:
    """Mail id -> the .eml files written for it, by either server."""
    out: dict[int, list[Path]] = {}
    for server in c.servers:
        for f in (server.var_dir / "mail").glob("*.eml"):
            m = re.fullmatch(r"\d{8}T\d{12}Z-(\d+)-[a-z_]+\.eml", f.name)
            assert m, f.name
            out.setdefault(int(m[1]), []).append(f)
    return out


async def test_each_mail_of_web_orders_is_sent_once_by_one_of_the_two_senders(
        two_servers: Cluster, tmp_path: Path) -> None:
    c = two_servers
    [v] = await make_variants(c.db, [1500], stock={c.shop.warehouse: 50})
    settings = Settings(database_url=c.database_url, var_dir=tmp_path, secret_key=SECRET)
    numbers: list[str] = []
    async with httpx.AsyncClient(base_url=c.base_url, timeout=30) as http:
        for i in range(12):
            r = await http.post("/api/v1/orders", headers=c.shop.auth("owner"), json={
                "channel": "web", "lines": [{"variant_id": v["id"], "quantity": 1}]})
            assert r.status_code == 201, r.text
            order = OrderOut.model_validate(r.json())
            async with c.db.uow() as uow:  # as the webshop's checkout form records it
                await uow.session.execute(update(Order).where(Order.id == order.id)
                                          .values(email=f"buyer{i}@example.fi"))
                await uow.commit()
            await pay_web_order(c.db, settings, order)  # queues the confirmation
            numbers.append(order.number)

    async def all_sent() -> list[OutgoingMail] | None:
        async with c.db.reader() as s:
            rows = list((await s.scalars(select(OutgoingMail).where(
                OutgoingMail.kind == "order_confirmation",
                OutgoingMail.reference.in_(numbers)))).all())
        return rows if len(rows) == 12 and all(r.status == "sent" for r in rows) else None
    rows = await eventually(all_sent, within=30.0, what="12 confirmations sent")
    assert {r.attempts for r in rows} == {1}  # one claim each, never two
    files = _mail_files(c)
    for r in rows:
        assert len(files.get(r.id, [])) == 1, f"mail {r.id}: {files.get(r.id)}"


async def test_webhooks_of_orders_on_both_servers_are_delivered_once_each(
        two_servers: Cluster) -> None:
    c = two_servers
    [v] = await make_variants(c.db, [900], stock={c.shop.warehouse: 50})
    receiver = await Receiver().start()
    try:
        async with httpx.AsyncClient(base_url=c.base_url, timeout=30) as http:
            r = await http.post("/api/v1/webhooks", headers=c.shop.auth("owner"), json={
                "url": receiver.url, "topics": ["order.created"]})
            assert r.status_code == 201, r.text
            secret = r.json()["secret"]
            placed: dict[int, str] = {}  # order id -> the server that took it
            for _ in range(16):
                r = await http.post("/api/v1/orders", headers=c.shop.auth("owner"), json={
                    "channel": "web", "lines": [{"variant_id": v["id"], "quantity": 1}]})
                assert r.status_code == 201, r.text
                placed[int(r.json()["id"])] = c.answered_by(r).name
        assert set(placed.values()) == {"app1", "app2"}  # both servers took orders

        async def delivered() -> set[int] | None:
            got = {int(q.json()["data"]["order_id"]) for q in receiver.requests}
            return got if set(placed) <= got else None
        await eventually(delivered, within=30.0, what="a webhook for each of 16 orders")
        ours = [q for q in receiver.requests if q.json()["data"]["order_id"] in placed]
        assert len(ours) == 16  # once each: neither worker sent another's delivery
        assert len({q.webhook_id for q in ours}) == 16
        hook = Webhook(secret)
        for q in ours:
            assert hook.verify(q.body, q.headers)["type"] == "order.created"
    finally:
        await receiver.stop()


async def test_a_scheduled_price_change_applies_once_with_both_price_jobs_running(
        two_servers: Cluster) -> None:
    c = two_servers
    variants = await make_variants(c.db, [1000 + i for i in range(8)])
    ids: list[int] = []
    async with c.db.uow() as uow:
        for i, v in enumerate(variants):
            ids += await changes.change_prices(uow, SYSTEM, PriceChangeIn(
                variant_ids=[int(v["id"])], price_cents=2000 + i,
                effective_at=utcnow() + timedelta(hours=1)))
        await uow.commit()
    async with c.db.uow() as uow:  # due now: both processes' jobs (every 0.3 s) race
        for row in (await uow.session.scalars(
                select(PriceChange).where(PriceChange.id.in_(ids)))).all():
            row.effective_at = utcnow() - timedelta(seconds=1)
        await uow.commit()

    async def applied() -> bool:
        async with c.db.reader() as s:
            statuses = set((await s.scalars(select(PriceChange.status).where(
                PriceChange.id.in_(ids)))).all())
        return statuses == {"applied"}
    await eventually(applied, within=15.0, what="the scheduled changes applied")
    async with c.db.reader() as s:
        entries = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "price.change", AuditEntry.subject_type == "variant",
            AuditEntry.subject_id.in_([int(v["id"]) for v in variants])))).all()
        prices = {int(vid): int(cents) for vid, cents in (await s.execute(
            select(Variant.id, Variant.price_cents).where(
                Variant.id.in_([int(v["id"]) for v in variants])))).all()}
    per_change: dict[int, int] = {}
    for e in entries:
        per_change[int(e.data["change_id"])] = per_change.get(int(e.data["change_id"]), 0) + 1
    assert per_change == {cid: 1 for cid in ids}
    assert prices == {int(v["id"]): 2000 + i for i, v in enumerate(variants)}


async def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    env = {"SAUMATON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
           "SAUMATON_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "saumaton", "serve", "--workers", "2",
                         "--port", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refusing to start 2 workers on SQLite" in proc.stdout
    assert "PostgreSQL" in proc.stdout


async def _job_tasks(besides: set[asyncio.Task[object]]) -> set[str]:
    """Job tasks running now that were not among `besides` (the suite's other in-process
    apps run their jobs in this same event loop)."""
    return {name for t in asyncio.all_tasks() - besides
            if (name := t.get_name()).startswith("job: ")}


async def test_the_app_starts_the_jobs_only_when_run_jobs_is_on(tmp_path: Path) -> None:
    url = await fresh_database("sqlite", tmp_path)
    for run_jobs in (True, False):
        others = asyncio.all_tasks()
        app = create_app(Settings(database_url=url, var_dir=tmp_path / "var",
                                  secret_key=SECRET, run_jobs=run_jobs))
        async with app.router.lifespan_context(app):
            running = await _job_tasks(others)
        assert running == ({f"job: {j.name}" for j in JOBS} if run_jobs else set())
        assert not await _job_tasks(others)  # all stopped with the app


async def test_saumaton_worker_runs_the_jobs_without_http_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    url = await create_pg_database()
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            [v] = await make_variants(db, [1000])
            async with db.uow() as uow:
                [change] = await changes.change_prices(uow, SYSTEM, PriceChangeIn(
                    variant_ids=[int(v["id"])], price_cents=1200,
                    effective_at=utcnow() + timedelta(hours=1)))
                mail_id = await queue_mail(uow, kind="test", to="a@example.fi",
                                           subject="worker", text="sent by the worker")
                await uow.commit()
            async with db.uow() as uow:
                await uow.session.execute(update(PriceChange).where(PriceChange.id == change)
                                          .values(effective_at=utcnow() - timedelta(seconds=1)))
                await uow.commit()
            env = {"SAUMATON_DATABASE_URL": url, "SAUMATON_VAR_DIR": str(tmp_path),
                   "SAUMATON_SECRET_KEY": SECRET, "PYTHONPATH": str(ROOT),
                   "SAUMATON_PRICE_JOB_INTERVAL_SECONDS": "0.3", "PATH": "/usr/bin:/bin"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "saumaton", "worker", env=env, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                async def done() -> bool:
                    async with db.reader() as s:
                        status = await s.scalar(select(OutgoingMail.status).where(
                            OutgoingMail.id == mail_id))
                        price = await s.scalar(select(Variant.price_cents).where(
                            Variant.id == int(v["id"])))
                    return status == "sent" and price == 1200
                await eventually(done, within=30.0, what="the worker sent the mail and "
                                 "applied the price change")
                assert [f.name for f in (tmp_path / "mail").glob(f"*-{mail_id}-test.eml")]
            finally:
                proc.send_signal(signal.SIGTERM)
                async with asyncio.timeout(30):
                    raw, _ = await proc.communicate()
            out = raw.decode()
            assert proc.returncode == 0, out
            assert "Saumaton worker" in out and "worker stopped" in out, out
        finally:
            await db.dispose()
    finally:
        await drop_pg_database(url)
