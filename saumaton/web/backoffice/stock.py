"""Stock in the back office: levels per location (filters: low, negative, needs a count,
in transit), the movement history of a variant with its write-off form, receiving a
delivery by scanning, transfers (send by scanning, receive with differences, cancel),
stock counts (open, scan, review the variances, post or cancel) and the "needs a count"
list.

Thin: the rules are in `saumaton.inventory` (transfers, counts, receiving, levels).
A scan is a form post (the scanner types the code and Enter); the page comes back with
the scan field focused, so no script is needed to keep scanning.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, Forbidden, NotFound
from saumaton.core.types import MAX_ID, MAX_INT32
from saumaton.db.idempotency import fingerprint, run_once
from saumaton.db.uow import UnitOfWork
from saumaton.inventory import counts as stock_counts
from saumaton.inventory import services as inventory
from saumaton.inventory import transfers
from saumaton.inventory.levels import STATES, list_levels
from saumaton.inventory.receiving import receive_delivery, variant_by_code, write_off
from saumaton.locations.models import Location
from saumaton.locations.services import list_locations
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
)

router = page_router()
BASE = "/backoffice/stock"
PAGE_SIZE = 50
MAX_SCAN_LINES = 200

MESSAGES = {
    "unknown_code": N_("No product has the code %(code)s."),
    "out_of_stock": N_("Not that many in stock to send."),
    "same_location": N_("Choose a different location to send to."),
    "no_lines": N_("Scan at least one product."),
    "reference_required": N_("Give the delivery note number."),
    "reference_too_long": N_("Use at most 100 characters."),
    "supplier_too_long": N_("Use at most 150 characters."),
    "note_too_long": N_("Use at most 200 characters."),
    "scope_too_long": N_("Use at most 200 characters."),
    "reason_too_long": N_("Use at most 200 characters."),
    "invalid_quantity": N_("Give a whole number of at least 1."),
    "reason_required": N_("Say why the units are written off."),
    "scope_required": N_("Say what is counted (for example shelf A3), or count the whole "
                         "location."),
    "count_not_open": N_("This count is no longer open."),
    "transfer_not_in_transit": N_("This transfer is no longer in transit."),
    "transfer_not_requested": N_("This transfer is not waiting to be sent any more."),
    "location_not_found": N_("Choose a location."),
    "variant_not_found": N_("The product was not found."),
    "too_many_lines": N_("Too many lines: post these first."),
}

STATE_LABELS = {"low": N_("Low (3 or fewer)"), "negative": N_("Negative"),
                "needs_count": N_("Needs a count"), "in_transit": N_("In transit")}
KIND_LABELS = {"receipt": N_("Received"), "sale": N_("Sold"), "return": N_("Returned"),
               "transfer": N_("Transfer"), "count": N_("Count"),
               "adjustment": N_("Adjustment"), "write_off": N_("Write-off"),
               "transfer_out": N_("Sent (transfer)"), "transfer_in": N_("Received (transfer)")}
STATUS_LABELS = {"requested": N_("To send"), "in_transit": N_("In transit"),
                 "received": N_("Received"),
                 "cancelled": N_("Cancelled"), "open": N_("Being counted"), "posted": N_("Posted")}

LocationQ = Annotated[int | None, Query(alias="location", ge=1, le=MAX_INT32)]


def _msg(request: Request, exc: DomainError, **values: str) -> str:
    return error_message(request, exc, MESSAGES, **values)


def _t(request: Request, message: str, **values: Any) -> str:
    return gettext(request, message, **values)


def _labels(request: Request, labels: dict[str, str]) -> dict[str, str]:
    return {k: _t(request, v) for k, v in labels.items()}


async def _locations(request: Request, actor: Actor, permission: str) -> list[Location]:
    async with db_of(request).reader() as s:
        return [loc for loc in await list_locations(s) if actor.can(permission, loc.id)]


def _int(value: object, default: int | None = None) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return n if -MAX_INT32 <= n <= MAX_INT32 else default


def _text(form: FormData, name: str, max_len: int = 400) -> str:
    value = form.get(name, "")
    return value[:max_len] if isinstance(value, str) else ""


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


# --- levels -----------------------------------------------------------------------------


@router.get("/backoffice/stock")
async def levels(request: Request, actor: Annotated[Actor, requires("stock.read")],
                 location: LocationQ = None,
                 q: Annotated[str, Query(max_length=100)] = "",
                 state: Annotated[str, Query(max_length=20)] = "",
                 page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    return await _levels_page(request, actor, location, q, state, page, "stock")


@router.get("/backoffice/stock/needs-count")
async def needs_count(request: Request, actor: Annotated[Actor, requires("stock.read")],
                      location: LocationQ = None,
                      page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    return await _levels_page(request, actor, location, "", "needs_count", page, "stock",
                              flagged_list=True)


async def _levels_page(request: Request, actor: Actor, location: int | None, q: str,
                       state: str, page: int, nav_key: str, *,
                       flagged_list: bool = False) -> Response:
    state = state if state in STATES else ""
    async with db_of(request).reader() as s:
        rows, more = await list_levels(s, actor, location_id=location, search=q, state=state,
                                       limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    locations = await _locations(request, actor, "stock.read")
    params = {k: v for k, v in {"location": location or "", "q": q, "state": state}.items()
              if v}

    def page_url(n: int) -> str:
        path = f"{BASE}/needs-count" if flagged_list else BASE
        return f"{path}?{urlencode({**params, 'page': n})}"
    count_at = sorted({r.location_id for r in rows if actor.can("stock.count", r.location_id)})
    return render(request, "backoffice/stock/levels.html", {
        "title": _t(request, N_("Needs a count") if flagged_list else N_("Stock levels")),
        "rows": rows, "locations": locations, "location": location, "q": q, "state": state,
        "states": _labels(request, STATE_LABELS), "page": page,
        "prev_url": page_url(page - 1) if page > 1 else "",
        "next_url": page_url(page + 1) if more else "", "flagged_list": flagged_list,
        "count_at": [loc for loc in locations if loc.id in count_at],
        "nav_key": nav_key, "base": BASE})


# --- one variant: levels, in transit, movements, write-off ---------------------------


async def _variant_page(request: Request, actor: Actor, variant_id: int, *,
                        before: int | None = None, errors: dict[str, str] | None = None,
                        values: dict[str, Any] | None = None, notice: str = "",
                        status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        row = (await s.execute(
            select(Variant, Product.name).join(Product, Product.id == Variant.product_id)
            .where(Variant.id == variant_id))).first()
        if row is None:
            return error_page(request, 404, _t(request, N_("The product was not found.")))
        variant, product_name = row
        readable = [loc for loc in await list_locations(s)
                    if actor.can("stock.read", loc.id)]
        av = (await inventory.availability(s, [variant_id]))[variant_id]
        transit = await transfers.in_transit(s, variant_ids=[variant_id])
        all_moves = await inventory.movements(s, variant_id=variant_id, limit=PAGE_SIZE + 1,
                                              before_id=before)
    ids = {loc.id for loc in readable}
    moves = [m for m in all_moves if m.location_id in ids]
    names = {loc.id: loc.name for loc in readable}
    per = [(loc, av.at(loc.id), transit.get((variant_id, loc.id), 0)) for loc in readable]
    write_locs = [loc for loc in readable if actor.can("stock.write", loc.id)]
    return render(request, "backoffice/stock/variant.html", {
        "title": f"{product_name} {variant.name}".strip(), "variant": variant,
        "product_name": product_name, "per": per, "moves": moves[:PAGE_SIZE],
        "older_url": (f"{BASE}/variants/{variant_id}?before={moves[PAGE_SIZE - 1].id}"
                      if len(all_moves) > PAGE_SIZE and len(moves) >= PAGE_SIZE else ""),
        "names": names, "kinds": _labels(request, KIND_LABELS), "write_locs": write_locs,
        "errors": errors or {}, "values": values or {}, "notice": notice, "nav_key": "stock",
        "base": BASE}, status=status)


@router.get("/backoffice/stock/variants/{variant_id}")
async def variant_page(request: Request, variant_id: int,
                       actor: Annotated[Actor, requires("stock.read")],
                       before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                       done: Annotated[str, Query(max_length=20)] = "") -> Response:
    if variant_id < 1 or variant_id > MAX_INT32:
        return error_page(request, 404, _t(request, N_("The product was not found.")))
    notice = _t(request, N_("Written off.")) if done == "write-off" else ""
    return await _variant_page(request, actor, variant_id, before=before, notice=notice)


@router.post("/backoffice/stock/variants/{variant_id}/write-off")
async def write_off_post(request: Request, variant_id: int,
                         actor: Annotated[Actor, requires("stock.write")]) -> Response:
    form = await checked_form(request)
    values = {k: _text(form, k) for k in ("location_id", "quantity", "reason")}
    errors: dict[str, str] = {}
    location_id = _int(values["location_id"])
    quantity = _int(values["quantity"])
    if location_id is None or not actor.can("stock.write", location_id):
        errors["location_id"] = _t(request, MESSAGES["location_not_found"])
    if quantity is None or quantity < 1 or quantity > 1_000_000:
        errors["quantity"] = _t(request, MESSAGES["invalid_quantity"])
    if not values["reason"].strip():
        errors["reason"] = _t(request, MESSAGES["reason_required"])
    elif len(values["reason"].strip()) > 200:
        errors["reason"] = _t(request, MESSAGES["reason_too_long"])
    if not errors and location_id is not None and quantity is not None:
        try:
            async with db_of(request).uow() as uow:
                await write_off(uow, actor, variant_id, location_id, quantity,
                                reason=values["reason"])
                await uow.commit()
        except Forbidden:
            raise
        except DomainError as exc:
            if exc.code == "variant_not_found":
                return error_page(request, 404, _msg(request, exc))
            errors[exc.field or "quantity"] = _msg(request, exc)
        else:
            return _redirect(f"{BASE}/variants/{variant_id}?done=write-off")
    return await _variant_page(request, actor, variant_id, errors=errors, values=values,
                               status=422)


# --- scanned lines (a delivery, a new transfer) ------------------------------------------


@dataclass
class ScanLine:
    variant_id: int
    sku: str
    name: str
    quantity: int


async def _read_lines(request: Request, form: FormData,
                      errors: dict[str, str]) -> list[ScanLine]:
    """The lines on the form (quantities as edited; 0 removes a line) plus the code just
    scanned (+1 on its line, or a new line). An unknown code is an error by the field."""
    vids = [v for v in (_int(x) for x in form.getlist("line")) if v and v > 0]
    vids = list(dict.fromkeys(vids))[:MAX_SCAN_LINES]
    lines: list[ScanLine] = []
    async with db_of(request).reader() as s:
        info = {int(v): (sku, f"{pn} {vn}".strip()) for v, sku, pn, vn in (await s.execute(
            select(Variant.id, Variant.sku, Product.name, Variant.name)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id.in_(vids)))).all()}
        for vid in vids:
            if vid not in info:
                continue
            raw = _text(form, f"q-{vid}", 20)
            qty = _int(raw)
            if qty is None or qty < 0 or qty > 1_000_000:
                errors[f"q-{vid}"] = _t(request, MESSAGES["invalid_quantity"])
                qty = 1
            if qty or f"q-{vid}" in errors:
                lines.append(ScanLine(vid, info[vid][0], info[vid][1], qty))
        code = _text(form, "code", 64).strip()
        if code:
            try:
                vid, sku, name = await variant_by_code(s, code)
            except NotFound as exc:
                errors["code"] = _msg(request, exc, code=code)
            else:
                hit = next((ln for ln in lines if ln.variant_id == vid), None)
                if hit:
                    hit.quantity += 1
                else:
                    lines.append(ScanLine(vid, sku, name, 1))
    return lines


def _line_errors(request: Request, exc: DomainError, lines: list[ScanLine],
                 errors: dict[str, str]) -> None:
    vid = exc.extra.get("variant_id")
    if exc.field == "lines" and isinstance(vid, int) and any(ln.variant_id == vid
                                                            for ln in lines):
        errors[f"q-{vid}"] = _msg(request, exc)
    else:
        errors[exc.field if exc.field in ("location_id", "to_location_id", "reference",
                                          "supplier", "note") else "code"] = _msg(request, exc)


async def _receive_page(request: Request, actor: Actor, *, lines: list[ScanLine] | None = None,
                        values: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None, notice: str = "",
                        status: int = 200) -> Response:
    return render(request, "backoffice/stock/receive.html", {
        "title": _t(request, N_("Receive a delivery")), "lines": lines or [],
        "values": values or {}, "errors": errors or {}, "notice": notice,
        "locations": await _locations(request, actor, "stock.write"), "base": BASE},
        status=status)


@router.get("/backoffice/stock/receive")
async def receive_form(request: Request, actor: Annotated[Actor, requires("stock.write")],
                       done: Annotated[str, Query(max_length=100)] = "") -> Response:
    notice = _t(request, N_("Delivery %(reference)s received."), reference=done) if done \
        else ""
    return await _receive_page(request, actor, notice=notice)


@router.post("/backoffice/stock/receive")
async def receive_post(request: Request,
                       actor: Annotated[Actor, requires("stock.write")]) -> Response:
    form = await checked_form(request)
    errors: dict[str, str] = {}
    values = {k: _text(form, k, 200) for k in ("location_id", "reference", "supplier", "key")}
    lines = await _read_lines(request, form, errors)
    if _text(form, "action", 10) != "post":
        return await _receive_page(request, actor, lines=lines, values=values, errors=errors,
                                   status=422 if errors else 200)
    location_id = _int(values["location_id"])
    if location_id is None or not actor.can("stock.write", location_id):
        errors["location_id"] = _t(request, MESSAGES["location_not_found"])
    if not values["reference"].strip():
        errors["reference"] = _t(request, MESSAGES["reference_required"])
    elif len(values["reference"].strip()) > 100:
        errors["reference"] = _t(request, MESSAGES["reference_too_long"])
    if len(values["supplier"].strip()) > 150:
        errors["supplier"] = _t(request, MESSAGES["supplier_too_long"])
    if not lines:
        errors.setdefault("code", _t(request, MESSAGES["no_lines"]))
    if not errors and location_id is not None:
        key = _text(form, "key", 64) or uuid.uuid4().hex  # a double submit posts once
        posted = [(ln.variant_id, ln.quantity) for ln in lines]

        async def work(uow: UnitOfWork) -> Any:
            assert location_id is not None
            await receive_delivery(uow, actor, location_id, posted,
                                   reference=values["reference"],
                                   supplier=values["supplier"])
            return {"reference": values["reference"]}
        try:
            await run_once(db_of(request), "bo.stock.receive", key, fingerprint(
                f"{location_id}|{values['reference']}|{values['supplier']}|{posted}"), work)
        except Forbidden:
            raise
        except DomainError as exc:
            _line_errors(request, exc, lines, errors)
        else:
            return _redirect(f"{BASE}/receive?{urlencode({'done': values['reference']})}")
    return await _receive_page(request, actor, lines=lines, values=values, errors=errors,
                               status=422)


# --- transfers ---------------------------------------------------------------------------


@router.get("/backoffice/stock/transfers")
async def transfers_list(request: Request, actor: Annotated[Actor, requires("stock.read")],
                         status: Annotated[str, Query(max_length=20)] = "",
                         page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    status = status if status in ("requested", "in_transit", "received", "cancelled") else ""
    async with db_of(request).reader() as s:
        rows = await transfers.list_transfers(s, actor, status=status, limit=PAGE_SIZE + 1,
                                              offset=(page - 1) * PAGE_SIZE)
    q = {"status": status} if status else {}
    return render(request, "backoffice/stock/transfers.html", {
        "title": _t(request, N_("Transfers")), "rows": rows[:PAGE_SIZE], "status": status,
        "statuses": _labels(request, STATUS_LABELS),
        "may_send": bool(await _locations(request, actor, "stock.write")),
        "prev_url": f"{BASE}/transfers?{urlencode({**q, 'page': page - 1})}" if page > 1
        else "",
        "next_url": f"{BASE}/transfers?{urlencode({**q, 'page': page + 1})}"
        if len(rows) > PAGE_SIZE else "", "base": BASE})


async def _new_transfer_page(request: Request, actor: Actor, *,
                             lines: list[ScanLine] | None = None,
                             values: dict[str, str] | None = None,
                             errors: dict[str, str] | None = None,
                             status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        every = await list_locations(s)
    return render(request, "backoffice/stock/transfer_new.html", {
        "title": _t(request, N_("New transfer")), "lines": lines or [],
        "values": values or {}, "errors": errors or {},
        "senders": [loc for loc in every if actor.can("stock.write", loc.id)],
        "receivers": every, "nav_key": "transfers", "base": BASE}, status=status)


@router.get("/backoffice/stock/transfers/new")
async def new_transfer(request: Request,
                       actor: Annotated[Actor, requires("stock.write")]) -> Response:
    return await _new_transfer_page(request, actor)


@router.post("/backoffice/stock/transfers/new")
async def new_transfer_post(request: Request,
                            actor: Annotated[Actor, requires("stock.write")]) -> Response:
    form = await checked_form(request)
    errors: dict[str, str] = {}
    values = {k: _text(form, k, 250) for k in ("from_location_id", "to_location_id", "note",
                                                "key")}
    lines = await _read_lines(request, form, errors)
    if _text(form, "action", 10) != "send":
        return await _new_transfer_page(request, actor, lines=lines, values=values,
                                        errors=errors, status=422 if errors else 200)
    src, dst = _int(values["from_location_id"]), _int(values["to_location_id"])
    if src is None or not actor.can("stock.write", src):
        errors["from_location_id"] = _t(request, MESSAGES["location_not_found"])
    if dst is None:
        errors["to_location_id"] = _t(request, MESSAGES["location_not_found"])
    elif dst == src:
        errors["to_location_id"] = _t(request, MESSAGES["same_location"])
    if len(values["note"].strip()) > 200:
        errors["note"] = _t(request, MESSAGES["note_too_long"])
    if not lines:
        errors.setdefault("code", _t(request, MESSAGES["no_lines"]))
    if not errors and src is not None and dst is not None:
        key = values["key"][:64] or None
        try:
            async with db_of(request).uow() as uow:
                out = await transfers.send(uow, actor, src, dst,
                                           [(ln.variant_id, ln.quantity) for ln in lines],
                                           note=values["note"],
                                           idempotency_key=f"bo:{key}" if key else None)
                await uow.commit()
        except Forbidden:
            raise
        except DomainError as exc:
            if exc.code == "duplicate_transfer" and key:  # a double submit: the first one
                async with db_of(request).reader() as s:
                    first = await transfers.find_by_key(s, f"bo:{key}")
                if first is not None:
                    return _redirect(f"{BASE}/transfers/{first.id}")
            _line_errors(request, exc, lines, errors)
        else:
            return _redirect(f"{BASE}/transfers/{out.id}?done=sent")
    return await _new_transfer_page(request, actor, lines=lines, values=values, errors=errors,
                                    status=422)


async def _transfer_page(request: Request, actor: Actor, transfer_id: int, *,
                         errors: dict[str, str] | None = None,
                         values: dict[str, str] | None = None, notice: str = "",
                         status: int = 200) -> Response:
    try:
        async with db_of(request).reader() as s:
            t = await transfers.get_transfer(s, transfer_id)
    except NotFound:
        t = None
    if t is None or not transfers.may_read(actor, t):
        return error_page(request, 404, _t(request, N_("The transfer was not found.")))
    in_transit = t.status == "in_transit"
    return render(request, "backoffice/stock/transfer.html", {
        "title": _t(request, N_("Transfer %(number)s"), number=t.id), "t": t,
        "statuses": _labels(request, STATUS_LABELS),
        "may_receive": in_transit and actor.can("stock.write", t.to_location_id),
        "may_cancel": in_transit and actor.can("stock.write", t.from_location_id),
        "may_dispatch": (t.status == "requested"
                         and actor.can("stock.write", t.from_location_id)),
        "errors": errors or {}, "values": values or {}, "notice": notice,
        "nav_key": "transfers", "base": BASE}, status=status)


@router.get("/backoffice/stock/transfers/{transfer_id}")
async def transfer_page(request: Request, transfer_id: int,
                        actor: Annotated[Actor, requires("stock.read")],
                        done: Annotated[str, Query(max_length=20)] = "") -> Response:
    if transfer_id < 1 or transfer_id > MAX_ID:
        return error_page(request, 404, _t(request, N_("The transfer was not found.")))
    notice = {"sent": N_("Sent: the goods are in transit until the receiver posts them."),
              "received": N_("Received."), "cancelled": N_("Cancelled: the goods are back "
                                                           "at the sender.")}.get(done, "")
    return await _transfer_page(request, actor, transfer_id,
                                notice=_t(request, notice) if notice else "")


@router.post("/backoffice/stock/transfers/{transfer_id}/receive")
async def transfer_receive(request: Request, transfer_id: int,
                           actor: Annotated[Actor, requires("stock.write")]) -> Response:
    form = await checked_form(request)
    errors: dict[str, str] = {}
    got: dict[int, int] = {}
    values: dict[str, str] = {"note": _text(form, "note", 250)}
    for key in form:
        if key.startswith("r-"):
            vid = _int(key[2:])
            raw = _text(form, key, 20)
            values[key] = raw
            qty = _int(raw)
            if vid is None:
                continue
            if qty is None or qty < 0 or qty > 1_000_000:
                errors[key] = _t(request, N_("Give a whole number, 0 or more."))
            else:
                got[vid] = qty
    if len(values["note"].strip()) > 200:
        errors["note"] = _t(request, MESSAGES["note_too_long"])
    if not errors:
        try:
            async with db_of(request).uow() as uow:
                await transfers.receive(uow, actor, transfer_id, got, note=values["note"])
                await uow.commit()
        except Forbidden:
            raise
        except NotFound:
            return error_page(request, 404, _t(request, N_("The transfer was not found.")))
        except DomainError as exc:
            errors["form"] = _msg(request, exc)
        else:
            return _redirect(f"{BASE}/transfers/{transfer_id}?done=received")
    return await _transfer_page(request, actor, transfer_id, errors=errors, values=values,
                                status=422)


async def _transfer_action(request: Request, actor: Actor, transfer_id: int,
                           action: Callable[[UnitOfWork, Actor, int], Awaitable[object]],
                           done: str) -> Response:
    """One button on a transfer's page: the service in its own unit of work, a refusal
    shown on the page, then back to the page saying what was done."""
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await action(uow, actor, transfer_id)
            await uow.commit()
    except Forbidden:
        raise
    except NotFound:
        return error_page(request, 404, _t(request, N_("The transfer was not found.")))
    except DomainError as exc:
        return await _transfer_page(request, actor, transfer_id,
                                    errors={"form": _msg(request, exc)}, status=exc.status)
    return _redirect(f"{BASE}/transfers/{transfer_id}?done={done}")


@router.post("/backoffice/stock/transfers/{transfer_id}/send")
async def transfer_send(request: Request, transfer_id: int,
                        actor: Annotated[Actor, requires("stock.write")]) -> Response:
    """A requested transfer (goods held here for an order collected elsewhere) marked
    sent: the goods leave this shelf and are in transit."""
    return await _transfer_action(request, actor, transfer_id, transfers.send_requested,
                                  "sent")


@router.post("/backoffice/stock/transfers/{transfer_id}/cancel")
async def transfer_cancel(request: Request, transfer_id: int,
                          actor: Annotated[Actor, requires("stock.write")]) -> Response:
    return await _transfer_action(request, actor, transfer_id, transfers.cancel, "cancelled")


# --- counts ------------------------------------------------------------------------------


async def _counts_page(request: Request, actor: Actor, *,
                       errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None, status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        rows = await stock_counts.list_counts(s, actor, limit=100)
        sizes = await stock_counts.line_counts(s, [c.id for c in rows])
        names = {loc.id: loc.name for loc in await list_locations(s)}
    return render(request, "backoffice/stock/counts.html", {
        "title": _t(request, N_("Stock counts")), "rows": rows, "sizes": sizes,
        "names": names, "statuses": _labels(request, STATUS_LABELS),
        "locations": await _locations(request, actor, "stock.count"),
        "errors": errors or {}, "values": values or {}, "base": BASE}, status=status)


@router.get("/backoffice/stock/counts")
async def counts_list(request: Request,
                      actor: Annotated[Actor, requires("stock.count")]) -> Response:
    return await _counts_page(request, actor)


@router.post("/backoffice/stock/counts")
async def open_count(request: Request,
                     actor: Annotated[Actor, requires("stock.count")]) -> Response:
    form = await checked_form(request)
    values = {k: _text(form, k, 250) for k in ("location_id", "scope", "full")}
    errors: dict[str, str] = {}
    location_id = _int(values["location_id"])
    full = values["full"] == "1"
    if location_id is None or not actor.can("stock.count", location_id):
        errors["location_id"] = _t(request, MESSAGES["location_not_found"])
    if len(values["scope"].strip()) > 200:
        errors["scope"] = _t(request, MESSAGES["scope_too_long"])
    elif not full and not values["scope"].strip():
        errors["scope"] = _t(request, MESSAGES["scope_required"])
    if not errors and location_id is not None:
        try:
            async with db_of(request).uow() as uow:
                count_id = await stock_counts.open_count(uow, actor, location_id,
                                                         scope=values["scope"], full=full)
                await uow.commit()
        except Forbidden:
            raise
        except DomainError as exc:
            errors[exc.field or "scope"] = _msg(request, exc)
        else:
            return _redirect(f"{BASE}/counts/{count_id}")
    return await _counts_page(request, actor, errors=errors, values=values, status=422)


async def readable_count(request: Request, actor: Actor, count_id: int
                         ) -> stock_counts.CountOut | None:
    """The count, or None if it does not exist or is at a location `actor` may not
    count at (the page answers 404 either way)."""
    if count_id < 1 or count_id > MAX_ID:
        return None
    try:
        async with db_of(request).reader() as s:
            c = await stock_counts.get_count(s, count_id)
    except NotFound:
        return None
    return c if actor.can("stock.count", c.location_id) else None


async def count_view(request: Request, actor: Actor, count_id: int, *, template: str,
                     base: str, extra: dict[str, Any] | None = None,
                     errors: dict[str, str] | None = None,
                     values: dict[str, str] | None = None, notice: str = "",
                     status: int = 200) -> Response:
    c = await readable_count(request, actor, count_id)
    if c is None:
        return error_page(request, 404, _t(request, N_("The stock count was not found.")))
    async with db_of(request).reader() as s:
        flagged = await inventory.flagged_for_count(s, c.location_id) \
            if c.status == "open" else []
        counted = {ln.variant_id for ln in c.lines if ln.scanned}
        todo_ids = [lv.variant_id for lv in flagged if lv.variant_id not in counted][:100]
        todo = (await s.execute(
            select(Variant.id, Variant.sku, Variant.ean, Product.name, Variant.name)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id.in_(todo_ids)).order_by(Variant.sku))).all() if todo_ids else []
    scanned = sorted((ln for ln in c.lines if ln.scanned), key=lambda ln: ln.sku)
    return render(request, template, {
        "title": _t(request, N_("Stock count %(number)s"), number=c.id), "c": c,
        "scanned": scanned, "todo": todo, "statuses": _labels(request, STATUS_LABELS),
        "may_post": c.status == "open" and actor.can("stock.write", c.location_id),
        "errors": errors or {}, "values": values or {}, "notice": notice,
        "nav_key": "counts", "count_base": base, "base": BASE, **(extra or {})},
        status=status)


@router.get("/backoffice/stock/counts/{count_id}")
async def count_page(request: Request, count_id: int,
                     actor: Annotated[Actor, requires("stock.count")],
                     last: Annotated[str, Query(max_length=200)] = "") -> Response:
    notice = _t(request, N_("Counted: %(what)s"), what=last) if last else ""
    return await count_view(request, actor, count_id, template="backoffice/stock/count.html",
                            base=f"{BASE}/counts/{count_id}", notice=notice)


@router.get("/backoffice/stock/counts/{count_id}/review")
async def count_review(request: Request, count_id: int,
                       actor: Annotated[Actor, requires("stock.count")],
                       done: Annotated[str, Query(max_length=20)] = "") -> Response:
    notice = {"posted": N_("Posted: the stock levels now match the count."),
              "cancelled": N_("The count was cancelled; no stock moved.")}.get(done, "")
    return await count_view(request, actor, count_id,
                            template="backoffice/stock/count_review.html",
                            base=f"{BASE}/counts/{count_id}",
                            notice=_t(request, notice) if notice else "")


async def scan_into_count(request: Request, actor: Actor, count_id: int, form: FormData
                          ) -> tuple[str, dict[str, str], dict[str, str]]:
    """A scan (code: +1) or a typed quantity (variant + counted: set). Returns what was
    counted (for the notice), the errors and the values typed."""
    code = _text(form, "code", 64).strip()
    values = {"code": code}
    errors: dict[str, str] = {}
    set_vid = _int(_text(form, "variant_id", 20))
    try:
        async with db_of(request).uow() as uow:
            if set_vid is not None:
                raw = _text(form, "counted", 20)
                values[f"c-{set_vid}"] = raw
                n = _int(raw)
                if n is None or n < 0 or n > 10_000_000:
                    errors[f"c-{set_vid}"] = _t(request, N_("Give a whole number, 0 or more."))
                    return "", errors, values
                await stock_counts.record_scan(uow, actor, count_id, set_vid, n, replace=True)
                await uow.commit()
                return "", errors, values
            if not code:
                errors["code"] = _t(request, N_("Scan or type a code."))
                return "", errors, values
            vid, sku, name = await variant_by_code(uow.session, code)
            n = await stock_counts.record_scan(uow, actor, count_id, vid, 1)
            await uow.commit()
            return f"{name} ({sku}) × {n}", errors, values
    except Forbidden:
        raise
    except DomainError as exc:
        field = f"c-{set_vid}" if set_vid is not None else "code"
        errors[field] = _msg(request, exc, code=code)
        return "", errors, values


@router.post("/backoffice/stock/counts/{count_id}/lines")
async def count_lines(request: Request, count_id: int,
                      actor: Annotated[Actor, requires("stock.count")]) -> Response:
    form = await checked_form(request)
    if await readable_count(request, actor, count_id) is None:
        return error_page(request, 404, _t(request, N_("The stock count was not found.")))
    what, errors, values = await scan_into_count(request, actor, count_id, form)
    base = f"{BASE}/counts/{count_id}"
    if errors:
        return await count_view(request, actor, count_id,
                                template="backoffice/stock/count.html", base=base,
                                errors=errors, values=values, status=422)
    return _redirect(f"{base}?{urlencode({'last': what})}" if what else base)


@router.post("/backoffice/stock/counts/{count_id}/post")
async def count_post(request: Request, count_id: int,
                     actor: Annotated[Actor, requires("stock.write")]) -> Response:
    await checked_form(request)
    return await _finish(request, actor, count_id, post=True)


@router.post("/backoffice/stock/counts/{count_id}/cancel")
async def count_cancel(request: Request, count_id: int,
                       actor: Annotated[Actor, requires("stock.count")]) -> Response:
    await checked_form(request)
    return await _finish(request, actor, count_id, post=False)


async def _finish(request: Request, actor: Actor, count_id: int, *, post: bool) -> Response:
    if await readable_count(request, actor, count_id) is None:
        return error_page(request, 404, _t(request, N_("The stock count was not found.")))
    base = f"{BASE}/counts/{count_id}"
    try:
        async with db_of(request).uow() as uow:
            if post:
                await stock_counts.post(uow, actor, count_id)
            else:
                await stock_counts.cancel(uow, actor, count_id)
            await uow.commit()
    except Forbidden:
        raise
    except DomainError as exc:
        return await count_view(request, actor, count_id,
                                template="backoffice/stock/count_review.html", base=base,
                                errors={"form": _msg(request, exc)}, status=exc.status)
    return _redirect(f"{base}/review?done={'posted' if post else 'cancelled'}")
