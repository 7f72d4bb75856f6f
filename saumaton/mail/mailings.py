"""E-mails to a customer segment: the owner writes one (subject and text in Finnish and
English), sends it, and every consenting member gets it in their language through
`queue_marketing_mail` (consent checked again, the unsubscribe link and headers).

Sending is one `segment_mailings` row, keyed by the compose form's own key: a double
click or a retried POST finds the row and sends nothing more. The members are queued
in batches of BATCH in customer id order; each batch's mails and the row's new
position (`after_id`) commit together, and the position moves only from the value the
batch started at (a conditional UPDATE), so a batch is never queued twice, by a retry,
a second process or a crash in between. The first batch is queued with the request
that starts the mailing (a small segment is done at once); the rest by the background
job (`run_segment_mailings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.customers import segments
from saumaton.db.uow import Database, UnitOfWork
from saumaton.mail.marketing import queue_marketing_mail, unsubscribe_footer
from saumaton.mail.models import OutgoingMail, SegmentMailing
from saumaton.mail.render import mail_language
from saumaton.orders.models import Order

log = logging.getLogger(__name__)

KIND = "segment_mailing"
BATCH = 200
MAX_SUBJECT = 200
MAX_TEXT = 20_000
LANGS = ("fi", "en")


@dataclass(frozen=True)
class MailingIn:
    subject_fi: str
    text_fi: str
    subject_en: str
    text_en: str


@dataclass(frozen=True)
class MailingOut:
    id: int
    segment_id: int
    segment_name: str
    subject_fi: str
    subject_en: str
    status: str  # sending | done
    queued: int  # mails queued
    skipped: int  # members not mailed: consent gone by then, or no e-mail address
    sent: int  # of the queued: sent, suppressed (consent withdrawn before sending),
    suppressed: int  # failed, and still waiting in the queue
    failed: int
    waiting: int
    created_by: str


def reference(mailing_id: int) -> str:
    return f"mailing:{mailing_id}"


def check(data: MailingIn) -> list[ValidationFailed]:
    """Every error at once (`field`: subject_fi, text_fi, subject_en, text_en)."""
    errors = []
    for lang in LANGS:
        subject, text = getattr(data, f"subject_{lang}"), getattr(data, f"text_{lang}")
        if not subject.strip():
            errors.append(ValidationFailed("a subject is required", code="subject_required",
                                           field=f"subject_{lang}"))
        elif len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
            errors.append(ValidationFailed(
                f"a subject is one line of at most {MAX_SUBJECT} characters",
                code="subject_too_long", field=f"subject_{lang}", extra={"max": MAX_SUBJECT}))
        if not text.strip():
            errors.append(ValidationFailed("the text is required", code="text_required",
                                           field=f"text_{lang}"))
        elif len(text) > MAX_TEXT:
            errors.append(ValidationFailed(f"the text is at most {MAX_TEXT} characters",
                                           code="text_too_long", field=f"text_{lang}",
                                           extra={"max": MAX_TEXT}))
    return errors


def _html(text: str) -> str:
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def compose(settings: Settings, data: MailingIn, lang: str, customer_id: int
            ) -> tuple[str, str, str]:
    """(subject, text, html) as the customer gets it, in `lang`, with the
    unsubscribe link (also what the preview shows)."""
    lang = mail_language(lang, settings)
    subject, text = getattr(data, f"subject_{lang}"), getattr(data, f"text_{lang}")
    foot_text, foot_html = unsubscribe_footer(settings, customer_id, lang)
    text = text.replace("\r\n", "\n").rstrip() + "\n" + foot_text
    html = (f'<!DOCTYPE html><html lang="{lang}"><body>{_html(getattr(data, f"text_{lang}"))}'
            f"{foot_html}</body></html>")
    return subject.strip(), text, html


async def find_by_key(session: AsyncSession, key: str) -> int | None:
    found = await session.scalar(select(SegmentMailing.id).where(SegmentMailing.key == key))
    return int(found) if found is not None else None


async def start_mailing(uow: UnitOfWork, actor: Actor, settings: Settings, segment_id: int,
                        key: str, data: MailingIn) -> tuple[int, bool]:
    """(the mailing's id, whether it was started now). A key seen before answers its
    mailing and does nothing. Queues the first batch in the caller's transaction."""
    actor.require(segments.PERMISSION, everywhere=True)
    if not 16 <= len(key) <= 64:
        raise ValidationFailed("the form's key is missing; reload the page",
                               code="invalid_key", field="key")
    existing = await find_by_key(uow.session, key)
    if existing is not None:
        return existing, False
    errors = check(data)
    if errors:
        raise errors[0]
    seg = await segments.get_segment(uow.session, segment_id)
    row = SegmentMailing(key=key, segment_id=seg.id, segment_name=seg.name,
                         subject_fi=data.subject_fi.strip(), text_fi=data.text_fi,
                         subject_en=data.subject_en.strip(), text_en=data.text_en,
                         status="sending", after_id=0, queued=0, skipped=0,
                         created_by=actor.label, created_at=utcnow())
    uow.session.add(row)
    await uow.session.flush()
    await record(uow, actor, "segment.mailing", "segment", seg.id,
                 {"mailing_id": row.id, "subject_fi": row.subject_fi})
    await send_batch(uow, settings, row.id)
    return row.id, True


async def _languages(session: AsyncSession, customer_ids: list[int]) -> dict[int, str]:
    """Each customer's language: their newest order's."""
    newest = (select(Order.customer_id, func.max(Order.id).label("last"))
              .where(Order.customer_id.in_(customer_ids)).group_by(Order.customer_id)
              .subquery())
    rows = await session.execute(select(Order.customer_id, Order.language)
                                 .join(newest, newest.c.last == Order.id))
    return {int(cid): str(lang) for cid, lang in rows.all() if cid is not None}


async def send_batch(uow: UnitOfWork, settings: Settings, mailing_id: int,
                     batch: int | None = None) -> bool:
    """Queue the next batch of the mailing's members, in the caller's transaction.
    Returns whether more may remain. Raises nothing when another process took this
    batch first: the conditional UPDATE finds the position moved and this batch's
    mails go with the caller's rollback (`MovedOn`)."""
    batch = batch or BATCH
    row = await uow.session.get(SegmentMailing, mailing_id)
    if row is None or row.status != "sending":
        return False
    start = row.after_id
    data = MailingIn(row.subject_fi, row.text_fi, row.subject_en, row.text_en)
    taken = []
    try:
        async for member in segments.members(uow, row.segment_id, settings=settings,
                                             after=start, batch=batch):
            taken.append(member)
            if len(taken) >= batch:
                break
    except NotFound:  # the segment was deleted meanwhile: nobody more to mail
        taken = []
    languages = await _languages(uow.session, [m.id for m in taken]) if taken else {}
    queued = skipped = 0
    for member in taken:
        if not member.email:
            skipped += 1
            continue
        subject, text, html = compose(settings, data, languages.get(member.id, ""),
                                      member.id)
        mail_id = await queue_marketing_mail(
            uow, settings, customer_id=member.id, kind=KIND, to=member.email,
            subject=subject, text=text, html=html, reference=reference(mailing_id))
        if mail_id is None:
            skipped += 1
        else:
            queued += 1
    done = len(taken) < batch
    moved = await uow.session.execute(
        update(SegmentMailing)
        .where(SegmentMailing.id == mailing_id, SegmentMailing.after_id == start,
               SegmentMailing.status == "sending")
        .values(after_id=taken[-1].id if taken else start,
                queued=SegmentMailing.queued + queued,
                skipped=SegmentMailing.skipped + skipped,
                status="done" if done else "sending",
                finished_at=utcnow() if done else None)
        .execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 1) != 1:
        raise MovedOn(mailing_id)
    return not done


class MovedOn(Exception):
    """Another process queued this batch first: roll back."""


async def get_mailing(session: AsyncSession, mailing_id: int) -> MailingOut | None:
    row = await session.get(SegmentMailing, mailing_id)
    if row is None:
        return None
    return (await _with_counts(session, [row]))[0]


async def mailings_of(session: AsyncSession, segment_id: int, limit: int = 20
                      ) -> list[MailingOut]:
    rows = list((await session.scalars(
        select(SegmentMailing).where(SegmentMailing.segment_id == segment_id)
        .order_by(SegmentMailing.id.desc()).limit(limit))).all())
    return await _with_counts(session, rows)


async def _with_counts(session: AsyncSession, rows: list[SegmentMailing]
                       ) -> list[MailingOut]:
    refs = {reference(r.id): r.id for r in rows}
    counts: dict[int, dict[str, int]] = {r.id: {} for r in rows}
    if refs:
        for ref, status, n in (await session.execute(
                select(OutgoingMail.reference, OutgoingMail.status, func.count())
                .where(OutgoingMail.reference.in_(list(refs)))
                .group_by(OutgoingMail.reference, OutgoingMail.status))).all():
            counts[refs[str(ref)]][str(status)] = int(n)
    return [MailingOut(r.id, r.segment_id, r.segment_name, r.subject_fi, r.subject_en,
                       r.status, r.queued, r.skipped, counts[r.id].get("sent", 0),
                       counts[r.id].get("suppressed", 0), counts[r.id].get("failed", 0),
                       counts[r.id].get("queued", 0), r.created_by) for r in rows]


async def send_due(db: Database, settings: Settings) -> int:
    """One batch of each mailing still sending, each in its own transaction; how many
    batches were queued."""
    async with db.reader() as s:
        ids = [int(i) for i in (await s.scalars(
            select(SegmentMailing.id).where(SegmentMailing.status == "sending")
            .order_by(SegmentMailing.id))).all()]
    done = 0
    for mailing_id in ids:
        try:
            async with db.uow() as uow:
                await send_batch(uow, settings, mailing_id)
                await uow.commit()
            done += 1
        except MovedOn:
            continue  # another process queued it; its transaction holds the batch
    return done


async def run_segment_mailings(db: Database, settings: Callable[[], Settings],
                               stop: asyncio.Event, every_seconds: float = 5.0) -> None:
    """Until `stop`: the next batch of every mailing still sending; at once again while
    there is more, else every few seconds. `settings()` is read each round."""
    while not stop.is_set():
        busy = 0
        try:
            busy = await send_due(db, settings())
        except Exception:  # a failed round is retried on the next tick
            log.exception("segment mailing failed")
        if busy:
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()
