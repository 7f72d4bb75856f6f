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
  signature): `public("why")`, the reason written where a reviewer reads it,
- the shopper's own account pages: `customer_session()` here (the signed-in customer's
  id; the account sign-in page otherwise),
- staff pages open to every signed-in staff member (the staff home, the store picker):
  `staff_session()`, and the till's pages and JSON: `till_requires("x")` (a staff
  session holding x at the store named in the path), both beside `requires`.

Mounts and the routes FastAPI adds itself (the OpenAPI document) carry no dependencies:
`PUBLIC_MOUNTS` names them with the reason they are public.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from saumaton.config import SIMULATOR_PATH
from saumaton.core.actor import Actor
from saumaton.core.errors import NotAuthenticated
from saumaton.web.auth import require_actor
from saumaton.web.shopper import current_customer_id

# The code a page route's error handler turns into the account sign-in page (not the
# staff login page every other NotAuthenticated leads to).
CUSTOMER_SIGN_IN = "customer_not_signed_in"

# Paths the app serves without a route's dependencies, each with why anyone may read it.
PUBLIC_MOUNTS: dict[str, str] = {
    "/static": "the pages' CSS, JS and images, the same for everyone",
    "/media": "product pictures shown in the webshop",
    SIMULATOR_PATH: "the local stand-in for Paytrail (no merchant credentials): an "
                     "external service's pages, checked by its own signatures",
    "/api/v1/openapi.json": "the API's description, public like the API's docs page",
}


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


class CustomerSession:
    """A shopper's own pages: the signed-in customer's id (the session's), else the
    account sign-in page. The customer can only reach what is theirs: the handlers read
    everything through this id."""

    async def __call__(self, request: Request) -> int:
        customer_id = current_customer_id(request)
        if customer_id is None:
            raise NotAuthenticated("sign in to your account", code=CUSTOMER_SIGN_IN)
        return customer_id


def api_requires(permission: str, *, everywhere: bool = False) -> Any:
    """`actor: Annotated[Actor, api_requires("orders.read")]`."""
    return Depends(ApiPermission(permission, everywhere=everywhere))


def public(why: str) -> Any:
    """`dependencies=[public("the webshop's product pages")]` on the route decorator."""
    return Depends(Public(why))


def customer_session() -> Any:
    """`customer_id: Annotated[int, customer_session()]` on an account page."""
    return Depends(CustomerSession())
