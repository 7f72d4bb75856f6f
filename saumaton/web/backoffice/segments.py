"""The back office's customer segments (docs/segments.md): the list with member counts,
the editor whose count and preview follow the rules as the owner edits them (htmx posts
the form to /backoffice/segments/count), save, delete, the CSV export and the webhook
export. Owner only (`segments.write` everywhere). Thin: the rules are in
saumaton.customers.segments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.core.types import MAX_INT32
from saumaton.customers import segments
from saumaton.customers.fields import FieldOut, list_fields
from saumaton.customers.segments import SegmentRules
from saumaton.customers.tags import normalise_tag
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

router = page_router("/backoffice")
Owner = Annotated[Actor, requires(segments.PERMISSION, everywhere=True)]
SegmentId = Annotated[int, Path(ge=1, le=MAX_INT32)]
BASE = "/backoffice/segments"

TIER_LABELS: Mapping[str, str] = {"none": N_("Not a member"), "member": N_("Member"),
                                  "silver": N_("Silver"), "gold": N_("Gold")}
KIND_LABELS: Mapping[str, str] = {"pos": N_("Store"), "webshop": N_("Webshop"),
                                  "service_desk": N_("Service desk"), "api": N_("API")}
MESSAGES: Mapping[str, str] = {
    "name_required": N_("Give the segment a name."),
    "name_too_long": N_("A name is at most %(max)s characters."),
    "duplicate_segment": N_("A segment with this name exists already."),
    "segment_not_found": N_("There is no such segment."),
    "segment_in_use": N_("A running or scheduled campaign is priced for this segment's "
                         "members: end it or choose another segment first."),
    "invalid_tag": N_(
        "A tag is 1–%(max)s letters, digits, spaces, hyphens (-) or underscores (_)."),
}


def _t(request: Request, message: str, **values: Any) -> str:
    text = gettext(request, message)
    return text % values if values else text


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _list(form: FormData, name: str) -> list[str]:
    return [str(v)[:200] for v in form.getlist(name) if isinstance(v, str)][:50]


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


@dataclass
class SegmentForm:
    values: dict[str, Any]
    errors: dict[str, str]
    rules: SegmentRules | None = None


def form_values(rules: SegmentRules, name: str = "") -> dict[str, Any]:
    """A saved segment as the editor's fields."""
    lp = rules.last_purchase
    return {"name": name, "tiers": list(rules.tiers), "tags": ", ".join(rules.tags),
            "tags_match": rules.tags_match,
            "prefs": {p.key: list(p.values) for p in rules.preferences},
            "first_channel": rules.first_channel or "", "then_channel": rules.then_channel or "",
            "bought_in": list(rules.bought_in), "last_op": lp.op if lp else "",
            "last_days": str(lp.days) if lp and lp.days else "", "consent": rules.consent}


