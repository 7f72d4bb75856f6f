"""Keeping in touch after a purchase: the receipt by e-mail with one NPS question.

After a purchase in any channel (a till sale, a paid web order, a click & collect
order handed over, an API order) by a customer who allows marketing by e-mail and has
an e-mail address, a background job (`run_nps_job`, every few minutes, and the CLI
`saumaton nps send-due`) creates one `NpsSurvey` per order and queues one mail: the
question "How likely are you to recommend us to a friend?" with the links 0–10
(`/nps/{token}?score=N`) and the receipt below it.

The link's token is random; only its SHA-256 is stored. Opening a link shows the score
chosen and a comment box (a mail scanner opening the links records nothing); sending it
records the answer once — the token is spent. The answer lands on the customer's
timeline (`customers.timeline`) and emits `nps.answered`. Erasing the customer (GDPR)
voids the token: the link then answers 410 `survey_closed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from saumaton.customers.models import CustomerConsent, CustomerIdentity
from saumaton.db.uow import Database, UnitOfWork
from saumaton.i18n import N_
from saumaton.locations.models import Channel, Location
from saumaton.mail.messages import Mail
from saumaton.mail.queue import queue_mail
from saumaton.mail.render import gettext, mail_language, render_mail
from saumaton.orders.lifecycle import SOLD, OrderStatus
from saumaton.orders.models import Order
from saumaton.orders.services import get_order
from saumaton.service.models import NpsSurvey

log = logging.getLogger(__name__)

PURCHASE_STATUSES = tuple(SOLD)
PICKUP = "pickup"
# Purchases of this recent past get a survey (a click & collect order counts from its
# handover); older ones never (the job was down, the consent came later: too late to
# ask about that purchase).
SEND_WINDOW = timedelta(days=2)
BATCH = 100
JOB_SECONDS = 180.0
SCORES = range(0, 11)
MAX_COMMENT = 2000
# A voided token's stored value starts with this; a SHA-256 in hex never does.
_VOID = "void:"


class SurveyClosed(DomainError):
    """The survey's link was voided (the customer's data has been erased)."""

    status = 410
    code = "survey_closed"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def void_token_hash(hashed: str) -> str:
    """What replaces a survey's token hash when its link must stop working: no token
    hashes to it, yet the link can still be told apart from a mistyped one (see
    `survey_for_token`). Fits the column (64 characters); voiding twice changes
    nothing."""
    if hashed.startswith(_VOID):
        return hashed
    digest = hashlib.sha256((_VOID + hashed).encode()).hexdigest()
    return (_VOID + digest)[:64]


@dataclass(frozen=True)
class SurveyOut:
    id: int
    customer_id: int
    order_id: int
    number: str
    sent_at: datetime
    score: int | None
    comment: str
    answered_at: datetime | None


def _consented() -> object:
    """SQL: the order's customer's newest marketing_email consent row says yes."""
    newer = aliased(CustomerConsent)
    return exists().where(
        CustomerConsent.customer_id == Order.customer_id,
        CustomerConsent.kind == "marketing_email", CustomerConsent.granted.is_(True),
        ~exists().where(newer.customer_id == CustomerConsent.customer_id,
                        newer.kind == CustomerConsent.kind, newer.id > CustomerConsent.id))


def _purchased(now: datetime) -> object:
    """SQL: the order is a purchase of the last SEND_WINDOW. A click & collect order is
    one when it has been handed over (not at payment: the customer has not got it
    yet), and counts from the handover."""
    since = now - SEND_WINDOW
    return or_(
        and_(Order.delivery_method.is_distinct_from(PICKUP),
             Order.status.in_(PURCHASE_STATUSES), Order.created_at >= since),
        and_(Order.delivery_method == PICKUP, Order.status == OrderStatus.COLLECTED,
             Order.collected_at >= since))


def is_purchase(status: str, delivery_method: str | None) -> bool:
    """The order is a purchase to ask about (a pickup order once handed over)."""
    if delivery_method == PICKUP:
        return status == OrderStatus.COLLECTED
    return status in PURCHASE_STATUSES


def _has_email() -> object:
    return or_(Order.email != "", exists().where(
        CustomerIdentity.customer_id == Order.customer_id, CustomerIdentity.kind == "email"))


async def due_orders(session: AsyncSession, now: datetime | None = None,
                     limit: int = BATCH) -> list[int]:
    """Purchases of the last SEND_WINDOW with no survey yet, by a customer who allows
    marketing e-mail and has an address; oldest first."""
    now = now or utcnow()
    ids = (await session.scalars(
        select(Order.id).where(
            _purchased(now), Order.customer_id.is_not(None),  # type: ignore[arg-type]
            ~exists().where(NpsSurvey.order_id == Order.id),
            _consented(), _has_email())  # type: ignore[arg-type]
        .order_by(Order.id).limit(limit))).all()
    return [int(i) for i in ids]


async def _address(session: AsyncSession, customer_id: int, order_email: str) -> str:
    email = await session.scalar(
        select(CustomerIdentity.value).where(CustomerIdentity.customer_id == customer_id,
                                             CustomerIdentity.kind == "email")
        .order_by(CustomerIdentity.id).limit(1))
    return str(email or order_email or "")


def survey_mail(order_number: str, *, settings: Settings, lang: str, links: list[str],
                page_url: str, context: dict[str, object]) -> Mail:
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Thank you for your purchase – %(shop)s"),
                      shop=settings.business_name)
    text, html = render_mail("nps", lang, settings, {
        "subject": subject, "links": links, "page_url": page_url, "number": order_number,
        **context})
    return Mail(subject=subject, text=text, html=html)


async def send_survey(uow: UnitOfWork, settings: Settings, order_id: int) -> str | None:
    """Create the order's survey and queue its mail, in the caller's transaction; the
    link's token (only its hash is kept), or None when the order has a survey already
    (another process got there first), is not a purchase yet (a click & collect order
    not handed over) or there is no one to send to."""
    s = uow.session
    order = (await s.execute(
        select(Order.customer_id, Order.email, Order.language, Order.status,
               Order.delivery_method, Channel.kind, Location.name, Location.address)
        .join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .where(Order.id == order_id))).first()
    if order is None or order.customer_id is None \
            or not is_purchase(str(order.status), order.delivery_method):
        return None
    to = await _address(s, int(order.customer_id), str(order.email or ""))
    if not to:
        return None
    token = secrets.token_urlsafe(24)
    ins = (postgresql.insert if uow.db.is_postgres else sqlite.insert)(NpsSurvey)
    survey_id = await s.scalar(
        ins.values(customer_id=int(order.customer_id), order_id=order_id,
                   token_hash=token_hash(token), sent_at=utcnow(), comment="")
        .on_conflict_do_nothing(index_elements=["order_id"]).returning(NpsSurvey.id))
    if survey_id is None:
        return None
    out = await get_order(s, order_id)
    lang = mail_language(order.language if order.kind == "webshop"
                         else settings.default_language, settings)
    base = settings.resolved_public_url().rstrip("/") + f"/nps/{token}"
    web = order.kind == "webshop"
    store = gettext(lang, N_("Webshop")) if web or not order.name else str(order.name)
    mail = survey_mail(out.number, settings=settings, lang=lang,
                       links=[f"{base}?score={n}" for n in SCORES], page_url=base,
                       context={"order": out, "store_name": store,
                                "store_address": "" if web else str(order.address or ""),
                                "customer_name": ""})
    await queue_mail(uow, kind="nps", to=to, subject=mail.subject, text=mail.text,
                     html=mail.html, reference=out.number)
    return token


async def send_due(db: Database, settings: Settings, now: datetime | None = None,
                   limit: int = BATCH) -> int:
    """One pass of the job: surveys for every due order (at most `limit`); how many
    were sent. Safe to run in several processes at once (unique order_id)."""
    async with db.reader() as s:
        ids = await due_orders(s, now, limit)
    sent = 0
    for order_id in ids:
        async with db.uow() as uow:
            if await send_survey(uow, settings, order_id) is not None:
                sent += 1
            await uow.commit()
    return sent


async def run_nps_job(db: Database, settings: Callable[[], Settings],
                      stop: asyncio.Event | None = None,
                      every_seconds: float = JOB_SECONDS) -> None:
    """`settings()` is read each round (the current settings, not the ones at startup)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            n = await send_due(db, settings())
            if n:
                log.info("sent %d after-purchase surveys", n)
        except Exception:  # a failed pass is retried on the next tick
            log.exception("after-purchase surveys failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_seconds):
                await stop.wait()


# --- answering ----------------------------------------------------------------------------

def _out(row: NpsSurvey) -> SurveyOut:
    return SurveyOut(row.id, row.customer_id, row.order_id, f"{row.order_id:06d}",
                     row.sent_at, row.score, row.comment, row.answered_at)


def check_score(score: object) -> int:
    """0–10, else 422 `invalid_score` on the field `score`."""
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        value = -1
    if value not in SCORES:
        raise ValidationFailed("the score is a whole number from 0 to 10",
                               code="invalid_score", field="score")
    return value


async def survey_for_token(session: AsyncSession, token: str) -> SurveyOut:
    """The survey a link's token opens (404 `survey_not_found` if none; 410
    `survey_closed` if its link was voided)."""
    if not token or len(token) > 200:
        raise NotFound("no such survey", code="survey_not_found")
    hashed = token_hash(token)
    row = await session.scalar(select(NpsSurvey).where(NpsSurvey.token_hash == hashed))
    if row is None:
        if await session.scalar(select(NpsSurvey.id).where(
                NpsSurvey.token_hash == void_token_hash(hashed))) is not None:
            raise SurveyClosed("this survey is closed", code="survey_closed")
        raise NotFound("no such survey", code="survey_not_found")
    return _out(row)


async def answer_survey(uow: UnitOfWork, token: str, score: object,
                        comment: str = "") -> SurveyOut:
    """Record the answer once: a second answer with the same token is a 409
    `already_answered`; a score outside 0–10 a 422, a voided link a 410
    `survey_closed` (nothing changes)."""
    s = uow.session
    survey = await survey_for_token(s, token)  # a closed link says so before anything
    value = check_score(score)
    text = comment.strip().replace("\r\n", "\n")
    if len(text) > MAX_COMMENT or "\x00" in text:
        raise ValidationFailed(f"a comment is at most {MAX_COMMENT} characters",
                               code="comment_too_long", field="comment",
                               extra={"max": MAX_COMMENT})
    now = utcnow()
    done = await s.execute(
        update(NpsSurvey).where(and_(NpsSurvey.id == survey.id,
                                     NpsSurvey.answered_at.is_(None)))
        .values(score=value, comment=text, answered_at=now)
        .execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict("this survey has been answered already", code="already_answered")
    uow.emit("nps.answered", {"customer_id": survey.customer_id, "survey_id": survey.id,
                              "order_id": survey.order_id, "score": value})
    return SurveyOut(survey.id, survey.customer_id, survey.order_id, survey.number,
                     survey.sent_at, value, text, now)
