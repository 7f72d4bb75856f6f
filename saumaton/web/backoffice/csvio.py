"""CSV import and export in the back office: upload a file (products, stock levels or
customers), read its preview (every row with its status and errors next to it, the
counts of new, updated, unchanged and wrong rows), import it with a progress bar that
follows the job, and download the exports.

Thin: the rules are in `saumaton.csvio`. The upload is kept under the var directory
(`var/imports/<job id>.csv`); the import runs as a task of this app process.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.csvio import jobs
from saumaton.csvio.files import CsvRows
from saumaton.csvio.models import ImportJob
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_router,
    render,
    settings_of,
)

router = page_router()
BASE = "/backoffice/import-export"
MAX_UPLOAD = 20 * 1024 * 1024
PAGE_ROWS = 50
KIND_LABELS = {"products": N_("Products"), "stock": N_("Stock levels"),
               "customers": N_("Customers")}
SHOWN = {"products": ("product", "sku", "name", "variant_name", "price"),
         "stock": ("location", "sku", "ean", "quantity"),
         "customers": ("first_name", "last_name", "email", "phone")}
MESSAGES = {
    "required": N_("This column is required."),
    "too_long": N_("The value is too long."),
    "invalid_slug": N_("A product key is lower-case letters, digits and dashes."),
    "unknown_category": N_("No such category: create it first or leave the column empty."),
    "unknown_vat_class": N_("No such VAT class."),
    "invalid_bool": N_("Write yes or no."),
    "invalid_ean": N_("This is not a valid EAN/GTIN: check the digits and the check digit."),
    "invalid_barcode": N_("A barcode is 1–14 letters and digits."),
    "duplicate_ean": N_("The same barcode is given to another row."),
    "ean_in_use": N_("This barcode belongs to another product."),
    "invalid_attributes": N_("Write attributes as name=value pairs separated by |, "
                             "e.g. shade=Ruby|size=4 g."),
    "invalid_price": N_("A price is euros with at most two decimals, e.g. 12,90."),
    "duplicate_sku": N_("The same SKU is on another row."),
    "product_differs": N_("The product's columns differ from its first row."),
    "sku_of_other_product": N_("This SKU belongs to another product."),
    "unknown_location": N_("No such location code."),
    "forbidden": N_("You may not change this."),
    "unknown_sku": N_("No product has this SKU."),
    "unknown_ean": N_("No product has this EAN."),
    "ean_mismatch": N_("The EAN is not the EAN of this SKU."),
    "invalid_quantity": N_("A quantity is a whole number, 0 or more."),
    "duplicate_row": N_("Another row gives the same product and location, or the same "
                        "customer."),
    "invalid_email": N_("This is not an e-mail address."),
    "invalid_phone": N_("This is not a phone number."),
    "invalid_card": N_("A loyalty card number is 6–20 digits."),
    "different_customers": N_("The e-mail and the phone belong to different customers: "
                              "merge them first."),
    "customer_erased": N_("This customer's data has been erased."),
    "card_mismatch": N_("The loyalty card is not this customer's."),
    "not_utf8": N_("The file is not UTF-8 text (line %(line)s). In Excel, save it as "
                   "“CSV UTF-8”."),
    "empty_file": N_("The file is empty."),
    "missing_columns": N_("The file has no column %(columns)s. The first line names the "
                          "columns."),
    "duplicate_columns": N_("A column name repeats in the first line."),
    "import_errors": N_("Fix the errors in the file and upload it again."),
    "import_running": N_("The import is running."),
    "import_file_changed": N_("The file changed after its preview: upload it again."),
    "import_not_runnable": N_("This import cannot be run."),
    "import_not_found": N_("No such import."),
}


def _row_message(request: Request, error: dict[str, Any]) -> str:
    own = MESSAGES.get(str(error.get("code", "")))
    if own is None or "%(" in own:
        return str(error.get("message", ""))
    return gettext(request, own)


def _file_message(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


async def _form_page(request: Request, actor: Actor, *, errors: dict[str, str] | None = None,
                     kind: str = "products", status: int = 200) -> Response:
    recent = await jobs.recent_jobs(db_of(request))
    return render(request, "backoffice/import_export.html", {
        "title": gettext(request, N_("Import and export")), "errors": errors or {},
        "kind": kind, "kinds": KIND_LABELS, "recent": recent, "base": BASE,
        "max_mb": MAX_UPLOAD // (1024 * 1024), "nav_key": "import-export",
        "may_export": {k: actor.can(p) for k, p in jobs.EXPORT_PERMISSIONS.items()},
    }, status=status)


@router.get(BASE)
async def import_export(request: Request,
                        actor: Annotated[Actor, requires("imports.run")]) -> Response:
    return await _form_page(request, actor)


def _store(upload: UploadFile, target: Path) -> int:
    """Copy the upload to `target`; its size, or -1 when over the limit."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    upload.file.seek(0)
    with target.open("wb") as out:
        while chunk := upload.file.read(1 << 16):
            size += len(chunk)
            if size > MAX_UPLOAD:
                out.close()
                target.unlink(missing_ok=True)
                return -1
            out.write(chunk)
    return size


