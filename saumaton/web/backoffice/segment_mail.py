"""The back office's e-mail to a customer segment (docs/segments.md): compose it in
Finnish and English, preview it with the live number of recipients, send it, and
follow the mailing's counts. Owner only (`segments.write` everywhere). Thin: the rules
are in saumaton.mail.mailings.

The compose form carries a key of its own (a hidden field made when the page is
drawn): sending twice with one key — a double click, a retried POST, the back button —
finds the first mailing and sends nothing more.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.core.types import MAX_ID, MAX_INT32
from saumaton.customers import segments
from saumaton.mail import mailings
from saumaton.mail.mailings import MailingIn
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
MailingId = Annotated[int, Path(ge=1, le=MAX_ID)]
BASE = "/backoffice/segments"
FIELDS = ("subject_fi", "text_fi", "subject_en", "text_en")
MESSAGES: Mapping[str, str] = {
    "subject_required": N_("Write a subject."),
    "subject_too_long": N_("A subject is one line of at most %(max)s characters."),
    "text_required": N_("Write the message."),
    "text_too_long": N_("The message is at most %(max)s characters."),
    "invalid_key": N_("The form expired. Reload the page and try again."),
    "segment_not_found": N_("There is no such segment."),
}


def _read(form: FormData) -> tuple[MailingIn, str, str]:
    def text(name: str, limit: int) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    data = MailingIn(text("subject_fi", 1000), text("text_fi", 100_000),
                     text("subject_en", 1000), text("text_en", 100_000))
    return data, text("key", 100), text("action", 20)


async def _segment(request: Request, segment_id: int) -> segments.SegmentOut | None:
    try:
        async with db_of(request).reader() as s:
            return await segments.get_segment(s, segment_id)
    except DomainError:
        return None


def _missing(request: Request) -> Response:
    return error_page(request, 404, gettext(request, MESSAGES["segment_not_found"]))


async def _compose(request: Request, seg: segments.SegmentOut, *, data: MailingIn,
                   key: str, errors: Mapping[str, str] | None = None, preview: bool = False,
                   status: int = 200) -> Response:
    settings = settings_of(request)
    async with db_of(request).reader() as s:
        recipients = await segments.count_members(s, seg.rules, marketing_only=True,
                                                  settings=settings)
        sent_before = await mailings.mailings_of(s, seg.id)
    previews = {}
    if preview:
        # As a member gets it; the unsubscribe link shown is a sample's (customer 0).
        previews = {lang: mailings.compose(settings, data, lang, 0) for lang in mailings.LANGS}
    return render(request, "backoffice/segment_mail.html", {
        "nav_key": "segments", "base": BASE, "segment": seg,
        "title": gettext(request, N_("E-mail to segment %(name)s"), name=seg.name),
        "values": {f: getattr(data, f) for f in FIELDS}, "key": key,
        "errors": dict(errors or {}), "recipients": recipients, "previews": previews,
        "mailings": sent_before}, status=status)


@router.get("/segments/{segment_id}/mail")
async def compose_page(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    seg = await _segment(request, segment_id)
    if seg is None:
        return _missing(request)
    return await _compose(request, seg, data=MailingIn("", "", "", ""),
                          key=secrets.token_hex(16))


def _errors(request: Request, found: list[DomainError]) -> dict[str, str]:
    return {e.field or "form": error_message(request, e, MESSAGES) for e in found}


@router.post("/segments/{segment_id}/mail")
async def send(request: Request, segment_id: SegmentId, actor: Owner) -> Response:
    """`action=preview`: the page again with the mail as members see it; `action=send`:
    the mailing starts (once per form key) and the page of its counts follows."""
    form = await checked_form(request)
    seg = await _segment(request, segment_id)
    if seg is None:
        return _missing(request)
    data, key, action = _read(form)
    errors = _errors(request, list(mailings.check(data)))
    if errors:
        return await _compose(request, seg, data=data, key=key, errors=errors, status=422)
    if action != "send":
        return await _compose(request, seg, data=data, key=key, preview=True)
    try:
        mailing_id = await _start(request, actor, segment_id, key, data)
    except DomainError as exc:
        if exc.status in (401, 403):
            raise
        return await _compose(request, seg, data=data, key=key, status=exc.status,
                              errors=_errors(request, [exc]))
    return RedirectResponse(f"{BASE}/{segment_id}/mailings/{mailing_id}", status_code=303)


async def _start(request: Request, actor: Actor, segment_id: int, key: str,
                 data: MailingIn) -> int:
    db = db_of(request)
    try:
        async with db.uow() as uow:
            mailing_id, _ = await mailings.start_mailing(uow, actor, settings_of(request),
                                                         segment_id, key, data)
            await uow.commit()
        return mailing_id
    except IntegrityError:
        # The same form posted twice at once: the other request started the mailing.
        async with db.reader() as s:
            found = await mailings.find_by_key(s, key)
        if found is None:
            raise
        return found


@router.get("/segments/{segment_id}/mailings/{mailing_id}")
async def mailing_page(request: Request, segment_id: SegmentId, mailing_id: MailingId,
                       actor: Owner) -> Response:
    async with db_of(request).reader() as s:
        mailing = await mailings.get_mailing(s, mailing_id)
    if mailing is None or mailing.segment_id != segment_id:
        return error_page(request, 404, gettext(request, N_("There is no such e-mail.")))
    context: dict[str, Any] = {
        "nav_key": "segments", "base": BASE, "mailing": mailing,
        "title": gettext(request, N_("E-mail to segment %(name)s"),
                         name=mailing.segment_name)}
    return render(request, "backoffice/segment_mailing.html", context)
