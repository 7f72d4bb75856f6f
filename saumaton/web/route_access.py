"""What every route of the app declares about who may call it.

Each route names exactly one of these as a dependency, so one walk over the app's routes
(tests/test_route_matrix.py) can fail on a route that declares nothing and check every
role against what the route declares:

- back-office pages: `requires("x")` from web/backoffice/access.py (a staff session with
  permission x; the login page otherwise),
- API routes: `api_requires("x")` here (a bearer token or staff session holding x
  somewhere; 401/403 problem+json otherwise; a location-scoped route checks the
  object's location again in the handler or the service),
- routes anyone may call (the webshop, the login page, a Paytrail callback checked by its
  signature): `public("why")`, the reason written where a reviewer reads it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from saumaton.core.actor import Actor
from saumaton.web.auth import require_actor


class ApiPermission:
    """An API route's declaration: the caller must hold `permission` (somewhere, or at
    every location with `everywhere=True`)."""

    def __init__(self, permission: str, *, everywhere: bool = False) -> None:
        self.permission = permission
        self.everywhere = everywhere

    async def __call__(self, request: Request) -> Actor:
        actor = await require_actor(request)
        actor.require(self.permission, everywhere=self.everywhere)
        return actor


class Public:
    """A route anyone may call; `why` says what protects it instead (nothing, a
    signature, a customer's own session, a one-time token)."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def __call__(self) -> None:
        return None


def api_requires(permission: str, *, everywhere: bool = False) -> Any:
    """`actor: Annotated[Actor, api_requires("orders.read")]`."""
    return Depends(ApiPermission(permission, everywhere=everywhere))


def public(why: str) -> Any:
    """`dependencies=[public("the webshop's product pages")]` on the route decorator."""
    return Depends(Public(why))
