"""Who may open which back-office page, and the navigation every back-office page shares.

Every back-office route declares the one permission it needs with `requires(...)`; the
dependency answers a signed-out browser with the login page and a role without the
permission with the 403 page (PageRoute turns the domain errors into pages). The
services check the same permissions again, so the API and the pages agree.
`tests/test_backoffice_access.py` walks every route for every role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from saumaton.core.actor import Actor
from saumaton.web.i18n import N_
from saumaton.web.pages import add_template_global, require_staff


class Permission:
    """The dependency a route declares: `actor: Annotated[Actor, requires("x")]`."""

    def __init__(self, permission: str, *, everywhere: bool = False) -> None:
        self.permission = permission
        self.everywhere = everywhere

    async def __call__(self, request: Request) -> Actor:
        actor = await require_staff(request)
        actor.require(self.permission, everywhere=self.everywhere)
        return actor


class StaffSession:
    """A page every signed-in staff member may open (the staff home, the store picker):
    what it shows depends on the person's grants, checked in the handler."""

    async def __call__(self, request: Request) -> Actor:
        return await require_staff(request)


def staff_session() -> Any:
    """`actor: Annotated[Actor, staff_session()]`: any signed-in staff member."""
    return Depends(StaffSession())


def requires(permission: str, *, everywhere: bool = False) -> Any:
    """`Depends` on a staff session holding `permission` (anywhere, or at every location
    with `everywhere=True`). A location-scoped page checks the location itself too."""
    return Depends(Permission(permission, everywhere=everywhere))


def declared_permission(call: Callable[..., Awaitable[Any]] | object) -> Permission | None:
    return call if isinstance(call, Permission) else None


@dataclass(frozen=True)
class NavItem:
    key: str
    href: str
    label: str  # N_() text, translated when rendered
    permission: str
    everywhere: bool = False


@dataclass(frozen=True)
class NavGroup:
    label: str
    items: tuple[NavItem, ...]


NAV: tuple[NavGroup, ...] = (
    NavGroup(N_("Sales"), (
        NavItem("orders", "/backoffice/orders", N_("Orders"), "orders.read"),
        NavItem("returns", "/backoffice/returns", N_("Returns"), "returns.create"),
        NavItem("customers", "/backoffice/customers", N_("Customers"), "customers.read"),
        NavItem("duplicates", "/backoffice/customers/duplicates", N_("Duplicate customers"),
                "customers.read"),
        NavItem("segments", "/backoffice/segments", N_("Customer segments"), "segments.write",
                everywhere=True),
        NavItem("follow-ups", "/backoffice/follow-ups", N_("Follow-up e-mails"),
                "followups.write", everywhere=True),
        NavItem("gift-cards", "/backoffice/gift-cards", N_("Gift cards"), "giftcards.read"),
    )),
    NavGroup(N_("Catalogue"), (
        NavItem("products", "/backoffice/products", N_("Products"), "catalogue.read"),
        NavItem("categories", "/backoffice/categories", N_("Categories"), "catalogue.read"),
        NavItem("prices", "/backoffice/prices", N_("Price changes"), "prices.read"),
        NavItem("campaigns", "/backoffice/campaigns", N_("Campaigns"), "prices.read"),
        NavItem("price-parity", "/backoffice/price-parity", N_("Price parity"),
                "prices.read"),
    )),
    NavGroup(N_("Stock"), (
        NavItem("stock", "/backoffice/stock", N_("Stock levels"), "stock.read"),
        NavItem("receiving", "/backoffice/stock/receive", N_("Receive a delivery"),
                "stock.write"),
        NavItem("transfers", "/backoffice/stock/transfers", N_("Transfers"), "stock.read"),
        NavItem("counts", "/backoffice/stock/counts", N_("Stock counts"), "stock.count"),
    )),
    NavGroup(N_("Reports"), (
        NavItem("reports", "/backoffice/reports", N_("Sales"), "reports.read"),
        NavItem("customer-reports", "/backoffice/reports/customers",
                N_("Customers and channels"), "reports.read", everywhere=True),
        NavItem("settlements", "/backoffice/settlements", N_("Paytrail settlements"),
                "reports.read", everywhere=True),
        NavItem("card-cash", "/backoffice/card-cash", N_("Card and cash"), "reports.read"),
        NavItem("flags", "/backoffice/flags", N_("Offline sales to review"), "reports.read"),
        NavItem("journal", "/backoffice/journal", N_("Daily journal"), "reports.read"),
    )),
    NavGroup(N_("Administration"), (
        NavItem("fields", "/backoffice/customers/fields", N_("Preference fields"),
                "customers.configure", everywhere=True),
        NavItem("staff", "/backoffice/staff", N_("Staff"), "staff.read"),
        NavItem("audit", "/backoffice/audit", N_("Audit log"), "audit.read"),
        NavItem("settings", "/backoffice/settings", N_("Settings"), "settings.write",
                everywhere=True),
        NavItem("webhooks", "/backoffice/webhooks", N_("Webhooks"), "webhooks.write"),
        NavItem("import-export", "/backoffice/import-export", N_("Import and export"),
                "imports.run"),
        NavItem("board", "/backoffice/board", N_("Staff board"), "orders.read"),
    )),
)


def nav_for(actor: Actor | None) -> list[tuple[str, list[NavItem]]]:
    """The groups and items `actor` may open (empty groups left out)."""
    if actor is None:
        return []
    out = []
    for group in NAV:
        items = [i for i in group.items if actor.can(i.permission, everywhere=i.everywhere)]
        if items:
            out.append((group.label, items))
    return out


add_template_global("backoffice_nav", nav_for)
