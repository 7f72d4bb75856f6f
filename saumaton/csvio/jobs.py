"""Import jobs: the dry run (every row validated, nothing written, every row's status
and errors kept on the job), the import itself (the same validation, written in
batches of `BATCH` rows per transaction with the job's progress in the same
transaction) and the streamed exports.

Re-importing a file changes nothing: each kind compares a row with what is stored and
writes only what differs, so a job that died half way can simply be run again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import select, update

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.csvio import customers, products, stock
from saumaton.csvio.files import BOM, CsvRows, RowError, batches, check_utf8, csv_line
from saumaton.csvio.models import ImportJob
from saumaton.db.uow import Database

log = logging.getLogger(__name__)
KINDS: dict[str, ModuleType] = {"products": products, "stock": stock, "customers": customers}
BATCH = 500
EXPORT_PAGE = 500
MAX_ERRORS_KEPT = 5000  # more are counted only
ANALYZE_AFTER = 5000  # new rows
KIND_TABLES = {"products": ("products", "variants", "variant_barcodes"),
               "customers": ("customers", "customer_identities", "customer_consents")}
STALE_AFTER = timedelta(minutes=2)  # a running job without progress for this long died
Progress = Callable[[int, int], None]  # rows done, rows in all


def kind_module(kind: str) -> ModuleType:
    module = KINDS.get(kind)
    if module is None:
        raise ValidationFailed(f"unknown import kind '{kind[:20]}'", code="invalid_kind",
                               field="kind")
    return module


def require(actor: Actor, kind: str) -> None:
    actor.require("imports.run")
    kind_module(kind).require(actor)


@dataclass
class Outcome:
    total: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    statuses: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"rows": self.total, "new": self.new, "updated": self.updated,
                "unchanged": self.unchanged, "errors": self.error_rows}

    def add(self, status: str, errors: list[RowError]) -> None:
        self.total += 1
        self.statuses.append(status)
        if status == "n":
            self.new += 1
        elif status == "u":
            self.updated += 1
        elif status == "=":
            self.unchanged += 1
        else:
            self.error_rows += 1
        self.error_count += len(errors)
        room = MAX_ERRORS_KEPT - len(self.errors)
        if room > 0:
            self.errors += errors[:room]


def open_file(kind: str, path: Path) -> CsvRows:
    """The file's rows, after checking it is UTF-8 and has the needed columns."""
    module = kind_module(kind)
    check_utf8(path)
    return CsvRows(path, module.COLUMNS, module.REQUIRED)


async def process_file(db: Database, actor: Actor, kind: str, path: Path, *, write: bool,
                       job_id: int | None = None, progress: Progress | None = None,
                       total: int = 0) -> Outcome:
    """Validate (and with `write`, import) every row; nothing is written in a dry run.
    With `write`, each batch commits with the job's done_rows."""
    module = kind_module(kind)
    module.require(actor)
    rows = open_file(kind, path)
    outcome = Outcome()
    reference = f"import:{job_id}" if job_id else "import"
    async with db.reader() as s:
        state = await module.load_state(s)
    for batch in batches(rows, BATCH):
        async with db.uow() as uow:
            if db.is_postgres:
                # A batch looks its SKUs and barcodes up with IN lists of up to ~1,000
                # values. After five runs PostgreSQL would switch the driver's prepared
                # statement to a generic plan, in which the list is not a constant and
                # cannot be hashed: every row of the table is compared with every value
                # (50,000 variants: ~1 s a batch). Custom plans keep the hashed lookup.
                await (await uow.session.connection()).exec_driver_sql(
                    "SET LOCAL plan_cache_mode = force_custom_plan")
            results = await module.process(uow, actor, state, batch, write=write,
                                           reference=reference)
            for status, errors in results:
                outcome.add(status, errors)
            if write:
                if job_id is not None:
                    await uow.session.execute(update(ImportJob).where(
                        ImportJob.id == job_id).values(
                        done_rows=outcome.total, summary=_summary(outcome, running=True)))
                await uow.commit()
        if progress is not None:
            progress(outcome.total, max(total, outcome.total))
        await asyncio.sleep(0)  # let the app answer its other requests between batches
    return outcome


def _summary(outcome: Outcome, **more: Any) -> dict[str, Any]:
    return {**outcome.counts(), "heartbeat": utcnow().isoformat(), **more}


# --- jobs ------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            h.update(chunk)
    return h.hexdigest()


