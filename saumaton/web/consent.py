"""POST /shop/consent: the shopper's cookie choice (docs/analytics.md).

The choice itself is kept in a strictly necessary cookie. "analytics" also sets
the visitor id cookie; "necessary" deletes it, and events already recorded with
that id are unlinked from it.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from saumaton.analytics.privacy import forget_visitor
from saumaton.core.errors import Forbidden
from saumaton.web.analytics import (
    CONSENT_ANALYTICS,
    CONSENT_COOKIE,
    CONSENT_NECESSARY,
    VISITOR_COOKIE,
    mark_visited,
    visitor_cookie,
)
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    is_htmx,
    page_router,
    render,
    safe_next,
)
from saumaton.web.route_access import public

log = logging.getLogger(__name__)
router = page_router("/shop", dependencies=[public(
    "a visitor's own cookie choice, kept in their session: CSRF-checked")])

CONSENT_MAX_AGE = 180 * 24 * 3600
VISITOR_MAX_AGE = 395 * 24 * 3600  # 13 months, the longest Traficom accepts for analytics
_BAD_CHOICE = N_("Choose “Allow analytics” or “Only necessary”.")


def _fragment(request: Request, choice: str | None, back: str, *, error: str = "",
              saved: bool = False, status: int = 200) -> HTMLResponse:
    return render(request, "shop/_consent.html", {
        "consent_choice": choice, "consent_error": error, "consent_saved": saved,
        "consent_next": back}, status=status)


def _set_cookies(request: Request, response: Response, choice: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(CONSENT_COOKIE, choice, max_age=CONSENT_MAX_AGE, httponly=True,
                        samesite="lax", secure=secure)
    if choice == CONSENT_ANALYTICS:
        # Keep an existing id: changing the setting twice is still one visitor.
        vid = visitor_cookie(request) or secrets.token_urlsafe(24)
        response.set_cookie(VISITOR_COOKIE, vid, max_age=VISITOR_MAX_AGE, httponly=True,
                            samesite="lax", secure=secure)
    else:
        response.delete_cookie(VISITOR_COOKIE, httponly=True, samesite="lax", secure=secure)


@router.post("/consent")
async def choose(request: Request) -> Response:
    current = request.cookies.get(CONSENT_COOKIE)
    try:
        form = await checked_form(request)
    except Forbidden as exc:
        if not is_htmx(request):
            return error_page(request, exc.status, error_message(request, exc))
        return _fragment(request, current, "/shop/", error=error_message(request, exc),
                         status=exc.status)
    back = safe_next(form.get("next"), "/shop/")
    choice = form.get("choice")
    if choice not in (CONSENT_ANALYTICS, CONSENT_NECESSARY):
        message = gettext(request, _BAD_CHOICE)
        if not is_htmx(request):
            return error_page(request, 422, message)
        return _fragment(request, current, back, error=message, status=422)
    if choice == CONSENT_NECESSARY:
        vid = visitor_cookie(request)
        if vid is not None:
            await forget_visitor(db_of(request), getattr(request.app.state, "analytics", None),
                                 vid)
    mark_visited(request, consented=choice == CONSENT_ANALYTICS)
    response: Response = (_fragment(request, choice, back, saved=True) if is_htmx(request)
                          else RedirectResponse(back, status_code=303))
    _set_cookies(request, response, choice)
    return response