def read_form(request: Request, form: FormData, fields: list[FieldOut], *,
              need_name: bool = True) -> SegmentForm:
    """Every field checked at once, each error in the page's language next to its
    field; `rules` only when all are right (the name too, unless not `need_name`)."""
    v: dict[str, Any] = {
        "name": _text(form, "name", 400).strip(), "tiers": _list(form, "tier"),
        "tags": _text(form, "tags"), "tags_match": _text(form, "tags_match", 10) or "any",
        "prefs": {}, "first_channel": _text(form, "first_channel", 20),
        "then_channel": _text(form, "then_channel", 20), "bought_in": _list(form, "bought_in"),
        "last_op": _text(form, "last_op", 10), "last_days": _text(form, "last_days", 10).strip(),
        "consent": _text(form, "consent", 20) or "any"}
    e: dict[str, str] = {}
    if not v["name"]:
        if need_name:
            e["name"] = _t(request, MESSAGES["name_required"])
    elif len(v["name"]) > segments.MAX_NAME:
        e["name"] = _t(request, MESSAGES["name_too_long"], max=segments.MAX_NAME)
    choose = _t(request, N_("Choose from the list."))
    if set(v["tiers"]) - set(segments.TIER_CHOICES):
        e["tiers"] = choose
    tags: list[str] = []
    for raw in _split(v["tags"]):
        try:
            tags.append(normalise_tag(raw))
        except ValidationFailed as exc:
            e["tags"] = error_message(request, exc, MESSAGES)
    if len(tags) > segments.MAX_TAGS:
        e["tags"] = _t(request, N_("At most %(max)s tags."), max=segments.MAX_TAGS)
    if v["tags_match"] not in ("any", "all"):
        e["tags_match"] = choose
    preferences = []
    for f in fields:
        chosen = _list(form, f"pref_{f.key}") if f.kind == "choice" \
            else _split(_text(form, f"pref_{f.key}"))
        v["prefs"][f.key] = chosen
        if not chosen:
            continue
        if (f.kind == "choice" and set(chosen) - set(f.options)) \
                or any(len(c) > 200 for c in chosen):
            e[f"pref_{f.key}"] = choose if f.kind == "choice" else _t(
                request, N_("At most %(max)s characters."), max=200)
        preferences.append({"key": f.key, "values": chosen[:segments.MAX_VALUES]})
    for name in ("first_channel", "then_channel"):
        if v[name] and v[name] not in segments.KINDS:
            e[name] = choose
    if set(v["bought_in"]) - set(segments.KINDS):
        e["bought_in"] = choose
    last: dict[str, Any] | None = None
    if v["last_op"] in ("within", "before"):
        days = int(v["last_days"]) if v["last_days"].isdigit() else 0
        if not 1 <= days <= segments.MAX_DAYS:
            e["last_days"] = _t(request, N_("Give the number of days (1–%(max)s)."),
                                max=segments.MAX_DAYS)
        last = {"op": v["last_op"], "days": days}
    elif v["last_op"] == "never":
        last = {"op": "never"}
    elif v["last_op"]:
        e["last_op"] = choose
    if v["consent"] not in ("any", "granted", "not_granted"):
        e["consent"] = choose
    if e:
        return SegmentForm(v, e)
    given = {"tiers": v["tiers"], "tags": tags, "tags_match": v["tags_match"],
             "preferences": preferences[:segments.MAX_PREFERENCES],
             "first_channel": v["first_channel"] or None,
             "then_channel": v["then_channel"] or None, "bought_in": v["bought_in"],
             "last_purchase": last, "consent": v["consent"]}
    try:
        return SegmentForm(v, e, segments.parse_rules(given))
    except ValidationFailed as exc:  # what the checks above do not foresee
        for err in exc.extra.get("errors", []):
            e.setdefault(str(err["field"]).split(".")[0], str(err["message"]))
        return SegmentForm(v, e)


async def _fields(request: Request) -> list[FieldOut]:
    async with db_of(request).reader() as s:
        return await list_fields(s)


def _context(request: Request, **extra: Any) -> dict[str, Any]:
    return {"nav_key": "segments", "base": BASE, "tier_labels": TIER_LABELS,
            "tiers": segments.TIER_CHOICES, "kind_labels": KIND_LABELS,
            "kinds": segments.KINDS, **extra}


async def _counted(request: Request, rules: SegmentRules) -> dict[str, Any]:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        return {"count": await segments.count_members(s, rules, settings=settings),
                "marketing_count": await segments.count_members(
                    s, rules, marketing_only=True, settings=settings),
                "preview": await segments.preview(s, rules, settings=settings)}


async def _editor(request: Request, *, segment: segments.SegmentOut | None,
                  values: dict[str, Any], errors: dict[str, str] | None = None,
                  status: int = 200, rules: SegmentRules | None = None) -> Response:
    fields = await _fields(request)
    counted = await _counted(request, rules) if rules is not None else None
    title = _t(request, N_("Edit segment")) if segment else _t(request, N_("New segment"))
    return render(request, "backoffice/segment.html", _context(
        request, title=title, segment=segment, values=values, errors=errors or {},
        fields=fields, counted=counted,
        action=f"{BASE}/{segment.id}" if segment else BASE), status=status)


@router.get("/segments")
async def segments_page(request: Request, actor: Owner) -> Response:
    """Every segment with how many customers it holds and how many of them e-mails and
    exports reach."""
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        found = await segments.list_segments(s)
        counts = {seg.id: (await segments.count_members(s, seg.rules, settings=settings),
                           await segments.count_members(s, seg.rules, marketing_only=True,
                                                        settings=settings))
                  for seg in found}
    done = request.query_params.get("done", "")
    notice = {"deleted": _t(request, N_("The segment is deleted.")),
              "sent": _t(request, N_("The consenting members were sent to the webhooks."))
              }.get(done, "")
    return render(request, "backoffice/segments.html", _context(
        request, title=_t(request, N_("Customer segments")), found=found, counts=counts,
        notice=notice))


