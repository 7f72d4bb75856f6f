"""The public NPS pages a survey mail links to (no login: the link's token is the key).

- `GET /nps/{token}?score=N` — the score chosen in the mail (0–10, else 422), preselected,
  and a comment box; nothing is recorded yet (mail scanners open links);
- `POST /nps/{token}` — records the answer once (409 after that), then thanks.

A link voided by a GDPR erasure answers both with 410 and says the survey is closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import Response

from saumaton.core.errors import DomainError, NotFound, ValidationFailed
from saumaton.service.nps import (
    SCORES,
    SurveyClosed,
    answer_survey,
    check_score,
    survey_for_token,
)
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import checked_form, error_page, gettext, page_router, render
from saumaton.web.route_access import public

router = page_router("/nps", dependencies=[public(
    "a survey answered through the secret token mailed to the customer")])
Token = Annotated[str, Path(max_length=200)]
MESSAGES: Mapping[str, str] = {
    "invalid_score": N_("Choose a number from 0 to 10."),
    "comment_too_long": N_("A comment is at most %(max)s characters."),
    "already_answered": N_("This survey has been answered already. Thank you!"),
    "csrf_failed": N_("The form expired. Reload the page and try again."),
}


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _not_found(request: Request) -> Response:
    return _private(error_page(request, 404, gettext(request, N_(
        "This survey link is not valid. Check that the whole link was copied."))))


def _closed(request: Request) -> Response:
    return _private(render(request, "nps/closed.html", {
        "title": gettext(request, N_("Survey closed"))}, status=410))


def _page(request: Request, token: str, *, score: int | None, comment: str = "",
          errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return _private(render(request, "nps/answer.html", {
        "title": gettext(request, N_("How did we do?")), "token": token, "score": score,
        "comment": comment, "scores": list(SCORES), "errors": errors or {}},
        status=status))


def _message(request: Request, exc: DomainError) -> str:
    text = MESSAGES.get(exc.code)
    if text is None:
        return exc.detail
    return gettext(request, text, **{k: str(v) for k, v in exc.extra.items()})


@router.get("/{token}")
async def survey_page(request: Request, token: Token) -> Response:
    try:
        async with db_of(request).reader() as s:
            survey = await survey_for_token(s, token)
    except NotFound:
        return _not_found(request)
    except SurveyClosed:
        return _closed(request)
    if survey.answered_at is not None:
        return _private(render(request, "nps/thanks.html", {
            "title": gettext(request, N_("Thank you!")), "already": True}, status=409))
    raw = request.query_params.get("score")
    if raw is None:
        return _page(request, token, score=None)
    try:
        score = check_score(raw[:10])
    except ValidationFailed as exc:
        return _page(request, token, score=None, status=422,
                     errors={"score": _message(request, exc)})
    return _page(request, token, score=score)


@router.post("/{token}")
async def answer(request: Request, token: Token) -> Response:
    form = await checked_form(request)
    raw = form.get("score")
    comment = form.get("comment")
    comment_text = comment[:5000] if isinstance(comment, str) else ""
    try:
        async with db_of(request).uow() as uow:
            await answer_survey(uow, token, raw if isinstance(raw, str) else "",
                                comment_text)
            await uow.commit()
    except NotFound:
        return _not_found(request)
    except SurveyClosed:
        return _closed(request)
    except DomainError as exc:
        if exc.code == "already_answered":
            return _private(render(request, "nps/thanks.html", {
                "title": gettext(request, N_("Thank you!")), "already": True},
                status=409))
        score = None
        if isinstance(raw, str):
            try:
                score = check_score(raw)
            except ValidationFailed:
                score = None
        return _page(request, token, score=score, comment=comment_text, status=exc.status,
                     errors={exc.field or "score": _message(request, exc)})
    return _private(render(request, "nps/thanks.html", {
        "title": gettext(request, N_("Thank you!")), "already": False}))
