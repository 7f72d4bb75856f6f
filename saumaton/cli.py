"""The `saumaton` command: database, demo data, serving, checks, staff and tokens."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from saumaton import production
from saumaton.config import Settings, get_settings

app = typer.Typer(help="Saumaton: one core for a retailer's stores and webshop.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for integrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(token_app, name="token")
# soft_wrap: never break a line at the terminal width. Output piped to a log or a
# script (cron running `check`) would otherwise wrap at 80 columns mid-message.
console = Console(soft_wrap=True)


def _url(url: str | None) -> str:
    return url or get_settings().resolved_database_url()


DbUrl = Annotated[str | None, typer.Option("--database-url", envvar="SAUMATON_DATABASE_URL",
                                           help="default: SQLite under ./var/")]


@db_app.command("upgrade")
def db_upgrade(database_url: DbUrl = None, revision: str = "head") -> None:
    """Create or upgrade the schema to the newest migration."""
    from saumaton.db.migrate import upgrade
    upgrade(_url(database_url), revision)
    console.print(f"[green]database at {revision}[/green]")


@db_app.command("downgrade")
def db_downgrade(revision: str, database_url: DbUrl = None) -> None:
    """Step the schema back to REVISION ('base' drops everything)."""
    from saumaton.db.migrate import downgrade
    downgrade(_url(database_url), revision)
    console.print(f"[yellow]database at {revision}[/yellow]")


@app.command("demo-data")
def demo_data(
    database_url: DbUrl = None,
    skip_if_loaded: Annotated[bool, typer.Option(
        help="do nothing (but print the logins) if the shop is already loaded")] = False,
    scale: Annotated[bool, typer.Option(
        help="also generate a large data set for benchmarks")] = False,
    customers: Annotated[int, typer.Option(help="with --scale")] = 1_000_000,
    order_lines: Annotated[int, typer.Option(help="with --scale")] = 5_000_000,
) -> None:
    """Load the demo skincare shop (2 stores, a warehouse, 150+ variants, customers)."""
    from saumaton.db.uow import Database
    from saumaton.demo import DEMO_LOGINS, DemoAlreadyLoaded, generate_scale, load_demo

    async def run() -> None:
        db = Database(_url(database_url))
        try:
            try:
                summary = await load_demo(db)
                console.print(f"[green]demo shop loaded[/green]: {summary.variants} variants, "
                              f"{summary.customers} customers, {summary.orders} orders; "
                              f"hero product /shop/p/{summary.hero_slug} "
                              f"(EAN {summary.hero_ean})")
            except DemoAlreadyLoaded:
                if not skip_if_loaded:
                    raise
                console.print("demo shop already loaded")
            console.print("demo logins (e-mail / password / role):")
            for email, password, role in DEMO_LOGINS:
                console.print(f"  {email:32} {password:16} {role}")
            if scale:
                with Progress(TextColumn("{task.description}"), BarColumn(),
                              MofNCompleteColumn(), TimeElapsedColumn(),
                              console=console) as bar:
                    tasks: dict[str, TaskID] = {}

                    def progress(stage: str, done: int, total: int) -> None:
                        if stage not in tasks:
                            tasks[stage] = bar.add_task(stage, total=total)
                        bar.update(tasks[stage], completed=done)

                    await generate_scale(db, customers=customers, order_lines=order_lines,
                                         progress=progress)
        finally:
            await db.dispose()

    asyncio.run(run())


@app.command("analytics-prune")
def analytics_prune(
    older_than_days: Annotated[int, typer.Option(min=1, help="keep this many days")] = 400,
    database_url: DbUrl = None,
) -> None:
    """Delete first-party analytics events older than the retention period."""
    from datetime import timedelta

    from saumaton.analytics.privacy import prune_events
    from saumaton.core.clock import utcnow
    from saumaton.db.uow import Database

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            return await prune_events(db, utcnow() - timedelta(days=older_than_days))
        finally:
            await db.dispose()

    console.print(f"deleted {asyncio.run(run())} analytics events older than "
                  f"{older_than_days} days")


@app.command("check")
def check(database_url: DbUrl = None) -> None:
    """Verify every stock level equals the sum of its ledger (exit 1 if not)."""
    from saumaton.db.uow import Database
    from saumaton.inventory.services import flagged_for_count, verify_ledger

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            async with db.reader() as s:
                bad = await verify_ledger(s)
                flagged = await flagged_for_count(s)
        finally:
            await db.dispose()
        for m in bad:
            console.print(f"[red]MISMATCH[/red] variant {m.variant_id} @ location "
                          f"{m.location_id}: on_hand {m.on_hand} vs ledger {m.ledger_sum}; "
                          f"reserved {m.reserved} vs active reservations "
                          f"{m.active_reservations}")
        for lv in flagged:
            console.print(f"[yellow]count needed[/yellow] variant {lv.variant_id} @ location "
                          f"{lv.location_id}: on_hand {lv.on_hand}")
        if bad:
            console.print(f"[red]{len(bad)} stock levels disagree with the ledger[/red]")
            return 1
        console.print("[green]ledger OK[/green]: every level equals the sum of its movements")
        return 0

    raise typer.Exit(asyncio.run(run()))


def refuse_unless_fit(settings: Settings) -> None:
    """SAUMATON_ENV=production: refuse before anything starts, naming every reason
    (saumaton/production.py); `serve` and `worker` alike."""
    reasons = production.problems(settings)
    if reasons:
        console.print("[red]SAUMATON_ENV=production refuses to start:[/red]")
        for reason in reasons:
            console.print(f"  - {reason}")
        raise typer.Exit(2)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option(envvar="PORT")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, max=64, help="processes (PostgreSQL only); default SAUMATON_WORKERS or 1")]
        = None,
    reload: bool = False,
) -> None:
    """Serve the webshop, POS and API (docs/deployment.md: several behind a proxy)."""
    import uvicorn

    settings = get_settings()
    refuse_unless_fit(settings)
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if workers > 1 and settings.resolved_database_url().startswith("sqlite"):
        # Refused, not reduced: an operator who asked for N processes must learn that
        # they are not getting them (SQLite has one writer and no LISTEN/NOTIFY).
        console.print(f"[red]refusing to start {workers} workers on SQLite[/red]: SQLite "
                      "serves from one process. Set SAUMATON_DATABASE_URL to a PostgreSQL "
                      "database for several workers, or run with --workers 1.")
        raise typer.Exit(2)
    if workers > 1 and settings.paytrail_simulated() and not settings.paytrail_url:
        console.print("[yellow]The built-in Paytrail simulator keeps payments in one "
                      "process's memory; with several workers run `saumaton "
                      "paytrail-simulator` and set SAUMATON_PAYTRAIL_URL to it[/yellow]")
    settings.resolved_secret_key()  # create it once, before workers race to
    base = f"http://{host}:{port}"
    console.print(f"[bold]Saumaton[/bold] on {base}  (database: "
                  f"{settings.resolved_database_url().split('://')[0]})")
    console.print(f"  webshop   {base}/shop/")
    console.print(f"  POS       {base}/pos/  (log in as a cashier)")
    console.print(f"  API docs  {base}/api/docs")
    if settings.paytrail_simulated():
        where = settings.paytrail_url or f"{base}/paytrail-sim"
        console.print(f"  Paytrail  {where}  (local simulator, test merchant)")
    console.print(f"  health    {base}/healthz")
    # proxy_headers off: X-Forwarded-* are believed only from SAUMATON_TRUSTED_PROXIES,
    # by the app itself (saumaton/web/security.py), not from uvicorn's own default list.
    uvicorn.run("saumaton.web.asgi:app", host=host, port=port, workers=workers,
                reload=reload, log_level="warning", access_log=False, loop="uvloop",
                http="saumaton.web.http_protocol:CoalescingHttpToolsProtocol",
                proxy_headers=False)


@app.command("worker")
def worker() -> None:
    """Run the background jobs only (mail, expiries, price changes, reports…), no HTTP,
    until SIGTERM or Ctrl-C. For a layout where the web processes run with
    SAUMATON_RUN_JOBS=false (docs/deployment.md)."""
    import logging
    import signal

    from saumaton.jobs import JOBS, run_worker

    settings = get_settings()
    refuse_unless_fit(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop, ready=lambda: console.print(
            f"[bold]Saumaton worker[/bold]: {len(JOBS)} jobs on "
            f"{settings.resolved_database_url().split('://')[0]}; SIGTERM stops it"))

    asyncio.run(run())
    console.print("worker stopped")


@app.command("paytrail-simulator")
def paytrail_simulator(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8001,
) -> None:
    """Serve the local Paytrail simulator on its own (one process: it keeps payments in
    memory). Point the app at it with SAUMATON_PAYTRAIL_URL=http://HOST:PORT."""
    import uvicorn

    from saumaton.config import TEST_MERCHANT
    from saumaton.payments.paytrail.simulator import create_simulator

    base = f"http://{host}:{port}"
    console.print(f"Paytrail simulator on {base} (merchant {TEST_MERCHANT[0]})")
    # Not behind a proxy: no X-Forwarded-* handling on each request.
    uvicorn.run(create_simulator({TEST_MERCHANT[0]: TEST_MERCHANT[1]}, base), host=host,
                port=port, log_level="warning", access_log=False, loop="uvloop",
                http="saumaton.web.http_protocol:CoalescingHttpToolsProtocol",
                proxy_headers=False)


