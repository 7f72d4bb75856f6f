"""The topics a webhook may subscribe to: every domain event the outbox carries, by area.

Left out on purpose (INTERNAL): signals that only refresh staff screens or carry no
business fact a receiver could use (the staff board, the service desk's chat and
presence, settings, staff- and shopper-session changes, which would also leak who works
when).
tests/test_webhooks_topics.py fails when a new outbox topic is in neither list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saumaton.i18n import N_


@dataclass(frozen=True)
class Topic:
    name: str
    description: str  # N_() text
    # Payload fields naming the resource whose deliveries keep their order.
    resource: tuple[str, ...]


@dataclass(frozen=True)
class Area:
    key: str
    label: str  # N_() text
    topics: tuple[Topic, ...]


def _order(status: str, text: str) -> Topic:
    return Topic(f"order.{status}", text, ("order_id",))


AREAS: tuple[Area, ...] = (
    Area("order", N_("Orders"), (
        Topic("order.created", N_("An order was placed or a till sale recorded"),
              ("order_id",)),
        _order("paid", N_("A web order was paid")),
        _order("picking", N_("Staff started collecting an order")),
        _order("ready", N_("A click & collect order waits at the store")),
        _order("packed", N_("A home delivery was packed")),
        _order("shipped", N_("An order was shipped")),
        _order("collected", N_("A click & collect order was handed over")),
        _order("completed", N_("A store sale was completed")),
        _order("partly_returned", N_("Part of an order was returned")),
        _order("returned", N_("Every unit of an order was returned")),
        _order("cancelled", N_("An order was cancelled")),
        _order("pickup_reminded", N_("The customer was reminded to collect an order")),
    )),
    Area("payment", N_("Payments and refunds"), (
        Topic("payment.status", N_("A web payment's status changed"), ("order_id",)),
        Topic("refund.created", N_("A refund was created"), ("order_id",)),
        Topic("refund.ok", N_("A refund was paid out"), ("order_id",)),
        Topic("refund.pending", N_("A refund awaits the payment provider"), ("order_id",)),
        Topic("refund.fail", N_("A refund failed"), ("order_id",)),
    )),
    Area("return", N_("Returns"), (
        Topic("return.created", N_("A return was registered"), ("order_id",)),
        Topic("return.completed", N_("A return was completed"), ("order_id",)),
        Topic("return.cancelled", N_("A return was cancelled"), ("order_id",)),
    )),
    Area("stock", N_("Stock"), (
        Topic("stock.changed", N_("A stock level changed"), ("variant_id", "location_id")),
        Topic("stock.transfer", N_("A transfer was sent, received or cancelled"),
              ("transfer_id",)),
        Topic("try.reserved", N_("A shopper reserved a unit to try in a store"), ("id",)),
        Topic("try.sold", N_("A reservation to try was sold at the till"), ("id",)),
        Topic("try.released", N_("A reservation to try was released"), ("id",)),
        Topic("try.expired", N_("A reservation to try lapsed (not collected)"), ("id",)),
    )),
    Area("customer", N_("Customers"), (
        Topic("customer.created", N_("A customer was created"), ("customer_id",)),
        Topic("customer.updated", N_("A customer's details or consents changed"),
              ("customer_id",)),
        Topic("customer.merged", N_("Two customers were merged"), ("customer_id",)),
        Topic("customer.unmerged", N_("A merge was undone"), ("customer_id",)),
        Topic("loyalty.changed", N_("Loyalty points were earned, used or expired"),
              ("customer_id",)),
        Topic("nps.answered", N_("A customer answered a satisfaction survey"),
              ("customer_id",)),
        Topic("followup.queued", N_("An after-purchase follow-up e-mail was handed to "
                                    "the mail queue"), ("customer_id",)),
        Topic("followup.sent", N_("An after-purchase follow-up e-mail was sent"),
              ("customer_id",)),
        Topic("followup.skipped", N_("A follow-up e-mail was not sent (no consent or no "
                                     "address when it fell due)"), ("customer_id",)),
    )),
    Area("segment", N_("Customer segments"), (
        Topic("segment.changed", N_("A customer segment was created, changed or deleted"),
              ("segment_id",)),
        Topic("segment.exported", N_("A segment's members were sent (consenting "
                                     "customers, in parts)"), ("segment_id",)),
        Topic("followup.sequence_changed", N_("A follow-up e-mail sequence was created, "
                                              "changed, or switched on or off"),
              ("sequence_id",)),
    )),
    Area("product", N_("Products"), (
        Topic("product.created", N_("A product was created"), ("product_id",)),
        Topic("product.updated", N_("A product or its variants changed"), ("product_id",)),
        Topic("category.updated", N_("A category changed"), ("category_id",)),
        Topic("category.deleted", N_("A category was deleted"), ("category_id",)),
    )),
    Area("price", N_("Prices and campaigns"), (
        Topic("price.changed", N_("A variant's price changed"), ("variant_id",)),
        Topic("campaign.changed", N_("A campaign was created, changed or ended"),
              ("campaign_id",)),
    )),
    Area("giftcard", N_("Gift cards"), (
        Topic("giftcard.changed", N_("A gift card was issued, spent, credited or closed"),
              ("gift_card_id",)),
    )),
)

TOPICS: dict[str, Topic] = {t.name: t for a in AREAS for t in a.topics}
# Outbox topics not offered (see the module's docstring); prefixes end in ".".
INTERNAL = ("board.", "chat.", "service.", "settings.", "shopper.", "staff.")
# A test event the back office's "send test event" delivers to one subscription.
TEST_TOPIC = "webhook.test"


def patterns() -> list[str]:
    """What a subscription may name: "*", "<area>.*" or an exact topic."""
    return ["*", *sorted({f"{t.split('.')[0]}.*" for t in TOPICS}), *TOPICS]


def valid_pattern(pattern: str) -> bool:
    return pattern in patterns()


def matches(pattern: str, topic: str) -> bool:
    if topic not in TOPICS:
        return False
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


def subscribed(patterns_: list[str], topic: str) -> bool:
    return any(matches(p, topic) for p in patterns_)


def resource_of(topic: str, payload: dict[str, Any]) -> str:
    """The key deliveries about one thing are ordered by ("order:12"); "" for none."""
    spec = TOPICS.get(topic)
    if spec is None:
        return ""
    parts = [str(payload.get(f, "")) for f in spec.resource]
    if not any(parts):
        return ""
    return f"{spec.resource[0].removesuffix('_id')}:{':'.join(parts)}"[:100]
