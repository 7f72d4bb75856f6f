"""The body of Paytrail's `POST /payments` for one of our orders.

Paytrail requires `amount` to equal Σ unitPrice × units exactly. A line whose
discounted total does not divide evenly by its quantity is sent as one unit of
the line total, so the items always add up without a rounding row. A delivery
fee is one more item. Loyalty points already spent on the order are a payment, not
a discount: they go as one negative item "points" at 0 % VAT (Paytrail accepts
negative unit prices outside shop-in-shop), so the items add up to the amount left
to pay and the goods keep their VAT. VAT goes as
a JSON number with at most one decimal (25.5, 13.5, 10, 0).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from saumaton.orders.schemas import OrderOut

LANGUAGES = ("FI", "SV", "EN")


@lru_cache(maxsize=64)  # a handful of rates; Decimal arithmetic on every item otherwise
def vat_percentage(rate_bp: int) -> float | int:
    """2550 -> 25.5, 1000 -> 10 (Paytrail takes one decimal at most)."""
    value = Decimal(rate_bp) / 100
    if value != value.quantize(Decimal("0.1")):
        raise ValueError(f"VAT rate {rate_bp} bp has more than one decimal")
    return int(value) if value == value.to_integral_value() else float(value)


POINTS_METHOD = "points"


def points_paid_cents(order: OrderOut) -> int:
    """What the order's loyalty points paid (captured, not returned)."""
    return sum(p.amount_cents for p in order.payments
               if p.method == POINTS_METHOD and p.status in ("captured", "refunded"))


GIFT_CARD_METHODS = ("gift_card", "store_credit")


def gift_card_paid_cents(order: OrderOut) -> int:
    """What a gift card or store credit paid at checkout (captured, not given back)."""
    return sum(p.amount_cents for p in order.payments
               if p.method in GIFT_CARD_METHODS and p.status in ("captured", "refunded"))


def amount_due(order: OrderOut) -> int:
    """What is left to pay through Paytrail: the total less the points and gift cards."""
    return order.total_cents - points_paid_cents(order) - gift_card_paid_cents(order)


def payment_items(order: OrderOut) -> list[dict[str, Any]]:
    items = []
    for line in order.lines:
        if line.quantity and line.total_cents % line.quantity == 0:
            unit_price, units = line.total_cents // line.quantity, line.quantity
        else:
            unit_price, units = line.total_cents, 1
        items.append({
            "unitPrice": unit_price, "units": units,
            "vatPercentage": vat_percentage(line.vat_rate_bp),
            "productCode": line.sku[:100],
            "description": (line.name if units == line.quantity
                            else f"{line.quantity} × {line.name}")[:1000],
            "stamp": f"{order.id}-{line.line_no}",
        })
    if order.delivery is not None and order.delivery.fee_cents:
        items.append({
            "unitPrice": order.delivery.fee_cents, "units": 1,
            "vatPercentage": vat_percentage(order.delivery.vat_rate_bp),
            "productCode": "delivery", "description": "Delivery",
            "stamp": f"{order.id}-delivery",
        })
    points = points_paid_cents(order)
    if points:
        items.append({
            "unitPrice": -points, "units": 1, "vatPercentage": 0,
            "productCode": "points", "description": "Paid with loyalty points",
            "stamp": f"{order.id}-points",
        })
    gift = gift_card_paid_cents(order)
    if gift:  # a means of payment: no VAT of its own
        items.append({
            "unitPrice": -gift, "units": 1, "vatPercentage": 0,
            "productCode": "gift-card", "description": "Paid with a gift card",
            "stamp": f"{order.id}-gift-card",
        })
    return items


def payment_request(order: OrderOut, *, stamp: str, reference: str, email: str,
                    language: str, success_url: str, cancel_url: str,
                    callback_success_url: str | None = None,
                    callback_cancel_url: str | None = None) -> dict[str, Any]:
    if language.upper() not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}")
    items = payment_items(order)
    amount = sum(i["unitPrice"] * i["units"] for i in items)
    if amount != amount_due(order) or amount <= 0:
        raise ValueError(f"items sum to {amount}, the amount due is {amount_due(order)}")
    body: dict[str, Any] = {
        "stamp": stamp, "reference": reference, "amount": amount, "currency": "EUR",
        "language": language.upper(), "items": items, "customer": {"email": email},
        "redirectUrls": {"success": success_url, "cancel": cancel_url},
    }
    if callback_success_url and callback_cancel_url:
        body["callbackUrls"] = {"success": callback_success_url,
                                "cancel": callback_cancel_url}
    return body
