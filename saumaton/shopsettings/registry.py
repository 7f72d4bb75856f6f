"""The settings a shop owner may change in the back office: each a `Settings` field with
its kind, limits and label. Everything else (database, secrets, SMTP, Paytrail) stays in
the environment only.

Labels and help texts are msgids (`N_`): the page translates them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from saumaton.i18n import N_

Kind = Literal["text", "int", "money", "percent"]
Section = Literal["business", "delivery", "returns", "loyalty", "till"]

SECTIONS: tuple[tuple[Section, str], ...] = (
    ("business", N_("Business details")),
    ("delivery", N_("Delivery and pickup")),
    ("returns", N_("Returns")),
    ("loyalty", N_("Loyalty")),
    ("till", N_("Till")),
)


@dataclass(frozen=True)
class SettingDef:
    key: str  # a field of saumaton.config.Settings
    section: Section
    kind: Kind  # money: stored in cents, typed in euros
    label: str
    help: str = ""
    minimum: int | None = None  # ints and money (cents)
    maximum: int | None = None
    max_length: int = 200  # text


REGISTRY: tuple[SettingDef, ...] = (
    SettingDef("business_name", "business", "text", N_("Business name"),
               N_("Printed on receipts and in e-mails."), max_length=200),
    SettingDef("business_id", "business", "text", N_("Business ID (Y-tunnus)"),
               N_("Printed on receipts, e.g. 1234567-1."), max_length=9),
    SettingDef("business_address", "business", "text", N_("Business address"),
               N_("Printed on receipts; returns by post are sent here."), max_length=300),
    SettingDef("home_delivery_fee_cents", "delivery", "money", N_("Home delivery fee"),
               N_("VAT included. Click & collect is free."), 0, 100_000),
    SettingDef("free_delivery_from_cents", "delivery", "money",
               N_("Free home delivery from"),
               N_("Order value from which home delivery is free; 0 means never free."),
               0, 10_000_000),
    SettingDef("pickup_hold_days", "delivery", "int", N_("Pickup hold (days)"),
               N_("A paid click & collect order waits at the store this long."), 1, 90),
    SettingDef("pickup_reminder_days_before", "delivery", "int",
               N_("Pickup reminder (days before the hold ends)"),
               N_("0 sends no reminder before the last day."), 0, 89),
    SettingDef("try_hold_days", "delivery", "int", N_("Reserve to try: hold (days)"),
               N_("A unit reserved to try waits until the store closes this many days "
                  "after the reservation (1: the next day)."), 0, 14),
    SettingDef("try_close_hour", "delivery", "int",
               N_("Reserve to try: the store closes at (hour)"),
               N_("The hold ends at this hour, local time."), 1, 24),
    SettingDef("try_limit_per_customer", "delivery", "int",
               N_("Reserve to try: reservations per customer"),
               N_("How many units one shopper may hold to try at once."), 1, 50),
    SettingDef("web_return_days", "returns", "int", N_("Web order returns (days)"),
               N_("At least 14 days: the withdrawal right of the Consumer Protection Act."),
               14, 365),
    SettingDef("loyalty_points_per_euro", "loyalty", "int", N_("Points per euro"),
               N_("Points earned per whole euro of goods."), 0, 1000),
    SettingDef("loyalty_silver_from_cents", "loyalty", "money", N_("Silver tier from"),
               N_("Spend over the last 365 days, VAT included."), 0, 100_000_000),
    SettingDef("loyalty_gold_from_cents", "loyalty", "money", N_("Gold tier from"),
               N_("Spend over the last 365 days, VAT included; at least the silver limit."),
               0, 100_000_000),
    SettingDef("loyalty_point_value_cents", "loyalty", "int",
               N_("Value of one point (cents)"),
               N_("What a point is worth when it pays for a purchase."), 1, 10_000),
    SettingDef("loyalty_points_valid_days", "loyalty", "int", N_("Points valid (days)"),
               N_("Earned points lapse this long after earning unless used."), 1, 36_500),
    SettingDef("gift_card_valid_days", "loyalty", "int",
               N_("Gift cards and store credit valid (days)"),
               N_("From issue; new cards only."), 1, 36_500),
    SettingDef("pos_cashier_max_discount_pct", "till", "percent",
               N_("Largest discount a cashier may give (per cent)"),
               N_("Of a line or of the sale; managers and the owner may give any."), 0, 100),
)

BY_KEY: dict[str, SettingDef] = {d.key: d for d in REGISTRY}

# Each store's own return policy (Location.return_days): days from the sale.
STORE_RETURN_DAYS_MIN = 1
STORE_RETURN_DAYS_MAX = 365


def store_field(location_id: int) -> str:
    """The form field (and error key) of a store's return days."""
    return f"return_days_{location_id}"
