"""Canned answers: ready replies agents insert in the reply box. Managers (and owners)
write them; every agent reads them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.service.chat import MAX_MESSAGE, require_agent, require_manager
from saumaton.service.models import CannedAnswer

MAX_TITLE = 100


@dataclass(frozen=True)
class CannedOut:
    id: int
    title: str
    body: str
    language: str


def _out(row: CannedAnswer) -> CannedOut:
    return CannedOut(row.id, row.title, row.body, row.language)


def _clean(title: str, body: str, language: str) -> tuple[str, str, str]:
    t = " ".join(title.split())
    if not t:
        raise ValidationFailed("give the answer a title", code="title_required", field="title")
    if "\x00" in t or "\x00" in body:
        raise ValidationFailed("text cannot contain the NUL character (U+0000)",
                               code="invalid_text", field="title" if "\x00" in t else "body")
    if len(t) > MAX_TITLE:
        raise ValidationFailed(f"a title is at most {MAX_TITLE} characters",
                               code="title_too_long", field="title", extra={"max": MAX_TITLE})
    b = body.strip().replace("\r\n", "\n")
    if not b:
        raise ValidationFailed("write the answer", code="message_empty", field="body")
    if len(b) > MAX_MESSAGE:
        raise ValidationFailed(f"an answer is at most {MAX_MESSAGE} characters",
                               code="message_too_long", field="body",
                               extra={"max": MAX_MESSAGE})
    if language not in ("fi", "en"):
        raise ValidationFailed("language is fi or en", code="invalid_language",
                               field="language")
    return t, b, language


async def list_canned(session: AsyncSession, actor: Actor,
                      language: str | None = None) -> list[CannedOut]:
    """All answers by title; those in `language` first."""
    require_agent(actor)
    order = [CannedAnswer.title, CannedAnswer.id]
    if language:
        order.insert(0, case((CannedAnswer.language == language, 0), else_=1))  # type: ignore[arg-type]
    rows = (await session.scalars(select(CannedAnswer).order_by(*order))).all()
    return [_out(r) for r in rows]


async def _get(uow: UnitOfWork, canned_id: int) -> CannedAnswer:
    row = await uow.session.get(CannedAnswer, canned_id)
    if row is None:
        raise NotFound(f"no canned answer {canned_id}", code="canned_not_found")
    return row


async def create_canned(uow: UnitOfWork, actor: Actor, title: str, body: str,
                        language: str = "fi") -> CannedOut:
    require_manager(actor)
    t, b, lang = _clean(title, body, language)
    row = CannedAnswer(title=t, body=b, language=lang)
    uow.session.add(row)
    await uow.session.flush()
    uow.emit("service.canned", {"canned_id": row.id})
    return _out(row)


async def update_canned(uow: UnitOfWork, actor: Actor, canned_id: int, title: str,
                        body: str, language: str = "fi") -> CannedOut:
    require_manager(actor)
    t, b, lang = _clean(title, body, language)
    row = await _get(uow, canned_id)
    row.title, row.body, row.language = t, b, lang
    await uow.session.flush()
    uow.emit("service.canned", {"canned_id": row.id})
    return _out(row)


async def delete_canned(uow: UnitOfWork, actor: Actor, canned_id: int) -> None:
    require_manager(actor)
    row = await _get(uow, canned_id)
    await uow.session.delete(row)
    await uow.session.flush()
    uow.emit("service.canned", {"canned_id": canned_id, "deleted": True})
