"""The one-click unsubscribe of marketing mail (RFC 8058; mail/marketing.py).

- `POST /unsubscribe/{token}` — what a mail provider posts when the reader presses its
  "Unsubscribe" beside the mail (body `List-Unsubscribe=One-Click`, no cookies, so no
  CSRF token: the signed token is the key), and what the page's button posts: the
  consent is withdrawn at once; a repeat answers 200 again and writes nothing.
- `GET /unsubscribe/{token}` — the link in the mail's body: a page with a button.
  A GET never unsubscribes: link scanners and previews fetch every link in a mail.

A token this shop did not sign answers 400 with the code `invalid_unsubscribe_link`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import Response

from saumaton.mail.marketing import MAX_TOKEN, BadUnsubscribeLink, read_token, unsubscribe
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_router, render, settings_of
from saumaton.web.route_access import public

router = page_router("/unsubscribe", dependencies=[public(
    "one-click unsubscribe (RFC 8058): the link's signed token is the key; mail "
    "providers post it without cookies, so there is no CSRF token to check")])
# Longer than any real token, so a long one reaches the check and gets its 400.
Token = Annotated[str, Path(max_length=MAX_TOKEN + 100)]


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _bad_link(request: Request, exc: BadUnsubscribeLink) -> Response:
    return _private(render(request, "unsubscribe/invalid.html", {
        "title": gettext(request, N_("Unsubscribe")), "code": exc.code,
        "message": gettext(request, N_(
            "This unsubscribe link is not valid. Check that the whole link was copied."))},
        status=exc.status))


@router.get("/{token}")
async def unsubscribe_page(request: Request, token: Token) -> Response:
    try:
        read_token(settings_of(request), token)
    except BadUnsubscribeLink as exc:
        return _bad_link(request, exc)
    return _private(render(request, "unsubscribe/confirm.html", {
        "title": gettext(request, N_("Unsubscribe")), "token": token}))


@router.post("/{token}")
async def unsubscribe_now(request: Request, token: Token) -> Response:
    try:
        async with db_of(request).uow() as uow:
            await unsubscribe(uow, settings_of(request), token)
            await uow.commit()
    except BadUnsubscribeLink as exc:
        return _bad_link(request, exc)
    return _private(render(request, "unsubscribe/done.html", {
        "title": gettext(request, N_("You have unsubscribed"))}))