@staff_app.command("create")
def staff_create(
    email: str, name: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          envvar="SAUMATON_STAFF_PASSWORD")],
    role: Annotated[list[str], typer.Option(help="ROLE or ROLE@LOCATION_CODE; repeatable")],
    database_url: DbUrl = None,
) -> None:
    """Create a staff account, e.g. --role owner or --role cashier@store-1."""
    from saumaton.db.uow import Database
    from saumaton.locations.services import location_by_code
    from saumaton.staff.services import create_staff

    async def run() -> None:
        db = Database(_url(database_url))
        try:
            async with db.uow() as uow:
                roles: list[tuple[str, int | None]] = []
                for r in role:
                    name_, _, loc = r.partition("@")
                    loc_id = (await location_by_code(uow.session, loc)).id if loc else None
                    roles.append((name_, loc_id))
                staff = await create_staff(uow, email, name, password, roles)
                await uow.commit()
                console.print(f"[green]staff {staff.id} {staff.email} created[/green]")
        finally:
            await db.dispose()

    asyncio.run(run())


@token_app.command("create")
def token_create(email: str, name: str = "integration", database_url: DbUrl = None) -> None:
    """Issue an API token acting as the staff account EMAIL (printed once)."""
    from sqlalchemy import select

    from saumaton.db.uow import Database
    from saumaton.staff.models import Staff
    from saumaton.staff.services import create_api_token

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            async with db.uow() as uow:
                sid = await uow.session.scalar(select(Staff.id).where(
                    Staff.email == email.strip().lower()))
                if sid is None:
                    console.print(f"[red]no staff account {email}[/red]")
                    return 1
                token = await create_api_token(uow, sid, name)
                await uow.commit()
        finally:
            await db.dispose()
        print(token)
        return 0

    raise typer.Exit(asyncio.run(run()))


