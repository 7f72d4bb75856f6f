"""Sign-in throttling for the pages: the client's address, counting an attempt before
the password is checked, and the refusal's message (saumaton/throttle/services.py).

The address is `request.client`, which TrustedProxyMiddleware has already set from
X-Forwarded-For when (and only when) the peer is a trusted proxy.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from saumaton import i18n
from saumaton.api.problems import domain_problem
from saumaton.throttle import services as throttle
from saumaton.throttle.services import Limits, TooManyAttempts
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import page_lang, settings_of

_SIGN_IN = (N_("Too many failed sign-ins; try again in %(num)d minute."),
            N_("Too many failed sign-ins; try again in %(num)d minutes."))
_RESET = (N_("Too many password reset requests; try again in %(num)d minute."),
          N_("Too many password reset requests; try again in %(num)d minutes."))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def attempt(request: Request, kind: str, email: str) -> TooManyAttempts | None:
    """Count this attempt (committed at once, so every process sees it); the refusal
    when the account or the address has had too many."""
    async with db_of(request).uow() as uow:
        retry_after = await throttle.reserve(uow, kind, email, client_address(request),
                                             Limits.of(settings_of(request)))
        await uow.commit()
    return throttle.refusal(retry_after, kind) if retry_after else None


async def succeeded(request: Request, kind: str, email: str) -> None:
    async with db_of(request).uow() as uow:
        await throttle.succeeded(uow, kind, email, client_address(request))
        await uow.commit()


def message(request: Request, refusal: TooManyAttempts) -> str:
    minutes = int(refusal.extra.get("minutes", 1))
    singular, plural = _RESET if str(refusal.extra.get("kind", "")).endswith("_reset") \
        else _SIGN_IN
    text = i18n.translations(page_lang(request)).ngettext(singular, plural, minutes)
    return text % {"num": minutes}


def wants_json(request: Request) -> bool:
    """A script signing in (Accept: application/json, no HTML) gets problem+json."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def json_refusal(refusal: TooManyAttempts) -> Response:
    return domain_problem(refusal)


def retry_headers(refusal: TooManyAttempts) -> dict[str, str]:
    return {"Retry-After": str(int(refusal.extra.get("retry_after", 60)))}
