"""Follow-up sequences: a product category and its ordered steps, each with a delay
after the purchase and a template in Finnish and English. The owner edits them in the
back office (`followups.write` everywhere); every save checks all fields at once, is
audited and says `followup.sequence_changed`. Services take the caller's unit of work
and never commit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from saumaton.audit.services import record
from saumaton.catalogue.models import Category, Product
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.followups.models import Followup, FollowupSequence, FollowupStep
from saumaton.followups.schedule import REFILL_LEAD_DAYS, category_ancestors
from saumaton.followups.state import (
    CANCELLED,
    PENDING,
    QUEUED,
    SKIPPED,
    mail_join,
    shown_status,
)
from saumaton.followups.templates import (
    MAX_BODY,
    MAX_SUBJECT,
    PLACEHOLDERS,
    STEP_KINDS,
    fill,
    problem,
)
from saumaton.i18n import N_
from saumaton.mail.models import OutgoingMail

PERMISSION = "followups.write"
MAX_NAME = 100
MAX_STEPS = 10
MAX_DELAY_DAYS = 365
MIN_REFILL_DAYS, MAX_REFILL_DAYS = 7, 730
DEFAULT_REFILL_LEAD_DAYS, MAX_REFILL_LEAD_DAYS = REFILL_LEAD_DAYS, 60
LANGS = ("fi", "en")


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str  # a msgid: the page translates it
    values: dict[str, str] = dataclasses.field(default_factory=dict)


class SequenceInvalid(ValidationFailed):
    """Every problem of the form at once; nothing was changed."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message % e.values if e.values else e.message
                                   for e in errors),
                         code=errors[0].code, field=errors[0].field,
                         extra={"errors": [e.__dict__ for e in errors]})
        self.errors = errors


@dataclass(frozen=True)
class StepIn:
    kind: str
    delay_days: int
    subject_fi: str
    body_fi: str
    subject_en: str
    body_en: str
    id: int | None = None  # a saved step's id (kept: its pending mails stay its own)


@dataclass(frozen=True)
class SequenceIn:
    name: str
    category_id: int | None
    enabled: bool
    refill_days: int | None
    steps: list[StepIn]
    # Days before the expected run-out the refill reminder comes (0–60).
    refill_lead_days: int = DEFAULT_REFILL_LEAD_DAYS


@dataclass(frozen=True)
class StepOut:
    id: int
    position: int
    kind: str
    delay_days: int
    subject_fi: str
    body_fi: str
    subject_en: str
    body_en: str

    def subject(self, lang: str) -> str:
        return self.subject_en if lang == "en" else self.subject_fi

    def body(self, lang: str) -> str:
        return self.body_en if lang == "en" else self.body_fi


@dataclass(frozen=True)
class SequenceOut:
    id: int
    name: str
    category_id: int
    category_name: str
    enabled: bool
    refill_days: int | None
    steps: list[StepOut]
    updated_at: datetime
    refill_lead_days: int = DEFAULT_REFILL_LEAD_DAYS
    category_slug: str = ""


@dataclass(frozen=True)
class StatusCounts:
    pending: int = 0
    queued: int = 0  # in the mail outbox, not sent yet
    sent: int = 0  # the mail sender sent it
    skipped: int = 0  # no consent or no address when due, or consent withdrawn before
    #                   the mail sender's turn (suppressed)
    failed: int = 0  # the mail could not be delivered
    cancelled: int = 0  # returned, bought again, sequence off, step removed


_TEMPLATE_MESSAGES = {
    "required": N_("Write the text."),
    "too_long": N_("At most %(max)s characters."),
    "unknown_placeholder": N_("Unknown placeholder: %(names)s. Use %(known)s."),
    "stray_brace": N_("A brace { or } on its own: write {{ or }} for a brace itself."),
}


def _template_error(name: str, text: str, limit: int) -> FieldError | None:
    p = problem(text, limit=limit)
    if p is None:
        return None
    values = {"max": str(limit)} if p.code == "too_long" else {}
    if p.code == "unknown_placeholder":
        values = {"names": ", ".join("{" + n + "}" for n in p.names),
                  "known": ", ".join("{" + n + "}" for n in PLACEHOLDERS)}
    return FieldError(name, f"template_{p.code}", _TEMPLATE_MESSAGES[p.code], values)