@token_app.command("revoke")
def token_revoke(token: str, database_url: DbUrl = None) -> None:
    """Revoke an API token (give the whole token). Every running app process stops
    accepting it at once (the staff.revoked event)."""
    from saumaton.db.uow import Database
    from saumaton.staff.services import revoke_api_token_value

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            async with db.uow() as uow:
                found = await revoke_api_token_value(uow, token.strip())
                await uow.commit()
        finally:
            await db.dispose()
        if not found:
            console.print("[red]no such token[/red]")
            return 1
        console.print("[green]token revoked[/green]")
        return 0

    raise typer.Exit(asyncio.run(run()))


# --- customer: GDPR export and erasure (runs as the system actor) -----------------------
customer_app = typer.Typer(help="Customer data: GDPR export and erasure.",
                           no_args_is_help=True)
app.add_typer(customer_app, name="customer")


@customer_app.command("export")
def customer_export(
    customer_id: Annotated[int, typer.Argument(min=1, help="the customer's id")],
    out: Annotated[str | None, typer.Option(
        "--out", help="write the JSON to this file (default: print it)")] = None,
    database_url: DbUrl = None,
) -> None:
    """Everything held about one customer, as JSON (audited as customer.export)."""
    import json
    from pathlib import Path

    from saumaton.core.actor import SYSTEM
    from saumaton.core.errors import DomainError
    from saumaton.customers.gdpr import export_and_audit
    from saumaton.db.uow import Database

    async def run() -> dict[str, object] | None:
        db = Database(_url(database_url))
        try:
            async with db.uow() as uow:
                data = await export_and_audit(uow, SYSTEM, customer_id)
                await uow.commit()
            return data
        except DomainError as exc:
            console.print(f"[red]{exc.code}[/red]: {exc.detail}")
            return None
        finally:
            await db.dispose()

    data = asyncio.run(run())
    if data is None:
        raise typer.Exit(1)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        console.print(f"[green]customer {customer_id} exported[/green] to {out}")
    else:
        print(text)


