"""The back office's follow-up sequences (docs/follow-ups.md): the list with each
sequence's mails pending, sent, skipped and cancelled; the editor (a category, steps
with a delay and a template in Finnish and English, the refill interval); switching a
sequence on and off; the preview with a sample customer and product. Owner only
(`followups.write` everywhere). Thin: the rules are in saumaton.followups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from saumaton.catalogue.models import Category
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_INT32
from saumaton.followups import sequences
from saumaton.followups.sequences import (
    FieldError,
    SequenceIn,
    SequenceInvalid,
    SequenceOut,
    StepIn,
)
from saumaton.followups.templates import PLACEHOLDERS, STEP_KINDS
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_page,
    gettext,
    page_lang,
    page_router,
    render,
    settings_of,
)

router = page_router("/backoffice")
Owner = Annotated[Actor, requires(sequences.PERMISSION, everywhere=True)]
SequenceId = Annotated[int, Path(ge=1, le=MAX_INT32)]
BASE = "/backoffice/follow-ups"

KIND_LABELS: Mapping[str, str] = {
    "how_to_use": N_("How to use the product"),
    "shade": N_("Ask about the shade"),
    "text": N_("Free text"),
    "refill": N_("Refill reminder"),
}
MESSAGES: Mapping[str, str] = {
    "sequence_not_found": N_("There is no such follow-up sequence."),
}


def _t(request: Request, message: str, **values: Any) -> str:
    text = gettext(request, message)
    return text % values if values else text


def _text(form: FormData, name: str, limit: int = 6000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 9 else None


def _blank_step() -> dict[str, Any]:
    return {"id": "", "kind": "how_to_use", "delay_days": "", "subject_fi": "",
            "body_fi": "", "subject_en": "", "body_en": ""}


def values_of(seq: SequenceOut | None) -> dict[str, Any]:
    """A saved sequence (or a new one) as the editor's fields; one empty step slot
    after the steps adds a step."""
    if seq is None:
        return {"name": "", "category_id": "", "enabled": True, "refill_days": "",
                "refill_lead_days": str(sequences.DEFAULT_REFILL_LEAD_DAYS),
                "steps": [_blank_step()]}
    steps = [{"id": str(st.id), "kind": st.kind, "delay_days": str(st.delay_days),
              "subject_fi": st.subject_fi, "body_fi": st.body_fi,
              "subject_en": st.subject_en, "body_en": st.body_en} for st in seq.steps]
    return {"name": seq.name, "category_id": str(seq.category_id), "enabled": seq.enabled,
            "refill_days": str(seq.refill_days or ""),
            "refill_lead_days": str(seq.refill_lead_days), "steps": [*steps, _blank_step()]}


def read_form(form: FormData) -> tuple[dict[str, Any], SequenceIn, dict[str, str]]:
    """The form as the editor's values, the service's input and the errors only the
    form can have (a number that is not one)."""
    v: dict[str, Any] = {"name": _text(form, "name", 400),
                         "category_id": _text(form, "category_id", 12),
                         "enabled": form.get("enabled") == "1",
                         "refill_days": _text(form, "refill_days", 12).strip(),
                         "refill_lead_days": _text(form, "refill_lead_days", 12).strip(),
                         "steps": []}
    errors: dict[str, str] = {}
    count = min(_int(_text(form, "step_count", 4)) or 0, sequences.MAX_STEPS + 1)
    steps: list[StepIn] = []
    for i in range(count):
        p = f"step{i}_"
        st = {k: _text(form, p + k) for k in ("id", "kind", "delay_days", "subject_fi",
                                             "body_fi", "subject_en", "body_en")}
        if form.get(p + "remove") == "1":
            continue
        texts = [st[k].strip() for k in ("subject_fi", "body_fi", "subject_en", "body_en")]
        if not st["id"] and not any(texts) and not st["delay_days"].strip():
            continue  # the empty slot
        n = len(steps)
        delay = _int(st["delay_days"]) if st["delay_days"].strip() else 0
        if delay is None:
            errors[f"step{n}_delay_days"] = "number"
        steps.append(StepIn(kind=st["kind"], delay_days=delay or 0,
                            subject_fi=st["subject_fi"], body_fi=st["body_fi"],
                            subject_en=st["subject_en"], body_en=st["body_en"],
                            id=_int(st["id"])))
        v["steps"].append(st)
    v["steps"].append(_blank_step())
    refill = _int(v["refill_days"]) if v["refill_days"] else None
    if v["refill_days"] and refill is None:
        errors["refill_days"] = "number"
    # Empty: the default lead time; not a whole number: an error next to the field.
    lead = _int(v["refill_lead_days"]) if v["refill_lead_days"] \
        else sequences.DEFAULT_REFILL_LEAD_DAYS
    if lead is None:
        errors["refill_lead_days"] = "number"
    cmd = SequenceIn(name=v["name"], category_id=_int(v["category_id"]),
                     enabled=v["enabled"], refill_days=refill, steps=steps,
                     refill_lead_days=sequences.DEFAULT_REFILL_LEAD_DAYS if lead is None
                     else lead)
    return v, cmd, errors


def _messages(request: Request, errors: list[FieldError]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in errors:
        text = gettext(request, e.message)
        out.setdefault(e.field, text % e.values if e.values else text)
    return out


async def _categories(request: Request) -> list[tuple[int, str]]:
    en = page_lang(request) == "en"
    async with db_of(request).reader() as s:
        rows = (await s.execute(select(Category.id, Category.name, Category.name_en,
                                       Category.parent_id)
                                .order_by(Category.position, Category.id))).all()
    names = {int(i): str(ne or n) if en else str(n) for i, n, ne, _ in rows}
    parents = {int(i): p for i, _, _, p in rows}
    out = []
    for i in names:
        p = parents[i]
        out.append((i, f"{names[int(p)]} › {names[i]}" if p is not None and int(p) in names
                    else names[i]))
    return sorted(out, key=lambda c: c[1].lower())


def _context(request: Request, **extra: Any) -> dict[str, Any]:
    return {"nav_key": "follow-ups", "base": BASE, "kind_labels": KIND_LABELS,
            "kinds": STEP_KINDS, "placeholders": PLACEHOLDERS, **extra}


async def _editor(request: Request, *, seq: SequenceOut | None, values: dict[str, Any],
                  errors: dict[str, str] | None = None, status: int = 200) -> Response:
    title = _t(request, N_("Edit follow-up sequence")) if seq \
        else _t(request, N_("New follow-up sequence"))
    return render(request, "backoffice/followup.html", _context(
        request, title=title, seq=seq, values=values, errors=errors or {},
        categories=await _categories(request),
        action=f"{BASE}/{seq.id}" if seq else BASE), status=status)


@router.get("/follow-ups")
async def followups_page(request: Request, actor: Owner) -> Response:
    """Every sequence with its mails pending, sent, skipped and cancelled."""
    async with db_of(request).reader() as s:
        found = await sequences.list_sequences(s)
        counts = await sequences.status_counts(s)
    done = request.query_params.get("done", "")
    notice = {"enabled": _t(request, N_("The sequence is on.")),
              "disabled": _t(request, N_("The sequence is off: nothing more is sent."))
              }.get(done, "")
    return render(request, "backoffice/followups.html", _context(
        request, title=_t(request, N_("Follow-up e-mails")), found=found, counts=counts,
        empty=sequences.StatusCounts(), notice=notice))


@router.get("/follow-ups/new")
async def new_sequence(request: Request, actor: Owner) -> Response:
    return await _editor(request, seq=None, values=values_of(None))


def _form_errors(request: Request, own: dict[str, str]) -> dict[str, str]:
    number = _t(request, N_("Give a whole number of days."))
    return {k: number for k in own}


@router.post("/follow-ups")
async def create(request: Request, actor: Owner) -> Response:
    form = await checked_form(request)
    values, cmd, own = read_form(form)
    try:
        async with db_of(request).uow() as uow:
            problems = await sequences.check(uow.session, cmd)
            if own or problems:
                raise SequenceInvalid(problems or [FieldError("form", "invalid", "")])
            seq = await sequences.create_sequence(uow, actor, cmd)
            await uow.commit()
    except SequenceInvalid as exc:
        errors = {**_messages(request, [e for e in exc.errors if e.message]),
                  **_form_errors(request, own)}
        return await _editor(request, seq=None, values=values, errors=errors, status=422)
    return RedirectResponse(f"{BASE}/{seq.id}?saved=1", status_code=303)


async def _sequence(request: Request, sequence_id: int) -> SequenceOut | None:
    try:
        async with db_of(request).reader() as s:
            return await sequences.get_sequence(s, sequence_id)
    except DomainError:
        return None


def _missing(request: Request) -> Response:
    return error_page(request, 404, _t(request, MESSAGES["sequence_not_found"]))


@router.get("/follow-ups/{sequence_id}")
async def edit(request: Request, sequence_id: SequenceId, actor: Owner) -> Response:
    seq = await _sequence(request, sequence_id)
    if seq is None:
        return _missing(request)
    return await _editor(request, seq=seq, values=values_of(seq))


@router.post("/follow-ups/{sequence_id}")
async def update(request: Request, sequence_id: SequenceId, actor: Owner) -> Response:
    form = await checked_form(request)
    seq = await _sequence(request, sequence_id)
    if seq is None:
        return _missing(request)
    values, cmd, own = read_form(form)
    try:
        async with db_of(request).uow() as uow:
            problems = await sequences.check(uow.session, cmd)
            if own or problems:
                raise SequenceInvalid(problems or [FieldError("form", "invalid", "")])
            await sequences.update_sequence(uow, actor, sequence_id, cmd)
            await uow.commit()
    except SequenceInvalid as exc:
        errors = {**_messages(request, [e for e in exc.errors if e.message]),
                  **_form_errors(request, own)}
        return await _editor(request, seq=seq, values=values, errors=errors, status=422)
    return RedirectResponse(f"{BASE}/{sequence_id}?saved=1", status_code=303)


@router.post("/follow-ups/{sequence_id}/enabled")
async def enable(request: Request, sequence_id: SequenceId, actor: Owner) -> Response:
    form = await checked_form(request)
    if await _sequence(request, sequence_id) is None:
        return _missing(request)
    on = form.get("enabled") == "1"
    async with db_of(request).uow() as uow:
        await sequences.set_enabled(uow, actor, sequence_id, on)
        await uow.commit()
    return RedirectResponse(f"{BASE}?done={'enabled' if on else 'disabled'}",
                            status_code=303)


@router.get("/follow-ups/{sequence_id}/preview")
async def preview(request: Request, sequence_id: SequenceId, actor: Owner) -> Response:
    """Each step as the customer would read it, in Finnish and English, with a sample
    customer (Anna) and the category's first product."""
    seq = await _sequence(request, sequence_id)
    if seq is None:
        return _missing(request)
    async with db_of(request).reader() as s:
        shown = await sequences.preview(s, settings_of(request), sequence_id)
    return render(request, "backoffice/followup_preview.html", _context(
        request, title=_t(request, N_("Preview: %(name)s"), name=seq.name), seq=seq,
        previews=shown))