@router.post(BASE)
async def upload(request: Request,
                 actor: Annotated[Actor, requires("imports.run")]) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD + 64 * 1024:
        return await _form_page(request, actor, status=422, errors={"file": gettext(
            request, N_("The file is too big: at most %(mb)s MB."),
            mb=str(MAX_UPLOAD // (1024 * 1024)))})
    form = await checked_form(request)
    kind = str(form.get("kind", ""))
    file = form.get("file")
    errors: dict[str, str] = {}
    if kind not in jobs.KINDS:
        errors["kind"] = gettext(request, N_("Choose what the file holds."))
    else:
        try:
            jobs.require(actor, kind)
        except DomainError:
            errors["kind"] = gettext(request, N_("You may not import this."))
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = gettext(request, N_("Choose a CSV file."))
    if errors or not isinstance(file, UploadFile):
        return await _form_page(request, actor, errors=errors, kind=kind, status=422)
    db = db_of(request)
    folder = settings_of(request).var_dir / "imports"
    job_id = await jobs.create_job(db, actor, kind, file.filename or "import.csv",
                                   folder / "pending.csv")
    target = folder / f"{job_id}.csv"
    size = await asyncio.to_thread(_store, file, target)
    if size < 0:
        await jobs.discard(db, actor, job_id)
        return await _form_page(request, actor, kind=kind, status=422, errors={
            "file": gettext(request, N_("The file is too big: at most %(mb)s MB."),
                            mb=str(MAX_UPLOAD // (1024 * 1024)))})
    async with db.uow() as uow:
        job = await uow.session.get(ImportJob, job_id)
        assert job is not None
        job.file_path = str(target)
        await uow.commit()
    try:
        await asyncio.to_thread(jobs.open_file, kind, target)
    except ValidationFailed as exc:
        await jobs.discard(db, actor, job_id)
        return await _form_page(request, actor, kind=kind, status=422,
                                errors={"file": _file_message(request, exc)})
    await jobs.preview(db, actor, job_id)
    return RedirectResponse(f"{BASE}/jobs/{job_id}", status_code=303)


def _page_rows(job: ImportJob, page: int, only_errors: bool
               ) -> tuple[list[dict[str, Any]], int]:
    """The rows of one page of the preview (the file read again, streamed) and how
    many rows the listing has."""
    statuses = str((job.summary or {}).get("statuses", ""))
    by_row: dict[int, list[dict[str, Any]]] = {}
    for e in job.errors or []:
        by_row.setdefault(int(e["row"]), []).append(e)
    wanted = [i for i, s in enumerate(statuses) if s == "e"] if only_errors \
        else range(len(statuses))
    total = len(wanted)
    chosen = set(list(wanted)[(page - 1) * PAGE_ROWS: page * PAGE_ROWS])
    out: list[dict[str, Any]] = []
    if not chosen or not Path(job.file_path).exists():
        return out, total
    module = jobs.kind_module(job.kind)
    last = max(chosen)
    for i, (n, values) in enumerate(CsvRows(Path(job.file_path), module.COLUMNS, ())):
        if i > last:
            break
        if i in chosen:
            shown = [values.get(c, "") or values.get("on_hand", "") if c == "quantity"
                     else values.get(c, "") for c in SHOWN[job.kind]]
            out.append({"n": n, "status": statuses[i], "cells": shown,
                        "errors": by_row.get(n, [])})
    return out, total


async def _job_or_404(request: Request, job_id: int) -> ImportJob | Response:
    try:
        return await jobs.get_job(db_of(request), job_id)
    except DomainError:
        return error_page(request, 404, gettext(request, N_("No such import.")))


@router.get(BASE + "/jobs/{job_id}")
async def job_page(request: Request, job_id: int,
                   actor: Annotated[Actor, requires("imports.run")],
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                   errors: Annotated[int, Query(ge=0, le=1)] = 0,
                   problem: Annotated[str, Query(max_length=40)] = "") -> Response:
    job = await _job_or_404(request, job_id)
    if isinstance(job, Response):
        return job
    rows, total = await asyncio.to_thread(_page_rows, job, page, bool(errors))
    file_errors = [e for e in job.errors or [] if int(e["row"]) == 1]
    pages = max(1, (total + PAGE_ROWS - 1) // PAGE_ROWS)
    return render(request, "backoffice/import_job.html", {
        "title": gettext(request, N_("Import %(id)s"), id=str(job.id)), "job": job,
        "rows": rows, "page": page, "pages": pages, "only_errors": bool(errors),
        "file_errors": file_errors, "kinds": KIND_LABELS, "base": BASE,
        "columns": SHOWN[job.kind], "nav_key": "import-export",
        "message": lambda e: _row_message(request, e),
        "stale": jobs.is_stale(job), "counts": job.summary or {},
        "problem": gettext(request, MESSAGES[problem]) if problem in MESSAGES else "",
    })


@router.get(BASE + "/jobs/{job_id}/progress")
async def job_progress(request: Request, job_id: int,
                       actor: Annotated[Actor, requires("imports.run")]) -> Response:
    job = await _job_or_404(request, job_id)
    if isinstance(job, Response):
        return job
    return render(request, "backoffice/_import_progress.html", {
        "job": job, "base": BASE, "stale": jobs.is_stale(job), "counts": job.summary or {}})


@router.post(BASE + "/jobs/{job_id}/run")
async def run_job(request: Request, job_id: int,
                  actor: Annotated[Actor, requires("imports.run")]) -> Response:
    await checked_form(request)
    db = db_of(request)
    job = await _job_or_404(request, job_id)
    if isinstance(job, Response):
        return job
    try:
        await jobs.start(db, actor, job_id)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return RedirectResponse(f"{BASE}/jobs/{job_id}?problem={exc.code}", status_code=303)
    jobs.run_in_background(db, actor, job_id)
    return RedirectResponse(f"{BASE}/jobs/{job_id}", status_code=303)


@router.post(BASE + "/jobs/{job_id}/discard")
async def discard_job(request: Request, job_id: int,
                      actor: Annotated[Actor, requires("imports.run")]) -> Response:
    await checked_form(request)
    job = await _job_or_404(request, job_id)
    if isinstance(job, Response):
        return job
    try:
        await jobs.discard(db_of(request), actor, job_id)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return RedirectResponse(f"{BASE}/jobs/{job_id}?problem={exc.code}", status_code=303)
    return RedirectResponse(BASE, status_code=303)


async def _export(request: Request, actor: Actor, kind: str) -> Response:
    db = db_of(request)
    await jobs.start_export(db, actor, kind)
    name = f"{kind}-{date.today().isoformat()}.csv"
    return StreamingResponse(
        jobs.export_lines(db, kind), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Cache-Control": "no-store"})


@router.get(BASE + "/export/products")
async def export_products(request: Request,
                          actor: Annotated[Actor, requires("catalogue.read")]) -> Response:
    return await _export(request, actor, "products")


@router.get(BASE + "/export/stock")
async def export_stock(request: Request,
                       actor: Annotated[Actor, requires("stock.read")]) -> Response:
    return await _export(request, actor, "stock")


@router.get(BASE + "/export/customers")
async def export_customers(request: Request,
                           actor: Annotated[Actor, requires("customers.read")]) -> Response:
    return await _export(request, actor, "customers")