async def check(session: AsyncSession, cmd: SequenceIn) -> list[FieldError]:
    """Every problem of the input, each on its field (`name`, `category_id`,
    `refill_days`, `refill_lead_days`, `steps`, `step<i>_<field>`)."""
    errors: list[FieldError] = []
    name = " ".join(cmd.name.split())
    if not name:
        errors.append(FieldError("name", "name_required", N_("Give the sequence a name.")))
    elif len(name) > MAX_NAME:
        errors.append(FieldError("name", "name_too_long",
                                 N_("A name is at most %(max)s characters."),
                                 {"max": str(MAX_NAME)}))
    if cmd.category_id is None or await session.get(Category, cmd.category_id) is None:
        errors.append(FieldError("category_id", "invalid_category",
                                 N_("Choose a category.")))
    if cmd.refill_days is not None and not MIN_REFILL_DAYS <= cmd.refill_days <= MAX_REFILL_DAYS:
        errors.append(FieldError("refill_days", "invalid_refill_days",
                                 N_("Give the days between purchases (%(min)s–%(max)s), or "
                                    "leave it empty."),
                                 {"min": str(MIN_REFILL_DAYS), "max": str(MAX_REFILL_DAYS)}))
    if not 0 <= cmd.refill_lead_days <= MAX_REFILL_LEAD_DAYS:
        errors.append(FieldError("refill_lead_days", "invalid_refill_lead_days",
                                 N_("Give the days before the product runs out (0–%(max)s)."),
                                 {"max": str(MAX_REFILL_LEAD_DAYS)}))
    if not cmd.steps:
        errors.append(FieldError("steps", "steps_required", N_("Add at least one step.")))
    elif len(cmd.steps) > MAX_STEPS:
        errors.append(FieldError("steps", "too_many_steps",
                                 N_("At most %(max)s steps."), {"max": str(MAX_STEPS)}))
    if sum(1 for s in cmd.steps if s.kind == "refill") > 1:
        errors.append(FieldError("steps", "one_refill_step",
                                 N_("A sequence has at most one refill reminder.")))
    for i, step in enumerate(cmd.steps[:MAX_STEPS]):
        if step.kind not in STEP_KINDS:
            errors.append(FieldError(f"step{i}_kind", "invalid_step_kind",
                                     N_("Choose from the list.")))
        if not 0 <= step.delay_days <= MAX_DELAY_DAYS:
            errors.append(FieldError(f"step{i}_delay_days", "invalid_delay",
                                     N_("Give the days after the purchase (0–%(max)s)."),
                                     {"max": str(MAX_DELAY_DAYS)}))
        for lang in LANGS:
            for part, limit in (("subject", MAX_SUBJECT), ("body", MAX_BODY)):
                text = str(getattr(step, f"{part}_{lang}"))
                if part == "subject" and "\n" in text.strip():
                    errors.append(FieldError(f"step{i}_{part}_{lang}", "subject_one_line",
                                             N_("A subject is one line.")))
                    continue
                err = _template_error(f"step{i}_{part}_{lang}", text, limit)
                if err is not None:
                    errors.append(err)
    return errors


def _step_out(s: FollowupStep) -> StepOut:
    return StepOut(s.id, s.position, s.kind, s.delay_days, s.subject_fi, s.body_fi,
                   s.subject_en, s.body_en)


async def get_sequence(session: AsyncSession, sequence_id: int) -> SequenceOut:
    row = (await session.execute(
        select(FollowupSequence, Category.name, Category.slug)
        .join(Category, Category.id == FollowupSequence.category_id)
        .where(FollowupSequence.id == sequence_id))).first()
    if row is None:
        raise NotFound(f"no follow-up sequence {sequence_id}", code="sequence_not_found")
    seq, cat, slug = row
    steps = (await session.scalars(select(FollowupStep).where(
        FollowupStep.sequence_id == sequence_id).order_by(FollowupStep.position))).all()
    return SequenceOut(seq.id, seq.name, seq.category_id, str(cat), seq.enabled,
                       seq.refill_days, [_step_out(s) for s in steps], seq.updated_at,
                       seq.refill_lead_days, str(slug))


async def list_sequences(session: AsyncSession) -> list[SequenceOut]:
    ids = (await session.scalars(select(FollowupSequence.id)
                                 .order_by(FollowupSequence.name, FollowupSequence.id))).all()
    return [await get_sequence(session, int(i)) for i in ids]


async def status_counts(session: AsyncSession) -> dict[int, StatusCounts]:
    """Per sequence: its mails pending, queued, sent, skipped, failed and cancelled, a
    queued one counted by its mail's outcome once the sender has recorded it (one
    grouped read)."""
    f = Followup
    status = shown_status()

    def n(*states: str) -> ColumnElement[int]:
        return func.sum(case((status.in_(states), 1), else_=0))

    rows = (await session.execute(
        select(f.sequence_id, n(PENDING), n(QUEUED), n("sent"),
               n(*SKIPPED, "suppressed"), n("failed"), n(CANCELLED))
        .outerjoin(OutgoingMail, mail_join())
        .where(f.sequence_id.is_not(None)).group_by(f.sequence_id))).all()
    return {int(row[0] or 0): StatusCounts(*(int(v or 0) for v in row[1:])) for row in rows}


