"""The signed-in shopper of a browser session (session key "customer_id").

Shopper and staff sign-ins live side by side in the one session cookie: signing a
shopper in or out leaves the staff keys alone. Signing in rotates the CSRF token,
so a token seen before sign-in is no use afterwards.
"""

from __future__ import annotations

import secrets

from fastapi import Request

SESSION_KEY = "customer_id"


def current_customer_id(request: Request) -> int | None:
    value = request.session.get(SESSION_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sign_in_shopper(request: Request, customer_id: int) -> None:
    request.session[SESSION_KEY] = customer_id
    request.session["csrf"] = secrets.token_urlsafe(24)


def sign_out_shopper(request: Request) -> None:
    request.session.pop(SESSION_KEY, None)
