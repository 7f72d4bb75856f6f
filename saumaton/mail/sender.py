"""Sending queued mail: over SMTP when configured, else as .eml files in var/mail/.

Every app process runs the sender. A batch is claimed in a short transaction (on
PostgreSQL `FOR UPDATE SKIP LOCKED`, so processes take different rows; SQLite
serialises writers anyway) by pushing its next attempt a lease into the future;
the mail is sent outside any transaction and the outcome recorded afterwards. A
process that dies mid-send leaves the lease to expire and the mail is retried:
delivery is at least once. A mail queued already claimed by this process
(mail/queue.py: `hand_after_commit`) is sent as it was handed over, without a claim.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select, update

from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.waiting import first_of
from saumaton.db.uow import Database
from saumaton.mail.inline import inline_images
from saumaton.mail.marketing import consenting
from saumaton.mail.models import OutgoingMail
from saumaton.mail.queue import LEASE, sender_running, take_handed, take_poll, wake_event
from saumaton.mail.wire import message_bytes, unsubscribe_headers

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
POLL_SECONDS = 5.0
SMTP_TIMEOUT = 30.0
BATCH = 50
WITHDRAWN = "not sent: the customer withdrew marketing e-mail consent"


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling: the 8th attempt is about 1 h after the 7th."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    to: str
    subject: str
    text: str
    html: str
    attempts: int  # including this one
    reply_to: str = ""
    customer_id: int | None = None  # a marketing mail: sent only with consent in force
    list_unsubscribe: str = ""  # the one-click unsubscribe URL ("" = none)


@dataclass(frozen=True)
class Outcome:
    error: str = ""  # "" when delivered
    permanent: bool = False  # no point retrying (the server refused the recipient)
    suppressed: bool = False  # not sent: the customer's marketing consent is off


# PostgreSQL: a claim and an outcome are one statement each, in a transaction of its
# own (no BEGIN/COMMIT round trips); with nothing due the claim is the poll's only read.
# The outcome's arrays are read through sub-selects: planned once per connection, not
# on every execution (saumaton.db.uow: generic plans).
_CLAIM_SQL = """
UPDATE outgoing_mail m SET attempts = m.attempts + 1, next_attempt_at = $2
FROM (SELECT id FROM outgoing_mail WHERE status = 'queued' AND next_attempt_at <= $1
      ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) due
WHERE m.id = due.id
RETURNING m.id, m.kind, m.to_addr, m.subject, m.body_text, m.body_html, m.attempts,
          m.reply_to, m.customer_id, m.list_unsubscribe"""
_RECORD_SQL = """
UPDATE outgoing_mail m SET status = r.status, last_error = r.error,
    sent_at = CASE WHEN r.status = 'sent' THEN $5 ELSE m.sent_at END,
    next_attempt_at = coalesce(r.next_attempt_at, m.next_attempt_at)
FROM unnest((SELECT $1::bigint[]), (SELECT $2::text[]), (SELECT $3::text[]),
            (SELECT $4::timestamptz[])) AS r(id, status, error, next_attempt_at)