def _clean(cmd: SequenceIn) -> tuple[str, list[StepIn]]:
    return " ".join(cmd.name.split()), cmd.steps


async def _write_steps(uow: UnitOfWork, sequence_id: int, steps: list[StepIn]) -> None:
    """Keep the steps whose ids come back (edited in place: their pending mails stay
    theirs), delete the others (their pending mails are cancelled when due), add new."""
    s = uow.session
    keep = {st.id for st in steps if st.id is not None}
    current = {int(i) for i in (await s.scalars(select(FollowupStep.id).where(
        FollowupStep.sequence_id == sequence_id))).all()}
    gone = current - keep
    if gone:
        await s.execute(delete(FollowupStep).where(FollowupStep.id.in_(gone))
                        .execution_options(synchronize_session=False))
    for position, st in enumerate(steps):
        values = {"position": position, "kind": st.kind, "delay_days": st.delay_days,
                  "subject_fi": st.subject_fi.strip(), "body_fi": st.body_fi.strip(),
                  "subject_en": st.subject_en.strip(), "body_en": st.body_en.strip()}
        row = await s.get(FollowupStep, st.id) if st.id in current else None
        if row is not None and row.sequence_id == sequence_id:
            for k, v in values.items():
                setattr(row, k, v)
        else:
            s.add(FollowupStep(sequence_id=sequence_id, **values))
    await s.flush()


async def create_sequence(uow: UnitOfWork, actor: Actor, cmd: SequenceIn) -> SequenceOut:
    actor.require(PERMISSION, everywhere=True)
    errors = await check(uow.session, cmd)
    if errors:
        raise SequenceInvalid(errors)
    name, steps = _clean(cmd)
    now = utcnow()
    assert cmd.category_id is not None
    seq = FollowupSequence(name=name, category_id=cmd.category_id, enabled=cmd.enabled,
                           refill_days=cmd.refill_days,
                           refill_lead_days=cmd.refill_lead_days, created_by=actor.label,
                           created_at=now, updated_by=actor.label, updated_at=now)
    uow.session.add(seq)
    await uow.session.flush()
    await _write_steps(uow, seq.id, [StepIn(**{**st.__dict__, "id": None}) for st in steps])
    out = await get_sequence(uow.session, seq.id)
    await record(uow, actor, "followup_sequence.create", "followup_sequence", seq.id,
                 _audit(out))
    uow.emit("followup.sequence_changed", {"sequence_id": seq.id})
    return out


async def update_sequence(uow: UnitOfWork, actor: Actor, sequence_id: int,
                          cmd: SequenceIn) -> SequenceOut:
    actor.require(PERMISSION, everywhere=True)
    before = await get_sequence(uow.session, sequence_id)
    errors = await check(uow.session, cmd)
    if errors:
        raise SequenceInvalid(errors)
    name, steps = _clean(cmd)
    seq = await uow.session.get(FollowupSequence, sequence_id)
    assert seq is not None and cmd.category_id is not None
    seq.name, seq.category_id, seq.enabled = name, cmd.category_id, cmd.enabled
    seq.refill_days, seq.refill_lead_days = cmd.refill_days, cmd.refill_lead_days
    seq.updated_by, seq.updated_at = actor.label, utcnow()
    await _write_steps(uow, sequence_id, steps)
    out = await get_sequence(uow.session, sequence_id)
    await record(uow, actor, "followup_sequence.update", "followup_sequence", sequence_id,
                 {"before": _audit(before), "after": _audit(out)})
    uow.emit("followup.sequence_changed", {"sequence_id": sequence_id})
    return out


async def set_enabled(uow: UnitOfWork, actor: Actor, sequence_id: int,
                      enabled: bool) -> SequenceOut:
    """Switch a sequence on or off. Off: nothing new is scheduled and its pending mails
    are cancelled when they fall due (switched on again before that, they go)."""
    actor.require(PERMISSION, everywhere=True)
    await get_sequence(uow.session, sequence_id)
    seq = await uow.session.get(FollowupSequence, sequence_id)
    assert seq is not None
    if seq.enabled != enabled:
        seq.enabled, seq.updated_by, seq.updated_at = enabled, actor.label, utcnow()
        await uow.session.flush()
        await record(uow, actor, "followup_sequence.enable" if enabled
                     else "followup_sequence.disable", "followup_sequence", sequence_id, {})
        uow.emit("followup.sequence_changed", {"sequence_id": sequence_id})
    return await get_sequence(uow.session, sequence_id)


# --- by category (the API) ------------------------------------------------------------


async def _category_id(session: AsyncSession, slug: str) -> int:
    cid = await session.scalar(select(Category.id).where(Category.slug == slug))
    if cid is None:
        raise NotFound(f"no product category {slug!r}", code="category_not_found",
                       field="category")
    return int(cid)