def _unchanged(path: Path, sha256: str) -> bool:
    return path.is_file() and file_sha256(path) == sha256


async def create_job(db: Database, actor: Actor, kind: str, filename: str,
                     file_path: Path) -> int:
    require(actor, kind)
    async with db.uow() as uow:
        job = ImportJob(kind=kind, filename=filename[:300], file_path=str(file_path)[:500],
                        file_sha256="", status="previewed", total_rows=0, done_rows=0,
                        error_count=0, errors=[], summary={}, created_by=actor.label[:200])
        uow.session.add(job)
        await uow.session.flush()
        await uow.commit()
        return job.id


async def get_job(db: Database, job_id: int) -> ImportJob:
    async with db.reader() as s:
        job = await s.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"no import {job_id}", code="import_not_found")
    return job


async def preview(db: Database, actor: Actor, job_id: int, path: Path | None = None,
                  progress: Progress | None = None) -> ImportJob:
    """The dry run of a job's file: its rows' statuses, errors and counts on the job
    (a file that cannot be read is one error on row 1)."""
    job = await get_job(db, job_id)
    file = Path(job.file_path) if path is None else path
    require(actor, job.kind)
    try:
        outcome = await process_file(db, actor, job.kind, file, write=False, job_id=job_id,
                                     progress=progress)
    except ValidationFailed as exc:
        outcome = Outcome()
        outcome.errors = [RowError(1, exc.field or "file", exc.code, exc.detail)]
        outcome.error_count = 1
        outcome.error_rows = 0
        summary = {**outcome.counts(), "file_error": exc.code, "statuses": ""}
    else:
        summary = {**outcome.counts(), "statuses": "".join(outcome.statuses)}
    sha256 = await asyncio.to_thread(file_sha256, file) if file.is_file() else ""
    async with db.uow() as uow:
        await uow.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
            status="previewed", total_rows=outcome.total, done_rows=0,
            error_count=outcome.error_count, file_sha256=sha256,
            errors=[e.as_dict() for e in outcome.errors], summary=summary))
        await uow.commit()
    return await get_job(db, job_id)


def is_stale(job: ImportJob) -> bool:
    """A running job whose process stopped (no progress for a while)."""
    if job.status != "running":
        return False
    beat = (job.summary or {}).get("heartbeat")
    since = job.started_at
    if isinstance(beat, str):
        from datetime import datetime
        since = datetime.fromisoformat(beat)
    return since is None or utcnow() - since > STALE_AFTER


async def start(db: Database, actor: Actor, job_id: int) -> ImportJob:
    """Mark the job running (refused while its preview has errors, or while it runs)."""
    job = await get_job(db, job_id)
    require(actor, job.kind)
    if job.error_count:
        raise Conflict("fix the errors in the file and upload it again", code="import_errors")
    if job.status == "running" and not is_stale(job):
        raise Conflict("the import is running", code="import_running")
    if job.status not in ("previewed", "failed", "running", "done"):
        raise Conflict("this import cannot be run", code="import_not_runnable")
    if not await asyncio.to_thread(_unchanged, Path(job.file_path), job.file_sha256):
        raise Conflict("the file changed after its preview; upload it again",
                       code="import_file_changed")
    async with db.uow() as uow:
        summary = {**(job.summary or {}), "heartbeat": utcnow().isoformat()}
        # Only if nobody started it since we read it (a double click starts one run).
        res = await uow.session.execute(update(ImportJob).where(
            ImportJob.id == job_id, ImportJob.status == job.status,
            ImportJob.started_at.is_not_distinct_from(job.started_at)).values(
            status="running", started_at=utcnow(), finished_at=None, done_rows=0,
            summary=summary))
        if getattr(res, "rowcount", 1) != 1:
            raise Conflict("the import is running", code="import_running")
        await uow.commit()
    return await get_job(db, job_id)


