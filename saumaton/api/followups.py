"""/api/v1 after-purchase follow-up sequences (docs/follow-ups.md), by product category:
the list, one category's sequence, and replacing it whole (created when the category
has none) — the back office's editor as JSON, with the same checks (every problem at
once, each on its field) and the same audit and `followup.sequence_changed` event.
Owner only, as the back office: `followups.write` at every location. Thin: the rules
are in saumaton.followups.sequences.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from saumaton.api.fields import Name200, StrictInput
from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import MAX_INT32, NoNul
from saumaton.followups import sequences
from saumaton.followups.sequences import (
    MAX_DELAY_DAYS,
    MAX_REFILL_DAYS,
    MAX_REFILL_LEAD_DAYS,
    MAX_STEPS,
    MIN_REFILL_DAYS,
    SequenceIn,
    SequenceInvalid,
    SequenceOut,
    StepIn,
)
from saumaton.followups.templates import MAX_BODY, MAX_SUBJECT
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1/followups", tags=["follow-ups"])
Owner = Annotated[Actor, api_requires(sequences.PERMISSION, everywhere=True)]
CategorySlug = Annotated[str, Path(min_length=1, max_length=120,
                                   description="the product category's slug"), NoNul]
StepKind = Literal["how_to_use", "shade", "text", "refill"]


class StepApiOut(BaseModel):
    id: int
    position: int
    kind: StepKind
    delay_days: int = Field(description="days after the purchase (a refill reminder: "
                                        "its time comes from the interval)")
    subject_fi: str
    body_fi: str
    subject_en: str
    body_en: str


class SequenceApiOut(BaseModel):
    id: int
    name: str
    category: str = Field(description="the product category's slug")
    category_id: int
    category_name: str
    enabled: bool
    refill_days: int | None = Field(description="typical days between purchases (the "
                                                "refill interval without the customer's own)")
    refill_lead_days: int = Field(description="days before the expected run-out the refill "
                                              "reminder comes")
    steps: list[StepApiOut]
    updated_at: datetime


class StepPutIn(StrictInput):
    id: int | None = Field(default=None, ge=1, le=MAX_INT32,
                           description="a step of this sequence kept (its pending mails stay "
                                       "its own); leave out for a new step")
    kind: StepKind
    delay_days: int = Field(default=0, ge=0, le=MAX_DELAY_DAYS)
    subject_fi: str = Field(max_length=MAX_SUBJECT)
    body_fi: str = Field(max_length=MAX_BODY)
    subject_en: str = Field(max_length=MAX_SUBJECT)
    body_en: str = Field(max_length=MAX_BODY)


class SequencePutIn(StrictInput):
    """The whole sequence: steps left out are removed (their pending mails are cancelled
    when due). Templates: plain text with the placeholders of docs/follow-ups.md."""

    name: Name200 | None = Field(default=None, description="default: the category's name "
                                                           "(at most 100 characters)")
    enabled: bool = True
    refill_days: int | None = Field(default=None, ge=MIN_REFILL_DAYS, le=MAX_REFILL_DAYS)
    refill_lead_days: int = Field(default=sequences.DEFAULT_REFILL_LEAD_DAYS, ge=0,
                                  le=MAX_REFILL_LEAD_DAYS)
    steps: list[StepPutIn] = Field(min_length=1, max_length=MAX_STEPS)


def _out(seq: SequenceOut) -> SequenceApiOut:
    return SequenceApiOut(
        id=seq.id, name=seq.name, category=seq.category_slug, category_id=seq.category_id,
        category_name=seq.category_name, enabled=seq.enabled, refill_days=seq.refill_days,
        refill_lead_days=seq.refill_lead_days, updated_at=seq.updated_at,
        steps=[StepApiOut(id=st.id, position=st.position, kind=st.kind,
                          delay_days=st.delay_days, subject_fi=st.subject_fi,
                          body_fi=st.body_fi, subject_en=st.subject_en, body_en=st.body_en)
               for st in seq.steps])


_STEP_FIELD = re.compile(r"^step(\d+)_(\w+)$")


def api_field(field: str) -> str:
    """The service's field name as the body's path: step0_subject_fi → steps.0.subject_fi."""
    m = _STEP_FIELD.match(field)
    return f"steps.{m[1]}.{m[2]}" if m else field


@router.get("/sequences", response_model=list[SequenceApiOut],
            summary="Every follow-up sequence, by name (followups.write)")
async def list_sequences(request: Request, actor: Owner) -> list[SequenceApiOut]:
    async with db_of(request).reader() as s:
        return [_out(seq) for seq in await sequences.list_sequences(s)]


@router.get("/sequences/{category}", response_model=SequenceApiOut,
            summary="A product category's follow-up sequence (followups.write)",
            responses={404: {"description": "category_not_found, sequence_not_found"},
                       409: {"description": "several_sequences: the category has more than "
                                            "one (extra sequence_ids)"}})
async def get_sequence(request: Request, category: CategorySlug,
                       actor: Owner) -> SequenceApiOut:
    async with db_of(request).reader() as s:
        return _out(await sequences.sequence_of_category(s, category))


@router.put("/sequences/{category}", response_model=SequenceApiOut,
            summary="Create or replace a product category's follow-up sequence "
                    "(followups.write)",
            responses={201: {"description": "created (the category had no sequence)",
                             "model": SequenceApiOut},
                       404: {"description": "category_not_found"},
                       409: {"description": "several_sequences"},
                       422: {"description": "every problem at once in `errors` (field, code, "
                                            "message): e.g. template_unknown_placeholder, "
                                            "template_required, invalid_refill_lead_days, "
                                            "one_refill_step, unknown_step"}})
async def put_sequence(request: Request, response: Response, category: CategorySlug,
                       body: SequencePutIn, actor: Owner) -> SequenceApiOut:
    cmd = SequenceIn(
        name=body.name or "", category_id=None, enabled=body.enabled,
        refill_days=body.refill_days, refill_lead_days=body.refill_lead_days,
        steps=[StepIn(kind=st.kind, delay_days=st.delay_days, subject_fi=st.subject_fi,
                      body_fi=st.body_fi, subject_en=st.subject_en, body_en=st.body_en,
                      id=st.id) for st in body.steps])
    try:
        async with db_of(request).uow() as uow:
            if body.name is None:  # the category's own name
                cmd = SequenceIn(**{**cmd.__dict__, "name": await sequences.category_name(
                    uow.session, category)})
            seq, created = await sequences.put_for_category(uow, actor, category, cmd)
            await uow.commit()
    except SequenceInvalid as exc:
        errors = [{"field": api_field(e.field), "code": e.code,
                   "message": e.message % e.values if e.values else e.message}
                  for e in exc.errors]
        raise ValidationFailed(str(errors[0]["message"]), code=exc.code,
                               field=str(errors[0]["field"]),
                               extra={"errors": errors}) from exc
    response.status_code = 201 if created else 200
    return _out(seq)