async def _ids_of_category(session: AsyncSession, category_id: int) -> list[int]:
    return [int(i) for i in (await session.scalars(
        select(FollowupSequence.id).where(FollowupSequence.category_id == category_id)
        .order_by(FollowupSequence.id))).all()]


async def category_name(session: AsyncSession, slug: str) -> str:
    """A sequence's default name: its category's (404 `category_not_found`)."""
    name = await session.scalar(select(Category.name).where(
        Category.id == await _category_id(session, slug)))
    return " ".join(str(name or slug).split())[:MAX_NAME]


def _one(slug: str, ids: list[int]) -> int | None:
    """The category's sequence; several (the back office allows it): which one is meant
    cannot be told from the category, so the caller is told their ids."""
    if len(ids) > 1:
        raise Conflict(f"category {slug!r} has {len(ids)} follow-up sequences; edit them "
                       "in the back office", code="several_sequences", field="category",
                       extra={"sequence_ids": ids})
    return ids[0] if ids else None


async def sequence_of_category(session: AsyncSession, slug: str) -> SequenceOut:
    """The follow-up sequence of a product category (by its slug): 404
    `category_not_found` / `sequence_not_found`, 409 `several_sequences`."""
    sid = _one(slug, await _ids_of_category(session, await _category_id(session, slug)))
    if sid is None:
        raise NotFound(f"category {slug!r} has no follow-up sequence",
                       code="sequence_not_found", field="category")
    return await get_sequence(session, sid)


async def put_for_category(uow: UnitOfWork, actor: Actor, slug: str,
                           cmd: SequenceIn) -> tuple[SequenceOut, bool]:
    """Create or replace the category's sequence with `cmd` (its category_id is the
    slug's); (sequence, created). A step id that is not one of this sequence's steps is
    refused (422 `unknown_step`): only its own steps keep their pending mails."""
    actor.require(PERMISSION, everywhere=True)
    s = uow.session
    category_id = await _category_id(s, slug)
    sid = _one(slug, await _ids_of_category(s, category_id))
    own = set() if sid is None else {int(i) for i in (await s.scalars(
        select(FollowupStep.id).where(FollowupStep.sequence_id == sid))).all()}
    for i, st in enumerate(cmd.steps):
        if st.id is not None and st.id not in own:
            raise ValidationFailed(f"step {i + 1}: {st.id} is not a step of this sequence; "
                                   "leave the id out for a new step",
                                   code="unknown_step", field=f"steps.{i}.id")
    cmd = dataclasses.replace(cmd, category_id=category_id)
    if sid is None:
        return await create_sequence(uow, actor, cmd), True
    return await update_sequence(uow, actor, sid, cmd), False


def _audit(s: SequenceOut) -> dict[str, object]:
    return {"name": s.name, "category_id": s.category_id, "enabled": s.enabled,
            "refill_days": s.refill_days, "refill_lead_days": s.refill_lead_days,
            "steps": [{"kind": st.kind, "delay_days": st.delay_days,
                       "subject_fi": st.subject_fi, "subject_en": st.subject_en}
                      for st in s.steps]}


# --- preview --------------------------------------------------------------------------

@dataclass(frozen=True)
class Preview:
    step_id: int
    lang: str
    subject: str
    text: str


def sample_values(settings: Settings, lang: str, product: str,
                  refill_days: int | None) -> dict[str, str]:
    """What the placeholders say in the preview: a sample customer and the category's
    first product."""
    return {"first_name": "Anna", "product": product,
            "shade": "Hiekka 3N" if lang == "fi" else "Sand 3N",
            "shop": settings.business_name,
            "store": "Helsinki", "order_number": "000123",
            "shop_url": settings.resolved_public_url(),
            "refill_days": str(refill_days or 60)}


async def preview(session: AsyncSession, settings: Settings,
                  sequence_id: int) -> list[Preview]:
    """Every step rendered in both languages with a sample customer and the first
    product of the category (else of a subcategory)."""
    seq = await get_sequence(session, sequence_id)
    under = [cid for cid, chain in (await category_ancestors(session)).items()
             if seq.category_id in chain]  # the category and its subcategories
    row = (await session.execute(
        select(Product.name, Product.name_en).where(Product.category_id.in_(under))
        .order_by(Product.category_id != seq.category_id, Product.id).limit(1))).first()
    out = []
    for step in seq.steps:
        for lang in LANGS:
            fallback = "Esimerkkituote" if lang == "fi" else "Sample product"
            product = (str(row[1] or row[0]) if lang == "en" else str(row[0])) if row \
                else fallback
            values = sample_values(settings, lang, product, seq.refill_days)
            out.append(Preview(step.id, lang, fill(step.subject(lang), values),
                               fill(step.body(lang), values)))
    return out