async def run(db: Database, actor: Actor, job_id: int,
              progress: Progress | None = None) -> ImportJob:
    """Import a started job's file; the job ends done (with one `import.run` audit
    entry holding the counts) or failed (and may be run again)."""
    job = await get_job(db, job_id)
    try:
        outcome = await process_file(db, actor, job.kind, Path(job.file_path), write=True,
                                     job_id=job_id, progress=progress, total=job.total_rows)
    except Exception as exc:
        async with db.uow() as uow:
            await uow.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
                status="failed", finished_at=utcnow(),
                summary={**(job.summary or {}), "failure": str(exc)[:500]}))
            await uow.commit()
        raise
    if db.is_postgres and outcome.new >= ANALYZE_AFTER:
        # Fresh planner statistics for the tables that just grew (autovacuum would do it
        # later): the next import's lookups by SKU and barcode stay on their indexes.
        async with db.uow() as uow:
            conn = await uow.session.connection()
            for table in KIND_TABLES.get(job.kind, ()):
                await conn.exec_driver_sql(f"ANALYZE {table}")
            await uow.commit()
    async with db.uow() as uow:
        counts = outcome.counts()
        await record(uow, actor, "import.run", "import_job", job_id,
                     {"kind": job.kind, "file": job.filename, **counts})
        await uow.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
            status="done", finished_at=utcnow(), done_rows=outcome.total,
            error_count=outcome.error_count,
            errors=[e.as_dict() for e in outcome.errors] if outcome.error_count
            else job.errors,
            summary={"statuses": "".join(outcome.statuses), "preview": {
                k: (job.summary or {}).get(k) for k in ("new", "updated", "unchanged")},
                **counts}))
        await uow.commit()
    return await get_job(db, job_id)


_TASKS: dict[int, asyncio.Task[Any]] = {}


def run_in_background(db: Database, actor: Actor, job_id: int) -> asyncio.Task[Any]:
    """The import as a task of this process (the page polls the job's progress)."""

    async def go() -> None:
        try:
            await run(db, actor, job_id)
        except Exception:  # recorded on the job as failed; may be run again
            log.exception("import %s failed", job_id)
        finally:
            _TASKS.pop(job_id, None)

    task = asyncio.get_running_loop().create_task(go())
    _TASKS[job_id] = task
    return task


async def wait(job_id: int) -> None:
    """Until this process's background import of `job_id` ends (tests, shutdown)."""
    task = _TASKS.get(job_id)
    if task is not None:
        await asyncio.shield(task)


async def discard(db: Database, actor: Actor, job_id: int) -> None:
    job = await get_job(db, job_id)
    require(actor, job.kind)
    if job.status == "running" and not is_stale(job):
        raise Conflict("the import is running", code="import_running")
    async with db.uow() as uow:
        await uow.session.execute(update(ImportJob).where(ImportJob.id == job_id)
                                  .values(status="discarded"))
        await uow.commit()
    await asyncio.to_thread(Path(job.file_path).unlink, missing_ok=True)


async def recent_jobs(db: Database, limit: int = 20) -> list[ImportJob]:
    async with db.reader() as s:
        return list((await s.scalars(select(ImportJob).order_by(ImportJob.id.desc())
                                     .limit(limit))).all())


# --- exports ---------------------------------------------------------------------------

EXPORT_KINDS = ("products", "stock", "customers")
EXPORT_PERMISSIONS = {"products": "catalogue.read", "stock": "stock.read",
                      "customers": "customers.read"}


def export_columns(kind: str) -> tuple[str, ...]:
    if kind == "stock":
        return stock.EXPORT_COLUMNS
    cols: tuple[str, ...] = kind_module(kind).COLUMNS
    return cols


async def start_export(db: Database, actor: Actor, kind: str) -> None:
    """Check the right to export `kind`; a customer export is audited."""
    if kind not in EXPORT_KINDS:
        raise NotFound(f"no export '{kind[:20]}'", code="export_not_found")
    actor.require(EXPORT_PERMISSIONS[kind])
    if kind == "customers":
        async with db.uow() as uow:
            await record(uow, actor, "customers.export", "export", 0, {"kind": kind})
            await uow.commit()


async def export_lines(db: Database, kind: str, page: int | None = None
                       ) -> AsyncIterator[str]:
    """The export as text lines (the first with the byte order mark and the header),
    read `page` records at a time in key order: memory stays flat however big."""
    yield BOM + csv_line(export_columns(kind))
    after: Any = (0, 0) if kind == "stock" else 0
    reader: Callable[[Any, Any, int], Awaitable[tuple[Any, list[list[object]]]]]
    reader = {"products": products.export_rows, "stock": stock.export_rows,
              "customers": customers.export_rows}[kind]  # type: ignore[assignment]
    while True:
        async with db.reader() as s:
            last, rows = await reader(s, after, page or EXPORT_PAGE)
        if last == after:
            return
        after = last
        if rows:
            yield "".join(csv_line(r) for r in rows)