WHERE m.id = r.id AND m.status = 'queued'"""


async def _claim(db: Database, limit: int) -> list[Claimed]:
    now = utcnow()
    if db.is_postgres:
        due = await db.fetch_once(_CLAIM_SQL, now, now + LEASE, limit)
        return sorted((Claimed(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
                       for r in due), key=lambda m: m.id)
    # A read first: on SQLite a claim takes the write lock, which sales also need.
    async with db.reader() as s:
        if await s.scalar(select(OutgoingMail.id).where(
                OutgoingMail.status == "queued", OutgoingMail.next_attempt_at <= now)
                .limit(1)) is None:
            return []
    async with db.uow() as uow:
        rows = (await uow.session.scalars(
            select(OutgoingMail)
            .where(OutgoingMail.status == "queued", OutgoingMail.next_attempt_at <= now)
            .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id).limit(limit)
            .with_for_update(skip_locked=True)
        )).all()
        claimed = []
        for r in rows:
            r.attempts += 1
            r.next_attempt_at = now + LEASE
            claimed.append(Claimed(r.id, r.kind, r.to_addr, r.subject, r.body_text,
                                   r.body_html, r.attempts, r.reply_to, r.customer_id,
                                   r.list_unsubscribe))
        await uow.commit()
    return claimed


def _next_state(out: Outcome, mail: Claimed, now: datetime) -> dict[str, object]:
    if out.suppressed:
        return {"status": "suppressed", "last_error": out.error[:500]}
    if not out.error:
        return {"status": "sent", "sent_at": now, "last_error": ""}
    if out.permanent or mail.attempts >= MAX_ATTEMPTS:
        return {"status": "failed", "last_error": out.error[:500]}
    return {"next_attempt_at": now + retry_delay(mail.attempts), "last_error": out.error[:500]}


async def _record(db: Database, outcomes: dict[int, Outcome], claimed: list[Claimed]) -> None:
    now = utcnow()
    if db.is_postgres:
        states = [_next_state(outcomes[m.id], m, now) for m in claimed]
        await db.fetch_once(
            _RECORD_SQL, [m.id for m in claimed],
            [str(v.get("status", "queued")) for v in states],
            [str(v["last_error"]) for v in states],
            [v.get("next_attempt_at") for v in states], now)
        return
    async with db.uow() as uow:
        for mail in claimed:
            values = _next_state(outcomes[mail.id], mail, now)
            await uow.session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == mail.id, OutgoingMail.status == "queued")
                .values(**values).execution_options(synchronize_session=False))
        await uow.commit()


@lru_cache(maxsize=16)  # the shop's own From on every mail
def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "saumaton.invalid"


def build_message(mail: Claimed, settings: Settings, now: datetime) -> EmailMessage:
    """RFC 5322: text, and with HTML multipart/alternative (text first); pictures the
    HTML links to with `cid:` go with it as multipart/related (mail/inline.py)."""
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = mail.to
    if mail.reply_to:
        msg["Reply-To"] = mail.reply_to
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=f"mail{mail.id}",
                                   domain=_domain(settings.mail_from))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    for name, value in unsubscribe_headers(mail.list_unsubscribe):
        msg[name] = value
    msg.set_content(mail.text)
    if mail.html:
        msg.add_alternative(mail.html, subtype="html")
        html_part = msg.get_body(("html",))
        assert isinstance(html_part, EmailMessage)
        for image in inline_images(mail.html):
            # The HTML part becomes multipart/related: the HTML, then its pictures.
            html_part.add_related(image.png, "image", "png", cid=f"<{image.content_id}>",
                                  disposition="inline", filename=image.filename)
    return msg


def wire_message(mail: Claimed, settings: Settings, now: datetime) -> bytes | EmailMessage:
    """The message as bytes, written directly (mail/wire.py: a fraction of the email
    package's CPU), or as `build_message` makes it when only that can (pictures)."""
    data = message_bytes(mail, mail_from=settings.mail_from, now=now,
                         message_id=make_msgid(idstring=f"mail{mail.id}",
                                               domain=_domain(settings.mail_from)))
    return build_message(mail, settings, now) if data is None else data


def eml_name(mail: Claimed, now: datetime) -> str:
    kind = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in mail.kind)
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{mail.id}-{kind}.eml"


def _write_eml(folder: Path, name: str, data: bytes) -> None:
    """Atomically: a reader of the folder never sees half a message. The folder must
    exist (_deliver_files makes it once per batch)."""
    tmp = folder / f".{name}.tmp"
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)


def _deliver_files(settings: Settings, batch: list[tuple[Claimed, bytes | EmailMessage]],
                   now: datetime) -> dict[int, Outcome]:
    out = {}
    folder = settings.mail_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # each message's write then fails and records why
    for mail, msg in batch:
        try:
            _write_eml(folder, eml_name(mail, now),
                       msg if isinstance(msg, bytes) else msg.as_bytes())
            out[mail.id] = Outcome()
        except OSError as exc:
            out[mail.id] = Outcome(f"{type(exc).__name__}: {exc}")
    return out


def _smtp_connection(settings: Settings) -> smtplib.SMTP:
    if settings.smtp_port == 465:  # implicit TLS ("SMTPS")
        return smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT,
                                context=ssl.create_default_context())
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    try:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
    except BaseException:
        smtp.close()
        raise
    return smtp