@customer_app.command("erase")
def customer_erase(
    customer_id: Annotated[int, typer.Argument(min=1, help="the customer's id")],
    reason: Annotated[str, typer.Option("--reason", help="why; kept in the audit log")],
    yes: Annotated[bool, typer.Option("--yes", help="do it without asking")] = False,
    database_url: DbUrl = None,
) -> None:
    """Anonymise one customer everywhere; orders, payments and VAT are kept for the
    bookkeeping (audited as customer.erase). This cannot be undone."""
    from saumaton.core.actor import SYSTEM
    from saumaton.core.errors import DomainError
    from saumaton.customers.gdpr import erase_customer
    from saumaton.db.uow import Database

    if not yes and not typer.confirm(
            f"Erase customer {customer_id}'s personal data for good?", default=False):
        console.print("nothing erased")
        raise typer.Exit(1)

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            async with db.uow() as uow:
                report = await erase_customer(uow, SYSTEM, customer_id, reason)
                await uow.commit()
        except DomainError as exc:
            console.print(f"[red]{exc.code}[/red]: {exc.detail}")
            return 1
        finally:
            await db.dispose()
        deleted = ", ".join(f"{k} {v}" for k, v in report.deleted.items() if v)
        cleared = ", ".join(f"{k} {v}" for k, v in report.anonymised.items() if v)
        console.print(f"[green]customer {customer_id} erased[/green] "
                      f"(records {', '.join(map(str, report.customer_ids))})")
        console.print(f"  deleted: {deleted or 'nothing'}")
        console.print(f"  anonymised: {cleared or 'nothing'}")
        console.print(f"  kept for the bookkeeping: {report.kept['orders']} orders, "
                      f"{report.kept['order_lines']} lines, {report.kept['payments']} "
                      "payments")
        return 0

    raise typer.Exit(asyncio.run(run()))


# --- loyalty ----------------------------------------------------------------------------
loyalty_app = typer.Typer(help="Loyalty points (docs/loyalty.md).", no_args_is_help=True)
app.add_typer(loyalty_app, name="loyalty")


@loyalty_app.command("expire")
def loyalty_expire(database_url: DbUrl = None) -> None:
    """Write off lapsed loyalty points now (the app also does it every hour)."""
    from saumaton.db.uow import Database
    from saumaton.loyalty.ledger import expire_once

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            total = 0
            while (run := await expire_once(db)).customers:  # 500 customers a round
                total += run.points
            return total
        finally:
            await db.dispose()

    console.print(f"wrote off {asyncio.run(run())} lapsed points")


