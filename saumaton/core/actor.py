"""Who is acting: a staff member (via a session or an API token) or the system.

Permissions are granted by roles; a role holds at one location or, with no
location, everywhere. Service functions check permissions, so every channel
enforces the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saumaton.core.errors import Forbidden

ROLES = ("owner", "manager", "cashier", "service", "finance")

# Only the owner ("*") has: staff.write (invite, roles, disable, tokens), settings.write,
# audit.read is the owner's and finance's; reconcile.write (importing Paytrail
# settlements and card terminal reports) finance's; flags.resolve (closing an offline
# sale's review flag with a note) a manager's for their stores. Back-office pages
# declare one of these each (web/backoffice/access.py); the services check them again.

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"*"}),
    "manager": frozenset({
        "catalogue.write", "prices.write", "stock.write", "stock.read", "orders.create",
        "orders.read", "customers.write", "customers.read", "staff.read", "discounts.any",
        "customers.merge", "customers.erase", "notices.write", "customers.configure",
        "orders.fulfil", "returns.create", "returns.override", "giftcards.issue",
        "giftcards.read", "catalogue.read", "prices.read", "stock.count", "imports.run",
        "reports.read", "flags.resolve",
    }),
    "cashier": frozenset({
        "orders.create", "orders.read", "customers.write", "customers.read", "stock.read",
        "orders.fulfil", "returns.create", "giftcards.read", "stock.count",
    }),
    "service": frozenset({
        "orders.create", "orders.read", "customers.write", "customers.read", "stock.read",
        "returns.create", "giftcards.read",
    }),
    "finance": frozenset({"orders.read", "stock.read", "customers.read", "giftcards.read",
                          "catalogue.read", "prices.read", "audit.read", "reports.read",
                          "reconcile.write"}),
}


@dataclass(frozen=True)
class RoleGrant:
    role: str
    location_id: int | None  # None: every location


@dataclass(frozen=True)
class Actor:
    label: str  # written into ledgers and audit columns, e.g. "staff:3 anna@shop.fi"
    staff_id: int | None = None
    name: str = ""
    grants: tuple[RoleGrant, ...] = field(default_factory=tuple)
    system: bool = False

    def can(self, permission: str, location_id: int | None = None,
            *, everywhere: bool = False) -> bool:
        if self.system:
            return True
        for g in self.grants:
            perms = ROLE_PERMISSIONS.get(g.role, frozenset())
            if "*" not in perms and permission not in perms:
                continue
            if g.location_id is None:
                return True
            if not everywhere and (location_id is None or g.location_id == location_id):
                return True
        return False

    def require(self, permission: str, location_id: int | None = None,
                *, everywhere: bool = False) -> None:
        if not self.can(permission, location_id, everywhere=everywhere):
            where = f" at location {location_id}" if location_id is not None else ""
            raise Forbidden(f"{self.name or self.label} may not {permission}{where}",
                            code="forbidden")

    @property
    def location_ids(self) -> set[int | None]:
        return {g.location_id for g in self.grants}


SYSTEM = Actor(label="system", name="system", system=True)