def _deliver_smtp(settings: Settings, batch: list[tuple[Claimed, bytes | EmailMessage]]
                  ) -> dict[int, Outcome]:
    """One connection for the batch. Runs in a worker thread (smtplib blocks)."""
    out: dict[int, Outcome] = {}
    try:
        with _smtp_connection(settings) as smtp:
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            for mail, msg in batch:
                try:
                    if isinstance(msg, bytes):  # its addresses are ASCII (mail/wire.py)
                        smtp.sendmail(parseaddr(settings.mail_from)[1],
                                      [parseaddr(mail.to)[1]], msg)
                    else:
                        smtp.send_message(msg)
                    out[mail.id] = Outcome()
                except smtplib.SMTPRecipientsRefused as exc:
                    codes = [code for code, _ in exc.recipients.values()]
                    out[mail.id] = Outcome(f"recipient refused: {exc.recipients}",
                                           permanent=all(c >= 500 for c in codes))
                except smtplib.SMTPServerDisconnected:
                    raise
                except (smtplib.SMTPException, OSError) as exc:
                    out[mail.id] = Outcome(f"{type(exc).__name__}: {exc}")
    except (smtplib.SMTPException, OSError) as exc:
        # Connection, TLS or login trouble (or a drop): what is left is retried.
        error = f"{type(exc).__name__}: {exc}"
        for mail, _ in batch:
            out.setdefault(mail.id, Outcome(error))
    return out


async def send_due(db: Database, settings: Settings, limit: int = BATCH) -> int:
    """Send up to `limit` due mails; returns how many were attempted."""
    claimed = await _claim(db, limit)
    if not claimed:
        return 0
    await _send(db, settings, claimed)
    return len(claimed)


async def _withdrawn(db: Database, claimed: list[Claimed]) -> dict[int, Outcome]:
    """The marketing mails among `claimed` whose customer's consent is off now, as
    suppressed outcomes: one query for the batch, none when no mail is marketing."""
    marketing = [m for m in claimed if m.customer_id is not None]
    if not marketing:
        return {}
    async with db.reader() as s:
        allowed = await consenting(s, {int(m.customer_id or 0) for m in marketing})
    return {m.id: Outcome(WITHDRAWN, suppressed=True)
            for m in marketing if m.customer_id not in allowed}


async def _send(db: Database, settings: Settings, claimed: list[Claimed]) -> None:
    """Deliver claimed mails and record the outcomes."""
    now = utcnow()
    suppressed = await _withdrawn(db, claimed)
    batch = [(mail, wire_message(mail, settings, now)) for mail in claimed
             if mail.id not in suppressed]
    if not batch:
        outcomes = {}
    elif settings.smtp_host:
        outcomes = await asyncio.to_thread(_deliver_smtp, settings, batch)
    else:
        outcomes = await asyncio.to_thread(_deliver_files, settings, batch, now)
    outcomes.update(suppressed)
    if suppressed:
        log.info("%d marketing mail(s) not sent: consent withdrawn", len(suppressed))
    for mail in claimed:
        if outcomes[mail.id].error and not outcomes[mail.id].suppressed:
            log.warning("mail %d (%s) attempt %d failed: %s", mail.id, mail.kind,
                        mail.attempts, outcomes[mail.id].error)
    await _record(db, outcomes, claimed)


async def run_mail_sender(db: Database, settings: Callable[[], Settings], stop: asyncio.Event,
                          every_seconds: float = POLL_SECONDS) -> None:
    """Send due mail until `stop` is set: at once when this process queues a mail,
    else every few seconds (mail queued by other processes, retries). `settings()` is
    read each round (the current settings, not the ones at startup)."""
    wake = wake_event(db)
    poll = True  # look at the queue: first, after mail queued here the usual way, each tick
    with sender_running(db):
        while not stop.is_set():
            wake.clear()
            handed = take_handed(db)
            poll = take_poll(db) or poll
            try:
                if handed:  # queued claimed by this process: no claim, no poll needed
                    await _send(db, settings(), handed)
                while poll and await send_due(db, settings()) == BATCH and not stop.is_set():
                    pass  # a full batch: more may be waiting
            except Exception:  # a failed round is retried on the next tick
                log.exception("mail sending failed")
            await first_of(stop.wait(), wake.wait(), within=every_seconds)
            poll = not wake.is_set()  # the wait timed out: the tick's look at the queue
        # Handed over while stopping: sent now rather than when their lease lapses.
        handed = take_handed(db)
        if handed:
            try:
                await _send(db, settings(), handed)
            except Exception:  # the lease lapses and any sender takes them
                log.exception("mail sending failed")