# --- report: the reports' summaries (docs/reports.md) ------------------------------------
report_app = typer.Typer(help="Reports: the summaries and the daily journal (docs/reports.md).",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("refresh")
def report_refresh(
    since: Annotated[str | None, typer.Option(
        help="first day to rebuild, YYYY-MM-DD (default: the first sale's day)")] = None,
    full_journeys: Annotated[bool, typer.Option(
        "--full-journeys", help="recompute every customer's channel journey, not only "
        "those whose purchases changed")] = False,
    database_url: DbUrl = None,
) -> None:
    """Rebuild the daily sales summary from `--since` through today, then bring the
    customers' channel journeys up to date (the app's reports job keeps the last days
    and the changed customers up to date; this is for the whole history)."""
    from datetime import date

    from saumaton.db.uow import Database
    from saumaton.reports.jobs import refresh
    from saumaton.reports.journeys import refresh_journeys

    try:
        first = date.fromisoformat(since) if since else None
    except ValueError:
        console.print("[red]--since: write the date as YYYY-MM-DD[/red]")
        raise typer.Exit(2) from None
    tz = get_settings().timezone

    async def run() -> tuple[int, int]:
        db = Database(_url(database_url))
        try:
            with Progress(console=console) as bar:
                task = bar.add_task("days", total=None)
                days = await refresh(db, tz, since=first, progress=lambda done, total:
                                     bar.update(task, completed=done, total=total))
            async with db.uow() as uow:
                customers = await refresh_journeys(uow, full=full_journeys)
                await uow.commit()
            return days, customers
        finally:
            await db.dispose()

    days, customers = asyncio.run(run())
    console.print(f"rebuilt {days} days of the sales summary and the channel journeys "
                  f"of {customers} customers")


# --- nps: the after-purchase e-mail with one question (docs/nps.md) ----------------------
nps_app = typer.Typer(help="After-purchase e-mails with the NPS question (docs/nps.md).",
                      no_args_is_help=True)
app.add_typer(nps_app, name="nps")


@nps_app.command("send-due")
def nps_send_due(database_url: DbUrl = None) -> None:
    """Queue the receipt + NPS mail for every purchase of the last 2 days that has none
    (the app also does it every few minutes)."""
    from saumaton.db.uow import Database
    from saumaton.service.nps import send_due
    from saumaton.shopsettings.services import effective

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            async with db.reader() as s:  # with the owner's changes (business name…)
                settings = await effective(s, get_settings())
            total = 0
            while n := await send_due(db, settings):  # 100 orders a round
                total += n
            return total
        finally:
            await db.dispose()

    console.print(f"queued {asyncio.run(run())} after-purchase surveys")


# --- CSV import and export (docs/import-export.md; runs as the system actor) ------------
import_app = typer.Typer(help="Import a CSV file: products, stock or customers.",
                         no_args_is_help=True)
export_app = typer.Typer(help="Export products, stock or customers as CSV (Excel, ';').",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")


def _import(kind: str, file: str, dry_run: bool, database_url: str | None) -> None:
    from pathlib import Path

    from saumaton.core.actor import SYSTEM
    from saumaton.core.errors import DomainError
    from saumaton.csvio import jobs
    from saumaton.csvio.files import count_rows
    from saumaton.db.uow import Database

    path = Path(file).resolve()
    if not path.is_file():
        console.print(f"[red]no file {file}[/red]")
        raise typer.Exit(2)

    async def run() -> int:
        db = Database(_url(database_url))
        try:
            total = await asyncio.to_thread(count_rows, path)
            job_id = await jobs.create_job(db, SYSTEM, kind, path.name, path)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as bar:
                check = bar.add_task("checking", total=total)
                job = await jobs.preview(db, SYSTEM, job_id, progress=lambda done, _: bar.update(
                    check, completed=done))
            c = job.summary
            console.print(f"{job.total_rows} rows: {c.get('new', 0)} new, "
                          f"{c.get('updated', 0)} updated, {c.get('unchanged', 0)} unchanged, "
                          f"{c.get('errors', 0)} with errors")
            for e in job.errors[:100]:
                console.print(f"  row {e['row']} {e['field']}: [red]{e['code']}[/red] "
                              f"{e['message']}", markup=True, highlight=False)
            if job.error_count > 100:
                console.print(f"  … {job.error_count - 100} more errors")
            if job.error_count:
                console.print("[red]nothing imported[/red]: fix the file and run again")
                return 1
            if dry_run:
                console.print("dry run: nothing imported")
                return 0
            await jobs.start(db, SYSTEM, job_id)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("importing", total=job.total_rows)
                job = await jobs.run(db, SYSTEM, job_id, progress=lambda done, _: bar.update(
                    task, completed=done))
            c = job.summary
            console.print(f"[green]imported[/green] (import {job_id}): {c.get('new', 0)} new, "
                          f"{c.get('updated', 0)} updated, {c.get('unchanged', 0)} unchanged")
            return 0
        except DomainError as exc:
            console.print(f"[red]{exc.code}[/red]: {exc.detail}")
            return 1
        finally:
            await db.dispose()

    raise typer.Exit(asyncio.run(run()))


DryRun = Annotated[bool, typer.Option("--dry-run", help="check every row, import nothing")]


@import_app.command("products")
def import_products(file: str, dry_run: DryRun = False, database_url: DbUrl = None) -> None:
    """Products with variants, prices and barcodes, one row per variant (upsert by SKU)."""
    _import("products", file, dry_run, database_url)


@import_app.command("stock")
def import_stock(file: str, dry_run: DryRun = False, database_url: DbUrl = None) -> None:
    """Stock levels: location, SKU or EAN, quantity (count movements where they differ)."""
    _import("stock", file, dry_run, database_url)


@import_app.command("customers")
def import_customers(file: str, dry_run: DryRun = False, database_url: DbUrl = None) -> None:
    """Customers with marketing consents (matched by e-mail, phone, card)."""
    _import("customers", file, dry_run, database_url)


def _export(kind: str, file: str | None, database_url: str | None) -> None:
    from saumaton.core.actor import SYSTEM
    from saumaton.csvio import jobs
    from saumaton.db.uow import Database

    async def run() -> None:
        db = Database(_url(database_url))
        try:
            await jobs.start_export(db, SYSTEM, kind)
            out = open(file, "w", encoding="utf-8", newline="") if file else sys.stdout  # noqa: ASYNC230
            try:
                async for chunk in jobs.export_lines(db, kind):
                    out.write(chunk)
            finally:
                if file:
                    out.close()
        finally:
            await db.dispose()

    asyncio.run(run())
    if file:
        console.print(f"[green]exported[/green] {kind} to {file}", highlight=False)


FileOut = Annotated[str | None, typer.Argument(help="the file to write (default: print)")]


@export_app.command("products")
def export_products(file: FileOut = None, database_url: DbUrl = None) -> None:
    """Every product and variant, in the import's columns."""
    _export("products", file, database_url)


@export_app.command("stock")
def export_stock(file: FileOut = None, database_url: DbUrl = None) -> None:
    """Stock levels per location with the cost value."""
    _export("stock", file, database_url)


@export_app.command("customers")
def export_customers(file: FileOut = None, database_url: DbUrl = None) -> None:
    """Customers and their consents (audited as customers.export)."""
    _export("customers", file, database_url)


# --- report journal: the accountant's daily journal (docs/journal.md) ---------------------
@report_app.command("journal")
def report_journal(
    day: Annotated[str, typer.Option("--date", help="the business day, YYYY-MM-DD")],
    until: Annotated[str | None, typer.Option(
        "--until", help="the last day of a range, YYYY-MM-DD (default: --date)")] = None,
    location: Annotated[str | None, typer.Option(
        "--location", help="one location's rows: a store's or channel's code, * for the "
                           "gift card ledger")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv | table | json")] = "table",
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="SAUMATON_REPORTS_DATABASE_URL",
        help="default: SAUMATON_REPORTS_DATABASE_URL, else the main database")] = None,
) -> None:
    """The daily journal per day and location: sales and returns per VAT rate, payments
    and refunds per method, gift cards, cash rounding and the balance check (0)."""
    import json
    from datetime import date

    from saumaton.core.errors import ValidationFailed
    from saumaton.db.uow import Database
    from saumaton.reports.journal import build_journal, journal_period, to_csv, to_table

    if fmt not in ("csv", "table", "json"):
        console.print("[red]--format is csv, table or json[/red]")
        raise typer.Exit(2)
    try:
        period = journal_period(date.fromisoformat(day),
                                date.fromisoformat(until) if until else None)
    except ValueError:
        console.print("[red]a date is written YYYY-MM-DD[/red]")
        raise typer.Exit(2) from None
    except ValidationFailed as e:
        console.print(f"[red]{e.detail}[/red]")
        raise typer.Exit(2) from None
    settings = get_settings()
    url = database_url or settings.resolved_reports_database_url()

    async def run() -> str:
        db = Database(url)
        try:
            async with db.reader() as s:
                journal = await build_journal(
                    s, period, settings.timezone,
                    locations={location} if location else None)
        finally:
            await db.dispose()
        if fmt == "csv":
            return to_csv(journal)
        if fmt == "json":
            return json.dumps(journal.as_dict(), ensure_ascii=False, indent=1)
        return to_table(journal)

    out = asyncio.run(run())
    # Written as is (not through rich): the CSV must stay byte for byte the page's download.
    sys.stdout.buffer.write(out.encode("utf-8"))
    sys.stdout.flush()


mail_app = typer.Typer(help="Mail: the provider's bounce and complaint reports.",
                       no_args_is_help=True)
app.add_typer(mail_app, name="mail")


@mail_app.command("events")
def mail_events(
    file: Annotated[str, typer.Argument(help="a JSON array of events, as POST "
                                             "/api/v1/mail/events takes")],
    database_url: DbUrl = None,
) -> None:
    """Record bounces and complaints from a provider's export (docs/mail.md): hard
    bounces and complaints turn the address's marketing consent off; idempotent on the
    event id. An invalid file records nothing and lists every error."""
    import json
    from pathlib import Path

    from pydantic import TypeAdapter, ValidationError

    from saumaton.core.actor import SYSTEM
    from saumaton.db.uow import Database
    from saumaton.mail.events import MailEventIn, record_events

    try:
        raw = json.loads(Path(file).read_text(encoding="utf-8"))
        batch = TypeAdapter(list[MailEventIn]).validate_python(raw)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            for e in exc.errors():
                where = ".".join(str(p) for p in e["loc"])
                console.print(f"[red]{where}[/red]: {e['type']}: {e['msg']}")
        else:
            console.print(f"[red]{file}[/red]: {exc}")
        console.print("nothing recorded")
        raise typer.Exit(1) from None

    async def run() -> tuple[int, int, int]:
        db = Database(_url(database_url))
        try:
            recorded = duplicates = withdrawn = 0
            for start in range(0, len(batch), 1000):  # the API's batch size
                async with db.uow() as uow:
                    result = await record_events(uow, SYSTEM, batch[start:start + 1000])
                    await uow.commit()
                recorded += result.recorded
                duplicates += result.duplicates
                withdrawn += len(result.withdrawn)
            return recorded, duplicates, withdrawn
        finally:
            await db.dispose()

    recorded, duplicates, withdrawn = asyncio.run(run())
    console.print(f"{recorded} recorded, {duplicates} already recorded, "
                  f"{withdrawn} consent(s) withdrawn")


@app.command("wait-ready")
def wait_ready(url: str = "http://127.0.0.1:8000/healthz", timeout: float = 30.0) -> None:
    """Poll URL until it answers 200 (for scripts)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    console.print(f"[red]{url} not ready after {timeout}s[/red]")
    raise typer.Exit(1)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(app())