@router.get("/segments/new")
async def new_segment(request: Request, actor: Owner) -> Response:
    return await _editor(request, segment=None, values=form_values(SegmentRules()),
                         rules=SegmentRules())


@router.post("/segments/count")
async def count(request: Request, actor: Owner) -> Response:
    """The live count and preview of the rules as they are in the form (htmx, 200 with
    the errors in place when something is not right yet)."""
    form = await checked_form(request)
    # Naming comes last: it does not change the count.
    read = read_form(request, form, await _fields(request), need_name=False)
    counted = await _counted(request, read.rules) if read.rules is not None else None
    return render(request, "backoffice/_segment_count.html", _context(
        request, counted=counted, errors=read.errors))


@router.post("/segments")
async def create(request: Request, actor: Owner) -> Response:
    form = await checked_form(request)
    read = read_form(request, form, await _fields(request))
    if read.rules is None:
        return await _editor(request, segment=None, values=read.values, errors=read.errors,
                             status=422)
    try:
        async with db_of(request).uow() as uow:
            seg = await segments.create_segment(uow, actor, read.values["name"], read.rules)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403):
            raise
        return await _editor(request, segment=None, values=read.values, rules=read.rules,
                             errors={exc.field or "form": error_message(request, exc,
                                                                        MESSAGES)},
                             status=exc.status)
    return RedirectResponse(f"{BASE}/{seg.id}?saved=1", status_code=303)


async def _segment(request: Request, segment_id: int) -> segments.SegmentOut | None:
    try:
        async with db_of(request).reader() as s:
            return await segments.get_segment(s, segment_id)
    except DomainError:
        return None


def _missing(request: Request) -> Response:
    return error_page(request, 404, _t(request, MESSAGES["segment_not_found"]))


@router.get("/segments/{segment_id}")
async def edit(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    seg = await _segment(request, segment_id)
    if seg is None:
        return _missing(request)
    return await _editor(request, segment=seg, values=form_values(seg.rules, seg.name),
                         rules=seg.rules)


@router.post("/segments/{segment_id}")
async def update(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    form = await checked_form(request)
    seg = await _segment(request, segment_id)
    if seg is None:
        return _missing(request)
    read = read_form(request, form, await _fields(request))
    if read.rules is None:
        return await _editor(request, segment=seg, values=read.values, errors=read.errors,
                             status=422)
    try:
        async with db_of(request).uow() as uow:
            await segments.update_segment(uow, actor, segment_id, read.values["name"],
                                          read.rules)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403):
            raise
        return await _editor(request, segment=seg, values=read.values, rules=read.rules,
                             errors={exc.field or "form": error_message(request, exc,
                                                                        MESSAGES)},
                             status=exc.status)
    return RedirectResponse(f"{BASE}/{segment_id}?saved=1", status_code=303)


@router.post("/segments/{segment_id}/delete")
async def delete(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    await checked_form(request)
    seg = await _segment(request, segment_id)
    if seg is None:
        return _missing(request)
    try:
        async with db_of(request).uow() as uow:
            await segments.delete_segment(uow, actor, segment_id)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403):
            raise
        return await _editor(request, segment=seg, values=form_values(seg.rules, seg.name),
                             rules=seg.rules, status=exc.status,
                             errors={"form": error_message(request, exc, MESSAGES)})
    return RedirectResponse(f"{BASE}?done=deleted", status_code=303)


@router.get("/segments/{segment_id}/export.csv")
async def export_csv(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    """The consenting members (`full=1`: every member, with their consent) as CSV."""
    full = request.query_params.get("full") == "1"
    seg = await _segment(request, segment_id)
    if seg is None:
        return _missing(request)
    async with db_of(request).uow() as uow:
        body = "".join([line async for line in segments.export_csv(
            uow, actor, segment_id, full=full)])
        await uow.commit()
    return Response(body.encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="segment-{segment_id}'
                               f'{"-full" if full else ""}.csv"',
        "Cache-Control": "no-store"})


@router.post("/segments/{segment_id}/webhook")
async def export_webhook(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    await checked_form(request)
    if await _segment(request, segment_id) is None:
        return _missing(request)
    async with db_of(request).uow() as uow:
        await segments.export_webhook(uow, actor, segment_id)
        await uow.commit()
    return RedirectResponse(f"{BASE}?done=sent", status_code=303)
